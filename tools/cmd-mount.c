/* SPDX-License-Identifier: MIT */
/* plura mount: the read-only FUSE view of a store, beside a running server. The index is opened
 * as a RocksDB secondary instance that catches up with the primary on an interval (config
 * fuse.catch_up_interval), so new pushes show up within about a second. SIGTERM/SIGINT end
 * the session loop and unmount. */

#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "fusefs/fusefs.h"
#include "storage/storage.h"
#include "plura.h"

static void mount_help(FILE *f) {
        fputs("Usage: plura mount [OPTIONS] MOUNTPOINT\n"
              "\n"
              "Mounts a read-only view of the registry's store at MOUNTPOINT (see /README in the mount):\n"
              "repositories, tags, manifests, blobs and the merged file tree of every image (rootfs/).\n"
              "Works beside a running `plura serve` on the same data directory. SIGTERM or SIGINT\n"
              "unmount cleanly.\n"
              "\n"
              "Options:\n"
              "  -c, --config FILE  JSON configuration (default: the embedded default configuration);\n"
              "                     the \"fuse\" section: catch_up_interval, allow_other, threads,\n"
              "                     gzip_span, max_layer_bytes, zstd_cache_bytes\n"
              "  -d, --data DIR     data directory, overrides the config's \"data\"\n"
              "      --debug        trace FUSE requests\n"
              "  -h, --help         show this help\n",
              f);
}

static int remove_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

int cmd_mount(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "data", required_argument, NULL, 'd' },
                { "debug", no_argument, NULL, 'D' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config_path = NULL, *data = NULL;
        bool debug = false;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "c:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'd':
                        data = optarg;
                        break;
                case 'D':
                        debug = true;
                        break;
                case 'h':
                        mount_help(stdout);
                        return 0;
                default:
                        mount_help(stderr);
                        return 2;
                }
        if (optind != argc - 1) {
                mount_help(stderr);
                return 2;
        }
        const char *mountpoint = argv[optind];

        _cleanup_(config_freep) Config *cfg = NULL;
        if (load_config_or_die(config_path, &cfg) < 0)
                return 2;
        if (data && config_set_data_dir(cfg, data) < 0) {
                fprintf(stderr, "plura mount: invalid data directory\n");
                return 2;
        }
        FusefsOptions fo;
        fusefs_options_init(&fo);
        char err[256] = "";
        if (fusefs_options_from_json(config_section(cfg, "fuse"), &fo, err, sizeof(err)) < 0) {
                fprintf(stderr, "plura mount: invalid configuration: %s\n", err);
                return 2;
        }
        fo.debug = debug;

        struct stat st;
        if (stat(mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "plura mount: %s is not a directory\n", mountpoint);
                return 2;
        }
        if (access("/dev/fuse", R_OK | W_OK) < 0) {
                fprintf(stderr, "plura mount: /dev/fuse is not available: %m\n");
                return 2;
        }

        /* the secondary instance keeps its own info log under <data>/tmp (or /tmp) */
        _cleanup_free_ char *tmpdir = strdup_printf("%s/tmp", cfg->data_dir);
        _cleanup_free_ char *secondary = NULL;
        if (tmpdir && mkdir_p(tmpdir, 0700) >= 0)
                secondary = strdup_printf("%s/secondary-%d", tmpdir, (int) getpid());
        StoreOptions so;
        store_options_init(&so);
        so.root = cfg->data_dir;
        so.zstd_at_rest = cfg->zstd_at_rest;
        so.read_only = true;
        so.secondary_dir = secondary;
        _cleanup_(store_freep) Store *store = NULL;
        r = store_open(&so, &store);
        if (r < 0) {
                fprintf(stderr, "plura mount: cannot open the store in %s: %s\n", cfg->data_dir, strerror(-r));
                return 1;
        }

        _cleanup_(fusefs_freep) Fusefs *fs = NULL;
        r = fusefs_mount(store, mountpoint, &fo, &fs);
        if (r < 0) {
                fprintf(stderr, "plura mount: cannot mount on %s: %s\n", mountpoint, strerror(-r));
                return 1;
        }
        r = fusefs_install_signal_handlers(fs);
        if (r < 0) {
                fprintf(stderr, "plura mount: cannot install signal handlers\n");
                return 1;
        }
        r = fusefs_run(fs);
        fusefs_remove_signal_handlers(fs);
        fs = fusefs_free(fs); /* unmounts */
        log_info("plura mount: unmounted %s", mountpoint);
        if (secondary) {
                /* the secondary's scratch directory only holds RocksDB's info logs */
                store = store_free(store);
                (void) nftw(secondary, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
        }
        return r < 0 ? 1 : 0;
}
