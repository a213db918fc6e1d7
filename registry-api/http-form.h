/* SPDX-License-Identifier: MIT */
#pragma once

/* application/x-www-form-urlencoded bodies (the OAuth2 form of POST /v2/token). Pure; no I/O. */

#include <stddef.h>

typedef struct FormField {
        char *name;
        char *value;
} FormField;

/* Splits at '&', each pair at its first '=' (a pair without one has an empty value), '+' is a space
 * and %XX a byte (WHATWG URL §5.1). -EINVAL for a malformed %-escape or a decoded NUL byte, -E2BIG
 * past 64 fields. Empty pairs ("a=1&&b=2") are skipped. The caller frees with form_free(). */
int form_parse(const char *body, size_t len, FormField **ret, size_t *ret_n);
void form_free(FormField *f, size_t n);
/* The value of the first field of that name, or NULL. */
const char *form_get(const FormField *f, size_t n, const char *name);
