/* SPDX-License-Identifier: MIT */
#pragma once

/* fusefs's layer indexes, kept in the store's index. */

#include <stddef.h>

#include "storage/storage.h"

/* ---- layer indexes (storage/layer-fs.c): the FUSE view's tar entry tables and decompression
 * checkpoints, records of one layer under sub-keys whose bytes, like the values, are fusefs's. */
typedef struct LayerIndexRecord {
        const void *subkey;
        size_t subkey_len;
        const void *value;
        size_t value_len;
} LayerIndexRecord;
/* -ENOENT if absent. *ret is malloc()ed and NUL-terminated beyond *ret_len. */
int store_layer_index_get(Store *s, const char *layer_digest, const void *subkey, size_t subkey_len, char **ret,
                          size_t *ret_len);
/* Writes n records of the layer in one synced batch; -EROFS on a read-only store. */
int store_layer_index_put(Store *s, const char *layer_digest, const LayerIndexRecord *recs, size_t n);
