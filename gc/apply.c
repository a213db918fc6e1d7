/* SPDX-License-Identifier: MIT */
/* The apply phase (real runs): the plan's tag and repository-link deletions through the store's
 * delete verbs, each re-checked against the live index first (a tag moved or pulled, or a
 * manifest re-tagged or pulled since the plan's snapshot is skipped). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parallel.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/records.h"

/* The deletions go through store_manifest_delete() with their WAL sync left to the end of the
 * phase; its threads overlap the index reads of the re-checks. Retention decided them: the /v2/
 * tag policy (e.g. read-only channels/) is not the GC's (STORE_WRITE_MAINTENANCE). */
#define GC_APPLY_THREADS 32
#define APPLY_FLAGS (STORE_WRITE_MAINTENANCE | STORE_WRITE_NO_SYNC | STORE_WRITE_COLD)

typedef struct RepoTagScan {
        Run *run;
        uint32_t repo;
        const char *digest;
        bool foreign;  /* a tag on digest the plan does not delete */
} RepoTagScan;

static int tag_scan_cb(void *userdata, const char *repo, const char *tag, const TagInfo *t) {
        RepoTagScan *c = userdata;
        if (!streq(t->digest, c->digest))
                return 0;
        Plan *p = &c->run->p;
        size_t kl, idx;
        _cleanup_free_ char *k = plan_key(p->repos[c->repo].name, tag, &kl);
        if (!k)
                return -ENOMEM;
        if (!strmap_get(p->tag_index, k, kl, &idx) || !p->tags[idx].deleted || p->tags[idx].info.updated != t->updated ||
            p->tags[idx].info.last_pulled != t->last_pulled) {
                c->foreign = true;
                return 1;
        }
        return 0;
}

typedef struct NewLinks {
        Run *run;
        uint32_t repo;
} NewLinks;

static int new_links_cb(void *userdata, const char *repo, const char *digest, const RepoManifestInfo *info) {
        NewLinks *c = userdata;
        Run *r = c->run;
        if (plan_find_link(&r->p, c->repo, digest) != UINT32_MAX)
                return 0; /* known to the plan */
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (store_manifest_parsed(r->s, r->live, digest, &m) < 0)
                return 0;
        for (size_t i = 0; i < m->n_manifests; i++) {
                uint32_t li = plan_find_link(&r->p, c->repo, m->manifests[i].digest);
                if (li != UINT32_MAX && !r->p.links[li].live)
                        r->p.links[li].failed = true; /* skip it: a new index names it */
        }
        return 0;
}

static int protect_new_children(Run *r, uint32_t repo) {
        NewLinks c = { .run = r, .repo = repo };
        return store_repo_manifests_foreach(r->s, r->live, r->p.repos[repo].name, new_links_cb, &c);
}

typedef struct ApplyLinks {
        Run *r;
        const uint32_t *dead;
} ApplyLinks;

static int apply_link(void *userdata, size_t item) {
        ApplyLinks *a = userdata;
        Run *r = a->r;
        Plan *p = &r->p;
        PlanLink *l = &p->links[a->dead[item]];
        const char *repo = p->repos[l->repo].name;
        char digest[DIGEST_MAX_LEN];
        digest_table_name(r->g.digests, l->digest, digest);
        if (l->failed) {
                note_raced(r, "manifest", repo, digest, "referenced by a manifest pushed during GC");
                return 0;
        }
        run_test_delay(r); /* tests: a crash between unsynced deletions */
        /* re-check against the live index: re-tagged or pulled since the plan? */
        RepoTagScan sc = { .run = r, .repo = l->repo, .digest = digest };
        int q = store_tags_foreach(r->s, r->live, repo, tag_scan_cb, &sc);
        if (q < 0) {
                run_error(r, "scan tags", repo, q);
                l->failed = true;
                return 0;
        }
        if (sc.foreign) {
                note_raced(r, "manifest", repo, digest, "tagged during GC");
                l->failed = true;
                return 0;
        }
        RepoManifestInfo info;
        q = store_repo_manifest_info(r->s, r->live, repo, digest, &info);
        if (q == -ENOENT)
                return 0; /* deleted meanwhile */
        if (q < 0) {
                run_error(r, "read repository link", digest, q);
                l->failed = true;
                return 0;
        }
        if (info.last_pulled != l->last_pulled) {
                note_raced(r, "manifest", repo, digest, "pulled during GC");
                l->failed = true;
                return 0;
        }
        StoreError err = {};
        q = store_manifest_delete(r->s, repo, digest, r->actor, APPLY_FLAGS, &err);
        if (q < 0 && q != -ENOENT) {
                char target[600];
                snprintf(target, sizeof target, "%s@%s", repo, digest);
                run_error_msg(r, "delete manifest", target, *err.message ? err.message : strerror(-q));
                l->failed = true;
                return 0;
        }
        l->applied = true;
        return 0;
}

static bool run_cancelled(void *userdata) {
        return gc_cancelled(((ApplyLinks *) userdata)->r->gc);
}

int gc_apply(Run *r) {
        Plan *p = &r->p;
        /* 1. tags deleted while their manifest stays */
        for (size_t i = 0; i < p->n_tags; i++) {
                PlanTag *t = &p->tags[i];
                if (!t->deleted || t->link == UINT32_MAX || !p->links[t->link].live)
                        continue;
                const char *repo = p->repos[t->repo].name;
                TagInfo now;
                int q = store_tag_info(r->s, r->live, repo, t->name, &now);
                if (q == -ENOENT)
                        continue;
                if (q < 0) {
                        run_error(r, "read tag", t->name, q);
                        continue;
                }
                if (!streq(now.digest, t->info.digest) || now.updated != t->info.updated || now.last_pulled != t->info.last_pulled) {
                        note_raced(r, "tag", repo, t->name, "moved or pulled during GC");
                        continue;
                }
                StoreError err = {};
                q = store_tag_delete(r->s, repo, t->name, r->actor, APPLY_FLAGS, &err);
                if (q < 0 && q != -ENOENT) {
                        char target[512];
                        snprintf(target, sizeof target, "%s:%s", repo, t->name);
                        run_error_msg(r, "delete tag", target, *err.message ? err.message : strerror(-q));
                        continue;
                }
                t->applied = true;
        }
        /* 2. dead repository links (with their remaining tags and referrer records). A manifest
         * pushed since the plan may name a dead link as an index child: keep those. */
        uint32_t last_repo = UINT32_MAX;
        for (size_t i = 0; i < p->n_links; i++) {
                PlanLink *l = &p->links[i];
                if (l->live || l->repo == last_repo)
                        continue;
                last_repo = l->repo;
                int q = protect_new_children(r, l->repo);
                if (q < 0)
                        return q;
        }
        _cleanup_free_ uint32_t *dead = malloc(MAX(p->n_links, (size_t) 1) * sizeof(uint32_t));
        if (!dead)
                return -ENOMEM;
        size_t n_dead = 0;
        for (size_t i = 0; i < p->n_links; i++)
                if (!p->links[i].live)
                        dead[n_dead++] = (uint32_t) i;
        ApplyLinks a = { .r = r, .dead = dead };
        int q = parallel_for(n_dead, MIN(n_dead / 16 + 1, (size_t) GC_APPLY_THREADS), "plura-gc-work", apply_link,
                             run_cancelled, &a);
        /* The deletions above went to the WAL unsynced (one sync each made the apply phase
         * fsync-bound: 1.6 to 9 s for 10k links at 1M blobs). One sync makes them all durable
         * before the mark; a crash before it loses only deletions the next run redoes. */
        int k = store_sync_wal(r->s);
        if (k < 0)
                return log_error_errno(k, "gc: cannot sync the index after applying the plan: %m");
        if (q < 0)
                return q;
        for (size_t t = 0; t < p->n_tags; t++) /* tags of a deleted link went with it */
                if (p->tags[t].deleted && p->tags[t].link != UINT32_MAX && p->links[p->tags[t].link].applied)
                        p->tags[t].applied = true;
        return 0;
}
