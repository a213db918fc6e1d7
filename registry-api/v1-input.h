/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to registry-api/: the input checks every /v1/registry/ handler runs first. Each
 * refusal is a 400 with the spec's error body {"errors":[{"code","message"}]} whose message
 * is "<field>: <problem>". Each returns true if the input is fine, false once it has set that
 * 400 on resp (the handler then returns 0). */

#include <stdbool.h>
#include <stdint.h>

#include "registry-api/v1.h"

typedef enum V1FieldType {
        V1_STRING,        /* a string; null counts as absent */
        V1_BOOL,          /* true or false */
        V1_STRING_ARRAY,  /* an array of non-empty strings */
        V1_OBJECT,        /* an object; its members are the handler's to check */
        _V1_FIELD_TYPE_MAX,
        _V1_FIELD_TYPE_INVALID = -1,
} V1FieldType;

typedef struct V1Field {
        const char *name;
        V1FieldType type;
        bool required;
} V1Field;

/* The JSON body (NULL = none = {}) has only these fields, each of its type, the required ones
 * present. */
bool v1_body_valid(const V1Request *req, V1Response *resp, const char *code, const V1Field *fields, size_t n_fields);

/* The query string has only the parameters named in known (NULL-terminated; NULL = none),
 * each at most once, names and values without a NUL byte (%00) and in UTF-8. */
bool v1_query_valid(const V1Request *req, V1Response *resp, const char *code, const char *const *known);

/* ?key=true|false|1|0 into *ret (unchanged when absent). */
bool v1_query_bool(const V1Request *req, V1Response *resp, const char *code, const char *key, bool *ret);

/* ?key=N, decimal digits only, min <= N <= max, into *ret (unchanged when absent). */
bool v1_query_uint(const V1Request *req, V1Response *resp, const char *code, const char *key, uint64_t min,
                   uint64_t max, uint64_t *ret);
