/* SPDX-License-Identifier: MIT */
/* The mark: from a snapshot, every repository link and tag is a root (a dry run leaves out the
 * plan's deletions), and so is every digest protected by a channel window or a hold; index ->
 * child manifests -> config and layers, nothing else. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/records.h"

typedef struct MarkCtx {
        Run *r;
        IndexSnapshot *snap;
        bool exclude_plan;      /* dry run: the plan's deletions are not roots */
        uint32_t *stack;
        size_t n, allocated;
} MarkCtx;

static int mark_push(MarkCtx *m, uint32_t id) {
        uint16_t *f = digest_table_flags(m->r->g.digests, id);
        if (*f & DT_MARKED)
                return 0;
        *f |= DT_MARKED;
        if (m->n >= m->allocated) {
                size_t na = m->allocated ? m->allocated * 2 : 1024;
                uint32_t *n = realloc(m->stack, na * sizeof(uint32_t));
                if (!n)
                        return -ENOMEM;
                m->stack = n;
                m->allocated = na;
        }
        m->stack[m->n++] = id;
        return 0;
}

static int mark_root(MarkCtx *m, const char *digest) {
        uint32_t id = digest_table_intern(m->r->g.digests, digest);
        if (id == DT_NONE)
                return 0;
        return mark_push(m, id);
}

static int mark_drain(MarkCtx *m) {
        Run *r = m->r;
        while (m->n > 0) {
                CHECK_CANCEL(r);
                uint32_t id = m->stack[--m->n];
                uint16_t f = *digest_table_flags(r->g.digests, id);
                int mi;
                if (f & DT_MANIFEST)
                        mi = (int) *digest_table_manifest(r->g.digests, id);
                else if (f & DT_BLOB)
                        continue;
                else {
                        /* not seen yet: a manifest pushed after the plan's snapshot, or a blob */
                        mi = graph_ensure(&r->g, r->s, m->snap, id);
                        if (mi == -ENOMEM)
                                return mi;
                        if (mi < 0)
                                continue;
                }
                r->manifests_marked++;
                run_test_delay(r);
                /* graph_ensure may move the array: copy the edges we need */
                GraphManifest gm = r->g.manifests[mi];
                for (uint32_t i = 0; i < gm.n_edges; i++) {
                        uint32_t e = r->g.manifests[mi].edges[i];
                        if (i >= gm.n_children) {
                                /* config and layers are blobs: mark, nothing to follow */
                                *digest_table_flags(r->g.digests, e) |= DT_MARKED;
                                continue;
                        }
                        int q = mark_push(m, e);
                        if (q < 0)
                                return q;
                }
        }
        return 0;
}

static int mark_links_cb(void *userdata, const char *repo_name, const char *digest, const RepoManifestInfo *info) {
        MarkCtx *m = userdata;
        Run *r = m->r;
        uint32_t repo;
        int q = plan_add_repo(&r->p, r->c, r->o, repo_name, strlen(repo_name), &repo); /* the sweep re-checks every repository */
        if (q < 0)
                return q;
        if (m->exclude_plan) {
                uint32_t li = plan_find_link(&r->p, repo, digest);
                if (li != UINT32_MAX && !r->p.links[li].live)
                        return 0;
        }
        q = mark_root(m, digest);
        return q < 0 ? q : mark_drain(m);
}

static int mark_tags_cb(void *userdata, const char *repo, const char *tag, const TagInfo *t) {
        MarkCtx *m = userdata;
        Run *r = m->r;
        r->tags_scanned++;
        if (m->exclude_plan) {
                size_t kl, idx;
                _cleanup_free_ char *k = plan_key(repo, tag, &kl);
                if (!k)
                        return -ENOMEM;
                if (strmap_get(r->p.tag_index, k, kl, &idx) && r->p.tags[idx].deleted)
                        return 0;
        }
        int q = mark_root(m, t->digest);
        return q < 0 ? q : mark_drain(m);
}

int gc_mark(Run *r, IndexSnapshot *snap, bool exclude_plan) {
        MarkCtx m = { .r = r, .snap = snap, .exclude_plan = exclude_plan };
        int q = store_repo_manifests_foreach(r->s, snap, NULL, mark_links_cb, &m);
        if (q >= 0)
                q = store_tags_foreach(r->s, snap, NULL, mark_tags_cb, &m);
        /* channel windows and holds: protected digests */
        size_t n = digest_table_size(r->g.digests);
        for (uint32_t id = 0; q >= 0 && id < n; id++)
                if (*digest_table_flags(r->g.digests, id) & (DT_PROTECTED | DT_HELD)) {
                        q = mark_push(&m, id);
                        if (q >= 0)
                                q = mark_drain(&m);
                }
        free(m.stack);
        return q;
}
