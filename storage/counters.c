/* SPDX-License-Identifier: MIT */
/* Governance's persistent counters (see storage.h, "governance records"):
 *   meta  "governance/<name>" -> decimal text
 * Their keys exist only here. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/store-internal.h"

#define COUNTER_PREFIX "governance/"

static bool counter_name_is_valid(const char *name) {
        return name && *name && strlen(name) < 128;
}

static int counter_read(Store *s, const char *key, uint64_t *ret) {
        _cleanup_free_ char *val = NULL;
        int r = store_kv_get(s, NULL, INDEX_META, key, strlen(key), &val, NULL);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = strtoull(val, NULL, 10);
        return 0;
}

int store_governance_counter_get(Store *s, const char *name, uint64_t *ret) {
        if (!counter_name_is_valid(name))
                return -EINVAL;
        _cleanup_free_ char *key = strdup_printf(COUNTER_PREFIX "%s", name);
        if (!key)
                return -ENOMEM;
        return counter_read(s, key, ret);
}

int store_governance_counter_add(Store *s, const char *name, uint64_t delta, uint64_t *ret) {
        if (s->read_only)
                return -EROFS;
        if (!counter_name_is_valid(name))
                return -EINVAL;
        _cleanup_free_ char *key = strdup_printf(COUNTER_PREFIX "%s", name);
        if (!key)
                return -ENOMEM;
        pthread_mutex_lock(&s->counters_lock);
        uint64_t v = 0;
        int r = counter_read(s, key, &v);
        if (r >= 0) {
                v += delta;
                char buf[32];
                snprintf(buf, sizeof buf, "%" PRIu64, v);
                r = store_kv_put(s, INDEX_META, key, strlen(key), buf, strlen(buf));
        }
        pthread_mutex_unlock(&s->counters_lock);
        if (r >= 0 && ret)
                *ret = v;
        return r;
}
