/* SPDX-License-Identifier: MIT */
/* The node kinds under /repos: namespaces and repositories, their tags, manifests (with
 * manifest.json, config.json, layers/, rootfs/, referrers/, platforms/) and tag histories. */

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "nodes.h"
#include "storage/records.h"

/* ------------------------------------------------------------------ repositories */

static int first_manifest_cb(void *userdata, const char *repo, const char *digest, const RepoManifestInfo *info) {
        *(bool *) userdata = true;
        return 1;
}

static int first_name_cb(void *userdata, const char *repo) {
        *(bool *) userdata = true;
        return 1;
}

/* Names the cached set knows are answered from it; others (a push since its last build) from
 * the index. */
bool repo_exists(FsView *v, const char *repo) {
        bool is_repo, is_ns, found = false;
        if (repo_set_query(v->repos, repo, &is_repo, &is_ns) > 0)
                return is_repo;
        (void) store_repo_manifests_foreach(v->store, NULL, repo, first_manifest_cb, &found);
        return found;
}

bool namespace_exists(FsView *v, const char *prefix) {
        bool is_repo, is_ns, found = false;
        if (repo_set_query(v->repos, prefix, &is_repo, &is_ns) > 0)
                return is_ns;
        _cleanup_free_ char *p = strdup_printf("%s/", prefix);
        if (!p)
                return false;
        (void) store_repo_names_foreach(v->store, NULL, p, NULL, false, first_name_cb, &found);
        return found;
}

typedef struct NsScan {
        size_t plen;
        char **names;
        size_t n;
        char *after;         /* set when the scan stopped at a child: go on after it */
        bool after_below;
} NsScan;

static int ns_cb(void *userdata, const char *repo) {
        NsScan *s = userdata;
        const char *c = repo + s->plen;
        size_t cl = strcspn(c, "/");
        if (cl == 0)
                return 0;
        _cleanup_free_ char *name = strndup(c, cl);
        if (!name || names_add_unique(&s->names, &s->n, name) < 0)
                return -ENOMEM;
        /* skip the rest of this child: the repository itself, or everything below it */
        s->after = strndup(repo, s->plen + cl);
        s->after_below = c[cl] == '/';
        return s->after ? 1 : -ENOMEM;
}

int ns_children(FsView *v, const char *prefix, char ***ret, size_t *ret_n) {
        _cleanup_free_ char *p = prefix[0] ? strdup_printf("%s/", prefix) : strdup("");
        if (!p)
                return -ENOMEM;
        NsScan s = { .plen = strlen(p) };
        int r;
        for (;;) {
                _cleanup_free_ char *after = steal_pointer(&s.after);
                r = store_repo_names_foreach(v->store, NULL, p, after, s.after_below, ns_cb, &s);
                if (r < 0 || !s.after)
                        break;
        }
        free(s.after);
        if (r < 0) {
                names_free(s.names, s.n);
                return r;
        }
        *ret = s.names;
        *ret_n = s.n;
        return 0;
}

/* The repository of r exists: n gets its name. */
static int repo_node(FsView *v, const Route *r, Node *n) {
        if (!repo_name_is_valid(r->repo) || !repo_exists(v, r->repo))
                return -ENOENT;
        memcpy(n->repo, r->repo, sizeof(n->repo));
        return 0;
}

int resolve_namespace(FsView *v, const Route *r, Node *n) {
        bool is_repo = repo_name_is_valid(r->repo) && repo_exists(v, r->repo);
        if (!is_repo && !namespace_exists(v, r->repo))
                return -ENOENT;
        memcpy(n->repo, r->repo, sizeof(n->repo));
        node_fill(v, n, NODE_NS, S_IFDIR, 0, 0);
        n->is_repo = is_repo;
        return 0;
}

int list_namespace(FsView *v, const char *path, const Node *dir, DirList *l) {
        const char *prefix = dir->kind == NODE_REPOS ? "" : dir->repo;
        char **names = NULL;
        size_t nn = 0;
        if (dir->kind == NODE_NS && dir->is_repo) {
                static const char *const sec[] = { "_tags", "_manifests", "_history" };
                static const NodeKind kind[] = { NODE_TAGS, NODE_MANIFESTS, NODE_HISTORY };
                for (size_t i = 0; i < ELEMENTSOF(sec); i++) {
                        Node *n = dirlist_add(l, sec[i]);
                        if (!n)
                                return -ENOMEM;
                        node_fill(v, n, kind[i], S_IFDIR, 0, 0);
                        snprintf(n->repo, sizeof(n->repo), "%s", dir->repo);
                }
        }
        int r = ns_children(v, prefix, &names, &nn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nn; i++) {
                Node *n = dirlist_add(l, names[i]);
                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                node_fill(v, n, NODE_NS, S_IFDIR, 0, 0);
                int k = prefix[0] ? snprintf(n->repo, sizeof(n->repo), "%.*s/%.*s", REPO_NAME_MAX, prefix, REPO_NAME_MAX,
                                             names[i])
                                  : snprintf(n->repo, sizeof(n->repo), "%s", names[i]);
                if (k < 0 || (size_t) k >= sizeof(n->repo)) {
                        l->n--;
                        free(l->e[l->n].name);
                        continue;
                }
                n->is_repo = repo_exists(v, n->repo);
        }
        names_free(names, nn);
        return r;
}

int resolve_repo_dir(FsView *v, const Route *r, Node *n) {
        int k = repo_node(v, r, n);
        if (k < 0)
                return k;
        node_fill(v, n, r->kind, S_IFDIR, 0, 0);
        return 0;
}

/* ------------------------------------------------------------------ tags */

int resolve_tag(FsView *v, const Route *r, Node *n) {
        int k = repo_node(v, r, n);
        if (k < 0)
                return k;
        TagInfo ti;
        k = store_tag_get(v->store, r->repo, r->name, &ti);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        return node_fill_link(v, n, NODE_TAG, strdup_printf("../_manifests/%s", ti.digest), ti.updated);
}

typedef struct TagScan {
        FsView *v;
        DirList *l;
} TagScan;

static int tags_cb(void *userdata, const char *repo, const char *tag, const TagInfo *ti) {
        TagScan *t = userdata;
        if (!tag_is_valid(tag))
                return 0;
        Node *n = dirlist_add(t->l, tag);
        if (!n)
                return -ENOMEM;
        return node_fill_link(t->v, n, NODE_TAG, strdup_printf("../_manifests/%s", ti->digest), ti->updated);
}

int list_tags(FsView *v, const char *path, const Node *dir, DirList *l) {
        /* one scan of the repository's tag records (not a list, then a get per tag) */
        TagScan t = { .v = v, .l = l };
        return store_tags_foreach(v->store, NULL, dir->repo, tags_cb, &t);
}

/* ------------------------------------------------------------------ tag history */

static int history_text_cb(void *userdata, const TagHistoryEntry *e) {
        FILE *out = userdata;
        char ts[64];
        format_timestamp(ts, sizeof(ts), e->time);
        fprintf(out, "%s  %-8s  %s  %s\n", ts, e->action ? e->action : "-", e->digest ? e->digest : "-",
                e->actor ? e->actor : "-");
        return 0;
}

static int history_text(FsView *v, const char *repo, const char *tag, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return -ENOMEM;
        int r = store_tag_history_foreach(v->store, NULL, repo, tag, history_text_cb, out);
        fclose(out);
        if (r < 0 || len == 0) {
                free(buf);
                return r < 0 ? r : -ENOENT;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int resolve_history_file(FsView *v, const Route *r, Node *n) {
        int k = repo_node(v, r, n);
        if (k < 0)
                return k;
        char *text;
        size_t len;
        k = history_text(v, r->repo, r->name, &text, &len);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        return node_fill_content(v, n, NODE_HISTORY_FILE, text, len, 0);
}

typedef struct HistScan {
        char **names;
        size_t n;
} HistScan;

static int hist_cb(void *userdata, const char *repo, const char *tag) {
        HistScan *h = userdata;
        return names_add_unique(&h->names, &h->n, tag);
}

int list_history(FsView *v, const char *path, const Node *dir, DirList *l) {
        HistScan h = {};
        int r = store_history_tags_foreach(v->store, NULL, dir->repo, hist_cb, &h);
        for (size_t i = 0; i < h.n && r >= 0; i++)
                r = list_resolve(v, path, l, h.names[i]);
        names_free(h.names, h.n);
        return r;
}

/* ------------------------------------------------------------------ manifests */

typedef struct ManifestScan {
        FsView *v;
        DirList *l;
} ManifestScan;

static int manifests_cb(void *userdata, const char *repo, const char *digest, const RepoManifestInfo *info) {
        ManifestScan *m = userdata;
        Node *n = dirlist_add(m->l, digest);
        if (!n)
                return -ENOMEM;
        node_fill(m->v, n, NODE_MANIFEST, S_IFDIR, 0, info->pushed);
        n->immutable = true;
        return 0;
}

int list_manifests(FsView *v, const char *path, const Node *dir, DirList *l) {
        ManifestScan m = { .v = v, .l = l };
        return store_repo_manifests_foreach(v->store, NULL, dir->repo, manifests_cb, &m);
}

/* The manifest of r is linked in its repository: n gets both names, *ret_pushed its push time. */
static int manifest_node(FsView *v, const Route *r, Node *n, int64_t *ret_pushed) {
        int k = repo_node(v, r, n);
        if (k < 0)
                return k;
        RepoManifestInfo info;
        k = store_repo_manifest_info(v->store, NULL, r->repo, r->digest, &info);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        snprintf(n->digest, sizeof(n->digest), "%s", r->digest);
        *ret_pushed = info.pushed;
        return 0;
}

/* manifest_node() and the parsed manifest: what every node inside a manifest directory needs. */
static int manifest_child(FsView *v, const Route *r, Node *n, int64_t *ret_pushed, Manifest **ret) {
        int k = manifest_node(v, r, n, ret_pushed);
        if (k < 0)
                return k;
        k = store_manifest_parsed(v->store, NULL, r->digest, ret);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        n->immutable = true;
        return 0;
}

int resolve_manifest(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        int k = manifest_node(v, r, n, &pushed);
        if (k < 0)
                return k;
        node_fill(v, n, NODE_MANIFEST, S_IFDIR, 0, pushed);
        return 0;
}

int resolve_manifest_json(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
        k = store_manifest_get_by_digest(v->store, r->digest, &sm);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        char *d = malloc(MAX(sm->size, 1));
        if (!d)
                return -ENOMEM;
        memcpy(d, sm->data, sm->size);
        return node_fill_content(v, n, NODE_MANIFEST_JSON, d, sm->size, pushed);
}

/* A file whose bytes are the blob digest. */
static int blob_file(FsView *v, Node *n, NodeKind kind, const char *digest, int64_t pushed) {
        BlobInfo bi;
        int k = store_blob_info(v->store, digest, &bi);
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        node_fill(v, n, kind, S_IFREG, bi.size, pushed);
        n->blob = strdup(digest);
        return n->blob ? 0 : -ENOMEM;
}

int resolve_config_json(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        if (!m->has_config)
                return -ENOENT;
        return blob_file(v, n, NODE_CONFIG_JSON, m->config.digest, pushed);
}

int resolve_layers(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        if (manifest_kind_is_index(m->kind))
                return -ENOENT;
        node_fill(v, n, NODE_LAYERS, S_IFDIR, 0, pushed);
        return 0;
}

int resolve_layer(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        if (manifest_kind_is_index(m->kind))
                return -ENOENT;
        char *end;
        unsigned long i = strtoul(r->name, &end, 10);
        if (end == r->name || *end != '-' || i >= m->n_layers || !streq(end + 1, m->layers[i].digest))
                return -ENOENT;
        return blob_file(v, n, NODE_LAYER, m->layers[i].digest, pushed);
}

int list_layers(FsView *v, const char *path, const Node *dir, DirList *l) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int r = store_manifest_parsed(v->store, NULL, dir->digest, &m);
        if (r < 0)
                return -EIO;
        for (size_t i = 0; i < m->n_layers && r >= 0; i++) {
                _cleanup_free_ char *name = strdup_printf("%zu-%s", i, m->layers[i].digest);
                r = name ? list_resolve(v, path, l, name) : -ENOMEM;
        }
        return r;
}

static char *platform_name(const Descriptor *d) {
        if (!d->platform_os || !d->platform_arch)
                return NULL;
        char *s = d->platform_variant ? strdup_printf("%s-%s-%s", d->platform_os, d->platform_arch, d->platform_variant)
                                      : strdup_printf("%s-%s", d->platform_os, d->platform_arch);
        for (char *c = s; c && *c; c++)
                if (*c == '/')
                        *c = '_';
        return s;
}

int resolve_platforms(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        if (!manifest_kind_is_index(m->kind))
                return -ENOENT;
        node_fill(v, n, NODE_PLATFORMS, S_IFDIR, 0, pushed);
        return 0;
}

int resolve_platform(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        if (!manifest_kind_is_index(m->kind))
                return -ENOENT;
        for (size_t i = 0; i < m->n_manifests; i++) {
                _cleanup_free_ char *pn = platform_name(m->manifests + i);
                if (pn && streq(pn, r->name))
                        return node_fill_link(v, n, NODE_PLATFORM, strdup_printf("../../%s", m->manifests[i].digest), pushed);
        }
        return -ENOENT;
}

int list_platforms(FsView *v, const char *path, const Node *dir, DirList *l) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int r = store_manifest_parsed(v->store, NULL, dir->digest, &m);
        if (r < 0)
                return -EIO;
        for (size_t i = 0; i < m->n_manifests && r >= 0; i++) {
                _cleanup_free_ char *name = platform_name(m->manifests + i);
                if (name && !dirlist_has(l, name))
                        r = list_resolve(v, path, l, name);
        }
        return r;
}

static bool is_layer_media_type(const char *mt) {
        return mt && strstr(mt, "tar") != NULL;
}

static bool manifest_has_rootfs(const Manifest *m) {
        if (manifest_kind_is_index(m->kind) || m->n_layers == 0)
                return false;
        for (size_t i = 0; i < m->n_layers; i++)
                if (!is_layer_media_type(m->layers[i].media_type))
                        return false;
        return true;
}

int list_manifest(FsView *v, const char *path, const Node *dir, DirList *l) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int r = store_manifest_parsed(v->store, NULL, dir->digest, &m);
        if (r < 0)
                return -EIO;
        const char *names[6];
        size_t nn = 0;
        names[nn++] = "manifest.json";
        if (m->has_config)
                names[nn++] = "config.json";
        if (!manifest_kind_is_index(m->kind))
                names[nn++] = "layers";
        if (manifest_has_rootfs(m))
                names[nn++] = "rootfs";
        names[nn++] = "referrers";
        if (manifest_kind_is_index(m->kind))
                names[nn++] = "platforms";
        /* filled from the parsed manifest (what resolving each name gives), without re-resolving
         * and re-parsing it per entry */
        int64_t pushed = dir->st.st_mtim.tv_sec * 1000000000LL + dir->st.st_mtim.tv_nsec;
        for (size_t i = 0; i < nn; i++) {
                uint64_t size = 0;
                NodeKind k;
                mode_t type = S_IFDIR;
                if (streq(names[i], "manifest.json")) {
                        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
                        if (store_manifest_get_by_digest(v->store, dir->digest, &sm) < 0)
                                continue;
                        size = sm->size;
                        k = NODE_MANIFEST_JSON;
                        type = S_IFREG;
                } else if (streq(names[i], "config.json")) {
                        BlobInfo bi;
                        if (store_blob_info(v->store, m->config.digest, &bi) < 0)
                                continue;
                        size = bi.size;
                        k = NODE_CONFIG_JSON;
                        type = S_IFREG;
                } else
                        k = streq(names[i], "layers")      ? NODE_LAYERS
                            : streq(names[i], "rootfs")    ? NODE_ROOTFS /* no layer index built to list it */
                            : streq(names[i], "referrers") ? NODE_REFERRERS
                                                           : NODE_PLATFORMS;
                Node *n = dirlist_add(l, names[i]);
                if (!n)
                        return -ENOMEM;
                node_fill(v, n, k, type, size, pushed);
                n->immutable = k != NODE_REFERRERS; /* new referrers may arrive */
        }
        return 0;
}

/* ------------------------------------------------------------------ referrers */

static char *reftype_name(const char *artifact_type) {
        char *s = strdup(artifact_type && *artifact_type ? artifact_type : "unknown");
        for (char *c = s; c && *c; c++)
                if (*c == '/')
                        *c = '_';
        return s;
}

int resolve_referrers(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        n->immutable = false; /* new referrers may arrive */
        node_fill(v, n, NODE_REFERRERS, S_IFDIR, 0, pushed);
        return 0;
}

/* referrers/<type> and referrers/<type>/<digest> */
int resolve_referrer(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = manifest_child(v, r, n, &pushed, &m);
        if (k < 0)
                return k;
        n->immutable = false;
        json_t *arr = NULL;
        k = store_referrers(v->store, r->repo, r->digest, NULL, &arr);
        if (k < 0)
                return -EIO;
        size_t i;
        json_t *d;
        bool found = false;
        json_array_foreach(arr, i, d) {
                _cleanup_free_ char *tn = reftype_name(json_string_value(json_object_get(d, "artifactType")));
                const char *rd = json_string_value(json_object_get(d, "digest"));
                if (!tn || !rd || !streq(tn, r->sub))
                        continue;
                if (r->kind == NODE_REFTYPE) {
                        found = true;
                        node_fill(v, n, NODE_REFTYPE, S_IFDIR, 0, pushed);
                        break;
                }
                if (streq(rd, r->name)) {
                        RepoManifestInfo info = {};
                        (void) store_repo_manifest_info(v->store, NULL, r->repo, rd, &info);
                        found = true;
                        k = node_fill_link(v, n, NODE_REFERRER, strdup_printf("../../../%s", rd), info.pushed);
                        break;
                }
        }
        json_decref(arr);
        if (k < 0)
                return k;
        return found ? 0 : -ENOENT;
}

int list_referrers(FsView *v, const char *path, const Node *dir, DirList *l) {
        json_t *arr = NULL;
        int r = store_referrers(v->store, dir->repo, dir->digest, NULL, &arr);
        if (r < 0)
                return -EIO;
        const char *type = dir->kind == NODE_REFTYPE ? strrchr(path, '/') + 1 : NULL;
        size_t i;
        json_t *d;
        json_array_foreach(arr, i, d) {
                _cleanup_free_ char *tn = reftype_name(json_string_value(json_object_get(d, "artifactType")));
                const char *rd = json_string_value(json_object_get(d, "digest"));
                if (!tn || !rd)
                        continue;
                const char *name = type ? rd : tn;
                if (type && !streq(tn, type))
                        continue;
                if (!dirlist_has(l, name) && (r = list_resolve(v, path, l, name)) < 0)
                        break;
        }
        json_decref(arr);
        return r;
}

/* ------------------------------------------------------------------ rootfs */

/* n takes over a reference to rfs. */
static int fill_rnode(Node *n, Rootfs *rfs, RNode *rn) {
        n->kind = NODE_ROOTFS;
        n->rootfs = rfs;
        n->rnode = rn;
        n->immutable = true;
        mode_t type = rn->type == TAR_ENTRY_DIR ? S_IFDIR : rn->type == TAR_ENTRY_SYMLINK ? S_IFLNK : S_IFREG;
        n->st.st_mode = type | (rn->mode & 07777);
        n->st.st_nlink = rn->type == TAR_ENTRY_FILE ? rn->group->nlink : rn->type == TAR_ENTRY_DIR ? 2 : 1;
        n->st.st_uid = rn->uid;
        n->st.st_gid = rn->gid;
        n->st.st_size = (off_t) rn->size;
        n->st.st_blksize = 4096;
        n->st.st_blocks = (blkcnt_t) ((rn->size + 511) / 512);
        n->st.st_mtim.tv_sec = rn->mtime_ns / 1000000000;
        n->st.st_mtim.tv_nsec = rn->mtime_ns % 1000000000;
        if (n->st.st_mtim.tv_nsec < 0) {
                n->st.st_mtim.tv_sec--;
                n->st.st_mtim.tv_nsec += 1000000000;
        }
        n->st.st_ctim = n->st.st_atim = n->st.st_mtim;
        if (rn->type == TAR_ENTRY_SYMLINK) {
                const char *l = rnode_link(rfs, rn);
                n->link = strdup(l ? l : "");
                if (!n->link)
                        return -ENOMEM;
        }
        return 0;
}

int resolve_rootfs(FsView *v, const Route *r, Node *n) {
        int64_t pushed;
        int k = manifest_node(v, r, n, &pushed);
        if (k < 0)
                return k;
        Rootfs *rfs = NULL;
        k = rootfs_cache_get(v->rootfs, r->digest, &rfs);
        if (k == -ENOTDIR)
                return -ENOENT;
        if (k < 0)
                return k == -ENOENT ? -ENOENT : -EIO;
        RNode *rn = rfs->root;
        for (size_t i = 0; i < r->n_rest && rn; i++)
                rn = rnode_child(rn, r->rest[i]);
        if (!rn) {
                rootfs_cache_put(v->rootfs, rfs);
                return -ENOENT;
        }
        return fill_rnode(n, rfs, rn);
}

int list_rootfs(FsView *v, const char *path, const Node *dir, DirList *l) {
        RNode *rn = dir->rnode;
        for (size_t i = 0; i < rn->n_children; i++) {
                Node *n = dirlist_add(l, rn->children[i]->name);
                if (!n)
                        return -ENOMEM;
                rootfs_cache_ref(v->rootfs, dir->rootfs);
                int r = fill_rnode(n, dir->rootfs, rn->children[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int open_rootfs(FsView *v, const char *path, Node *n, FileHandle *h) {
        const TarEntry *e = rnode_entry(n->rootfs, n->rnode);
        if (!e)
                return -EIO;
        int r = layer_reader_open(v->layers, n->rootfs->layers[n->rnode->layer], &h->lr);
        h->base = e->offset;
        h->size = e->size;
        if (r >= 0)
                h->fd = layer_reader_fd(h->lr);
        h->rootfs = steal_pointer(&n->rootfs);
        if (r < 0) {
                log_warning_errno(r, "fusefs: %s: cannot open layer: %m", path);
                return -EIO;
        }
        return 0;
}

uint64_t ino_rootfs(const char *path, const Node *n) {
        const RNode *rn = n->rnode;
        if (rn && rn->type == TAR_ENTRY_FILE && (rn->group != rn || rn->group->nlink > 1))
                return ino_of_data(n->rootfs->digest, rn->layer, rn->entry); /* hard links share their data's */
        return ino_of_path(path);
}
