/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to registry-api/: the per-request state shared by server.c (MHD plumbing, /v1,
 * health, metrics) and oci-api.c (the /v2/ handlers). */

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "governance/governance.h"
#include "registry-api/auth.h"
#include "registry-api/listener.h"
#include "registry-api/v1.h"
#include "registry-api/tls.h"

typedef enum BodyMode {
        BODY_DISCARD,  /* read and drop (or none expected) */
        BODY_BUFFER,   /* bounded in-memory buffer (manifests, /v1 JSON) */
        BODY_UPLOAD,   /* streamed into an upload session as it arrives */
        _BODY_MODE_MAX,
        _BODY_MODE_INVALID = -1,
} BodyMode;

typedef struct Request Request;

/* Runs once the whole body has been received; must queue a response. */
typedef void (*RequestFinishFn)(Request *req);

struct Request {
        Registry *reg;
        struct MHD_Connection *conn;
        const char *method;     /* borrowed from MHD, valid for the request */
        const char *url;
        uint64_t start_ns;      /* monotonic */
        const char *route;      /* metrics label: "v2_manifest", "v2_blob", ... */
        unsigned status;        /* 0 until a response was queued */
        uint64_t resp_bytes;
        char actor[320];
        char client[64];        /* the peer's address (the client's, behind a trusted proxy) */
        bool proxied;           /* came through one of auth.trusted_proxies */
        Identity identity;      /* who is asking (registry-api/auth.h) */
        bool queued;
        bool begun;             /* the access handler has seen it (uri_log() created it before) */
        bool in_begin;
        bool close_now;         /* answer at once and close: the head was refused, the body is not read */
        unsigned query_params;  /* > 0: the query had this many arguments, too many (cut off) */
        bool nul_in_path;       /* the path has %00, which MHD unescapes into a NUL */
        bool suspended;         /* this access-handler call suspended the connection (long poll) */
        uint64_t wait_deadline_ns; /* of the long poll, monotonic; 0 = none yet */
        /* A response prepared at the first access-handler call, queued at the final one
         * (see request_reply() in server.c). */
        struct MHD_Response *deferred;
        unsigned deferred_status;

        BodyMode body_mode;
        char *body;
        size_t body_len, body_cap, body_limit;
        bool body_too_large;
        uint64_t body_discarded;

        Upload *upload;         /* held session (BODY_UPLOAD, status, ...) */
        int upload_error;       /* first upload_write error */
        bool cancel_upload_on_abort; /* single-request POST: the session is ours alone */

        RequestFinishFn finish;
        /* scratch for the handlers */
        char *repo;
        char *ref;
        char *upload_uuid;
        char *digest;
};

/* Common response plumbing (server.c). All take ownership of resp (may be NULL = empty body). */
void request_reply(Request *req, unsigned status, struct MHD_Response *resp);
void request_reply_json(Request *req, unsigned status, json_t *body /* stolen */);
/* The same with its Content-Type (NULL: application/json) and one more header (hname NULL: none;
 * hvalue copied). */
void request_reply_json_header(Request *req, unsigned status, json_t *body /* stolen */, const char *content_type,
                               const char *hname, const char *hvalue);
/* {"errors":[{"code","message","detail"}]} */
void request_reply_error(Request *req, unsigned status, const char *code, json_t *detail /* stolen */,
                         const char *fmt, ...) _printf_(5, 6);
/* The same with one more header (e.g. Allow, Retry-After, Content-Range) and no detail. */
void request_reply_error_header(Request *req, unsigned status, const char *code, const char *hname,
                                const char *hvalue, const char *fmt, ...) _printf_(6, 7);
void request_reply_store_error(Request *req, int r, const StoreError *err, const char *what);
struct MHD_Response *response_empty(void);
struct MHD_Response *response_buffer_copy(const void *data, size_t len);
void response_header(struct MHD_Response *resp, const char *name, const char *value);
const char *request_header(Request *req, const char *name);
const char *request_query(Request *req, const char *key);
/* The connection is TLS (tls.cert is set): no sendfile, MHD encrypts what it sends. */
bool request_is_tls(const Request *req);

/* Whether the request's identity may do action on repo ("" for registry-wide actions): true, or
 * false after answering 401 (with the challenge: no credentials, or a bearer token that was not
 * asked for this scope) or 403 DENIED naming the missing action. The one rights check of every
 * route, before its handler runs. */
bool request_authorize(Request *req, const char *repo, const char *action);
/* The registry's governance (tag policy, block list, channels); NULL before it is set up. */
Governance *registry_governance(Registry *r);
/* The registry's identities and rules (registry-api/auth.h). */
Auth *registry_auth(Registry *r);
/* v1-tokens.c: POST/GET/DELETE /v1/registry/tokens */
void v1_tokens_register(Registry *r);
/* Whether auth is on (identities and rules configured). */
bool request_auth_enabled(Request *req);
/* request_authorize() without an answer (for filtering lists and optional paths such as mounts). */
bool request_may(Request *req, const char *repo, const char *action);
/* 401 UNAUTHORIZED with the challenge: Bearer (realm .../v2/token, the service, scope and error if
 * given) on /v2/, Basic elsewhere. */
void request_reply_unauthorized(Request *req, const char *scope, const char *error, const char *fmt, ...)
        _printf_(4, 5);
/* The token service (auth_issue_token()) for this request's identity. */
int registry_issue_token(Request *req, const char *refresh, const TokenScope *scopes, size_t n, bool offline,
                         json_t **ret, char *reason, size_t reason_len);
/* Identifies the request as user:password (the OAuth2 password grant): false if answered (401, 429). */
bool registry_identify_password(Request *req, const char *user, const char *password);

/* oci-api.c: called at the first access-handler call for /v2 paths. Sets req->route, and either
 * queues a response right away (errors found in the headers) or sets the body mode and
 * req->finish. */
void oci_begin(Request *req);
/* The /v2/ routes and what each needs: [{methods, path, action, note}] (GET /v1/registry/routes). */
json_t *oci_routes_json(void);

/* ---- the registry object (server.c owns its life cycle; request.c reads it) */
typedef struct V1Handler {
        char *method;
        char *prefix;
        V1Access access;
        V1HandlerFn fn;
} V1Handler;

typedef struct Feature {
        char *name;
        void *state;
} Feature;

struct Registry {
        Config *config;
        Store *store;
        char *mount;

        struct MHD_Daemon *daemon;
        Listener *listener;
        Auth *auth;
        Tls *tls;          /* tls.cert set: the listen address serves HTTPS only */
        char hostport[300]; /* where it listens, for the token realm when a request has no Host */
        uint16_t port;

        V1Handler *v1;
        size_t n_v1;

        pthread_mutex_t lock; /* features, inflight, stopping */
        pthread_cond_t cond;       /* inflight reached 0 while stopping */
        pthread_cond_t purge_cond; /* stopping */
        Feature *features;
        size_t n_features;
        unsigned inflight;
        bool stopping;

        Governance *governance; /* borrowed (RegistryOptions): tag policy, block list, channels */
        Gc *gc;                 /* borrowed (RegistryOptions) */
        bool purge_started;
        pthread_t purge_thread;

        /* long polls (under lock): suspended requests, and what wakes them */
        Request **waiting;
        size_t n_waiting, allocated_waiting;
        uint64_t wake_gen;
        pthread_cond_t wait_cond; /* CLOCK_MONOTONIC: a new waiter, or stopping */
        pthread_t wait_thread;
        bool wait_started;
};

/* request.c: hands an upload session back to the store (the request's end or its reply) */
void request_release_upload(Request *req);
/* request.c: the spec's error body {"errors":[{code, message, detail}]} */
json_t *registry_error_body(const char *code, json_t *detail, const char *message);
/* server.c: identifies the request from an Authorization header value (false: a reply is queued);
 * sets req->actor from the identity */
bool request_identify_from(Request *req, const char *authorization);
void request_actor(Request *req);
