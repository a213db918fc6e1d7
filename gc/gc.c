/* SPDX-License-Identifier: MIT */
/* One GC run: plan, apply, mark, sweep, reconcile, report (see gc.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gc/gc-internal.h"

#define LIST_MAX 10000 /* entries of each report list; the totals are always complete */

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running = false;
static unsigned active_runs = 0; /* in gc_run(), including the tail after running (the report's sync) */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static volatile sig_atomic_t cancel_requested = 0;

void gc_cancel(void) {
        cancel_requested = 1;
}

#define CHECK_CANCEL()                          \
        do {                                    \
                if (cancel_requested)           \
                        return -ECANCELED;      \
        } while (0)

static void (*finished_fn)(void *userdata) = NULL;
static void *finished_userdata = NULL;

void gc_set_finished_notify(void (*fn)(void *userdata), void *userdata) {
        pthread_mutex_lock(&running_lock);
        finished_fn = fn;
        finished_userdata = userdata;
        pthread_mutex_unlock(&running_lock);
}

/* Clears running and tells the one who asked (gc_set_finished_notify()); under the lock, so
 * that once gc_set_finished_notify(NULL, NULL) returned no call is in progress. */
static void run_finished(void) {
        pthread_mutex_lock(&running_lock);
        running = false;
        if (finished_fn)
                finished_fn(finished_userdata);
        pthread_mutex_unlock(&running_lock);
}

static void run_left(void) {
        pthread_mutex_lock(&running_lock);
        active_runs--;
        pthread_cond_broadcast(&idle_cond);
        pthread_mutex_unlock(&running_lock);
}

void gc_wait_idle(void) {
        pthread_mutex_lock(&running_lock);
        while (active_runs > 0)
                pthread_cond_wait(&idle_cond, &running_lock);
        pthread_mutex_unlock(&running_lock);
}

bool gc_is_running(void) {
        pthread_mutex_lock(&running_lock);
        bool r = running;
        pthread_mutex_unlock(&running_lock);
        return r;
}

typedef struct Acc {
        uint64_t tags, links, manifests, blobs, bytes_logical, bytes_disk, manifest_bytes;
} Acc;

typedef struct LinkBytes {
        uint64_t logical, disk;
        bool manifest_removed;
} LinkBytes;

typedef struct Run {
        Store *s;
        const GcConfig *c;
        const GcOptions *o;
        const char *actor;
        int64_t now, cutoff, mark_start;
        unsigned delay_ms;

        Graph g;
        Plan p;
        IndexSnapshot *snap1, *snap2;
        uint32_t *digest_gen;   /* digest stripe generations copied before snap2 */

        uint32_t *owner;        /* digest id -> first dead link referencing it (attribution) */
        size_t n_owner;
        LinkBytes *link_bytes;

        Acc *repo_acc;          /* per plan repo, plus [n_repos] = "(none)" */
        size_t n_repo_acc;
        Acc rule_acc[_GC_RULE_MAX];
        Acc total;

        uint64_t tags_scanned, blobs_scanned, blobs_marked, manifests_marked, orphans, orphan_bytes;
        uint64_t skipped_raced, missing_files;
        json_t *orphan_list, *missing_list, *raced_list, *errors;
        double t_plan, t_apply, t_mark, t_sweep, t_reconcile;
        int cpu_nice;           /* of the thread that ran the phases (report) */
        bool cpu_idle;          /* that thread ran under SCHED_IDLE (report) */
        bool intent_written;
        pthread_mutex_t lock;   /* reports and accounting, from the removal threads */
} Run;

/* The sweep removes its candidates in groups: one synced index batch per group, under the
 * group's digest stripes (taken in sorted order), then the files one by one. Once the records
 * are batched the unlinks dominate, and they wait on the disk, not the CPU (an ext4 mounted
 * with discard frees each file's blocks with a synchronous discard: ~260 us a file measured),
 * so more threads than cores overlap them: 16 took the 1M-blob sweep from 10.4 to 8.0-8.6 s.
 * Few candidates are cut into smaller groups so that every thread gets some. */
#define GC_SWEEP_GROUP 512
#define GC_SWEEP_GROUP_MIN 32
#define GC_SWEEP_THREADS 16
/* The apply phase deletes links through store_manifest_delete() (WAL sync deferred to the end
 * of the phase); its threads overlap the index reads of the re-checks. */
#define GC_APPLY_THREADS 32

static void run_error(Run *r, const char *what, const char *target, int err) {
        pthread_mutex_lock(&r->lock);
        json_array_append_new(r->errors, json_pack("{s:s, s:s, s:s}", "what", what, "target", strempty(target),
                                                   "error", err < 0 ? strerror(-err) : "inconsistent"));
        pthread_mutex_unlock(&r->lock);
}

static void run_error_msg(Run *r, const char *what, const char *target, const char *msg) {
        pthread_mutex_lock(&r->lock);
        json_array_append_new(r->errors, json_pack("{s:s, s:s, s:s}", "what", what, "target", strempty(target), "error", msg));
        pthread_mutex_unlock(&r->lock);
}

/* Runs fn for items 0..n-1 on up to max_threads threads. */
typedef int (*ItemFn)(Run *r, size_t i, void *ctx);

typedef struct Parallel {
        Run *r;
        size_t n;
        size_t next;
        ItemFn fn;
        void *ctx;
        int error;
        pthread_mutex_t lock;
} Parallel;

static void *parallel_thread(void *userdata) {
        Parallel *p = userdata;
        for (;;) {
                pthread_mutex_lock(&p->lock);
                size_t i = p->next++;
                bool stop = i >= p->n || p->error < 0;
                if (!stop && cancel_requested)
                        p->error = -ECANCELED, stop = true;
                pthread_mutex_unlock(&p->lock);
                if (stop)
                        break;
                int q = p->fn(p->r, i, p->ctx);
                if (q < 0) {
                        pthread_mutex_lock(&p->lock);
                        if (p->error == 0)
                                p->error = q;
                        pthread_mutex_unlock(&p->lock);
                }
        }
        return NULL;
}

static void *parallel_worker(void *userdata) {
        (void) pthread_setname_np(pthread_self(), "plura-gc-work"); /* top -H, ps -L */
        store_cold_reads_begin(); /* a thread's own: the GC's reads leave the block cache alone */
        void *ret = parallel_thread(userdata);
        store_cold_reads_end();
        return ret;
}

static int parallel_for(Run *r, size_t n, size_t max_threads, ItemFn fn, void *ctx) {
        Parallel p = { .r = r, .n = n, .fn = fn, .ctx = ctx, .lock = PTHREAD_MUTEX_INITIALIZER };
        size_t nt = MIN(MIN(max_threads, (size_t) GC_APPLY_THREADS), n);
        pthread_t t[GC_APPLY_THREADS];
        size_t started = 0;
        for (size_t i = 1; i < nt; i++)
                if (pthread_create(&t[started], NULL, parallel_worker, &p) == 0)
                        started++;
        parallel_thread(&p);
        for (size_t i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        return p.error;
}

static void test_delay(Run *r) {
        if (r->delay_ms > 0) {
                struct timespec ts = { .tv_sec = r->delay_ms / 1000, .tv_nsec = (long) (r->delay_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
        }
}

static double since(uint64_t t0) {
        return (double) (clock_monotonic_ns() - t0) / 1e9;
}

static Acc *repo_acc(Run *r, uint32_t repo) {
        if (repo >= r->n_repo_acc)
                return &r->repo_acc[r->n_repo_acc]; /* "(none)" */
        return &r->repo_acc[repo];
}

/* ---------------------------------------------------------------- apply (real runs) */

typedef struct RepoTagScan {
        Run *run;
        uint32_t repo;
        const char *digest;
        size_t plen;
        bool foreign;  /* a tag on digest the plan does not delete */
} RepoTagScan;

static int tag_scan_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        RepoTagScan *c = userdata;
        TagInfo t;
        if (tag_info_decode(val, vlen, &t) < 0 || !streq(t.digest, c->digest))
                return 0;
        Plan *p = &c->run->p;
        size_t kl, idx;
        _cleanup_free_ char *name = strndup(key + c->plen, klen - c->plen);
        _cleanup_free_ char *k = name ? plan_key(p->repos[c->repo].name, name, &kl) : NULL;
        if (!k)
                return -ENOMEM;
        if (!strmap_get(p->tag_index, k, kl, &idx) || !p->tags[idx].deleted || p->tags[idx].info.updated != t.updated ||
            p->tags[idx].info.last_pulled != t.last_pulled) {
                c->foreign = true;
                return 1;
        }
        return 0;
}

static void note_raced(Run *r, const char *kind, const char *repo, const char *name, const char *why) {
        pthread_mutex_lock(&r->lock);
        r->skipped_raced++;
        if (json_array_size(r->raced_list) < LIST_MAX)
                json_array_append_new(r->raced_list, json_pack("{s:s, s:s, s:s, s:s}", "kind", kind, "repo", strempty(repo),
                                                               "name", name, "why", why));
        pthread_mutex_unlock(&r->lock);
}

typedef struct NewLinks {
        Run *run;
        uint32_t repo;
        size_t plen;
} NewLinks;

static int new_links_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        NewLinks *c = userdata;
        Run *r = c->run;
        char digest[DIGEST_MAX_LEN];
        if (klen - c->plen >= sizeof digest)
                return 0;
        memcpy(digest, key + c->plen, klen - c->plen);
        digest[klen - c->plen] = 0;
        if (plan_find_link(&r->p, c->repo, digest) != UINT32_MAX)
                return 0; /* known to the plan */
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (store_manifest_parsed(r->s, NULL, digest, &m) < 0)
                return 0;
        for (size_t i = 0; i < m->n_manifests; i++) {
                uint32_t li = plan_find_link(&r->p, c->repo, m->manifests[i].digest);
                if (li != UINT32_MAX && !r->p.links[li].live)
                        r->p.links[li].failed = true; /* skip it: a new index names it */
        }
        return 0;
}

static int protect_new_children(Run *r, uint32_t repo) {
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, r->p.repos[repo].name, "", NULL);
        if (!prefix)
                return -ENOMEM;
        NewLinks c = { .run = r, .repo = repo, .plen = pl };
        return store_kv_iterate(r->s, NULL, INDEX_REPO_MANIFEST, prefix, pl, NULL, 0, new_links_cb, &c);
}

static int apply_link(Run *r, size_t item, void *ctx) {
        Plan *p = &r->p;
        size_t i = ((const uint32_t *) ctx)[item];
        PlanLink *l = &p->links[i];
        const char *repo = p->repos[l->repo].name;
        char digest[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, l->digest, digest);
        if (l->failed) {
                note_raced(r, "manifest", repo, digest, "referenced by a manifest pushed during GC");
                return 0;
        }
        test_delay(r); /* tests: a crash between unsynced deletions */
        /* re-check against the live index: re-tagged or pulled since the plan? */
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, "", NULL);
        if (!prefix)
                return -ENOMEM;
        RepoTagScan sc = { .run = r, .repo = l->repo, .digest = digest, .plen = pl };
        int q = store_kv_iterate(r->s, NULL, INDEX_TAG, prefix, pl, NULL, 0, tag_scan_cb, &sc);
        if (q < 0) {
                run_error(r, "scan tags", repo, q);
                l->failed = true;
                return 0;
        }
        if (sc.foreign) {
                note_raced(r, "manifest", repo, digest, "tagged during GC");
                l->failed = true;
                return 0;
        }
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        _cleanup_free_ char *v = NULL;
        size_t vl;
        q = k ? store_kv_get(r->s, NULL, INDEX_REPO_MANIFEST, k, kl, &v, &vl) : -ENOMEM;
        if (q == -ENOENT)
                return 0; /* deleted meanwhile */
        RepoManifestInfo info;
        if (q < 0 || repo_manifest_info_decode(v, vl, &info) < 0) {
                run_error(r, "read repository link", digest, q < 0 ? q : -EBADMSG);
                l->failed = true;
                return 0;
        }
        if (info.last_pulled != l->last_pulled) {
                note_raced(r, "manifest", repo, digest, "pulled during GC");
                l->failed = true;
                return 0;
        }
        StoreError err = {};
        /* retention decided this; the /v2/ tag policy (e.g. read-only channels/) is not GC's */
        store_deferred_sync_begin(); /* apply_plan() syncs the WAL once at the end */
        q = store_manifest_delete(r->s, repo, digest, r->actor, STORE_WRITE_MAINTENANCE, &err);
        store_deferred_sync_end();
        if (q < 0 && q != -ENOENT) {
                char target[600];
                snprintf(target, sizeof target, "%s@%s", repo, digest);
                run_error_msg(r, "delete manifest", target, *err.message ? err.message : strerror(-q));
                l->failed = true;
                return 0;
        }
        l->applied = true;
        return 0;
}

static int apply_plan(Run *r) {
        Plan *p = &r->p;
        /* 1. tags deleted while their manifest stays */
        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (!t->deleted || t->link == UINT32_MAX || !p->links[t->link].live)
                        continue;
                const char *repo = p->repos[t->repo].name;
                TagInfo now;
                int q = store_tag_get(r->s, repo, t->name, &now);
                if (q == -ENOENT)
                        continue;
                if (q < 0) {
                        run_error(r, "read tag", t->name, q);
                        continue;
                }
                if (!streq(now.digest, t->info.digest) || now.updated != t->info.updated || now.last_pulled != t->info.last_pulled) {
                        note_raced(r, "tag", repo, t->name, "moved or pulled during GC");
                        continue;
                }
                StoreError err = {};
                store_deferred_sync_begin();
                q = store_tag_delete(r->s, repo, t->name, r->actor, STORE_WRITE_MAINTENANCE, &err);
                store_deferred_sync_end();
                if (q < 0 && q != -ENOENT) {
                        char target[512];
                        snprintf(target, sizeof target, "%s:%s", repo, t->name);
                        run_error_msg(r, "delete tag", target, *err.message ? err.message : strerror(-q));
                        continue;
                }
                t->applied = true;
        }
        /* 2. dead repository links (with their remaining tags and referrer records). A manifest
         * pushed since the plan may name a dead link as an index child: keep those. */
        uint32_t last_repo = UINT32_MAX;
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                if (l->live || l->repo == last_repo)
                        continue;
                last_repo = l->repo;
                int q = protect_new_children(r, l->repo);
                if (q < 0)
                        return q;
        }
        _cleanup_free_ uint32_t *dead = malloc(MAX(p->n_links, (size_t) 1) * sizeof(uint32_t));
        if (!dead)
                return -ENOMEM;
        size_t n_dead = 0;
        for (size_t i = 0; i < p->n_links; i++)
                if (!p->links[i].live)
                        dead[n_dead++] = (uint32_t) i;
        int q = parallel_for(r, n_dead, n_dead / 16 + 1, apply_link, dead);
        /* The deletions above went to the WAL unsynced (one sync each made the apply phase
         * fsync-bound: 1.6 to 9 s for 10k links at 1M blobs). One sync makes them all durable
         * before the mark; a crash before it loses only deletions the next run redoes. */
        int k = store_sync_wal(r->s);
        if (k < 0)
                return log_error_errno(k, "gc: cannot sync the index after applying the plan: %m");
        if (q < 0)
                return q;
        for (size_t t = 0; t < p->n_tags; t++) /* tags of a deleted link went with it */
                if (p->tags[t].deleted && p->tags[t].link != UINT32_MAX && p->links[p->tags[t].link].applied)
                        p->tags[t].applied = true;
        return 0;
}

/* ---------------------------------------------------------------- mark */

typedef struct MarkCtx {
        Run *r;
        IndexSnapshot *snap;
        bool exclude_plan;      /* dry run: the plan's deletions are not roots */
        uint32_t *stack;
        size_t n, allocated;
} MarkCtx;

static int mark_push(MarkCtx *m, uint32_t id) {
        uint16_t *f = digest_table_flags(m->r->g.digests, id);
        if (*f & DT_MARKED)
                return 0;
        *f |= DT_MARKED;
        if (m->n >= m->allocated) {
                size_t na = m->allocated ? m->allocated * 2 : 1024;
                uint32_t *n = realloc(m->stack, na * sizeof(uint32_t));
                if (!n)
                        return -ENOMEM;
                m->stack = n;
                m->allocated = na;
        }
        m->stack[m->n++] = id;
        return 0;
}

static int mark_root(MarkCtx *m, const char *digest) {
        uint32_t id = digest_table_intern(m->r->g.digests, digest);
        if (id == DT_NONE)
                return 0;
        return mark_push(m, id);
}

static int mark_drain(MarkCtx *m) {
        Run *r = m->r;
        while (m->n > 0) {
                CHECK_CANCEL();
                uint32_t id = m->stack[--m->n];
                uint16_t f = *digest_table_flags(r->g.digests, id);
                int mi;
                if (f & DT_MANIFEST)
                        mi = (int) *digest_table_manifest(r->g.digests, id);
                else if (f & DT_BLOB)
                        continue;
                else {
                        /* not seen yet: a manifest pushed after the plan's snapshot, or a blob */
                        mi = graph_ensure(&r->g, r->s, m->snap, id);
                        if (mi == -ENOMEM)
                                return mi;
                        if (mi < 0)
                                continue;
                }
                r->manifests_marked++;
                test_delay(r);
                /* graph_ensure may move the array: copy the edges we need */
                GraphManifest gm = r->g.manifests[mi];
                for (uint32_t i = 0; i < gm.n_edges; i++) {
                        uint32_t e = r->g.manifests[mi].edges[i];
                        if (i >= gm.n_children) {
                                /* config and layers are blobs: mark, nothing to follow */
                                *digest_table_flags(r->g.digests, e) |= DT_MARKED;
                                continue;
                        }
                        int q = mark_push(m, e);
                        if (q < 0)
                                return q;
                }
        }
        return 0;
}

static int mark_links_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        MarkCtx *m = userdata;
        Run *r = m->r;
        size_t rl;
        char digest[DIGEST_MAX_LEN];
        if (link_key_split(key, klen, &rl, digest) < 0)
                return 0;
        uint32_t repo;
        int q = plan_add_repo(&r->p, r->c, r->o, key, rl, &repo); /* the sweep re-checks every repository */
        if (q < 0)
                return q;
        if (m->exclude_plan) {
                uint32_t li = plan_find_link(&r->p, repo, digest);
                if (li != UINT32_MAX && !r->p.links[li].live)
                        return 0;
        }
        q = mark_root(m, digest);
        return q < 0 ? q : mark_drain(m);
}

static int mark_tags_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        MarkCtx *m = userdata;
        Run *r = m->r;
        TagInfo t;
        r->tags_scanned++;
        if (tag_info_decode(val, vlen, &t) < 0)
                return 0;
        if (m->exclude_plan) {
                const char *sep = memchr(key, 0, klen);
                if (!sep)
                        return 0;
                size_t kl, idx;
                _cleanup_free_ char *repo = strndup(key, (size_t) (sep - key));
                _cleanup_free_ char *name = strndup(sep + 1, klen - (size_t) (sep - key) - 1);
                _cleanup_free_ char *k = repo && name ? plan_key(repo, name, &kl) : NULL;
                if (!k)
                        return -ENOMEM;
                if (strmap_get(r->p.tag_index, k, kl, &idx) && r->p.tags[idx].deleted)
                        return 0;
        }
        int q = mark_root(m, t.digest);
        return q < 0 ? q : mark_drain(m);
}

static int mark(Run *r, IndexSnapshot *snap, bool exclude_plan) {
        MarkCtx m = { .r = r, .snap = snap, .exclude_plan = exclude_plan };
        int q = store_kv_iterate(r->s, snap, INDEX_REPO_MANIFEST, NULL, 0, NULL, 0, mark_links_cb, &m);
        if (q >= 0)
                q = store_kv_iterate(r->s, snap, INDEX_TAG, NULL, 0, NULL, 0, mark_tags_cb, &m);
        /* channel windows and holds: protected digests */
        size_t n = digest_table_size(r->g.digests);
        for (uint32_t id = 0; q >= 0 && id < n; id++)
                if (*digest_table_flags(r->g.digests, id) & (DT_PROTECTED | DT_HELD)) {
                        q = mark_push(&m, id);
                        if (q >= 0)
                                q = mark_drain(&m);
                }
        free(m.stack);
        return q;
}

/* ---------------------------------------------------------------- sweep */

static bool manifest_linked_anywhere(Run *r, const char *digest) {
        for (size_t i = 0; i < r->p.n_repos; i++) {
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, r->p.repos[i].name, digest, NULL);
                _cleanup_free_ char *v = NULL;
                size_t vl;
                if (!k || store_kv_get(r->s, NULL, INDEX_REPO_MANIFEST, k, kl, &v, &vl) != -ENOENT)
                        return true; /* when in doubt it is linked */
        }
        return false;
}

/* The first child of a candidate image manifest, read in the mark snapshot and now. */
typedef struct ChildRecord {
        char name[DIGEST_MAX_LEN];
        size_t of;      /* the candidate's index in the group */
        char *then;     /* its blob record in the mark snapshot */
        size_t then_len;
        int then_status, now_status; /* 0, 1 (now differs), -ENOENT, or -EIO when unread */
} ChildRecord;

static int child_then_cb(void *userdata, size_t i, const char *val, size_t vlen) {
        ChildRecord *c = (ChildRecord *) userdata + i;
        if (!val) {
                c->then_status = -ENOENT;
                return 0;
        }
        c->then = malloc(MAX(vlen, (size_t) 1));
        if (!c->then)
                return -ENOMEM;
        memcpy(c->then, val, vlen);
        c->then_len = vlen;
        c->then_status = 0;
        return 0;
}

static int child_now_cb(void *userdata, size_t i, const char *val, size_t vlen) {
        ChildRecord *c = (ChildRecord *) userdata + i;
        c->now_status = !val ? -ENOENT : c->then && vlen == c->then_len && memcmp(val, c->then, vlen) == 0 ? 0 : 1;
        return 0;
}

/* Under the group's digest locks: which of its n manifests were pushed again since the mark
 * snapshot? Where the stripe's generation has not moved since the copy taken before the
 * snapshot, none was, without a read (no pushes during the run: no reads). Otherwise: a
 * manifest PUT rewrites (touches) the blob records of an image's children in the same
 * batch as its link, so comparing each image's first child's record with the snapshot's answers
 * that; two lookups of the whole group's children (one per data block, not one per manifest)
 * instead of one lookup per repository and manifest. Indexes (children are manifests), and
 * images whose child was not in the snapshot or could not be read, take the per-repository
 * check. */
static int manifests_pushed_again(Run *r, IndexSnapshot *snap, const uint32_t *ids, const char (*names)[DIGEST_MAX_LEN],
                                  size_t n, bool *ret) {
        _cleanup_free_ ChildRecord *child = calloc(MAX(n, (size_t) 1), sizeof *child);
        _cleanup_free_ const char **keys = malloc(MAX(n, (size_t) 1) * sizeof *keys);
        _cleanup_free_ size_t *lens = malloc(MAX(n, (size_t) 1) * sizeof *lens);
        _cleanup_free_ bool *decided = calloc(MAX(n, (size_t) 1), sizeof *decided);
        if (!child || !keys || !lens || !decided)
                return -ENOMEM;
        size_t nk = 0;
        for (size_t i = 0; i < n; i++) {
                size_t stripe = store_digest_stripe(names[i]);
                if (r->digest_gen && store_digest_generation(r->s, stripe) == r->digest_gen[stripe]) {
                        ret[i] = false; /* no PUT of it (or of a digest sharing its stripe) since the snapshot */
                        decided[i] = true;
                        continue;
                }
                uint32_t mi = *digest_table_manifest(r->g.digests, ids[i]);
                if (mi == DT_NONE || r->g.manifests[mi].n_children != 0 || r->g.manifests[mi].n_edges == 0)
                        continue;
                ChildRecord *c = &child[nk];
                digest_table_name(r->g.digests, r->g.manifests[mi].edges[0], c->name);
                c->of = i;
                c->then_status = c->now_status = -EIO;
                keys[nk] = c->name;
                lens[nk++] = strlen(c->name);
        }
        /* read errors leave -EIO in the status: those take the per-repository check */
        int q = store_kv_multi_get(r->s, snap, INDEX_BLOB, keys, lens, nk, child_then_cb, child);
        if (q != -ENOMEM)
                q = store_kv_multi_get(r->s, NULL, INDEX_BLOB, keys, lens, nk, child_now_cb, child);
        for (size_t k = 0; k < nk; k++)
                free(child[k].then);
        if (q == -ENOMEM)
                return q;
        for (size_t k = 0; k < nk; k++) {
                const ChildRecord *c = &child[k];
                if (c->then_status < 0 || (c->now_status < 0 && c->now_status != -ENOENT))
                        continue;
                /* a child gone since the snapshot: no PUT can have succeeded since */
                ret[c->of] = c->now_status == 1;
                decided[c->of] = true;
        }
        for (size_t i = 0; i < n; i++)
                if (!decided[i])
                        ret[i] = manifest_linked_anywhere(r, names[i]);
        return 0;
}

static bool manifest_had_link(Run *r, uint32_t id) {
        /* whether the plan saw a link of it (a manifest the retention deleted) */
        char d[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, id, d);
        for (size_t i = 0; i < r->p.n_repos; i++)
                if (plan_find_link(&r->p, (uint32_t) i, d) != UINT32_MAX)
                        return true;
        return false;
}

typedef struct IdList {
        uint32_t *v;
        size_t n, allocated;
} IdList;

static int id_list_push(IdList *l, uint32_t id) {
        if (l->n >= l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 1024;
                uint32_t *n = realloc(l->v, na * sizeof(uint32_t));
                if (!n)
                        return -ENOMEM;
                l->v = n;
                l->allocated = na;
        }
        l->v[l->n++] = id;
        return 0;
}

typedef struct Groups {
        size_t *bounds;
        size_t n;
} Groups;

typedef struct ManifestSweep {
        Run *r;
        IndexSnapshot *snap;
        bool scoped;
        IdList candidates; /* in the manifest records' key order, i.e. sorted by digest */
        Groups groups;
} ManifestSweep;

static int sweep_manifest_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ManifestSweep *c = userdata;
        Run *r = c->r;
        char digest[DIGEST_MAX_LEN];
        if (klen >= sizeof digest)
                return 0;
        memcpy(digest, key, klen);
        digest[klen] = 0;
        uint32_t id = digest_table_intern(r->g.digests, digest);
        if (id == DT_NONE)
                return 0;
        CHECK_CANCEL();
        /* a manifest pushed (and unlinked again) since the plan's snapshot: load it too */
        int mi = graph_ensure(&r->g, r->s, c->snap, id);
        if (mi == -ENOMEM)
                return mi;
        uint16_t *f = digest_table_flags(r->g.digests, id);
        if (*f & (DT_MARKED | DT_PROTECTED | DT_HELD))
                return 0;
        if (c->scoped && !manifest_had_link(r, id))
                return 0; /* unlinked records are collected by an unscoped run */
        if (r->o->dry_run) {
                *f |= DT_SWEPT;
                return 0;
        }
        return id_list_push(&c->candidates, id);
}

/* A group of removals: the digest names, the locks' argument, what became of each. */
typedef enum GroupState {
        GROUP_SKIP,     /* gone already */
        GROUP_REMOVE,   /* in the batch */
        GROUP_RACED,    /* used since the mark snapshot: kept */
        GROUP_FAILED,
        GROUP_RECOMMITTED, /* blob sweep: committed again between record deletion and unlink: kept */
} GroupState;

typedef struct Group {
        size_t n;
        char (*names)[DIGEST_MAX_LEN];
        const char **ptrs;
        uint8_t *state;
        int *error;
} Group;

static void group_done(Group *g) {
        free(g->names);
        free(g->ptrs);
        free(g->state);
        free(g->error);
}

static int group_init(Group *g, Run *r, const uint32_t *ids, size_t stride, size_t n) {
        *g = (Group) { .n = n };
        g->names = malloc(n * sizeof *g->names);
        g->ptrs = malloc(n * sizeof *g->ptrs);
        g->state = calloc(n, sizeof *g->state);
        g->error = calloc(n, sizeof *g->error);
        if (!g->names || !g->ptrs || !g->state || !g->error) {
                group_done(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                digest_table_name(r->g.digests, *(const uint32_t *) ((const char *) ids + i * stride), g->names[i]);
                g->ptrs[i] = g->names[i];
        }
        return 0;
}

/* Cuts n candidates (sorted by digest; their ids every stride bytes from ids) into groups of at
 * least GC_SWEEP_GROUP, each ending where the digest lock stripe changes, so that the groups
 * the sweep threads hold at once never share a stripe and never wait for each other.
 * bounds[k]..bounds[k+1] is group k. */
static int groups_by_stripe(Run *r, const uint32_t *ids, size_t stride, size_t n, Groups *ret) {
        *ret = (Groups) {};
        /* smaller groups when there are few candidates, so that every thread has some */
        size_t group = MIN(MAX(n / (GC_SWEEP_THREADS * 2), (size_t) GC_SWEEP_GROUP_MIN), (size_t) GC_SWEEP_GROUP);
        ret->bounds = malloc((n / group + 2) * sizeof(size_t) + sizeof(size_t));
        if (!ret->bounds)
                return -ENOMEM;
        ret->bounds[0] = 0;
        size_t start = 0, prev = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
                char d[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, *(const uint32_t *) ((const char *) ids + i * stride), d);
                size_t stripe = store_digest_stripe(d);
                if (i - start >= group && stripe != prev) {
                        ret->bounds[++ret->n] = i;
                        start = i;
                }
                prev = stripe;
        }
        if (n > 0)
                ret->bounds[++ret->n] = n;
        return 0;
}

static int remove_manifest_group(Run *r, size_t gi, void *ctx) {
        ManifestSweep *c = ctx;
        size_t start = c->groups.bounds[gi], n = c->groups.bounds[gi + 1] - start;
        const uint32_t *ids = c->candidates.v + start;
        Group g;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b || group_init(&g, r, ids, sizeof(uint32_t), n) < 0)
                return -ENOMEM;
        /* a manifest PUT holds its digest's lock while it writes record + link */
        _cleanup_free_ bool *again = malloc(MAX(n, (size_t) 1) * sizeof *again);
        if (!again) {
                group_done(&g);
                return -ENOMEM;
        }
        store_digests_lock(r->s, g.ptrs, n);
        int k = manifests_pushed_again(r, c->snap, ids, g.names, n, again);
        if (k < 0) {
                store_digests_unlock(r->s, g.ptrs, n);
                group_done(&g);
                return k;
        }
        size_t n_remove = 0;
        for (size_t i = 0; i < n; i++) {
                test_delay(r);
                if (again[i]) {
                        g.state[i] = GROUP_RACED;
                        continue;
                }
                index_batch_delete(b, INDEX_MANIFEST, g.names[i], strlen(g.names[i]));
                g.state[i] = GROUP_REMOVE;
                n_remove++;
        }
        store_deferred_sync_begin(); /* sweep_manifests() syncs once, before the blob sweep */
        int q = n_remove > 0 ? store_batch_commit(r->s, b) : 0;
        store_deferred_sync_end();
        store_digests_unlock(r->s, g.ptrs, n);
        for (size_t i = 0; i < n; i++) {
                if (g.state[i] == GROUP_RACED)
                        note_raced(r, "manifest", NULL, g.names[i], "linked again during GC");
                else if (g.state[i] == GROUP_REMOVE && q < 0)
                        run_error(r, "remove manifest", g.names[i], q);
                else if (g.state[i] == GROUP_REMOVE)
                        *digest_table_flags(r->g.digests, ids[i]) |= DT_SWEPT;
        }
        group_done(&g);
        return 0;
}

static int sweep_manifests(Run *r, IndexSnapshot *snap) {
        ManifestSweep c = { .r = r, .snap = snap, .scoped = r->o->repo && *r->o->repo };
        int q = store_kv_iterate(r->s, snap, INDEX_MANIFEST, NULL, 0, NULL, 0, sweep_manifest_cb, &c);
        if (q >= 0)
                q = groups_by_stripe(r, c.candidates.v, sizeof(uint32_t), c.candidates.n, &c.groups);
        if (q >= 0)
                q = parallel_for(r, c.groups.n, GC_SWEEP_THREADS, remove_manifest_group, &c);
        /* One sync for all manifest deletions (one per group cost 50-60 ms at 1,250 manifests).
         * A crash before it loses deletions the next run redoes; the blob sweep's records go
         * after it in the same WAL, so a blob is never gone while its manifest comes back. */
        if (q >= 0 && c.candidates.n > 0) {
                q = store_sync_wal(r->s);
                if (q < 0)
                        log_error_errno(q, "gc: sweep: cannot sync the manifest deletions: %m");
        }
        free(c.candidates.v);
        free(c.groups.bounds);
        if (q < 0)
                return q;
        /* whatever manifest stays (skipped, failed, out of scope) keeps its blobs: never a stored
         * manifest whose blob is gone */
        for (size_t i = 0; i < r->g.n_manifests; i++) {
                const GraphManifest *gm = &r->g.manifests[i];
                if (*digest_table_flags(r->g.digests, gm->id) & (DT_MARKED | DT_SWEPT))
                        continue;
                for (uint32_t k = gm->n_children; k < gm->n_edges; k++)
                        *digest_table_flags(r->g.digests, gm->edges[k]) |= DT_MARKED;
        }
        return 0;
}

/* Attribution owners: every blob (and child manifest) of a removed manifest belongs to the first
 * dead link, in plan order, that references it. */
static void own(Run *r, uint32_t id, uint32_t link, unsigned depth) {
        if (id >= r->n_owner || r->owner[id] != UINT32_MAX || depth > 8)
                return;
        r->owner[id] = link;
        uint16_t f = *digest_table_flags(r->g.digests, id);
        if (!(f & DT_MANIFEST) || !(f & DT_SWEPT))
                return;
        const GraphManifest *gm = &r->g.manifests[*digest_table_manifest(r->g.digests, id)];
        for (uint32_t i = 0; i < gm->n_edges; i++) {
                *digest_table_flags(r->g.digests, gm->edges[i]) |= DT_CANDIDATE;
                own(r, gm->edges[i], link, depth + 1);
        }
}

static int compute_owners(Run *r) {
        r->n_owner = digest_table_size(r->g.digests);
        r->owner = malloc(MAX(r->n_owner, (size_t) 1) * sizeof(uint32_t));
        if (!r->owner)
                return -ENOMEM;
        memset(r->owner, 0xff, r->n_owner * sizeof(uint32_t));
        for (size_t i = 0; i < r->p.n_links; i++) {
                PlanLink *l = &r->p.links[i];
                if (l->live || l->failed)
                        continue;
                uint16_t f = *digest_table_flags(r->g.digests, l->digest);
                if (f & DT_SWEPT)
                        own(r, l->digest, (uint32_t) i, 0);
        }
        /* manifests themselves */
        for (size_t i = 0; i < r->g.n_manifests; i++) {
                uint32_t id = r->g.manifests[i].id;
                if (!(*digest_table_flags(r->g.digests, id) & DT_SWEPT))
                        continue;
                uint32_t li = id < r->n_owner ? r->owner[id] : UINT32_MAX;
                GcRule rule = li == UINT32_MAX ? RULE_UNLINKED : r->p.links[li].rule;
                Acc *ra = repo_acc(r, li == UINT32_MAX ? UINT32_MAX : r->p.links[li].repo);
                ra->manifests++;
                ra->manifest_bytes += r->g.manifests[i].size;
                r->rule_acc[rule].manifests++;
                r->rule_acc[rule].manifest_bytes += r->g.manifests[i].size;
                r->total.manifests++;
                r->total.manifest_bytes += r->g.manifests[i].size;
                if (li != UINT32_MAX && r->p.links[li].digest == id)
                        r->link_bytes[li].manifest_removed = true;
        }
        return 0;
}

static void account_blob_locked(Run *r, uint32_t id, uint64_t logical, uint64_t disk);
static void account_blob(Run *r, uint32_t id, uint64_t logical, uint64_t disk) {
        pthread_mutex_lock(&r->lock);
        account_blob_locked(r, id, logical, disk);
        pthread_mutex_unlock(&r->lock);
}

static void account_blob_locked(Run *r, uint32_t id, uint64_t logical, uint64_t disk) {
        uint32_t li = id < r->n_owner ? r->owner[id] : UINT32_MAX;
        GcRule rule = li == UINT32_MAX ? RULE_UNREFERENCED : r->p.links[li].rule;
        Acc *ra = repo_acc(r, li == UINT32_MAX ? UINT32_MAX : r->p.links[li].repo);
        ra->blobs++;
        ra->bytes_logical += logical;
        ra->bytes_disk += disk;
        r->rule_acc[rule].blobs++;
        r->rule_acc[rule].bytes_logical += logical;
        r->rule_acc[rule].bytes_disk += disk;
        r->total.blobs++;
        r->total.bytes_logical += logical;
        r->total.bytes_disk += disk;
        if (li != UINT32_MAX) {
                r->link_bytes[li].logical += logical;
                r->link_bytes[li].disk += disk;
        }
}

typedef struct BlobCandidate {
        uint32_t id;
        uint32_t first_key, n_keys; /* its repository links (SweepCtx.keys) */
        uint8_t state;              /* GroupState, from delete_blob_records() on */
        int error;
        BlobInfo bi;
} BlobCandidate;

typedef struct LinkKey {
        uint32_t cand;
        uint32_t klen;
        char *key;
} LinkKey;

typedef struct SweepCtx {
        Run *r;
        bool scoped;
        BlobCandidate *v; /* in the blob records' key order, i.e. sorted by digest */
        size_t n, allocated;
        uint32_t *cand_of_id; /* digest table id -> index into v, UINT32_MAX if none */
        Groups groups;
        size_t n_ids;
        LinkKey *keys;
        size_t n_keys, allocated_keys;
        uint64_t ns_lock, ns_check, ns_commit, ns_unlink; /* removal threads, summed */
        uint64_t ns_sync;
        double t_records, t_files; /* wall time of the two passes */
        uint32_t *gen_deleted;  /* per stripe: its generation when pass 1 let go of it */
        uint64_t reads_records, reads_files; /* candidates re-read from the index in each pass */
} SweepCtx;

static void add_ns(uint64_t *acc, uint64_t *t0) {
        uint64_t t = clock_monotonic_ns();
        __atomic_fetch_add(acc, t - *t0, __ATOMIC_RELAXED);
        *t0 = t;
}

static int sweep_blob_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        SweepCtx *c = userdata;
        Run *r = c->r;
        char digest[DIGEST_MAX_LEN];
        if (klen >= sizeof digest)
                return 0;
        memcpy(digest, key, klen);
        digest[klen] = 0;
        r->blobs_scanned++;
        CHECK_CANCEL();
        uint32_t id = digest_table_intern(r->g.digests, digest);
        if (id == DT_NONE) {
                run_error(r, "invalid blob record key", digest, -EINVAL);
                return 0;
        }
        uint16_t *f = digest_table_flags(r->g.digests, id);
        *f |= DT_BLOB;
        if (*f & (DT_MARKED | DT_PROTECTED | DT_HELD)) {
                r->blobs_marked++;
                return 0;
        }
        if (c->scoped && !(*f & DT_CANDIDATE))
                return 0;
        BlobInfo bi;
        if (blob_info_decode(val, vlen, &bi) < 0) {
                run_error(r, "undecodable blob record", digest, -EBADMSG);
                return 0;
        }
        if (MAX(bi.created, bi.touched) >= r->cutoff || bi.touched >= r->mark_start)
                return 0; /* younger than grace */
        if (r->o->dry_run) {
                *f |= DT_SWEPT;
                account_blob(r, id, bi.size, bi.stored_size);
                return 0;
        }
        if (c->n >= c->allocated) {
                size_t na = c->allocated ? c->allocated * 2 : 1024;
                BlobCandidate *n = realloc(c->v, na * sizeof(BlobCandidate));
                if (!n)
                        return -ENOMEM;
                c->v = n;
                c->allocated = na;
        }
        c->v[c->n++] = (BlobCandidate) { .id = id, .bi = bi };
        return 0;
}

static int cmp_link_key(const void *a, const void *b) {
        uint32_t x = ((const LinkKey *) a)->cand, y = ((const LinkKey *) b)->cand;
        return x < y ? -1 : x > y;
}

/* Collects the repo_blob links of every candidate, so that one synced batch removes a blob's
 * record together with its links. */
static int candidate_links_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        SweepCtx *c = userdata;
        size_t rl;
        char digest[DIGEST_MAX_LEN];
        if (link_key_split(key, klen, &rl, digest) < 0)
                return 0;
        uint32_t id = digest_table_find(c->r->g.digests, digest);
        if (id == DT_NONE || id >= c->n_ids || c->cand_of_id[id] == UINT32_MAX)
                return 0;
        if (c->n_keys >= c->allocated_keys) {
                size_t na = c->allocated_keys ? c->allocated_keys * 2 : 1024;
                LinkKey *n = realloc(c->keys, na * sizeof(LinkKey));
                if (!n)
                        return -ENOMEM;
                c->keys = n;
                c->allocated_keys = na;
        }
        char *k = malloc(klen);
        if (!k)
                return -ENOMEM;
        memcpy(k, key, klen);
        c->keys[c->n_keys++] = (LinkKey) { .cand = c->cand_of_id[id], .klen = (uint32_t) klen, .key = k };
        return 0;
}

static int collect_candidate_links(SweepCtx *c, IndexSnapshot *snap) {
        c->n_ids = digest_table_size(c->r->g.digests);
        c->cand_of_id = malloc(MAX(c->n_ids, (size_t) 1) * sizeof(uint32_t));
        if (!c->cand_of_id)
                return -ENOMEM;
        memset(c->cand_of_id, 0xff, c->n_ids * sizeof(uint32_t));
        for (size_t i = 0; i < c->n; i++)
                c->cand_of_id[c->v[i].id] = (uint32_t) i;
        int q = store_kv_iterate(c->r->s, snap, INDEX_REPO_BLOB, NULL, 0, NULL, 0, candidate_links_cb, c);
        if (q < 0)
                return q;
        qsort(c->keys, c->n_keys, sizeof(LinkKey), cmp_link_key);
        for (size_t i = 0; i < c->n_keys; i++) {
                BlobCandidate *bc = &c->v[c->keys[i].cand];
                if (bc->n_keys++ == 0)
                        bc->first_key = (uint32_t) i;
        }
        return 0;
}

#define BLOB_UNCHANGED 1 /* status: the stripe's generation did not move, the record was not read */

/* Takes the digest locks of the n candidates at v and reads, in one go, the current records of
 * those whose stripe generation moved since since[stripe] (sorted records share data blocks;
 * without the block cache each single lookup decompressed its block again): status[i] is 0,
 * -ENOENT or an error. The others get BLOB_UNCHANGED: no record of their stripe was written
 * since, so theirs is what it was then. The caller unlocks and group_done()s. */
static int blob_group_lock_read(Run *r, SweepCtx *c, const BlobCandidate *v, size_t n, const uint32_t *since, Group *g,
                                BlobInfo **ret_now, int **ret_status, uint64_t *reads, uint64_t *t0) {
        _cleanup_free_ BlobInfo *now = malloc(n * sizeof *now);
        _cleanup_free_ int *status = malloc(n * sizeof *status);
        _cleanup_free_ const char **read = malloc(n * sizeof *read);
        _cleanup_free_ size_t *at = malloc(n * sizeof *at);
        if (!now || !status || !read || !at || group_init(g, r, &v[0].id, sizeof(BlobCandidate), n) < 0)
                return -ENOMEM;
        *t0 = clock_monotonic_ns();
        store_digests_lock(r->s, g->ptrs, n);
        add_ns(&c->ns_lock, t0);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                size_t stripe = store_digest_stripe(g->names[i]);
                if (since && store_digest_generation(r->s, stripe) == since[stripe]) {
                        status[i] = BLOB_UNCHANGED;
                        continue;
                }
                read[m] = g->names[i];
                at[m++] = i;
        }
        if (m > 0) {
                _cleanup_free_ BlobInfo *got = malloc(m * sizeof *got);
                _cleanup_free_ int *st = malloc(m * sizeof *st);
                if (!got || !st) {
                        store_digests_unlock(r->s, g->ptrs, n);
                        group_done(g);
                        return -ENOMEM;
                }
                int q = store_blob_infos(r->s, read, m, got, st);
                for (size_t j = 0; j < m; j++) {
                        now[at[j]] = got[j];
                        status[at[j]] = q < 0 ? q : st[j];
                }
                __atomic_fetch_add(reads, m, __ATOMIC_RELAXED);
        }
        *ret_now = steal_pointer(&now);
        *ret_status = steal_pointer(&status);
        return 0;
}

/* The blob sweep removes in two passes over the same groups of consecutive candidates (sorted
 * by digest, so a group's few lock stripes are held by no other sweep thread):
 *
 * 1. delete_blob_records(): under the group's digest locks, re-checks each candidate (any
 *    manifest PUT, mount or commit since the mark snapshot rewrote its record under that lock)
 *    and deletes the records of the unchanged ones and their repository links, without a sync.
 * 2. one WAL sync for all of them (sweep_blobs()), then
 * 3. unlink_blob_files(): under the same locks again, removes the file of each deleted record
 *    that is still absent. A commit of the same digest between 1 and 3 wrote a new record (and
 *    maybe renamed its own file over ours) under that lock: the file is then kept.
 *
 * Records before files, and durable before any file goes: a crash leaves at worst orphan files
 * (see gc/sweep, reconcile). One sync instead of one per group: on a journaled ext4 the synced
 * group commits waited on journal commits full of the other threads' unlinks (10k blobs: 1.5-1.8
 * s of thread time in commits, the removal 0.22 s). */
static int delete_blob_records(Run *r, size_t gi, void *ctx) {
        SweepCtx *c = ctx;
        size_t start = c->groups.bounds[gi], n = c->groups.bounds[gi + 1] - start;
        BlobCandidate *v = c->v + start;
        Group g;
        _cleanup_free_ BlobInfo *now = NULL;
        _cleanup_free_ int *status = NULL;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        uint64_t t0;
        if (!b || blob_group_lock_read(r, c, v, n, r->digest_gen, &g, &now, &status, &c->reads_records, &t0) < 0)
                return -ENOMEM;
        size_t n_remove = 0;
        for (size_t i = 0; i < n; i++) {
                BlobCandidate *bc = &v[i];
                test_delay(r);
                int q = status[i];
                if (q == BLOB_UNCHANGED) /* as in the mark snapshot */
                        now[i] = bc->bi, q = 0;
                if (q == -ENOENT) {
                        bc->state = GROUP_SKIP;
                        continue;
                }
                if (q < 0) {
                        bc->state = GROUP_FAILED, bc->error = q;
                        continue;
                }
                /* Comparing timestamps with mark_start alone is not enough: a PUT takes its time
                 * before it commits, which may be before the mark started. */
                if (now[i].touched != bc->bi.touched || now[i].created != bc->bi.created || now[i].touched >= r->mark_start ||
                    MAX(now[i].created, now[i].touched) >= r->cutoff) {
                        bc->state = GROUP_RACED;
                        continue;
                }
                index_batch_delete(b, INDEX_BLOB, g.names[i], strlen(g.names[i]));
                for (uint32_t k = 0; k < bc->n_keys; k++)
                        index_batch_delete(b, INDEX_REPO_BLOB, c->keys[bc->first_key + k].key, c->keys[bc->first_key + k].klen);
                bc->state = GROUP_REMOVE;
                n_remove++;
        }
        add_ns(&c->ns_check, &t0);
        store_deferred_sync_begin(); /* sweep_blobs() syncs once before any file goes */
        int q = n_remove > 0 ? store_batch_commit(r->s, b) : 0;
        store_deferred_sync_end();
        /* still under the locks: what pass 2 compares with (no bump of our own on unlock) */
        for (size_t i = 0; i < n; i++) {
                size_t stripe = store_digest_stripe(g.names[i]);
                c->gen_deleted[stripe] = store_digest_generation(r->s, stripe);
        }
        store_digests_unlock(r->s, g.ptrs, n);
        add_ns(&c->ns_commit, &t0);
        for (size_t i = 0; i < n && q < 0; i++)
                if (v[i].state == GROUP_REMOVE)
                        v[i].state = GROUP_FAILED, v[i].error = q;
        group_done(&g);
        return 0;
}

static int unlink_blob_files(Run *r, size_t gi, void *ctx) {
        SweepCtx *c = ctx;
        size_t start = c->groups.bounds[gi], n = c->groups.bounds[gi + 1] - start;
        BlobCandidate *v = c->v + start;
        size_t n_remove = 0;
        for (size_t i = 0; i < n; i++)
                n_remove += v[i].state == GROUP_REMOVE;
        if (n_remove > 0) {
                Group g;
                _cleanup_free_ BlobInfo *now = NULL;
                _cleanup_free_ int *status = NULL;
                uint64_t t0;
                _cleanup_close_ int dir_fd = -1;
                size_t dir_of = 0;
                if (blob_group_lock_read(r, c, v, n, c->gen_deleted, &g, &now, &status, &c->reads_files, &t0) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        BlobCandidate *bc = &v[i];
                        if (bc->state != GROUP_REMOVE)
                                continue;
                        int q = status[i];
                        if (q == BLOB_UNCHANGED) /* nobody wrote a record of its stripe since pass 1 deleted it */
                                q = -ENOENT;
                        if (q >= 0 || q == -EBADMSG) { /* a record again (even one we cannot read) */
                                bc->state = GROUP_RECOMMITTED;
                                continue;
                        }
                        if (q != -ENOENT) {
                                bc->state = GROUP_FAILED, bc->error = q;
                                continue;
                        }
                        /* sorted digests: a group's files are in a few directories, opened once */
                        if (dir_fd < 0 || !store_blob_dir_same(g.names[i], g.names[dir_of])) {
                                closep(&dir_fd);
                                dir_fd = store_blob_dir_open(r->s, g.names[i]);
                                dir_of = i;
                        }
                        if (dir_fd == -ENOENT)
                                continue; /* no directory, no file */
                        if (dir_fd < 0)
                                bc->state = GROUP_FAILED, bc->error = dir_fd;
                        else if (unlinkat(dir_fd, digest_hex(g.names[i]), 0) < 0 && errno != ENOENT)
                                bc->state = GROUP_FAILED, bc->error = -errno;
                }
                store_digests_unlock(r->s, g.ptrs, n);
                add_ns(&c->ns_unlink, &t0);
                group_done(&g);
        }
        for (size_t i = 0; i < n; i++) {
                char name[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, v[i].id, name);
                if (v[i].state == GROUP_RACED)
                        note_raced(r, "blob", NULL, name, "referenced during GC");
                else if (v[i].state == GROUP_RECOMMITTED)
                        note_raced(r, "blob", NULL, name, "pushed again during GC");
                else if (v[i].state == GROUP_FAILED)
                        run_error(r, "remove blob", name, v[i].error);
                else if (v[i].state == GROUP_REMOVE) {
                        *digest_table_flags(r->g.digests, v[i].id) |= DT_SWEPT;
                        account_blob(r, v[i].id, v[i].bi.size, v[i].bi.stored_size);
                }
        }
        return 0;
}

void (*gc_test_between_sweep_passes)(Store *s) = NULL;
void (*gc_test_before_manifest_sweep)(Store *s) = NULL;

/* Step 1 on all groups, the sync, step 3 on all groups (see delete_blob_records()). */
static int sweep_blobs(Run *r, SweepCtx *c) {
        c->gen_deleted = calloc(STORE_DIGEST_STRIPES, sizeof(uint32_t));
        if (!c->gen_deleted)
                return -ENOMEM;
        uint64_t t0 = clock_monotonic_ns();
        int q = parallel_for(r, c->groups.n, GC_SWEEP_THREADS, delete_blob_records, c);
        c->t_records = since(t0);
        if (q < 0)
                return q;
        t0 = clock_monotonic_ns();
        q = store_sync_wal(r->s);
        add_ns(&c->ns_sync, &t0);
        if (q < 0) {
                /* not durable: no file may go; the records come back or stay deleted, and a
                 * record without its file would be a broken image */
                for (size_t i = 0; i < c->n; i++)
                        if (c->v[i].state == GROUP_REMOVE)
                                c->v[i].state = GROUP_FAILED, c->v[i].error = q;
                log_error_errno(q, "gc: sweep: cannot sync the blob record deletions, no file removed: %m");
        }
        test_delay(r); /* tests: a crash between records and files */
        if (gc_test_between_sweep_passes)
                gc_test_between_sweep_passes(r->s);
        t0 = clock_monotonic_ns();
        q = parallel_for(r, c->groups.n, GC_SWEEP_THREADS, unlink_blob_files, c);
        c->t_files = since(t0);
        return q;
}

/* ---------------------------------------------------------------- reconcile */

static int reconcile(Run *r) {
        _cleanup_free_ char *blobs = strdup_printf("%s/blobs", store_root(r->s));
        if (!blobs)
                return -ENOMEM;
        DIR *top = opendir(blobs);
        if (!top)
                return errno == ENOENT ? 0 : log_warning_errno(errno, "gc: cannot open %s: %m", blobs);
        struct dirent *ae;
        while ((ae = readdir(top))) {
                if (ae->d_name[0] == '.')
                        continue;
                if (!streq(ae->d_name, "sha256") && !streq(ae->d_name, "sha512"))
                        continue;
                _cleanup_free_ char *adir = strdup_printf("%s/%s", blobs, ae->d_name);
                DIR *ad = adir ? opendir(adir) : NULL;
                if (!ad)
                        continue;
                struct dirent *pe;
                while ((pe = readdir(ad))) {
                        if (pe->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *pdir = strdup_printf("%s/%s", adir, pe->d_name);
                        DIR *pd = pdir ? opendir(pdir) : NULL;
                        if (!pd)
                                continue;
                        struct dirent *fe;
                        while ((fe = readdir(pd))) {
                                if (fe->d_name[0] == '.')
                                        continue;
                                char digest[DIGEST_MAX_LEN];
                                if (snprintf(digest, sizeof digest, "%s:%s", ae->d_name, fe->d_name) >= (int) sizeof digest)
                                        continue;
                                uint32_t id = digest_table_intern(r->g.digests, digest); /* validates */
                                if (id == DT_NONE)
                                        continue; /* not a blob name (or no memory): leave it to fsck */
                                uint16_t *f = digest_table_flags(r->g.digests, id);
                                *f |= DT_FILE;
                                if (*f & DT_BLOB)
                                        continue; /* has a record */
                                struct stat st;
                                if (fstatat(dirfd(pd), fe->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                                        continue;
                                int64_t mtime = (int64_t) st.st_mtim.tv_sec * (int64_t) NSEC_PER_SEC + st.st_mtim.tv_nsec;
                                if (mtime >= r->cutoff || mtime >= r->mark_start)
                                        continue; /* maybe a commit in progress */
                                bool removed = true;
                                if (!r->o->dry_run) {
                                        store_digest_lock(r->s, digest);
                                        BlobInfo bi;
                                        if (store_blob_info(r->s, digest, &bi) == -ENOENT) {
                                                if (unlinkat(dirfd(pd), fe->d_name, 0) < 0 && errno != ENOENT) {
                                                        run_error(r, "remove orphan file", digest, -errno);
                                                        removed = false;
                                                }
                                        } else
                                                removed = false;
                                        store_digest_unlock(r->s, digest);
                                }
                                if (!removed)
                                        continue;
                                r->orphans++;
                                r->orphan_bytes += (uint64_t) st.st_size;
                                r->rule_acc[RULE_ORPHAN].blobs++;
                                r->rule_acc[RULE_ORPHAN].bytes_disk += (uint64_t) st.st_size;
                                r->total.bytes_disk += (uint64_t) st.st_size;
                                repo_acc(r, UINT32_MAX)->bytes_disk += (uint64_t) st.st_size;
                                if (json_array_size(r->orphan_list) < LIST_MAX)
                                        json_array_append_new(r->orphan_list, json_pack("{s:s, s:I}", "digest", digest, "bytes",
                                                                                        (json_int_t) st.st_size));
                        }
                        closedir(pd);
                }
                closedir(ad);
        }
        closedir(top);

        /* records whose file is missing (and that we did not just remove) */
        size_t n = digest_table_size(r->g.digests);
        for (uint32_t id = 0; id < n; id++) {
                uint16_t f = *digest_table_flags(r->g.digests, id);
                if (!(f & DT_BLOB) || (f & (DT_FILE | DT_SWEPT)))
                        continue;
                char digest[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, id, digest);
                _cleanup_free_ char *path = store_blob_path(r->s, digest);
                struct stat st;
                if (!path || stat(path, &st) == 0)
                        continue; /* committed meanwhile */
                BlobInfo bi;
                if (store_blob_info(r->s, digest, &bi) == -ENOENT)
                        continue;
                r->missing_files++;
                if (json_array_size(r->missing_list) < LIST_MAX)
                        json_array_append_new(r->missing_list, json_string(digest));
        }
        return 0;
}

/* ---------------------------------------------------------------- report */

static json_t *acc_json(const Acc *a) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tags_deleted", (json_int_t) a->tags, "links_deleted",
                         (json_int_t) a->links, "manifests_deleted", (json_int_t) a->manifests, "blobs_deleted",
                         (json_int_t) a->blobs, "bytes_logical", (json_int_t) a->bytes_logical, "bytes_disk",
                         (json_int_t) a->bytes_disk, "manifest_bytes", (json_int_t) a->manifest_bytes);
}

static bool acc_empty(const Acc *a) {
        return !a->tags && !a->links && !a->manifests && !a->blobs && !a->bytes_disk && !a->bytes_logical;
}

static json_t *build_report(Run *r, int64_t started, int64_t ended) {
        Plan *p = &r->p;
        json_t *tags = json_array(), *links = json_array();
        json_t *kept = json_object();
        unsigned kept_counts[_GC_RULE_MAX] = {};

        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (!t->deleted) {
                        kept_counts[t->rule]++;
                        continue;
                }
                bool done = r->o->dry_run || t->applied;
                if (done) {
                        r->total.tags++;
                        repo_acc(r, t->repo)->tags++;
                        r->rule_acc[t->rule].tags++;
                }
                if (json_array_size(tags) < LIST_MAX)
                        json_array_append_new(tags, json_pack("{s:s, s:s, s:s, s:s, s:b}", "repo", p->repos[t->repo].name,
                                                              "tag", t->name, "digest", t->info.digest, "rule",
                                                              gc_rule_to_string(t->rule), "applied", done));
        }
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                if (l->live)
                        continue;
                bool done = r->o->dry_run || l->applied;
                if (done) {
                        r->total.links++;
                        repo_acc(r, l->repo)->links++;
                        r->rule_acc[l->rule].links++;
                }
                if (json_array_size(links) >= LIST_MAX)
                        continue;
                char d[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, l->digest, d);
                json_array_append_new(links, json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:I}", "repo", p->repos[l->repo].name,
                                                       "digest", d, "rule", gc_rule_to_string(l->rule), "applied", done,
                                                       "manifest_removed", r->link_bytes[i].manifest_removed,
                                                       "bytes_logical", (json_int_t) r->link_bytes[i].logical,
                                                       "bytes_disk", (json_int_t) r->link_bytes[i].disk));
        }
        for (size_t i = 0; i < p->n_links; i++)
                if (p->links[i].live)
                        kept_counts[p->links[i].rule]++;
        for (int i = 0; i < _GC_RULE_MAX; i++)
                if (kept_counts[i])
                        json_object_set_new(kept, gc_rule_to_string(i), json_integer(kept_counts[i]));

        json_t *per_repo = json_object();
        for (size_t i = 0; i <= r->n_repo_acc; i++) {
                const Acc *a = &r->repo_acc[i];
                if (acc_empty(a))
                        continue;
                json_object_set_new(per_repo, i < r->n_repo_acc ? p->repos[i].name : "(none)", acc_json(a));
        }
        json_t *per_rule = json_object();
        for (int i = 0; i < _GC_RULE_MAX; i++)
                if (!acc_empty(&r->rule_acc[i]))
                        json_object_set_new(per_rule, gc_rule_to_string(i), acc_json(&r->rule_acc[i]));

        char s1[32], s2[32];
        json_t *totals = acc_json(&r->total);
        json_object_set_new(totals, "orphans_deleted", json_integer((json_int_t) r->orphans));
        json_object_set_new(totals, "orphan_bytes", json_integer((json_int_t) r->orphan_bytes));
        json_object_set_new(totals, "records_without_file", json_integer((json_int_t) r->missing_files));
        json_object_set_new(totals, "skipped_raced", json_integer((json_int_t) r->skipped_raced));
        json_object_set_new(totals, "repositories", json_integer((json_int_t) p->n_repos));
        json_object_set_new(totals, "links_scanned", json_integer((json_int_t) p->n_links));
        json_object_set_new(totals, "tags_scanned", json_integer((json_int_t) p->n_tags));
        json_object_set_new(totals, "manifests_scanned", json_integer((json_int_t) r->g.n_manifests));
        json_object_set_new(totals, "manifests_marked", json_integer((json_int_t) r->manifests_marked));
        json_object_set_new(totals, "blobs_scanned", json_integer((json_int_t) r->blobs_scanned));
        json_object_set_new(totals, "blobs_marked", json_integer((json_int_t) r->blobs_marked));
        json_object_set_new(totals, "errors", json_integer((json_int_t) (json_array_size(r->errors) + json_array_size(p->errors))));

        json_t *errors = json_deep_copy(p->errors);
        json_array_extend(errors, r->errors);

        double total_s = (double) (ended - started) / 1e9;
        json_t *rep = json_pack("{s:I, s:s, s:s, s:f, s:b, s:s?, s:s, s:s, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:o, s:o, s:o, s:o, "
                                "s:{s:o, s:o}, s:O, s:O, s:o, s:o, s:o, s:o}",
                                "id", (json_int_t) started, "started", format_timestamp(s1, sizeof s1, started), "ended",
                                format_timestamp(s2, sizeof s2, ended), "duration_seconds", total_s, "dry_run", r->o->dry_run,
                                "repo", r->o->repo && *r->o->repo ? r->o->repo : NULL, "trigger",
                                r->o->trigger ? r->o->trigger : "api", "actor", r->actor, "grace_seconds",
                                (double) r->c->grace_ns / 1e9, "untagged_grace_seconds", (double) r->c->untagged_grace_ns / 1e9,
                                "phases", "plan", r->t_plan, "apply", r->t_apply, "mark", r->t_mark, "sweep", r->t_sweep,
                                "reconcile", r->t_reconcile, "totals", totals, "per_repository", per_repo, "per_rule", per_rule,
                                "kept", kept, "plan", "tags", tags, "manifests", links, "holds", p->holds, "channel_windows",
                                p->windows, "orphans", json_incref(r->orphan_list), "records_without_file",
                                json_incref(r->missing_list), "skipped", json_incref(r->raced_list), "errors", errors);
        if (rep) {
                json_object_set_new(rep, "cpu_nice", json_integer(r->cpu_nice));
                json_object_set_new(rep, "cpu_policy", json_string(r->cpu_idle ? "idle" : "normal"));
        }
        return rep;
}

#define REPORT_KEY_LEN (10 + 8) /* "gc/report/" + big-endian start time */

typedef struct ReportKeys {
        char (*keys)[REPORT_KEY_LEN];
        size_t n, allocated;
} ReportKeys;

static int report_key_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ReportKeys *k = userdata;
        (void) val, (void) vlen;
        if (klen != REPORT_KEY_LEN)
                return 0;
        if (k->n >= k->allocated) {
                size_t na = k->allocated ? k->allocated * 2 : 128;
                char (*n)[REPORT_KEY_LEN] = realloc(k->keys, na * sizeof *n);
                if (!n)
                        return -ENOMEM;
                k->keys = n;
                k->allocated = na;
        }
        memcpy(k->keys[k->n++], key, REPORT_KEY_LEN);
        return 0;
}

/* Stores the report as gc/report/<started> and gc/last, drops the oldest beyond reports_kept and
 * (with clear_intent) the sweep intent, all in one batch, not synced: gc_run() syncs it once the
 * run no longer counts as running (see there). The kept reports are found by their keys
 * (big-endian start times, oldest first) instead of parsing up to reports_kept stored reports. */
static int report_store(Store *s, const GcConfig *c, json_t *rep, int64_t started, bool clear_intent) {
        _cleanup_free_ char *txt = json_dumps(rep, JSON_COMPACT);
        if (!txt)
                return -ENOMEM;
        uint8_t key[REPORT_KEY_LEN];
        memcpy(key, "gc/report/", 10);
        for (int i = 0; i < 8; i++)
                key[10 + i] = (uint8_t) ((uint64_t) started >> (8 * (7 - i)));
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        ReportKeys old = {};
        int r = store_kv_iterate(s, NULL, INDEX_META, "gc/report/", 10, NULL, 0, report_key_cb, &old);
        if (r < 0) {
                free(old.keys);
                return r;
        }
        size_t n_with_new = old.n + 1;
        for (size_t i = 0; i < old.n && i + c->reports_kept < n_with_new; i++)
                if (memcmp(old.keys[i], key, sizeof key) != 0)
                        index_batch_delete(b, INDEX_META, old.keys[i], sizeof key);
        free(old.keys);
        index_batch_put(b, INDEX_META, key, sizeof key, txt, strlen(txt));
        index_batch_put(b, INDEX_META, "gc/last", 7, txt, strlen(txt));
        if (clear_intent)
                index_batch_delete(b, INDEX_META, "gc/sweep", 8);
        store_deferred_sync_begin();
        r = store_batch_commit(s, b);
        store_deferred_sync_end();
        return r;
}

typedef struct ListCtx {
        json_t *arr;
        bool summaries;
} ListCtx;

static int list_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ListCtx *c = userdata;
        json_error_t je;
        json_t *j = json_loadb(val, vlen, 0, &je);
        if (!j)
                return 0;
        if (c->summaries) {
                json_object_del(j, "plan");
                json_object_del(j, "orphans");
                json_object_del(j, "skipped");
                json_object_del(j, "channel_windows");
                json_object_del(j, "records_without_file");
        }
        json_array_insert_new(c->arr, 0, j); /* newest first */
        return 0;
}

int gc_reports_list(Store *s, size_t limit, json_t **ret) {
        ListCtx c = { .arr = json_array(), .summaries = limit != 0 };
        if (!c.arr)
                return -ENOMEM;
        int r = store_kv_iterate(s, NULL, INDEX_META, "gc/report/", 10, NULL, 0, list_cb, &c);
        if (r < 0) {
                json_decref(c.arr);
                return r;
        }
        while (limit && json_array_size(c.arr) > limit)
                json_array_remove(c.arr, json_array_size(c.arr) - 1);
        *ret = c.arr;
        return 0;
}

int gc_report_last(Store *s, json_t **ret) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = store_kv_get(s, NULL, INDEX_META, "gc/last", 7, &v, &vl);
        if (r < 0)
                return r;
        json_error_t je;
        *ret = json_loadb(v, vl, 0, &je);
        return *ret ? 0 : -EBADMSG;
}

/* ---------------------------------------------------------------- metrics */

static const double duration_buckets[] = { 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600 };

static void metrics_declare_gc(void) {
        metrics_declare("plura_gc_runs_total", METRIC_COUNTER, "Garbage collection runs by result and mode.", NULL, 0);
        metrics_declare("plura_gc_reclaimed_bytes_total", METRIC_COUNTER,
                        "Bytes reclaimed by garbage collection (kind=disk: files removed; kind=logical: content bytes).", NULL, 0);
        metrics_declare("plura_gc_duration_seconds", METRIC_HISTOGRAM, "Duration of garbage collection runs.", duration_buckets,
                        ELEMENTSOF(duration_buckets));
}

static void metrics_after_run(const GcOptions *o, int result, const json_t *rep) {
        metrics_declare_gc();
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\",dry_run=\"%s\"", result < 0 ? "error" : "ok", o->dry_run ? "true" : "false");
        metrics_counter_add("plura_gc_runs_total", labels, 1);
        if (!rep)
                return;
        if (!o->dry_run) {
                json_t *t = json_object_get(rep, "totals");
                metrics_counter_add("plura_gc_reclaimed_bytes_total", "kind=\"disk\"",
                                    (double) json_integer_value(json_object_get(t, "bytes_disk")));
                metrics_counter_add("plura_gc_reclaimed_bytes_total", "kind=\"logical\"",
                                    (double) json_integer_value(json_object_get(t, "bytes_logical")));
        }
        metrics_histogram_observe("plura_gc_duration_seconds", o->dry_run ? "dry_run=\"true\"" : "dry_run=\"false\"",
                                  json_real_value(json_object_get(rep, "duration_seconds")));
}

typedef struct StorageStats {
        uint64_t logical, disk, blobs, manifests, manifest_bytes;
} StorageStats;

static int stats_blob_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        StorageStats *st = userdata;
        BlobInfo bi;
        if (blob_info_decode(val, vlen, &bi) < 0)
                return 0;
        st->blobs++;
        st->logical += bi.size;
        st->disk += bi.stored_size;
        return 0;
}

static int stats_manifest_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        StorageStats *st = userdata;
        st->manifests++;
        st->manifest_bytes += vlen;
        return 0;
}

static struct {
        pthread_mutex_t lock;
        Store *store;
        int64_t cache_ns;
        uint64_t computed; /* monotonic ns */
        bool registered;
} collector = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void gc_metrics_collect(void *userdata) {
        pthread_mutex_lock(&collector.lock);
        Store *s = collector.store;
        uint64_t now = clock_monotonic_ns();
        if (!s || (collector.computed && now - collector.computed < (uint64_t) collector.cache_ns)) {
                pthread_mutex_unlock(&collector.lock);
                return;
        }
        collector.computed = now;
        StorageStats st = {};
        store_kv_iterate(s, NULL, INDEX_BLOB, NULL, 0, NULL, 0, stats_blob_cb, &st);
        store_kv_iterate(s, NULL, INDEX_MANIFEST, NULL, 0, NULL, 0, stats_manifest_cb, &st);
        pthread_mutex_unlock(&collector.lock);
        metrics_gauge_set("plura_storage_bytes", "kind=\"logical\"", (double) (st.logical + st.manifest_bytes));
        metrics_gauge_set("plura_storage_bytes", "kind=\"disk\"", (double) st.disk);
        metrics_gauge_set("plura_digest_unique", "kind=\"blob\"", (double) st.blobs);
        metrics_gauge_set("plura_digest_unique", "kind=\"manifest\"", (double) st.manifests);
}

void gc_metrics_init(Store *s, int64_t cache_ns) {
        metrics_declare_gc();
        metrics_declare("plura_storage_bytes", METRIC_GAUGE,
                        "Bytes stored: kind=logical (content, blobs + inline manifests), kind=disk (blob files).", NULL, 0);
        metrics_declare("plura_digest_unique", METRIC_GAUGE, "Distinct digests stored (each stored once).", NULL, 0);
        pthread_mutex_lock(&collector.lock);
        collector.store = s;
        collector.cache_ns = cache_ns;
        collector.computed = 0;
        bool reg = !collector.registered;
        collector.registered = true;
        pthread_mutex_unlock(&collector.lock);
        if (reg)
                metrics_add_collector(gc_metrics_collect, NULL);
}

void gc_metrics_done(void) {
        pthread_mutex_lock(&collector.lock);
        collector.store = NULL;
        pthread_mutex_unlock(&collector.lock);
}

/* ---------------------------------------------------------------- the run */

static void run_done(Run *r) {
        if (r->snap2)
                store_snapshot_free(r->snap2);
        if (r->snap1)
                store_snapshot_free(r->snap1);
        plan_done(&r->p);
        graph_done(&r->g);
        free(r->owner);
        free(r->digest_gen);
        free(r->link_bytes);
        free(r->repo_acc);
        json_decref(r->orphan_list);
        json_decref(r->missing_list);
        json_decref(r->raced_list);
        json_decref(r->errors);
}

/* The process's peak RSS so far, for the phase log lines (sizing a GC run is about memory). */
static long peak_rss_mib(void) {
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024 : -1;
}

/* The phases, with the index reads of this thread not filling the block cache. */
static int run_phases_cold(Run *r) {
        int q;
        uint64_t t0 = clock_monotonic_ns();

        /* 1. plan */
        q = store_snapshot_new(r->s, NULL, &r->snap1);
        if (q < 0)
                return log_error_errno(q, "gc: cannot take a snapshot: %m");
        q = graph_load(&r->g, r->s, r->snap1);
        if (q < 0)
                return log_error_errno(q, "gc: cannot load manifests: %m");
        q = plan_build(&r->p, r->s, r->snap1, &r->g, r->c, r->o, r->now);
        if (q < 0)
                return q;
        r->t_plan = since(t0);

        /* 2. apply */
        t0 = clock_monotonic_ns();
        if (!r->o->dry_run) {
                log_info("gc: phase apply (plan %.2f s)", r->t_plan);
                q = apply_plan(r);
                if (q < 0)
                        return q;
        }
        r->t_apply = since(t0);

        /* 3. mark */
        log_info("gc: phase mark (plan %.2f s, apply %.2f s; peak RSS %ld MiB)", r->t_plan, since(t0), peak_rss_mib());
        t0 = clock_monotonic_ns();
        IndexSnapshot *msnap = r->snap1;
        if (!r->o->dry_run) {
                r->mark_start = clock_now_ns();
                r->digest_gen = malloc(STORE_DIGEST_STRIPES * sizeof(uint32_t));
                if (!r->digest_gen)
                        return -ENOMEM;
                store_digest_generations(r->s, r->digest_gen);
                q = store_snapshot_new(r->s, NULL, &r->snap2);
                if (q < 0)
                        return q;
                msnap = r->snap2;
        } else
                r->mark_start = r->now;
        q = mark(r, msnap, r->o->dry_run);
        if (q < 0)
                return log_error_errno(q, "gc: mark failed: %m");
        r->t_mark = since(t0);

        /* 4. sweep */
        log_info("gc: phase sweep (mark %.2f s; peak RSS %ld MiB)", since(t0), peak_rss_mib());
        t0 = clock_monotonic_ns();
        r->link_bytes = calloc(MAX(r->p.n_links, (size_t) 1), sizeof(LinkBytes));
        r->n_repo_acc = r->p.n_repos;
        r->repo_acc = calloc(r->n_repo_acc + 1, sizeof(Acc));
        if (!r->link_bytes || !r->repo_acc)
                return -ENOMEM;
        if (!r->o->dry_run) {
                /* intent for fsck: files without record older than mark_start may be ours (a crash
                 * between record and file removal); removed when the run ends */
                _cleanup_free_ char *intent = strdup_printf("{\"mark_start\":%lld,\"started\":%lld,\"pid\":%d}",
                                                            (long long) r->mark_start, (long long) r->now, (int) getpid());
                q = intent ? store_kv_put(r->s, INDEX_META, "gc/sweep", 8, intent, strlen(intent)) : -ENOMEM;
                if (q < 0)
                        return log_error_errno(q, "gc: cannot record the sweep intent: %m");
                r->intent_written = true;
        }
        if (gc_test_before_manifest_sweep)
                gc_test_before_manifest_sweep(r->s);
        q = sweep_manifests(r, msnap);
        if (q < 0)
                return q;
        q = compute_owners(r);
        if (q < 0)
                return q;
        /* From here on only the digest table, the links and the owners are needed: give the
         * manifest graph's edges and the plan's lookup maps back before the blob sweep allocates. */
        for (size_t i = 0; i < r->g.n_manifests; i++) {
                free(r->g.manifests[i].edges);
                r->g.manifests[i].edges = NULL;
                r->g.manifests[i].n_edges = r->g.manifests[i].n_children = 0;
        }
        r->p.link_index = strmap_free(r->p.link_index);
        r->p.tag_index = strmap_free(r->p.tag_index);
        r->p.referrer_heads = strmap_free(r->p.referrer_heads);
        double t_manifests = since(t0);
        SweepCtx sc = { .r = r, .scoped = r->o->repo && *r->o->repo };
        q = store_kv_iterate(r->s, msnap, INDEX_BLOB, NULL, 0, NULL, 0, sweep_blob_cb, &sc);
        double t_scan = since(t0);
        if (q >= 0 && sc.n > 0)
                q = collect_candidate_links(&sc, msnap);
        double t_links = since(t0);
        if (q >= 0)
                q = groups_by_stripe(r, sc.v ? &sc.v[0].id : NULL, sizeof(BlobCandidate), sc.n, &sc.groups);
        if (q >= 0)
                q = sweep_blobs(r, &sc);
        log_info("gc: sweep: manifests %.2f s, blob scan %.2f s, links %.2f s, removal %.3f s "
                 "(records %.3f s, files %.3f s; re-read %" PRIu64 " + %" PRIu64 " of %zu; thread time: lock wait %.2f, check %.2f, commit %.2f, unlink %.2f s; one sync %.3f s); peak RSS %ld MiB",
                 t_manifests, t_scan - t_manifests, t_links - t_scan, since(t0) - t_links, sc.t_records, sc.t_files, sc.reads_records, sc.reads_files, sc.n, sc.ns_lock / 1e9, sc.ns_check / 1e9,
                 sc.ns_commit / 1e9, sc.ns_unlink / 1e9, sc.ns_sync / 1e9, peak_rss_mib());
        for (size_t i = 0; i < sc.n_keys; i++)
                free(sc.keys[i].key);
        free(sc.keys);
        free(sc.v);
        free(sc.cand_of_id);
        free(sc.groups.bounds);
        free(sc.gen_deleted);
        if (q < 0)
                return log_error_errno(q, "gc: sweep failed: %m");
        r->t_sweep = since(t0);

        /* 5. reconcile (whole store only) */
        t0 = clock_monotonic_ns();
        if (!sc.scoped) {
                q = reconcile(r);
                if (q < 0)
                        run_error(r, "reconcile", NULL, q);
        }
        r->t_reconcile = since(t0);
        return 0;
}

static int run_phases(Run *r) {
        store_cold_reads_begin();
        int q = run_phases_cold(r);
        store_cold_reads_end();
        uint64_t cache, memtables;
        if (store_index_memory(r->s, &cache, &memtables) >= 0)
                log_info("gc: index block cache %" PRIu64 " MiB, memtables %" PRIu64 " MiB; peak RSS %ld MiB",
                         cache >> 20, memtables >> 20, peak_rss_mib());
        return q;
}

typedef struct RunThread {
        Run *r;
        int nice;
        bool idle;
        int result;
} RunThread;

static void note_own_priority(Run *r) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, (id_t) gettid());
        r->cpu_nice = errno == 0 ? cur : -1;
        r->cpu_idle = sched_getscheduler(0) == SCHED_IDLE;
}

/* The run's own thread, at gc.cpu_nice or under SCHED_IDLE (gc.sched_idle): it and the sweep
 * threads it starts (which inherit both) yield the CPU to request threads. Measured at 250k
 * blobs with a fixed 2,000 req/s of manifest GETs on 2 cores: p99 during GC 4.6-4.8 ms at
 * nice 0, 2.2 ms at nice 10, GC time the same; a CPU saturated by requests leaves such a GC
 * little (1M blobs: 14-18 s at nice 0, 36 s at nice 10). SCHED_IDLE goes further: a waking
 * request thread preempts a GC thread at once instead of when the GC's slice is used up. A
 * thread of its own because neither can be undone without privilege, and the caller may be an
 * HTTP worker. */
static void *run_thread(void *userdata) {
        RunThread *t = userdata;
        (void) pthread_setname_np(pthread_self(), "plura-gc");
        if (t->nice > 0 && setpriority(PRIO_PROCESS, (id_t) gettid(), t->nice) < 0)
                log_warning_errno(errno, "gc: cannot lower the GC threads' CPU priority: %m");
        if (t->idle && sched_setscheduler(0, SCHED_IDLE, &(struct sched_param) { .sched_priority = 0 }) < 0)
                log_warning_errno(errno, "gc: cannot run the GC threads under SCHED_IDLE, at nice %d instead: %m", t->nice);
        note_own_priority(t->r);
        t->result = run_phases(t->r);
        return NULL;
}

static int run_phases_deprioritized(Run *r, int nice, bool idle) {
        if (nice <= 0 && !idle) {
                note_own_priority(r);
                return run_phases(r);
        }
        RunThread t = { .r = r, .nice = nice, .idle = idle };
        pthread_t th;
        int k = pthread_create(&th, NULL, run_thread, &t);
        if (k != 0) {
                log_warning_errno(k, "gc: cannot start the GC thread, running at normal priority: %m");
                note_own_priority(r);
                return run_phases(r);
        }
        pthread_join(th, NULL);
        return t.result;
}

int gc_run(Store *s, const GcConfig *c, const GcOptions *o, json_t **ret_report) {
        pthread_mutex_lock(&running_lock);
        if (running) {
                pthread_mutex_unlock(&running_lock);
                return -EBUSY;
        }
        running = true;
        active_runs++;
        cancel_requested = 0;
        pthread_mutex_unlock(&running_lock);

        if (!o->dry_run && store_is_read_only(s)) {
                run_finished();
                run_left();
                return -EROFS;
        }

        Run r = {
                .s = s,
                .c = c,
                .o = o,
                .actor = o->actor ? o->actor : "gc",
                .orphan_list = json_array(),
                .missing_list = json_array(),
                .raced_list = json_array(),
                .errors = json_array(),
                .lock = PTHREAD_MUTEX_INITIALIZER,
        };
        const char *delay = getenv("PLURA_GC_TEST_DELAY_MS");
        if (delay)
                r.delay_ms = (unsigned) strtoul(delay, NULL, 10);
        int64_t started = clock_now_ns();
        uint64_t mono0 = clock_monotonic_ns();
        r.now = started;
        r.cutoff = started - c->grace_ns;
        log_info("gc: %s started%s%s (peak RSS so far %ld MiB)", o->dry_run ? "dry run" : "run", o->repo ? " for " : "",
                 strempty(o->repo), peak_rss_mib());

        int q = graph_init(&r.g);
        if (q >= 0)
                q = run_phases_deprioritized(&r, c->cpu_nice, c->sched_idle);
        json_t *rep = NULL;
        if (q >= 0) {
                /* durations from the monotonic clock, times from the (injectable) wall clock */
                int64_t ended = started + (int64_t) (clock_monotonic_ns() - mono0);
                rep = build_report(&r, started, ended);
                if (!rep)
                        q = -ENOMEM;
        }
        bool stored = false;
        if (q >= 0 && !o->dry_run) {
                int k = report_store(s, c, rep, started, r.intent_written);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot store the report: %m");
                else
                        r.intent_written = false, stored = true; /* intent removed in the same batch */
        }
        if (r.intent_written && q < 0)
                /* cancelled or failed in the sweep: records may be gone whose files are not (the
                 * record pass ran, the file pass did not). The intent stays, so that fsck counts
                 * those files as this run's leftovers, as after a kill -9; the next run collects
                 * them and removes it. */
                log_warning("gc: the run stopped in its sweep; the sweep intent stays for fsck and the next run");
        else if (r.intent_written) {
                int k = store_kv_delete(s, INDEX_META, "gc/sweep", 8);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot remove the sweep intent: %m");
        }
        metrics_after_run(o, q, rep);
        if (rep) {
                json_t *t = json_object_get(rep, "totals");
                char b1[32];
                log_info("gc: %s done in %.3fs: %" JSON_INTEGER_FORMAT " tags, %" JSON_INTEGER_FORMAT
                         " manifests, %" JSON_INTEGER_FORMAT " blobs, %s on disk",
                         o->dry_run ? "dry run" : "run", json_real_value(json_object_get(rep, "duration_seconds")),
                         json_integer_value(json_object_get(t, "tags_deleted")),
                         json_integer_value(json_object_get(t, "manifests_deleted")),
                         json_integer_value(json_object_get(t, "blobs_deleted")),
                         format_bytes(b1, sizeof b1, (uint64_t) json_integer_value(json_object_get(t, "bytes_disk"))));
        } else
                log_error_errno(q, "gc: failed: %m");
        run_done(&r);

        run_finished();
        /* The report is readable (GET gc/reports/last) from here on; its sync comes after the
         * clients waiting for the run (GET gc?wait=N) have been told it is over. That sync is
         * the journal commit of all the run's unlinks (10k blobs on ext4: 10-15 ms, a tenth of
         * the run). Returns only once it is durable. If power fails first, the report is lost and the intent stays: fsck and the
         * next run treat that as an interrupted sweep. The records were synced before any file
         * went. */
        if (stored) {
                int k = store_sync_wal(s);
                if (k < 0)
                        log_warning_errno(k, "gc: cannot sync the stored report: %m");
        }
        run_left();
        if (q < 0)
                return q;
        *ret_report = rep;
        return 0;
}
