/* SPDX-License-Identifier: MIT */
#pragma once

/* governance: the tag policy (immutable, forbidden and read-only channel tags), the block list,
 * the release chain's channels channels/<env>/<svc>:candidate|stable, promotion gates (cosign
 * signatures, SBOM referrers, labels, soak time), promotion and rollback, and the release
 * metrics. Depends on storage and common only; registry-api parses requests, calls these and
 * formats the answers. Functions return 0/positive on success and -errno on failure. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "storage/governance-records.h"
#include "storage/storage.h"

typedef struct Governance Governance;

/* Reads config's "policy" and "channels" sections (config must outlive g), loads the block list
 * and installs the tag policy hook on s (store_set_tag_policy()). -EINVAL for a bad section. */
int governance_new(Store *s, const Config *config, Governance **ret);
/* Removes the hook. */
Governance *governance_free(Governance *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(Governance *, governance_free);

/* ---- hooks of the /v2/ paths (g may be NULL: no governance, everything allowed) */

/* 0 = allowed; -EACCES = the digest (or an index child of it) is blocked, with a human reason in
 * reason. For every manifest and blob pull once the digest is resolved; a denial is audited. */
int governance_check_pull(Governance *g, const char *repo, const char *digest, char *reason, size_t reason_len);
/* Whether /v2/ may delete repo's link to the blob digest: 0 = yes; -EPERM = never in this
 * repository (channels/...); -EBUSY = the blob is under an active RCA hold. reason says why. The
 * store itself refuses while a manifest of repo uses the blob (store_blob_unlink()). */
int governance_check_blob_delete(Governance *g, const char *repo, const char *digest, char *reason, size_t reason_len);
/* After a successful manifest PUT: with channels.auto_dev_candidate, an immutable tag in apps/<svc>
 * moves channels/<first env>/<svc>:candidate to the digest. */
void governance_after_manifest_put(Governance *g, const char *repo, const char *digest, const char *const *tags,
                                   size_t n_tags, const char *actor);

/* ---- promotion and rollback */

typedef enum GovernanceOutcome {
        GOVERNANCE_OK,                   /* the pointer points at the digest (moved, or was there already) */
        GOVERNANCE_DIGEST_INVALID,       /* -EINVAL */
        GOVERNANCE_NAME_INVALID,         /* -EINVAL: not a repository name */
        GOVERNANCE_STEP_INVALID,         /* -EINVAL: not a step (or not the next step) of the release chain */
        GOVERNANCE_NOT_AT_SOURCE,        /* -ENOENT: the digest is not at the step promoted from */
        GOVERNANCE_GATES_FAILED,         /* -EPERM: a gate refused (the report says which and why) */
        GOVERNANCE_NOTHING_TO_ROLL_BACK, /* -ENOENT: the pointer is unset or has no other digest in its history */
        GOVERNANCE_NOT_IN_HISTORY,       /* -ENOENT: the named digest was never at the pointer */
        GOVERNANCE_ALREADY_CURRENT,      /* -EALREADY: the named digest is the current one */
        GOVERNANCE_WRITE_FAILED,         /* the store's -errno */
        _GOVERNANCE_OUTCOME_MAX,
        _GOVERNANCE_OUTCOME_INVALID = -1,
} GovernanceOutcome;

/* "NOT_AT_SOURCE", "GATES_FAILED", ... (the API's error codes); "OK" */
const char *governance_outcome_to_string(GovernanceOutcome o);

typedef struct GateReport {
        json_t *failed; /* [{gate, reason, detail?}] */
        json_t *passed; /* [gate name] */
} GateReport;
void gate_report_done(GateReport *r);

typedef struct GovernanceMove {
        GovernanceOutcome outcome;
        int error;                     /* the -errno returned */
        char message[4096];            /* why, for every outcome but GOVERNANCE_OK */
        json_t *detail;                /* more about a refusal, or NULL */
        char *app_repo, *svc;          /* "apps/search", "search" */
        char from[64], to[64];         /* "repo", "prod:stable" */
        char *reference;               /* "channels/prod/search:stable" */
        char digest[DIGEST_MAX_LEN];   /* where the pointer points (promote: the digest; rollback: the one restored) */
        char previous[DIGEST_MAX_LEN]; /* where it pointed before ("" = nowhere) */
        bool changed;                  /* false: it was there already (promote) */
        GateReport gates;              /* promote: the gates checked */
        json_t *entry;                 /* the channel history entry written (changed only) */
        double duration_ms;            /* rollback: from the call to the pointer moved */
} GovernanceMove;
void governance_move_done(GovernanceMove *m);

/* Promotes digest of repo (apps/<svc>, <svc> or channels/<env>/<svc>) from one step of the release
 * chain to the next (from: "repo"/"" = the repository itself, "stg" = stg:candidate, "prod:stable"),
 * after its gates pass. ret is filled in every case (governance_move_done() it); returns 0 or the
 * outcome's -errno. */
int governance_promote(Governance *g, const char *repo, const char *from, const char *to, const char *digest,
                       const char *actor, GovernanceMove *ret);
/* Moves the pointer to (e.g. "prod:stable") back to the previous digest of its history, or to a
 * named one of it ("prod:stable@sha256:..."), in one index write; the not_blocked check applies. */
int governance_rollback(Governance *g, const char *repo, const char *to, const char *actor, GovernanceMove *ret);

/* ---- channels */

/* "apps/search", "search", "channels/prod/search" -> svc "search", app repo "apps/search" (for a
 * name outside apps/ and channels/ both are the name). -EINVAL for a name that is not one. */
int governance_repo_svc(Governance *g, const char *repo, char **ret_svc, char **ret_app_repo);
/* {"dev:candidate": digest|null, ..., "prod:stable": digest|null} (+ stable pointers of the other
 * environments that someone set) */
json_t *governance_channels_state(Governance *g, const char *svc);
/* The channels of repo's service that have a history: {"<env>:<pointer>": {current, history: [entry
 * with seq, oldest first]}}. tag (may be NULL) selects one: "prod:stable", or in channels/<env>/<svc>
 * "stable"/"candidate"; a tag that names no pointer selects every one. */
int governance_channel_histories(Governance *g, const char *repo, const char *tag, json_t **ret);

/* ---- block list */

/* Blocks b->digest (b->time and b->actor are set here: now, actor): stored, effective at once,
 * audited, counted. Returns 1 if it was not blocked, 0 if its block was replaced; *ret_record (may
 * be NULL) gets the record (block_info_to_json()). */
int governance_block(Governance *g, const BlockInfo *b, const char *actor, json_t **ret_record);
/* -ENOENT if the digest is not blocked. *ret_was (may be NULL) gets the record it had. Audited. */
int governance_unblock(Governance *g, const char *digest, const char *actor, json_t **ret_was);
/* [record with digest] */
json_t *governance_block_list(Governance *g);
/* The record, -ENOENT if the digest is not blocked. */
int governance_block_get(Governance *g, const char *digest, json_t **ret);

/* ---- release metrics */

/* {image_count_by_env, digest_unique, registry_storage_bytes, promotion_latency, rollback_time,
 * cve_block_events, ..., sbom_coverage, signed_artifacts, rollback_time_p95_seconds_live};
 * repo NULL: registry-wide. -EINVAL for a bad repository name. */
int governance_metrics(Governance *g, const char *repo, json_t **ret);
/* Refreshes governance's Prometheus gauges (computed at most every 10 s): the owner of g calls it
 * before rendering the metrics. */
void governance_metrics_collect(Governance *g);
