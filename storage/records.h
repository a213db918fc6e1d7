/* SPDX-License-Identifier: MIT */
#pragma once

/* Typed reads of the index's records: how gc/, fusefs/, governance/ and registry-api/ see the
 * repositories, manifests, tags and blobs of the store without its key formats. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

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
