/* SPDX-License-Identifier: MIT */
/* plura gc: offline garbage collection of a stopped server's store (options and output shared
 * with plura reg gc, cmd-gc.c). */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "gc/gc.h"
#include "plura.h"
#include "storage/storage.h"

int cmd_gc(int argc, char **argv) {
        GcCliOptions o = {};
        int r = gc_cli_parse(argc, argv, &o, true);
        if (r <= 0)
                return r == 0 ? 0 : 2;

        _cleanup_(config_freep) Config *cfg = NULL;
        if (load_config_or_die(o.config, &cfg) < 0)
                return 2;
        if (o.data && config_set_data_dir(cfg, o.data) < 0)
                return 2;
        char err[512] = "";
        _cleanup_(gc_config_freep) GcConfig *gcc = NULL;
        r = gc_config_new(cfg, &gcc, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "plura gc: invalid configuration: %s\n", *err ? err : strerror(-r));
                return 2;
        }
        struct stat st;
        if (stat(cfg->data_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "plura gc: %s: no such data directory\n", cfg->data_dir);
                return 2;
        }
        StoreOptions so;
        store_options_from_config(cfg, &so);
        _cleanup_(store_freep) Store *store = NULL;
        r = store_open(&so, &store);
        if (r == -EBUSY || r == -EAGAIN) {
                fprintf(stderr, "plura gc: %s: the store is in use by a running server; stop it, or run 'plura reg gc' "
                                "against the server (GC is online)\n", cfg->data_dir);
                return 2;
        }
        if (r < 0) {
                log_error_errno(r, "cannot open the store in %s: %m", cfg->data_dir);
                return 1;
        }
        _cleanup_(gc_freep) Gc *gc = NULL;
        r = gc_new(store, steal_pointer(&gcc), &gc);
        if (r < 0) {
                log_error_errno(r, "gc of %s failed: %m", cfg->data_dir);
                return 1;
        }
        GcOptions go = { .repo = o.repo, .dry_run = o.dry_run, .actor = "plura-gc", .trigger = "offline" };
        _cleanup_(json_decrefp) json_t *rep = NULL;
        r = gc_run(gc, &go, &rep);
        if (r < 0) {
                log_error_errno(r, "gc of %s failed: %m", cfg->data_dir);
                return 1;
        }
        if (o.json)
                gc_cli_print_json(rep);
        else
                gc_report_print(stdout, rep);
        return 0;
}
