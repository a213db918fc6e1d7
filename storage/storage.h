/* SPDX-License-Identifier: MIT */
#pragma once

/* plura storage: content-addressed blob store + RocksDB index + data model.
 * Nothing here knows about HTTP or FUSE. Functions return 0/positive on success and
 * -errno on failure. Where a failure maps onto an OCI error code, the function also
 * fills a StoreError (may be NULL).
 *
 * This header is the core: errors, digests, names, manifest parsing, the Store, blobs, uploads,
 * manifests and tags, locks and snapshots. The records of one topic each have their own header,
 * which a user includes explicitly: storage/records.h (typed iteration over the records),
 * storage/governance-records.h (channels, block list, counters, audit, statistics),
 * storage/gc-records.h (GC reports and the sweep), storage/holds.h (RCA holds, WORM export),
 * storage/tokens.h (API tokens), storage/fsck.h, storage/layer-fs.h (fusefs's layer indexes).
 * The key/value API under them all is internal to storage/ (storage/index-internal.h). */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/macros.h"

/* ------------------------------------------------------------------ errors */

typedef enum OciError {
        OCI_OK = 0,
        OCI_BLOB_UNKNOWN,
        OCI_BLOB_UPLOAD_INVALID,
        OCI_BLOB_UPLOAD_UNKNOWN,
        OCI_DIGEST_INVALID,
        OCI_MANIFEST_BLOB_UNKNOWN,
        OCI_MANIFEST_INVALID,
        OCI_MANIFEST_UNKNOWN,
        OCI_NAME_INVALID,
        OCI_NAME_UNKNOWN,
        OCI_SIZE_INVALID,
        OCI_UNAUTHORIZED,
        OCI_DENIED,
        OCI_UNSUPPORTED,
        OCI_TOOMANYREQUESTS,
        OCI_RANGE_NOT_SATISFIABLE, /* not a spec code string but used for 416 */
        OCI_TAG_INVALID,           /* spec: TAG_INVALID (manifest tag did not match) */
        _OCI_ERROR_MAX,
        _OCI_ERROR_INVALID = -1,
} OciError;

const char *oci_error_to_string(OciError e); /* "BLOB_UNKNOWN" */
int oci_error_http_status(OciError e);       /* 404, 400, ... */

typedef struct StoreError {
        OciError code;
        char message[512];
} StoreError;

/* Sets e (if non-NULL) and returns r (a -errno). */
int store_error_set(StoreError *e, int r, OciError code, const char *fmt, ...) _printf_(4, 5);

/* ------------------------------------------------------------------ digests */

typedef enum DigestAlgorithm {
        DIGEST_SHA256,
        DIGEST_SHA512,
        _DIGEST_ALGORITHM_MAX,
        _DIGEST_ALGORITHM_INVALID = -1,
} DigestAlgorithm;

#define DIGEST_MAX_LEN (7 + 128 + 1) /* "sha512:" + 128 hex + NUL */

/* Validates "algo:hex" per the OCI grammar. Returns 0 and the algorithm for sha256/sha512
 * with the right hex length (lower case); -EINVAL for a malformed digest; -EOPNOTSUPP for a
 * well-formed digest of an algorithm we do not support. */
int digest_parse(const char *s, DigestAlgorithm *ret_algo);
const char *digest_algorithm_to_string(DigestAlgorithm a); /* "sha256" */
const char *digest_hex(const char *digest);                /* pointer after the ':' */

typedef struct Hasher Hasher;
int hasher_new(DigestAlgorithm a, Hasher **ret);
int hasher_update(Hasher *h, const void *data, size_t n);
/* Writes "algo:hex" into out; the hasher can not be updated afterwards. */
int hasher_final(Hasher *h, char out[DIGEST_MAX_LEN]);
Hasher *hasher_free(Hasher *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hasher *, hasher_free);
int digest_buffer(DigestAlgorithm a, const void *data, size_t n, char out[DIGEST_MAX_LEN]);
/* Hashes a whole file descriptor from offset 0 (streaming, bounded memory). */
int digest_fd(DigestAlgorithm a, int fd, char out[DIGEST_MAX_LEN], uint64_t *ret_size);

/* ------------------------------------------------------------------ names */

#define REPO_NAME_MAX 255
#define TAG_MAX 128

/* OCI distribution-spec grammar:
 *   name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}  */
bool repo_name_is_valid(const char *name);
bool tag_is_valid(const char *tag);

typedef enum ReferenceKind {
        REFERENCE_TAG,
        REFERENCE_DIGEST,
        _REFERENCE_KIND_MAX,
        _REFERENCE_KIND_INVALID = -1,
} ReferenceKind;

/* A manifest reference is a tag or a digest. Returns the kind or -EINVAL. */
int reference_parse(const char *ref);

/* ------------------------------------------------------------------ manifests */

#define MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_TYPE_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MANIFEST_SIZE_MAX (4U * 1024U * 1024U)

typedef enum ManifestKind {
        MANIFEST_OCI_IMAGE,
        MANIFEST_OCI_INDEX,
        MANIFEST_DOCKER_V2,
        MANIFEST_DOCKER_LIST,
        _MANIFEST_KIND_MAX,
        _MANIFEST_KIND_INVALID = -1,
} ManifestKind;

bool manifest_kind_is_index(ManifestKind k);

typedef struct Descriptor {
        char *media_type;
        char *digest;
        uint64_t size;
        char *artifact_type; /* may be NULL */
        char *platform_os;   /* index entries only, may be NULL */
        char *platform_arch;
        char *platform_variant;
        json_t *annotations; /* may be NULL; owned */
} Descriptor;

typedef struct Manifest {
        ManifestKind kind;
        char *media_type;    /* the effective media type (body's mediaType or Content-Type) */
        char *artifact_type; /* artifactType, or config.mediaType for artifacts; may be NULL */
        bool has_config;
        Descriptor config;   /* images only */
        Descriptor *layers;  /* images only */
        size_t n_layers;
        Descriptor *manifests; /* indexes only */
        size_t n_manifests;
        bool has_subject;
        Descriptor subject;
        json_t *annotations; /* may be NULL; owned */
} Manifest;

/* Parses and validates a manifest body. content_type is the request's Content-Type (may be
 * NULL); when both it and the body's mediaType are present they must agree. On failure returns
 * -EINVAL (or -EFBIG over MANIFEST_SIZE_MAX) and writes a human-readable reason into err. */
int manifest_parse(const void *data, size_t len, const char *content_type, Manifest **ret, char *err, size_t errlen);
Manifest *manifest_free(Manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manifest *, manifest_free);

/* The meta JSON of a manifest record (u32 length, meta, raw manifest), as store_manifest_put()
 * writes it: {"mediaType", "size", "created", "children": [digests], "subject"?, "artifactType"?}.
 * manifest_meta_scan() reads exactly that shape (those keys once each, strings of printable ASCII
 * without escapes, non-negative integers) without building a JSON tree; it returns -EINVAL for
 * anything else, which a caller then reads with jansson. child (may be NULL) sees each child in
 * order as it is scanned, so a later -EINVAL means discarding what it was given; a negative
 * return from it ends the scan with that error. Slices point into json. */
typedef struct ManifestMeta {
        const char *media_type; /* NULL when absent */
        size_t media_type_len;
        const char *subject;    /* NULL when absent */
        size_t subject_len;
        bool has_children;
        size_t n_children;
} ManifestMeta;
typedef int (*ManifestMetaChildFn)(void *userdata, size_t i, const char *digest, size_t len);
int manifest_meta_scan(const char *json, size_t len, ManifestMeta *ret, ManifestMetaChildFn child, void *userdata);

/* ------------------------------------------------------------------ the store */

typedef struct Store Store;

typedef enum BlobEncoding {
        BLOB_ENCODING_RAW,
        BLOB_ENCODING_ZSTD, /* independent zstd frames of BLOB_ZSTD_FRAME_SIZE logical bytes */
        _BLOB_ENCODING_MAX,
        _BLOB_ENCODING_INVALID = -1,
} BlobEncoding;

#define BLOB_ZSTD_FRAME_SIZE (1U << 20)

typedef struct StoreOptions {
        const char *root;     /* data directory */
        bool zstd_at_rest;    /* store compressible blobs zstd-compressed */
        int zstd_level;       /* default 3 */
        bool fsync;           /* default true; only benchmarks turn it off */
        bool read_only;       /* open the index as a RocksDB secondary (plura mount, beside a server) */
        const char *secondary_dir; /* scratch directory for the secondary instance's logs */
} StoreOptions;

void store_options_init(StoreOptions *o); /* fills the defaults */

int store_open(const StoreOptions *o, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);
const char *store_root(Store *s);
bool store_is_read_only(Store *s);
/* Secondary instances: pull in what the primary wrote since. */
int store_catch_up(Store *s);
/* Ready = index open and storage writable (for /readyz). */
int store_check_ready(Store *s);

/* ---- blobs */

typedef struct BlobInfo {
        uint64_t size;        /* logical bytes (what the digest covers) */
        uint64_t stored_size; /* bytes on disk */
        BlobEncoding encoding;
        int64_t created;      /* ns since epoch */
        int64_t touched;      /* ns since epoch, last time a manifest PUT/mount/commit referenced it */
} BlobInfo;

/* Global blob record (any repository). -ENOENT if unknown. */
int store_blob_info(Store *s, const char *digest, BlobInfo *ret);
/* The records of n digests in strictly increasing order, in one index read: ret_status[i] is 0
 * (ret[i] filled), -ENOENT or -EBADMSG. Returns -EINVAL for a bad or unsorted digest, or an
 * index error. */
int store_blob_infos(Store *s, const char *const *digests, size_t n, BlobInfo *ret, int *ret_status);
/* Blob linked into repo. -ENOENT if the blob is not linked there. */
int store_repo_blob_info(Store *s, const char *repo, const char *digest, BlobInfo *ret);
typedef struct BlobReader BlobReader;
int store_blob_open(Store *s, const char *digest, BlobReader **ret);
uint64_t blob_reader_size(BlobReader *r);
/* A file descriptor on a raw blob's bytes (for sendfile/splice), or -1 if it is encoded or its
 * backend has none: then read with blob_reader_pread(). */
int blob_reader_fd(BlobReader *r);
/* Reads logical bytes at offset (decompressing if needed). Returns bytes read, 0 at EOF. */
ssize_t blob_reader_pread(BlobReader *r, void *buf, size_t n, uint64_t offset);
BlobReader *blob_reader_free(BlobReader *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobReader *, blob_reader_free);

/* Cross-repository mount: link digest, which must be linked in from_repo (or, if from_repo is
 * NULL, exist anywhere), into repo. -ENOENT if not found. Under the digest lock; touches. */
int store_blob_mount(Store *s, const char *repo, const char *from_repo, const char *digest, const char *actor);
/* Unlink a blob from a repository (content is reclaimed by GC). -ENOENT if not linked; -EBUSY
 * (OCI_DENIED, the manifest named in err) while a manifest linked in repo uses it as config,
 * layer or child: the link is what makes that image pullable. */
int store_blob_unlink(Store *s, const char *repo, const char *digest, const char *actor, StoreError *err);
/* Convenience: store a complete buffer as a blob linked to repo (used by tests, bench set-up,
 * WORM restore). If expected_digest is given it must match. */
int store_blob_put(Store *s, const char *repo, const void *data, size_t len, const char *expected_digest,
                   char out_digest[DIGEST_MAX_LEN], StoreError *err);

/* ---- uploads (streaming, bounded memory) */

typedef struct Upload Upload;

/* Who starts a session, and how many sessions may be open: at most max_sessions in the store
 * and max_per_client of those started by the same client (0 = no limit). */
typedef struct UploadLimits {
        const char *client; /* e.g. the client's address; NULL = no one in particular */
        unsigned max_sessions;
        unsigned max_per_client;
} UploadLimits;

/* Starts a session for repo; writes its uuid. limits may be NULL (none). -EUSERS with
 * OCI_TOOMANYREQUESTS past a limit. A session counts until it is committed, cancelled or purged
 * (also across restarts: its record names the client). No file descriptor stays open for a
 * session between the requests that hold it. */
int store_upload_begin(Store *s, const char *repo, const UploadLimits *limits, char ret_uuid[37], StoreError *err);
/* Takes exclusive use of a session: -ENOENT unknown (or other repo), -EBUSY if another request
 * holds it. After a restart the session resumes from the bytes on disk. */
int store_upload_acquire(Store *s, const char *repo, const char *uuid, Upload **ret);
uint64_t upload_offset(Upload *u);
const char *upload_uuid(Upload *u);
int64_t upload_started(Upload *u);
/* Appends bytes, hashing as they stream. */
int upload_write(Upload *u, const void *data, size_t n);
/* Ends this request's use; keeps the session. */
void store_upload_release(Store *s, Upload *u);
/* Verifies the digest (-EBADMSG + OCI_DIGEST_INVALID on mismatch, the session is then
 * discarded), commits the blob atomically, links it into the repo, ends the session (u is
 * freed in every case). */
int store_upload_commit(Store *s, Upload *u, const char *digest, const char *actor, StoreError *err);
/* Deletes a session (not held by anyone). -ENOENT if unknown. */
int store_upload_cancel(Store *s, const char *repo, const char *uuid);
/* Removes sessions not written to for older_than_ns. Returns the number purged. */
int store_upload_purge(Store *s, int64_t older_than_ns);

/* ---- manifests and tags */

/* Who writes, for the writes that run the tag policy hook (manifest PUT and DELETE, tag DELETE):
 * 0 for the /v2/ write paths, whose policy the hook is. The hook sees the flags and decides. */
typedef enum StoreWriteFlags {
        STORE_WRITE_MAINTENANCE = 1 << 0,  /* the GC applying retention (a tag name stays in tag_history) */
        STORE_WRITE_CHANNEL_MOVE = 1 << 1, /* governance linking content into a channel repository it moves */
        /* deletes only: the index batch goes to the WAL unsynced, store_sync_wal() makes it durable
         * (bulk deletions whose loss in a crash is harmless: the next GC redoes them) */
        STORE_WRITE_NO_SYNC = 1 << 2,
        STORE_WRITE_COLD = 1 << 3,         /* deletes only: their reads leave the index block cache alone */
} StoreWriteFlags;

typedef struct ManifestPut {
        const char *repo;
        const void *data;
        size_t len;
        const char *content_type;  /* request Content-Type, may be NULL */
        const char *reference;     /* tag or digest from the URL */
        const char *const *tags;   /* extra tags (?tag=), may be NULL */
        size_t n_tags;
        const char *actor;         /* for history and audit; may be NULL ("anonymous") */
        unsigned flags;            /* StoreWriteFlags */
} ManifestPut;

/* Validates (manifest_parse), checks that config/layers are linked in the repo and index
 * children exist in the repo (OCI_MANIFEST_BLOB_UNKNOWN otherwise), checks the digest when the
 * reference is one (OCI_DIGEST_INVALID), runs the tag policy hook, then writes the manifest,
 * repo link, tags, tag history, referrer record and audit event in one synced batch while
 * holding the per-digest locks of every child. */
int store_manifest_put(Store *s, const ManifestPut *p, char ret_digest[DIGEST_MAX_LEN], StoreError *err);

typedef struct StoredManifest {
        char digest[DIGEST_MAX_LEN];
        char *media_type;
        uint8_t *data;
        size_t size;
        char *subject;        /* digest or NULL */
        char *artifact_type;  /* or NULL */
        int64_t pushed;       /* first push into this repo (ns), 0 when read without a repo */
} StoredManifest;
StoredManifest *stored_manifest_free(StoredManifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(StoredManifest *, stored_manifest_free);

/* By tag or digest within repo. -ENOENT (MANIFEST_UNKNOWN). */
int store_manifest_get(Store *s, const char *repo, const char *reference, StoredManifest **ret);
/* By digest, regardless of repository. */
int store_manifest_get_by_digest(Store *s, const char *digest, StoredManifest **ret);
/* Deletes the manifest from repo: its tags, its repo link and its referrer record. flags:
 * StoreWriteFlags, handed to the tag policy hook (and NO_SYNC, COLD as they say). */
int store_manifest_delete(Store *s, const char *repo, const char *digest, const char *actor, unsigned flags,
                          StoreError *err);
int store_tag_delete(Store *s, const char *repo, const char *tag, const char *actor, unsigned flags, StoreError *err);

typedef struct TagInfo {
        char digest[DIGEST_MAX_LEN];
        int64_t pushed;      /* first time the tag was created */
        int64_t updated;     /* last time it was moved */
        int64_t last_pulled; /* 0 = never */
        uint32_t flags;
} TagInfo;
int store_tag_get(Store *s, const char *repo, const char *tag, TagInfo *ret);

/* Lexically ordered, after `last` (may be NULL), at most n (0 = no limit). *ret_more says
 * whether more follow. -ENOENT if the repository does not exist. */
int store_tags_list(Store *s, const char *repo, const char *last, size_t n, char ***ret, bool *ret_more);
int store_catalog(Store *s, const char *last, size_t n, char ***ret, bool *ret_more);
/* A repository exists when it has at least one manifest or linked blob. */
int store_repo_exists(Store *s, const char *repo);

/* Referrers of subject in repo as an array of OCI descriptors (each with artifactType and
 * annotations), filtered by artifact_type if non-NULL. An unknown subject gives an empty array. */
int store_referrers(Store *s, const char *repo, const char *subject, const char *artifact_type, json_t **ret);

/* Records a pull of repo:tag (tag may be NULL) / digest. Batched in memory and flushed at most
 * every few seconds (and on close), never a write per GET. */
void store_note_pull(Store *s, const char *repo, const char *tag, const char *digest);
int store_flush_pulls(Store *s);

/* Tag policy hook (governance). Called inside the tag write critical section for each tag a
 * manifest PUT or tag DELETE would change. old_digest is NULL for a new tag, new_digest NULL for
 * a delete; first_digest_in_history is the digest the name first had in tag_history (NULL if it
 * never existed). flags are the write's StoreWriteFlags. Return 0 to allow, or a negative errno
 * and fill err (OCI_DENIED / OCI_TAG_INVALID) to refuse the whole write.
 * Also called once per manifest PUT (new_digest set) and manifest DELETE (old_digest set) with
 * tag == NULL and first_digest_in_history == NULL, so that tagless writes into read-only
 * repositories (channels/) can be refused too. */
typedef int (*TagPolicyFn)(void *userdata, const char *repo, const char *tag, const char *old_digest,
                           const char *new_digest, const char *first_digest_in_history, unsigned flags,
                           StoreError *err);
void store_set_tag_policy(Store *s, TagPolicyFn fn, void *userdata);

/* ---- locks shared by manifest PUT, mount, upload commit and the GC sweep */
void store_digest_lock(Store *s, const char *digest);
void store_digest_unlock(Store *s, const char *digest);
/* Several digests at once (stripes taken in sorted order: no deadlock with other multi-digest
 * lockers); the GC sweep removes a group of blobs in one batch under them. Unlike
 * store_digest_unlock(), store_digests_unlock() leaves the stripes' generations where they are:
 * it is for a holder that created no record, only deleted (the GC itself). */
void store_digests_lock(Store *s, const char *const *digests, size_t n);
void store_digests_unlock(Store *s, const char *const *digests, size_t n);
/* The lock stripe of a digest: digests in sorted order map to non-decreasing stripes, so a
 * caller that locks runs of sorted digests cut at stripe changes never shares a stripe with the
 * neighbouring run (and never waits for it). */
size_t store_digest_stripe(const char *digest);
#define STORE_DIGEST_STRIPES 4096U
/* Generations, one per digest lock stripe: every release of a digest lock by a writer (manifest
 * PUT, blob upload commit, mount, touch, link removal, holds, pull bookkeeping) moves its
 * stripe's after the writer's index commit and before the lock is free. Every write that
 * creates or updates a blob, manifest or repository-link record happens under its digest's
 * lock. So a caller that copied them (store_digest_generations(), STORE_DIGEST_STRIPES of them)
 * before it took an index snapshot and later, holding a digest's lock, finds that digest's
 * stripe unchanged knows that no such record of any digest of that stripe was written after the
 * snapshot: the snapshot's records are the current ones, without reading the index. */
void store_digest_generations(Store *s, uint32_t *ret);
/* the generation of one stripe (store_digest_stripe()) */
uint32_t store_digest_generation(Store *s, size_t stripe);

/* ---- index snapshots and durability (the key/value API itself is internal to storage/:
 * storage/index-internal.h; other modules read and write records through typed verbs) */

typedef struct IndexSnapshot IndexSnapshot;
typedef struct StoreSnapshotOptions {
        bool cold;        /* reads through it leave the index block cache alone (bulk readers: the GC) */
        bool live;        /* no point in time: reads through it see the current state (with cold: a cold view) */
        bool generations; /* remember the digest lock generations (store_digest_generations()) of just before
                           * it was taken: store_sweep_*() skip re-reading what no writer touched since */
} StoreSnapshotOptions;
/* o NULL: a point-in-time snapshot whose reads fill the block cache like any other. */
int store_snapshot_new(Store *s, const StoreSnapshotOptions *o, IndexSnapshot **ret);
IndexSnapshot *store_snapshot_free(IndexSnapshot *snap);
DEFINE_TRIVIAL_CLEANUP_FUNC(IndexSnapshot *, store_snapshot_free);

/* Makes every write so far durable with one WAL sync: after bulk writes that skipped theirs
 * (STORE_WRITE_NO_SYNC, the sweep's groups). */
int store_sync_wal(Store *s);
/* The index's block cache and memtables in use, in bytes (logs, tests). */
int store_index_memory(Store *s, uint64_t *ret_cache, uint64_t *ret_memtables);
