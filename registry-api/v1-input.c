/* SPDX-License-Identifier: MIT */
/* Input checks of the /v1/registry/ handlers (see v1-input.h). The query string is read with
 * MHD's _n functions: MHD unescapes "%00" into a NUL byte, so a value's C string can be shorter
 * than the value (?tag=nul%00evil reads as "nul"); only its length tells. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "registry-api/server-internal.h"
#include "registry-api/v1-input.h"

#define QUERY_KNOWN_MAX 16

static const char *const field_type_expectation[_V1_FIELD_TYPE_MAX] = {
        [V1_STRING] = "a string",
        [V1_BOOL] = "true or false",
        [V1_STRING_ARRAY] = "an array of non-empty strings",
        [V1_OBJECT] = "an object",
};

static const char *json_type_name(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL: return "a number";
        case JSON_TRUE:
        case JSON_FALSE: return "a boolean";
        default: return "null";
        }
}

/* A name from the request, printable in a message: bytes outside printable ASCII as \xNN. */
static const char *printable(const char *s, size_t n, char *buf, size_t size) {
        size_t l = 0;
        for (size_t i = 0; i < n && l + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0x20 && c < 0x7f)
                        buf[l++] = (char) c;
                else
                        l += (size_t) snprintf(buf + l, size - l, "\\x%02x", c);
        }
        buf[l] = 0;
        return buf;
}

static bool field_type_ok(const V1Field *f, json_t *v, char *why, size_t why_size) {
        size_t i;
        json_t *e;
        switch (f->type) {
        case V1_STRING:
                return json_is_string(v) || json_is_null(v);
        case V1_BOOL:
                return json_is_boolean(v);
        case V1_OBJECT:
                return json_is_object(v);
        case V1_STRING_ARRAY:
                if (!json_is_array(v))
                        return false;
                json_array_foreach(v, i, e)
                        if (!json_is_string(e) || json_string_length(e) == 0) {
                                snprintf(why, why_size, "[%zu]: expected a non-empty string, got %s", i,
                                         json_is_string(e) ? "an empty string" : json_type_name(e));
                                return false;
                        }
                return true;
        default:
                return false;
        }
}

static char *known_list(const V1Field *fields, size_t n, char *buf, size_t size) {
        size_t l = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n && l < size; i++)
                l += (size_t) snprintf(buf + l, size - l, "%s%s", i ? ", " : "", fields[i].name);
        return buf;
}

bool v1_body_valid(const V1Request *req, V1Response *resp, const char *code, const V1Field *fields, size_t n_fields) {
        char known[256];
        const char *key;
        json_t *v;
        json_object_foreach(req->body, key, v) {
                const V1Field *f = NULL;
                for (size_t i = 0; i < n_fields && !f; i++)
                        if (streq(fields[i].name, key))
                                f = &fields[i];
                if (!f) {
                        char name[128];
                        printable(key, strlen(key), name, sizeof name);
                        if (n_fields == 0)
                                v1_error(resp, 400, code, NULL, "%s: unknown field (this endpoint takes no body)", name);
                        else
                                v1_error(resp, 400, code, NULL, "%s: unknown field (known: %s)", name,
                                         known_list(fields, n_fields, known, sizeof known));
                        return false;
                }
                char why[128] = "";
                if (!field_type_ok(f, v, why, sizeof why)) {
                        if (why[0])
                                v1_error(resp, 400, code, NULL, "%s%s", key, why);
                        else
                                v1_error(resp, 400, code, NULL, "%s: expected %s, got %s", key,
                                         field_type_expectation[f->type], json_type_name(v));
                        return false;
                }
        }
        for (size_t i = 0; i < n_fields; i++) {
                json_t *x = req->body ? json_object_get(req->body, fields[i].name) : NULL;
                if (fields[i].required && (!x || json_is_null(x))) {
                        v1_error(resp, 400, code, NULL, "%s: missing (expected %s)", fields[i].name,
                                 field_type_expectation[fields[i].type]);
                        return false;
                }
        }
        return true;
}

typedef struct QueryCheck {
        const char *const *known;
        unsigned seen[QUERY_KNOWN_MAX];
        char field[128];
        char problem[320]; /* "" = fine; room for the list of known names (256) */
} QueryCheck;

static enum MHD_Result query_check_one(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                       const char *value, size_t value_size) {
        QueryCheck *c = cls;
        printable(key, key_size, c->field, sizeof c->field);
        if (strlen(key) != key_size || !utf8_is_valid(key, key_size)) {
                snprintf(c->problem, sizeof c->problem, "the parameter name is not text (a NUL byte or invalid UTF-8)");
                return MHD_NO;
        }
        size_t i = 0;
        for (; c->known && c->known[i]; i++)
                if (streq(c->known[i], key))
                        break;
        if (!c->known || !c->known[i]) {
                char list[256] = "";
                size_t l = 0;
                for (size_t j = 0; c->known && c->known[j] && l < sizeof list; j++)
                        l += (size_t) snprintf(list + l, sizeof list - l, "%s%s", j ? ", " : "", c->known[j]);
                if (l)
                        snprintf(c->problem, sizeof c->problem, "unknown parameter (known: %s)", list);
                else
                        snprintf(c->problem, sizeof c->problem, "unknown parameter (this endpoint takes none)");
                return MHD_NO;
        }
        if (i < QUERY_KNOWN_MAX && c->seen[i]++ > 0) {
                snprintf(c->problem, sizeof c->problem, "given more than once");
                return MHD_NO;
        }
        if (value && strlen(value) != value_size) {
                snprintf(c->problem, sizeof c->problem, "contains a NUL byte (%%00)");
                return MHD_NO;
        }
        if (value && !utf8_is_valid(value, value_size)) {
                snprintf(c->problem, sizeof c->problem, "not valid UTF-8");
                return MHD_NO;
        }
        return MHD_YES;
}

bool v1_query_valid(const V1Request *req, V1Response *resp, const char *code, const char *const *known) {
        Request *rq = req->conn;
        if (!rq)
                return true;
        QueryCheck c = { .known = known };
        (void) MHD_get_connection_values_n(rq->conn, MHD_GET_ARGUMENT_KIND, query_check_one, &c);
        if (!c.problem[0])
                return true;
        v1_error(resp, 400, code, NULL, "%s: %s", c.field, c.problem);
        return false;
}

bool v1_query_bool(const V1Request *req, V1Response *resp, const char *code, const char *key, bool *ret) {
        const char *v = v1_request_query(req, key);
        if (!v)
                return true;
        if (streq(v, "true") || streq(v, "1") || streq(v, "yes"))
                *ret = true;
        else if (streq(v, "false") || streq(v, "0") || streq(v, "no"))
                *ret = false;
        else {
                char shown[96];
                v1_error(resp, 400, code, NULL, "%s: expected true or false, got '%s'", key,
                         printable(v, strlen(v), shown, sizeof shown));
                return false;
        }
        return true;
}

bool v1_query_uint(const V1Request *req, V1Response *resp, const char *code, const char *key, uint64_t min,
                   uint64_t max, uint64_t *ret) {
        const char *v = v1_request_query(req, key);
        if (!v)
                return true;
        uint64_t x = 0;
        bool ok = *v != 0;
        for (const char *p = v; ok && *p; p++) {
                if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        ok = false;
                else
                        x = x * 10 + (uint64_t) (*p - '0');
        }
        if (!ok || x < min || x > max) {
                char shown[96];
                v1_error(resp, 400, code, NULL, "%s: expected %" PRIu64 "..%" PRIu64 ", got '%s'", key, min, max,
                         printable(v, strlen(v), shown, sizeof shown));
                return false;
        }
        *ret = x;
        return true;
}
