/* SPDX-License-Identifier: MIT */
/* Promotion (one step along the release chain, behind the target's gates) and rollback (a
 * pointer back to a digest of its own history), each under the move lock and one index write. */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/governance-records.h"

static const char *const outcome_table[_GOVERNANCE_OUTCOME_MAX] = {
        [GOVERNANCE_OK] = "OK",
        [GOVERNANCE_DIGEST_INVALID] = "DIGEST_INVALID",
        [GOVERNANCE_NAME_INVALID] = "NAME_INVALID",
        [GOVERNANCE_STEP_INVALID] = "INVALID",
        [GOVERNANCE_NOT_AT_SOURCE] = "NOT_AT_SOURCE",
        [GOVERNANCE_GATES_FAILED] = "GATES_FAILED",
        [GOVERNANCE_NOTHING_TO_ROLL_BACK] = "NOTHING_TO_ROLL_BACK",
        [GOVERNANCE_NOT_IN_HISTORY] = "NOT_IN_HISTORY",
        [GOVERNANCE_ALREADY_CURRENT] = "ALREADY_CURRENT",
        [GOVERNANCE_WRITE_FAILED] = "INTERNAL",
};

const char *governance_outcome_to_string(GovernanceOutcome o) {
        return o >= 0 && o < _GOVERNANCE_OUTCOME_MAX ? outcome_table[o] : NULL;
}

static const int outcome_errno[_GOVERNANCE_OUTCOME_MAX] = {
        [GOVERNANCE_DIGEST_INVALID] = EINVAL,
        [GOVERNANCE_NAME_INVALID] = EINVAL,
        [GOVERNANCE_STEP_INVALID] = EINVAL,
        [GOVERNANCE_NOT_AT_SOURCE] = ENOENT,
        [GOVERNANCE_GATES_FAILED] = EPERM,
        [GOVERNANCE_NOTHING_TO_ROLL_BACK] = ENOENT,
        [GOVERNANCE_NOT_IN_HISTORY] = ENOENT,
        [GOVERNANCE_ALREADY_CURRENT] = EALREADY,
        [GOVERNANCE_WRITE_FAILED] = EIO,
};

void gate_report_done(GateReport *r) {
        json_decref(r->failed);
        json_decref(r->passed);
        r->failed = r->passed = NULL;
}

void governance_move_done(GovernanceMove *m) {
        if (!m)
                return;
        json_decref(m->detail);
        free(m->app_repo);
        free(m->svc);
        free(m->reference);
        gate_report_done(&m->gates);
        json_decref(m->entry);
        *m = (GovernanceMove) {};
}

/* Sets the outcome and its message (detail stolen, may be NULL); returns the outcome's -errno
 * (error, for GOVERNANCE_WRITE_FAILED). */
static int refuse(GovernanceMove *m, GovernanceOutcome o, int error, json_t *detail, const char *fmt, ...)
        _printf_(5, 6);
static int refuse(GovernanceMove *m, GovernanceOutcome o, int error, json_t *detail, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->message, sizeof m->message, fmt, ap);
        va_end(ap);
        m->outcome = o;
        json_decref(m->detail);
        m->detail = detail;
        m->error = o == GOVERNANCE_WRITE_FAILED && error < 0 ? error : -outcome_errno[o];
        return m->error;
}

static int move_begin(Governance *g, const char *repo, GovernanceMove *m) {
        *m = (GovernanceMove) {};
        if (governance_repo_svc(g, repo, &m->svc, &m->app_repo) < 0)
                return refuse(m, GOVERNANCE_NAME_INVALID, 0, NULL, "repo: \"%s\" is not a valid repository name", strna(repo));
        return 0;
}

static int set_reference(GovernanceMove *m, const ChannelRef *to) {
        _cleanup_free_ char *chan = channel_repo_name(to->env, m->svc);
        m->reference = chan ? strdup_printf("%s:%s", chan, to->pointer) : NULL;
        return m->reference ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ promote */

static int promote_refused(Governance *g, GovernanceMove *m, const char *actor, const char *svc) {
        char msg[2048];
        size_t l = 0;
        size_t i;
        json_t *f;
        bool block_failed = false;
        json_array_foreach(m->gates.failed, i, f) {
                const char *gate = json_string_value(json_object_get(f, "gate"));
                block_failed |= streq_ptr(gate, "not_blocked");
                if (l < sizeof(msg))
                        l += (size_t) snprintf(msg + l, sizeof(msg) - l, "%s%s: %s", i ? "; " : "", strna(gate),
                                               strna(json_string_value(json_object_get(f, "reason"))));
        }
        if (block_failed)
                gov_cve_block_event(g, "promote_denied");
        json_t *ad = json_pack("{s:s, s:s, s:s, s:O}", "digest", m->digest, "from", m->from, "to", m->to, "failed",
                               m->gates.failed);
        (void) store_audit(g->store, actor, "promote", strna(m->reference), "refused", ad);
        json_decref(ad);
        json_t *d = json_pack("{s:s, s:s, s:s, s:O, s:O}", "digest", m->digest, "from", m->from, "to", m->to,
                              "failed_gates", m->gates.failed, "passed_gates", m->gates.passed);
        return refuse(m, GOVERNANCE_GATES_FAILED, 0, d, "promotion of %s to %s of %s refused: %s", m->digest, m->to, svc,
                      msg);
}

int governance_promote(Governance *g, const char *repo, const char *from_s, const char *to_s, const char *digest,
                       const char *actor, GovernanceMove *m) {
        DigestAlgorithm a;
        *m = (GovernanceMove) {};
        if (!digest || digest_parse(digest, &a) < 0)
                return refuse(m, GOVERNANCE_DIGEST_INVALID, 0, NULL, "digest: \"%s\" is not a valid digest", strna(digest));
        int r = move_begin(g, repo, m);
        if (r < 0)
                return r;
        snprintf(m->digest, sizeof m->digest, "%s", digest);
        const char *svc = m->svc, *app = m->app_repo;

        ChannelRef from, to, expect;
        _cleanup_free_ char *chain = gov_chain_text(g);
        if (channel_ref_parse(g, from_s, &from) < 0 || channel_ref_step(g, &from) < 0)
                return refuse(m, GOVERNANCE_STEP_INVALID, 0, NULL, "from: \"%s\" is not a step of the release chain %s",
                              strempty(from_s), strna(chain));
        if (channel_ref_parse(g, to_s, &to) < 0 || to.source || channel_ref_step(g, &to) < 0)
                return refuse(m, GOVERNANCE_STEP_INVALID, 0, NULL, "to: \"%s\" is not a step of the release chain %s",
                              strna(to_s), strna(chain));
        char expname[64];
        channel_ref_format(&from, m->from, sizeof m->from);
        channel_ref_format(&to, m->to, sizeof m->to);
        if (channel_ref_next(g, &from, &expect) < 0)
                return refuse(m, GOVERNANCE_STEP_INVALID, 0, NULL, "%s is the end of the release chain %s", m->from,
                              strna(chain));
        channel_ref_format(&expect, expname, sizeof(expname));
        if (!streq(expname, m->to))
                return refuse(m, GOVERNANCE_STEP_INVALID, 0, NULL,
                              "promotion goes one step at a time along %s: the step after %s is %s, not %s", strna(chain),
                              m->from, expname, m->to);
        if (set_reference(m, &to) < 0)
                return refuse(m, GOVERNANCE_WRITE_FAILED, -ENOMEM, NULL, "out of memory");

        pthread_mutex_lock(&g->move_lock);
        char cur[DIGEST_MAX_LEN] = "";
        if (from.source) {
                _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
                if (store_manifest_get(g->store, app, digest, &sm) < 0) {
                        pthread_mutex_unlock(&g->move_lock);
                        return refuse(m, GOVERNANCE_NOT_AT_SOURCE, 0, NULL, "%s is not a manifest of %s", digest, app);
                }
        } else {
                r = channel_get(g, svc, &from, cur);
                if (r < 0 || !streq(cur, digest)) {
                        pthread_mutex_unlock(&g->move_lock);
                        json_t *d = json_pack("{s:s, s:o}", "from", m->from, "current", cur[0] ? json_string(cur) : json_null());
                        return refuse(m, GOVERNANCE_NOT_AT_SOURCE, 0, d, "%s is not at %s of %s (it points at %s)", digest,
                                      m->from, svc, cur[0] ? cur : "nothing");
                }
        }

        char at_to[DIGEST_MAX_LEN] = "";
        if (channel_get(g, svc, &to, at_to) >= 0 && streq(at_to, digest)) {
                pthread_mutex_unlock(&g->move_lock);
                snprintf(m->previous, sizeof m->previous, "%s", at_to);
                return 0; /* already there: changed stays false */
        }

        int failed = gov_check_gates(g, app, svc, &from, &to, digest, &m->gates);
        if (failed > 0) {
                pthread_mutex_unlock(&g->move_lock);
                return promote_refused(g, m, actor, svc);
        }

        json_t *extra = json_pack("{s:s, s:O}", "from", m->from, "gates_passed", m->gates.passed);
        double latency = NAN;
        if (channel_ref_step(g, &to) == (int) g->n_envs + 1) {
                /* the end of the chain: promotion latency from the first push of the digest */
                _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
                if (store_manifest_get(g->store, app, digest, &sm) >= 0 && sm->pushed > 0) {
                        latency = (double) (clock_now_ns() - sm->pushed) / 1e9;
                        json_object_set_new(extra, "first_pushed", gov_json_time(sm->pushed));
                        json_object_set_new(extra, "latency_s", json_real(latency));
                }
        }
        r = channel_move(g, svc, app, &to, digest, actor, "promote", extra, 0, &m->entry);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (r < 0) {
                json_t *ad = json_pack("{s:s, s:s}", "digest", digest, "error", strerror(-r));
                (void) store_audit(g->store, actor, "promote", m->reference, "error", ad);
                json_decref(ad);
                return refuse(m, GOVERNANCE_WRITE_FAILED, r, NULL, "moving %s to %s failed", m->reference, digest);
        }
        snprintf(m->previous, sizeof m->previous, "%s", strempty(json_string_value(json_object_get(m->entry, "previous"))));
        m->changed = true;
        char labels[96];
        snprintf(labels, sizeof(labels), "to=\"%s\"", m->to);
        metrics_counter_add(M_PROMOTIONS, labels, 1);
        if (!isnan(latency))
                metrics_histogram_observe(M_PROMOTION_LATENCY, NULL, latency);
        return 0;
}

/* ------------------------------------------------------------------ rollback */

int governance_rollback(Governance *g, const char *repo, const char *to_s, const char *actor, GovernanceMove *m) {
        uint64_t t0 = clock_monotonic_ns();
        int r = move_begin(g, repo, m);
        if (r < 0)
                return r;
        const char *svc = m->svc, *app = m->app_repo;
        _cleanup_free_ char *to_copy = strdup(strempty(to_s));
        if (!to_copy)
                return refuse(m, GOVERNANCE_WRITE_FAILED, -ENOMEM, NULL, "out of memory");
        char *at = strchr(to_copy, '@');
        const char *named = NULL;
        if (at) {
                *at = 0;
                named = at + 1;
                DigestAlgorithm a;
                if (digest_parse(named, &a) < 0)
                        return refuse(m, GOVERNANCE_DIGEST_INVALID, 0, NULL, "to: \"%s\" is not a valid digest", named);
        }
        ChannelRef to;
        if (channel_ref_parse(g, to_copy, &to) < 0 || to.source)
                return refuse(m, GOVERNANCE_STEP_INVALID, 0, NULL, "to: \"%s\" is not a channel pointer (like prod:stable)",
                              to_copy);
        channel_ref_format(&to, m->to, sizeof m->to);
        snprintf(m->from, sizeof m->from, "%s", m->to);
        if (set_reference(m, &to) < 0)
                return refuse(m, GOVERNANCE_WRITE_FAILED, -ENOMEM, NULL, "out of memory");

        pthread_mutex_lock(&g->move_lock);
        char cur[DIGEST_MAX_LEN];
        r = channel_get(g, svc, &to, cur);
        if (r < 0) {
                pthread_mutex_unlock(&g->move_lock);
                return refuse(m, GOVERNANCE_NOTHING_TO_ROLL_BACK, 0, NULL, "%s of %s is not set", m->to, svc);
        }
        json_t *hist = channel_history_digests(g, svc, &to); /* borrowed, under move_lock */
        if (!hist) {
                pthread_mutex_unlock(&g->move_lock);
                return refuse(m, GOVERNANCE_WRITE_FAILED, -EIO, NULL, "reading the history of %s", m->reference);
        }
        const char *dest = NULL;
        if (named) {
                size_t i;
                json_t *e;
                json_array_foreach(hist, i, e)
                        if (streq_ptr(json_string_value(json_array_get(e, 0)), named))
                                dest = named;
                if (!dest) {
                        pthread_mutex_unlock(&g->move_lock);
                        return refuse(m, GOVERNANCE_NOT_IN_HISTORY, 0, NULL,
                                      "%s was never at %s of %s; rollback only goes to a digest from its history", named,
                                      m->to, svc);
                }
                if (streq(dest, cur)) {
                        pthread_mutex_unlock(&g->move_lock);
                        return refuse(m, GOVERNANCE_ALREADY_CURRENT, 0, NULL, "%s of %s already points at %s", m->to, svc,
                                      cur);
                }
        } else {
                for (size_t i = json_array_size(hist); i > 0 && !dest; i--) {
                        const char *d = json_string_value(json_array_get(json_array_get(hist, i - 1), 0));
                        if (d && !streq(d, cur))
                                dest = d;
                }
                if (!dest) {
                        pthread_mutex_unlock(&g->move_lock);
                        return refuse(m, GOVERNANCE_NOTHING_TO_ROLL_BACK, 0, NULL,
                                      "%s of %s has no previous digest in its history", m->to, svc);
                }
        }
        snprintf(m->digest, sizeof m->digest, "%s", dest);
        snprintf(m->previous, sizeof m->previous, "%s", cur);
        char reason[512];
        if (gov_check_blocked_closure(g, m->digest, reason, sizeof(reason), NULL) < 0) {
                pthread_mutex_unlock(&g->move_lock);
                gov_cve_block_event(g, "promote_denied");
                json_t *ad = json_pack("{s:s, s:s}", "digest", m->digest, "reason", reason);
                (void) store_audit(g->store, actor, "rollback", m->reference, "refused", ad);
                json_decref(ad);
                return refuse(m, GOVERNANCE_GATES_FAILED, 0, NULL, "rollback of %s to %s refused: not_blocked: %s",
                              m->reference, m->digest, reason);
        }
        json_t *extra = json_pack("{s:s, s:s}", "from", m->to, "rolled_back_from", cur);
        r = channel_move(g, svc, app, &to, m->digest, actor, "rollback", extra, t0, &m->entry);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (r < 0) {
                json_t *ad = json_pack("{s:s, s:s}", "digest", m->digest, "error", strerror(-r));
                (void) store_audit(g->store, actor, "rollback", m->reference, "error", ad);
                json_decref(ad);
                return refuse(m, GOVERNANCE_WRITE_FAILED, r, NULL, "rollback of %s failed", m->reference);
        }
        m->changed = true;
        double secs = (double) (clock_monotonic_ns() - t0) / 1e9;
        m->duration_ms = secs * 1e3;
        metrics_histogram_observe(M_ROLLBACK_TIME, NULL, secs);
        metrics_counter_add(M_ROLLBACKS, NULL, 1);
        return 0;
}
