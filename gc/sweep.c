/* SPDX-License-Identifier: MIT */
/* The sweep and the reconcile, the GC's side: which manifests and blobs the mark left (the
 * candidates) and what they are attributed to in the report. The removal itself, under the
 * digest locks and re-checked against the mark's snapshot, is storage's (store_sweep_*(),
 * store_orphan_remove()). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/gc-records.h"
#include "storage/records.h"

/* More threads than cores: the removal waits on the disk (see storage/sweep.c). */
#define GC_SWEEP_THREADS 16

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

/* ---------------------------------------------------------------- manifests */

static bool manifest_had_link(Run *r, uint32_t id) {
        /* whether the plan saw a link of it (a manifest the retention deleted) */
        char d[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, id, d);
        for (size_t i = 0; i < r->p.n_repos; i++)
                if (plan_find_link(&r->p, (uint32_t) i, d) != UINT32_MAX)
                        return true;
        return false;
}

typedef struct ManifestSweep {
        Run *r;
        IndexSnapshot *snap;
        IdList candidates; /* in the manifest records' key order, i.e. sorted by digest */
} ManifestSweep;

static int sweep_manifest_cb(void *userdata, const char *digest, const char *meta, size_t meta_len, const char *raw,
                             size_t raw_len) {
        ManifestSweep *c = userdata;
        Run *r = c->r;
        uint32_t id = digest_table_intern(r->g.digests, digest);
        if (id == DT_NONE)
                return 0;
        CHECK_CANCEL(r);
        /* a manifest pushed (and unlinked again) since the plan's snapshot: load it too */
        int mi = graph_ensure(&r->g, r->s, c->snap, id);
        if (mi == -ENOMEM)
                return mi;
        uint16_t *f = digest_table_flags(r->g.digests, id);
        if (*f & (DT_MARKED | DT_PROTECTED | DT_HELD))
                return 0;
        if (r->scoped && !manifest_had_link(r, id))
                return 0; /* unlinked records are collected by an unscoped run */
        if (r->o->dry_run) {
                *f |= DT_SWEPT;
                return 0;
        }
        return id_list_push(&c->candidates, id);
}

/* What the callbacks of one store_sweep_*() call get. */
typedef struct SweepCall {
        Run *r;
        const uint32_t *ids;                 /* manifests: digest ids */
        const struct BlobCandidate *blobs;   /* blobs */
} SweepCall;

static bool call_cancelled(void *userdata) {
        return gc_cancelled(((SweepCall *) userdata)->r->gc);
}

static void call_each(void *userdata) {
        run_test_delay(((SweepCall *) userdata)->r); /* tests: a crash between unsynced deletions */
}

static void manifest_digest_cb(void *userdata, size_t i, char ret[DIGEST_MAX_LEN]) {
        SweepCall *c = userdata;
        digest_table_name(c->r->g.digests, c->ids[i], ret);
}

static void manifest_done_cb(void *userdata, size_t i, StoreSweepResult result, int error) {
        SweepCall *c = userdata;
        Run *r = c->r;
        char name[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, c->ids[i], name);
        if (result == STORE_SWEEP_RACED)
                note_raced(r, "manifest", NULL, name, "linked again during GC");
        else if (result == STORE_SWEEP_FAILED)
                run_error(r, "remove manifest", name, error);
        else if (result == STORE_SWEEP_REMOVED) {
                /* flags of different ids are different bytes: no lock needed */
                *digest_table_flags(r->g.digests, c->ids[i]) |= DT_SWEPT;
        }
}

static StoreSweepOptions sweep_options(SweepCall *call, IndexSnapshot *snap, StoreSweepDoneFn done) {
        Run *r = call->r;
        return (StoreSweepOptions) {
                .snap = snap,
                .mark_start = r->mark_start,
                .cutoff = r->cutoff,
                .cold = true,
                .threads = GC_SWEEP_THREADS,
                .thread_name = "plura-gc-work", /* top -H, ps -L */
                .done = done,
                .userdata = call,
                .cancelled = call_cancelled,
                .each = r->delay_ms > 0 ? call_each : NULL,
        };
}

static int sweep_manifests(Run *r, IndexSnapshot *snap) {
        ManifestSweep c = { .r = r, .snap = snap };
        int q = store_manifests_foreach(r->s, snap, sweep_manifest_cb, &c);
        if (q >= 0 && c.candidates.n > 0) {
                SweepCall call = { .r = r, .ids = c.candidates.v };
                StoreSweepOptions o = sweep_options(&call, snap, manifest_done_cb);
                q = store_sweep_manifests(r->s, &o, c.candidates.n, manifest_digest_cb, NULL);
        }
        free(c.candidates.v);
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

/* ---------------------------------------------------------------- attribution */

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

static void account_blob(Run *r, uint32_t id, uint64_t logical, uint64_t disk) {
        pthread_mutex_lock(&r->lock);
        account_blob_locked(r, id, logical, disk);
        pthread_mutex_unlock(&r->lock);
}

/* ---------------------------------------------------------------- blobs */

typedef struct BlobCandidate {
        uint32_t id;
        BlobInfo bi;
} BlobCandidate;

typedef struct BlobSweep {
        Run *r;
        BlobCandidate *v; /* in the blob records' key order, i.e. sorted by digest */
        size_t n, allocated;
} BlobSweep;

static int sweep_blob_cb(void *userdata, const char *digest, const BlobInfo *bi) {
        BlobSweep *c = userdata;
        Run *r = c->r;
        r->blobs_scanned++;
        CHECK_CANCEL(r);
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
        if (r->scoped && !(*f & DT_CANDIDATE))
                return 0;
        if (MAX(bi->created, bi->touched) >= r->cutoff || bi->touched >= r->mark_start)
                return 0; /* younger than grace */
        if (r->o->dry_run) {
                *f |= DT_SWEPT;
                account_blob(r, id, bi->size, bi->stored_size);
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
        c->v[c->n++] = (BlobCandidate) { .id = id, .bi = *bi };
        return 0;
}

static void blob_cb(void *userdata, size_t i, char ret[DIGEST_MAX_LEN], BlobInfo *ret_then) {
        SweepCall *c = userdata;
        digest_table_name(c->r->g.digests, c->blobs[i].id, ret);
        *ret_then = c->blobs[i].bi;
}

static void blob_done_cb(void *userdata, size_t i, StoreSweepResult result, int error) {
        SweepCall *c = userdata;
        Run *r = c->r;
        const BlobCandidate *bc = &c->blobs[i];
        char name[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, bc->id, name);
        if (result == STORE_SWEEP_RACED)
                note_raced(r, "blob", NULL, name, "referenced during GC");
        else if (result == STORE_SWEEP_RECOMMITTED)
                note_raced(r, "blob", NULL, name, "pushed again during GC");
        else if (result == STORE_SWEEP_FAILED)
                run_error(r, "remove blob", name, error);
        else if (result == STORE_SWEEP_REMOVED) {
                *digest_table_flags(r->g.digests, bc->id) |= DT_SWEPT;
                account_blob(r, bc->id, bc->bi.size, bc->bi.stored_size);
        }
}

static void between_passes_cb(void *userdata) {
        Run *r = ((SweepCall *) userdata)->r;
        run_test_delay(r); /* tests: a crash between records and files */
        if (r->o->test_between_sweep_passes)
                r->o->test_between_sweep_passes(r->gc, r->o->test_userdata);
}

int gc_sweep(Run *r, IndexSnapshot *msnap) {
        uint64_t t0 = clock_monotonic_ns();
        int q = sweep_manifests(r, msnap);
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
        BlobSweep bs = { .r = r };
        q = store_blobs_foreach(r->s, msnap, NULL, sweep_blob_cb, &bs);
        double t_scan = since(t0);
        StoreSweepStats st = {};
        if (q >= 0 && bs.n > 0) {
                SweepCall call = { .r = r, .blobs = bs.v };
                StoreSweepOptions o = sweep_options(&call, msnap, blob_done_cb);
                o.between_passes = between_passes_cb;
                q = store_sweep_blobs(r->s, &o, bs.n, blob_cb, &st);
        }
        log_info("gc: sweep: manifests %.2f s, blob scan %.2f s, links %.2f s, removal %.3f s "
                 "(records %.3f s, files %.3f s; re-read %" PRIu64 " + %" PRIu64 " of %zu; thread time: lock wait %.2f, check %.2f, commit %.2f, unlink %.2f s; one sync %.3f s); peak RSS %ld MiB",
                 t_manifests, t_scan - t_manifests, st.t_links, since(t0) - t_scan - st.t_links, st.t_records, st.t_files,
                 st.reads, st.reads_files, bs.n, st.ns_lock / 1e9, st.ns_check / 1e9, st.ns_commit / 1e9, st.ns_unlink / 1e9,
                 st.ns_sync / 1e9, peak_rss_mib());
        free(bs.v);
        return q;
}

/* ---------------------------------------------------------------- reconcile */

static int reconcile_file_cb(void *userdata, const StoreBlobFile *f) {
        Run *r = userdata;
        if (!f->digest)
                return 0; /* not a blob name: leave it to fsck */
        uint32_t id = digest_table_intern(r->g.digests, f->digest);
        if (id == DT_NONE)
                return 0; /* no memory: leave it to the next run */
        uint16_t *fl = digest_table_flags(r->g.digests, id);
        *fl |= DT_FILE;
        if (*fl & DT_BLOB)
                return 0; /* has a record */
        uint64_t size;
        int64_t mtime;
        if (store_blob_file_stat(r->s, f, &size, &mtime) <= 0)
                return 0; /* gone, or no regular file: fsck's */
        if (mtime >= r->cutoff || mtime >= r->mark_start)
                return 0; /* maybe a commit in progress */
        if (!r->o->dry_run) {
                int q = store_orphan_remove(r->s, f->digest);
                if (q < 0)
                        run_error(r, "remove orphan file", f->digest, q);
                if (q <= 0)
                        return 0; /* an error, or it has a record (committed meanwhile) */
        }
        r->orphans++;
        r->orphan_bytes += size;
        r->rule_acc[RULE_ORPHAN].blobs++;
        r->rule_acc[RULE_ORPHAN].bytes_disk += size;
        r->total.bytes_disk += size;
        repo_acc(r, UINT32_MAX)->bytes_disk += size;
        if (json_array_size(r->orphan_list) < LIST_MAX)
                json_array_append_new(r->orphan_list, json_pack("{s:s, s:I}", "digest", f->digest, "bytes", (json_int_t) size));
        return 0;
}

int gc_reconcile(Run *r) {
        int q = store_blob_files_foreach(r->s, reconcile_file_cb, r);
        if (q < 0)
                return log_warning_errno(q, "gc: cannot walk the blob files: %m");

        /* records whose file is missing (and that we did not just remove) */
        size_t n = digest_table_size(r->g.digests);
        for (uint32_t id = 0; id < n; id++) {
                uint16_t f = *digest_table_flags(r->g.digests, id);
                if (!(f & DT_BLOB) || (f & (DT_FILE | DT_SWEPT)))
                        continue;
                char digest[DIGEST_MAX_LEN];
                digest_table_name(r->g.digests, id, digest);
                if (store_blob_file_exists(r->s, digest) != 0)
                        continue; /* committed meanwhile (or cannot tell) */
                BlobInfo bi;
                if (store_blob_info(r->s, digest, &bi) == -ENOENT)
                        continue;
                r->missing_files++;
                if (json_array_size(r->missing_list) < LIST_MAX)
                        json_array_append_new(r->missing_list, json_string(digest));
        }
        return 0;
}
