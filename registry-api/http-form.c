/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "registry-api/http-form.h"

#define FORM_FIELDS_MAX 64

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes s[0..len) into a new NUL-terminated string. */
static int form_decode(const char *s, size_t len, char **ret) {
        char *out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '+')
                        c = ' ';
                else if (c == '%') {
                        int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = i + 2 < len ? hexval(s[i + 2]) : -1;
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                                free(out);
                                return -EINVAL;
                        }
                        c = (char) (hi * 16 + lo);
                        i += 2;
                } else if (c == 0) {
                        free(out);
                        return -EINVAL;
                }
                out[o++] = c;
        }
        out[o] = 0;
        *ret = out;
        return 0;
}

void form_free(FormField *f, size_t n) {
        for (size_t i = 0; f && i < n; i++) {
                free(f[i].name);
                free(f[i].value);
        }
        free(f);
}

int form_parse(const char *body, size_t len, FormField **ret, size_t *ret_n) {
        FormField *f = calloc(FORM_FIELDS_MAX, sizeof(FormField));
        size_t n = 0;
        int r = f ? 0 : -ENOMEM;
        for (size_t start = 0; r >= 0 && start < len;) {
                const char *amp = memchr(body + start, '&', len - start);
                size_t end = amp ? (size_t) (amp - body) : len;
                if (end > start) {
                        if (n == FORM_FIELDS_MAX) {
                                r = -E2BIG;
                                break;
                        }
                        const char *eq = memchr(body + start, '=', end - start);
                        size_t ne = eq ? (size_t) (eq - body) : end;
                        r = form_decode(body + start, ne - start, &f[n].name);
                        if (r >= 0)
                                r = form_decode(eq ? eq + 1 : body + end, eq ? end - ne - 1 : 0, &f[n].value);
                        n++;
                }
                start = end + 1;
        }
        if (r < 0) {
                form_free(f, n);
                return r;
        }
        *ret = f;
        *ret_n = n;
        return 0;
}

const char *form_get(const FormField *f, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(f[i].name, name))
                        return f[i].value;
        return NULL;
}
