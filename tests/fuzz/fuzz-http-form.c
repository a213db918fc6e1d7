/* SPDX-License-Identifier: MIT */
/* application/x-www-form-urlencoded bodies (POST /v2/token): never crashes; what parses has no
 * NUL inside its names and values, and re-encoding every byte as %XX parses to the same fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/http-form.h"

static char *encode(const FormField *f, size_t n) {
        size_t len = 1;
        for (size_t i = 0; i < n; i++)
                len += 3 * (strlen(f[i].name) + strlen(f[i].value)) + 2;
        char *out = malloc(len), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (i)
                        *p++ = '&';
                for (const char *c = f[i].name; *c; c++)
                        p += sprintf(p, "%%%02X", (unsigned char) *c);
                *p++ = '=';
                for (const char *c = f[i].value; *c; c++)
                        p += sprintf(p, "%%%02X", (unsigned char) *c);
        }
        *p = 0;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FormField *f = NULL;
        size_t n = 0;
        if (form_parse((const char *) data, size, &f, &n) < 0)
                return 0;
        char *again = encode(f, n);
        FormField *g = NULL;
        size_t m = 0;
        if (!again || form_parse(again, strlen(again), &g, &m) < 0)
                abort();
        /* fields with an empty name and value re-encode to "=", which parses back the same */
        if (m != n)
                abort();
        for (size_t i = 0; i < n; i++)
                if (strcmp(f[i].name, g[i].name) || strcmp(f[i].value, g[i].value))
                        abort();
        (void) form_get(f, n, "grant_type");
        form_free(f, n);
        form_free(g, m);
        free(again);
        return 0;
}
