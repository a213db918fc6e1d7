/* SPDX-License-Identifier: MIT */
/* The block list (see storage.h, "governance records"):
 *   block  digest -> JSON {reason, cves[], time (RFC 3339), time_ns, actor, severity?,
 *                          source? {format?, report?}, counts? {severity: n}}
 * Its keys exist only here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/store-internal.h"

void block_info_done(BlockInfo *b) {
        if (!b)
                return;
        free(b->reason);
        strv_free(b->cves);
        free(b->severity);
        free(b->source_format);
        free(b->source_report);
        json_decref(b->counts);
        free(b->actor);
        *b = (BlockInfo) {};
}

json_t *block_info_to_json(const BlockInfo *b) {
        char t[64];
        json_t *cves = json_array();
        for (char **c = b->cves; c && *c; c++)
                json_array_append_new(cves, json_string(*c));
        json_t *o = json_pack("{s:s, s:o, s:s, s:I, s:s}", "reason", strempty(b->reason), "cves", cves, "time",
                              format_timestamp(t, sizeof t, b->time), "time_ns", (json_int_t) b->time, "actor",
                              b->actor ? b->actor : "anonymous");
        if (!o)
                return NULL;
        if (b->severity)
                json_object_set_new(o, "severity", json_string(b->severity));
        if (b->source_format || b->source_report) {
                json_t *src = json_object();
                if (b->source_format)
                        json_object_set_new(src, "format", json_string(b->source_format));
                if (b->source_report)
                        json_object_set_new(src, "report", json_string(b->source_report));
                json_object_set_new(o, "source", src);
        }
        if (b->counts)
                json_object_set(o, "counts", b->counts);
        return o;
}

static char *string_dup(json_t *o, const char *key) {
        const char *v = json_string_value(json_object_get(o, key));
        return v ? strdup(v) : NULL;
}

static int block_decode(const char *digest, size_t dlen, const char *val, size_t vlen, BlockInfo *ret) {
        if (dlen == 0 || dlen >= DIGEST_MAX_LEN)
                return -EBADMSG;
        _cleanup_(json_decrefp) json_t *j = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(j))
                return -EBADMSG;
        BlockInfo b = {};
        memcpy(b.digest, digest, dlen);
        b.digest[dlen] = 0;
        b.reason = string_dup(j, "reason");
        b.severity = string_dup(j, "severity");
        b.actor = string_dup(j, "actor");
        json_t *src = json_object_get(j, "source");
        b.source_format = string_dup(src, "format");
        b.source_report = string_dup(src, "report");
        json_t *counts = json_object_get(j, "counts");
        if (json_is_object(counts))
                b.counts = json_deep_copy(counts);
        json_t *t = json_object_get(j, "time_ns");
        int64_t ns = 0;
        if (json_is_integer(t))
                b.time = json_integer_value(t);
        else if (json_is_string(json_object_get(j, "time")) &&
                 parse_timestamp_ns(json_string_value(json_object_get(j, "time")), &ns) >= 0)
                b.time = ns;
        json_t *cves = json_object_get(j, "cves");
        b.cves = calloc(json_array_size(cves) + 1, sizeof(char *));
        if (!b.cves) {
                block_info_done(&b);
                return -ENOMEM;
        }
        size_t i, n = 0;
        json_t *c;
        json_array_foreach(cves, i, c)
                if (json_is_string(c) && !(b.cves[n++] = strdup(json_string_value(c)))) {
                        block_info_done(&b);
                        return -ENOMEM;
                }
        *ret = b;
        return 0;
}

int store_block_put(Store *s, const BlockInfo *b) {
        if (s->read_only)
                return -EROFS;
        if (!b || digest_parse(b->digest, NULL) < 0 || !b->reason)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *j = block_info_to_json(b);
        _cleanup_free_ char *val = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!val)
                return -ENOMEM;
        return store_kv_put(s, INDEX_BLOCK, b->digest, strlen(b->digest), val, strlen(val));
}

int store_block_get(Store *s, const char *digest, BlockInfo *ret) {
        if (!digest)
                return -EINVAL;
        _cleanup_free_ char *val = NULL;
        size_t vlen;
        int r = store_kv_get(s, NULL, INDEX_BLOCK, digest, strlen(digest), &val, &vlen);
        if (r < 0)
                return r;
        return block_decode(digest, strlen(digest), val, vlen, ret);
}

int store_block_delete(Store *s, const char *digest) {
        if (s->read_only)
                return -EROFS;
        if (!digest)
                return -EINVAL;
        int r = store_kv_get(s, NULL, INDEX_BLOCK, digest, strlen(digest), NULL, NULL);
        if (r < 0)
                return r;
        return store_kv_delete(s, INDEX_BLOCK, digest, strlen(digest));
}

typedef struct BlockIter {
        BlockFn fn;
        void *userdata;
} BlockIter;

static int block_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        BlockIter *it = userdata;
        BlockInfo b;
        int r = block_decode(key, klen, val, vlen, &b);
        if (r == -EBADMSG)
                return 0; /* not a record of ours */
        if (r < 0)
                return r;
        r = it->fn(it->userdata, &b);
        block_info_done(&b);
        return r;
}

int store_blocks_foreach(Store *s, IndexSnapshot *snap, BlockFn fn, void *userdata) {
        BlockIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_BLOCK, NULL, 0, NULL, 0, block_cb, &it);
}
