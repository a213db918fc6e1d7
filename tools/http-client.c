/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <stdio.h>

#include "http-client.h"

typedef struct Buf {
        char *data;
        size_t len;
} Buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
        Buf *b = ud;
        size_t add = size * n;
        char *nd = realloc(b->data, b->len + add + 1);
        if (!nd)
                return 0;
        memcpy(nd + b->len, p, add);
        b->len += add;
        nd[b->len] = 0;
        b->data = nd;
        return add;
}

const char *default_registry_url(const char *flag) {
        if (flag)
                return flag;
        const char *e = getenv("PLURA_URL");
        return e && *e ? e : "http://127.0.0.1:5000";
}

int http_json_request(const char *base_url, const char *method, const char *path, json_t *body,
                      const char *actor, HttpResult *ret) {
        memset(ret, 0, sizeof(*ret));
        CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        _cleanup_free_ char *url = NULL;
        size_t bl = strlen(base_url);
        if (asprintf(&url, "%.*s%s", (int) (bl && base_url[bl - 1] == '/' ? bl - 1 : bl), base_url, path) < 0) {
                curl_easy_cleanup(c);
                return -ENOMEM;
        }
        _cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        struct curl_slist *h = NULL;
        h = curl_slist_append(h, "Accept: application/json");
        if (payload)
                h = curl_slist_append(h, "Content-Type: application/json");
        _cleanup_free_ char *actor_h = NULL;
        if (!actor)
                actor = getenv("PLURA_ACTOR");
        if (!actor)
                actor = getenv("USER");
        if (actor && asprintf(&actor_h, "X-Plura-Actor: %s", actor) >= 0)
                h = curl_slist_append(h, actor_h);
        Buf b = { 0 };
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (payload)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 3600L);
        CURLcode cr = curl_easy_perform(c);
        if (cr != CURLE_OK)
                snprintf(ret->error, sizeof(ret->error), "%s: %s", url, curl_easy_strerror(cr));
        else
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        ret->raw = b.data;
        if (b.data)
                ret->body = json_loads(b.data, 0, NULL);
        return cr == CURLE_OK ? 0 : -ECONNREFUSED;
}

void http_result_done(HttpResult *r) {
        json_decref(r->body);
        free(r->raw);
        r->body = NULL;
        r->raw = NULL;
}

void http_print_error(const char *what, const HttpResult *r) {
        if (r->status == 0) {
                fprintf(stderr, "%s: %s\n", what, r->error);
                return;
        }
        json_t *errs = r->body ? json_object_get(r->body, "errors") : NULL;
        if (json_is_array(errs) && json_array_size(errs) > 0) {
                size_t i;
                json_t *e;
                json_array_foreach(errs, i, e) {
                        fprintf(stderr, "%s: refused (HTTP %ld): %s: %s\n", what, r->status,
                                json_string_value(json_object_get(e, "code")) ?: "ERROR",
                                json_string_value(json_object_get(e, "message")) ?: "");
                        json_t *d = json_object_get(e, "detail");
                        if (d) {
                                _cleanup_free_ char *s = json_dumps(d, JSON_INDENT(2));
                                if (s)
                                        fprintf(stderr, "%s\n", s);
                        }
                }
        } else
                fprintf(stderr, "%s: HTTP %ld: %s\n", what, r->status, r->raw ? r->raw : "");
}
