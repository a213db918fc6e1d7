/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macros.h"

/* The configuration: the embedded default JSON deep-merged with the user's file, validated
 * whole against the schema in config-schema.c (an unknown key, a wrong type or a bad value
 * anywhere is refused, naming its JSON path). Core keys are parsed into fields; each module
 * reads its own section (gc, policy, channels, worm, fuse) with config_section() and can trust
 * its shape. Every key and default is documented in deploy/config.example.json. */
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
        unsigned http_header_timeout_s;          /* 10: to send a request's line and headers, and idle
                                                  * time of a keep-alive connection between requests */
        unsigned http_max_connections_per_client; /* 64: concurrent connections from one address */
        uint64_t max_manifest_bytes;   /* 4 MiB */
        uint64_t max_json_body_bytes;  /* 1 MiB, for /v1 requests */
        bool zstd_at_rest;       /* false */
        int zstd_level;          /* 3 */
        bool fsync;              /* true */
        int64_t upload_purge_after_ns; /* 24h */
        unsigned max_upload_sessions;            /* 4096: open upload sessions in total */
        unsigned max_upload_sessions_per_client; /* 128: open upload sessions started from one address */
        char *registry_id;       /* identity written into WORM bundles; default "plura@<hostname>" */
} Config;

extern const char config_default_json[];

/* Loads path (NULL = defaults only). -EINVAL with "<json path>: <problem>" in err if anything in
 * the merged document does not conform to the schema. */
int config_load(const char *path, Config **ret, char *err, size_t errlen);
/* The same from a JSON document in memory (NULL = defaults only); errors name it "config". */
int config_load_string(const char *json, Config **ret, char *err, size_t errlen);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);
/* Borrowed reference to a top-level object section ("gc", "policy", ...), never NULL. */
json_t *config_section(Config *c, const char *name);
/* "HOST:PORT", ":PORT" (0.0.0.0) or "[V6]:PORT". ret_host (malloc'ed) and ret_port may be NULL. */
int config_parse_listen(const char *hostport, char **ret_host, uint16_t *ret_port);
int config_set_listen(Config *c, const char *hostport);
int config_set_data_dir(Config *c, const char *dir);
