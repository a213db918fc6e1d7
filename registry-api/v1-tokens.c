/* SPDX-License-Identifier: MIT */
/* API tokens for CI and robots (admin only):
 *   POST   /v1/registry/tokens        {name, scopes: ["apps/search:pull,push"], expires?: "90d" | RFC 3339}
 *                                     -> 201 {id, name, scopes, created, expires, secret} (the secret only here)
 *   GET    /v1/registry/tokens        -> {tokens: [{id, name, scopes, created, expires, revoked, created_by}]}
 *   DELETE /v1/registry/tokens/<id or name>  -> {revoked: n}; takes effect at once */

#include <errno.h>

#include "common/log.h"
#include "common/util.h"
#include "registry-api/server-internal.h"
#include "registry-api/v1-input.h"
#include "storage/tokens.h"

#define CODE "INVALID_REQUEST"

static json_t *time_or_null(int64_t ns) {
        char b[40];
        return ns ? json_string(format_timestamp(b, sizeof b, ns)) : json_null();
}

static json_t *token_json(const ApiToken *t) {
        json_t *scopes = json_array();
        for (char **s = t->scopes; s && *s; s++)
                json_array_append_new(scopes, json_string(*s));
        return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s?, s:s?}", "id", t->id, "name", t->name, "scopes", scopes,
                         "created", time_or_null(t->created), "expires", time_or_null(t->expires), "revoked",
                         time_or_null(t->revoked), "created_by", t->created_by, "revoked_by", t->revoked_by);
}

/* "90d" from now, or an RFC 3339 time in the future. */
static int parse_expires(const char *s, int64_t *ret) {
        int64_t now = clock_now_ns(), d;
        if (parse_duration_ns(s, &d) >= 0) {
                if (d <= 0)
                        return -ERANGE;
                *ret = now + d;
                return 0;
        }
        int r = parse_timestamp_ns(s, ret);
        if (r < 0)
                return r;
        return *ret > now ? 0 : -ERANGE;
}

static int tokens_post(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "name", V1_STRING, true },
                { "scopes", V1_STRING_ARRAY, true },
                { "expires", V1_STRING, false },
        };
        if (!v1_query_valid(req, resp, CODE, NULL) || !v1_body_valid(req, resp, CODE, fields, ELEMENTSOF(fields)))
                return 0;
        Auth *a = registry_auth(reg);
        if (!auth_enabled(a))
                return v1_error(resp, 409, "UNSUPPORTED", NULL,
                                "API tokens need authentication to be configured (auth.htpasswd or auth.acl)");
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const char *expires_s = json_string_value(json_object_get(req->body, "expires"));
        int64_t expires = 0;
        if (expires_s && parse_expires(expires_s, &expires) < 0)
                return v1_error(resp, 400, CODE, NULL, "expires: expected a duration from now like \"90d\" or a future "
                                                       "RFC 3339 time");
        json_t *arr = json_object_get(req->body, "scopes");
        _cleanup_strv_free_ char **scopes = calloc(json_array_size(arr) + 1, sizeof(char *));
        if (!scopes)
                return -ENOMEM;
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
                if (!(scopes[i] = strdup(json_string_value(v))))
                        return -ENOMEM;
        _cleanup_(api_token_done) ApiToken t = {};
        _cleanup_free_ char *secret = NULL;
        char err[256] = "";
        int r = auth_token_create(a, name, scopes, expires, req->actor, &t, &secret, err, sizeof err);
        if (r == -EINVAL)
                return v1_error(resp, 400, CODE, NULL, "%s", err);
        if (r < 0)
                return v1_error_errno(resp, r, "UNKNOWN", "creating API token %s", name);
        json_t *o = token_json(&t);
        if (!o)
                return -ENOMEM;
        json_object_set_new(o, "secret", json_string(secret));
        log_info("auth: API token %s (%s) created by %s", t.name, t.id, req->actor);
        resp->status = 201;
        resp->body = o;
        return 0;
}

static int list_cb(void *userdata, const ApiToken *t) {
        return json_array_append_new(userdata, token_json(t)) < 0 ? -ENOMEM : 0;
}

static int tokens_get(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!v1_query_valid(req, resp, CODE, NULL) || !v1_body_valid(req, resp, CODE, NULL, 0))
                return 0;
        json_t *list = json_array();
        if (!list)
                return -ENOMEM;
        int r = store_tokens_foreach(registry_store(reg), list_cb, list);
        if (r < 0) {
                json_decref(list);
                return v1_error_errno(resp, r, "UNKNOWN", "listing API tokens");
        }
        resp->body = json_pack("{s:o}", "tokens", list);
        return resp->body ? 0 : -ENOMEM;
}

static int tokens_delete(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!v1_query_valid(req, resp, CODE, NULL) || !v1_body_valid(req, resp, CODE, NULL, 0))
                return 0;
        const char *which = startswith(req->path, "tokens/");
        if (!which || !*which || strchr(which, '/'))
                return v1_error(resp, 400, CODE, NULL, "DELETE /v1/registry/tokens/<id or name>");
        int n = auth_token_revoke(registry_auth(reg), which, req->actor);
        if (n < 0)
                return v1_error_errno(resp, n, "UNKNOWN", "revoking API token %s", which);
        if (n == 0)
                return v1_error(resp, 404, "NOT_FOUND", json_pack("{s:s}", "token", which),
                                "no API token with id or name %s that is not revoked already", which);
        log_info("auth: %d API token(s) %s revoked by %s", n, which, req->actor);
        resp->body = json_pack("{s:i}", "revoked", n);
        return resp->body ? 0 : -ENOMEM;
}

void v1_tokens_register(Registry *r) {
        registry_v1_register(r, "POST", "tokens", (V1Access) { "admin", V1_REPO_NONE }, tokens_post);
        registry_v1_register(r, "GET", "tokens", (V1Access) { "admin", V1_REPO_NONE }, tokens_get);
        registry_v1_register(r, "DELETE", "tokens", (V1Access) { "admin", V1_REPO_NONE }, tokens_delete);
}
