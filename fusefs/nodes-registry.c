/* SPDX-License-Identifier: MIT */
/* The node kinds beside /repos: promotion channels, raw blobs, GC reports and RCA holds. */

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "nodes.h"
#include "storage/gc-records.h"
#include "storage/holds.h"
#include "storage/records.h"

/* ------------------------------------------------------------------ /channels/<env>/<svc>/<pointer> */

int resolve_chan_env(FsView *v, const Route *r, Node *n) {
        _cleanup_free_ char *p = strdup_printf("channels/%s", r->name);
        if (!p)
                return -ENOMEM;
        if (!namespace_exists(v, p))
                return -ENOENT;
        node_fill(v, n, NODE_CHAN_ENV, S_IFDIR, 0, 0);
        return 0;
}

int resolve_chan_svc(FsView *v, const Route *r, Node *n) {
        if (!repo_name_is_valid(r->repo) || !repo_exists(v, r->repo))
                return -ENOENT;
        node_fill(v, n, NODE_CHAN_SVC, S_IFDIR, 0, 0);
        return 0;
}

int resolve_chan_ptr(FsView *v, const Route *r, Node *n) {
        if (!repo_name_is_valid(r->repo) || !repo_exists(v, r->repo))
                return -ENOENT;
        TagInfo ti;
        int k = store_tag_get(v->store, r->repo, r->name, &ti);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        return node_fill_link(v, n, NODE_CHAN_PTR, strdup_printf("../../../repos/%s/_manifests/%s", r->repo, ti.digest),
                              ti.updated);
}

/* /channels lists environments, /channels/<env> the services that have a channel repository */
int list_channels(FsView *v, const char *path, const Node *dir, DirList *l) {
        char **names = NULL;
        size_t nn = 0;
        _cleanup_free_ char *prefix = dir->kind == NODE_CHANNELS ? strdup("channels")
                                                                 : strdup_printf("channels/%s", strrchr(path, '/') + 1);
        if (!prefix)
                return -ENOMEM;
        int r = ns_children(v, prefix, &names, &nn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nn; i++) {
                if (dir->kind == NODE_CHAN_ENV) {
                        r = list_resolve(v, path, l, names[i]);
                        if (r < 0)
                                break;
                        continue;
                }
                Node *n = dirlist_add(l, names[i]);
                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                node_fill(v, n, NODE_CHAN_ENV, S_IFDIR, 0, 0);
        }
        names_free(names, nn);
        return r;
}

int list_chan_svc(FsView *v, const char *path, const Node *dir, DirList *l) {
        static const char *const ptr[] = { "candidate", "stable" };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(ptr) && r >= 0; i++)
                r = list_resolve(v, path, l, ptr[i]);
        return r;
}

/* ------------------------------------------------------------------ /blobs/<algo>/<hex> */

int resolve_blob(FsView *v, const Route *r, Node *n) {
        _cleanup_free_ char *d = strdup_printf("%s:%s", r->sub, r->name);
        BlobInfo bi;
        if (!d || digest_parse(d, NULL) < 0)
                return -ENOENT;
        int k = store_blob_info(v->store, d, &bi);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        node_fill(v, n, NODE_BLOB, S_IFREG, bi.size, bi.created);
        n->immutable = true;
        n->blob = steal_pointer(&d);
        return 0;
}

static int any_blob_cb(void *userdata, const char *digest, const BlobInfo *info) {
        *(bool *) userdata = true;
        return 1;
}

int list_blobs(FsView *v, const char *path, const Node *dir, DirList *l) {
        bool sha512 = false;
        int r = list_resolve(v, path, l, "sha256");
        if (r >= 0)
                (void) store_blobs_foreach(v->store, NULL, "sha512:", any_blob_cb, &sha512);
        if (r >= 0 && sha512)
                r = list_resolve(v, path, l, "sha512");
        return r;
}

typedef struct BlobScan {
        FsView *v;
        DirList *l;
} BlobScan;

static int blobs_cb(void *userdata, const char *digest, const BlobInfo *info) {
        BlobScan *b = userdata;
        Node *n = dirlist_add(b->l, digest_hex(digest));
        if (!n)
                return -ENOMEM;
        node_fill(b->v, n, NODE_BLOB, S_IFREG, info->size, info->created);
        n->immutable = true;
        return 0;
}

int list_blob_algo(FsView *v, const char *path, const Node *dir, DirList *l) {
        _cleanup_free_ char *p = strdup_printf("%s:", strrchr(path, '/') + 1);
        if (!p)
                return -ENOMEM;
        BlobScan b = { .v = v, .l = l };
        return store_blobs_foreach(v->store, NULL, p, blobs_cb, &b);
}

/* ------------------------------------------------------------------ /gc/last.json, /gc/history/<time>.json */

static char *time_name(uint64_t ns) {
        char buf[64];
        format_timestamp(buf, sizeof(buf), (int64_t) ns);
        return strdup_printf("%s-%09" PRIu64 ".json", buf, ns % 1000000000);
}

int resolve_gc_last(FsView *v, const Route *r, Node *n) {
        char *json;
        int k = store_gc_report_last(v->store, &json);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        return node_fill_content(v, n, NODE_GC_LAST, json, strlen(json), 0);
}

typedef struct Reports {
        const char *want;   /* name to find (NULL = collect all) */
        char **names;
        size_t n;
        char *json;         /* of `want` */
        size_t len;
        uint64_t started;
} Reports;

static int reports_cb(void *userdata, int64_t started, const char *json, size_t len) {
        Reports *c = userdata;
        uint64_t ns = (uint64_t) started;
        _cleanup_free_ char *name = time_name(ns);
        if (!name)
                return -ENOMEM;
        if (c->want) {
                if (!streq(name, c->want))
                        return 0;
                c->json = strndup(json, len);
                c->len = len;
                c->started = ns;
                return 1;
        }
        char **nn = realloc(c->names, (c->n + 1) * sizeof(char *));
        if (!nn)
                return -ENOMEM;
        c->names = nn;
        c->names[c->n++] = steal_pointer(&name);
        return 0;
}

int resolve_gc_report(FsView *v, const Route *r, Node *n) {
        Reports c = { .want = r->name };
        int k = store_gc_reports_foreach(v->store, reports_cb, &c);
        if (k < 0 || !c.json) {
                free(c.json);
                return k < 0 ? -EIO : -ENOENT;
        }
        k = node_fill_content(v, n, NODE_GC_REPORT, steal_pointer(&c.json), c.len, (int64_t) c.started);
        n->immutable = true;
        return k;
}

int list_gc(FsView *v, const char *path, const Node *dir, DirList *l) {
        int r = list_resolve(v, path, l, "last.json");
        if (r >= 0)
                r = list_resolve(v, path, l, "history");
        return r;
}

int list_gc_history(FsView *v, const char *path, const Node *dir, DirList *l) {
        Reports c = {};
        int r = store_gc_reports_foreach(v->store, reports_cb, &c);
        for (size_t i = 0; i < c.n && r >= 0; i++)
                r = list_resolve(v, path, l, c.names[i]);
        names_free(c.names, c.n);
        return r;
}

/* ------------------------------------------------------------------ /holds/<case_id>/<digest>.json */

typedef struct HoldScan {
        const char *case_id;   /* NULL: collect case ids; else the file names of its holds */
        bool stop_at_first;
        char **names;
        size_t n;
} HoldScan;

static int hold_cb(void *userdata, const HoldInfo *h) {
        HoldScan *s = userdata;
        if (!s->case_id)
                return names_add_unique(&s->names, &s->n, h->case_id);
        if (!streq(h->case_id, s->case_id))
                return 0;
        _cleanup_free_ char *name = strdup_printf("%s.json", h->digest);
        int r = name ? names_add_unique(&s->names, &s->n, name) : -ENOMEM;
        return r < 0 ? r : s->stop_at_first;
}

int resolve_hold_case(FsView *v, const Route *r, Node *n) {
        HoldScan h = { .case_id = r->name, .stop_at_first = true };
        int k = store_holds_foreach(v->store, NULL, hold_cb, &h);
        bool any = h.n > 0;
        names_free(h.names, h.n);
        if (k < 0)
                return -EIO;
        if (!any)
                return -ENOENT;
        node_fill(v, n, NODE_HOLD_CASE, S_IFDIR, 0, 0);
        return 0;
}

int resolve_hold_file(FsView *v, const Route *r, Node *n) {
        _cleanup_free_ char *digest = strndup(r->name, strlen(r->name) - strlen(".json"));
        char *json = NULL;
        size_t len;
        if (!digest)
                return -ENOMEM;
        int k = store_hold_json(v->store, digest, r->sub, &json, &len);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        json_t *j = json_loadb(json, len, 0, NULL);
        json_t *c = j ? json_object_get(j, "created") : NULL;
        int64_t created = json_is_integer(c) ? (int64_t) json_integer_value(c) : 0;
        json_decref(j);
        return node_fill_content(v, n, NODE_HOLD_FILE, json, len, created);
}

/* /holds lists the case ids, /holds/<case_id> the files of its holds */
int list_holds(FsView *v, const char *path, const Node *dir, DirList *l) {
        HoldScan h = { .case_id = dir->kind == NODE_HOLD_CASE ? strrchr(path, '/') + 1 : NULL };
        int r = store_holds_foreach(v->store, NULL, hold_cb, &h);
        for (size_t i = 0; i < h.n && r >= 0; i++)
                if (case_id_is_valid(h.names[i]) || dir->kind == NODE_HOLD_CASE)
                        r = list_resolve(v, path, l, h.names[i]);
        names_free(h.names, h.n);
        return r;
}
