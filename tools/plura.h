/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "http-client.h"

/* Subcommands of the plura binary; each lives in its own tools/cmd-*.c file. */
int cmd_serve(int argc, char **argv);   /* cmd-serve.c */
int cmd_fsck(int argc, char **argv);    /* cmd-serve.c */
int cmd_mount(int argc, char **argv);   /* cmd-mount.c */
int cmd_gc(int argc, char **argv);      /* cmd-gc-offline.c (offline GC) */
int cmd_reg(int argc, char **argv);     /* cmd-reg.c: client of a running server's /v1 API */
int cmd_health(int argc, char **argv);  /* cmd-health.c: GET /readyz for HEALTHCHECKs and probes */

/* plura reg <verb> handlers, each in the file of its feature */
int reg_gc(int argc, char **argv);          /* cmd-gc.c */
int reg_governance(int argc, char **argv);  /* cmd-reg-governance.c: promote rollback block unblock history metrics audit tags */
int reg_hold(int argc, char **argv);        /* cmd-reg-worm.c */
int reg_worm(int argc, char **argv);        /* cmd-reg-worm.c */
int reg_token(int argc, char **argv);       /* cmd-reg-token.c */

/* The options of plura gc and plura reg gc (cmd-gc.c): 1 parsed, 0 --help printed, -2 usage. */
typedef struct GcCliOptions {
        const char *config, *data, *repo;
        HttpClientOptions http; /* plura reg gc: --url, --actor, --ca, --insecure */
        bool dry_run, json, reports, last;
        bool if_idle; /* plura reg gc --if-idle: a GC already running (409) is success */
} GcCliOptions;
int gc_cli_parse(int argc, char **argv, GcCliOptions *o, bool offline);
void gc_cli_print_json(json_t *j);

/* The client build (plura): runs this process's command line in plura-store, installed beside
 * it, for what needs the store's code (serve, mount, gc, fsck, reg worm verify). Returns only on
 * failure (127, after printing why). */
int plura_exec_store(void);

/* Shared by subcommands: loads -c FILE (or the embedded default) and prints a clear error. */
struct Config;
int load_config_or_die(const char *path, struct Config **ret);
/* The store options of a read-write store from the config (cmd-serve.c: serve, fsck, offline gc). */
struct StoreOptions;
void store_options_from_config(const struct Config *c, struct StoreOptions *o);
