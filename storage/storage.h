/* SPDX-License-Identifier: MIT */
#pragma once

/* plura storage: content-addressed blob store + RocksDB index + data model.
 * Nothing here knows about HTTP or FUSE. Functions return 0/positive on success and
 * -errno on failure. Where a failure maps onto an OCI error code, the function also
 * fills a StoreError (may be NULL). */

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
/* Path of the committed file: <root>/blobs/<algo>/<hex[0:2]>/<hex>. */
char *store_blob_path(Store *s, const char *digest);
/* The directory that holds a digest's blob file, opened O_DIRECTORY (or -errno): a caller that
 * removes the files of many sorted digests uses unlinkat(fd, digest_hex(digest), 0) and opens
 * the next one when store_blob_dir_same() says the directory changed. */
int store_blob_dir_open(Store *s, const char *digest);
bool store_blob_dir_same(const char *a, const char *b);

typedef struct BlobReader BlobReader;
int store_blob_open(Store *s, const char *digest, BlobReader **ret);
uint64_t blob_reader_size(BlobReader *r);
/* The file descriptor of a raw blob (for sendfile/splice), or -1 if encoded. */
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

/* ---- governance records: channels (storage/channels.c), the block list (blocks.c), counters
 * (counters.c), audit reading (audit.c) and what the store holds (stats.c). governance/ reads and
 * writes them through these only; snap may be NULL (the current state); a callback returns 0 to
 * go on, 1 to stop, negative to abort with that error, and what it is given is valid during the
 * call only. */

typedef struct IndexSnapshot IndexSnapshot;

/* A pointer move of channels/<env>/<svc>:<pointer> (pointer "stable", "candidate"). */
typedef struct ChannelMove {
        const char *env, *svc, *pointer;
        const char *digest;    /* already linked in channels/<env>/<svc> (-ENOENT otherwise) */
        const char *actor;     /* NULL = "anonymous" */
        const char *action;    /* "promote", "rollback", ... */
        json_t *detail;        /* more members of the history entry (borrowed, may be NULL) */
} ChannelMove;
/* Writes the pointer tag, its tag_history entry, the channel_history entry {digest, time (RFC
 * 3339), time_ns, actor, action, channel, previous (the digest it pointed at, or null), the
 * detail's members} and the audit event (action on "channels/<env>/<svc>:<pointer>", the entry as
 * detail) in one synced batch. No tag policy and no tag lock: /v2/ cannot write channels/, and
 * the caller serialises the moves of a channel. *ret_entry (may be NULL) gets the entry. */
int store_channel_move(Store *s, const ChannelMove *m, json_t **ret_entry);
typedef struct ChannelHistoryEntry {
        const char *env, *svc, *pointer;
        uint64_t seq;          /* store-wide order */
        const char *digest;
        int64_t time;          /* ns */
        const char *actor, *action;
        const char *previous;  /* NULL: the pointer was not set */
        json_t *record;        /* the whole entry as stored (with the mover's detail) */
} ChannelHistoryEntry;
typedef int (*ChannelHistoryFn)(void *userdata, const ChannelHistoryEntry *e);
/* Oldest first within a pointer. env NULL: every channel; svc NULL: every service of env;
 * pointer NULL: both pointers of env/svc. */
int store_channel_history_foreach(Store *s, IndexSnapshot *snap, const char *env, const char *svc, const char *pointer,
                                  ChannelHistoryFn fn, void *userdata);
/* The tags of the channel repositories channels/<env>/<svc> (env NULL: every env; svc NULL: every
 * service of env), by repository and tag. */
typedef int (*ChannelTagFn)(void *userdata, const char *env, const char *svc, const char *tag, const TagInfo *info);
int store_channel_tags_foreach(Store *s, IndexSnapshot *snap, const char *env, const char *svc, ChannelTagFn fn,
                               void *userdata);

/* A blocked digest (CVE or policy): it cannot be pulled or promoted. */
typedef struct BlockInfo {
        char digest[DIGEST_MAX_LEN];
        char *reason;
        char **cves;           /* NULL-terminated, may be NULL */
        char *severity;        /* may be NULL */
        char *source_format;   /* the scanner report it was imported from (may be NULL) */
        char *source_report;
        json_t *counts;        /* {severity: count} (owned), or NULL */
        int64_t time;          /* ns */
        char *actor;
} BlockInfo;
void block_info_done(BlockInfo *b);
/* {reason, cves, time (RFC 3339), time_ns, actor, severity?, source? {format?, report?}, counts?} */
json_t *block_info_to_json(const BlockInfo *b);
/* Writes (or replaces) the block of b->digest. */
int store_block_put(Store *s, const BlockInfo *b);
/* -ENOENT if the digest is not blocked. */
int store_block_get(Store *s, const char *digest, BlockInfo *ret);
int store_block_delete(Store *s, const char *digest);
typedef int (*BlockFn)(void *userdata, const BlockInfo *b);
int store_blocks_foreach(Store *s, IndexSnapshot *snap, BlockFn fn, void *userdata);

/* Governance's persistent counters (e.g. "cve_block_events/pull_denied"): 0 until first added. */
int store_governance_counter_get(Store *s, const char *name, uint64_t *ret);
/* Atomic within the process; *ret (may be NULL) gets the new value. */
int store_governance_counter_add(Store *s, const char *name, uint64_t delta, uint64_t *ret);

/* Audit events, oldest first, that match a query. */
typedef struct AuditQuery {
        const char *action;    /* exactly this action (NULL: any) */
        const char *actor;     /* exactly this actor (NULL: any) */
        const char *target;    /* a target containing this text (NULL: any) */
        const char *after;     /* the cursor of an event: start after it (NULL or "": from the oldest) */
        size_t limit;          /* at most this many (0: all) */
} AuditQuery;
typedef struct AuditEvent {
        const char *cursor;    /* this event's position (hex), for AuditQuery.after */
        int64_t time;          /* ns */
        const char *actor, *action, *target, *result;
        json_t *detail;        /* may be NULL */
        json_t *record;        /* the event as stored: {time, actor, action, target, result, detail?} */
} AuditEvent;
typedef int (*AuditFn)(void *userdata, const AuditEvent *e);
/* Returns 1 when more matching events follow the limit (continue after the last one given), 0 at
 * the end, -EINVAL for a cursor that is not one. q may be NULL (every event). */
int store_audit_foreach(Store *s, const AuditQuery *q, AuditFn fn, void *userdata);

/* What the store holds: registry-wide (repo NULL) the blob and manifest records, or what repo
 * links. Manifests are stored inline in the index: manifest_bytes are their records' bytes. */
typedef struct StoreStats {
        uint64_t blobs;
        uint64_t blob_bytes;         /* logical: what the digests cover */
        uint64_t blob_stored_bytes;  /* on disk (after compression at rest) */
        uint64_t manifests;
        uint64_t manifest_bytes;
} StoreStats;
int store_stats(Store *s, IndexSnapshot *snap, const char *repo, StoreStats *ret);

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

/* ---- layer indexes (storage/layer-fs.c): the FUSE view's tar entry tables and decompression
 * checkpoints, records of one layer under sub-keys whose bytes, like the values, are fusefs's. */
typedef struct LayerIndexRecord {
        const void *subkey;
        size_t subkey_len;
        const void *value;
        size_t value_len;
} LayerIndexRecord;
/* -ENOENT if absent. *ret is malloc()ed and NUL-terminated beyond *ret_len. */
int store_layer_index_get(Store *s, const char *layer_digest, const void *subkey, size_t subkey_len, char **ret,
                          size_t *ret_len);
/* Writes n records of the layer in one synced batch; -EROFS on a read-only store. */
int store_layer_index_put(Store *s, const char *layer_digest, const LayerIndexRecord *recs, size_t n);

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
/* Repo-manifest link record: pushed/last pulled. */
typedef struct RepoManifestInfo {
        int64_t pushed;
        int64_t last_pulled;
} RepoManifestInfo;

/* ---- typed iteration over the records (storage/records.c): the other modules read records
 * through these, never through raw keys. snap may be NULL (the current state). Each callback
 * returns 0 to go on, 1 to stop, negative to abort with that error; what it is given is valid
 * during the call only. repo NULL: every repository. */
typedef int (*RepoManifestFn)(void *userdata, const char *repo, const char *digest, const RepoManifestInfo *info);
int store_repo_manifests_foreach(Store *s, IndexSnapshot *snap, const char *repo, RepoManifestFn fn, void *userdata);
/* 1 if the manifest is linked in repo, 0 if not. */
int store_repo_manifest_exists(Store *s, IndexSnapshot *snap, const char *repo, const char *digest);
typedef int (*RepoBlobFn)(void *userdata, const char *repo, const char *digest, int64_t linked);
int store_repo_blobs_foreach(Store *s, IndexSnapshot *snap, const char *repo, RepoBlobFn fn, void *userdata);
typedef int (*TagFn)(void *userdata, const char *repo, const char *tag, const TagInfo *info);
int store_tags_foreach(Store *s, IndexSnapshot *snap, const char *repo, TagFn fn, void *userdata);
/* One tag's record. -ENOENT if there is no such tag, -EBADMSG if it does not decode. */
int store_tag_info(Store *s, IndexSnapshot *snap, const char *repo, const char *tag, TagInfo *ret);
typedef struct TagHistoryEntry {
        const char *repo, *tag;
        uint64_t seq;           /* store-wide order */
        const char *digest;     /* NULL for a delete without digest */
        int64_t time;
        const char *actor, *action; /* "create", "move", "delete", ... */
} TagHistoryEntry;
typedef int (*TagHistoryFn)(void *userdata, const TagHistoryEntry *e);
/* In order of seq within a tag. tag NULL: every tag of repo. */
int store_tag_history_foreach(Store *s, IndexSnapshot *snap, const char *repo, const char *tag, TagHistoryFn fn,
                              void *userdata);
typedef int (*BlobFn)(void *userdata, const char *digest, const BlobInfo *info);
/* prefix: of the digest, e.g. "sha512:" or "sha256:ab" (NULL: every blob). */
int store_blobs_foreach(Store *s, IndexSnapshot *snap, const char *prefix, BlobFn fn, void *userdata);
/* Every manifest record: its meta JSON (see manifest_meta_scan()) and raw bytes. */
typedef int (*ManifestRecordFn)(void *userdata, const char *digest, const char *meta, size_t meta_len, const char *raw,
                                size_t raw_len);
int store_manifests_foreach(Store *s, IndexSnapshot *snap, ManifestRecordFn fn, void *userdata);
/* One manifest's record through fn (its return value returned). -ENOENT if there is none. */
int store_manifest_record(Store *s, IndexSnapshot *snap, const char *digest, ManifestRecordFn fn, void *userdata);
/* One manifest's meta JSON (malloc()ed, NUL-terminated). -ENOENT if there is no such record. */
int store_manifest_meta(Store *s, IndexSnapshot *snap, const char *digest, char **ret_meta, size_t *ret_len);
/* The link record of a manifest in repo. -ENOENT if it is not linked there. */
int store_repo_manifest_info(Store *s, IndexSnapshot *snap, const char *repo, const char *digest, RepoManifestInfo *ret);
/* Repository names (of repositories with a manifest), each once, in strcmp() order: those that start with
 * prefix (NULL: all) and sort after `after` (NULL: from the first) or, with after_below, after every name
 * that starts with "<after>/" as well. A repository with many manifests costs a seek, not a step each. */
typedef int (*RepoNameFn)(void *userdata, const char *repo);
int store_repo_names_foreach(Store *s, IndexSnapshot *snap, const char *prefix, const char *after, bool after_below,
                             RepoNameFn fn, void *userdata);
/* The tags of repo that have a tag history (also deleted ones), each once, in order. */
typedef int (*TagNameFn)(void *userdata, const char *repo, const char *tag);
int store_history_tags_foreach(Store *s, IndexSnapshot *snap, const char *repo, TagNameFn fn, void *userdata);


/* Full parsed manifest record (children etc.) by digest. */
int store_manifest_parsed(Store *s, IndexSnapshot *snap, const char *digest, Manifest **ret);

/* Removes a blob record and its file: for the GC sweep only. The caller holds the digest
 * lock and has re-checked liveness. Returns the bytes freed on disk. */
int store_blob_remove(Store *s, const char *digest, uint64_t *ret_disk_bytes);
/* Removes a manifest record entirely (all repos must already be unlinked). */
int store_manifest_remove(Store *s, const char *digest);

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

/* Every file in the blob store, for fsck and the GC's reconcile. A name that is no blob file of
 * the layout (a stray) comes with digest NULL. fn returns 0 to go on, 1 to stop, negative to abort
 * with that error; f is valid during the call only. */
typedef struct StoreBlobFile {
        const char *digest;     /* "sha256:<hex>", or NULL */
        const char *dir;        /* the directory it is in (a path) */
        const char *name;       /* its name there */
        int dir_fd;             /* open on dir (store_blob_file_stat()) */
} StoreBlobFile;
typedef int (*StoreBlobFileFn)(void *userdata, const StoreBlobFile *f);
int store_blob_files_foreach(Store *s, StoreBlobFileFn fn, void *userdata);
/* Size and modification time (ns) of the file, not following a symlink: 1 if it is a regular
 * file, 0 if not, -errno (-ENOENT: gone). */
int store_blob_file_stat(const StoreBlobFile *f, uint64_t *ret_size, int64_t *ret_mtime);
/* Whether digest's blob file exists: 1, 0, -errno. */
int store_blob_file_exists(Store *s, const char *digest);
/* Removes digest's file if, under its digest lock, it has no index record: 1 removed (or gone
 * already), 0 kept (it has a record), -errno. The GC's reconcile of files without record. */
int store_orphan_remove(Store *s, const char *digest);

/* ---- RCA holds (storage/holds.c; WORM export in storage/worm.c) */

typedef struct HoldInfo {
        char digest[DIGEST_MAX_LEN];
        char *case_id;
        char *reason;
        char *actor;
        int64_t created;
        int64_t until;          /* 0 = until released */
        int64_t released;       /* 0 = not released */
        char *export_bundle;    /* path of a verified WORM bundle, or NULL */
} HoldInfo;

/* A hold is active while not released and (until == 0 or until > now). */
bool hold_is_active(const HoldInfo *h, int64_t now);
typedef int (*HoldIterFn)(void *userdata, const HoldInfo *h);
int store_holds_foreach(Store *s, IndexSnapshot *snap, HoldIterFn fn, void *userdata);
/* For a hold that is no longer active: make sure a verified WORM export of its closure exists,
 * exporting it now if not (worm: the config's "worm" section). Returns 1 if it exported now,
 * 0 if a verified export already existed, negative on failure (GC must then keep the content). */
int store_hold_ensure_exported(Store *s, const HoldInfo *h, json_t *worm, char **ret_bundle);
/* Hold record no longer needed (inactive and exported): GC forgets it. */
int store_hold_forget(Store *s, const HoldInfo *h);

/* Case ids name directories of the WORM target: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. */
#define CASE_ID_MAX 128
bool case_id_is_valid(const char *s);
/* A hold's "until": an RFC 3339 time ("2025-01-31T00:00:00Z") or a duration from now ("30d").
 * -EINVAL if neither, -ERANGE if it is not in the future. */
int hold_parse_until(const char *s, int64_t now, int64_t *ret);
void hold_info_done(HoldInfo *h);
/* API/CLI form: the record plus RFC 3339 times and "active". */
json_t *hold_info_to_json(const HoldInfo *h, int64_t now);
/* Puts digest (a manifest or a blob) on hold for case_id; audited. Holding an existing hold
 * again renews it (reason, until; a released hold becomes active again). Returns 1 if created,
 * 0 if renewed; -ENOENT + OCI_MANIFEST_UNKNOWN if the digest is neither a manifest nor a blob
 * in the store, -EINVAL + a message for a bad digest or case id. */
int store_hold_add(Store *s, const char *digest, const char *case_id, const char *reason, int64_t until,
                   const char *actor, StoreError *err);
/* Whether digest itself is under an active hold: 1 (the case id of one such hold in
 * *ret_case_id, malloc()ed, if ret_case_id is not NULL), 0 if not. */
int store_digest_held(Store *s, const char *digest, char **ret_case_id);
/* -ENOENT if there is no such hold. */
int store_hold_get(Store *s, const char *digest, const char *case_id, HoldInfo *ret);
/* The hold's record as stored (JSON text, malloc()ed, NUL-terminated): what the FUSE view shows. */
int store_hold_json(Store *s, const char *digest, const char *case_id, char **ret_json, size_t *ret_len);
/* Marks the hold released (the record stays until GC has made sure an export exists and calls
 * store_hold_forget). Audited. -ENOENT if unknown; releasing twice is a no-op (returns 0). */
int store_hold_release(Store *s, const char *digest, const char *case_id, const char *actor, StoreError *err);
/* Records the path of a verified WORM bundle in the hold record. */
int store_hold_set_export(Store *s, const char *digest, const char *case_id, const char *bundle);
/* The closure a hold covers: {digest, kind: "manifest"|"blob", manifests: [{digest, mediaType,
 * size, role, artifactType?, subject?}], blobs: [{digest, size, mediaType, role}], bytes}.
 * For an index its child manifests; for every manifest its config, layers and referrers (in any
 * repository), recursively. -ENOENT (+ OCI_MANIFEST_UNKNOWN) if the digest is unknown,
 * -ENOENT (+ OCI_BLOB_UNKNOWN / OCI_MANIFEST_BLOB_UNKNOWN) if part of the closure is missing. */
int store_digest_closure(Store *s, IndexSnapshot *snap, const char *digest, json_t **ret, StoreError *err);

/* ---- WORM export (storage/worm.c)
 * Bundle: <path>/<case_id>/<UTC time with ns>-<hex[0:12]>[-N]/ with blobs/<algo>/<hex> for every
 * manifest and blob of the closure, tag-history.json, channel-history.json, audit.json,
 * oci-layout and index.json (an OCI image layout: ref "held"), then bundle.json (every file with
 * size and sha256, export time, registry identity) and SHA256SUMS (`sha256sum -c` format).
 * Files are created with O_EXCL, fsynced, made 0444, directories 0555, then the immutable
 * attribute where the filesystem allows. An INCOMPLETE marker exists until the very end; an
 * export that fails leaves it (and a FAILED note) behind and removes nothing. */
typedef struct WormOptions {
        const char *path;        /* target directory (config worm.path) */
        const char *registry_id; /* identity written into bundle.json (config registry_id) */
        const char *actor;       /* who asked, for bundle.json and the audit log; may be NULL */
        bool immutable;          /* try FS_IMMUTABLE_FL (config worm.immutable, default true) */
} WormOptions;

/* Fills o from the config's "worm" section (borrowing its strings). -EDESTADDRREQ if worm.path
 * is not set. registry_id is worm.registry_id, else the default set below, else plura@<host>. */
int worm_options_from_json(json_t *worm, WormOptions *o);
/* The server sets the config's registry_id here at start-up (used by store_hold_ensure_exported). */
void worm_set_default_registry_id(const char *id);
/* Exports digest's closure for case_id. Returns 0 and the bundle path in *ret_bundle;
 * ret_summary (may be NULL) gets {bundle, case_id, digest, files, bytes, exported_at}.
 * On failure after the bundle directory was created, *ret_bundle still names the incomplete
 * bundle. -EDESTADDRREQ: no target; -ENOENT: unknown digest or missing content; other -errno
 * from the target (-EROFS, -ENOSPC, -EACCES...). err gets a human message. */
int worm_export(Store *s, const WormOptions *o, const char *case_id, const char *digest, char **ret_bundle,
                json_t **ret_summary, StoreError *err);
/* Re-hashes every file listed in bundle.json and SHA256SUMS; reports missing, extra and altered
 * files and incomplete bundles. Works offline (no store). Returns 0 if the bundle verifies,
 * -EBADMSG if it does not (report says why), other -errno if it cannot be read at all. The
 * report (may be NULL) is {bundle, status: "ok"|"failed"|"incomplete", complete, files_checked,
 * bytes_checked, missing[], extra[], altered[], problems[], case_id, digest, registry_id,
 * exported_at}. */
int worm_verify(const char *bundle_path, json_t **ret_report);
/* Bundles under path (optionally one case) from their bundle.json, without re-hashing:
 * [{bundle, case_id, name, digest, exported_at, complete, files, bytes}]. */
int worm_bundles_list(const char *path, const char *case_id, json_t **ret);
/* Newest bundle of digest under path/case_id that verifies: 0 and *ret_bundle, or -ENOENT. */
int worm_find_verified(const char *path, const char *case_id, const char *digest, char **ret_bundle);

/* ---- API tokens (storage/tokens.c): robots' credentials. Only the SHA-256 of a token's secret is
 * stored; registry-api/ makes the secret, shows it once and checks presented ones. */

#define API_TOKEN_ID_LEN 32
typedef struct ApiToken {
        char id[API_TOKEN_ID_LEN + 1]; /* 32 lower-case hex digits */
        char *name;                    /* [a-z0-9][a-z0-9._-]*, matched by ACL rules' "users"/"tokens" */
        char **scopes;                 /* NULL-terminated "<repo glob>:<action>[,<action>...]" */
        uint8_t hash[32];              /* SHA-256 of the secret */
        int64_t created;
        int64_t expires;               /* 0 = never */
        int64_t revoked;               /* 0 = not revoked */
        char *created_by;
        char *revoked_by;
} ApiToken;
bool api_token_id_is_valid(const char *id);
void api_token_done(ApiToken *t);
/* Writes a new token (audited as token.create). -EEXIST if the id is taken. */
int store_token_put(Store *s, const ApiToken *t, const char *actor);
/* -ENOENT if unknown. */
int store_token_get(Store *s, const char *id, ApiToken *ret);
typedef int (*ApiTokenIterFn)(void *userdata, const ApiToken *t);
int store_tokens_foreach(Store *s, ApiTokenIterFn fn, void *userdata);
/* Marks it revoked (audited as token.revoke); revoking twice is a no-op. -ENOENT if unknown. */
int store_token_revoke(Store *s, const char *id, const char *actor);

/* ---- audit (every mutation) */

/* Appends {time, actor, action, target, result, detail} to the audit column family. */
int store_audit(Store *s, const char *actor, const char *action, const char *target, const char *result,
                json_t *detail /* borrowed, may be NULL */);

/* ---- fsck */

typedef struct FsckReport {
        uint64_t blobs_checked;
        uint64_t bytes_checked;
        uint64_t corrupt_blobs;        /* content does not hash to its name */
        uint64_t records_without_file;
        uint64_t files_without_record;
        uint64_t manifests_missing_children;
        uint64_t manifests_unlinked_children; /* per repository: a child not linked where the manifest is */
        uint64_t stale_temp_files;
        uint64_t quarantined;          /* with repair */
        json_t *problems;              /* array of {kind, digest/path, detail} */
} FsckReport;
int store_fsck(Store *s, bool repair, FsckReport *ret);
void fsck_report_done(FsckReport *r);
