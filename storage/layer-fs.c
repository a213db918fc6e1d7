/* SPDX-License-Identifier: MIT */
/* The layer_fs column (see storage.h, "layer indexes"): fusefs's tar entry tables and decompression
 * checkpoints, keyed "<layer digest>\0<sub-key>". storage owns the key's first part; the sub-keys and
 * values are fusefs's (fusefs/layers.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/layer-fs.h"
#include "storage/store-internal.h"

static char *layer_key(const char *digest, const void *subkey, size_t subkey_len, size_t *ret_len) {
        size_t dl = strlen(digest);
        char *k = malloc(dl + 1 + subkey_len);
        if (!k)
                return NULL;
        memcpy(k, digest, dl);
        k[dl] = 0;
        if (subkey_len > 0)
                memcpy(k + dl + 1, subkey, subkey_len);
        *ret_len = dl + 1 + subkey_len;
        return k;
}

int store_layer_index_get(Store *s, const char *layer_digest, const void *subkey, size_t subkey_len, char **ret,
                          size_t *ret_len) {
        size_t kl;
        _cleanup_free_ char *k = layer_key(layer_digest, subkey, subkey_len, &kl);
        if (!k)
                return -ENOMEM;
        return store_kv_get(s, NULL, INDEX_LAYER_FS, k, kl, ret, ret_len);
}

int store_layer_index_put(Store *s, const char *layer_digest, const LayerIndexRecord *recs, size_t n) {
        if (s->read_only)
                return -EROFS;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t kl;
                _cleanup_free_ char *k = layer_key(layer_digest, recs[i].subkey, recs[i].subkey_len, &kl);
                if (!k)
                        return -ENOMEM;
                index_batch_put(b, INDEX_LAYER_FS, k, kl, recs[i].value, recs[i].value_len);
        }
        return store_batch_commit(s, b);
}
