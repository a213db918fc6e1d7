/* SPDX-License-Identifier: MIT */
/* Reading the audit log (see storage.h, "governance records"; index.c's audit_add() writes it):
 *   audit  time(u64 BE)\0seq(u64 BE) -> JSON {time, actor, action, target, result, detail?}
 * A cursor is the hex of an event's key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/store-internal.h"

typedef struct AuditIter {
        const AuditQuery *q;
        AuditFn fn;
        void *userdata;
        size_t n;
        bool more;
} AuditIter;

static int audit_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        AuditIter *it = userdata;
        const AuditQuery *q = it->q;
        _cleanup_(json_decrefp) json_t *j = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(j))
                return 0;
        AuditEvent e = {
                .time = json_integer_value(json_object_get(j, "time")),
                .actor = json_string_value(json_object_get(j, "actor")),
                .action = json_string_value(json_object_get(j, "action")),
                .target = json_string_value(json_object_get(j, "target")),
                .result = json_string_value(json_object_get(j, "result")),
                .detail = json_object_get(j, "detail"),
                .record = j,
        };
        if ((q->action && !streq_ptr(e.action, q->action)) || (q->actor && !streq_ptr(e.actor, q->actor)) ||
            (q->target && !strstr(strempty(e.target), q->target)))
                return 0;
        if (q->limit > 0 && it->n >= q->limit) {
                it->more = true;
                return 1;
        }
        _cleanup_free_ char *cursor = malloc(klen * 2 + 1);
        if (!cursor)
                return -ENOMEM;
        hex_encode((const uint8_t *) key, klen, cursor);
        e.cursor = cursor;
        it->n++;
        return it->fn(it->userdata, &e);
}

int store_audit_foreach(Store *s, const AuditQuery *q, AuditFn fn, void *userdata) {
        static const AuditQuery all = {};
        if (!q)
                q = &all;
        _cleanup_free_ uint8_t *after = NULL;
        size_t alen = 0;
        if (q->after && *q->after) {
                size_t cl = strlen(q->after);
                if (cl % 2)
                        return -EINVAL;
                after = malloc(cl / 2 + 1);
                if (!after)
                        return -ENOMEM;
                if (hex_decode(q->after, cl, after) < 0)
                        return -EINVAL;
                alen = cl / 2;
        }
        AuditIter it = { .q = q, .fn = fn, .userdata = userdata };
        int r = store_kv_iterate(s, NULL, INDEX_AUDIT, NULL, 0, alen ? after : NULL, alen, audit_cb, &it);
        if (r < 0)
                return r;
        return it.more ? 1 : 0;
}
