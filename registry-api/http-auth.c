/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <strings.h>

#include "common/util.h"
#include "registry-api/http-auth.h"

#define SCOPES_MAX 64
#define SCOPE_ACTIONS_MAX 32

/* ---- Authorization ------------------------------------------------------------------------ */

static bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

static bool is_token68_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_token68(const char *s, size_t n) {
        size_t i = 0;
        while (i < n && is_token68_char(s[i]))
                i++;
        if (i == 0)
                return false;
        while (i < n && s[i] == '=')
                i++;
        return i == n;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Standard base64 with padding, canonical (unused bits zero): out holds n / 4 * 3 bytes. */
static int base64_decode_padded(const char *s, size_t n, uint8_t *out, size_t *ret_len) {
        if (n == 0 || n % 4 != 0)
                return -EINVAL;
        size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i += 4) {
                bool last = i + 4 == n;
                uint32_t acc = 0;
                for (size_t j = 0; j < 4; j++) {
                        int v = last && j >= 4 - pad ? 0 : b64_value(s[i + j]);
                        if (v < 0)
                                return -EINVAL;
                        acc = acc << 6 | (uint32_t) v;
                }
                out[o++] = (uint8_t) (acc >> 16);
                if (!last || pad < 2)
                        out[o++] = (uint8_t) (acc >> 8);
                if (!last || pad < 1)
                        out[o++] = (uint8_t) acc;
                if (last && ((pad == 1 && (acc & 0xffU)) || (pad == 2 && (acc & 0xffffU))))
                        return -EINVAL;
        }
        *ret_len = o;
        return 0;
}

static bool has_control_char(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

/* The decoded "user:password" of len bytes. */
static int take_credentials(const char *d, size_t len, HttpAuthorization *a) {
        if (memchr(d, 0, len))
                return -EINVAL;
        const char *colon = memchr(d, ':', len);
        if (!colon)
                return -EINVAL;
        size_t ulen = (size_t) (colon - d), plen = len - ulen - 1;
        if (ulen == 0 || ulen > HTTP_AUTH_USER_MAX || has_control_char(d, ulen) || plen > HTTP_AUTH_SECRET_MAX)
                return -EINVAL;
        a->user = strndup(d, ulen);
        a->password = strndup(colon + 1, plen);
        if (!a->user || !a->password)
                return -ENOMEM;
        a->scheme = HTTP_AUTH_BASIC;
        return 0;
}

static int parse_basic(const char *s, size_t n, HttpAuthorization *a) {
        /* the longest user and password there can be, encoded */
        if (n > (HTTP_AUTH_USER_MAX + 1 + HTTP_AUTH_SECRET_MAX + 2) / 3 * 4)
                return -EINVAL;
        uint8_t buf[(HTTP_AUTH_USER_MAX + 1 + HTTP_AUTH_SECRET_MAX + 2) / 3 * 3];
        size_t len = 0;
        int r = base64_decode_padded(s, n, buf, &len);
        if (r >= 0)
                r = take_credentials((const char *) buf, len, a);
        explicit_bzero(buf, sizeof(buf));
        return r;
}

static int parse_bearer(const char *s, size_t n, HttpAuthorization *a) {
        if (n > HTTP_AUTH_SECRET_MAX || !is_token68(s, n))
                return -EINVAL;
        a->token = strndup(s, n);
        if (!a->token)
                return -ENOMEM;
        a->scheme = HTTP_AUTH_BEARER;
        return 0;
}

int http_authorization_parse(const char *header, HttpAuthorization *ret) {
        if (!ret)
                return -EINVAL;
        *ret = (HttpAuthorization) { .scheme = HTTP_AUTH_NONE };
        if (!header)
                return 0;
        const char *p = header;
        while (is_ows(*p))
                p++;
        size_t n = strlen(p);
        while (n > 0 && is_ows(p[n - 1]))
                n--;
        const char *sp = memchr(p, ' ', n);
        if (!sp)
                return -EINVAL;
        size_t scheme_len = (size_t) (sp - p);
        const char *v = sp;
        while (*v == ' ')
                v++;
        size_t vlen = n - (size_t) (v - p);
        int r;
        if (scheme_len == 5 && strncasecmp(p, "Basic", 5) == 0)
                r = parse_basic(v, vlen, ret);
        else if (scheme_len == 6 && strncasecmp(p, "Bearer", 6) == 0)
                r = parse_bearer(v, vlen, ret);
        else
                r = -EINVAL;
        if (r < 0)
                http_authorization_done(ret);
        return r;
}

void http_authorization_done(HttpAuthorization *a) {
        if (!a)
                return;
        if (a->password) {
                explicit_bzero(a->password, strlen(a->password));
                free(a->password);
        }
        free(a->user);
        free(a->token);
        *a = (HttpAuthorization) { .scheme = HTTP_AUTH_NONE };
}

/* ---- challenges --------------------------------------------------------------------------- */

typedef struct Buf {
        char *s;
        size_t n, size;
        bool failed;
} Buf;

static void buf_append(Buf *b, const char *s, size_t n) {
        if (b->failed)
                return;
        if (b->n + n + 1 > b->size) {
                size_t ns = MAX(b->size * 2, b->n + n + 1);
                char *t = realloc(b->s, MAX(ns, (size_t) 64));
                if (!t) {
                        b->failed = true;
                        return;
                }
                b->s = t;
                b->size = MAX(ns, (size_t) 64);
        }
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_append(b, s, strlen(s));
}

/* name="value" with '"' and '\' escaped. A control character other than HTAB cannot be in a
 * quoted-string (and CR/LF would split the header): such a value fails the whole challenge. */
static void buf_param(Buf *b, const char *name, const char *value) {
        for (const char *c = value; *c; c++)
                if (((unsigned char) *c < 0x20 && *c != '\t') || *c == 0x7f) {
                        b->failed = true;
                        return;
                }
        buf_puts(b, name);
        buf_puts(b, "=\"");
        for (const char *c = value; *c; c++) {
                if (*c == '"' || *c == '\\')
                        buf_append(b, "\\", 1);
                buf_append(b, c, 1);
        }
        buf_append(b, "\"", 1);
}

static char *buf_finish(Buf *b) {
        if (b->failed) {
                free(b->s);
                return NULL;
        }
        return b->s;
}

char *http_bearer_challenge(const char *realm, const char *service, const char *scope, const char *error) {
        if (!realm || !service)
                return NULL;
        Buf b = {};
        buf_puts(&b, "Bearer ");
        buf_param(&b, "realm", realm);
        buf_puts(&b, ",");
        buf_param(&b, "service", service);
        if (scope) {
                buf_puts(&b, ",");
                buf_param(&b, "scope", scope);
        }
        if (error) {
                buf_puts(&b, ",");
                buf_param(&b, "error", error);
        }
        return buf_finish(&b);
}

char *http_basic_challenge(const char *realm) {
        if (!realm)
                return NULL;
        Buf b = {};
        buf_puts(&b, "Basic ");
        buf_param(&b, "realm", realm);
        buf_puts(&b, ", charset=\"UTF-8\"");
        return buf_finish(&b);
}

/* ---- token scopes ------------------------------------------------------------------------- */

static bool is_type_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_action_char(char c) {
        return is_type_char(c) || c == '*' || c == '_' || c == '-';
}

static bool is_name_char(char c) {
        return c > 0x20 && c < 0x7f;
}

static bool all_chars(const char *s, size_t n, bool (*ok)(char)) {
        for (size_t i = 0; i < n; i++)
                if (!ok(s[i]))
                        return false;
        return n > 0;
}

static void scope_done(TokenScope *s) {
        free(s->type);
        free(s->name);
        strv_free(s->actions);
        *s = (TokenScope) {};
}

void token_scopes_free(TokenScope *scopes, size_t n) {
        for (size_t i = 0; i < n; i++)
                scope_done(&scopes[i]);
        free(scopes);
}

static bool scope_has_action(const TokenScope *s, const char *a, size_t n) {
        for (size_t i = 0; i < s->n_actions; i++)
                if (strlen(s->actions[i]) == n && memcmp(s->actions[i], a, n) == 0)
                        return true;
        return false;
}

static int scope_add_action(TokenScope *s, const char *a, size_t n) {
        if (scope_has_action(s, a, n))
                return 0;
        if (s->n_actions >= SCOPE_ACTIONS_MAX)
                return -E2BIG;
        char **l = reallocarray(s->actions, s->n_actions + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        s->actions = l;
        l[s->n_actions] = strndup(a, n);
        if (!l[s->n_actions])
                return -ENOMEM;
        l[++s->n_actions] = NULL;
        return 0;
}

/* The actions "a,b,c": each non-empty and of the action alphabet. */
static int scope_add_actions(TokenScope *s, const char *a, size_t n) {
        for (size_t i = 0; i <= n;) {
                const char *comma = memchr(a + i, ',', n - i);
                size_t end = comma ? (size_t) (comma - a) : n;
                if (!all_chars(a + i, end - i, is_action_char))
                        return -EINVAL;
                int r = scope_add_action(s, a + i, end - i);
                if (r < 0)
                        return r;
                i = end + 1;
        }
        return 0;
}

/* One "type:name:actions" of n bytes into a new scope. */
static int scope_parse_one(const char *s, size_t n, TokenScope *ret) {
        const char *first = memchr(s, ':', n);
        const char *last = memrchr(s, ':', n);
        if (!first || first == last)
                return -EINVAL;
        size_t tlen = (size_t) (first - s), nlen = (size_t) (last - first - 1);
        if (!all_chars(s, tlen, is_type_char) || !all_chars(first + 1, nlen, is_name_char))
                return -EINVAL;
        _cleanup_(scope_done) TokenScope t = {};
        t.type = strndup(s, tlen);
        t.name = strndup(first + 1, nlen);
        if (!t.type || !t.name)
                return -ENOMEM;
        int r = scope_add_actions(&t, last + 1, n - (size_t) (last + 1 - s));
        if (r < 0)
                return r;
        *ret = t;
        t = (TokenScope) {};
        return 0;
}

static TokenScope *scope_find(TokenScope *scopes, size_t n, const TokenScope *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(scopes[i].type, s->type) && streq(scopes[i].name, s->name))
                        return &scopes[i];
        return NULL;
}

/* Adds s (taken over) to the list, merging its actions into a scope of the same type and name. */
static int scopes_add(TokenScope **scopes, size_t *n, TokenScope *s) {
        TokenScope *same = scope_find(*scopes, *n, s);
        if (same) {
                for (size_t i = 0; i < s->n_actions; i++) {
                        int r = scope_add_action(same, s->actions[i], strlen(s->actions[i]));
                        if (r < 0)
                                return r;
                }
                scope_done(s);
                return 0;
        }
        if (*n >= SCOPES_MAX)
                return -E2BIG;
        TokenScope *l = reallocarray(*scopes, *n + 1, sizeof(TokenScope));
        if (!l)
                return -ENOMEM;
        *scopes = l;
        l[(*n)++] = *s;
        *s = (TokenScope) {};
        return 0;
}

int token_scopes_parse(const char *value, TokenScope **scopes, size_t *n) {
        if (!value || !scopes || !n)
                return -EINVAL;
        const char *p = value;
        for (;;) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return 0;
                size_t len = strcspn(p, " ");
                _cleanup_(scope_done) TokenScope s = {};
                int r = scope_parse_one(p, len, &s);
                if (r < 0)
                        return r;
                r = scopes_add(scopes, n, &s);
                if (r < 0)
                        return r;
                p += len;
        }
}

char *token_scope_format(const TokenScope *s) {
        if (!s || !s->type || !s->name)
                return NULL;
        Buf b = {};
        buf_puts(&b, s->type);
        buf_puts(&b, ":");
        buf_puts(&b, s->name);
        buf_puts(&b, ":");
        for (size_t i = 0; i < s->n_actions; i++) {
                if (i > 0)
                        buf_puts(&b, ",");
                buf_puts(&b, s->actions[i]);
        }
        return buf_finish(&b);
}
