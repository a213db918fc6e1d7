/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "plura.h"

static void help(FILE *f) {
        fputs("plura - a self-hosted OCI container registry\n"
              "\n"
              "Usage: plura COMMAND [OPTIONS]\n"
              "\n"
              "Commands:\n"
              "  serve  [-c FILE] [--listen HOST:PORT] [--data DIR] [--mount DIR]\n"
              "                                   run the registry (OCI Distribution API on /v2/)\n"
              "  mount  [-c FILE] [--data DIR] MOUNTPOINT\n"
              "                                   read-only FUSE view of a store, beside a running server\n"
              "  gc     [-c FILE] [--data DIR] [--repo R] [--dry-run] [--json]\n"
              "                                   offline garbage collection of a stopped server's store\n"
              "  fsck   [-c FILE] [--data DIR] [--repair] [--json]\n"
              "                                   verify every blob's digest and index/file consistency\n"
              "  reg    VERB ... [--url URL] [--json]\n"
              "                                   client of a running server: promote, rollback, gc, metrics,\n"
              "                                   block, unblock, hold, worm, history, audit, tags\n"
              "  health [--url URL] [--live]      exit 0 when a running server answers ready (/readyz)\n"
              "\n"
              "Run 'plura COMMAND --help' for the options of a command.\n"
              "With no config file, the embedded default is used: data in ./data, listening on 127.0.0.1:5000.\n", f);
}

int load_config_or_die(const char *path, Config **ret) {
        char err[1024] = "";
        int r = config_load(path, ret, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "plura: invalid configuration: %s\n", err);
                return r;
        }
        int l = log_level_from_string((*ret)->log_level);
        if (l >= 0)
                log_set_max_level((LogLevel) l);
        return 0;
}

#ifdef PLURA_CLIENT_ONLY
/* This build of plura is the client (plura reg ...): the commands that open a store are in
 * plura-store, installed beside it. Its libraries (RocksDB, libmicrohttpd, FUSE, ...) took
 * 20 ms to load before main(), on every `plura reg` call; exec keeps the PID and the arguments. */
static char **store_argv;

int plura_exec_store(void) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) {
                fprintf(stderr, "plura: cannot find its own executable: %s\n", strerror(errno));
                return 127;
        }
        self[n] = 0;
        char *slash = strrchr(self, '/');
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%.*s/plura-store", slash ? (int) (slash - self) : 1, slash ? self : ".");
        execv(path, store_argv);
        fprintf(stderr, "plura: cannot run %s (it holds serve, mount, gc, fsck and worm verify): %s\n", path, strerror(errno));
        return 127;
}

static int exec_store_binary(int argc, char **argv) {
        (void) argc, (void) argv;
        return plura_exec_store();
}
#define cmd_serve exec_store_binary
#define cmd_mount exec_store_binary
#define cmd_gc exec_store_binary
#define cmd_fsck exec_store_binary
#endif

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {
                { "serve", cmd_serve }, { "mount", cmd_mount }, { "gc", cmd_gc },
                { "fsck", cmd_fsck },   { "reg", cmd_reg },     { "health", cmd_health },
        };
#ifdef PLURA_CLIENT_ONLY
        store_argv = argv;
#endif
        /* a test clock that cannot be read must not turn into the real one */
        if (clock_fake_from_env() < 0)
                return 2;

        if (argc < 2) {
                help(stderr);
                return 2;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                help(stdout);
                return 0;
        }
        if (streq(argv[1], "--version")) {
                puts("plura 0.1.0");
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
                if (streq(argv[1], cmds[i].name)) {
                        int r = cmds[i].fn(argc - 1, argv + 1);
                        return r < 0 ? 1 : r;
                }
        fprintf(stderr, "plura: unknown command '%s'\n\n", argv[1]);
        help(stderr);
        return 2;
}
