/* SPDX-License-Identifier: MIT */
/* plura health: is a running server ready? GET /readyz (or /healthz with --live) through the
 * client's own HTTP (tools/http-client.c), for a container HEALTHCHECK, a systemd ExecStartPost
 * or a script: no shell, no curl, nothing but this binary in the image. Part of the client
 * binary: it opens no store. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/util.h"
#include "http-client.h"
#include "plura.h"

#define HEALTH_TIMEOUT_DEFAULT_NS ((int64_t) 5 * (int64_t) NSEC_PER_SEC)
#define HEALTH_TIMEOUT_MIN_NS ((int64_t) NSEC_PER_SEC / 10)
#define HEALTH_TIMEOUT_MAX_NS ((int64_t) 3600 * (int64_t) NSEC_PER_SEC)

static void health_help(FILE *f) {
        fputs("Usage: plura health [--url URL] [--live] [--timeout DURATION] [--ca FILE | --insecure] [--quiet]\n"
              "\n"
              "Asks a running server whether it is ready: GET /readyz (the index is open and taking writes,\n"
              "storage is writable, space is left). With --live, GET /healthz instead (the process answers).\n"
              "Meant for container HEALTHCHECKs and probes: it needs no shell and no other program.\n"
              "  --url URL         the server (default $PLURA_URL, else http://127.0.0.1:5000); an https://\n"
              "                    URL is verified like 'plura reg' does (--ca FILE or $PLURA_CA, --insecure)\n"
              "  --live            only check that the process answers (/healthz)\n"
              "  --timeout D       give up after D (default 5s; \"2s\", \"500ms\", 100ms..1h)\n"
              "  --quiet           print nothing when healthy\n"
              "No credentials are sent: /healthz and /readyz are open whatever auth.acl says.\n"
              "Exit status: 0 ready (with --live: alive), 1 not ready, unreachable or no answer in time,\n"
              "2 usage.\n",
              f);
}

static const char *timeout_url = "";

static void on_alarm(int sig) {
        (void) sig;
        /* async-signal-safe: write(2) and _exit(2) only */
        static const char a[] = "plura health: ", b[] = ": no answer in time\n";
        ssize_t k = write(STDERR_FILENO, a, sizeof a - 1);
        k = write(STDERR_FILENO, timeout_url, strlen(timeout_url));
        k = write(STDERR_FILENO, b, sizeof b - 1);
        (void) k;
        _exit(1);
}

int cmd_health(int argc, char **argv) {
        enum { OPT_LIVE = 0x100, OPT_TIMEOUT, OPT_QUIET };
        static const struct option options[] = {
                { "live", no_argument, NULL, OPT_LIVE },   { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "quiet", no_argument, NULL, OPT_QUIET }, { "help", no_argument, NULL, 'h' },
                {},
        };
        HttpClientOptions http = { .anonymous = true, .actor = "plura-health" };
        argc = http_client_options_take(argc, argv, &http);
        if (argc < 0)
                return 2;
        if (http.user) {
                fprintf(stderr, "plura health: --user makes no sense here: /healthz and /readyz are open\n");
                return 2;
        }
        bool live = false, quiet = false;
        int64_t timeout_ns = HEALTH_TIMEOUT_DEFAULT_NS;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_LIVE:
                        live = true;
                        break;
                case OPT_TIMEOUT:
                        if (parse_duration_ns(optarg, &timeout_ns) < 0 || timeout_ns < HEALTH_TIMEOUT_MIN_NS ||
                            timeout_ns > HEALTH_TIMEOUT_MAX_NS) {
                                fprintf(stderr, "plura health: --timeout %s: expected a duration from 100ms to 1h\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_QUIET:
                        quiet = true;
                        break;
                case 'h':
                        health_help(stdout);
                        return 0;
                default:
                        health_help(stderr);
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "plura health: unexpected argument '%s'\n", argv[optind]);
                health_help(stderr);
                return 2;
        }

        const char *path = live ? "/healthz" : "/readyz";
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "%s%s", default_registry_url(http.url), path) < 0)
                return 1;
        /* One deadline for everything (name lookup, connect, TLS, the answer): the client's own
         * timeout is an hour, for GC runs and exports. */
        timeout_url = what;
        struct sigaction sa = { .sa_handler = on_alarm };
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval deadline = { .it_value = { .tv_sec = timeout_ns / (int64_t) NSEC_PER_SEC,
                                                    .tv_usec = (timeout_ns % (int64_t) NSEC_PER_SEC) / 1000 } };
        setitimer(ITIMER_REAL, &deadline, NULL);

        HttpResult res = {};
        int r = http_json_request(&http, "GET", path, NULL, &res);
        setitimer(ITIMER_REAL, &(struct itimerval) {}, NULL);
        if (r < 0 || res.status == 0) {
                fprintf(stderr, "plura health: %s\n", res.error[0] ? res.error : strerror(-r));
                http_result_done(&res);
                return 1;
        }
        /* the answer's first line: "ok", "ready", or "not ready: <why>" */
        char line[256] = "";
        if (res.raw)
                snprintf(line, sizeof line, "%.*s", (int) strcspn(res.raw, "\r\n"), res.raw);
        bool healthy = res.status == 200 && streq(line, live ? "ok" : "ready");
        if (!healthy)
                fprintf(stderr, "plura health: %s: HTTP %ld: %s\n", what, res.status, line[0] ? line : "(no body)");
        else if (!quiet)
                printf("%s: %s\n", what, line);
        http_result_done(&res);
        return healthy ? 0 : 1;
}
