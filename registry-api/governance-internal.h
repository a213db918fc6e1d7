/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between governance.c (policy hook, block list, channel moves, gates) and
 * v1-governance.c (the /v1/registry handlers). Nothing outside registry-api/ uses this. */

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>

#include "registry-api/registry-api.h"

#define GOV_FEATURE "governance"

/* Pointer names inside a channel repository channels/<env>/<svc>. */
#define CHANNEL_STABLE "stable"
#define CHANNEL_CANDIDATE "candidate"

#define COSIGN_SIMPLESIGNING_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_SIGNATURE_ANNOTATION "dev.cosignproject.cosign/signature"

typedef struct PolicyPattern {
        char *source;
        regex_t re;
} PolicyPattern;

typedef struct PolicyRule {
        char *name;  /* "policy[1]" unless the rule has a "name" */
        char *repos; /* glob */
        PolicyPattern *immutable, *forbidden, *moving;
        size_t n_immutable, n_forbidden, n_moving;
        char *forbidden_reason; /* optional "reason" text of the rule */
} PolicyRule;

typedef struct Governance {
        Registry *registry;
        Store *store;
        Config *config;

        PolicyRule *rules;
        size_t n_rules;

        bool auto_dev_candidate;
        char **envs; /* ordered, e.g. dev, stg, prod; the last one also has a `stable` step */
        size_t n_envs;
        json_t *gates; /* borrowed from the config */
        int64_t default_soak_ns;

        EVP_PKEY **keys;
        char **key_names;
        size_t n_keys;

        pthread_mutex_t move_lock; /* serialises promote / rollback / auto moves */
        json_t *hist_cache; /* under move_lock: "env|svc|pointer" -> [[digest, time_ns], ...] */

        pthread_rwlock_t block_lock;
        json_t *blocked; /* digest -> block record */
        size_t n_blocked;

        pthread_mutex_t cache_lock;
        int64_t cache_time;
        json_t *cache_metrics; /* registry-wide computed gauges */
} Governance;

Governance *governance_get(Registry *r);

/* A position in the release chain: the source repository (env == NULL) or a channel pointer. */
typedef struct ChannelRef {
        char env[32];
        char pointer[16]; /* "candidate" / "stable" */
        bool source;      /* the application repository itself */
} ChannelRef;

/* "dev" -> dev:candidate, "prod:stable", "" / "build" / "repo" -> source. -EINVAL if unknown. */
int channel_ref_parse(Governance *g, const char *s, ChannelRef *ret);
/* "prod:stable", "repo" */
void channel_ref_format(const ChannelRef *c, char *buf, size_t n);
/* Index of the ref in the promotion chain (source = 0). */
int channel_ref_step(Governance *g, const ChannelRef *c);
/* The step after `c`, -ENOENT at the end of the chain. */
int channel_ref_next(Governance *g, const ChannelRef *c, ChannelRef *ret);

/* "apps/search" -> "search"; "channels/prod/search" -> "search" (env in *ret_env if given).
 * Returns a malloc()ed svc or NULL (-EINVAL) for names that are not application repos. */
int repo_to_svc(Governance *g, const char *repo, char **ret_svc, char **ret_app_repo);
char *channel_repo_name(const char *env, const char *svc);

/* Current digest of a pointer (-ENOENT if unset). */
int channel_get(Governance *g, const char *svc, const ChannelRef *c, char digest[DIGEST_MAX_LEN]);
/* Moves a pointer to digest: links the manifest closure into channels/<env>/<svc> from
 * app_repo (STORE_WRITE_CHANNEL_MOVE: the tag policy lets it through), writes the tag, appends
 * channel_history. extra (borrowed, may be NULL) is merged into the history entry. Caller holds
 * move_lock. started_mono (clock_monotonic_ns, 0 = none) records "duration_ms" of the operation up
 * to the pointer move. *ret_entry gets the history entry. */
int channel_move(Governance *g, const char *svc, const char *app_repo, const ChannelRef *c, const char *digest,
                 const char *actor, const char *action, json_t *extra, uint64_t started_mono, json_t **ret_entry);
/* Digests and times of one pointer's history, oldest first, as [[digest, time_ns], ...]
 * (borrowed; cached in memory, kept up to date by channel_move). Caller holds move_lock. */
json_t *channel_history_digests(Governance *g, const char *svc, const ChannelRef *c);
/* History of one pointer, oldest first: array of entries (each with "seq"). */
int channel_history(Governance *g, const char *svc, const ChannelRef *c, json_t **ret);

/* Block list */
bool gov_is_blocked(Governance *g, const char *digest, json_t **ret_info);
/* Stores the block and keeps it in memory; *ret_record (may be NULL) gets its JSON form. */
int gov_block(Governance *g, const BlockInfo *b, json_t **ret_record);
int gov_unblock(Governance *g, const char *digest, json_t **ret_old);
json_t *gov_block_list(Governance *g);
/* Blocked digest itself or any child of an index (recursively). Fills reason. */
int gov_check_blocked_closure(Governance *g, const char *digest, char *reason, size_t reason_len,
                              char blocked_digest[DIGEST_MAX_LEN]);

/* Gates */
typedef struct GateReport {
        json_t *failed; /* array of {gate, reason} */
        json_t *passed; /* array of gate names */
} GateReport;
void gate_report_done(GateReport *r);
/* Evaluates the gates configured for `to` (soak measured at `from`). */
int gov_check_gates(Governance *g, const char *app_repo, const char *svc, const ChannelRef *from,
                    const ChannelRef *to, const char *digest, GateReport *ret);

/* Signature / SBOM lookups (also used by the metrics). verified: at least one signature
 * verifies against a configured key. Returns the number of signatures found. detail gets
 * one line per signature checked (may be NULL). */
int gov_signature_check(Governance *g, const char *repo, const char *digest, bool *ret_verified, json_t *detail);
bool gov_has_sbom(Governance *g, const char *repo, const char *digest);
/* Missing required labels/annotations as an array of names. */
int gov_missing_labels(Governance *g, const char *digest, json_t *required, json_t **ret_missing);

/* Persistent counter in the meta column ("governance/<name>"). */
uint64_t gov_counter_add(Governance *g, const char *name, uint64_t delta);
uint64_t gov_counter_get(Governance *g, const char *name);
void gov_cve_block_event(Governance *g, const char *kind);

/* Time helper: "2026-01-01T00:00:00Z" */
json_t *json_time(int64_t ns);

/* Metric names */
#define M_IMAGE_COUNT "plura_image_count_by_env"
#define M_DIGEST_UNIQUE "plura_digest_unique" /* declared and set by gc/gc.c (kind="manifest"|"blob") */
#define M_STORAGE_BYTES "plura_registry_storage_bytes"
#define M_PROMOTION_LATENCY "plura_promotion_latency_seconds"
#define M_ROLLBACK_TIME "plura_rollback_time_seconds"
#define M_CVE_BLOCK_EVENTS "plura_cve_block_events_total"
#define M_SBOM_COVERAGE "plura_sbom_coverage_ratio"
#define M_SIGNED_ARTIFACTS "plura_signed_artifacts_ratio"
#define M_PROMOTIONS "plura_promotions_total"
#define M_ROLLBACKS "plura_rollbacks_total"
#define M_POLICY_REFUSALS "plura_tag_policy_refusals_total"

/* Computes the release metrics (repo may be NULL = registry-wide) as a JSON object. */
int gov_compute_metrics(Governance *g, const char *repo, json_t **ret);
void gov_metrics_init(Governance *g);
void gov_metrics_done(Governance *g);
const char *const *gov_cve_event_kinds(size_t *n);
