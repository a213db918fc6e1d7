/* SPDX-License-Identifier: MIT */
#pragma once

/* RCA holds (storage/holds.c) and the WORM export of what a hold covers (storage/worm.c,
 * storage/worm-verify.c). */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

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
