/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the files of governance/: governance.c (set-up, the /v2/ hooks), policy.c (the tag
 * policy hook), channels.c (the release chain, pointer moves, histories), blocks.c (the block list
 * and its counters), gates.c (signatures, SBOMs, labels, soak), promote.c (promotion and rollback)
 * and metrics.c (the release metrics). Nothing outside governance/ uses this. */

#include <openssl/evp.h>
#include <pthread.h>

#include "common/regexp.h"
#include "governance/governance.h"

/* Pointer names inside a channel repository channels/<env>/<svc>. */
#define CHANNEL_STABLE "stable"
#define CHANNEL_CANDIDATE "candidate"

#define COSIGN_SIMPLESIGNING_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_SIGNATURE_ANNOTATION "dev.cosignproject.cosign/signature"

typedef struct PolicyPattern {
        char *source;
        Regexp *re;
} PolicyPattern;

typedef struct PolicyRule {
        char *name;  /* "policy[1]" unless the rule has a "name" */
        char *repos; /* glob */
        PolicyPattern *immutable, *forbidden, *moving;
        size_t n_immutable, n_forbidden, n_moving;
        char *forbidden_reason; /* optional "reason" text of the rule */
} PolicyRule;

struct Governance {
        Store *store;
        const Config *config;

        PolicyRule *rules;
        size_t n_rules;

        bool auto_dev_candidate;
        char **envs; /* ordered, e.g. dev, stg, prod; the last one also has a `stable` step */
        size_t n_envs;
        json_t *gates; /* borrowed from the config */

        EVP_PKEY **keys;
        char **key_names;
        size_t n_keys;

        pthread_mutex_t move_lock; /* serialises promote / rollback / auto moves */
        json_t *hist_cache; /* under move_lock: "env|svc|pointer" -> [[digest, time_ns], ...] */

        pthread_rwlock_t block_lock;
        json_t *blocked; /* digest -> block record */
        size_t n_blocked;

        pthread_mutex_t cache_lock; /* the registry-wide metrics behind the Prometheus gauges */
        int64_t cache_time;
        json_t *cache_metrics;
};

/* RFC 3339 text: "2026-01-01T00:00:00Z" */
json_t *gov_json_time(int64_t ns);

/* ---- policy.c */
int gov_policy_parse(Governance *g, json_t *policy);
void gov_policy_done(Governance *g);
/* The store's tag policy hook (TagPolicyFn), userdata g. */
int gov_tag_policy(void *userdata, const char *repo, const char *tag, const char *old_digest, const char *new_digest,
                   const char *first_digest_in_history, unsigned flags, StoreError *err);
bool gov_tag_is_immutable(Governance *g, const char *repo, const char *tag);
/* channels or channels/... */
bool gov_repo_is_channel(const char *repo);

/* ---- channels.c */

/* A position in the release chain: the source repository or a channel pointer. */
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
/* "repo → dev:candidate → ... → prod:stable" (malloc()ed) */
char *gov_chain_text(Governance *g);

char *channel_repo_name(const char *env, const char *svc);
/* Current digest of a pointer (-ENOENT if unset). */
int channel_get(Governance *g, const char *svc, const ChannelRef *c, char digest[DIGEST_MAX_LEN]);
/* Moves a pointer to digest: links the manifest closure into channels/<env>/<svc> from app_repo
 * (STORE_WRITE_CHANNEL_MOVE: the tag policy lets it through), then store_channel_move(). extra
 * (borrowed, may be NULL) is merged into the history entry. Caller holds move_lock. started_mono
 * (clock_monotonic_ns, 0 = none) records "duration_ms" of the operation up to the pointer move.
 * *ret_entry gets the history entry. */
int channel_move(Governance *g, const char *svc, const char *app_repo, const ChannelRef *c, const char *digest,
                 const char *actor, const char *action, json_t *extra, uint64_t started_mono, json_t **ret_entry);
/* Digests and times of one pointer's history, oldest first, as [[digest, time_ns], ...]
 * (borrowed; cached in memory, kept up to date by channel_move). Caller holds move_lock. */
json_t *channel_history_digests(Governance *g, const char *svc, const ChannelRef *c);

/* ---- blocks.c */
int gov_blocks_load(Governance *g);
bool gov_is_blocked(Governance *g, const char *digest, json_t **ret_info);
/* Blocked digest itself or any child of an index (recursively): -EACCES and the reason. */
int gov_check_blocked_closure(Governance *g, const char *digest, char *reason, size_t reason_len,
                              char blocked_digest[DIGEST_MAX_LEN]);
/* Persistent counters (store_governance_counter_*()) */
uint64_t gov_counter_get(Governance *g, const char *name);
void gov_cve_block_event(Governance *g, const char *kind);
/* "block", "pull_denied", "promote_denied" */
const char *const *gov_cve_event_kinds(size_t *n);

/* ---- gates.c */

/* Signature / SBOM lookups (also used by the metrics). verified: at least one signature
 * verifies against a configured key. Returns the number of signatures found. detail gets
 * one line per signature checked (may be NULL). */
int gov_signature_check(Governance *g, const char *repo, const char *digest, bool *ret_verified, json_t *detail);
bool gov_has_sbom(Governance *g, const char *repo, const char *digest);
/* Missing required labels/annotations as an array of names. */
int gov_missing_labels(Governance *g, const char *digest, json_t *required, json_t **ret_missing);
/* Evaluates the gates configured for `to` (soak measured at `from`). Returns how many failed. */
int gov_check_gates(Governance *g, const char *app_repo, const char *svc, const ChannelRef *from,
                    const ChannelRef *to, const char *digest, GateReport *ret);

/* ---- metrics.c */
#define M_IMAGE_COUNT "plura_image_count_by_env"
#define M_STORAGE_BYTES "plura_registry_storage_bytes"
#define M_PROMOTION_LATENCY "plura_promotion_latency_seconds"
#define M_ROLLBACK_TIME "plura_rollback_time_seconds"
#define M_CVE_BLOCK_EVENTS "plura_cve_block_events_total"
#define M_SBOM_COVERAGE "plura_sbom_coverage_ratio"
#define M_SIGNED_ARTIFACTS "plura_signed_artifacts_ratio"
#define M_PROMOTIONS "plura_promotions_total"
#define M_ROLLBACKS "plura_rollbacks_total"
#define M_POLICY_REFUSALS "plura_tag_policy_refusals_total"

/* Declares the metrics; seeds the histograms and counters from the store once per process. */
void gov_metrics_init(Governance *g);
