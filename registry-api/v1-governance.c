/* SPDX-License-Identifier: MIT */
/* /v1/registry/ governance API: promote, rollback, block/unblock, history, audit, channels,
 * metrics. Each handler checks its input, calls governance/ (or a storage verb) and formats the
 * answer; the use cases themselves are governance's. */

#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "governance/governance.h"
#include "registry-api/server-internal.h"
#include "registry-api/v1-input.h"
#include "storage/governance-records.h"
#include "storage/records.h"

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
        *ret = registry_governance(r);
        if (!*ret)
                return v1_error(resp, 503, "UNAVAILABLE", NULL, "governance is not initialised");
        return 1;
}

/* A refused promotion or rollback: 400 for bad input, 409 for the state of the channel, 412 for
 * a gate, else what the failed store write means. */
static int move_error(V1Response *resp, GovernanceMove *m) {
        static const int status[_GOVERNANCE_OUTCOME_MAX] = {
                [GOVERNANCE_DIGEST_INVALID] = 400,       [GOVERNANCE_NAME_INVALID] = 400,
                [GOVERNANCE_STEP_INVALID] = 400,         [GOVERNANCE_NOT_AT_SOURCE] = 409,
                [GOVERNANCE_GATES_FAILED] = 412,         [GOVERNANCE_NOTHING_TO_ROLL_BACK] = 409,
                [GOVERNANCE_NOT_IN_HISTORY] = 409,       [GOVERNANCE_ALREADY_CURRENT] = 409,
        };
        if (m->outcome == GOVERNANCE_WRITE_FAILED || m->outcome <= GOVERNANCE_OK || m->outcome >= _GOVERNANCE_OUTCOME_MAX)
                return v1_error_errno(resp, m->error, "INTERNAL", "%s", m->message);
        json_t *d = m->detail;
        m->detail = NULL;
        return v1_error(resp, status[m->outcome], governance_outcome_to_string(m->outcome), d, "%s", m->message);
}

/* ------------------------------------------------------------------ promote, rollback */

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
        _cleanup_(governance_move_done) GovernanceMove m = {};
        int r = governance_promote(g, body_string(req, "repo"), body_string(req, "from"), body_string(req, "to"),
                                   body_string(req, "digest"), req->actor, &m);
        if (r < 0)
                return move_error(resp, &m);
        if (!m.changed)
                resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "repo", m.app_repo, "svc", m.svc, "from",
                                       m.from, "to", m.to, "digest", m.digest, "changed", false, "state",
                                       governance_channels_state(g, m.svc));
        else
                resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:b, s:O, s:O, s:o}", "repo", m.app_repo, "svc",
                                       m.svc, "from", m.from, "to", m.to, "digest", m.digest, "reference", m.reference,
                                       "previous", json_object_get(m.entry, "previous"), "changed", true, "gates_passed",
                                       m.gates.passed, "entry", m.entry, "state", governance_channels_state(g, m.svc));
        return 0;
}

static int h_rollback(Registry *reg, const V1Request *req, V1Response *resp) {
        static const V1Field fields[] = {
                { "repo", V1_STRING, true },
                { "to", V1_STRING, true }, /* "prod:stable" or "prod:stable@sha256:..." */
        };
        if (!input_valid(req, resp, NULL, fields, ELEMENTSOF(fields)))
                return 0;
        Governance *g;
        if (need_governance(reg, resp, &g) <= 0)
                return 0;
        _cleanup_(governance_move_done) GovernanceMove m = {};
        int r = governance_rollback(g, body_string(req, "repo"), body_string(req, "to"), req->actor, &m);
        if (r < 0)
                return move_error(resp, &m);
        resp->body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:O, s:o}", "repo", m.app_repo, "svc", m.svc, "to",
                               m.to, "reference", m.reference, "digest", m.digest, "previous", m.previous, "duration_ms",
                               m.duration_ms, "entry", m.entry, "state", governance_channels_state(g, m.svc));
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
        /* borrowed from the request: governance copies what it keeps */
        BlockInfo b = {
                .reason = (char *) reason,
                .cves = (char **) cvev,
                .severity = (char *) body_string(req, "severity"),
                .source_format = (char *) json_string_value(json_object_get(src, "format")),
                .source_report = (char *) json_string_value(json_object_get(src, "report")),
                .counts = json_object_get(req->body, "counts"),
        };
        snprintf(b.digest, sizeof b.digest, "%s", digest);
        json_t *rec = NULL;
        int r = governance_block(g, &b, req->actor, &rec);
        if (r < 0)
                return v1_error_errno(resp, r, "INTERNAL", "storing the block");
        resp->status = r > 0 ? 201 : 200;
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
        int r = governance_unblock(g, digest, req->actor, &old);
        if (r == -ENOENT)
                return v1_error(resp, 404, "NOT_BLOCKED", NULL, "%s is not blocked", digest);
        if (r < 0)
                return v1_error_errno(resp, r, "INTERNAL", "removing the block");
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
                resp->body = json_pack("{s:o}", "blocked", governance_block_list(g));
                return 0;
        }
        json_t *info = NULL;
        if (governance_block_get(g, digest, &info) < 0)
                return v1_error(resp, 404, "NOT_BLOCKED", NULL, "%s is not blocked", digest);
        json_object_set_new(info, "digest", json_string(digest));
        json_object_set_new(info, "blocked", json_true());
        resp->body = info;
        return 0;
}

/* ------------------------------------------------------------------ history, channels */

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
        _cleanup_free_ char *svc = NULL;
        if (governance_repo_svc(g, repo, &svc, NULL) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);

        _cleanup_(json_decrefp) json_t *tags = json_object();
        int r = store_tag_history_foreach(registry_store(reg), NULL, repo, tag, tag_history_collect, tags);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL", NULL, "reading tag history: %s", strerror(-r));
        json_t *channels = NULL;
        r = governance_channel_histories(g, repo, tag, &channels);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL", NULL, "reading channel history: %s", strerror(-r));
        resp->body = json_pack("{s:s, s:s, s:O, s:o}", "repo", repo, "svc", svc, "tags", tags, "channels", channels);
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
        if (governance_repo_svc(g, repo, &svc, &app) < 0)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        resp->body = json_pack("{s:s, s:s, s:o}", "repo", app, "svc", svc, "state", governance_channels_state(g, svc));
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
        _cleanup_(json_decrefp) json_t *events = json_array();
        int r = store_audit_foreach(registry_store(reg), &q, audit_collect, events);
        if (r == -EINVAL)
                return v1_error(resp, 400, "INVALID", NULL, "cursor: expected the hex cursor of a previous page");
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL", NULL, "reading the audit log: %s", strerror(-r));
        size_t n = json_array_size(events);
        json_t *last = n > 0 ? json_object_get(json_array_get(events, n - 1), "cursor") : NULL;
        json_t *next = r > 0 && last ? json_incref(last) : json_null();
        resp->body = json_pack("{s:O, s:o, s:I}", "events", events, "next_cursor", next, "count", (json_int_t) n);
        return 0;
}

/* ------------------------------------------------------------------ metrics */

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
        int r = governance_metrics(g, repo, &m);
        if (r == -EINVAL)
                return v1_error(resp, 400, "NAME_INVALID", NULL, "repo: \"%s\" is not a valid repository name", repo);
        if (r < 0)
                return v1_error(resp, 500, "INTERNAL", NULL, "computing metrics: %s", strerror(-r));
        resp->body = m;
        return 0;
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
