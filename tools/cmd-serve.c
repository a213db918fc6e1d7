/* SPDX-License-Identifier: MIT */
/* plura serve: run the registry; plura fsck: verify a stopped server's store. */

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "governance/governance.h"
#include "registry-api/registry-api.h"
#include "storage/fsck.h"
#include "storage/storage.h"
#include "plura.h"

static void serve_help(FILE *f) {
        fputs("Usage: plura serve [OPTIONS]\n"
              "\n"
              "Runs the registry: the OCI Distribution API on /v2/, the governance API on /v1/registry/,\n"
              "/healthz, /readyz and /metrics. SIGTERM or SIGINT drain in-flight requests and close the\n"
              "index cleanly. SIGHUP reloads the TLS certificate, key and client CA (tls.*) without\n"
              "dropping connections; other configuration changes need a restart.\n"
              "\n"
              "Options:\n"
              "  -c, --config FILE      JSON configuration (default: the embedded default configuration)\n"
              "  -l, --listen HOST:PORT address to listen on, overrides the config's \"listen\"\n"
              "                         (port 0 picks a free port; [::1]:5000 for IPv6)\n"
              "  -d, --data DIR         data directory, overrides the config's \"data\"; created if missing\n"
              "      --mount DIR        also serve the read-only FUSE view of the store at DIR\n"
              "      --ready-file FILE  once listening, write \"HOST:PORT\\n\" to FILE (atomically)\n"
              "  -h, --help             show this help\n",
              f);
}

static void fsck_help(FILE *f) {
        fputs("Usage: plura fsck [OPTIONS]\n"
              "\n"
              "Verifies a store whose server is stopped: re-hashes every blob, finds index records\n"
              "without files, files without records, manifests with missing children and stale\n"
              "temporary files. Exit status: 0 clean, 1 problems found (with --repair: 0 when every\n"
              "problem was repaired or quarantined), 2 usage or open errors.\n"
              "\n"
              "Options:\n"
              "  -c, --config FILE  JSON configuration (default: the embedded default configuration)\n"
              "  -d, --data DIR     data directory, overrides the config's \"data\"\n"
              "      --repair       quarantine what is broken (never deletes silently)\n"
              "      --json         print the report as JSON\n"
              "  -h, --help         show this help\n",
              f);
}

void store_options_from_config(const Config *c, StoreOptions *o) {
        store_options_init(o);
        o->root = c->data_dir;
        o->zstd_at_rest = c->zstd_at_rest;
        o->zstd_level = c->zstd_level;
        o->fsync = c->fsync;
}

/* Connections, blob files being served and the index's files all take descriptors: use every
 * one the hard limit allows (the soft limit is often 1024), and say what it is. */
static void raise_fd_limit(const Config *c) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return (void) log_warning_errno(errno, "getrlimit(RLIMIT_NOFILE): %m");
        rlim_t was = rl.rlim_cur;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_warning_errno(errno, "cannot raise the file descriptor limit from %llu to %llu: %m",
                                          (unsigned long long) was, (unsigned long long) rl.rlim_max);
                        rl.rlim_cur = was;
                }
        }
        log_info("file descriptors: %llu (was %llu, hard limit %llu)", (unsigned long long) rl.rlim_cur,
                 (unsigned long long) was, (unsigned long long) rl.rlim_max);
        /* each connection needs one, a blob download one more; the index and the rest ~100 */
        unsigned long long need = 2ULL * c->http_max_connections + 128;
        if (rl.rlim_cur < need)
                log_warning("file descriptor limit %llu is below what http.max_connections=%u can use (~%llu): "
                            "raise LimitNOFILE= / ulimit -n, or lower http.max_connections",
                            (unsigned long long) rl.rlim_cur, c->http_max_connections, need);
}

static const char *open_error(int r) {
        if (r == -EBUSY || r == -EAGAIN)
                return "the store is in use by a running server (stop it first)";
        if (r == -ENOSPC || r == -EDQUOT)
                return "the data volume is full: the index needs room to open (new manifest, options and "
                       "write-ahead log files); free space on it, then retry";
        return NULL;
}

enum {
        ARG_MOUNT = 0x100,
        ARG_READY_FILE,
        ARG_REPAIR,
        ARG_JSON,
};

int cmd_serve(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "listen", required_argument, NULL, 'l' },
                { "data", required_argument, NULL, 'd' },
                { "mount", required_argument, NULL, ARG_MOUNT },
                { "ready-file", required_argument, NULL, ARG_READY_FILE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config_path = NULL, *listen = NULL, *data = NULL, *mount = NULL, *ready_file = NULL;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "c:l:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 'd':
                        data = optarg;
                        break;
                case ARG_MOUNT:
                        mount = optarg;
                        break;
                case ARG_READY_FILE:
                        ready_file = optarg;
                        break;
                case 'h':
                        serve_help(stdout);
                        return 0;
                default:
                        serve_help(stderr);
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "plura serve: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        _cleanup_(config_freep) Config *cfg = NULL;
        int r = load_config_or_die(config_path, &cfg);
        if (r < 0)
                return 2;
        if (listen && config_set_listen(cfg, listen) < 0) {
                fprintf(stderr, "plura serve: --listen: expected HOST:PORT, got '%s'\n", listen);
                return 2;
        }
        if (data && config_set_data_dir(cfg, data) < 0)
                return 1;

        /* Before any thread exists (RocksDB, MHD), so that every thread inherits the mask and
         * the signals are taken by sigwait() below. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = mkdir_p(cfg->data_dir, 0755);
        if (r < 0) {
                log_error_errno(r, "cannot create the data directory %s: %m", cfg->data_dir);
                return 1;
        }
        raise_fd_limit(cfg);

        StoreOptions so;
        store_options_from_config(cfg, &so);
        _cleanup_(store_freep) Store *store = NULL;
        r = store_open(&so, &store);
        if (r < 0) {
                const char *why = open_error(r);
                if (why)
                        fprintf(stderr, "plura serve: %s: %s\n", cfg->data_dir, why);
                else
                        log_error_errno(r, "cannot open the store in %s: %m", cfg->data_dir);
                return 1;
        }

        /* The composition root: the store, then governance and the GC on it, then the server
         * that serves them; freed in the opposite order (the cleanups run bottom-up). */
        _cleanup_(governance_freep) Governance *gov = NULL;
        r = governance_new(store, cfg, &gov);
        if (r < 0) {
                log_error_errno(r, "cannot set up governance: %m");
                return 1;
        }
        char err[512] = "";
        GcConfig *gc_cfg = NULL;
        _cleanup_(gc_freep) Gc *gc = NULL;
        r = gc_config_new(cfg, &gc_cfg, err, sizeof err);
        if (r >= 0)
                r = gc_new(store, gc_cfg, &gc); /* takes gc_cfg */
        if (r < 0) {
                log_error("cannot set up the GC: %s", err[0] ? err : strerror(-r));
                return 1;
        }
        gc_metrics_init(gc, 30 * (int64_t) NSEC_PER_SEC);

        RegistryOptions ro = { .config = cfg, .store = store, .governance = gov, .gc = gc, .mount = mount };
        _cleanup_(registry_freep) Registry *reg = NULL;
        r = registry_new(&ro, &reg);
        if (r < 0) {
                log_error_errno(r, "cannot set up the registry: %m");
                return 1;
        }
        uint16_t port = 0;
        r = registry_start(reg, &port);
        if (r < 0)
                return 1;
        r = gc_scheduler_start(gc);
        if (r < 0)
                log_warning_errno(r, "GC scheduler: %m");

        bool v6 = strchr(cfg->listen_host, ':') != NULL;
        _cleanup_free_ char *hostport = strdup_printf(v6 ? "[%s]:%u" : "%s:%u", cfg->listen_host, port);
        if (!hostport)
                return 1;
        printf("plura: listening on %s://%s, data in %s\n", registry_scheme(reg), hostport, cfg->data_dir);
        fflush(stdout);
        if (ready_file) {
                _cleanup_free_ char *line = strdup_printf("%s\n", hostport);
                r = line ? write_file_atomic(ready_file, line, strlen(line), 0644) : -ENOMEM;
                if (r < 0) {
                        log_error_errno(r, "cannot write the ready file %s: %m", ready_file);
                        return 1;
                }
        }

        for (;;) {
                int sig = 0;
                if (sigwait(&mask, &sig) != 0)
                        continue;
                if (sig == SIGHUP) {
                        /* the TLS credentials; the rest of the configuration needs a restart */
                        log_info("SIGHUP: reloading");
                        registry_reload(reg);
                        continue;
                }
                log_info("received %s, draining requests and shutting down", strsignal(sig));
                break;
        }

        gc_stop(gc); /* the schedule ends, a running GC is cancelled and waited for */
        registry_stop(reg);
        reg = registry_free(reg);
        gc = gc_free(gc);
        gov = governance_free(gov);
        store = store_free(store); /* closes the index cleanly */
        log_info("stopped");
        return 0;
}

static void print_report(const FsckReport *rep, bool repair) {
        char b[16];
        printf("blobs checked:               %" PRIu64 " (%s)\n", rep->blobs_checked,
               format_bytes(b, sizeof(b), rep->bytes_checked));
        printf("corrupt blobs:               %" PRIu64 "\n", rep->corrupt_blobs);
        printf("records without file:        %" PRIu64 "\n", rep->records_without_file);
        printf("files without record:        %" PRIu64 "\n", rep->files_without_record);
        printf("manifests missing children:  %" PRIu64 "\n", rep->manifests_missing_children);
        printf("children not linked in repo: %" PRIu64 "\n", rep->manifests_unlinked_children);
        printf("stale temporary files:       %" PRIu64 "\n", rep->stale_temp_files);
        if (repair)
                printf("quarantined:                 %" PRIu64 "\n", rep->quarantined);
        size_t i;
        json_t *p;
        json_array_foreach(rep->problems, i, p) {
                const char *kind = json_string_value(json_object_get(p, "kind"));
                const char *what = json_string_value(json_object_get(p, "digest"));
                if (!what)
                        what = json_string_value(json_object_get(p, "path"));
                const char *detail = json_string_value(json_object_get(p, "detail"));
                printf("  %s: %s%s%s\n", strna(kind), strna(what), detail ? ": " : "", detail ? detail : "");
        }
}

int cmd_fsck(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "data", required_argument, NULL, 'd' },
                { "repair", no_argument, NULL, ARG_REPAIR },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config_path = NULL, *data = NULL;
        bool repair = false, json = false;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "c:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'd':
                        data = optarg;
                        break;
                case ARG_REPAIR:
                        repair = true;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                case 'h':
                        fsck_help(stdout);
                        return 0;
                default:
                        fsck_help(stderr);
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "plura fsck: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        _cleanup_(config_freep) Config *cfg = NULL;
        int r = load_config_or_die(config_path, &cfg);
        if (r < 0)
                return 2;
        if (data && config_set_data_dir(cfg, data) < 0)
                return 2;

        struct stat st;
        if (stat(cfg->data_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "plura fsck: %s: no such data directory\n", cfg->data_dir);
                return 2;
        }

        StoreOptions so;
        store_options_from_config(cfg, &so);
        _cleanup_(store_freep) Store *store = NULL;
        r = store_open(&so, &store);
        if (r < 0) {
                const char *why = open_error(r);
                if (why)
                        fprintf(stderr, "plura fsck: %s: %s\n", cfg->data_dir, why);
                else
                        log_error_errno(r, "cannot open the store in %s: %m", cfg->data_dir);
                return 2;
        }

        FsckReport rep = {};
        r = store_fsck(store, repair, &rep);
        if (r < 0) {
                log_error_errno(r, "fsck of %s failed: %m", cfg->data_dir);
                fsck_report_done(&rep);
                return 2;
        }
        uint64_t problems = rep.corrupt_blobs + rep.records_without_file + rep.files_without_record +
                            rep.manifests_missing_children + rep.manifests_unlinked_children + rep.stale_temp_files;
        /* With --repair, a problem that was quarantined or fixed no longer counts. */
        bool clean = problems == 0 || (repair && rep.quarantined >= problems);
        if (json) {
                json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:o}", "blobs_checked",
                                      (json_int_t) rep.blobs_checked, "bytes_checked", (json_int_t) rep.bytes_checked,
                                      "corrupt_blobs", (json_int_t) rep.corrupt_blobs, "records_without_file",
                                      (json_int_t) rep.records_without_file, "files_without_record",
                                      (json_int_t) rep.files_without_record, "manifests_missing_children",
                                      (json_int_t) rep.manifests_missing_children, "manifests_unlinked_children",
                                      (json_int_t) rep.manifests_unlinked_children, "stale_temp_files",
                                      (json_int_t) rep.stale_temp_files, "quarantined", (json_int_t) rep.quarantined,
                                      "repair", repair, "clean", clean, "problems",
                                      rep.problems ? json_incref(rep.problems) : json_array());
                if (o) {
                        json_dumpf(o, stdout, JSON_INDENT(2));
                        fputc('\n', stdout);
                }
                json_decref(o);
        } else {
                print_report(&rep, repair);
                printf("%s\n", problems == 0 ? "store is clean"
                                            : clean ? "all problems repaired or quarantined"
                                                    : repair ? "problems remain" : "problems found (run with --repair to quarantine)");
        }
        fsck_report_done(&rep);
        return clean ? 0 : 1;
}
