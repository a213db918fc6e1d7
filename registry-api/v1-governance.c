/* SPDX-License-Identifier: MIT */
/* /v1/registry/ governance API: promote, rollback, block/unblock, history, audit, channels,
 * metrics (JSON here, Prometheus gauges through a collector). */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "registry-api/governance-internal.h"
#include "registry-api/v1-input.h"

static const char *body_string(const V1Request *req, const char *key) {
        return req->body ? json_string_value(json_object_get(req->body, key)) : NULL;
}

/* The query parameters and body fields of a request, checked before anything else. */
static bool input_valid(const V1Request *req, V1Response *resp, const char *const *query, const V1Field *fields,
                        size_t n_fields) {
        return v1_query_valid(req, resp, "INVALID", query) && v1_body_valid(req, resp, "INVALID", fields, n_fields);
}
#define QUERY(...) ((const char *const[]) { __VA_ARGS__, NULL })

static int need_governance(Registry *r, V1Response *resp, Governance **ret) {
        *ret = governance_get(r);
        if (!*ret)
                return v1_error(resp, 503, "UNAVAILABLE", NULL, "governance is not initialised");
        return 1;
}

/* {"dev:candidate": digest, ..., "prod:stable": digest} (unset pointers are null) */
static json_t *channels_state(Governance *g, const char *svc) {
        json_t *o = json_object();
        ChannelRef c = { .source = true };
        ChannelRef next;
        while (channel_ref_next(g, &c, &next) >= 0) {
                c = next;
                char name[64], d[DIGEST_MAX_LEN];
                channel_ref_format(&c, name, sizeof(name));
                json_object_set_new(o, name, channel_get(g, svc, &c, d) >= 0 ? json_string(d) : json_null());
        }
        /* stable pointers of the other environments, if someone set them */
        for (size_t i = 0; i + 1 < g->n_envs; i++) {
                ChannelRef s = { 0 };
                snprintf(s.env, sizeof(s.env), "%s", g->envs[i]);
                snprintf(s.pointer, sizeof(s.pointer), CHANNEL_STABLE);
                char name[64], d[DIGEST_MAX_LEN];
                channel_ref_format(&s, name, sizeof(name));
                if (channel_get(g, svc, &s, d) >= 0)
                        json_object_set_new(o, name, json_string(d));
        }
        return o;
}

static char *chain_text(Governance *g) {
        char buf[512];
        size_t l = 0;
        ChannelRef c = { .source = true }, next;
        l += (size_t) snprintf(buf + l, sizeof(buf) - l, "repo");
        while (channel_ref_next(g, &c, &next) >= 0 && l < sizeof(buf)) {
                c = next;
                char name[64];
                channel_ref_format(&c, name, sizeof(name));
                l += (size_t) snprintf(buf + l, sizeof(buf) - l, " → %s", name);
        }
        return strdup(buf);
}

/* ------------------------------------------------------------------ promote */

static int h_promote(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "repo", V1_STRING, true },
                { "from", V1_STRING, false },
                { "to", V1_STRING, true },
                { "digest", V1_STRING, true },
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *repo = body_string(req, "repo"), *from_s = body_string(req, "from"), *to_s = body_string(req, "to"),
                   *digest = body_string(req, "digest");
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "digest: \"%s\" is not a valid digest", digest);
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo_to_svc(g, repo, &svc, &app) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        ChannelRef from, to, expect;
        _cleanup_free_ char *chain = chain_text(g);
        if (channel_ref_parse(g, from_s, &from) < 0 || channel_ref_step(g, &from) < 0)
                return v1_error(resp, 400, "INVALID", NULL, "from: \"%s\" is not a step of the release chain %s", strempty(from_s),
                                strna(chain));
        if (channel_ref_parse(g, to_s, &to) < 0 || to.source || channel_ref_step(g, &to) < 0)
                return v1_error(resp, 400, "INVALID", NULL, "to: \"%s\" is not a step of the release chain %s", to_s, strna(chain));
        char fromname[64], toname[64], expname[64];
        channel_ref_format(&from, fromname, sizeof(fromname));
        channel_ref_format(&to, toname, sizeof(toname));
        if (channel_ref_next(g, &from, &expect) < 0)
                return v1_error(resp, 400, "INVALID", NULL, "%s is the end of the release chain %s", fromname, strna(chain));
        channel_ref_format(&expect, expname, sizeof(expname));
        if (!streq(expname, toname))
                return v1_error(resp, 400, "INVALID", NULL,
                                "promotion goes one step at a time along %s: the step after %s is %s, not %s", strna(chain),
                                fromname, expname, toname);

        _cleanup_free_ char *chan = channel_repo_name(to.env, svc);
        _cleanup_free_ char *target = strdup_printf("%s:%s", strna(chan), to.pointer);
        pthread_mutex_lock(&g->move_lock);
        int r;
        char cur[DIGEST_MAX_LEN] = "";
        if (from.source) {
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                r = store_manifest_get(g->store, app, digest, &m);
                if (r < 0) {
                        pthread_mutex_unlock(&g->move_lock);
                        return v1_error(resp, 409, "NOT_AT_SOURCE", NULL, "%s is not a manifest of %s", digest, app);
                }
        } else {
                r = channel_get(g, svc, &from, cur);
                if (r < 0 || !streq(cur, digest)) {
                        pthread_mutex_unlock(&g->move_lock);
                        json_t *d = json_pack("{s:s, s:o}", "from", fromname, "current", cur[0] ? json_string(cur) : json_null());
                        return v1_error(resp, 409, "NOT_AT_SOURCE", d, "%s is not at %s of %s (it points at %s)", digest,
                                        fromname, svc, cur[0] ? cur : "nothing");
                }
        }

        char at_to[DIGEST_MAX_LEN] = "";
        if (channel_get(g, svc, &to, at_to) >= 0 && streq(at_to, digest)) {
                pthread_mutex_unlock(&g->move_lock);
                resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "repo", app, "svc", svc, "from", fromname,
                                       "to", toname, "digest", digest, "changed", false, "state", channels_state(g, svc));
                return 0;
        }

        GateReport rep = { 0 };
        int failed = gov_check_gates(g, app, svc, &from, &to, digest, &rep);
        if (failed > 0) {
                pthread_mutex_unlock(&g->move_lock);
                char msg[2048];
                size_t l = 0;
                size_t i;
                json_t *f;
                bool block_failed = false;
                json_array_foreach(rep.failed, i, f) {
                        const char *gate = json_string_value(json_object_get(f, "gate"));
                        block_failed |= streq_ptr(gate, "not_blocked");
                        if (l < sizeof(msg))
                                l += (size_t) snprintf(msg + l, sizeof(msg) - l, "%s%s: %s", i ? "; " : "", strna(gate),
                                                       strna(json_string_value(json_object_get(f, "reason"))));
                }
                if (block_failed)
                        gov_cve_block_event(g, "promote_denied");
                json_t *ad = json_pack("{s:s, s:s, s:s, s:O}", "digest", digest, "from", fromname, "to", toname, "failed",
                                       rep.failed);
                (void) store_audit(g->store, req->actor, "promote", strna(target), "refused", ad);
                json_decref(ad);
                json_t *d = json_pack("{s:s, s:s, s:s, s:O, s:O}", "digest", digest, "from", fromname, "to", toname,
                                      "failed_gates", rep.failed, "passed_gates", rep.passed);
                gate_report_done(&rep);
                return v1_error(resp, 412, "GATES_FAILED", d, "promotion of %s to %s of %s refused: %s", digest, toname, svc, msg);
        }

        json_t *extra = json_pack("{s:s, s:O}", "from", fromname, "gates_passed", rep.passed);
        double latency = NAN;
        if (channel_ref_step(g, &to) == (int) g->n_envs + 1) {
                /* the end of the chain: promotion latency from the first push of the digest */
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                if (store_manifest_get(g->store, app, digest, &m) >= 0 && m->pushed > 0) {
                        latency = (double) (clock_now_ns() - m->pushed) / 1e9;
                        json_object_set_new(extra, "first_pushed", json_time(m->pushed));
                        json_object_set_new(extra, "latency_s", json_real(latency));
                }
        }
        json_t *entry = NULL;
        r = channel_move(g, svc, app, &to, digest, req->actor, "promote", extra, 0, &entry);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (r < 0) {
                gate_report_done(&rep);
                json_t *ad = json_pack("{s:s, s:s}", "digest", digest, "error", strerror(-r));
                (void) store_audit(g->store, req->actor, "promote", strna(target), "error", ad);
                json_decref(ad);
                return v1_error_errno(resp, r, "INTERNAL", "moving %s to %s failed", strna(target), digest);
        }
        char labels[96];
        snprintf(labels, sizeof(labels), "to=\"%s\"", toname);
        metrics_counter_add(M_PROMOTIONS, labels, 1);
        if (!isnan(latency))
                metrics_histogram_observe(M_PROMOTION_LATENCY, NULL, latency);
        resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:b, s:O, s:o, s:o}", "repo", app, "svc", svc, "from",
                               fromname, "to", toname, "digest", digest, "reference", strna(target), "previous",
                               json_object_get(entry, "previous"), "changed", true, "gates_passed", rep.passed, "entry",
                               entry, "state", channels_state(g, svc));
        gate_report_done(&rep);
        return 0;
}

/* ------------------------------------------------------------------ rollback */

static int h_rollback(Registry *reg, const V1Request *req, V1Response *resp) {
        uint64_t t0 = clock_monotonic_ns();
        static const V1Field fields[] = {
                { "repo", V1_STRING, true },
                { "to", V1_STRING, true }, /* "prod:stable" or "prod:stable@sha256:..." */
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *repo = body_string(req, "repo"), *to_s = body_string(req, "to");
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo_to_svc(g, repo, &svc, &app) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        _cleanup_free_ char *to_copy = strdup(to_s);
        if (!to_copy)
                return -ENOMEM;
        char *at = strchr(to_copy, '@');
        const char *named = NULL;
        if (at) {
                *at = 0;
                named = at + 1;
                DigestAlgorithm a;
                if (digest_parse(named, &a) < 0)
                        return v1_error(resp, 400, "DIGEST_INVALID", NULL, "to: \"%s\" is not a valid digest", named);
        }
        ChannelRef to;
        if (channel_ref_parse(g, to_copy, &to) < 0 || to.source)
                return v1_error(resp, 400, "INVALID", NULL, "to: \"%s\" is not a channel pointer (like prod:stable)", to_copy);
        char toname[64];
        channel_ref_format(&to, toname, sizeof(toname));
        _cleanup_free_ char *chan = channel_repo_name(to.env, svc);
        _cleanup_free_ char *target = strdup_printf("%s:%s", strna(chan), to.pointer);

        pthread_mutex_lock(&g->move_lock);
        char cur[DIGEST_MAX_LEN];
        int r = channel_get(g, svc, &to, cur);
        if (r < 0) {
                pthread_mutex_unlock(&g->move_lock);
                return v1_error(resp, 409, "NOTHING_TO_ROLL_BACK", NULL, "%s of %s is not set", toname, svc);
        }
        json_t *hist = channel_history_digests(g, svc, &to); /* borrowed, under move_lock */
        if (!hist) {
                pthread_mutex_unlock(&g->move_lock);
                return v1_error(resp, 500, "INTERNAL", NULL, "reading the history of %s", strna(target));
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
                        return v1_error(resp, 409, "NOT_IN_HISTORY", NULL, "%s was never at %s of %s; rollback only goes to a digest from its history",
                                        named, toname, svc);
                }
                if (streq(dest, cur)) {
                        pthread_mutex_unlock(&g->move_lock);
                        return v1_error(resp, 409, "ALREADY_CURRENT", NULL, "%s of %s already points at %s", toname, svc, cur);
                }
        } else {
                for (size_t i = json_array_size(hist); i > 0 && !dest; i--) {
                        const char *d = json_string_value(json_array_get(json_array_get(hist, i - 1), 0));
                        if (d && !streq(d, cur))
                                dest = d;
                }
                if (!dest) {
                        pthread_mutex_unlock(&g->move_lock);
                        return v1_error(resp, 409, "NOTHING_TO_ROLL_BACK", NULL, "%s of %s has no previous digest in its history", toname, svc);
                }
        }
        char reason[512];
        if (gov_check_blocked_closure(g, dest, reason, sizeof(reason), NULL) < 0) {
                pthread_mutex_unlock(&g->move_lock);
                gov_cve_block_event(g, "promote_denied");
                json_t *ad = json_pack("{s:s, s:s}", "digest", dest, "reason", reason);
                (void) store_audit(g->store, req->actor, "rollback", strna(target), "refused", ad);
                json_decref(ad);
                return v1_error(resp, 412, "GATES_FAILED", NULL, "rollback of %s to %s refused: not_blocked: %s", strna(target),
                                dest, reason);
        }
        char destbuf[DIGEST_MAX_LEN];
        snprintf(destbuf, sizeof(destbuf), "%s", dest);
        json_t *extra = json_pack("{s:s, s:s}", "from", toname, "rolled_back_from", cur);
        json_t *entry = NULL;
        r = channel_move(g, svc, app, &to, destbuf, req->actor, "rollback", extra, t0, &entry);
        json_decref(extra);
        pthread_mutex_unlock(&g->move_lock);
        if (r < 0) {
                json_t *ad = json_pack("{s:s, s:s}", "digest", destbuf, "error", strerror(-r));
                (void) store_audit(g->store, req->actor, "rollback", strna(target), "error", ad);
                json_decref(ad);
                return v1_error_errno(resp, r, "INTERNAL", "rollback of %s failed", strna(target));
        }
        double secs = (double) (clock_monotonic_ns() - t0) / 1e9;
        metrics_histogram_observe(M_ROLLBACK_TIME, NULL, secs);
        metrics_counter_add(M_ROLLBACKS, NULL, 1);
        resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:o, s:o}", "repo", app, "svc", svc, "to", toname,
                               "reference", strna(target), "digest", destbuf, "previous", cur, "duration_ms", secs * 1e3,
                               "entry", entry, "state", channels_state(g, svc));
        return 0;
}

/* ------------------------------------------------------------------ block list */

/* Trivy's and Grype's severities, any case */
static bool severity_is_known(const char *s) {
        static const char *const known[] = { "critical", "high", "medium", "low", "negligible", "unknown" };
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (strcasecmp(s, known[i]) == 0)
                        return true;
        return false;
}

/* The optional members of a block beside digest, reason and cves: severity (one of the known
 * names), counts {severity: count >= 0} and source {format?, report?} as plura reg block
 * --import sends them. */
static int block_extras_check(const V1Request *req, V1Response *resp) {
        const char *sev = body_string(req, "severity");
        if (sev && !severity_is_known(sev))
                return v1_error(resp, 400, "INVALID", NULL,
                                "severity: expected critical, high, medium, low, negligible or unknown, got \"%s\"", sev);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(req->body, "counts"), k, v) {
                if (!severity_is_known(k))
                        return v1_error(resp, 400, "INVALID", NULL,
                                        "counts.%s: unknown severity (known: critical, high, medium, low, negligible, unknown)", k);
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return v1_error(resp, 400, "INVALID", NULL, "counts.%s: expected a count (an integer >= 0)", k);
        }
        json_object_foreach(json_object_get(req->body, "source"), k, v) {
                if (!streq(k, "format") && !streq(k, "report"))
                        return v1_error(resp, 400, "INVALID", NULL, "source.%s: unknown field (known: format, report)", k);
                if (!json_is_string(v))
                        return v1_error(resp, 400, "INVALID", NULL, "source.%s: expected a string", k);
        }
        return 1;
}

static int h_block(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "digest", V1_STRING, true },
                { "reason", V1_STRING, true },
                { "cves", V1_STRING_ARRAY, false },
                { "severity", V1_STRING, false },
                { "counts", V1_OBJECT, false },
                { "source", V1_OBJECT, false },
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)) || block_extras_check(req, resp) <= 0)
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *digest = body_string(req, "digest"), *reason = body_string(req, "reason");
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "digest: \"%s\" is not a valid digest", digest);
        if (!*reason)
                return v1_error(resp, 400, "INVALID", NULL, "reason: a block needs a reason");
        json_t *cves = json_object_get(req->body, "cves"), *src = json_object_get(req->body, "source");
        _cleanup_free_ const char **cvev = calloc(json_array_size(cves) + 1, sizeof(char *));
        if (!cvev)
                return -ENOMEM;
        size_t i;
        json_t *c;
        json_array_foreach(cves, i, c)
                cvev[i] = json_string_value(c);
        BlockInfo b = {
                .reason = (char *) reason,
                .cves = (char **) cvev,
                .severity = (char *) body_string(req, "severity"),
                .source_format = (char *) json_string_value(json_object_get(src, "format")),
                .source_report = (char *) json_string_value(json_object_get(src, "report")),
                .counts = json_object_get(req->body, "counts"),
                .time = clock_now_ns(),
                .actor = (char *) (req->actor ? req->actor : "anonymous"),
        };
        snprintf(b.digest, sizeof b.digest, "%s", digest);
        bool existed = gov_is_blocked(g, digest, NULL);
        json_t *rec = NULL;
        int r = gov_block(g, &b, &rec);
        if (r < 0)
                return v1_error_errno(resp, r, "INTERNAL", "storing the block");
        gov_cve_block_event(g, "block");
        (void) store_audit(g->store, req->actor, "block", digest, "ok", rec);
        resp->status = existed ? 200 : 201;
        json_object_set_new(rec, "digest", json_string(digest));
        json_object_set_new(rec, "blocked", json_true());
        resp->body = rec;
        return 0;
}

static int h_unblock(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = { { "digest", V1_STRING, false } };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *digest = startswith(req->path, "block/");
        if (!digest || !*digest)
                digest = body_string(req, "digest");
        if (!digest)
                return v1_error(resp, 400, "INVALID", NULL,
                                "digest: missing (expected DELETE /v1/registry/block/<digest> or a body {digest})");
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return v1_error(resp, 400, "DIGEST_INVALID", NULL, "digest: \"%s\" is not a valid digest", digest);
        json_t *old = NULL;
        int r = gov_unblock(g, digest, &old);
        if (r == -ENOENT)
                return v1_error(resp, 404, "NOT_BLOCKED", NULL, "%s is not blocked", digest);
        if (r < 0)
                return v1_error_errno(resp, r, "INTERNAL", "removing the block");
        json_t *d = json_pack("{s:O}", "was", old);
        (void) store_audit(g->store, req->actor, "unblock", digest, "ok", d);
        json_decref(d);
        resp->body = json_pack("{s:s, s:b, s:o}", "digest", digest, "blocked", false, "was", old);
        return 0;
}

static int h_block_get(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, NULL, NULL, 0))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *digest = startswith(req->path, "block/");
        if (!digest || !*digest) {
                resp->body = json_pack("{s:o}", "blocked", gov_block_list(g));
                return 0;
        }
        json_t *info = NULL;
        if (!gov_is_blocked(g, digest, &info))
                return v1_error(resp, 404, "NOT_BLOCKED", NULL, "%s is not blocked", digest);
        json_object_set_new(info, "digest", json_string(digest));
        json_object_set_new(info, "blocked", json_true());
        resp->body = info;
        return 0;
}

/* ------------------------------------------------------------------ history */

static int tag_history_collect(void *userdata, const TagHistoryEntry *e) {
        json_t *tags = userdata;
        json_t *arr = json_object_get(tags, e->tag);
        if (!arr) {
                arr = json_array();
                json_object_set_new(tags, e->tag, arr);
        }
        json_array_append_new(arr, json_pack("{s:s?, s:I, s:s?, s:s?, s:I}", "digest", e->digest, "time", (json_int_t) e->time,
                                             "actor", e->actor, "action", e->action, "seq", (json_int_t) e->seq));
        return 0;
}

static int h_history(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, QUERY("repo", "tag"), NULL, 0))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *repo = v1_request_query(req, "repo");
        const char *tag = v1_request_query(req, "tag");
        if (tag && !*tag)
                tag = NULL;
        if (!repo)
                return v1_error(resp, 400, "INVALID", NULL, "repo: missing (expected ?repo=NAME[&tag=TAG])");
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo_to_svc(g, repo, &svc, &app) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);

        json_t *tags = json_object();
        int r = store_tag_history_foreach(g->store, NULL, repo, tag, tag_history_collect, tags);
        if (r < 0) {
                json_decref(tags);
                return v1_error(resp, 500, "INTERNAL", NULL, "reading tag history: %s", strerror(-r));
        }

        ChannelRef only;
        bool filter = tag && channel_ref_parse(g, tag, &only) >= 0 && !only.source;
        if (tag && !filter && (streq(tag, CHANNEL_STABLE) || streq(tag, CHANNEL_CANDIDATE)) && startswith(repo, "channels/")) {
                /* channels/<env>/<svc>?tag=stable */
                const char *rest = repo + strlen("channels/");
                const char *slash = strchr(rest, '/');
                if (slash && (size_t) (slash - rest) < sizeof(only.env)) {
                        memset(&only, 0, sizeof(only));
                        memcpy(only.env, rest, (size_t) (slash - rest));
                        snprintf(only.pointer, sizeof(only.pointer), "%s", tag);
                        filter = true;
                }
        }
        json_t *channels = json_object();
        for (size_t i = 0; i < g->n_envs; i++) {
                const char *ptrs[] = { CHANNEL_CANDIDATE, CHANNEL_STABLE };
                for (size_t j = 0; j < ELEMENTSOF(ptrs); j++) {
                        ChannelRef cr = { 0 };
                        snprintf(cr.env, sizeof(cr.env), "%s", g->envs[i]);
                        snprintf(cr.pointer, sizeof(cr.pointer), "%s", ptrs[j]);
                        if (filter && (!streq(only.env, cr.env) || !streq(only.pointer, cr.pointer)))
                                continue;
                        json_t *h = NULL;
                        if (channel_history(g, svc, &cr, &h) < 0)
                                continue;
                        if (json_array_size(h) == 0) {
                                json_decref(h);
                                continue;
                        }
                        char name[64], d[DIGEST_MAX_LEN];
                        channel_ref_format(&cr, name, sizeof(name));
                        json_t *o = json_pack("{s:o, s:o}", "current",
                                              channel_get(g, svc, &cr, d) >= 0 ? json_string(d) : json_null(), "history", h);
                        json_object_set_new(channels, name, o);
                }
        }
        resp->body = json_pack("{s:s, s:s, s:o, s:o}", "repo", repo, "svc", svc, "tags", tags, "channels", channels);
        if (tag)
                json_object_set_new(resp->body, "tag", json_string(tag));
        return 0;
}

static int h_channels(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, QUERY("repo"), NULL, 0))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *repo = v1_request_query(req, "repo");
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (!repo)
                return v1_error(resp, 400, "INVALID", NULL, "repo: missing (expected ?repo=NAME)");
        if (repo_to_svc(g, repo, &svc, &app) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        resp->body = json_pack("{s:s, s:s, s:o}", "repo", app, "svc", svc, "state", channels_state(g, svc));
        return 0;
}

/* ------------------------------------------------------------------ audit */

static int audit_collect(void *userdata, const AuditEvent *e) {
        json_t *events = userdata;
        json_t *copy = json_deep_copy(e->record);
        if (!copy)
                return -ENOMEM;
        json_object_set_new(copy, "cursor", json_string(e->cursor));
        json_array_append_new(events, copy);
        return 0;
}

static int h_audit(Registry *reg, const V1Request *req, V1Response *resp) {
        uint64_t limit = 100;
        if (!input_valid(req, resp, QUERY("limit", "cursor", "action", "target", "actor"), NULL, 0) ||
            !v1_query_uint(req, resp, "INVALID", "limit", 1, 10000, &limit))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        AuditQuery q = {
                .limit = limit,
                .action = v1_request_query(req, "action"),
                .target = v1_request_query(req, "target"),
                .actor = v1_request_query(req, "actor"),
                .after = v1_request_query(req, "cursor"),
        };
        json_t *events = json_array();
        int r = store_audit_foreach(g->store, &q, audit_collect, events);
        if (r == -EINVAL) {
                json_decref(events);
                return v1_error(resp, 400, "INVALID", NULL, "cursor: expected the hex cursor of a previous page");
        }
        if (r < 0) {
                json_decref(events);
                return v1_error(resp, 500, "INTERNAL", NULL, "reading the audit log: %s", strerror(-r));
        }
        size_t n = json_array_size(events);
        json_t *last = n > 0 ? json_object_get(json_array_get(events, n - 1), "cursor") : NULL;
        json_t *next = r > 0 && last ? json_incref(last) : json_null();
        resp->body = json_pack("{s:o, s:o, s:I}", "events", events, "next_cursor", next, "count", (json_int_t) n);
        return 0;
}

/* ------------------------------------------------------------------ metrics */

/* digest -> the channel repository that has it at a pointer */
static int channel_tags_collect(void *userdata, const char *env, const char *svc, const char *tag, const TagInfo *ti) {
        json_t *digests = userdata;
        if (!streq(tag, CHANNEL_STABLE) && !streq(tag, CHANNEL_CANDIDATE))
                return 0;
        if (json_object_get(digests, ti->digest))
                return 0;
        _cleanup_free_ char *repo = channel_repo_name(env, svc);
        if (!repo)
                return -ENOMEM;
        json_object_set_new(digests, ti->digest, json_string(repo));
        return 0;
}

typedef struct HistStatsCtx {
        Governance *g;
        double *lat;
        size_t n_lat, cap_lat;
        double *rb;
        size_t n_rb, cap_rb;
} HistStatsCtx;

static void push_value(double **arr, size_t *n, size_t *cap, double v) {
        if (*n >= *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                double *na = realloc(*arr, nc * sizeof(double));
                if (!na)
                        return;
                *arr = na;
                *cap = nc;
        }
        (*arr)[(*n)++] = v;
}

static int hist_stats_collect(void *userdata, const ChannelHistoryEntry *e) {
        HistStatsCtx *c = userdata;
        const char *action = e->action;
        json_t *lat = json_object_get(e->record, "latency_s");
        json_t *dur = json_object_get(e->record, "duration_ms");
        if (streq_ptr(action, "promote") && json_is_number(lat))
                push_value(&c->lat, &c->n_lat, &c->cap_lat, json_number_value(lat));
        if (streq_ptr(action, "rollback") && json_is_number(dur))
                push_value(&c->rb, &c->n_rb, &c->cap_rb, json_number_value(dur) / 1e3);
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static json_t *distribution(double *v, size_t n) {
        if (n == 0)
                return json_pack("{s:i, s:n, s:n, s:n}", "count", 0, "p50_seconds", "p95_seconds", "max_seconds");
        qsort(v, n, sizeof(double), cmp_double);
        /* nearest rank */
        size_t i95 = (size_t) ceil(0.95 * (double) n);
        size_t i50 = (size_t) ceil(0.50 * (double) n);
        return json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t) n, "p50_seconds", v[i50 ? i50 - 1 : 0],
                         "p95_seconds", v[i95 ? i95 - 1 : 0], "max_seconds", v[n - 1]);
}

int gov_compute_metrics(Governance *g, const char *repo, json_t **ret) {
        _cleanup_free_ char *svc = NULL, *app = NULL;
        if (repo && repo_to_svc(g, repo, &svc, &app) < 0)
                return -EINVAL;
        Store *s = g->store;
        json_t *out = json_object();
        if (repo)
                json_object_set_new(out, "repo", json_string(app));

        /* images currently at the channel pointers of each env */
        json_t *by_env = json_object();
        _cleanup_(json_decrefp) json_t *all = json_object();
        for (size_t i = 0; i < g->n_envs; i++) {
                _cleanup_(json_decrefp) json_t *digests = json_object();
                if (!digests)
                        continue;
                (void) store_channel_tags_foreach(s, NULL, g->envs[i], svc, channel_tags_collect, digests);
                json_object_set_new(by_env, g->envs[i], json_integer((json_int_t) json_object_size(digests)));
                json_object_update_missing(all, digests);
        }
        json_object_set_new(out, "image_count_by_env", by_env);

        /* distinct manifests and the blob bytes on disk: registry-wide or what the repository links */
        StoreStats st = {};
        (void) store_stats(s, NULL, app, &st);
        json_object_set_new(out, "digest_unique", json_integer((json_int_t) st.manifests));
        json_object_set_new(out, "registry_storage_bytes", json_integer((json_int_t) st.blob_stored_bytes));

        /* promotion latency and rollback time, from channel history (survives restarts) */
        HistStatsCtx hc = { .g = g };
        if (svc)
                for (size_t i = 0; i < g->n_envs; i++)
                        (void) store_channel_history_foreach(s, NULL, g->envs[i], svc, NULL, hist_stats_collect, &hc);
        else
                (void) store_channel_history_foreach(s, NULL, NULL, NULL, NULL, hist_stats_collect, &hc);
        json_object_set_new(out, "promotion_latency", distribution(hc.lat, hc.n_lat));
        json_object_set_new(out, "rollback_time", distribution(hc.rb, hc.n_rb));
        free(hc.lat);
        free(hc.rb);

        /* block events */
        size_t nk;
        const char *const *kinds = gov_cve_event_kinds(&nk);
        json_t *ev = json_object();
        uint64_t total = 0;
        for (size_t i = 0; i < nk; i++) {
                char name[64];
                snprintf(name, sizeof(name), "cve_block_events/%s", kinds[i]);
                uint64_t v = gov_counter_get(g, name);
                total += v;
                json_object_set_new(ev, kinds[i], json_integer((json_int_t) v));
        }
        json_object_set_new(out, "cve_block_events", json_integer((json_int_t) total));
        json_object_set_new(out, "cve_block_events_by_kind", ev);
        json_object_set_new(out, "blocked_digests", json_integer((json_int_t) g->n_blocked));

        /* coverage over the digests currently in channels */
        size_t with_sbom = 0, signed_ok = 0, in_channels = json_object_size(all);
        const char *d;
        json_t *chv;
        json_object_foreach(all, d, chv) {
                _cleanup_free_ char *csvc = NULL, *capp = NULL;
                if (repo_to_svc(g, json_string_value(chv), &csvc, &capp) < 0)
                        continue;
                /* the application repository: apps/<svc>, or <svc> for repos outside apps/ */
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                const char *src = capp;
                if (store_manifest_get(s, capp, d, &m) < 0)
                        src = csvc;
                if (gov_has_sbom(g, src, d))
                        with_sbom++;
                bool ok = false;
                if (gov_signature_check(g, src, d, &ok, NULL) > 0 && ok)
                        signed_ok++;
        }
        json_object_set_new(out, "digests_in_channels", json_integer((json_int_t) in_channels));
        json_object_set_new(out, "sbom_coverage", in_channels ? json_real((double) with_sbom / (double) in_channels) : json_null());
        json_object_set_new(out, "signed_artifacts",
                            in_channels ? json_real((double) signed_ok / (double) in_channels) : json_null());
        *ret = out;
        return 0;
}

static int h_metrics(Registry *reg, const V1Request *req, V1Response *resp) {
        if (!input_valid(req, resp, QUERY("repo"), NULL, 0))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        const char *repo = v1_request_query(req, "repo");
        if (repo && !*repo)
                repo = NULL;
        json_t *m = NULL;
        int r = gov_compute_metrics(g, repo, &m);
        if (r == -EINVAL)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL", NULL, "computing metrics: %s", strerror(-r));
        /* the live histograms (since start) next to the persistent ones */
        double p95 = metrics_histogram_quantile(M_ROLLBACK_TIME, NULL, 0.95);
        json_object_set_new(m, "rollback_time_p95_seconds_live", isnan(p95) ? json_null() : json_real(p95));
        resp->body = m;
        return 0;
}

/* ------------------------------------------------------------------ Prometheus */

static pthread_mutex_t collector_lock = PTHREAD_MUTEX_INITIALIZER;
static Governance *collector_gov = NULL;
static bool collector_added = false;
static bool histograms_seeded = false;

static void collect(void *userdata) {
        pthread_mutex_lock(&collector_lock);
        Governance *g = collector_gov;
        if (!g) {
                pthread_mutex_unlock(&collector_lock);
                return;
        }
        int64_t now = clock_now_ns();
        json_t *m = NULL;
        if (g->cache_metrics && now - g->cache_time < 10 * (int64_t) NSEC_PER_SEC && now >= g->cache_time)
                m = json_incref(g->cache_metrics);
        else if (gov_compute_metrics(g, NULL, &m) >= 0) {
                json_decref(g->cache_metrics);
                g->cache_metrics = json_incref(m);
                g->cache_time = now;
        }
        if (m) {
                const char *env;
                json_t *v;
                json_object_foreach(json_object_get(m, "image_count_by_env"), env, v) {
                        char labels[96];
                        snprintf(labels, sizeof(labels), "env=\"%s\"", env);
                        metrics_gauge_set(M_IMAGE_COUNT, labels, (double) json_integer_value(v));
                }
                /* digest_unique: gc/gc.c exports plura_digest_unique{kind="blob"|"manifest"} */
                metrics_gauge_set(M_STORAGE_BYTES, NULL,
                                  (double) json_integer_value(json_object_get(m, "registry_storage_bytes")));
                json_t *sb = json_object_get(m, "sbom_coverage"), *sg = json_object_get(m, "signed_artifacts");
                if (json_is_number(sb))
                        metrics_gauge_set(M_SBOM_COVERAGE, NULL, json_number_value(sb));
                if (json_is_number(sg))
                        metrics_gauge_set(M_SIGNED_ARTIFACTS, NULL, json_number_value(sg));
                json_decref(m);
        }
        pthread_mutex_unlock(&collector_lock);
}

static int seed_histograms(void *userdata, const ChannelHistoryEntry *e) {
        const char *action = e->action;
        json_t *lat = json_object_get(e->record, "latency_s"), *dur = json_object_get(e->record, "duration_ms");
        if (streq_ptr(action, "promote") && json_is_number(lat))
                metrics_histogram_observe(M_PROMOTION_LATENCY, NULL, json_number_value(lat));
        if (streq_ptr(action, "rollback") && json_is_number(dur))
                metrics_histogram_observe(M_ROLLBACK_TIME, NULL, json_number_value(dur) / 1e3);
        return 0;
}

void gov_metrics_init(Governance *g) {
        static const double latency_buckets[] = { 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800 };
        metrics_declare(M_IMAGE_COUNT, METRIC_GAUGE, "Images (distinct digests) at the channel pointers of each environment", NULL, 0);
        metrics_declare(M_STORAGE_BYTES, METRIC_GAUGE, "Bytes of blob storage on disk", NULL, 0);
        metrics_declare(M_PROMOTION_LATENCY, METRIC_HISTOGRAM, "Seconds from the first push of a digest to the end of the release chain (prod:stable)",
                        latency_buckets, ELEMENTSOF(latency_buckets));
        metrics_declare(M_ROLLBACK_TIME, METRIC_HISTOGRAM, "Seconds a rollback takes, request to pointer moved", NULL, 0);
        metrics_declare(M_CVE_BLOCK_EVENTS, METRIC_COUNTER, "Block list events: blocks, denied pulls, denied promotions", NULL, 0);
        metrics_declare(M_SBOM_COVERAGE, METRIC_GAUGE, "Share of digests in channels with an SBOM referrer", NULL, 0);
        metrics_declare(M_SIGNED_ARTIFACTS, METRIC_GAUGE, "Share of digests in channels with a signature that verifies", NULL, 0);
        metrics_declare(M_PROMOTIONS, METRIC_COUNTER, "Promotions by target", NULL, 0);
        metrics_declare(M_ROLLBACKS, METRIC_COUNTER, "Rollbacks", NULL, 0);
        metrics_declare(M_POLICY_REFUSALS, METRIC_COUNTER, "Tag writes refused by the tag policy", NULL, 0);

        pthread_mutex_lock(&collector_lock);
        collector_gov = g;
        bool seed = !histograms_seeded;
        histograms_seeded = true;
        if (!collector_added) {
                metrics_add_collector(collect, NULL);
                collector_added = true;
        }
        pthread_mutex_unlock(&collector_lock);

        if (g->store && seed) {
                (void) store_channel_history_foreach(g->store, NULL, NULL, NULL, NULL, seed_histograms, NULL);
                size_t nk;
                const char *const *kinds = gov_cve_event_kinds(&nk);
                for (size_t i = 0; i < nk; i++) {
                        char name[64], labels[64];
                        snprintf(name, sizeof(name), "cve_block_events/%s", kinds[i]);
                        snprintf(labels, sizeof(labels), "kind=\"%s\"", kinds[i]);
                        metrics_counter_add(M_CVE_BLOCK_EVENTS, labels, (double) gov_counter_get(g, name));
                }
        }
}

void gov_metrics_done(Governance *g) {
        pthread_mutex_lock(&collector_lock);
        if (collector_gov == g)
                collector_gov = NULL;
        pthread_mutex_unlock(&collector_lock);
}

/* ------------------------------------------------------------------ registration */

void v1_governance_register(Registry *r) {
        registry_v1_register(r, "POST", "promote", (V1Access) { "promote", V1_REPO_BODY }, h_promote);
        registry_v1_register(r, "POST", "rollback", (V1Access) { "rollback", V1_REPO_BODY }, h_rollback);
        registry_v1_register(r, "POST", "block", (V1Access) { "block", V1_REPO_NONE }, h_block);
        registry_v1_register(r, "DELETE", "block", (V1Access) { "unblock", V1_REPO_NONE }, h_unblock);
        registry_v1_register(r, "GET", "block", (V1Access) { "audit", V1_REPO_NONE }, h_block_get);
        registry_v1_register(r, "GET", "history", (V1Access) { "pull", V1_REPO_QUERY }, h_history);
        registry_v1_register(r, "GET", "channels", (V1Access) { "pull", V1_REPO_QUERY }, h_channels);
        registry_v1_register(r, "GET", "audit", (V1Access) { "audit", V1_REPO_QUERY }, h_audit);
        registry_v1_register(r, "GET", "metrics", (V1Access) { "metrics", V1_REPO_QUERY }, h_metrics);
}
