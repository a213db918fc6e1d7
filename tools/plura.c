/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
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

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {
                { "serve", cmd_serve }, { "mount", cmd_mount }, { "gc", cmd_gc },
                { "fsck", cmd_fsck },   { "reg", cmd_reg },
        };

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
