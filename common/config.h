/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macros.h"

/* The configuration: the embedded default JSON deep-merged with the user's file. Core keys
 * are parsed into fields; each module reads its own section (gc, policy, channels, worm, fuse)
 * with config_section(). Every key and default is documented in deploy/config.example.json. */
typedef struct Config {
        json_t *root;            /* merged document, owned */
        char *listen_host;       /* "127.0.0.1" */
        uint16_t listen_port;    /* 5000 */
        char *data_dir;          /* "./data" */
        char *log_level;         /* "info" */
        bool access_log;         /* true */
        unsigned http_threads;   /* 0 = 2 x cores */
        unsigned http_max_connections; /* 1024 */
        unsigned http_timeout_s; /* 120 */
        uint64_t max_manifest_bytes;   /* 4 MiB */
        uint64_t max_json_body_bytes;  /* 1 MiB, for /v1 requests */
        bool zstd_at_rest;       /* false */
        int zstd_level;          /* 3 */
        bool fsync;              /* true */
        int64_t upload_purge_after_ns; /* 24h */
        char *registry_id;       /* identity written into WORM bundles; default "plura@<hostname>" */
} Config;

extern const char config_default_json[];

/* Loads path (NULL = defaults only). Unknown top-level keys are refused with a clear error. */
int config_load(const char *path, Config **ret, char *err, size_t errlen);
/* The same from a JSON document in memory (NULL = defaults only); errors name it "config". */
int config_load_string(const char *json, Config **ret, char *err, size_t errlen);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);
/* Borrowed reference to a top-level object section ("gc", "policy", ...), never NULL. */
json_t *config_section(Config *c, const char *name);
/* "HOST:PORT" or ":PORT" */
int config_set_listen(Config *c, const char *hostport);
int config_set_data_dir(Config *c, const char *dir);
