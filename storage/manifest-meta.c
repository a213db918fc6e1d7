/* SPDX-License-Identifier: MIT */
/* A scanner for the meta JSON of manifest records (see storage.h). The GC reads one per stored
 * manifest; jansson builds a whole object tree for each (10k blobs: 27 of the plan's 50 ms), while
 * this walks the bytes once. It accepts a strict subset of JSON, the one json_dumps() writes for
 * our meta objects; anything else is refused, and the caller then parses with jansson, so it never
 * has to understand what jansson would read differently. */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "storage/storage.h"

typedef struct Scan {
        const char *p, *end;
} Scan;

static void skip_ws(Scan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static bool take(Scan *s, char c) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != c)
                return false;
        s->p++;
        return true;
}

/* A string of printable ASCII without escapes (digests and media types are). */
static bool scan_string(Scan *s, const char **ret, size_t *ret_len) {
        if (!take(s, '"'))
                return false;
        const char *start = s->p;
        while (s->p < s->end && *s->p != '"') {
                unsigned char c = (unsigned char) *s->p;
                if (c < 0x20 || c >= 0x7f || c == '\\')
                        return false;
                s->p++;
        }
        if (s->p >= s->end)
                return false;
        *ret = start;
        *ret_len = (size_t) (s->p - start);
        s->p++;
        return true;
}

/* A non-negative integer without leading zeros that fits JSON_INTEGER (int64). */
static bool scan_integer(Scan *s) {
        skip_ws(s);
        const char *start = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                s->p++;
        size_t n = (size_t) (s->p - start);
        if (n == 0 || (n > 1 && *start == '0') || n > 19 || (n == 19 && memcmp(start, "9223372036854775807", 19) > 0))
                return false;
        /* 1.5, 1e3 and the like: refused (jansson would read a real) */
        return !(s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'));
}

static bool key_is(const char *k, size_t kl, const char *name) {
        return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

int manifest_meta_scan(const char *json, size_t len, ManifestMeta *ret, ManifestMetaChildFn child, void *userdata) {
        Scan s = { .p = json, .end = json + len };
        ManifestMeta m = {};
        bool seen_size = false, seen_created = false, seen_artifact = false;
        if (!json || !take(&s, '{'))
                return -EINVAL;
        if (take(&s, '}'))
                goto done;
        for (;;) {
                const char *k;
                size_t kl;
                if (!scan_string(&s, &k, &kl) || !take(&s, ':'))
                        return -EINVAL;
                /* a key twice: jansson keeps the last, this scanner does not guess */
                if (key_is(k, kl, "mediaType")) {
                        if (m.media_type || !scan_string(&s, &m.media_type, &m.media_type_len))
                                return -EINVAL;
                } else if (key_is(k, kl, "subject")) {
                        if (m.subject || !scan_string(&s, &m.subject, &m.subject_len))
                                return -EINVAL;
                } else if (key_is(k, kl, "artifactType")) {
                        const char *v;
                        size_t vl;
                        if (seen_artifact || !scan_string(&s, &v, &vl))
                                return -EINVAL;
                        seen_artifact = true;
                } else if (key_is(k, kl, "size") || key_is(k, kl, "created")) {
                        bool *seen = key_is(k, kl, "size") ? &seen_size : &seen_created;
                        if (*seen || !scan_integer(&s))
                                return -EINVAL;
                        *seen = true;
                } else if (key_is(k, kl, "children")) {
                        if (m.has_children || !take(&s, '['))
                                return -EINVAL;
                        m.has_children = true;
                        if (!take(&s, ']'))
                                for (;;) {
                                        const char *v;
                                        size_t vl;
                                        if (!scan_string(&s, &v, &vl))
                                                return -EINVAL;
                                        if (child) {
                                                int r = child(userdata, m.n_children, v, vl);
                                                if (r < 0)
                                                        return r;
                                        }
                                        m.n_children++;
                                        if (take(&s, ']'))
                                                break;
                                        if (!take(&s, ','))
                                                return -EINVAL;
                                }
                } else
                        return -EINVAL; /* not a key store_manifest_put() writes */
                if (take(&s, '}'))
                        break;
                if (!take(&s, ','))
                        return -EINVAL;
        }
done:
        skip_ws(&s);
        if (s.p != s.end)
                return -EINVAL;
        if (ret)
                *ret = m;
        return 0;
}
