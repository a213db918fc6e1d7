/* SPDX-License-Identifier: MIT */
/* The block list: the store's records (store_block_*()) kept in memory for the pull and
 * promotion checks, which look at a digest and, for an index, at its children; and the persistent
 * counters of block events behind plura_cve_block_events_total. */

#include <stdio.h>

#include "common/metrics.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"
#include "storage/records.h"

static int block_load(void *userdata, const BlockInfo *b) {
        Governance *g = userdata;
        json_t *rec = block_info_to_json(b);
        if (!rec)
                return -ENOMEM;
        json_object_set_new(g->blocked, b->digest, rec);
        g->n_blocked = json_object_size(g->blocked);
        return 0;
}

bool gov_is_blocked(Governance *g, const char *digest, json_t **ret_info) {
        if (__atomic_load_n(&g->n_blocked, __ATOMIC_ACQUIRE) == 0)
                return false;
        pthread_rwlock_rdlock(&g->block_lock);
        json_t *rec = json_object_get(g->blocked, digest);
        if (rec && ret_info)
                *ret_info = json_deep_copy(rec);
        pthread_rwlock_unlock(&g->block_lock);
        return rec != NULL;
}

int gov_blocks_load(Governance *g) {
        return store_blocks_foreach(g->store, NULL, block_load, g);
}

int governance_block(Governance *g, const BlockInfo *b, const char *actor, json_t **ret_record) {
        BlockInfo copy = *b;
        copy.time = clock_now_ns();
        copy.actor = (char *) (actor ? actor : "anonymous");
        _cleanup_(json_decrefp) json_t *record = block_info_to_json(&copy);
        if (!record)
                return -ENOMEM;
        pthread_rwlock_wrlock(&g->block_lock);
        bool existed = json_object_get(g->blocked, b->digest) != NULL;
        int r = store_block_put(g->store, &copy);
        if (r >= 0) {
                json_object_set_new(g->blocked, b->digest, json_deep_copy(record));
                __atomic_store_n(&g->n_blocked, json_object_size(g->blocked), __ATOMIC_RELEASE);
        }
        pthread_rwlock_unlock(&g->block_lock);
        if (r < 0)
                return r;
        gov_cve_block_event(g, "block");
        (void) store_audit(g->store, actor, "block", b->digest, "ok", record);
        if (ret_record)
                *ret_record = steal_pointer(&record);
        return existed ? 0 : 1;
}

int governance_unblock(Governance *g, const char *digest, const char *actor, json_t **ret_was) {
        pthread_rwlock_wrlock(&g->block_lock);
        json_t *old = json_incref(json_object_get(g->blocked, digest));
        int r = -ENOENT;
        if (old) {
                r = store_block_delete(g->store, digest);
                if (r >= 0) {
                        json_object_del(g->blocked, digest);
                        __atomic_store_n(&g->n_blocked, json_object_size(g->blocked), __ATOMIC_RELEASE);
                }
        }
        pthread_rwlock_unlock(&g->block_lock);
        if (r < 0) {
                json_decref(old);
                return r;
        }
        json_t *d = json_pack("{s:O}", "was", old);
        (void) store_audit(g->store, actor, "unblock", digest, "ok", d);
        json_decref(d);
        if (ret_was)
                *ret_was = old;
        else
                json_decref(old);
        return 0;
}

json_t *governance_block_list(Governance *g) {
        json_t *arr = json_array();
        pthread_rwlock_rdlock(&g->block_lock);
        const char *k;
        json_t *v;
        json_object_foreach(g->blocked, k, v) {
                json_t *e = json_deep_copy(v);
                json_object_set_new(e, "digest", json_string(k));
                json_array_append_new(arr, e);
        }
        pthread_rwlock_unlock(&g->block_lock);
        return arr;
}

int governance_block_get(Governance *g, const char *digest, json_t **ret) {
        return gov_is_blocked(g, digest, ret) ? 0 : -ENOENT;
}

static void block_reason(json_t *info, const char *digest, const char *via, char *reason, size_t n) {
        const char *why = json_string_value(json_object_get(info, "reason"));
        json_t *cves = json_object_get(info, "cves");
        char cvebuf[256] = "";
        size_t i;
        json_t *c;
        json_array_foreach(cves, i, c) {
                if (!json_is_string(c))
                        continue;
                size_t l = strlen(cvebuf);
                if (i >= 5) {
                        snprintf(cvebuf + l, sizeof(cvebuf) - l, ", +%zu more", json_array_size(cves) - i);
                        break;
                }
                snprintf(cvebuf + l, sizeof(cvebuf) - l, "%s%s", l ? ", " : "", json_string_value(c));
        }
        snprintf(reason, n, "%s%s%s is blocked: %s%s%s%s", via ? "index child " : "", digest, "",
                 why ? why : "blocked", cvebuf[0] ? " (" : "", cvebuf, cvebuf[0] ? ")" : "");
}

static int closure_check(Governance *g, const char *digest, unsigned depth, char *reason, size_t reason_len,
                         char blocked_digest[DIGEST_MAX_LEN]) {
        json_t *info = NULL;
        if (gov_is_blocked(g, digest, &info)) {
                block_reason(info, digest, depth > 0 ? "child" : NULL, reason, reason_len);
                if (blocked_digest)
                        snprintf(blocked_digest, DIGEST_MAX_LEN, "%s", digest);
                json_decref(info);
                return -EACCES;
        }
        if (depth > 4)
                return 0;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (store_manifest_parsed(g->store, NULL, digest, &m) < 0)
                return 0; /* a blob, or unknown */
        if (!manifest_kind_is_index(m->kind))
                return 0;
        for (size_t i = 0; i < m->n_manifests; i++) {
                int r = closure_check(g, m->manifests[i].digest, depth + 1, reason, reason_len, blocked_digest);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gov_check_blocked_closure(Governance *g, const char *digest, char *reason, size_t reason_len,
                              char blocked_digest[DIGEST_MAX_LEN]) {
        if (__atomic_load_n(&g->n_blocked, __ATOMIC_ACQUIRE) == 0)
                return 0;
        return closure_check(g, digest, 0, reason, reason_len, blocked_digest);
}

/* ------------------------------------------------------------------ counters */

uint64_t gov_counter_get(Governance *g, const char *name) {
        uint64_t v = 0;
        (void) store_governance_counter_get(g->store, name, &v);
        return v;
}

static const char *const cve_event_kinds[] = { "block", "pull_denied", "promote_denied" };

void gov_cve_block_event(Governance *g, const char *kind) {
        char name[64], labels[64];
        snprintf(name, sizeof(name), "cve_block_events/%s", kind);
        snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
        (void) store_governance_counter_add(g->store, name, 1, NULL);
        metrics_counter_add(M_CVE_BLOCK_EVENTS, labels, 1);
}

const char *const *gov_cve_event_kinds(size_t *n) {
        *n = ELEMENTSOF(cve_event_kinds);
        return cve_event_kinds;
}
