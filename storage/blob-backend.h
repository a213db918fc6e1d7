/* SPDX-License-Identifier: MIT */
#pragma once

/* The blob backend: where the stored bytes of blobs live. Internal to storage/: the rest of
 * storage/ names a blob by its digest and calls these verbs; only a backend knows its layout.
 * The records (INDEX_BLOB, links) stay in the index, written by blob-store.c; a backend holds
 * bytes only and never reads the index.
 *
 * One implementation today, the file system (blob-backend-fs.c):
 *   <root>/blobs/<algorithm>/<hex[0:2]>/<hex>, read-only files (0444), renamed into place from
 *   the store's staging directory <root>/tmp, the rename made durable by a group-committed fsync
 *   of its directory (concurrent commits into one directory share it).
 * The S3 backend of issue 22 is the second: commit uploads the staged file, open reads with
 * ranged GETs (no fd), remove deletes the object, foreach lists the bucket.
 *
 * Locking: the caller serialises the commit and the removal of one digest (it holds the digest's
 * lock); everything else is thread-safe. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macros.h"

typedef struct BlobBackend BlobBackend;
typedef struct BlobObject BlobObject;
typedef struct BlobRemover BlobRemover;
typedef struct BlobBackendEntry BlobBackendEntry;
typedef int (*BlobBackendEntryFn)(void *userdata, const BlobBackendEntry *e);

/* ---- the interface a backend implements (the verbs below dispatch to it) */

typedef struct BlobBackendOps {
        const char *name; /* "filesystem" */
        int (*commit)(BlobBackend *b, const char *digest, const char *staged_path, int staged_fd);
        int (*exists)(BlobBackend *b, const char *digest);
        int (*remove)(BlobBackend *b, const char *digest, uint64_t *ret_bytes);
        int (*remover_new)(BlobBackend *b, BlobRemover **ret);
        int (*open)(BlobBackend *b, const char *digest, BlobObject **ret);
        int (*foreach)(BlobBackend *b, BlobBackendEntryFn fn, void *userdata);
        int (*entry_stat)(BlobBackend *b, const BlobBackendEntry *e, uint64_t *ret_size, int64_t *ret_mtime);
        int (*quarantine)(BlobBackend *b, const char *location, const char *dst_path);
        char *(*location)(BlobBackend *b, const char *digest);
        void (*free)(BlobBackend *b);
} BlobBackendOps;

struct BlobBackend {
        const BlobBackendOps *ops;
};

typedef struct BlobObjectOps {
        uint64_t (*size)(BlobObject *o);
        ssize_t (*pread)(BlobObject *o, void *buf, size_t n, uint64_t offset);
        int (*fd)(BlobObject *o);
        void (*free)(BlobObject *o);
} BlobObjectOps;

struct BlobObject {
        const BlobObjectOps *ops;
};

typedef struct BlobRemoverOps {
        int (*remove)(BlobRemover *rm, const char *digest);
        void (*free)(BlobRemover *rm);
} BlobRemoverOps;

struct BlobRemover {
        const BlobRemoverOps *ops;
};

/* ---- the verbs */

typedef struct BlobBackendOptions {
        const char *root;  /* the store's directory */
        bool fsync;        /* make commits durable before they return */
        bool read_only;    /* create nothing (a secondary reader) */
} BlobBackendOptions;

/* The file-system backend (creates its directories unless read_only). */
int blob_backend_fs_new(const BlobBackendOptions *o, BlobBackend **ret);
BlobBackend *blob_backend_free(BlobBackend *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobBackend *, blob_backend_free);

/* Makes the staged file (staged_path, open as staged_fd, already synced by the caller when
 * fsync is on) digest's stored bytes, durably, replacing what may be there (a file left without
 * record). Consumes staged_path: renamed or unlinked, on success and on failure. The caller
 * dedupes: with a record and stored bytes present it does not call this. */
int blob_backend_commit(BlobBackend *b, const char *digest, const char *staged_path, int staged_fd);

/* Whether digest's stored bytes exist: 1, 0, -errno. */
int blob_backend_exists(BlobBackend *b, const char *digest);

/* Removes digest's stored bytes: 1 removed, 0 there were none, -errno. *ret_bytes (may be NULL)
 * gets their stored size (0 if none). */
int blob_backend_remove(BlobBackend *b, const char *digest, uint64_t *ret_bytes);

/* Removing many digests in sorted order (the GC's sweep): the backend may keep state between
 * them (the file system keeps the fan-out directory open). blob_remover_remove() answers as
 * blob_backend_remove(). */
int blob_remover_new(BlobBackend *b, BlobRemover **ret);
int blob_remover_remove(BlobRemover *rm, const char *digest);
BlobRemover *blob_remover_free(BlobRemover *rm);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobRemover *, blob_remover_free);

/* Opens digest's stored bytes for reading: -ENOENT if there are none. */
int blob_backend_open(BlobBackend *b, const char *digest, BlobObject **ret);
/* The stored size (what the backend holds: the zstd frames and seek table when compressed). */
uint64_t blob_object_size(BlobObject *o);
/* Reads up to n bytes at offset: the count (short only at the end), or -errno. */
ssize_t blob_object_pread(BlobObject *o, void *buf, size_t n, uint64_t offset);
/* A file descriptor on the stored bytes for sendfile() and FUSE, or -1 if the backend has none
 * (callers then use blob_object_pread()). Owned by the object. */
int blob_object_fd(BlobObject *o);
BlobObject *blob_object_free(BlobObject *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobObject *, blob_object_free);

/* Every object the backend holds, for fsck and the GC's reconcile of bytes without record. */
struct BlobBackendEntry {
        const char *digest;   /* "sha256:<hex>", or NULL: not a blob of the layout (a stray) */
        const char *location; /* where it is, for messages and blob_backend_quarantine() */
        const void *impl;     /* the backend's, for blob_backend_entry_stat() */
};
/* fn returns 0 to go on, 1 to stop, negative to abort with that error; e is valid during the call
 * only. */
int blob_backend_foreach(BlobBackend *b, BlobBackendEntryFn fn, void *userdata);
/* During the walk's callback, an entry's stored size and last write (ns), asked only where needed
 * (a file system stats it then; an object store's listing has them): 1 a plain object, 0 not (a
 * directory, link, device), -errno (-ENOENT: gone meanwhile). */
int blob_backend_entry_stat(BlobBackend *b, const BlobBackendEntry *e, uint64_t *ret_size, int64_t *ret_mtime);

/* Moves the object at location (an entry's, or blob_backend_location()'s) out of the backend to
 * the local file dst_path, for fsck --repair (quarantine: nothing is deleted). */
int blob_backend_quarantine(BlobBackend *b, const char *location, const char *dst_path);

/* The location of digest's stored bytes (for messages), or NULL on -ENOMEM/-EINVAL. */
char *blob_backend_location(BlobBackend *b, const char *digest);

/* Counters for tests: the directory fsyncs the file system backend ran; and a delay (µs) added
 * to each, to make concurrent commits share them. */
uint64_t blob_backend_fs_dir_fsyncs(BlobBackend *b);
void blob_backend_fs_set_sync_delay(BlobBackend *b, unsigned usec);
