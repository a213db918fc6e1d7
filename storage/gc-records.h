/* SPDX-License-Identifier: MIT */
#pragma once

/* What the GC (gc/) keeps in the store and the mechanism under its policy: its reports and sweep
 * intent, and the sweep verbs that remove what its mark found unreferenced. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* ---- GC records (storage/gc-records.c): the reports of the GC's runs, the last one, and the sweep
 * intent (gc/gc.h: while a sweep runs, files without record older than its mark may be its own). */
/* Stores the report (JSON text) of the run started at started (ns) and as the last report, drops
 * the oldest beyond keep and, with clear_intent, the sweep intent: one batch, its WAL not synced
 * (store_sync_wal() or the next synced write makes it durable). */
int store_gc_report_put(Store *s, const char *json, int64_t started, size_t keep, bool clear_intent);
/* The last report's JSON (malloc()ed). -ENOENT if there was no run. */
int store_gc_report_last(Store *s, char **ret_json);
/* Every stored report, oldest first. */
typedef int (*GcReportFn)(void *userdata, int64_t started, const char *json, size_t len);
int store_gc_reports_foreach(Store *s, GcReportFn fn, void *userdata);
int store_gc_sweep_intent_put(Store *s, const char *json);
/* -ENOENT if no sweep is (or was left) in progress. */
int store_gc_sweep_intent_get(Store *s, char **ret_json);
int store_gc_sweep_intent_clear(Store *s);

/* ---- the GC's sweep and reconcile (storage/sweep.c, storage/blob-files.c): gc/ decides which
 * manifests and blobs go (its mark), these remove them, each under its digest lock (the lock of
 * manifest PUT, blob mount and upload commit) and re-checked against the mark's snapshot:
 * whatever a writer touched since is kept. The candidates, n of them, are handed over by index
 * through a callback (sorted: strictly increasing digests), so that a caller with a million of
 * them in a compact table of its own need not make strings of them all; what became of each is
 * told to o->done, from any of the sweep's threads (no lock of the store held: the caller locks
 * its own accounting). */
typedef enum StoreSweepResult {
        STORE_SWEEP_REMOVED,     /* removed (a blob: its record, its repository links and its file) */
        STORE_SWEEP_GONE,        /* a blob without record any more: nothing to do */
        STORE_SWEEP_RACED,       /* written since the mark's snapshot (pushed, linked, mounted): kept */
        STORE_SWEEP_RECOMMITTED, /* a blob committed again between its record's and its file's removal: kept */
        STORE_SWEEP_FAILED,      /* error given; a blob whose record went may have left its file (an orphan) */
        _STORE_SWEEP_RESULT_MAX,
        _STORE_SWEEP_RESULT_INVALID = -1,
} StoreSweepResult;

typedef void (*StoreSweepDoneFn)(void *userdata, size_t i, StoreSweepResult result, int error);

typedef struct StoreSweepOptions {
        IndexSnapshot *snap;    /* the mark's, taken with .generations (else every candidate is re-read) */
        int64_t mark_start;     /* blobs: a record touched at or after it is kept (ns) */
        int64_t cutoff;         /* blobs: created or touched at or after it is kept (the grace period) */
        bool cold;              /* the sweep's reads of the current state leave the block cache alone */
        unsigned threads;       /* removal threads (0: 16; the disk, not the CPU, is what they wait on) */
        const char *thread_name; /* NULL: "plura-sweep" */
        StoreSweepDoneFn done;  /* required */
        void *userdata;         /* of every callback */
        bool (*cancelled)(void *userdata);      /* may be NULL; asked before each group: true ends the sweep, -ECANCELED */
        void (*each)(void *userdata);           /* tests, may be NULL: for each candidate, its group's locks held */
        void (*between_passes)(void *userdata); /* tests, may be NULL: blobs, records gone and synced, no file yet */
} StoreSweepOptions;

typedef struct StoreSweepStats {
        uint64_t reads;         /* candidates whose records were read again (blobs: in the record pass) */
        uint64_t reads_files;   /* blobs: in the file pass */
        uint64_t ns_lock, ns_check, ns_commit, ns_unlink, ns_sync; /* blobs: thread time */
        double t_links, t_records, t_files; /* blobs: wall time of the link scan and of the two passes */
} StoreSweepStats;

/* Candidate i's digest into ret. */
typedef void (*StoreSweepDigestFn)(void *userdata, size_t i, char ret[DIGEST_MAX_LEN]);
/* Removes the manifest records named, unless linked again since the mark (one index batch per
 * group of candidates, not synced; one WAL sync at the end, before it returns: call it before
 * store_sweep_blobs(), so that a blob never goes while its manifest could come back). Negative
 * only if the sweep as a whole failed (cancelled, no memory, the sync). */
int store_sweep_manifests(Store *s, const StoreSweepOptions *o, size_t n, StoreSweepDigestFn digest,
                          StoreSweepStats *ret_stats);
/* Candidate i's digest and its record as the mark read it. */
typedef void (*StoreSweepBlobFn)(void *userdata, size_t i, char ret_digest[DIGEST_MAX_LEN], BlobInfo *ret_then);
/* Removes the blobs named whose records are still as the mark read them, older than o->cutoff and
 * not touched since o->mark_start: first the records with their repository links (the links of the
 * snapshot), made durable with one WAL sync, then, under the locks again, each file whose record
 * no commit wrote again meanwhile. A crash leaves at worst files without record (orphans); say
 * so to fsck with store_gc_sweep_intent_put() first. */
int store_sweep_blobs(Store *s, const StoreSweepOptions *o, size_t n, StoreSweepBlobFn blob, StoreSweepStats *ret_stats);

/* Removes a manifest record entirely (all repos must already be unlinked). */
int store_manifest_remove(Store *s, const char *digest);

/* ---- blobs one by one and what the blob backend holds (storage/blob-store.c,
 * storage/blob-files.c), for the GC's reconcile and fsck (storage/fsck.h); where the bytes live
 * is the backend's business (storage/blob-backend.h) */

/* Removes a blob record and its stored bytes. The caller holds the digest lock and has
 * re-checked liveness. *ret_disk_bytes (may be NULL) gets the bytes freed. */
int store_blob_remove(Store *s, const char *digest, uint64_t *ret_disk_bytes);

/* Everything the blob backend holds, for fsck and the GC's reconcile: f->digest NULL for what is
 * no blob of its layout (a stray). fn returns 0 to go on, 1 to stop, negative to abort with that
 * error; f is valid during the call only. */
typedef struct StoreBlobFile {
        const char *digest;   /* "sha256:<hex>", or NULL */
        const char *location; /* where it is (a path, an object key), for messages */
        const void *entry;    /* the backend's (store_blob_file_stat()) */
} StoreBlobFile;
typedef int (*StoreBlobFileFn)(void *userdata, const StoreBlobFile *f);
int store_blob_files_foreach(Store *s, StoreBlobFileFn fn, void *userdata);
/* During the callback: f's stored size and last write (ns): 1 a plain file or object, 0 not, -errno
 * (-ENOENT: gone). Asked only where needed (a file system stats then). */
int store_blob_file_stat(Store *s, const StoreBlobFile *f, uint64_t *ret_size, int64_t *ret_mtime);
/* Whether digest's stored bytes exist: 1, 0, -errno. */
int store_blob_file_exists(Store *s, const char *digest);
/* Removes digest's stored bytes if, under its digest lock, it has no index record: 1 removed (or
 * gone already), 0 kept (it has a record), -errno. The GC's reconcile of files without record. */
int store_orphan_remove(Store *s, const char *digest);
