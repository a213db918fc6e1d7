/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/macros.h"

/* Tiny JSON-over-HTTP client for `plura reg`: http:// over a socket, https:// through libcurl
 * (loaded when first needed). */
typedef struct HttpResult {
        long status;     /* HTTP status, 0 if the request did not complete */
        json_t *body;    /* parsed JSON body, or NULL */
        char *raw;       /* raw body */
        char error[256]; /* transport error */
} HttpResult;

/* Where and how `plura reg` reaches the server: the options every verb takes. */
typedef struct HttpClientOptions {
        const char *url;   /* --url: e.g. "https://registry.example:5000"; NULL: default_registry_url() */
        const char *actor; /* --actor; NULL: $PLURA_ACTOR, else $USER */
        /* https:// only. The server's certificate is verified (chain and host name) against the
         * system's trust store, or against the CA file ca (--ca FILE, else $PLURA_CA) alone. */
        const char *ca;
        bool insecure;     /* --insecure: no verification at all; the only way to turn it off */
        /* --user USER[:PASSWORD]; NULL: $PLURA_TOKEN, $PLURA_USER + $PLURA_PASSWORD, or the
         * docker/podman credential files (tools/credentials.h) */
        const char *user;
        bool anonymous;    /* send no credentials at all (plura health: /healthz and /readyz are open) */
} HttpClientOptions;

/* For the "Common options" line of the verbs' help texts (cmd-reg.c explains --ca and --insecure) */
#define HTTP_CLIENT_OPTIONS_HELP "--url URL (default $PLURA_URL or http://127.0.0.1:5000), --user USER[:PASSWORD], --actor NAME, --ca FILE, --insecure"

/* Takes the options of HttpClientOptions (--url URL, --user U, --actor NAME, --ca FILE, --insecure, also
 * written --opt=VALUE) out of argv[1..argc-1], up to a "--", and keeps the other arguments in
 * their order. Returns the new argc, or -EINVAL (printed) when an option lacks its value or
 * --ca and --insecure are both given. */
int http_client_options_take(int argc, char **argv, HttpClientOptions *o);

/* path: "/v1/registry/gc", below the URL's path. body may be NULL. */
int http_json_request(const HttpClientOptions *o, const char *method, const char *path, json_t *body, HttpResult *ret);
void http_result_done(HttpResult *r);
/* --url, else $PLURA_URL, else http://127.0.0.1:5000 */
const char *default_registry_url(const char *flag);
/* Percent-encodes all but RFC 3986's unreserved characters (malloc()ed). */
char *http_url_escape(const char *s);
/* Prints the server's error ({"errors":[{code,message}]}) or transport failure to stderr. */
void http_print_error(const char *what, const HttpResult *r);
