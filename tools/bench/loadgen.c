/* SPDX-License-Identifier: MIT */
/* Minimal closed-loop HTTP/1.1 load generator for requests wrk cannot make: wrk 4.1 waits
 * for a body after a HEAD response with a Content-Length, so it never completes a HEAD.
 *
 *   loadgen HOST PORT CONNECTIONS SECONDS METHOD PATHFILE [HEADER]
 *
 * One thread per connection (keep-alive), each request picks a random line of PATHFILE.
 * Responses are read up to the end of the headers, then Content-Length body bytes unless
 * the method is HEAD. Prints one line "BENCH_JSON {...}" in the format of report.lua.
 * Built by tools/bench/run-all.sh with `cc -O2 -pthread`.
 *
 * LOADGEN_RATE=N (total requests per second) makes it open-loop: each connection sends on a
 * fixed schedule and a latency is counted from the request's scheduled time, so a stall is
 * not hidden by the requests it kept from being sent (coordinated omission). That measures
 * what a background job (GC) does to the latency of a load the server can sustain, which a
 * saturating closed loop cannot separate from queueing for the CPU. SIGINT or SIGTERM ends
 * the run early (and still prints the result).
 *
 * LOADGEN_TRACE=FILE writes every request as "start_ms latency_us" (start relative to the
 * run's start, CLOCK_MONOTONIC), to see when in a run the slow requests were. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *method, *header;
static int port, seconds, conns;
static char **paths;
static size_t n_paths;
static volatile sig_atomic_t stop;
static uint64_t interval_us; /* per connection, 0 = closed loop */
static uint64_t run_start_us;
static const char *trace_path;

typedef struct Worker {
        pthread_t t;
        unsigned seed;
        uint64_t requests, bytes, errors_status, errors_io;
        uint32_t *lat_us;
        uint32_t *start_ms; /* LOADGEN_TRACE only */
        size_t n_lat, cap_lat;
} Worker;

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int connect_to(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        inet_pton(AF_INET, host, &sa.sin_addr);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* One request/response on fd. Returns the status code, 0 on an I/O error. */
static int exchange(int fd, const char *path, Worker *w) {
        char req[4096], buf[65536];
        int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s\r\n", method, path, host, port,
                         header ? header : "", header ? "\r\n" : "", "");
        if (write(fd, req, (size_t) n) != n)
                return 0;
        size_t have = 0;
        char *end = NULL;
        while (!end) {
                if (have >= sizeof(buf) - 1)
                        return 0;
                ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (r <= 0)
                        return 0;
                have += (size_t) r;
                buf[have] = 0;
                end = strstr(buf, "\r\n\r\n");
        }
        int status = atoi(buf + 9);
        long long cl = 0;
        for (char *p = strchr(buf, '\n'); p && p < end; p = strchr(p + 1, '\n'))
                if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
                        cl = atoll(p + 16);
        size_t head = (size_t) (end + 4 - buf);
        w->bytes += have;
        if (strcmp(method, "HEAD") != 0) {
                long long left = cl - (long long) (have - head);
                while (left > 0) {
                        ssize_t r = read(fd, buf, left < (long long) sizeof(buf) ? (size_t) left : sizeof(buf));
                        if (r <= 0)
                                return 0;
                        left -= r;
                        w->bytes += (uint64_t) r;
                }
        }
        return status;
}

static void sleep_until(uint64_t t) {
        for (uint64_t now = now_us(); now < t && !stop; now = now_us())
                usleep((useconds_t) (t - now));
}

static void *run(void *arg) {
        Worker *w = arg;
        int fd = connect_to();
        /* connections spread over the interval instead of firing together */
        uint64_t next = now_us() + interval_us * ((w->seed - 1234u) % (unsigned) conns) / (unsigned) conns;
        while (!stop) {
                uint64_t scheduled = 0;
                if (interval_us) {
                        sleep_until(next);
                        if (stop)
                                break;
                        scheduled = next;
                        next += interval_us;
                }
                if (fd < 0 && (fd = connect_to()) < 0) {
                        w->errors_io++;
                        usleep(1000);
                        continue;
                }
                const char *path = paths[rand_r(&w->seed) % n_paths];
                uint64_t t0 = scheduled ? scheduled : now_us();
                int st = exchange(fd, path, w);
                uint64_t dt = now_us() - t0;
                if (st == 0) {
                        w->errors_io++;
                        close(fd);
                        fd = -1;
                        continue;
                }
                if (st >= 400)
                        w->errors_status++;
                w->requests++;
                if (w->n_lat == w->cap_lat) {
                        w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 65536;
                        w->lat_us = realloc(w->lat_us, w->cap_lat * sizeof(uint32_t));
                        if (trace_path)
                                w->start_ms = realloc(w->start_ms, w->cap_lat * sizeof(uint32_t));
                }
                if (trace_path)
                        w->start_ms[w->n_lat] = (uint32_t) ((t0 - run_start_us) / 1000u);
                w->lat_us[w->n_lat++] = (uint32_t) dt;
        }
        if (fd >= 0)
                close(fd);
        return NULL;
}

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        if (argc < 7) {
                fprintf(stderr, "usage: loadgen HOST PORT CONNECTIONS SECONDS METHOD PATHFILE [HEADER]\n");
                return 2;
        }
        host = argv[1];
        port = atoi(argv[2]);
        conns = atoi(argv[3]);
        seconds = atoi(argv[4]);
        method = argv[5];
        header = argc > 7 ? argv[7] : NULL;
        FILE *f = fopen(argv[6], "re");
        if (!f) {
                perror(argv[6]);
                return 1;
        }
        char line[2048];
        size_t cap = 0;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (!*line)
                        continue;
                if (n_paths == cap)
                        paths = realloc(paths, (cap = cap ? cap * 2 : 1024) * sizeof(char *));
                paths[n_paths++] = strdup(line);
        }
        fclose(f);
        if (n_paths == 0)
                return 1;

        const char *rate = getenv("LOADGEN_RATE");
        if (rate && atof(rate) > 0)
                interval_us = (uint64_t) ((double) conns * 1e6 / atof(rate));
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        trace_path = getenv("LOADGEN_TRACE");
        Worker *ws = calloc((size_t) conns, sizeof(Worker));
        uint64_t t0 = now_us();
        run_start_us = t0;
        for (int i = 0; i < conns; i++) {
                ws[i].seed = 1234u + (unsigned) i;
                pthread_create(&ws[i].t, NULL, run, &ws[i]);
        }
        /* whichever thread takes the signal, the main thread sees stop within 0.1 s */
        while (!stop && now_us() - t0 < (uint64_t) seconds * 1000000u)
                usleep(100000);
        stop = 1;
        uint64_t req = 0, bytes = 0, est = 0, eio = 0;
        size_t n = 0;
        for (int i = 0; i < conns; i++) {
                pthread_join(ws[i].t, NULL);
                req += ws[i].requests;
                bytes += ws[i].bytes;
                est += ws[i].errors_status;
                eio += ws[i].errors_io;
                n += ws[i].n_lat;
        }
        double secs = (double) (now_us() - t0) / 1e6;
        uint32_t *all = malloc((n ? n : 1) * sizeof(uint32_t));
        size_t k = 0;
        for (int i = 0; i < conns; i++) {
                memcpy(all + k, ws[i].lat_us, ws[i].n_lat * sizeof(uint32_t));
                k += ws[i].n_lat;
        }
        if (trace_path) {
                FILE *tf = fopen(trace_path, "we");
                if (!tf)
                        perror(trace_path);
                for (int i = 0; tf && i < conns; i++)
                        for (size_t j = 0; j < ws[i].n_lat; j++)
                                fprintf(tf, "%u %u\n", ws[i].start_ms[j], ws[i].lat_us[j]);
                if (tf)
                        fclose(tf);
        }
        qsort(all, n, sizeof(uint32_t), cmp_u32);
#define PCT(p) (n ? all[(size_t) ((double) (n - 1) * (p))] / 1e3 : 0.0)
        printf("BENCH_JSON {\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"bytes\":%llu,\"MBps\":%.1f,"
               "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"errors\":{\"connect\":0,\"read\":%llu,\"write\":0,\"status\":%llu,\"timeout\":0}}\n",
               (unsigned long long) req, secs, (double) req / secs, (unsigned long long) bytes,
               (double) bytes / secs / 1e6, PCT(0.50), PCT(0.90), PCT(0.99), n ? all[n - 1] / 1e3 : 0.0,
               (unsigned long long) eio, (unsigned long long) est);
        return 0;
}
