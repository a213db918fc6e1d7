/* SPDX-License-Identifier: MIT */
/* The GC's sweep (see storage.h, "the GC's sweep and reconcile"): gc/ names the manifests and blobs
 * its mark found dead; these remove them, each under its digest lock, after re-checking it
 * against the mark's snapshot. A manifest PUT, blob mount or upload commit takes the same lock
 * and, where it writes a record, moves the lock stripe's generation before letting go of it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parallel.h"
#include "common/util.h"
#include "storage/store-internal.h"

/* Candidates are removed in groups: one index batch per group, under the group's digest stripes
 * (taken in sorted order), then the files one by one. Once the records are batched the unlinks
 * dominate, and they wait on the disk, not the CPU (an ext4 mounted with discard frees each file's
 * blocks with a synchronous discard: ~260 us a file measured), so more threads than cores overlap
 * them: 16 took the 1M-blob sweep from 10.4 to 8.0-8.6 s. Few candidates are cut into smaller
 * groups so that every thread gets some. */
#define SWEEP_GROUP 512
#define SWEEP_GROUP_MIN 32
#define SWEEP_THREADS 16

/* What became of a candidate inside a pass (StoreSweepResult once reported). */
typedef enum ItemState {
        ITEM_SKIP,        /* gone already */
        ITEM_REMOVE,      /* in the batch */
        ITEM_RACED,       /* used since the mark snapshot: kept */
        ITEM_FAILED,
        ITEM_RECOMMITTED, /* blobs: committed again between record deletion and unlink: kept */
} ItemState;

static uint64_t add_ns(uint64_t *acc, uint64_t *t0) {
        uint64_t t = clock_monotonic_ns();
        __atomic_fetch_add(acc, t - *t0, __ATOMIC_RELAXED);
        *t0 = t;
        return t;
}

typedef struct Sweep {
        Store *s;
        const StoreSweepOptions *o;
        IndexSnapshot *now;      /* the current state, cold or not (o->cold) */
        size_t n;
        uint8_t *state;          /* ItemState per candidate */
        int *error;
        size_t *bounds;          /* group k is bounds[k]..bounds[k+1] */
        size_t n_groups;
        StoreSweepStats stats;
        /* manifests */
        StoreSweepDigestFn digest;
        /* blobs */
        StoreSweepBlobFn blob;
        uint32_t *gen_deleted;   /* per stripe: its generation when the record pass let go of it */
        uint32_t *first_link, *n_links; /* per candidate: its repository links (links[]) */
        char **links;
        uint32_t *link_len;
        size_t n_links_total;
} Sweep;

static void sweep_done(Sweep *w) {
        free(w->state);
        free(w->error);
        free(w->bounds);
        free(w->gen_deleted);
        free(w->first_link);
        free(w->n_links);
        for (size_t i = 0; i < w->n_links_total; i++)
                free(w->links[i]);
        free(w->links);
        free(w->link_len);
}

static void candidate_name(Sweep *w, size_t i, char out[DIGEST_MAX_LEN], BlobInfo *then) {
        if (w->blob) {
                BlobInfo tmp;
                w->blob(w->o->userdata, i, out, then ? then : &tmp);
        } else
                w->digest(w->o->userdata, i, out);
}

static bool sweep_cancelled(void *userdata) {
        Sweep *w = userdata;
        return w->o->cancelled && w->o->cancelled(w->o->userdata);
}

static void each_candidate(Sweep *w) {
        if (w->o->each)
                w->o->each(w->o->userdata);
}

static int sweep_init(Sweep *w, Store *s, const StoreSweepOptions *o, size_t n) {
        if (s->read_only)
                return -EROFS;
        if (!o || !o->snap)
                return -EINVAL;
        *w = (Sweep) { .s = s, .o = o, .n = n, .now = o->cold ? s->live_cold : NULL };
        w->state = calloc(MAX(n, (size_t) 1), sizeof *w->state);
        w->error = calloc(MAX(n, (size_t) 1), sizeof *w->error);
        return w->state && w->error ? 0 : -ENOMEM;
}

/* Cuts the sorted candidates into groups of at least SWEEP_GROUP, each ending where the digest
 * lock stripe changes, so that the groups the threads hold at once never share a stripe and never
 * wait for each other. */
static int groups_by_stripe(Sweep *w) {
        size_t n = w->n;
        /* smaller groups when there are few candidates, so that every thread has some */
        size_t group = MIN(MAX(n / (SWEEP_THREADS * 2), (size_t) SWEEP_GROUP_MIN), (size_t) SWEEP_GROUP);
        w->bounds = malloc((n / group + 3) * sizeof(size_t));
        if (!w->bounds)
                return -ENOMEM;
        w->bounds[0] = 0;
        size_t start = 0, prev = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
                char d[DIGEST_MAX_LEN];
                candidate_name(w, i, d, NULL);
                size_t stripe = digest_stripe(d);
                if (i - start >= group && stripe != prev) {
                        w->bounds[++w->n_groups] = i;
                        start = i;
                }
                prev = stripe;
        }
        if (n > 0)
                w->bounds[++w->n_groups] = n;
        return 0;
}

/* A group's digest names and the pointers the locks take. */
typedef struct Group {
        size_t start, n;
        char (*names)[DIGEST_MAX_LEN];
        const char **ptrs;
        BlobInfo *then;  /* blobs: the records as the mark read them */
} Group;

static void group_done(Group *g) {
        free(g->names);
        free(g->ptrs);
        free(g->then);
}

static int group_init(Sweep *w, size_t gi, bool with_then, Group *g) {
        *g = (Group) { .start = w->bounds[gi], .n = w->bounds[gi + 1] - w->bounds[gi] };
        g->names = malloc(g->n * sizeof *g->names);
        g->ptrs = malloc(g->n * sizeof *g->ptrs);
        g->then = with_then ? malloc(g->n * sizeof *g->then) : NULL;
        if (!g->names || !g->ptrs || (with_then && !g->then)) {
                group_done(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < g->n; i++) {
                candidate_name(w, g->start + i, g->names[i], with_then ? &g->then[i] : NULL);
                g->ptrs[i] = g->names[i];
        }
        return 0;
}

static bool stripe_unchanged(const uint32_t *since, Store *s, const char *digest) {
        if (!since)
                return false;
        size_t stripe = digest_stripe(digest);
        return __atomic_load_n(&s->digest_gen[stripe], __ATOMIC_ACQUIRE) == since[stripe];
}

/* ---------------------------------------------------------------- manifests */

/* Whether a manifest record is linked in any repository now (the caller holds its digest lock,
 * which a PUT holds while it writes record and link): one seek to each repository's link of it. */
static bool manifest_linked_anywhere(Sweep *w, const char *digest) {
        Store *s = w->s;
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, w->now ? w->now->ro : s->read_options, s->cf[INDEX_REPO_MANIFEST]);
        if (!it)
                return true; /* when in doubt it is linked */
        size_t dl = strlen(digest);
        bool linked = false;
        char *probe = NULL;
        size_t probe_alloc = 0;
        rocksdb_iter_seek_to_first(it);
        while (rocksdb_iter_valid(it)) {
                size_t kl;
                const char *k = rocksdb_iter_key(it, &kl);
                const char *z = memchr(k, 0, kl);
                size_t rl = z ? (size_t) (z - k) : kl;
                if (rl + 2 + dl > probe_alloc) {
                        char *p = realloc(probe, rl + 2 + dl);
                        if (!p) {
                                linked = true;
                                break;
                        }
                        probe = p;
                        probe_alloc = rl + 2 + dl;
                }
                memcpy(probe, k, rl);
                probe[rl] = 0;
                memcpy(probe + rl + 1, digest, dl);
                rocksdb_iter_seek(it, probe, rl + 1 + dl);
                if (rocksdb_iter_valid(it)) {
                        size_t fl;
                        const char *f = rocksdb_iter_key(it, &fl);
                        if (fl == rl + 1 + dl && memcmp(f, probe, fl) == 0) {
                                linked = true;
                                break;
                        }
                }
                probe[rl] = 1; /* past every "repo\0..." key: the next repository */
                rocksdb_iter_seek(it, probe, rl + 1);
        }
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        if (e) {
                log_warning("sweep: reading repository links: %s", e);
                rocksdb_free(e);
                linked = true;
        }
        rocksdb_iter_destroy(it);
        free(probe);
        return linked;
}

/* The first child of a candidate image manifest: its blob record in the mark snapshot and now. */
typedef struct ChildRecord {
        char name[DIGEST_MAX_LEN];
        size_t of;     /* the candidate's index in the group */
        char *then;    /* its blob record in the mark snapshot */
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

static int first_child_cb(void *userdata, size_t i, const char *digest, size_t len) {
        char *out = userdata;
        if (i == 0 && len < DIGEST_MAX_LEN) {
                memcpy(out, digest, len);
                out[len] = 0;
        }
        return 0;
}

/* From a manifest record (u32 meta length, meta JSON, raw bytes) as the mark snapshot has it:
 * the digest of an image's first child (config, else first layer) into out. 0 if it has one;
 * -EISDIR for an index (its children are manifests), -ENOENT if none, -EBADMSG if unreadable. */
static int record_first_child(const char *val, size_t vlen, char out[DIGEST_MAX_LEN]) {
        if (vlen < 4)
                return -EBADMSG;
        uint32_t ml = get_u32_le((const uint8_t *) val);
        if (ml > vlen - 4)
                return -EBADMSG;
        const char *meta = val + 4, *raw = val + 4 + ml;
        size_t rl = vlen - 4 - ml;
        ManifestMeta mm;
        *out = 0;
        const char *mt = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char mtbuf[256];
        if (manifest_meta_scan(meta, ml, &mm, first_child_cb, out) >= 0 && mm.media_type && mm.media_type_len < sizeof mtbuf) {
                memcpy(mtbuf, mm.media_type, mm.media_type_len);
                mtbuf[mm.media_type_len] = 0;
                mt = mtbuf;
                if (!mm.has_children)
                        *out = 0;
        } else {
                j = json_loadb(meta, ml, 0, NULL);
                mt = json_string_value(json_object_get(j, "mediaType"));
                json_t *children = json_object_get(j, "children");
                const char *c = json_string_value(json_array_get(children, 0));
                if (c && strlen(c) < DIGEST_MAX_LEN)
                        strcpy(out, c);
                mm.has_children = json_is_array(children);
        }
        if (!mt)
                return -EBADMSG;
        if (streq(mt, MEDIA_TYPE_OCI_INDEX) || streq(mt, MEDIA_TYPE_DOCKER_LIST))
                return -EISDIR;
        if (mm.has_children)
                return *out ? 0 : -ENOENT;
        /* a record without the children list: the manifest itself says */
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char err[128];
        if (manifest_parse(raw, rl, mt, &m, err, sizeof err) < 0)
                return -EBADMSG;
        if (manifest_kind_is_index(m->kind))
                return -EISDIR;
        const char *first = m->has_config ? m->config.digest : m->n_layers > 0 ? m->layers[0].digest : NULL;
        if (!first || strlen(first) >= DIGEST_MAX_LEN)
                return -ENOENT;
        strcpy(out, first);
        return 0;
}

typedef struct ManifestRecords {
        char **val;
        size_t *len;
} ManifestRecords;

static int manifest_then_cb(void *userdata, size_t i, const char *val, size_t vlen) {
        ManifestRecords *m = userdata;
        if (!val)
                return 0;
        m->val[i] = malloc(MAX(vlen, (size_t) 1));
        if (!m->val[i])
                return -ENOMEM;
        memcpy(m->val[i], val, vlen);
        m->len[i] = vlen;
        return 0;
}

/* Under the group's digest locks: which of its manifests were pushed again since the mark
 * snapshot? Where the stripe's generation has not moved since the snapshot took its copy, none
 * was, without a read (no pushes during the run: no reads). Otherwise: a manifest PUT rewrites
 * (touches) the blob records of an image's children in the same batch as its link, so comparing
 * each image's first child's record with the snapshot's answers that; two lookups of the whole
 * group's children (one per data block, not one per manifest) instead of one lookup per
 * repository and manifest. Indexes (children are manifests), and images whose child was not in
 * the snapshot or could not be read, take the per-repository check. */
static int manifests_pushed_again(Sweep *w, const Group *g, bool *ret) {
        size_t n = g->n;
        IndexSnapshot *snap = w->o->snap;
        _cleanup_free_ ChildRecord *child = calloc(MAX(n, (size_t) 1), sizeof *child);
        _cleanup_free_ const char **keys = malloc(MAX(n, (size_t) 1) * sizeof *keys);
        _cleanup_free_ size_t *lens = malloc(MAX(n, (size_t) 1) * sizeof *lens);
        _cleanup_free_ size_t *at = malloc(MAX(n, (size_t) 1) * sizeof *at);
        _cleanup_free_ bool *decided = calloc(MAX(n, (size_t) 1), sizeof *decided);
        _cleanup_free_ char **rec = calloc(MAX(n, (size_t) 1), sizeof *rec);
        _cleanup_free_ size_t *rec_len = calloc(MAX(n, (size_t) 1), sizeof *rec_len);
        if (!child || !keys || !lens || !at || !decided || !rec || !rec_len)
                return -ENOMEM;
        /* the records of those whose stripe moved, as the snapshot has them (sorted: one read per block) */
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                if (stripe_unchanged(snap->generations, w->s, g->names[i])) {
                        ret[i] = false; /* no PUT of it (or of a digest sharing its stripe) since the snapshot */
                        decided[i] = true;
                        continue;
                }
                keys[m] = g->names[i];
                lens[m] = strlen(g->names[i]);
                at[m++] = i;
        }
        ManifestRecords mr = { rec, rec_len };
        int q = index_multi_get(w->s, snap, INDEX_MANIFEST, keys, lens, m, true, manifest_then_cb, &mr);
        size_t nk = 0;
        for (size_t k = 0; q != -ENOMEM && k < m; k++) {
                ChildRecord *c = &child[nk];
                if (!rec[k] || record_first_child(rec[k], rec_len[k], c->name) < 0)
                        continue; /* an index, or unreadable: the per-repository check */
                c->of = at[k];
                c->then_status = c->now_status = -EIO;
                keys[nk] = c->name;
                lens[nk++] = strlen(c->name);
        }
        for (size_t k = 0; k < m; k++)
                free(rec[k]);
        if (q == -ENOMEM)
                return q;
        __atomic_fetch_add(&w->stats.reads, m, __ATOMIC_RELAXED);
        /* read errors leave -EIO in the status: those take the per-repository check */
        q = index_multi_get(w->s, snap, INDEX_BLOB, keys, lens, nk, false, child_then_cb, child);
        if (q != -ENOMEM)
                q = index_multi_get(w->s, w->now, INDEX_BLOB, keys, lens, nk, false, child_now_cb, child);
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
                        ret[i] = manifest_linked_anywhere(w, g->names[i]);
        return 0;
}

static int manifest_group(void *userdata, size_t gi) {
        Sweep *w = userdata;
        Group g;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b || group_init(w, gi, false, &g) < 0)
                return -ENOMEM;
        _cleanup_free_ bool *again = malloc(MAX(g.n, (size_t) 1) * sizeof *again);
        if (!again) {
                group_done(&g);
                return -ENOMEM;
        }
        /* a manifest PUT holds its digest's lock while it writes record + link */
        lock_digests(w->s, g.ptrs, g.n);
        int k = manifests_pushed_again(w, &g, again);
        if (k < 0) {
                unlock_digests_full(w->s, g.ptrs, g.n, false);
                group_done(&g);
                return k;
        }
        size_t n_remove = 0;
        uint8_t *state = w->state + g.start;
        for (size_t i = 0; i < g.n; i++) {
                each_candidate(w);
                if (again[i]) {
                        state[i] = ITEM_RACED;
                        continue;
                }
                index_batch_delete(b, INDEX_MANIFEST, g.names[i], strlen(g.names[i]));
                state[i] = ITEM_REMOVE;
                n_remove++;
        }
        /* not synced: store_sweep_manifests() syncs once, at its end */
        int q = n_remove > 0 ? index_batch_commit_full(w->s, b, false) : 0;
        unlock_digests_full(w->s, g.ptrs, g.n, false);
        for (size_t i = 0; i < g.n; i++) {
                StoreSweepResult res = state[i] == ITEM_RACED ? STORE_SWEEP_RACED : q < 0 ? STORE_SWEEP_FAILED : STORE_SWEEP_REMOVED;
                w->o->done(w->o->userdata, g.start + i, res, res == STORE_SWEEP_FAILED ? q : 0);
        }
        group_done(&g);
        return 0;
}

int store_sweep_manifests(Store *s, const StoreSweepOptions *o, size_t n, StoreSweepDigestFn digest,
                          StoreSweepStats *ret_stats) {
        Sweep w;
        int q = sweep_init(&w, s, o, n);
        w.digest = digest;
        if (q >= 0 && !o->done)
                q = -EINVAL;
        if (q >= 0)
                q = groups_by_stripe(&w);
        if (q >= 0)
                q = parallel_for(w.n_groups, o->threads ?: SWEEP_THREADS, o->thread_name ?: "plura-sweep", manifest_group,
                                 sweep_cancelled, &w);
        /* One sync for all the groups' deletions (one per group cost 50-60 ms at 1,250 manifests).
         * A crash before it loses deletions the next run redoes; a blob sweep's records go after it
         * in the same WAL, so a blob is never gone while its manifest comes back. */
        if (q >= 0 && n > 0) {
                q = store_sync_wal(s);
                if (q < 0)
                        log_error_errno(q, "sweep: cannot sync the manifest deletions: %m");
        }
        if (ret_stats)
                *ret_stats = w.stats;
        sweep_done(&w);
        return q;
}

/* ---------------------------------------------------------------- blobs */

/* The first 16 hex digits of a digest (its algorithm's part of the sort order decides the rest). */
static bool digest_prefix(const char *digest, uint8_t *ret_algo, uint64_t *ret) {
        const char *hex = strchr(digest, ':');
        if (!hex)
                return false;
        *ret_algo = hex - digest == 6 && memcmp(digest, "sha512", 6) == 0 ? 1 : 0;
        uint64_t v = 0;
        for (size_t i = 1; i <= 16; i++) {
                char c = hex[i];
                int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (x < 0)
                        return false;
                v = v << 4 | (uint64_t) x;
        }
        *ret = v;
        return true;
}

typedef struct LinkScan {
        Sweep *w;
        uint64_t *prefix;   /* per candidate */
        uint8_t *algo;
        uint32_t *cand;     /* per collected link */
        size_t n, allocated;
        char **keys;
        uint32_t *lens;
} LinkScan;

static ssize_t candidate_find(LinkScan *l, const char *digest) {
        uint8_t algo;
        uint64_t p;
        if (!digest_prefix(digest, &algo, &p))
                return -1;
        /* candidates sort by algorithm name, then hex: (algo, prefix) is non-decreasing */
        size_t lo = 0, hi = l->w->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (l->algo[mid] < algo || (l->algo[mid] == algo && l->prefix[mid] < p))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < l->w->n && l->algo[i] == algo && l->prefix[i] == p; i++) {
                char name[DIGEST_MAX_LEN];
                candidate_name(l->w, i, name, NULL);
                if (streq(name, digest))
                        return (ssize_t) i;
        }
        return -1;
}

static int link_scan_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        LinkScan *l = userdata;
        const char *z = memchr(key, 0, klen);
        char digest[DIGEST_MAX_LEN];
        if (!z || klen - (size_t) (z - key) - 1 >= sizeof digest)
                return 0;
        size_t dl = klen - (size_t) (z - key) - 1;
        memcpy(digest, z + 1, dl);
        digest[dl] = 0;
        ssize_t c = candidate_find(l, digest);
        if (c < 0)
                return 0;
        if (l->n >= l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 1024;
                uint32_t *nc = realloc(l->cand, na * sizeof *nc);
                if (nc)
                        l->cand = nc;
                char **nk = realloc(l->keys, na * sizeof *nk);
                if (nk)
                        l->keys = nk;
                uint32_t *nl = realloc(l->lens, na * sizeof *nl);
                if (nl)
                        l->lens = nl;
                if (!nc || !nk || !nl)
                        return -ENOMEM;
                l->allocated = na;
        }
        char *k = malloc(klen);
        if (!k)
                return -ENOMEM;
        memcpy(k, key, klen);
        l->cand[l->n] = (uint32_t) c;
        l->keys[l->n] = k;
        l->lens[l->n++] = (uint32_t) klen;
        return 0;
}

/* The repo_blob links of every candidate (in the mark snapshot: a link made since touched the
 * blob's record, so the sweep keeps that blob anyway), so that one batch removes a blob's record
 * together with its links. */
static int collect_links(Sweep *w) {
        LinkScan l = { .w = w };
        l.prefix = malloc(MAX(w->n, (size_t) 1) * sizeof *l.prefix);
        l.algo = malloc(MAX(w->n, (size_t) 1));
        int q = l.prefix && l.algo ? 0 : -ENOMEM;
        for (size_t i = 0; q >= 0 && i < w->n; i++) {
                char name[DIGEST_MAX_LEN];
                candidate_name(w, i, name, NULL);
                if (!digest_prefix(name, &l.algo[i], &l.prefix[i]))
                        q = -EINVAL; /* the caller's digests are valid */
        }
        if (q >= 0)
                q = store_kv_iterate(w->s, w->o->snap, INDEX_REPO_BLOB, NULL, 0, NULL, 0, link_scan_cb, &l);
        free(l.prefix);
        free(l.algo);
        if (q >= 0) {
                w->first_link = malloc(MAX(w->n, (size_t) 1) * sizeof *w->first_link);
                w->n_links = calloc(MAX(w->n, (size_t) 1), sizeof *w->n_links);
                w->links = malloc(MAX(l.n, (size_t) 1) * sizeof *w->links);
                w->link_len = malloc(MAX(l.n, (size_t) 1) * sizeof *w->link_len);
                if (!w->first_link || !w->n_links || !w->links || !w->link_len)
                        q = -ENOMEM;
        }
        if (q < 0) {
                for (size_t i = 0; i < l.n; i++)
                        free(l.keys[i]);
                free(l.keys);
                free(l.lens);
                free(l.cand);
                return q;
        }
        /* by candidate: a counting sort of the links */
        for (size_t i = 0; i < l.n; i++)
                w->n_links[l.cand[i]]++;
        uint32_t at = 0;
        for (size_t i = 0; i < w->n; i++) {
                w->first_link[i] = at;
                at += w->n_links[i];
        }
        _cleanup_free_ uint32_t *fill = calloc(MAX(w->n, (size_t) 1), sizeof *fill);
        if (!fill) {
                for (size_t i = 0; i < l.n; i++)
                        free(l.keys[i]);
                free(l.keys);
                free(l.lens);
                free(l.cand);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l.n; i++) {
                uint32_t c = l.cand[i], k = w->first_link[c] + fill[c]++;
                w->links[k] = l.keys[i];
                w->link_len[k] = l.lens[i];
        }
        w->n_links_total = l.n;
        free(l.keys);
        free(l.lens);
        free(l.cand);
        return 0;
}

#define BLOB_UNCHANGED 1 /* status: the stripe's generation did not move, the record was not read */

typedef struct BlobInfos {
        BlobInfo *infos;
        int *status;
} BlobInfos;

static int blob_infos_cb(void *userdata, size_t i, const char *val, size_t vlen) {
        BlobInfos *b = userdata;
        b->status[i] = !val ? -ENOENT : blob_info_decode(val, vlen, &b->infos[i]);
        return 0;
}

/* store_blob_infos() through view, of digests known to be valid and sorted */
static int blob_infos_read(Store *s, IndexSnapshot *view, const char *const *digests, size_t n, BlobInfo *ret, int *status) {
        _cleanup_free_ size_t *lens = malloc(MAX(n, (size_t) 1) * sizeof *lens);
        if (!lens)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                lens[i] = strlen(digests[i]);
        BlobInfos b = { .infos = ret, .status = status };
        return index_multi_get(s, view, INDEX_BLOB, digests, lens, n, true, blob_infos_cb, &b);
}

/* Takes the group's digest locks and reads, in one go, the current records of those whose stripe
 * generation moved since since[stripe] (sorted records share data blocks; without the block cache
 * each single lookup decompressed its block again): status[i] is 0, -ENOENT or an error. The
 * others get BLOB_UNCHANGED: no record of their stripe was written since, so theirs is what it
 * was then. The caller unlocks. */
static int blob_group_lock_read(Sweep *w, const Group *g, const uint32_t *since, BlobInfo *now, int *status,
                                uint64_t *reads, uint64_t *t0) {
        size_t n = g->n;
        _cleanup_free_ const char **read = malloc(MAX(n, (size_t) 1) * sizeof *read);
        _cleanup_free_ size_t *at = malloc(MAX(n, (size_t) 1) * sizeof *at);
        _cleanup_free_ BlobInfo *got = malloc(MAX(n, (size_t) 1) * sizeof *got);
        _cleanup_free_ int *st = malloc(MAX(n, (size_t) 1) * sizeof *st);
        if (!read || !at || !got || !st)
                return -ENOMEM;
        *t0 = clock_monotonic_ns();
        lock_digests(w->s, g->ptrs, n);
        add_ns(&w->stats.ns_lock, t0);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                if (stripe_unchanged(since, w->s, g->names[i])) {
                        status[i] = BLOB_UNCHANGED;
                        continue;
                }
                read[m] = g->names[i];
                at[m++] = i;
        }
        if (m > 0) {
                int q = blob_infos_read(w->s, w->now, read, m, got, st);
                for (size_t j = 0; j < m; j++) {
                        now[at[j]] = got[j];
                        status[at[j]] = q < 0 ? q : st[j];
                }
                __atomic_fetch_add(reads, m, __ATOMIC_RELAXED);
        }
        return 0;
}

/* The blob sweep removes in two passes over the same groups of consecutive candidates (sorted by
 * digest, so a group's few lock stripes are held by no other sweep thread):
 *
 * 1. blob_records_group(): under the group's digest locks, re-checks each candidate (any manifest
 *    PUT, mount or commit since the mark snapshot rewrote its record under that lock) and deletes
 *    the records of the unchanged ones and their repository links, without a sync.
 * 2. one WAL sync for all of them (store_sweep_blobs()), then
 * 3. blob_files_group(): under the same locks again, removes the file of each deleted record that
 *    is still absent. A commit of the same digest between 1 and 3 wrote a new record (and maybe
 *    renamed its own file over ours) under that lock: the file is then kept.
 *
 * Records before files, and durable before any file goes: a crash leaves at worst orphan files
 * (the GC's sweep intent tells fsck; its reconcile collects them). One sync instead of one per
 * group: on a journaled ext4 the synced group commits waited on journal commits full of the other
 * threads' unlinks (10k blobs: 1.5-1.8 s of thread time in commits, the removal 0.22 s). */
static int blob_records_group(void *userdata, size_t gi) {
        Sweep *w = userdata;
        Group g;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b || group_init(w, gi, true, &g) < 0)
                return -ENOMEM;
        size_t n = g.n;
        _cleanup_free_ BlobInfo *now = malloc(MAX(n, (size_t) 1) * sizeof *now);
        _cleanup_free_ int *status = malloc(MAX(n, (size_t) 1) * sizeof *status);
        uint64_t t0;
        if (!now || !status || blob_group_lock_read(w, &g, w->o->snap->generations, now, status, &w->stats.reads, &t0) < 0) {
                group_done(&g);
                return -ENOMEM;
        }
        uint8_t *state = w->state + g.start;
        int *error = w->error + g.start;
        size_t n_remove = 0;
        for (size_t i = 0; i < n; i++) {
                const BlobInfo *then = &g.then[i];
                each_candidate(w);
                int q = status[i];
                if (q == BLOB_UNCHANGED) /* as in the mark snapshot */
                        now[i] = *then, q = 0;
                if (q == -ENOENT) {
                        state[i] = ITEM_SKIP;
                        continue;
                }
                if (q < 0) {
                        state[i] = ITEM_FAILED, error[i] = q;
                        continue;
                }
                /* Comparing timestamps with mark_start alone is not enough: a PUT takes its time
                 * before it commits, which may be before the mark started. */
                if (now[i].touched != then->touched || now[i].created != then->created || now[i].touched >= w->o->mark_start ||
                    MAX(now[i].created, now[i].touched) >= w->o->cutoff) {
                        state[i] = ITEM_RACED;
                        continue;
                }
                index_batch_delete(b, INDEX_BLOB, g.names[i], strlen(g.names[i]));
                size_t c = g.start + i;
                for (uint32_t k = 0; k < w->n_links[c]; k++)
                        index_batch_delete(b, INDEX_REPO_BLOB, w->links[w->first_link[c] + k], w->link_len[w->first_link[c] + k]);
                state[i] = ITEM_REMOVE;
                n_remove++;
        }
        add_ns(&w->stats.ns_check, &t0);
        /* not synced: store_sweep_blobs() syncs once before any file goes */
        int q = n_remove > 0 ? index_batch_commit_full(w->s, b, false) : 0;
        /* still under the locks: what pass 2 compares with (no move of our own on unlock) */
        for (size_t i = 0; i < n; i++) {
                size_t stripe = digest_stripe(g.names[i]);
                w->gen_deleted[stripe] = __atomic_load_n(&w->s->digest_gen[stripe], __ATOMIC_ACQUIRE);
        }
        unlock_digests_full(w->s, g.ptrs, n, false);
        add_ns(&w->stats.ns_commit, &t0);
        for (size_t i = 0; i < n && q < 0; i++)
                if (state[i] == ITEM_REMOVE)
                        state[i] = ITEM_FAILED, error[i] = q;
        group_done(&g);
        return 0;
}

static int blob_files_group(void *userdata, size_t gi) {
        Sweep *w = userdata;
        size_t start = w->bounds[gi], n = w->bounds[gi + 1] - start;
        uint8_t *state = w->state + start;
        int *error = w->error + start;
        size_t n_remove = 0;
        for (size_t i = 0; i < n; i++)
                n_remove += state[i] == ITEM_REMOVE;
        if (n_remove > 0) {
                Group g;
                if (group_init(w, gi, false, &g) < 0)
                        return -ENOMEM;
                _cleanup_free_ BlobInfo *now = malloc(n * sizeof *now);
                _cleanup_free_ int *status = malloc(n * sizeof *status);
                uint64_t t0;
                if (!now || !status || blob_group_lock_read(w, &g, w->gen_deleted, now, status, &w->stats.reads_files, &t0) < 0) {
                        group_done(&g);
                        return -ENOMEM;
                }
                _cleanup_(blob_remover_freep) BlobRemover *rm = NULL;
                if (blob_remover_new(w->s->blobs, &rm) < 0) {
                        unlock_digests_full(w->s, g.ptrs, n, false);
                        group_done(&g);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n; i++) {
                        if (state[i] != ITEM_REMOVE)
                                continue;
                        int q = status[i];
                        if (q == BLOB_UNCHANGED) /* nobody wrote a record of its stripe since pass 1 deleted it */
                                q = -ENOENT;
                        if (q >= 0 || q == -EBADMSG) { /* a record again (even one we cannot read) */
                                state[i] = ITEM_RECOMMITTED;
                                continue;
                        }
                        if (q != -ENOENT) {
                                state[i] = ITEM_FAILED, error[i] = q;
                                continue;
                        }
                        q = blob_remover_remove(rm, g.names[i]);
                        if (q < 0)
                                state[i] = ITEM_FAILED, error[i] = q;
                }
                rm = blob_remover_free(rm);
                unlock_digests_full(w->s, g.ptrs, n, false);
                add_ns(&w->stats.ns_unlink, &t0);
                group_done(&g);
        }
        for (size_t i = 0; i < n; i++) {
                static const StoreSweepResult results[] = {
                        [ITEM_SKIP] = STORE_SWEEP_GONE,
                        [ITEM_REMOVE] = STORE_SWEEP_REMOVED,
                        [ITEM_RACED] = STORE_SWEEP_RACED,
                        [ITEM_FAILED] = STORE_SWEEP_FAILED,
                        [ITEM_RECOMMITTED] = STORE_SWEEP_RECOMMITTED,
                };
                w->o->done(w->o->userdata, start + i, results[state[i]], state[i] == ITEM_FAILED ? error[i] : 0);
        }
        return 0;
}

int store_sweep_blobs(Store *s, const StoreSweepOptions *o, size_t n, StoreSweepBlobFn blob, StoreSweepStats *ret_stats) {
        Sweep w;
        int q = sweep_init(&w, s, o, n);
        w.blob = blob;
        if (q >= 0 && !o->done)
                q = -EINVAL;
        uint64_t t0 = clock_monotonic_ns();
        if (q >= 0 && n > 0)
                q = collect_links(&w);
        w.stats.t_links = (double) (clock_monotonic_ns() - t0) / 1e9;
        if (q >= 0)
                q = groups_by_stripe(&w);
        if (q >= 0) {
                w.gen_deleted = calloc(DIGEST_LOCK_STRIPES, sizeof(uint32_t));
                if (!w.gen_deleted)
                        q = -ENOMEM;
        }
        unsigned threads = o->threads ?: SWEEP_THREADS;
        const char *name = o->thread_name ?: "plura-sweep";
        if (q >= 0) {
                t0 = clock_monotonic_ns();
                q = parallel_for(w.n_groups, threads, name, blob_records_group, sweep_cancelled, &w);
                w.stats.t_records = (double) (clock_monotonic_ns() - t0) / 1e9;
        }
        if (q >= 0) {
                t0 = clock_monotonic_ns();
                int k = n > 0 ? store_sync_wal(s) : 0;
                add_ns(&w.stats.ns_sync, &t0);
                if (k < 0) {
                        /* not durable: no file may go; the records come back or stay deleted, and a
                         * record without its file would be a broken image */
                        for (size_t i = 0; i < n; i++)
                                if (w.state[i] == ITEM_REMOVE)
                                        w.state[i] = ITEM_FAILED, w.error[i] = k;
                        log_error_errno(k, "sweep: cannot sync the blob record deletions, no file removed: %m");
                }
                if (o->between_passes)
                        o->between_passes(o->userdata);
                t0 = clock_monotonic_ns();
                q = parallel_for(w.n_groups, threads, name, blob_files_group, sweep_cancelled, &w);
                w.stats.t_files = (double) (clock_monotonic_ns() - t0) / 1e9;
        }
        if (ret_stats)
                *ret_stats = w.stats;
        sweep_done(&w);
        return q;
}
