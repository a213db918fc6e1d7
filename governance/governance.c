/* SPDX-License-Identifier: MIT */
/* Governance's set-up from the config (policy rules, the release chain's environments, gates,
 * public keys, the block list) and its hooks in the /v2/ paths: pull checks, blob delete checks
 * and the automatic dev candidate after a push. */

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"
#include "storage/holds.h"

json_t *gov_json_time(int64_t ns) {
        char buf[64];
        return json_string(format_timestamp(buf, sizeof(buf), ns));
}

/* ------------------------------------------------------------------ hooks */

int governance_check_pull(Governance *g, const char *repo, const char *digest, char *reason, size_t reason_len) {
        if (!g || !digest)
                return 0;
        char bd[DIGEST_MAX_LEN];
        int k = gov_check_blocked_closure(g, digest, reason, reason_len, bd);
        if (k < 0) {
                json_t *d = json_pack("{s:s, s:s, s:s}", "digest", digest, "blocked", bd, "reason", reason);
                _cleanup_free_ char *target = strdup_printf("%s@%s", repo ? repo : "", digest);
                (void) store_audit(g->store, NULL, "pull", target ? target : digest, "denied", d);
                json_decref(d);
                gov_cve_block_event(g, "pull_denied");
        }
        return k;
}

int governance_check_blob_delete(Governance *g, const char *repo, const char *digest, char *reason, size_t reason_len) {
        if (gov_repo_is_channel(repo)) {
                snprintf(reason, reason_len,
                         "repository %s is a channel: its content is what promotion put there and cannot be deleted "
                         "through /v2/ (its pointers move only with POST /v1/registry/promote and /v1/registry/rollback)",
                         repo);
                return -EPERM;
        }
        if (!g)
                return 0;
        _cleanup_free_ char *case_id = NULL;
        int k = store_digest_held(g->store, digest, &case_id);
        if (k < 0)
                return k;
        if (k > 0) {
                snprintf(reason, reason_len,
                         "blob %s is under the RCA hold of case %s: held content cannot be deleted until the hold "
                         "is released (plura reg hold release)", digest, case_id);
                return -EBUSY;
        }
        return 0;
}

void governance_after_manifest_put(Governance *g, const char *repo, const char *digest, const char *const *tags,
                                   size_t n_tags, const char *actor) {
        if (!g || !g->auto_dev_candidate || g->n_envs == 0 || !repo || !startswith(repo, "apps/"))
                return;
        bool immutable = false;
        for (size_t i = 0; i < n_tags && !immutable; i++)
                immutable = tags[i] && gov_tag_is_immutable(g, repo, tags[i]);
        if (!immutable)
                return;
        char reason[512];
        if (gov_check_blocked_closure(g, digest, reason, sizeof(reason), NULL) < 0)
                return;
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (governance_repo_svc(g, repo, &svc, &app) < 0)
                return;
        ChannelRef c = { 0 };
        snprintf(c.env, sizeof(c.env), "%s", g->envs[0]);
        snprintf(c.pointer, sizeof(c.pointer), CHANNEL_CANDIDATE);
        pthread_mutex_lock(&g->move_lock);
        json_t *extra = json_pack("{s:s, s:s}", "from", "repo", "tag", tags[0] ? tags[0] : "");
        int k = channel_move(g, svc, app, &c, digest, actor, "auto_dev_candidate", extra, 0, NULL);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (k < 0) {
                _cleanup_free_ char *target = strdup_printf("channels/%s/%s:%s", c.env, svc, c.pointer);
                json_t *d = json_pack("{s:s, s:s, s:s}", "digest", digest, "repo", repo, "error", strerror(-k));
                (void) store_audit(g->store, actor, "auto_dev_candidate", target ? target : repo, "error", d);
                json_decref(d);
                log_warning_errno(k, "governance: auto dev candidate for %s@%s: %m", repo, digest);
        }
}

/* ------------------------------------------------------------------ set-up */

static int keys_load(Governance *g, json_t *keys) {
        if (!keys)
                return 0;
        if (!json_is_array(keys))
                return log_error_errno(EINVAL, "channels.public_keys: expected an array of PEM file paths");
        size_t n = json_array_size(keys);
        g->keys = calloc(n + 1, sizeof(EVP_PKEY *));
        g->key_names = calloc(n + 1, sizeof(char *));
        if (!g->keys || !g->key_names)
                return log_oom();
        size_t i;
        json_t *v;
        json_array_foreach(keys, i, v) {
                const char *s = json_string_value(v);
                if (!s)
                        return log_error_errno(EINVAL, "channels.public_keys[%zu]: expected a string", i);
                BIO *bio = startswith(s, "-----BEGIN") ? BIO_new_mem_buf(s, -1) : BIO_new_file(s, "r");
                if (!bio)
                        return log_error_errno(ENOENT, "channels.public_keys[%zu]: cannot open %s", i, s);
                EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
                BIO_free(bio);
                ERR_clear_error();
                if (!k)
                        return log_error_errno(EINVAL, "channels.public_keys[%zu]: %s is not a PEM public key", i,
                                               startswith(s, "-----BEGIN") ? "inline key" : s);
                g->keys[g->n_keys] = k;
                g->key_names[g->n_keys] = startswith(s, "-----BEGIN") ? strdup_printf("public_keys[%zu]", i) : strdup(s);
                g->n_keys++;
        }
        return 0;
}

static void governance_destroy(Governance *g) {
        if (!g)
                return;
        gov_policy_done(g);
        for (size_t i = 0; i < g->n_envs; i++)
                free(g->envs[i]);
        free(g->envs);
        for (size_t i = 0; i < g->n_keys; i++) {
                EVP_PKEY_free(g->keys[i]);
                free(g->key_names[i]);
        }
        free(g->keys);
        free(g->key_names);
        json_decref(g->blocked);
        json_decref(g->hist_cache);
        json_decref(g->cache_metrics);
        pthread_mutex_destroy(&g->move_lock);
        pthread_mutex_destroy(&g->cache_lock);
        pthread_rwlock_destroy(&g->block_lock);
        free(g);
}

int governance_new(Store *s, const Config *config, Governance **ret) {
        if (!s || !config || !ret)
                return -EINVAL;
        Governance *g = calloc(1, sizeof(Governance));
        if (!g)
                return log_oom();
        g->store = s;
        g->config = config;
        pthread_mutex_init(&g->move_lock, NULL);
        pthread_mutex_init(&g->cache_lock, NULL);
        pthread_rwlock_init(&g->block_lock, NULL);
        g->blocked = json_object();
        g->hist_cache = json_object();

        int k = gov_policy_parse(g, json_object_get(config->root, "policy"));
        if (k < 0)
                goto fail;

        json_t *ch = config_section((Config *) config, "channels");
        g->auto_dev_candidate = json_is_true(json_object_get(ch, "auto_dev_candidate"));
        g->gates = json_object_get(ch, "gates");
        if (g->gates && !json_is_object(g->gates)) {
                k = log_error_errno(EINVAL, "channels.gates: expected an object keyed by target (\"stg\", \"prod:stable\", ...)");
                goto fail;
        }
        json_t *envs = json_object_get(ch, "envs");
        static const char *const default_envs[] = { "dev", "stg", "prod" };
        size_t ne = json_is_array(envs) ? json_array_size(envs) : ELEMENTSOF(default_envs);
        g->envs = calloc(ne + 1, sizeof(char *));
        if (!g->envs) {
                k = log_oom();
                goto fail;
        }
        for (size_t i = 0; i < ne; i++) {
                const char *e = json_is_array(envs) ? json_string_value(json_array_get(envs, i)) : default_envs[i];
                if (!e || !*e || strchr(e, '/') || strchr(e, ':') || strlen(e) >= sizeof(((ChannelRef *) 0)->env)) {
                        k = log_error_errno(EINVAL, "channels.envs[%zu]: expected a short environment name", i);
                        goto fail;
                }
                g->envs[g->n_envs++] = strdup(e);
        }
        if (g->n_envs == 0) {
                k = log_error_errno(EINVAL, "channels.envs: at least one environment is needed");
                goto fail;
        }
        k = keys_load(g, json_object_get(ch, "public_keys"));
        if (k < 0)
                goto fail;

        k = gov_blocks_load(g);
        if (k < 0) {
                log_error_errno(k, "governance: loading the block list: %m");
                goto fail;
        }
        store_set_tag_policy(g->store, gov_tag_policy, g);
        gov_metrics_init(g);
        log_info("governance: %zu policy rule(s), %zu public key(s), %zu blocked digest(s), envs %s..%s%s", g->n_rules,
                 g->n_keys, g->n_blocked, g->envs[0], g->envs[g->n_envs - 1],
                 g->auto_dev_candidate ? ", auto dev candidate" : "");
        *ret = g;
        return 0;
fail:
        governance_destroy(g);
        return k;
}

Governance *governance_free(Governance *g) {
        if (!g)
                return NULL;
        store_set_tag_policy(g->store, NULL, NULL);
        governance_destroy(g);
        return NULL;
}
