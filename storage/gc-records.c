/* SPDX-License-Identifier: MIT */
/* The GC's records in the meta column (see storage.h, "GC records"): its reports, the last report
 * and the sweep intent. Their keys exist only here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/gc-records.h"
#include "storage/store-internal.h"

#define REPORT_PREFIX "gc/report/"
#define REPORT_PREFIX_LEN (sizeof(REPORT_PREFIX) - 1)
#define REPORT_KEY_LEN (REPORT_PREFIX_LEN + 8) /* + start time, u64 big endian */
#define LAST_KEY "gc/last"
#define SWEEP_KEY "gc/sweep"

static void report_key(int64_t started, uint8_t key[REPORT_KEY_LEN]) {
        memcpy(key, REPORT_PREFIX, REPORT_PREFIX_LEN);
        put_u64_be(key + REPORT_PREFIX_LEN, (uint64_t) started);
}

typedef struct ReportKeys {
        uint8_t (*keys)[REPORT_KEY_LEN];
        size_t n, allocated;
} ReportKeys;

static int report_key_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ReportKeys *k = userdata;
        if (klen != REPORT_KEY_LEN)
                return 0;
        if (k->n >= k->allocated) {
                size_t na = k->allocated ? k->allocated * 2 : 128;
                uint8_t (*n)[REPORT_KEY_LEN] = realloc(k->keys, na * sizeof *n);
                if (!n)
                        return -ENOMEM;
                k->keys = n;
                k->allocated = na;
        }
        memcpy(k->keys[k->n++], key, REPORT_KEY_LEN);
        return 0;
}

int store_gc_report_put(Store *s, const char *json, int64_t started, size_t keep, bool clear_intent) {
        if (s->read_only)
                return -EROFS;
        uint8_t key[REPORT_KEY_LEN];
        report_key(started, key);
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        /* the kept reports are found by their keys (start times, oldest first), not by parsing them */
        ReportKeys old = {};
        int r = store_kv_iterate(s, NULL, INDEX_META, REPORT_PREFIX, REPORT_PREFIX_LEN, NULL, 0, report_key_cb, &old);
        if (r < 0) {
                free(old.keys);
                return r;
        }
        for (size_t i = 0; i < old.n && i + keep < old.n + 1; i++)
                if (memcmp(old.keys[i], key, sizeof key) != 0)
                        index_batch_delete(b, INDEX_META, old.keys[i], sizeof key);
        free(old.keys);
        index_batch_put(b, INDEX_META, key, sizeof key, json, strlen(json));
        index_batch_put(b, INDEX_META, LAST_KEY, strlen(LAST_KEY), json, strlen(json));
        if (clear_intent)
                index_batch_delete(b, INDEX_META, SWEEP_KEY, strlen(SWEEP_KEY));
        return index_batch_commit_full(s, b, false); /* synced by store_sync_wal() or the next synced write */
}

int store_gc_report_last(Store *s, char **ret_json) {
        return store_kv_get(s, NULL, INDEX_META, LAST_KEY, strlen(LAST_KEY), ret_json, NULL);
}

typedef struct ReportIter {
        GcReportFn fn;
        void *userdata;
} ReportIter;

static int report_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ReportIter *it = userdata;
        if (klen != REPORT_KEY_LEN)
                return 0;
        return it->fn(it->userdata, (int64_t) get_u64_be((const uint8_t *) key + REPORT_PREFIX_LEN), val, vlen);
}

int store_gc_reports_foreach(Store *s, GcReportFn fn, void *userdata) {
        ReportIter it = { fn, userdata };
        return store_kv_iterate(s, NULL, INDEX_META, REPORT_PREFIX, REPORT_PREFIX_LEN, NULL, 0, report_cb, &it);
}

int store_gc_sweep_intent_put(Store *s, const char *json) {
        return store_kv_put(s, INDEX_META, SWEEP_KEY, strlen(SWEEP_KEY), json, strlen(json));
}

int store_gc_sweep_intent_get(Store *s, char **ret_json) {
        return store_kv_get(s, NULL, INDEX_META, SWEEP_KEY, strlen(SWEEP_KEY), ret_json, NULL);
}

int store_gc_sweep_intent_clear(Store *s) {
        return store_kv_delete(s, INDEX_META, SWEEP_KEY, strlen(SWEEP_KEY));
}
