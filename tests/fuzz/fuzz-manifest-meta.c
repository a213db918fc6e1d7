/* SPDX-License-Identifier: MIT */
/* manifest_meta_scan on arbitrary bytes, against jansson: whatever the scanner accepts, jansson
 * must read as the same object (media type, subject, children in order), so that the GC's fast
 * path never sees a record differently from the jansson path it replaces. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

typedef struct Kids {
        const char *p[64];
        size_t len[64];
        size_t n;
} Kids;

static int kid_cb(void *userdata, size_t i, const char *digest, size_t len) {
        Kids *k = userdata;
        if (i != k->n)
                abort();
        if (k->n == 64)
                return -E2BIG;
        k->p[k->n] = digest;
        k->len[k->n++] = len;
        return 0;
}

static void same_string(json_t *v, const char *p, size_t len) {
        if (!p) {
                if (v)
                        abort();
                return;
        }
        if (!json_is_string(v) || json_string_length(v) != len || memcmp(json_string_value(v), p, len) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Kids k = {};
        ManifestMeta m;
        int r = manifest_meta_scan((const char *) data, size, &m, kid_cb, &k);
        if (r == -E2BIG || r == -EINVAL)
                return 0;
        if (r != 0)
                abort();
        json_error_t je;
        json_t *o = json_loadb((const char *) data, size, 0, &je);
        if (!json_is_object(o))
                abort();
        same_string(json_object_get(o, "mediaType"), m.media_type, m.media_type_len);
        same_string(json_object_get(o, "subject"), m.subject, m.subject_len);
        json_t *c = json_object_get(o, "children");
        if (m.has_children != (c != NULL) || (c && (!json_is_array(c) || json_array_size(c) != m.n_children || m.n_children != k.n)))
                abort();
        for (size_t i = 0; c && i < k.n; i++)
                same_string(json_array_get(c, i), k.p[i], k.len[i]);
        json_t *v;
        if ((v = json_object_get(o, "size")) && (!json_is_integer(v) || json_integer_value(v) < 0))
                abort();
        if ((v = json_object_get(o, "created")) && (!json_is_integer(v) || json_integer_value(v) < 0))
                abort();
        json_decref(o);
        return 0;
}
