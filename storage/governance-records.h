/* SPDX-License-Identifier: MIT */
#pragma once

/* The records governance/ keeps in the store: channels, the block list, counters, the audit log
 * (written by every mutation, read by the API) and what the store holds. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

/* ---- governance records: channels (storage/channels.c), the block list (blocks.c), counters
 * (counters.c), audit reading (audit.c) and what the store holds (stats.c). governance/ reads and
 * writes them through these only; snap may be NULL (the current state); a callback returns 0 to
 * go on, 1 to stop, negative to abort with that error, and what it is given is valid during the
 * call only. */

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

/* ---- audit (every mutation) */

/* Appends {time, actor, action, target, result, detail} to the audit column family. */
int store_audit(Store *s, const char *actor, const char *action, const char *target, const char *result,
                json_t *detail /* borrowed, may be NULL */);
