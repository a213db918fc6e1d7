/* SPDX-License-Identifier: MIT */
/* Replies (empty, buffers, JSON, the spec's error bodies, store errors) and the rights check every
 * route goes through (request_authorize(): 401 with the Bearer challenge, 403 DENIED naming the
 * action). The request life cycle that calls them is in server.c. */

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "fusefs/fusefs.h"
#include "registry-api/acl.h"
#include "registry-api/listener.h"
#include "registry-api/server-internal.h"
#include "registry-api/tls.h"

/* ------------------------------------------------------------------ responses */

struct MHD_Response *response_empty(void) {
        return MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *response_buffer_copy(const void *data, size_t len) {
        return MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_MUST_COPY);
}

void response_header(struct MHD_Response *resp, const char *name, const char *value) {
        if (resp && value)
                (void) MHD_add_response_header(resp, name, value);
}

const char *request_header(Request *req, const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *request_query(Request *req, const char *key) {
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

bool request_is_tls(const Request *req) {
        return req->reg->tls != NULL;
}

static bool request_has_body(Request *req) {
        const char *cl = request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > 0)
                return true;
        return request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* A single-request POST's session was never announced: unless committed (which consumed it),
 * it goes away with the request. */
void request_release_upload(Request *req) {
        if (!req->upload)
                return;
        char uuid[37];
        snprintf(uuid, sizeof(uuid), "%s", upload_uuid(req->upload));
        store_upload_release(req->reg->store, steal_pointer(&req->upload));
        if (req->cancel_upload_on_abort && req->repo)
                (void) store_upload_cancel(req->reg->store, req->repo, uuid);
}

void request_reply(Request *req, unsigned status, struct MHD_Response *resp) {
        if (req->queued || req->deferred) {
                /* a handler bug; never queue twice */
                if (resp)
                        MHD_destroy_response(resp);
                return;
        }
        if (!resp)
                resp = response_empty();
        if (!resp) {
                log_oom();
                return;
        }
        /* Answers found at the first access-handler call wait for the final call: MHD 0.9.75
         * closes the connection after a response queued that early. Only a POST/PUT with a
         * body is answered at once, on purpose: MHD then refuses to read that body. */
        if (req->in_begin && !req->deferred && !req->close_now &&
            !(request_has_body(req) && (streq(req->method, "POST") || streq(req->method, "PUT")))) {
                req->deferred = resp;
                req->deferred_status = status;
                req->body_mode = BODY_DISCARD;
                req->finish = NULL;
                return;
        }
        response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
        response_header(resp, "Strict-Transport-Security", tls_hsts(req->reg->tls));
        if (req->close_now)
                response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        /* The body is done with: release the upload session before the client can see the
         * answer, or its next request (often on another connection) finds the session busy. */
        request_release_upload(req);
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES) {
                req->queued = true;
                req->status = status;
        } else
                log_warning("could not queue the %u response for %s %s", status, req->method, req->url);
        MHD_destroy_response(resp);
}

void request_reply_json_header(Request *req, unsigned status, json_t *body, const char *content_type, const char *hname,
                               const char *hvalue) {
        char *s = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
        json_decref(body);
        if (!s) {
                log_oom();
                return;
        }
        size_t len = strlen(s);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(s);
                return;
        }
        req->resp_bytes = len;
        response_header(resp, "Content-Type", content_type ? content_type : "application/json");
        if (hname)
                response_header(resp, hname, hvalue);
        request_reply(req, status, resp);
}

void request_reply_json(Request *req, unsigned status, json_t *body) {
        request_reply_json_header(req, status, body, NULL, NULL, NULL);
}

json_t *registry_error_body(const char *code, json_t *detail, const char *message) {
        /* a message that quotes the request (a path with %ff in it) must still be a JSON string,
         * or json_pack() fails and the client gets "{}" */
        char m[1024];
        snprintf(m, sizeof m, "%s", message);
        json_t *e = json_pack("{s:s,s:s}", "code", code, "message", utf8_sanitize(m));
        if (!e) {
                json_decref(detail);
                return NULL;
        }
        if (detail)
                json_object_set_new(e, "detail", detail);
        return json_pack("{s:[o]}", "errors", e);
}

static void reply_error_v(Request *req, unsigned status, const char *code, json_t *detail, const char *hname,
                          const char *hvalue, const char *fmt, va_list ap) _printf_(7, 0);
static void reply_error_v(Request *req, unsigned status, const char *code, json_t *detail, const char *hname,
                          const char *hvalue, const char *fmt, va_list ap) {
        char msg[1024];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        request_reply_json_header(req, status, registry_error_body(code, detail, msg), NULL, hname, hvalue);
}

void request_reply_error(Request *req, unsigned status, const char *code, json_t *detail, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        reply_error_v(req, status, code, detail, NULL, NULL, fmt, ap);
        va_end(ap);
}

void request_reply_error_header(Request *req, unsigned status, const char *code, const char *hname,
                                const char *hvalue, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        reply_error_v(req, status, code, NULL, hname, hvalue, fmt, ap);
        va_end(ap);
}

void request_reply_store_error(Request *req, int r, const StoreError *err, const char *what) {
        /* a full volume is not the request's fault, whatever code the store attached */
        if (r == -ENOSPC || r == -EDQUOT)
                return request_reply_error(req, 507, "UNKNOWN", NULL, "%s: storage is full (%s)", what, strerror(-r));
        if (err && err->code > OCI_OK && err->code < _OCI_ERROR_MAX) {
                request_reply_error(req, (unsigned) oci_error_http_status(err->code), oci_error_to_string(err->code),
                                    NULL, "%s", err->message[0] ? err->message : what);
                return;
        }
        switch (-r) {
        case EROFS:
                request_reply_error(req, 503, "UNKNOWN", NULL, "%s: storage is read-only", what);
                return;
        default:
                log_error_errno(r, "%s %s: %s: %m", req->method, req->url, what);
                request_reply_error(req, 500, "UNKNOWN", NULL, "%s: %s", what, strerror(r < 0 ? -r : r));
        }
}

/* ------------------------------------------------------------------ rights */

/* "<scheme>://<host>/v2/token" from the request's Host (the client reaches us there). */
static void token_realm(Request *req, char *buf, size_t len) {
        const char *host = req->proxied && request_header(req, "X-Forwarded-Host") ? request_header(req, "X-Forwarded-Host")
                                                                                    : request_header(req, MHD_HTTP_HEADER_HOST);
        const char *proto = req->proxied ? request_header(req, "X-Forwarded-Proto") : NULL;
        bool https = proto ? strcasecmp(proto, "https") == 0 : req->reg->tls != NULL;
        bool ok = host && *host && strlen(host) < 256;
        for (const char *p = host; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     strchr(".-:[]_", *p);
        snprintf(buf, len, "%s://%s/v2/token", https ? "https" : "http", ok ? host : req->reg->hostport);
}

/* 401 with the challenge a client answers with credentials: Bearer (the token flow) on /v2/,
 * Basic elsewhere. */
void request_reply_unauthorized(Request *req, const char *scope, const char *error, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        _cleanup_free_ char *challenge = NULL;
        if (startswith(req->url, "/v2/") && !streq(req->url, "/v2/token")) {
                char realm[320];
                token_realm(req, realm, sizeof realm);
                challenge = http_bearer_challenge(realm, auth_service(req->reg->auth), scope, error);
        } else
                challenge = http_basic_challenge("plura");
        request_reply_error_header(req, 401, "UNAUTHORIZED", "WWW-Authenticate", challenge, "%s", msg);
}

bool request_may(Request *req, const char *repo, const char *action) {
        const Identity *id = &req->identity;
        return id->bearer ? auth_could_get(req->reg->auth, id, repo, action) : auth_allowed(req->reg->auth, id, repo, action);
}

int registry_issue_token(Request *req, const char *refresh, const TokenScope *scopes, size_t n, bool offline,
                         json_t **ret, char *reason, size_t reason_len) {
        char who[HTTP_AUTH_USER_MAX + 64];
        if (refresh && auth_refresh_subject(req->reg->auth, refresh, who, sizeof who, reason, reason_len) >= 0)
                /* the refresh grant names who asks, for the log */
                snprintf(req->actor, sizeof(req->actor), "%s from %s", who, req->client);
        return auth_issue_token(req->reg->auth, &req->identity, refresh, scopes, n, offline, ret, reason, reason_len);
}

bool registry_identify_password(Request *req, const char *user, const char *password) {
        _cleanup_free_ char *pair = strdup_printf("%s:%s", user, password), *b64 = NULL;
        if (pair) {
                size_t l = strlen(pair);
                b64 = malloc(4 * ((l + 2) / 3) + 1);
                if (b64)
                        EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) pair, (int) l);
                OPENSSL_cleanse(pair, l);
        }
        _cleanup_free_ char *header = b64 ? strdup_printf("Basic %s", b64) : NULL;
        if (!header) {
                request_reply_store_error(req, -ENOMEM, NULL, "out of memory");
                return false;
        }
        identity_done(&req->identity);
        if (!request_identify_from(req, header)) {
                snprintf(req->actor, sizeof(req->actor), "unauthenticated from %s", req->client);
                return false;
        }
        request_actor(req); /* the password grant names who asks, for the log */
        return true;
}

Auth *registry_auth(Registry *r) {
        return r->auth;
}

bool request_auth_enabled(Request *req) {
        return auth_enabled(req->reg->auth);
}

bool request_authorize(Request *req, const char *repo, const char *action) {
        Registry *reg = req->reg;
        const Identity *id = &req->identity;
        if (auth_allowed(reg->auth, id, repo, action))
                return true;
        _cleanup_free_ char *scope = NULL;
        if (repo && *repo && (streq(action, "pull") || streq(action, "push") || streq(action, "delete")))
                scope = strdup_printf("repository:%s:%s", repo, streq(action, "pull") ? "pull" : streq(action, "push") ? "pull,push" : action);
        else if (streq(action, "catalog"))
                scope = strdup("registry:catalog:*");
        char who[HTTP_AUTH_USER_MAX + 64];
        identity_format(id, who, sizeof who);
        if (!id->credentials || id->kind == IDENTITY_ANONYMOUS) {
                request_reply_unauthorized(req, scope, NULL, "authentication required: %s%s%s needs %s", repo && *repo ? "repository " : "",
                                   repo && *repo ? repo : "this endpoint", "", action);
                return false;
        }
        if (id->bearer && auth_could_get(reg->auth, id, repo, action)) {
                /* the token was asked for less: the client asks /v2/token again with this scope */
                request_reply_unauthorized(req, scope, "insufficient_scope", "the bearer token does not grant %s on %s", action,
                                   repo && *repo ? repo : "this endpoint");
                return false;
        }
        request_reply_error(req, 403, "DENIED", json_pack("{s:s, s:s}", "action", action, "repository", strempty(repo)),
                            "%s may not %s%s%s (missing action \"%s\")", who, action, repo && *repo ? " in " : "",
                            repo && *repo ? repo : "", action);
        return false;
}

/* The action and repository a /v1 route needs for this request (see V1Access). */
