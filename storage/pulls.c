/* SPDX-License-Identifier: MIT */
/* Pull bookkeeping (last pulled, pull counts): batched in memory, flushed by a thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/records.h"
#include "storage/store-internal.h"

/* ---- pulls: batched in memory, flushed by a thread */

#define PULL_BUCKETS 256U
#define PULL_FLUSH_EARLY 10000U

struct PullEntry {
        PullEntry *next;
        char *repo;
        char *tag;
        char *digest;
        int64_t time;
};

static void pull_entry_free(PullEntry *e) {
        free(e->repo);
        free(e->tag);
        free(e->digest);
        free(e);
}

void store_note_pull(Store *s, const char *repo, const char *tag, const char *digest) {
        if (s->read_only || !repo || (!tag && !digest))
                return;
        int64_t now = clock_now_ns();
        uint64_t h = hash_fnv1a(repo, strlen(repo) + 1, HASH_FNV1A_INIT);
        if (tag)
                h = hash_fnv1a(tag, strlen(tag), h);
        h = hash_fnv1a("\0", 1, h);
        if (digest)
                h = hash_fnv1a(digest, strlen(digest), h);
        size_t bucket = h % PULL_BUCKETS;

        pthread_mutex_lock(&s->pulls_lock);
        if (!s->pulls) {
                s->pulls = calloc(PULL_BUCKETS, sizeof(PullEntry *));
                if (!s->pulls)
                        goto unlock;
        }
        for (PullEntry *e = s->pulls[bucket]; e; e = e->next)
                if (streq(e->repo, repo) && streq_ptr(e->tag, tag) && streq_ptr(e->digest, digest)) {
                        e->time = MAX(e->time, now);
                        goto unlock;
                }
        PullEntry *e = calloc(1, sizeof(PullEntry));
        if (!e)
                goto unlock;
        e->repo = strdup(repo);
        e->tag = tag ? strdup(tag) : NULL;
        e->digest = digest ? strdup(digest) : NULL;
        e->time = now;
        if (!e->repo || (tag && !e->tag) || (digest && !e->digest)) {
                pull_entry_free(e);
                goto unlock;
        }
        e->next = s->pulls[bucket];
        s->pulls[bucket] = e;
        if (++s->n_pulls >= PULL_FLUSH_EARLY)
                pthread_cond_signal(&s->pulls_cond);
unlock:
        pthread_mutex_unlock(&s->pulls_lock);
}

static int pull_apply(Store *s, PullEntry *e) {
        int r = 0;
        if (e->tag) {
                const char *t1[1] = { e->tag };
                lock_tags(s, e->repo, t1, 1, true);
                TagInfo t;
                if (tag_read(s, NULL, e->repo, e->tag, &t) >= 0 && (!e->digest || streq(t.digest, e->digest)) &&
                    t.last_pulled < e->time) {
                        t.last_pulled = e->time;
                        uint8_t rec[TAG_RECORD_MAX];
                        size_t rl = tag_info_encode(&t, rec), kl;
                        _cleanup_free_ char *k = index_key_join(&kl, e->repo, e->tag, NULL);
                        char *err = NULL;
                        if (k) {
                                rocksdb_put_cf(s->db, s->write_async, s->cf[INDEX_TAG], k, kl, (const char *) rec, rl, &err);
                                if (err) {
                                        r = -EIO;
                                        rocksdb_free(err);
                                }
                        }
                }
                lock_tags(s, e->repo, t1, 1, false);
        }
        if (e->digest) {
                store_digest_lock(s, e->digest);
                RepoManifestInfo rm;
                if (repo_manifest_read(s, e->repo, e->digest, &rm) >= 0 && rm.last_pulled < e->time) {
                        rm.last_pulled = e->time;
                        uint8_t rec[REPO_MANIFEST_RECORD_SIZE];
                        repo_manifest_info_encode(&rm, rec);
                        size_t kl;
                        _cleanup_free_ char *k = index_key_join(&kl, e->repo, e->digest, NULL);
                        char *err = NULL;
                        if (k) {
                                rocksdb_put_cf(s->db, s->write_async, s->cf[INDEX_REPO_MANIFEST], k, kl,
                                               (const char *) rec, sizeof rec, &err);
                                if (err) {
                                        r = -EIO;
                                        rocksdb_free(err);
                                }
                        }
                }
                store_digest_unlock(s, e->digest);
        }
        return r;
}

int store_flush_pulls(Store *s) {
        if (s->read_only)
                return 0;
        pthread_mutex_lock(&s->pulls_flush_lock);
        pthread_mutex_lock(&s->pulls_lock);
        PullEntry **buckets = s->pulls;
        s->pulls = NULL;
        s->n_pulls = 0;
        pthread_mutex_unlock(&s->pulls_lock);
        int r = 0, n = 0;
        if (buckets) {
                for (size_t i = 0; i < PULL_BUCKETS; i++)
                        for (PullEntry *e = buckets[i], *next; e; e = next) {
                                next = e->next;
                                int q = pull_apply(s, e);
                                if (q < 0 && r == 0)
                                        r = q;
                                n++;
                                pull_entry_free(e);
                        }
                free(buckets);
        }
        pthread_mutex_unlock(&s->pulls_flush_lock);
        return r < 0 ? r : n;
}

static void *pulls_thread(void *userdata) {
        Store *s = userdata;
        pthread_mutex_lock(&s->pulls_lock);
        while (!s->pulls_stop) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += PULL_FLUSH_INTERVAL_NS / (int64_t) NSEC_PER_SEC;
                pthread_cond_timedwait(&s->pulls_cond, &s->pulls_lock, &ts);
                if (s->pulls_stop)
                        break;
                pthread_mutex_unlock(&s->pulls_lock);
                store_flush_pulls(s);
                pthread_mutex_lock(&s->pulls_lock);
        }
        pthread_mutex_unlock(&s->pulls_lock);
        return NULL;
}

int pulls_start(Store *s) {
        int r = pthread_create(&s->pulls_thread, NULL, pulls_thread, s);
        if (r != 0)
                return -r;
        s->pulls_thread_started = true;
        return 0;
}

void pulls_stop(Store *s) {
        if (s->pulls_thread_started) {
                pthread_mutex_lock(&s->pulls_lock);
                s->pulls_stop = true;
                pthread_cond_signal(&s->pulls_cond);
                pthread_mutex_unlock(&s->pulls_lock);
                pthread_join(s->pulls_thread, NULL);
                s->pulls_thread_started = false;
        }
        if (s->db && !s->read_only)
                store_flush_pulls(s);
}
