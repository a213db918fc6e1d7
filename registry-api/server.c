/* SPDX-License-Identifier: MIT */
/* The HTTP server: libmicrohttpd with an internal epoll thread pool. Request life cycle, body
 * handling (bounded buffers or streaming into upload sessions), common response headers,
 * /healthz, /readyz, /metrics, the /v1/registry/ dispatch table, access log, metrics,
 * the upload purge thread and the graceful stop. The /v2/ handlers are in oci-api.c. */

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

#define CONNECTION_MEMORY_LIMIT (64U * 1024U) /* also bounds the request header size: larger gets 431 */
#define DRAIN_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define PURGE_INTERVAL_S 60
#define DISCARD_MAX (UINT64_C(64) << 20) /* bytes read and dropped after an error before giving up */
/* GET arguments MHD may parse into its fixed per-connection pool (CONNECTION_MEMORY_LIMIT);
 * past it, 0.9.75 prepares a 431 and then waits for the connection to time out. */
#define QUERY_PARAMS_MAX 256U

/* ------------------------------------------------------------------ registry basics */

Store *registry_store(Registry *r) {
        return r->store;
}

Config *registry_config(Registry *r) {
        return r->config;
}

Gc *registry_gc(Registry *r) {
        return r->gc;
}

Governance *registry_governance(Registry *r) {
        return r->governance;
}

const char *registry_scheme(Registry *r) {
        return r->tls ? "https" : "http";
}

void registry_reload(Registry *r) {
        if (r->tls)
                (void) tls_reload(r->tls); /* logs what it loaded, or why it kept the old */
        (void) auth_reload(r->auth);       /* the same for the users of auth.htpasswd */
}

void *registry_feature_state(Registry *r, const char *feature) {
        void *s = NULL;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->n_features; i++)
                if (streq(r->features[i].name, feature)) {
                        s = r->features[i].state;
                        break;
                }
        pthread_mutex_unlock(&r->lock);
        return s;
}

void registry_set_feature_state(Registry *r, const char *feature, void *state) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->n_features; i++)
                if (streq(r->features[i].name, feature)) {
                        r->features[i].state = state;
                        goto done;
                }
        Feature *n = realloc(r->features, (r->n_features + 1) * sizeof(Feature));
        if (!n) {
                log_oom();
                goto done;
        }
        r->features = n;
        r->features[r->n_features].name = strdup(feature);
        r->features[r->n_features].state = state;
        if (r->features[r->n_features].name)
                r->n_features++;
done:
        pthread_mutex_unlock(&r->lock);
}

void registry_v1_register(Registry *r, const char *method, const char *prefix, V1Access access, V1HandlerFn fn) {
        assert(access.action && (acl_action_is_valid(access.action) || streq(access.action, "promote") ||
                                 streq(access.action, "rollback")));
        V1Handler *n = realloc(r->v1, (r->n_v1 + 1) * sizeof(V1Handler));
        if (!n) {
                log_oom();
                return;
        }
        r->v1 = n;
        /* "/gc/" and "gc" are the same prefix */
        while (*prefix == '/')
                prefix++;
        char *p = strdup(prefix);
        char *m = strdup(method);
        if (!p || !m) {
                free(p);
                free(m);
                log_oom();
                return;
        }
        size_t l = strlen(p);
        while (l > 0 && p[l - 1] == '/')
                p[--l] = 0;
        r->v1[r->n_v1++] = (V1Handler) { .method = m, .prefix = p, .access = access, .fn = fn };
}

/* ------------------------------------------------------------------ /v1/registry/ */

const char *v1_request_query(const V1Request *req, const char *key) {
        Request *rq = req->conn;
        return rq ? request_query(rq, key) : NULL;
}

int v1_error(V1Response *resp, int status, const char *code, json_t *detail, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_decref(resp->body);
        resp->status = status;
        resp->body = registry_error_body(code, detail, msg);
        return 0;
}

int v1_error_errno(V1Response *resp, int r, const char *code, const char *fmt, ...) {
        char what[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        switch (-r) {
        case ENOSPC:
        case EDQUOT:
                return v1_error(resp, 507, "STORAGE_FULL", NULL, "%s: storage is full (%s)", what, strerror(-r));
        case EROFS:
                return v1_error(resp, 503, "READ_ONLY", NULL, "%s: storage is read-only", what);
        default:
                return v1_error(resp, 500, code, NULL, "%s: %s", what, strerror(r < 0 ? -r : r));
        }
}

/* A prefix matches whole path components: "holds" matches "holds" and "holds/x", not "holdsx". */
static bool v1_prefix_matches(const char *prefix, const char *path) {
        size_t l = strlen(prefix);
        if (l == 0)
                return true;
        return strncmp(path, prefix, l) == 0 && (path[l] == 0 || path[l] == '/');
}

/* GET /v1/registry/routes: every route and the action it needs, for operators writing rules
 * (and the ACL matrix test, which fails on a route it does not know). */
static const char *const v1_repo_source_names[_V1_REPO_SOURCE_MAX] = {
        [V1_REPO_NONE] = "registry-wide", [V1_REPO_BODY] = "body repo", [V1_REPO_QUERY] = "?repo=",
};

static int v1_routes(Registry *reg, const V1Request *req, V1Response *resp) {
        json_t *v1 = json_array();
        for (size_t i = 0; v1 && i < reg->n_v1; i++) {
                const V1Handler *h = &reg->v1[i];
                const char *action = h->access.action;
                _cleanup_free_ char *shown = streq(action, "promote") ? strdup("promote:<env>:<pointer> (from \"to\")")
                                             : streq(action, "rollback") ? strdup("rollback:<env> (from \"to\")")
                                                                         : strdup(action);
                json_array_append_new(v1, json_pack("{s:s, s:s+, s:s, s:s}", "method", h->method, "path", "/v1/registry/",
                                                    h->prefix, "action", strempty(shown), "repository",
                                                    v1_repo_source_names[h->access.repo]));
        }
        resp->body = json_pack("{s:o, s:o, s:[s,s,s]}", "v1", v1, "v2", oci_routes_json(), "open", "/healthz", "/readyz",
                               "/metrics (auth.metrics)");
        return resp->body ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ long polls */

static void waiting_resume_locked(Registry *r, size_t i) {
        Request *req = r->waiting[i];
        r->waiting[i] = r->waiting[--r->n_waiting];
        MHD_resume_connection(req->conn);
}

void registry_v1_wake(Registry *r) {
        pthread_mutex_lock(&r->lock);
        r->wake_gen++;
        while (r->n_waiting > 0)
                waiting_resume_locked(r, r->n_waiting - 1);
        pthread_mutex_unlock(&r->lock);
}

uint64_t registry_v1_wake_generation(Registry *r) {
        pthread_mutex_lock(&r->lock);
        uint64_t g = r->wake_gen;
        pthread_mutex_unlock(&r->lock);
        return g;
}

/* Suspends the connection until registry_v1_wake() or the deadline: 1 if suspended, 0 if a
 * wake came since gen was read (look again), -errno if it cannot wait (stopping, no memory). */
static int request_wait(Request *req, uint64_t deadline, uint64_t gen) {
        Registry *r = req->reg;
        int k = 1;
        pthread_mutex_lock(&r->lock);
        if (r->wake_gen != gen)
                k = 0;
        else if (r->stopping || !r->wait_started)
                k = -ESHUTDOWN;
        else if (r->n_waiting >= r->allocated_waiting) {
                size_t na = r->allocated_waiting ? r->allocated_waiting * 2 : 16;
                Request **n = realloc(r->waiting, na * sizeof *n);
                if (!n)
                        k = -ENOMEM;
                else
                        r->waiting = n, r->allocated_waiting = na;
        }
        if (k > 0) {
                req->wait_deadline_ns = deadline;
                req->suspended = true;
                r->waiting[r->n_waiting++] = req;
                /* under the lock: a waker cannot resume it before it is suspended */
                MHD_suspend_connection(req->conn);
                pthread_cond_signal(&r->wait_cond);
        }
        pthread_mutex_unlock(&r->lock);
        return k;
}

/* Resumes the long polls whose deadline has come; all of them when stopping. */
static void *wait_thread(void *userdata) {
        Registry *r = userdata;
        pthread_mutex_lock(&r->lock);
        while (!r->stopping) {
                uint64_t now = clock_monotonic_ns(), next = now + 3600 * NSEC_PER_SEC;
                for (size_t i = 0; i < r->n_waiting;) {
                        if (r->waiting[i]->wait_deadline_ns <= now) {
                                waiting_resume_locked(r, i);
                                continue;
                        }
                        next = MIN(next, r->waiting[i]->wait_deadline_ns);
                        i++;
                }
                struct timespec ts = { .tv_sec = (time_t) (next / NSEC_PER_SEC), .tv_nsec = (long) (next % NSEC_PER_SEC) };
                pthread_cond_timedwait(&r->wait_cond, &r->lock, &ts);
        }
        while (r->n_waiting > 0)
                waiting_resume_locked(r, r->n_waiting - 1);
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

static void v1_required(const V1Access *acc, const V1Request *vreq, char *action, size_t alen, char *repo, size_t rlen) {
        const char *r = NULL;
        if (acc->repo == V1_REPO_BODY)
                r = json_string_value(json_object_get(vreq->body, "repo"));
        else if (acc->repo == V1_REPO_QUERY)
                r = v1_request_query(vreq, "repo");
        snprintf(repo, rlen, "%s", r && repo_name_is_valid(r) ? r : "");
        const char *to = json_string_value(json_object_get(vreq->body, "to"));
        if (!to || (!streq(acc->action, "promote") && !streq(acc->action, "rollback"))) {
                snprintf(action, alen, "%s", acc->action);
                return;
        }
        /* "prod:stable@sha256:..." -> env prod, pointer stable; a bare env is its candidate */
        char env[64] = "", pointer[16] = "candidate";
        size_t el = strcspn(to, ":@");
        snprintf(env, sizeof env, "%.*s", (int) MIN(el, sizeof env - 1), to);
        if (to[el] == ':')
                snprintf(pointer, sizeof pointer, "%.*s", (int) strcspn(to + el + 1, "@"), to + el + 1);
        if (streq(acc->action, "promote"))
                snprintf(action, alen, "promote:%s:%s", env, pointer);
        else
                snprintf(action, alen, "rollback:%s", env);
        if (!acl_action_is_valid(action))
                snprintf(action, alen, "%s", acc->action); /* a bad "to": the handler says why */
}

static void v1_finish(Request *req) {
        Registry *reg = req->reg;
        const char *path = startswith(req->url, "/v1/registry");
        path = path ? path : "";
        while (*path == '/')
                path++;
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return request_reply_error(req, 500, "UNKNOWN", NULL, "out of memory");
        size_t pl = strlen(p);
        while (pl > 0 && p[pl - 1] == '/')
                p[--pl] = 0;

        if (req->body_too_large)
                return request_reply_error(req, 413, "SIZE_INVALID", NULL, "request body exceeds %" PRIu64 " bytes",
                                           reg->config->max_json_body_bytes);

        const V1Handler *best = NULL;
        bool path_known = false;
        for (size_t i = 0; i < reg->n_v1; i++) {
                const V1Handler *h = &reg->v1[i];
                if (!v1_prefix_matches(h->prefix, p))
                        continue;
                path_known = true;
                if (!streq(h->method, req->method))
                        continue;
                if (!best || strlen(h->prefix) > strlen(best->prefix))
                        best = h;
        }
        if (!best) {
                if (path_known)
                        return request_reply_error(req, 405, "UNSUPPORTED", NULL, "method %s not allowed on /v1/registry/%s",
                                                   req->method, p);
                return request_reply_error(req, 404, "NOT_FOUND", NULL, "no such endpoint: /v1/registry/%s", p);
        }

        _cleanup_(json_decrefp) json_t *body = NULL;
        if (req->body_len > 0) {
                json_error_t je;
                body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
                if (!body)
                        return request_reply_error(req, 400, "INVALID_JSON", NULL,
                                                   "malformed JSON body at line %d, column %d: %s", je.line, je.column,
                                                   je.text);
                if (!json_is_object(body))
                        return request_reply_error(req, 400, "INVALID_JSON", NULL, "the request body must be a JSON object");
        }

        V1Request vreq = {
                .method = req->method,
                .path = p,
                .body = body,
                .actor = req->actor,
                .conn = req,
                .wait_deadline_ns = req->wait_deadline_ns,
        };
        char action[96], repo[REPO_NAME_MAX + 1];
        v1_required(&best->access, &vreq, action, sizeof action, repo, sizeof repo);
        if (!request_authorize(req, repo, action))
                return;
        V1Response vresp;
        int r;
        for (;;) {
                vresp = (V1Response) { .status = 200 };
                r = best->fn(reg, &vreq, &vresp);
                if (r < 0 || vresp.body || vresp.wait_until_ns == 0)
                        break;
                int w = request_wait(req, vresp.wait_until_ns, vresp.wait_generation);
                if (w > 0)
                        return; /* suspended: called again when woken or at the deadline */
                /* a wake came meanwhile (w == 0): look again; cannot wait (w < 0): answer now */
                vreq.wait_deadline_ns = w < 0 ? 1 : vresp.wait_until_ns;
        }
        if (r < 0 && !vresp.body) {
                log_error_errno(r, "%s %s: %m", req->method, req->url);
                v1_error_errno(&vresp, r, "UNKNOWN", "%s /v1/registry/%s", req->method, p);
        }
        if (vresp.status <= 0)
                vresp.status = 200;
        if (vresp.status == 204) {
                json_decref(vresp.body);
                return request_reply(req, 204, NULL);
        }
        request_reply_json(req, (unsigned) vresp.status, vresp.body);
}

static void v1_begin(Request *req) {
        req->route = "v1";
        uint64_t limit = req->reg->config->max_json_body_bytes;
        const char *cl = request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > limit) {
                req->body_too_large = true;
                /* A client that waits for 100 Continue gets the refusal instead and sends nothing.
                 * Others are answered at the end (after dropping the body), so that a client that
                 * reads only once it has sent everything sees it too. */
                const char *expect = request_header(req, MHD_HTTP_HEADER_EXPECT);
                if (expect && strcasecmp(expect, "100-continue") == 0) {
                        req->close_now = true;
                        return request_reply_error(req, 413, "SIZE_INVALID", NULL,
                                                   "request body of %s bytes exceeds %" PRIu64 " bytes", cl, limit);
                }
        }
        req->body_mode = BODY_BUFFER;
        req->body_limit = limit;
        req->finish = v1_finish;
}

/* ------------------------------------------------------------------ health, metrics */

static void health_begin(Request *req) {
        req->route = "health";
        if (!streq(req->method, "GET") && !streq(req->method, "HEAD"))
                return request_reply_error(req, 405, "UNSUPPORTED", NULL, "method %s not allowed", req->method);
        if (streq(req->url, "/healthz")) {
                req->resp_bytes = 3;
                return request_reply(req, 200, MHD_create_response_from_buffer(3, (void *) "ok\n", MHD_RESPMEM_PERSISTENT));
        }
        int r = store_check_ready(req->reg->store);
        if (r < 0) {
                char msg[256];
                int l = snprintf(msg, sizeof(msg), "not ready: %s\n", strerror(-r));
                req->resp_bytes = (uint64_t) l;
                return request_reply(req, 503, response_buffer_copy(msg, (size_t) l));
        }
        req->resp_bytes = 6;
        request_reply(req, 200, MHD_create_response_from_buffer(6, (void *) "ready\n", MHD_RESPMEM_PERSISTENT));
}

static bool client_is_loopback(const Request *req) {
        return startswith(req->client, "127.") || streq(req->client, "::1") || startswith(req->client, "::ffff:127.");
}

static void metrics_begin(Request *req) {
        req->route = "metrics";
        if (!streq(req->method, "GET") && !streq(req->method, "HEAD"))
                return request_reply_error(req, 405, "UNSUPPORTED", NULL, "method %s not allowed", req->method);
        /* auth.metrics: "open", "loopback" (open to loopback clients, the metrics action for others) or "acl" */
        const char *policy = json_string_value(json_object_get(json_object_get(req->reg->config->root, "auth"), "metrics"));
        bool open = policy ? streq(policy, "open") || (streq(policy, "loopback") && client_is_loopback(req))
                           : client_is_loopback(req);
        if (!open && !request_authorize(req, "", "metrics"))
                return;
        governance_metrics_collect(req->reg->governance);
        char *text = metrics_render();
        if (!text)
                return request_reply_error(req, 500, "UNKNOWN", NULL, "out of memory");
        size_t len = strlen(text);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return;
        }
        req->resp_bytes = len;
        response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        request_reply(req, 200, resp);
}

/* ------------------------------------------------------------------ request life cycle */

static void request_free(Request *req) {
        if (!req)
                return;
        if (req->upload)
                store_upload_release(req->reg->store, req->upload);
        if (req->deferred)
                MHD_destroy_response(req->deferred);
        free(req->body);
        free(req->repo);
        free(req->ref);
        free(req->upload_uuid);
        free(req->digest);
        identity_done(&req->identity);
        free(req);
}

static void request_client(Request *req) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        snprintf(req->client, sizeof(req->client), "unknown");
        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;
                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, req->client,
                                  sizeof(req->client));
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, req->client,
                                  sizeof(req->client));
        }
}

/* Behind a trusted proxy (auth.trusted_proxies) the client is the last address the proxy
 * appended to X-Forwarded-For, and the realm of the challenge takes X-Forwarded-Proto/-Host.
 * From anyone else these headers are ignored. */
static void request_proxied(Request *req) {
        if (!auth_trusted_proxy(req->reg->auth, req->client))
                return;
        const char *xff = request_header(req, "X-Forwarded-For");
        if (xff && *xff) {
                const char *last = strrchr(xff, ',');
                last = last ? last + 1 : xff;
                while (*last == ' ')
                        last++;
                char addr[64];
                snprintf(addr, sizeof addr, "%.*s", (int) strcspn(last, " "), last);
                struct in6_addr buf;
                if (inet_pton(AF_INET, addr, &buf) == 1 || inet_pton(AF_INET6, addr, &buf) == 1)
                        snprintf(req->client, sizeof req->client, "%s", addr);
        }
        req->proxied = true;
}

void request_actor(Request *req) {
        if (auth_enabled(req->reg->auth)) {
                /* who was authenticated, and from where; X-Plura-Actor is not believed */
                char who[HTTP_AUTH_USER_MAX + 64];
                identity_format(&req->identity, who, sizeof who);
                snprintf(req->actor, sizeof(req->actor), "%s from %s", who, req->client);
                return;
        }
        const char *a = request_header(req, "X-Plura-Actor");
        snprintf(req->actor, sizeof(req->actor), "%s", a && *a ? a : req->client);
        /* a verified client certificate (mTLS) names the actor */
        char user[sizeof(req->actor)];
        if (tls_client_user(req->reg->tls, req->conn, user, sizeof user) > 0)
                snprintf(req->actor, sizeof(req->actor), "%s", user);
}

/* Who is asking, from an Authorization header value (may be NULL): false if the request was
 * answered (bad credentials, too many failures). */
bool request_identify_from(Request *req, const char *authorization) {
        Registry *reg = req->reg;
        char cert_user[HTTP_AUTH_USER_MAX + 1] = "";
        if (tls_client_user(reg->tls, req->conn, cert_user, sizeof cert_user) <= 0)
                cert_user[0] = 0;
        AuthRequest rq = {
                .authorization = authorization,
                .client = req->client,
                .cert_user = cert_user,
        };
        unsigned retry = 0;
        char reason[256] = "";
        switch (auth_identify(reg->auth, &rq, &req->identity, &retry, reason, sizeof reason)) {
        case AUTH_IDENTIFIED:
                return true;
        case AUTH_RATE_LIMITED: {
                char ra[16];
                snprintf(ra, sizeof ra, "%u", retry);
                request_reply_error_header(req, 429, "TOOMANYREQUESTS", "Retry-After", ra, "%s", reason);
                return false;
        }
        default:
                request_reply_unauthorized(req, NULL, "invalid_token", "%s", reason);
                return false;
        }
}

static bool request_identify(Request *req) {
        if (!auth_enabled(req->reg->auth))
                return true;
        return request_identify_from(req, request_header(req, MHD_HTTP_HEADER_AUTHORIZATION));
}

static void dispatch_begin(Request *req) {
        const char *u = req->url;
        if (startswith(u, "/v2/") || streq(u, "/v2"))
                return oci_begin(req);
        if (streq(u, "/healthz") || streq(u, "/readyz"))
                return health_begin(req);
        if (streq(u, "/metrics"))
                return metrics_begin(req);
        if (streq(u, "/v1/registry") || startswith(u, "/v1/registry/"))
                return v1_begin(req);
        req->route = "other";
        request_reply_error(req, 404, "NOT_FOUND", NULL, "no such endpoint: %s", u);
}

/* Returns false to drop the connection. */
static bool body_consume(Request *req, const char *data, size_t n) {
        switch (req->body_mode) {
        case BODY_BUFFER:
                if (req->body_too_large || req->body_len + n > req->body_limit) {
                        req->body_too_large = true;
                        req->body_discarded += n;
                        return req->body_discarded <= DISCARD_MAX;
                }
                if (req->body_len + n > req->body_cap) {
                        size_t cap = MAX(req->body_cap * 2, req->body_len + n);
                        cap = MIN(cap, req->body_limit);
                        char *b = realloc(req->body, cap + 1);
                        if (!b)
                                return false;
                        req->body = b;
                        req->body_cap = cap;
                }
                memcpy(req->body + req->body_len, data, n);
                req->body_len += n;
                req->body[req->body_len] = 0;
                return true;
        case BODY_UPLOAD:
                if (req->upload && req->upload_error == 0) {
                        int r = upload_write(req->upload, data, n);
                        if (r < 0) {
                                log_error_errno(r, "upload %s: write: %m", upload_uuid(req->upload));
                                req->upload_error = r;
                        }
                }
                return true;
        default:
                req->body_discarded += n;
                return true;
        }
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once the request line is read, before MHD parses the
 * query into its fixed per-connection pool. Creates the request (MHD hands the pointer to every
 * later callback). A query with more than QUERY_PARAMS_MAX arguments would exhaust that pool,
 * and MHD 0.9.75 then never answers (it prepares a 431, then overwrites the connection state
 * and waits for a timeout): such a query is cut off here, in the line buffer that MHD itself
 * NUL-terminates at the '?' right after this call, and the request is refused with a 400. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c) {
        Request *req = calloc(1, sizeof(Request));
        if (!req)
                return NULL;
        req->reg = cls;
        req->conn = c;
        req->start_ns = clock_monotonic_ns();
        req->route = "other";
        char *q = uri ? strchr(uri, '?') : NULL;
        /* MHD unescapes %00 in the path into a NUL: "manifests/nul%00evil" would read as the tag
         * "nul". No name, tag, digest or /v1 path has a NUL: such a request is refused. */
        for (const char *p = uri; p && *p && p != q; p++)
                if (p[0] == '%' && p[1] == '0' && p[2] == '0') {
                        req->nul_in_path = true;
                        break;
                }
        if (q && q[1]) {
                unsigned n = 1;
                for (const char *p = q + 1; *p; p++)
                        n += *p == '&' || *p == ';';
                if (n > QUERY_PARAMS_MAX) {
                        req->query_params = n;
                        q[1] = 0; /* MHD's line buffer: writable, see above */
                }
        }
        return req;
}

/* Refusals of the request head as a whole, before any route: the connection is closed after the
 * answer, since what follows the head cannot be read reliably. Returns true if refused. */
static bool request_head_refused(Request *req) {
        if (req->nul_in_path) {
                request_reply_error(req, 400, "NAME_INVALID", NULL, "the path contains an escaped NUL byte (%%00)");
                return true;
        }
        if (req->query_params > 0) {
                req->close_now = true;
                request_reply_error(req, 400, "UNSUPPORTED", NULL, "too many query parameters: %u (at most %u)",
                                    req->query_params, QUERY_PARAMS_MAX);
                return true;
        }
        const char *te = request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (te && strcasecmp(te, "chunked") != 0) {
                req->close_now = true;
                request_reply_error(req, 400, "UNSUPPORTED", NULL,
                                    "unsupported Transfer-Encoding \"%.64s\": only \"chunked\" is accepted", te);
                return true;
        }
        if (te && request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
                req->close_now = true;
                request_reply_error(req, 400, "UNSUPPORTED", NULL,
                                    "a request must not have both Transfer-Encoding and Content-Length");
                return true;
        }
        return false;
}

static void request_begin(Request *req, const char *url, const char *method) {
        Registry *reg = req->reg;
        req->url = url;
        req->method = method;
        req->begun = true;
        pthread_mutex_lock(&reg->lock);
        reg->inflight++;
        pthread_mutex_unlock(&reg->lock);
        /* the connection's header timeout (see registry_start) gives way to the request's */
        (void) MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT, reg->config->http_timeout_s);
        req->in_begin = true;
        request_client(req);
        request_proxied(req);
        if (request_head_refused(req))
                ;
        else if (request_identify(req)) {
                request_actor(req);
                dispatch_begin(req);
        } else
                /* refused credentials (401, 429): no identity, but the log says from where */
                snprintf(req->actor, sizeof(req->actor), "unauthenticated from %s", req->client);
        req->in_begin = false;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
        Request *req = *con_cls;
        if (!req)
                return MHD_NO; /* uri_log() ran out of memory */
        if (!req->begun) {
                request_begin(req, url, method);
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->queued)
                        return MHD_YES;
                if (req->deferred) {
                        req->body_discarded += n;
                        return req->body_discarded <= DISCARD_MAX ? MHD_YES : MHD_NO;
                }
                return body_consume(req, upload_data, n) ? MHD_YES : MHD_NO;
        }

        req->suspended = false; /* a long poll woken: its handler runs again */
        if (req->deferred) {
                struct MHD_Response *resp = steal_pointer(&req->deferred);
                request_reply(req, req->deferred_status, resp);
        } else if (!req->queued && req->finish)
                req->finish(req);
        if (!req->queued && !req->suspended)
                request_reply_error(req, 500, "UNKNOWN", NULL, "internal error: no response");
        return MHD_YES;
}

static void access_log(Request *req, enum MHD_RequestTerminationCode toe, double secs) {
        static const char *const toe_names[] = {
                [MHD_REQUEST_TERMINATED_COMPLETED_OK] = "",
                [MHD_REQUEST_TERMINATED_WITH_ERROR] = " (aborted: error)",
                [MHD_REQUEST_TERMINATED_TIMEOUT_REACHED] = " (aborted: timeout)",
                [MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN] = " (aborted: shutdown)",
                [MHD_REQUEST_TERMINATED_READ_ERROR] = " (aborted: truncated request)",
                [MHD_REQUEST_TERMINATED_CLIENT_ABORT] = " (aborted: client)",
        };
        char ts[32];
        char line[2048];
        const char *why = (unsigned) toe < ELEMENTSOF(toe_names) ? toe_names[toe] : " (aborted)";
        /* how verified credentials came: a bearer token, or Basic (a password or an API token) */
        const char *how = !req->identity.credentials ? "" : req->identity.bearer ? " (bearer)" : " (basic)";
        int l = snprintf(line, sizeof(line), "%s access: %s %s %u %" PRIu64 " %.1fms actor=%s%s%s\n",
                         format_timestamp(ts, sizeof(ts), clock_now_ns()), req->method, req->url, req->status,
                         req->resp_bytes, secs * 1000.0, req->actor, how, why);
        if (l > 0)
                fwrite(line, 1, MIN((size_t) l, sizeof(line) - 1), stderr);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        Registry *reg = cls;
        Request *req = *con_cls;
        if (!req)
                return;
        *con_cls = NULL;
        if (!req->begun) {
                /* MHD refused the request head itself (e.g. 431) before our handler saw it */
                request_free(req);
                return;
        }
        /* between requests a keep-alive connection waits at most the header timeout (the others
         * close now) */
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
                (void) MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, reg->config->http_header_timeout_s);

        /* A truncated PATCH/PUT: what arrived stays in the session (status reports it), nothing
         * is committed. */
        request_release_upload(req);

        double secs = (double) (clock_monotonic_ns() - req->start_ns) / 1e9;
        unsigned status = req->queued ? req->status : 499; /* nginx's "client closed request" */
        char labels[256];
        snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%u\"", req->route,
                 req->method ? req->method : "", status);
        metrics_counter_add("plura_http_requests_total", labels, 1);
        snprintf(labels, sizeof(labels), "route=\"%s\"", req->route);
        metrics_histogram_observe("plura_http_request_duration_seconds", labels, secs);
        if (!req->queued)
                req->status = status;
        if (reg->config->access_log)
                access_log(req, toe, secs);

        request_free(req);

        pthread_mutex_lock(&reg->lock);
        reg->inflight--;
        if (reg->stopping && reg->inflight == 0)
                pthread_cond_broadcast(&reg->cond);
        pthread_mutex_unlock(&reg->lock);
}

/* MHD_OPTION_NOTIFY_CONNECTION: the listener counts connections per client while MHD has them. */
static void connection_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
        Registry *reg = cls;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                listener_connection_opened(reg->listener, sa);
                if (reg->tls)
                        tls_connection_started(reg->tls, c, socket_context);
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                if (reg->tls)
                        tls_connection_closed(reg->tls, socket_context);
                listener_connection_closed(reg->listener, sa);
        }
}

static int connection_handoff(void *userdata, int fd, const struct sockaddr *addr, socklen_t addrlen) {
        Registry *reg = userdata;
        /* MHD closes fd when it cannot take it */
        return MHD_add_connection(reg->daemon, fd, addr, addrlen) == MHD_YES ? 0 : -errno;
}

/* With tls.cert the daemon speaks only TLS (1.2+, see tls.c), each handshake with the credentials
 * current then. It polls instead of using epoll: libmicrohttpd 0.9.75 leaves a connection whose
 * handshake waits for the client on its epoll ready list, and the worker spins until the client
 * answers (3.4 ms of CPU per handshake in tools/bench/bench-tls.sh, 0.7 ms with poll; TLS blob
 * pulls 1.5x faster; docs/BENCHMARKS.md). */
static const struct MHD_OptionItem *daemon_tls_options(Registry *r, unsigned *flags) {
        static const struct MHD_OptionItem none[] = { { MHD_OPTION_END, 0, NULL } };
        if (!r->tls)
                return none;
        *flags = (*flags & ~(unsigned) MHD_USE_EPOLL) | MHD_USE_POLL | MHD_USE_TLS;
        return tls_mhd_options(r->tls);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
        char msg[1024];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        size_t l = strlen(msg);
        while (l > 0 && msg[l - 1] == '\n')
                msg[--l] = 0;
        /* MHD's words for every failed TLS handshake */
        if (streq(msg, "Error: received handshake message out of context."))
                return (void) log_info("http: a TLS handshake failed (a plain-HTTP client, an old TLS version or "
                                       "cipher, or a refused client certificate)");
        log_warning("http: %s", msg);
}

/* ------------------------------------------------------------------ purge thread */

static void *purge_thread(void *userdata) {
        Registry *r = userdata;
        pthread_mutex_lock(&r->lock);
        while (!r->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += PURGE_INTERVAL_S;
                while (!r->stopping && pthread_cond_timedwait(&r->purge_cond, &r->lock, &ts) != ETIMEDOUT)
                        ;
                if (r->stopping)
                        break;
                pthread_mutex_unlock(&r->lock);
                int n = store_upload_purge(r->store, r->config->upload_purge_after_ns);
                if (n < 0)
                        log_warning_errno(n, "purging abandoned uploads: %m");
                else if (n > 0)
                        log_info("purged %d abandoned upload session(s)", n);
                pthread_mutex_lock(&r->lock);
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

/* ------------------------------------------------------------------ life cycle */

static void declare_metrics(void) {
        metrics_declare("plura_http_requests_total", METRIC_COUNTER, "HTTP requests by route, method and status.",
                        NULL, 0);
        metrics_declare("plura_http_request_duration_seconds", METRIC_HISTOGRAM, "HTTP request latency by route.",
                        NULL, 0);
}

int registry_new(const RegistryOptions *o, Registry **ret) {
        if (!o || !o->config || !o->store || !o->governance || !o->gc)
                return -EINVAL;
        Registry *r = calloc(1, sizeof(Registry));
        if (!r)
                return -ENOMEM;
        r->config = o->config;
        r->store = o->store;
        r->governance = o->governance;
        r->gc = o->gc;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_cond_init(&r->cond, &ca);
        pthread_cond_init(&r->purge_cond, &ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->wait_cond, &ca);
        pthread_condattr_destroy(&ca);
        if (o->mount && !(r->mount = strdup(o->mount))) {
                registry_free(r);
                return -ENOMEM;
        }

        char err[512] = "";
        int k = auth_new(r->store, r->config, &r->auth, err, sizeof err);
        if (k < 0) {
                registry_free(r);
                if (err[0])
                        log_error("auth: %s", err);
                return log_error_errno(k, "cannot set up authentication: %m");
        }

        declare_metrics();
        v1_gc_register(r);
        v1_governance_register(r);
        v1_worm_register(r);
        v1_tokens_register(r);
        registry_v1_register(r, "GET", "routes", (V1Access) { "admin", V1_REPO_NONE }, v1_routes);

        /* tls.cert set: certificate, key and client CA load now; one that cannot be used refuses the start */
        k = tls_new(config_section(r->config, "tls"), &r->tls);
        if (k < 0) {
                registry_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

static bool listen_is_loopback(const struct sockaddr_storage *sa) {
        if (sa->ss_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *) (const void *) sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr;
                return IN6_IS_ADDR_LOOPBACK(a) ||
                       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }
        return false;
}

static int resolve_listen(const char *host, uint16_t port, struct sockaddr_storage *ret, bool *ret_ipv6) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        char portstr[8];
        snprintf(portstr, sizeof(portstr), "%u", port);
        int k = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
        if (k != 0) {
                log_error("cannot resolve listen address '%s': %s", strna(host), gai_strerror(k));
                return -EADDRNOTAVAIL;
        }
        memcpy(ret, res->ai_addr, res->ai_addrlen);
        *ret_ipv6 = res->ai_family == AF_INET6;
        freeaddrinfo(res);
        return 0;
}

int registry_start(Registry *r, uint16_t *ret_port) {
        Config *c = r->config;
        struct sockaddr_storage sa = {};
        bool ipv6 = false;
        int k = resolve_listen(c->listen_host, c->listen_port, &sa, &ipv6);
        if (k < 0)
                return k;

        if (!auth_enabled(r->auth) && !listen_is_loopback(&sa)) {
                json_t *anon = json_object_get(json_object_get(c->root, "auth"), "allow_anonymous_remote");
                if (!json_is_true(anon)) {
                        log_error("refusing to listen on %s:%u without authentication: anyone who reaches it could push, "
                                  "delete, promote and run GC. Configure auth.htpasswd and auth.acl (README: \"Exposing "
                                  "plura to a team\"), listen on 127.0.0.1, or set auth.allow_anonymous_remote: true",
                                  c->listen_host, c->listen_port);
                        return -EACCES;
                }
                log_warning("listening on %s:%u without authentication (auth.allow_anonymous_remote)", c->listen_host,
                            c->listen_port);
        }

        unsigned max_connections = c->http_max_connections ? c->http_max_connections : 1024;
        ListenerOptions lo = {
                .addr = (const struct sockaddr *) &sa,
                .addrlen = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                .max_connections = max_connections,
                .max_per_client = c->http_max_connections_per_client,
                .header_timeout_s = c->http_header_timeout_s,
                .sniff = !r->tls, /* a TLS connection starts with a ClientHello: MHD takes it at once */
                .handoff = connection_handoff,
                .userdata = r,
        };
        /* bound first: a port in use fails here, before anything else starts */
        k = listener_new(&lo, &r->listener);
        if (k == -EADDRINUSE)
                return log_error_errno(k, "cannot listen on %s:%u: address in use (is another server running there?)",
                                       c->listen_host, c->listen_port);
        if (k < 0)
                return log_error_errno(k, "cannot listen on %s:%u: %m", c->listen_host, c->listen_port);
        r->port = listener_port(r->listener);
        snprintf(r->hostport, sizeof r->hostport, strchr(c->listen_host, ':') ? "[%s]:%u" : "%s:%u", c->listen_host, r->port);

        unsigned threads = c->http_threads;
        if (threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                threads = (unsigned) (n > 0 ? 2 * n : 2);
        }
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_NO_LISTEN_SOCKET;
        const struct MHD_OptionItem *tls_opts = daemon_tls_options(r, &flags);
        struct MHD_OptionItem opts[] = {
                { MHD_OPTION_THREAD_POOL_SIZE, threads, NULL },
                { MHD_OPTION_CONNECTION_LIMIT, max_connections, NULL },
                /* until a request's head is read (and between keep-alive requests); a request then
                 * gets http.timeout (request_begin) */
                { MHD_OPTION_CONNECTION_TIMEOUT, c->http_header_timeout_s, NULL },
                { MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY_LIMIT, NULL },
                { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) request_completed, r },
                { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) connection_notify, r },
                { MHD_OPTION_URI_LOG_CALLBACK, (intptr_t) uri_log, r },
                { MHD_OPTION_END, 0, NULL },
        };
        r->daemon = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, r,
                                     /* first, so that option parsing errors reach it too */
                                     MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, r, MHD_OPTION_ARRAY, opts,
                                     MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
        if (!r->daemon) {
                r->listener = listener_free(r->listener);
                k = errno > 0 ? -errno : -EIO;
                return log_error_errno(k, "cannot start the HTTP server: %m");
        }
        k = listener_start(r->listener);
        if (k < 0) {
                MHD_stop_daemon(r->daemon);
                r->daemon = NULL;
                r->listener = listener_free(r->listener);
                return log_error_errno(k, "cannot start the listener thread: %m");
        }

        pthread_mutex_lock(&r->lock);
        r->stopping = false;
        pthread_mutex_unlock(&r->lock);
        k = pthread_create(&r->purge_thread, NULL, purge_thread, r);
        if (k != 0)
                log_warning_errno(k, "cannot start the upload purge thread: %m");
        else
                r->purge_started = true;
        k = pthread_create(&r->wait_thread, NULL, wait_thread, r);
        pthread_mutex_lock(&r->lock);
        r->wait_started = k == 0; /* without it, long polls answer at once */
        pthread_mutex_unlock(&r->lock);
        if (k != 0)
                log_warning_errno(k, "cannot start the long-poll thread: %m");

        if (r->mount) {
                /* plura serve --mount: the FUSE view in-process (fusefs/fusefs.h) */
                FusefsOptions fo;
                char err[256] = "";
                Fusefs *fs = NULL;
                fusefs_options_init(&fo);
                if (fusefs_options_from_json(config_section(c, "fuse"), &fo, err, sizeof(err)) < 0)
                        log_warning("fuse: %s", err);
                k = fusefs_start_in_process(r->store, r->mount, &fo, &fs);
                if (k < 0)
                        log_error_errno(k, "cannot serve the FUSE view on %s: %m", r->mount);
                else
                        registry_set_feature_state(r, "fusefs", fs);
        }

        if (ret_port)
                *ret_port = r->port;
        return 0;
}

void registry_stop(Registry *r) {
        if (!r || !r->daemon)
                return;
        /* Stop accepting; requests in flight (and those already on open connections) finish. */
        listener_stop(r->listener);

        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_broadcast(&r->purge_cond);
        pthread_cond_broadcast(&r->wait_cond); /* long polls answer now */
        uint64_t deadline = clock_monotonic_ns() + DRAIN_TIMEOUT_NS;
        while (r->inflight > 0) {
                uint64_t now = clock_monotonic_ns();
                if (now >= deadline) {
                        log_warning("stopping with %u request(s) still in flight", r->inflight);
                        break;
                }
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50 * (long) NSEC_PER_MSEC;
                if (ts.tv_nsec >= (long) NSEC_PER_SEC) {
                        ts.tv_sec++;
                        ts.tv_nsec -= (long) NSEC_PER_SEC;
                }
                pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        }
        pthread_mutex_unlock(&r->lock);

        if (r->purge_started) {
                pthread_join(r->purge_thread, NULL);
                r->purge_started = false;
        }
        if (r->wait_started) {
                pthread_join(r->wait_thread, NULL);
                pthread_mutex_lock(&r->lock);
                r->wait_started = false;
                pthread_mutex_unlock(&r->lock);
        }
        MHD_stop_daemon(r->daemon);
        r->daemon = NULL;
        r->listener = listener_free(r->listener); /* after MHD: its close notifications count down */

        Fusefs *fs = registry_feature_state(r, "fusefs");
        if (fs) {
                fusefs_stop_in_process(fs); /* unmounts */
                registry_set_feature_state(r, "fusefs", NULL);
        }

        int k = store_flush_pulls(r->store);
        if (k < 0)
                log_warning_errno(k, "flushing pull records: %m");
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        registry_stop(r);
        r->tls = tls_free(r->tls); /* after MHD: its connections held the credentials */
        v1_gc_unregister(r);
        v1_worm_unregister(r);
        auth_free(r->auth);
        for (size_t i = 0; i < r->n_v1; i++) {
                free(r->v1[i].method);
                free(r->v1[i].prefix);
        }
        free(r->v1);
        free(r->waiting);
        for (size_t i = 0; i < r->n_features; i++)
                free(r->features[i].name);
        free(r->features);
        free(r->mount);
        pthread_cond_destroy(&r->cond);
        pthread_cond_destroy(&r->purge_cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}
