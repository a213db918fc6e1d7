/* SPDX-License-Identifier: MIT */
#pragma once

/* registry-api: the HTTP server (libmicrohttpd). OCI /v2/ API, governance /v1/registry/ API,
 * metrics, health. This header is what its composition root (tools/cmd-serve.c) uses; the /v1
 * handlers of each feature (v1-gc.c, v1-governance.c, v1-worm.c, v1-tokens.c) register
 * themselves through registry-api/v1.h, internal to registry-api/. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "storage/storage.h"

typedef struct Registry Registry;

typedef struct Governance Governance;
typedef struct Gc Gc;

/* What the server is given by its composition root (tools/cmd-serve.c), which made them, starts
 * and stops the GC's schedule, and frees them after the registry: */
typedef struct RegistryOptions {
        Config *config;          /* borrowed */
        Store *store;            /* borrowed */
        Governance *governance;  /* borrowed: policy hook installed, the /v1 governance verbs */
        Gc *gc;                  /* borrowed: POST/GET /v1/registry/gc; the server wakes its long polls on
                                  * a run's end (gc_set_finished_notify(), removed in registry_free()) */
        const char *mount;       /* optional: also serve the FUSE view here (plura serve --mount) */
} RegistryOptions;

int registry_new(const RegistryOptions *o, Registry **ret);
/* Starts listening; returns once the listener is up. The actual port is written to *ret_port
 * (useful with port 0). */
int registry_start(Registry *r, uint16_t *ret_port);
/* Stops accepting, drains in-flight requests, flushes batched state. */
void registry_stop(Registry *r);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

/* "https" when tls.cert is set (the listen address serves HTTPS only), else "http". */
const char *registry_scheme(Registry *r);
/* SIGHUP: re-reads what can change without a restart: the TLS certificate, key and client CA
 * (registry-api/tls.h; a file that cannot be used keeps what was loaded before, and says why).
 * Connections stay open. Any thread. */
void registry_reload(Registry *r);
