/* SPDX-License-Identifier: MIT */
/* /v1/registry/holds and /v1/registry/worm/ handlers:
 *   POST   holds                      {digest, case_id, reason, until?, export?}
 *   GET    holds[/<case_id>]          ?case_id=  ?active=true|false
 *   DELETE holds/<case_id>/<digest>   release (audited; the record stays until GC forgets it)
 *   POST   worm/export                {case_id | digest} (or both)
 *   GET    worm/bundles               ?case_id=
 *   POST   worm/verify                {bundle}  (a bundle under worm.path) */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "registry-api/v1.h"
#include "registry-api/v1-input.h"
#include "storage/holds.h"

#define M_HOLDS_ACTIVE "plura_holds_active"

/* ---- helpers */

static const char *oci_code(const StoreError *e, const char *fallback) {
        return e->code != OCI_OK && e->code != OCI_UNSUPPORTED ? oci_error_to_string(e->code) : fallback;
}

static int store_error_response(V1Response *resp, int r, const StoreError *e, const char *what) {
        const char *msg = e->message[0] ? e->message : strerror(-r);
        switch (-r) {
        case ENOENT:
                return v1_error(resp, 404, oci_code(e, "NOT_FOUND"), NULL, "%s", msg);
        case EINVAL:
                return v1_error(resp, 400, oci_code(e, "INVALID_REQUEST"), NULL, "%s", msg);
        case ENOSPC:
        case EDQUOT:
        case EROFS:
                return v1_error_errno(resp, r, "INTERNAL_ERROR", "%s", what);
        default:
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "%s: %s", what, msg);
        }
}

static int case_id_error(V1Response *resp, const char *case_id) {
        return v1_error(resp, 400, "CASE_ID_INVALID", json_pack("{s:s?}", "case_id", case_id),
                        "case_id: invalid case id '%s': expected 1-128 characters of [A-Za-z0-9._-] starting with a letter or "
                        "digit; path characters such as '/' or '..' are not allowed",
                        strempty(case_id));
}

static int worm_not_configured(V1Response *resp) {
        return v1_error(resp, 500, "WORM_NOT_CONFIGURED", NULL,
                        "WORM export is not configured: set \"worm\": {\"path\": DIR} in the server configuration");
}

/* Maps a failed export onto a status and code; detail names the incomplete bundle, if any. */
static int export_error_response(V1Response *resp, int r, const StoreError *e, const char *bundle, json_t *done) {
        json_t *detail = json_pack("{s:s?, s:O?}", "incomplete_bundle", bundle, "exported", done);
        const char *msg = e->message[0] ? e->message : strerror(-r);
        switch (-r) {
        case EDESTADDRREQ:
                json_decref(detail);
                return worm_not_configured(resp);
        case ENOENT:
                if (e->code == OCI_MANIFEST_UNKNOWN || e->code == OCI_BLOB_UNKNOWN || e->code == OCI_MANIFEST_BLOB_UNKNOWN)
                        return v1_error(resp, 404, oci_error_to_string(e->code), detail, "%s", msg);
                return v1_error(resp, 500, "WORM_TARGET_UNAVAILABLE", detail, "%s", msg);
        case EINVAL:
                return v1_error(resp, 400, e->code == OCI_DIGEST_INVALID ? "DIGEST_INVALID" : "CASE_ID_INVALID", detail,
                                "%s", msg);
        case ENOSPC:
        case EDQUOT:
                return v1_error(resp, 507, "WORM_TARGET_FULL", detail, "%s", msg);
        case EROFS:
        case EACCES:
        case EPERM:
                return v1_error(resp, 500, "WORM_TARGET_READ_ONLY", detail, "%s", msg);
        default:
                return v1_error(resp, 500, "WORM_EXPORT_FAILED", detail, "%s", msg);
        }
}

/* After input_valid(): a string field or NULL. */
static const char *body_string(const V1Request *req, const char *key) {
        return req->body ? json_string_value(json_object_get(req->body, key)) : NULL;
}

/* The query parameters and body fields of a request, checked before anything else. */
static bool input_valid(const V1Request *req, V1Response *resp, const char *const *query, const V1Field *fields,
                        size_t n_fields) {
        return v1_query_valid(req, resp, "INVALID_REQUEST", query) &&
               v1_body_valid(req, resp, "INVALID_REQUEST", fields, n_fields);
}

/* ---- holds */

static int hold_post(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "digest", V1_STRING, true },
                { "case_id", V1_STRING, true },
                { "reason", V1_STRING, true },
                { "until", V1_STRING, false },
                { "export", V1_BOOL, false },
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Store *s = registry_store(reg);
        const char *digest = body_string(req, "digest");
        const char *case_id = body_string(req, "case_id");
        const char *reason = body_string(req, "reason");
        const char *until_s = body_string(req, "until");
        json_t *exp = json_object_get(req->body, "export");
        if (digest_parse(digest, NULL) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "digest: expected a digest such as sha256:<64 hex>, got '%s'",
                                strempty(digest));
        if (!case_id_is_valid(case_id))
                return case_id_error(resp, case_id);
        if (!reason || !*reason)
                return v1_error(resp, 400, "INVALID_REQUEST", NULL, "reason: say why the digest is held");
        int64_t now = clock_now_ns(), until = 0;
        if (until_s && *until_s) {
                int k = hold_parse_until(until_s, now, &until);
                if (k == -ERANGE)
                        return v1_error(resp, 400, "INVALID_REQUEST", NULL, "until: '%s' is not in the future", until_s);
                if (k < 0)
                        return v1_error(resp, 400, "INVALID_REQUEST", NULL,
                                        "until: expected an RFC 3339 time (2025-01-31T00:00:00Z) or a duration (30d, 12h), "
                                        "got '%s'",
                                        until_s);
        }

        StoreError err = {};
        int r = store_hold_add(s, digest, case_id, reason, until, req->actor, &err);
        if (r < 0)
                return store_error_response(resp, r, &err, "adding hold");
        bool created = r > 0;

        HoldInfo h = {};
        r = store_hold_get(s, digest, case_id, &h);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "reading back the hold: %s", strerror(-r));
        json_t *out = hold_info_to_json(&h, now);
        hold_info_done(&h);
        if (!out)
                return -ENOMEM;

        /* what the hold covers (and whether all of it is there) */
        json_t *closure = NULL;
        StoreError cerr = {};
        r = store_digest_closure(s, NULL, digest, &closure, &cerr);
        if (r >= 0) {
                json_object_set_new(out, "closure",
                                    json_pack("{s:s, s:I, s:I, s:O}", "kind", json_string_value(json_object_get(closure, "kind")),
                                              "manifests", (json_int_t) json_array_size(json_object_get(closure, "manifests")),
                                              "blobs", (json_int_t) json_array_size(json_object_get(closure, "blobs")),
                                              "bytes", json_object_get(closure, "bytes")));
                json_decref(closure);
        } else
                json_object_set_new(out, "closure_error", json_string(cerr.message[0] ? cerr.message : strerror(-r)));

        if (json_is_true(exp)) {
                WormOptions o;
                r = worm_options_from_json(config_section(registry_config(reg), "worm"), &o);
                if (r < 0) {
                        json_decref(out);
                        return worm_not_configured(resp);
                }
                o.actor = req->actor;
                _cleanup_free_ char *bundle = NULL;
                json_t *summary = NULL;
                StoreError eerr = {};
                r = worm_export(s, &o, case_id, digest, &bundle, &summary, &eerr);
                if (r >= 0 && worm_verify(bundle, NULL) >= 0)
                        store_hold_set_export(s, digest, case_id, bundle);
                if (r < 0) {
                        json_decref(out);
                        return export_error_response(resp, r, &eerr, bundle, NULL);
                }
                json_object_set_new(out, "export", summary);
                json_object_set_new(out, "export_bundle", json_string(bundle));
        }
        resp->status = created ? 201 : 200;
        resp->body = out;
        return 0;
}

typedef struct ListCtx {
        const char *case_id;
        int active; /* -1 any */
        int64_t now;
        json_t *out;
} ListCtx;

static int list_one(void *userdata, const HoldInfo *h) {
        ListCtx *c = userdata;
        if (c->case_id && !streq(c->case_id, h->case_id))
                return 0;
        if (c->active >= 0 && (int) hold_is_active(h, c->now) != c->active)
                return 0;
        json_t *o = hold_info_to_json(h, c->now);
        if (!o)
                return -ENOMEM;
        json_array_append_new(c->out, o);
        return 0;
}

static int holds_get(Registry *reg, const V1Request *req, V1Response *resp) {
        bool active = false;
        bool have_active = v1_request_query(req, "active") != NULL;
        if (!input_valid(req, resp, (const char *const[]) { "case_id", "active", NULL }, NULL, 0) ||
            !v1_query_bool(req, resp, "INVALID_REQUEST", "active", &active))
                return 0;
        const char *case_id = v1_request_query(req, "case_id");
        const char *sub = startswith(req->path, "holds/");
        if (sub && *sub)
                case_id = sub;
        if (case_id && !case_id_is_valid(case_id))
                return case_id_error(resp, case_id);
        ListCtx c = { .case_id = case_id, .active = have_active ? active : -1, .now = clock_now_ns(), .out = json_array() };
        if (!c.out)
                return -ENOMEM;
        int r = store_holds_foreach(registry_store(reg), NULL, list_one, &c);
        if (r < 0) {
                json_decref(c.out);
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "listing holds: %s", strerror(-r));
        }
        resp->body = json_pack("{s:o}", "holds", c.out);
        return resp->body ? 0 : -ENOMEM;
}

static int hold_delete(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, NULL, NULL, 0))
                return 0;
        /* holds/<case_id>/<digest> */
        const char *rest = startswith(req->path, "holds/");
        const char *slash = rest ? strchr(rest, '/') : NULL;
        if (!slash)
                return v1_error(resp, 400, "INVALID_REQUEST", NULL, "expected DELETE /v1/registry/holds/<case_id>/<digest>");
        _cleanup_free_ char *case_id = strndup(rest, (size_t) (slash - rest));
        const char *digest = slash + 1;
        if (!case_id)
                return -ENOMEM;
        if (!case_id_is_valid(case_id))
                return case_id_error(resp, case_id);
        if (digest_parse(digest, NULL) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "invalid digest '%s'", digest);
        Store *s = registry_store(reg);
        StoreError err = {};
        int r = store_hold_release(s, digest, case_id, req->actor, &err);
        if (r == -ENOENT)
                return v1_error(resp, 404, "HOLD_UNKNOWN", NULL, "no hold for case %s on %s", case_id, digest);
        if (r < 0)
                return store_error_response(resp, r, &err, "releasing hold");
        HoldInfo h = {};
        r = store_hold_get(s, digest, case_id, &h);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "reading back the hold: %s", strerror(-r));
        resp->body = hold_info_to_json(&h, clock_now_ns());
        hold_info_done(&h);
        if (resp->body && !h.export_bundle)
                json_object_set_new(resp->body, "note",
                                    json_string("released; the content stays until GC has made sure a verified WORM "
                                                "export exists (GC exports it first if needed)"));
        return resp->body ? 0 : -ENOMEM;
}

/* ---- WORM */

static int collect_targets(void *userdata, const HoldInfo *h) {
        json_t *l = userdata;
        json_t *o = json_pack("{s:s, s:s}", "digest", h->digest, "case_id", h->case_id);
        return o ? json_array_append_new(l, o) : -ENOMEM;
}

typedef struct Match {
        const char *case_id;
        const char *digest;
        json_t *out;
} Match;

static int match_holds(void *userdata, const HoldInfo *h) {
        Match *m = userdata;
        if ((m->case_id && !streq(m->case_id, h->case_id)) || (m->digest && !streq(m->digest, h->digest)))
                return 0;
        return collect_targets(m->out, h);
}

static int worm_export_post(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "case_id", V1_STRING, false },
                { "digest", V1_STRING, false },
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Store *s = registry_store(reg);
        const char *case_id = body_string(req, "case_id");
        const char *digest = body_string(req, "digest");
        if (!case_id && !digest)
                return v1_error(resp, 400, "INVALID_REQUEST", NULL, "case_id, digest: missing (expected {case_id} or {digest} or both)");
        if (case_id && !case_id_is_valid(case_id))
                return case_id_error(resp, case_id);
        if (digest && digest_parse(digest, NULL) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "digest: invalid digest '%s'", digest);

        WormOptions o;
        int r = worm_options_from_json(config_section(registry_config(reg), "worm"), &o);
        if (r < 0)
                return worm_not_configured(resp);
        o.actor = req->actor;

        _cleanup_(json_decrefp) json_t *targets = json_array();
        if (!targets)
                return -ENOMEM;
        Match m = { .case_id = case_id, .digest = digest, .out = targets };
        r = store_holds_foreach(s, NULL, match_holds, &m);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "listing holds: %s", strerror(-r));
        if (json_array_size(targets) == 0) {
                if (case_id && digest) {
                        /* an explicit export of an unheld digest under a case is allowed */
                        json_array_append_new(targets, json_pack("{s:s, s:s}", "digest", digest, "case_id", case_id));
                } else if (case_id)
                        return v1_error(resp, 404, "HOLD_UNKNOWN", NULL, "case %s has no holds", case_id);
                else {
                        /* tell a wrong digest apart from an unheld one */
                        json_t *cl = NULL;
                        StoreError cerr = {};
                        r = store_digest_closure(s, NULL, digest, &cl, &cerr);
                        json_decref(cl);
                        if (r == -ENOENT && cerr.code == OCI_MANIFEST_UNKNOWN)
                                return v1_error(resp, 404, "MANIFEST_UNKNOWN", NULL, "%s", cerr.message);
                        return v1_error(resp, 404, "HOLD_UNKNOWN", NULL,
                                        "%s is not held; add a hold first or pass case_id to export it under a case",
                                        digest);
                }
        }

        _cleanup_(json_decrefp) json_t *done = json_array();
        if (!done)
                return -ENOMEM;
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t) {
                const char *d = json_string_value(json_object_get(t, "digest"));
                const char *c = json_string_value(json_object_get(t, "case_id"));
                _cleanup_free_ char *bundle = NULL;
                json_t *summary = NULL;
                StoreError err = {};
                r = worm_export(s, &o, c, d, &bundle, &summary, &err);
                if (r < 0)
                        return export_error_response(resp, r, &err, bundle, json_array_size(done) ? done : NULL);
                json_t *report = NULL;
                r = worm_verify(bundle, &report);
                json_object_set_new(summary, "verified", json_boolean(r >= 0));
                if (r < 0) {
                        json_object_set_new(summary, "verify_report", report);
                        json_array_append_new(done, summary);
                        return v1_error(resp, 500, "WORM_VERIFY_FAILED", json_pack("{s:O}", "exported", done),
                                        "bundle %s does not verify after writing it", bundle);
                }
                json_decref(report);
                r = store_hold_set_export(s, d, c, bundle);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "recording export %s in hold %s/%s: %m", bundle, c, d);
                json_array_append_new(done, summary);
        }
        resp->status = 201;
        resp->body = json_pack("{s:O}", "bundles", done);
        return resp->body ? 0 : -ENOMEM;
}

static int worm_bundles_get(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, (const char *const[]) { "case_id", NULL }, NULL, 0))
                return 0;
        WormOptions o;
        if (worm_options_from_json(config_section(registry_config(reg), "worm"), &o) < 0)
                return worm_not_configured(resp);
        const char *case_id = v1_request_query(req, "case_id");
        if (case_id && !case_id_is_valid(case_id))
                return case_id_error(resp, case_id);
        json_t *list = NULL;
        int r = worm_bundles_list(o.path, case_id, &list);
        if (r < 0)
                return v1_error(resp, 500, "WORM_TARGET_UNAVAILABLE", NULL, "listing %s: %s", o.path, strerror(-r));
        resp->body = json_pack("{s:s, s:o}", "path", o.path, "bundles", list);
        return resp->body ? 0 : -ENOMEM;
}

/* "/a//b/./c/" -> "/a/b/c" (lexically, nothing is looked up); -EINVAL if a component is "..". */
static int path_normalize(const char *p, char **ret) {
        size_t n = strlen(p);
        _cleanup_free_ char *out = malloc(n + 2);
        if (!out)
                return -ENOMEM;
        size_t l = 0;
        if (p[0] == '/')
                out[l++] = '/';
        for (const char *c = p; *c;) {
                size_t cl = strcspn(c, "/");
                if (cl == 2 && c[0] == '.' && c[1] == '.')
                        return -EINVAL;
                if (cl > 0 && !(cl == 1 && c[0] == '.')) {
                        if (l > 0 && out[l - 1] != '/')
                                out[l++] = '/';
                        memcpy(out + l, c, cl);
                        l += cl;
                }
                c += cl;
                c += *c == '/';
        }
        out[l] = 0;
        *ret = steal_pointer(&out);
        return 0;
}

/* The "<case_id>/<bundle>" that path names below root (normalised), or NULL. */
static const char *below_root(const char *path, const char *root) {
        const char *rest = root ? startswith(path, root) : NULL;
        if (!rest || (rest[0] != '/' && !streq(root, "/")))
                return NULL;
        return rest[0] == '/' ? rest + 1 : rest;
}

/* A bundle that POST worm/verify may look at: "<worm.path>/<case_id>/<bundle>" (the form export
 * and GET worm/bundles answer; worm.path as configured or as resolved) or "<case_id>/<bundle>".
 * Which paths are accepted is decided from the text alone, before the file system is asked
 * anything, so the answer to a path outside worm.path is the same whether or not it exists;
 * then the two components are opened without following symbolic links. 0 and the bundle's path
 * (below the resolved worm.path), -EXDEV if path is not of that form, -ENOENT if there is no
 * such bundle directory. */
static int bundle_resolve(const char *worm_path, const char *path, char **ret) {
        _cleanup_free_ char *p = NULL, *root = NULL, *root_real = realpath(worm_path, NULL);
        int r = path_normalize(path, &p);
        if (r == -EINVAL)
                return -EXDEV;
        if (r < 0)
                return r;
        r = path_normalize(worm_path, &root);
        if (r < 0)
                return r == -EINVAL ? -ENOENT : r;
        const char *rel = below_root(p, root) ?: below_root(p, root_real);
        if (!rel && p[0] != '/')
                rel = p;
        const char *slash = rel ? strchr(rel, '/') : NULL;
        if (!slash)
                return -EXDEV;
        _cleanup_free_ char *case_id = strndup(rel, (size_t) (slash - rel));
        if (!case_id)
                return -ENOMEM;
        const char *name = slash + 1;
        /* bundle names ("20250102T030405.123456789Z-0123456789ab[-N]") have a case id's alphabet */
        if (!case_id_is_valid(case_id) || !case_id_is_valid(name))
                return -EXDEV;
        if (!root_real)
                return -ENOENT;
        _cleanup_close_ int rootfd = open(root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return -ENOENT;
        _cleanup_close_ int casefd = openat(rootfd, case_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (casefd < 0)
                return -ENOENT;
        _cleanup_close_ int bfd = openat(casefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (bfd < 0)
                return -ENOENT;
        *ret = strdup_printf("%s/%s/%s", root_real, case_id, name);
        return *ret ? 0 : -ENOMEM;
}

static int worm_verify_post(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = { { "bundle", V1_STRING, true } };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        WormOptions o;
        if (worm_options_from_json(config_section(registry_config(reg), "worm"), &o) < 0)
                return worm_not_configured(resp);
        const char *bundle = body_string(req, "bundle");
        /* only bundles inside the WORM target: this is not a way to hash, or probe for, other files */
        _cleanup_free_ char *path = NULL;
        int r = bundle_resolve(o.path, bundle, &path);
        if (r == -EXDEV)
                return v1_error(resp, 400, "INVALID_REQUEST", NULL,
                                "bundle: '%s' is not a bundle of the WORM target: expected %s/<case_id>/<bundle> or "
                                "<case_id>/<bundle>, as worm export and GET /v1/registry/worm/bundles name them",
                                bundle, o.path);
        if (r == -ENOENT)
                return v1_error(resp, 404, "BUNDLE_UNKNOWN", NULL, "bundle: no bundle '%s' in the WORM target", bundle);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "bundle: resolving '%s': %s", bundle, strerror(-r));
        json_t *report = NULL;
        r = worm_verify(path, &report);
        if (!report)
                return v1_error(resp, 500, "INTERNAL_ERROR", NULL, "verifying %s: %s", bundle, strerror(-r));
        resp->body = report;
        return 0;
}

/* ---- metrics */

static int count_active(void *userdata, const HoldInfo *h) {
        int64_t *n = userdata;
        if (hold_is_active(h, clock_now_ns()))
                (*n)++;
        return 0;
}

/* userdata: the registry's Store (v1_worm_register() .. v1_worm_unregister()) */
static void holds_collect(void *userdata) {
        Store *s = userdata;
        int64_t n = 0;
        if (s && store_holds_foreach(s, NULL, count_active, &n) >= 0)
                metrics_gauge_set(M_HOLDS_ACTIVE, NULL, (double) n);
}

void v1_worm_register(Registry *r) {
        registry_v1_register(r, "POST", "holds", (V1Access) { "hold", V1_REPO_NONE }, hold_post);
        registry_v1_register(r, "GET", "holds", (V1Access) { "hold", V1_REPO_NONE }, holds_get);
        registry_v1_register(r, "DELETE", "holds", (V1Access) { "release", V1_REPO_NONE }, hold_delete);
        registry_v1_register(r, "POST", "worm/export", (V1Access) { "worm", V1_REPO_NONE }, worm_export_post);
        registry_v1_register(r, "GET", "worm/bundles", (V1Access) { "worm", V1_REPO_NONE }, worm_bundles_get);
        registry_v1_register(r, "POST", "worm/verify", (V1Access) { "worm", V1_REPO_NONE }, worm_verify_post);

        Config *c = registry_config(r);
        if (c && c->registry_id)
                worm_set_default_registry_id(c->registry_id);

        metrics_declare(M_HOLDS_ACTIVE, METRIC_GAUGE, "RCA holds currently active (not released, not expired).", NULL, 0);
        metrics_declare("plura_worm_bundles_exported_total", METRIC_COUNTER, "WORM bundles written completely.", NULL, 0);
        metrics_declare("plura_worm_bytes_exported_total", METRIC_COUNTER, "Bytes written into complete WORM bundles.",
                        NULL, 0);
        metrics_declare("plura_worm_verify_failures_total", METRIC_COUNTER,
                        "WORM bundle verifications that found a problem.", NULL, 0);
        metrics_add_collector(holds_collect, registry_store(r));
        holds_collect(registry_store(r));
}

void v1_worm_unregister(Registry *r) {
        /* returns once no /metrics render runs it: the store may be closed after this */
        metrics_remove_collector(holds_collect, registry_store(r));
}
