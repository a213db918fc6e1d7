/* SPDX-License-Identifier: MIT */
/* Authorization headers, token scopes and challenges. The first byte chooses:
 *   0: Authorization: what parses has the documented shape and parses again, re-encoded, to the
 *      same credentials;
 *   1: scopes: within the limits, no duplicate action, and each formats to a string that parses
 *      back to itself;
 *   2: a Bearer challenge from four NUL-separated values: no CR/LF/control byte in it, and its
 *      quoted-strings unescape back to the values. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/http-auth.h"

static char *b64std(const char *p, size_t n) {
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *u = (const uint8_t *) p;
        char *out = malloc(n / 3 * 4 + 5), *o = out;
        if (!out)
                abort();
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) u[i] << 16 | (i + 1 < n ? (uint32_t) u[i + 1] << 8 : 0) | (i + 2 < n ? u[i + 2] : 0);
                *o++ = abc[v >> 18];
                *o++ = abc[(v >> 12) & 63];
                *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
                *o++ = i + 2 < n ? abc[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static void fuzz_authorization(const char *h) {
        HttpAuthorization a;
        int r = http_authorization_parse(h, &a);
        if (r < 0) {
                if (r != -EINVAL || a.scheme != HTTP_AUTH_NONE || a.user || a.password || a.token)
                        abort();
                return;
        }
        HttpAuthorization b;
        char *again = NULL;
        if (a.scheme == HTTP_AUTH_BASIC) {
                size_t ul = strlen(a.user), pl = strlen(a.password);
                if (ul == 0 || ul > HTTP_AUTH_USER_MAX || pl > HTTP_AUTH_SECRET_MAX || strchr(a.user, ':') || a.token)
                        abort();
                for (const char *c = a.user; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                abort();
                size_t n = ul + 1 + pl;
                char *cred = malloc(n + 1);
                if (!cred)
                        abort();
                memcpy(cred, a.user, ul);
                cred[ul] = ':';
                memcpy(cred + ul + 1, a.password, pl + 1);
                char *e = b64std(cred, n);
                again = malloc(strlen(e) + 7);
                if (!again)
                        abort();
                strcpy(again, "Basic ");
                strcat(again, e);
                free(e);
                free(cred);
                if (http_authorization_parse(again, &b) != 0 || b.scheme != HTTP_AUTH_BASIC ||
                    strcmp(a.user, b.user) != 0 || strcmp(a.password, b.password) != 0)
                        abort();
        } else if (a.scheme == HTTP_AUTH_BEARER) {
                size_t tl = strlen(a.token);
                if (tl == 0 || tl > HTTP_AUTH_SECRET_MAX || a.user || a.password)
                        abort();
                again = malloc(tl + 8);
                if (!again)
                        abort();
                strcpy(again, "Bearer ");
                strcat(again, a.token);
                if (http_authorization_parse(again, &b) != 0 || b.scheme != HTTP_AUTH_BEARER || strcmp(a.token, b.token) != 0)
                        abort();
        } else
                abort();
        free(again);
        http_authorization_done(&b);
        http_authorization_done(&a);
}

static void fuzz_scopes(const char *v) {
        TokenScope *s = NULL;
        size_t n = 0;
        int r = token_scopes_parse(v, &s, &n);
        if (r < 0 && r != -EINVAL && r != -E2BIG)
                abort();
        if (n > 64)
                abort();
        for (size_t i = 0; i < n; i++) {
                if (s[i].n_actions == 0 || s[i].n_actions > 32 || s[i].actions[s[i].n_actions])
                        abort();
                for (size_t j = 0; j < s[i].n_actions; j++)
                        for (size_t k = j + 1; k < s[i].n_actions; k++)
                                if (strcmp(s[i].actions[j], s[i].actions[k]) == 0)
                                        abort();
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(s[i].type, s[j].type) == 0 && strcmp(s[i].name, s[j].name) == 0)
                                abort();
                char *f = token_scope_format(&s[i]);
                TokenScope *t = NULL;
                size_t m = 0;
                if (!f || token_scopes_parse(f, &t, &m) != 0 || m != 1 || strcmp(t[0].type, s[i].type) != 0 ||
                    strcmp(t[0].name, s[i].name) != 0 || t[0].n_actions != s[i].n_actions)
                        abort();
                for (size_t j = 0; j < s[i].n_actions; j++)
                        if (strcmp(t[0].actions[j], s[i].actions[j]) != 0)
                                abort();
                token_scopes_free(t, m);
                free(f);
        }
        token_scopes_free(s, n);
}

/* Reads name="..." at *p, unescaping into out; advances *p past it. */
static void expect_param(const char **p, const char *name, const char *value) {
        size_t nl = strlen(name);
        if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=' || (*p)[nl + 1] != '"')
                abort();
        const char *c = *p + nl + 2, *v = value;
        for (; *c != '"'; c++, v++) {
                if (!*c)
                        abort();
                if (*c == '\\')
                        c++;
                if (*c != *v)
                        abort();
        }
        if (*v)
                abort();
        *p = c + 1;
}

static void fuzz_challenge(const char *d, size_t size) {
        const char *part[4] = { NULL, NULL, NULL, NULL };
        size_t k = 0;
        for (const char *p = d; k < 4 && p <= d + size; p += strlen(p) + 1)
                part[k++] = p;
        if (k < 2)
                return;
        char *c = http_bearer_challenge(part[0], part[1], part[2], part[3]);
        bool controls = false;
        for (size_t i = 0; i < k; i++)
                for (const char *x = part[i]; *x; x++)
                        if (((unsigned char) *x < 0x20 && *x != '\t') || *x == 0x7f)
                                controls = true;
        if (!c) {
                if (!controls)
                        abort();
                return;
        }
        if (controls)
                abort();
        const char *p = c;
        if (strncmp(p, "Bearer ", 7) != 0)
                abort();
        p += 7;
        static const char *const names[] = { "realm", "service", "scope", "error" };
        for (size_t i = 0; i < k; i++) {
                if (i > 0 && *p++ != ',')
                        abort();
                expect_param(&p, names[i], part[i]);
        }
        if (*p)
                abort();
        free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        /* a C string, as the header or query value arrives; NULs inside end it early */
        char *s = malloc(size);
        if (!s)
                return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = 0;
        switch (data[0] % 3) {
        case 0:
                fuzz_authorization(s);
                break;
        case 1:
                fuzz_scopes(s);
                break;
        default:
                fuzz_challenge(s, size - 1);
                break;
        }
        free(s);
        return 0;
}
