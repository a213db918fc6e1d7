/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to registry-api/: the per-request state shared by server.c (MHD plumbing, /v1,
 * health, metrics) and oci-api.c (the /v2/ handlers). */

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry-api/registry-api.h"

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
        char actor[128];
        char client[64];        /* the peer's address */
        bool queued;
        bool begun;             /* the access handler has seen it (uri_log() created it before) */
        bool in_begin;
        bool close_now;         /* answer at once and close: the head was refused, the body is not read */
        unsigned query_params;  /* > 0: the query had this many arguments, too many (cut off) */
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

/* oci-api.c: called at the first access-handler call for /v2 paths. Sets req->route, and either
 * queues a response right away (errors found in the headers) or sets the body mode and
 * req->finish. */
void oci_begin(Request *req);
