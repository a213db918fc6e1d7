/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include "common/macros.h"

/* Tiny JSON-over-HTTP client for `plura reg`: http:// over a socket, https:// through libcurl
 * (loaded when first needed). */
typedef struct HttpResult {
        long status;     /* HTTP status, 0 if the request did not complete */
        json_t *body;    /* parsed JSON body, or NULL */
        char *raw;       /* raw body */
        char error[256]; /* transport error */
} HttpResult;

/* base_url: e.g. "http://127.0.0.1:5000"; path: "/v1/registry/gc". body may be NULL. */
int http_json_request(const char *base_url, const char *method, const char *path, json_t *body,
                      const char *actor, HttpResult *ret);
void http_result_done(HttpResult *r);
/* --url, else $PLURA_URL, else http://127.0.0.1:5000 */
const char *default_registry_url(const char *flag);
/* Percent-encodes all but RFC 3986's unreserved characters (malloc()ed). */
char *http_url_escape(const char *s);
/* Prints the server's error ({"errors":[{code,message}]}) or transport failure to stderr. */
void http_print_error(const char *what, const HttpResult *r);
