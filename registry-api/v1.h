/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to registry-api/: the /v1/registry/ routes of each feature file and what they may ask
 * of the registry. */

#include "registry-api/registry-api.h"

Store *registry_store(Registry *r);
Gc *registry_gc(Registry *r);
Config *registry_config(Registry *r);

/* ---- /v1/registry/ handlers */

typedef struct V1Request {
        const char *method;    /* "GET", "POST", "DELETE" */
        const char *path;      /* below /v1/registry/, e.g. "holds/case-1/sha256:..." */
        json_t *body;          /* parsed JSON body (object) for POST/PUT/DELETE with a body, or NULL */
        const char *actor;     /* from the X-Plura-Actor header or the remote address */
        void *conn;            /* opaque, for v1_request_query() */
        /* A long poll (see V1Response.wait_until_ns): 0 at the first call; at the calls after a
         * wait, the deadline that wait had, monotonic ns (in the past: answer now). */
        uint64_t wait_deadline_ns;
} V1Request;

/* Query parameter, or NULL. */
const char *v1_request_query(const V1Request *req, const char *key);

typedef struct V1Response {
        int status;            /* 200 unless set */
        json_t *body;          /* owned by the response; JSON object or array */
        /* Long poll: a handler that leaves body NULL and sets wait_until_ns (monotonic ns) is
         * called again once registry_v1_wake() is called or that time has come, without
         * holding an HTTP thread meanwhile (the connection is suspended). wait_generation:
         * registry_v1_wake_generation() read before the handler looked at what it waits for;
         * if a wake came since, the handler is called again at once instead. */
        uint64_t wait_until_ns;
        uint64_t wait_generation;
} V1Response;

/* Wakes the long polls (every waiting request's handler is called again). Any thread. */
void registry_v1_wake(Registry *r);
uint64_t registry_v1_wake_generation(Registry *r);

/* Sets an error body {"errors":[{"code":code,"message":msg,"detail":detail}]} and returns 0. */
int v1_error(V1Response *resp, int status, const char *code, json_t *detail, const char *fmt, ...) _printf_(5, 6);
/* An error body for a failed store call r (-errno), "<what>: <reason>": 507 STORAGE_FULL when the
 * storage is full (ENOSPC, EDQUOT), 503 READ_ONLY when it is read-only, else 500 with code. */
int v1_error_errno(V1Response *resp, int r, const char *code, const char *fmt, ...) _printf_(4, 5);

typedef int (*V1HandlerFn)(Registry *r, const V1Request *req, V1Response *resp);

/* Where a /v1 route's repository comes from, for the rights check. */
typedef enum V1RepoSource {
        V1_REPO_NONE,  /* registry-wide: repository "" */
        V1_REPO_BODY,  /* the body's "repo" (absent: registry-wide) */
        V1_REPO_QUERY, /* ?repo= (absent: registry-wide) */
        _V1_REPO_SOURCE_MAX,
        _V1_REPO_SOURCE_INVALID = -1,
} V1RepoSource;

/* What a /v1 route needs: an action of registry-api/acl.h on a repository. "promote" and
 * "rollback" take their environment and pointer from the body's "to": "prod:stable" needs
 * promote:prod:stable (a bare "stg" is stg's candidate) or rollback:prod. */
typedef struct V1Access {
        const char *action;
        V1RepoSource repo;
} V1Access;

/* Registers a handler for method + path prefix (e.g. "POST", "gc") and what it needs. The
 * longest matching prefix wins; a prefix matches whole path components only. The rights check
 * (server.c) runs before the handler; a route cannot be registered without an action. */
void registry_v1_register(Registry *r, const char *method, const char *prefix, V1Access access, V1HandlerFn fn);

/* Each feature file provides one of these; server.c calls them all at start-up. */
void v1_gc_register(Registry *r);
/* Removes what v1_gc_register() set on the registry's Gc (the finished notification). */
void v1_gc_unregister(Registry *r);
void v1_governance_register(Registry *r);
void v1_worm_register(Registry *r);
/* Removes the /metrics collector v1_worm_register() added for the registry's store. */
void v1_worm_unregister(Registry *r);

/* Per-feature state hangs off the registry. */
void *registry_feature_state(Registry *r, const char *feature);
void registry_set_feature_state(Registry *r, const char *feature, void *state);
