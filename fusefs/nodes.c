/* SPDX-License-Identifier: MIT */
/* The nodes of the view: one table of node kinds (what each resolves, lists and opens), the
 * routing of paths to kinds, and what every kind shares. The kinds themselves are in
 * nodes-repos.c and nodes-registry.c; fs.c serves the result over FUSE. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "nodes.h"

static const char readme[] =
        "plura registry - read-only view\n"
        "\n"
        "/repos/<namespace>/<repo>/_tags/<tag>              symlink to the tagged manifest\n"
        "/repos/<namespace>/<repo>/_manifests/sha256:<hex>/ manifest.json, config.json, layers/<n>-<digest>,\n"
        "                                                   rootfs/ (the merged image file tree, whiteouts applied),\n"
        "                                                   referrers/<artifact type>/<digest>, platforms/<os>-<arch>\n"
        "/repos/<namespace>/<repo>/_history/<tag>           the tag's timeline\n"
        "/channels/<env>/<svc>/stable|candidate             promotion channels (repos channels/<env>/<svc>)\n"
        "/blobs/sha256/<hex>                                raw blob bytes\n"
        "/gc/last.json, /gc/history/                        garbage collection reports\n"
        "/holds/<case id>/<digest>.json                     RCA holds\n"
        "\n"
        "Names starting with '_' never collide with repository names. Everything is read-only.\n";

/* ------------------------------------------------------------------ the view */

int fs_view_init(FsView *v, Store *s, const LayerCacheOptions *lo) {
        *v = (FsView) {
                .store = s,
                .start_ns = clock_now_ns(),
                .uid = getuid(),
                .gid = getgid(),
        };
        if (layer_cache_new(s, lo, &v->layers) < 0 || rootfs_cache_new(s, v->layers, 16, &v->rootfs) < 0 ||
            repo_set_new(s, NULL, &v->repos) < 0) {
                fs_view_done(v);
                return -ENOMEM;
        }
        return 0;
}

void fs_view_done(FsView *v) {
        rootfs_cache_free(v->rootfs);
        layer_cache_free(v->layers);
        repo_set_free(v->repos);
        *v = (FsView) {};
}

/* ------------------------------------------------------------------ nodes */

void node_done(FsView *v, Node *n) {
        free(n->link);
        free(n->content);
        free(n->blob);
        if (n->rootfs)
                rootfs_cache_put(v->rootfs, n->rootfs);
        *n = (Node) {};
}

static void set_time(struct stat *st, int64_t ns) {
        if (ns <= 0)
                return;
        st->st_mtim.tv_sec = ns / 1000000000;
        st->st_mtim.tv_nsec = ns % 1000000000;
        st->st_ctim = st->st_mtim;
        st->st_atim = st->st_mtim;
}

void node_fill(FsView *v, Node *n, NodeKind k, mode_t type, uint64_t size, int64_t mtime_ns) {
        n->kind = k;
        n->st.st_mode = type | (type == S_IFDIR ? 0555 : type == S_IFLNK ? 0777 : 0444);
        n->st.st_nlink = type == S_IFDIR ? 2 : 1;
        n->st.st_size = (off_t) size;
        n->st.st_blksize = 4096;
        n->st.st_blocks = (blkcnt_t) ((size + 511) / 512);
        n->st.st_uid = v->uid;
        n->st.st_gid = v->gid;
        set_time(&n->st, mtime_ns > 0 ? mtime_ns : v->start_ns);
}

int node_fill_link(FsView *v, Node *n, NodeKind k, char *target, int64_t mtime_ns) {
        if (!target)
                return -ENOMEM;
        n->link = target;
        node_fill(v, n, k, S_IFLNK, strlen(target), mtime_ns);
        return 0;
}

int node_fill_content(FsView *v, Node *n, NodeKind k, char *content, size_t len, int64_t mtime_ns) {
        if (!content)
                return -ENOMEM;
        n->content = content;
        n->content_len = len;
        node_fill(v, n, k, S_IFREG, len, mtime_ns);
        return 0;
}

int resolve_dir(FsView *v, const Route *r, Node *n) {
        node_fill(v, n, r->kind, S_IFDIR, 0, 0);
        return 0;
}

static int resolve_readme(FsView *v, const Route *r, Node *n) {
        return node_fill_content(v, n, NODE_README, strdup(readme), strlen(readme), 0);
}

/* ------------------------------------------------------------------ routing */

static bool component_ok(const char *c) {
        return c[0] && !streq(c, ".") && !streq(c, "..") && strlen(c) <= 255;
}

static int route_to(Route *r, NodeKind k) {
        r->kind = k;
        return 0;
}

/* Below /repos/<repo>/_manifests/<digest>/ */
static int route_manifest(Route *r, char **c, size_t n) {
        if (digest_parse(r->digest, NULL) < 0)
                return -ENOENT;
        if (n == 0)
                return route_to(r, NODE_MANIFEST);
        if (streq(c[0], "rootfs")) {
                r->rest = c + 1;
                r->n_rest = n - 1;
                return route_to(r, NODE_ROOTFS);
        }
        if (n == 1 && streq(c[0], "manifest.json"))
                return route_to(r, NODE_MANIFEST_JSON);
        if (n == 1 && streq(c[0], "config.json"))
                return route_to(r, NODE_CONFIG_JSON);
        if (streq(c[0], "layers") && n <= 2) {
                r->name = n == 2 ? c[1] : NULL;
                return route_to(r, n == 1 ? NODE_LAYERS : NODE_LAYER);
        }
        if (streq(c[0], "platforms") && n <= 2) {
                r->name = n == 2 ? c[1] : NULL;
                return route_to(r, n == 1 ? NODE_PLATFORMS : NODE_PLATFORM);
        }
        if (streq(c[0], "referrers") && n <= 3) {
                if (n == 1)
                        return route_to(r, NODE_REFERRERS);
                r->sub = c[1];
                r->name = n == 3 ? c[2] : NULL;
                return route_to(r, n == 2 ? NODE_REFTYPE : NODE_REFERRER);
        }
        return -ENOENT;
}

/* Below /repos: the components up to the first '_'-prefixed one name a namespace or repository. */
static int route_repos(Route *r, char **c, size_t n) {
        size_t i = 0, l = 0;
        if (n == 0)
                return route_to(r, NODE_REPOS);
        for (; i < n && c[i][0] != '_'; i++) {
                size_t cl = strlen(c[i]);
                if (l + cl + 2 > REPO_NAME_MAX + 1)
                        return -ENOENT;
                if (l > 0)
                        r->repo[l++] = '/';
                memcpy(r->repo + l, c[i], cl + 1);
                l += cl;
        }
        if (l == 0)
                return -ENOENT;
        if (i == n)
                return route_to(r, NODE_NS);
        const char *sec = c[i++];
        char **rest = c + i;
        size_t nr = n - i;
        if (streq(sec, "_tags") || streq(sec, "_history")) {
                bool tags = streq(sec, "_tags");
                if (nr == 0)
                        return route_to(r, tags ? NODE_TAGS : NODE_HISTORY);
                if (nr != 1 || !tag_is_valid(rest[0]))
                        return -ENOENT;
                r->name = rest[0];
                return route_to(r, tags ? NODE_TAG : NODE_HISTORY_FILE);
        }
        if (streq(sec, "_manifests")) {
                if (nr == 0)
                        return route_to(r, NODE_MANIFESTS);
                r->digest = rest[0];
                return route_manifest(r, rest + 1, nr - 1);
        }
        return -ENOENT;
}

static int route_channels(Route *r, char **c, size_t n) {
        if (n == 0)
                return route_to(r, NODE_CHANNELS);
        if (n == 1) {
                r->name = c[0];
                return route_to(r, NODE_CHAN_ENV);
        }
        int k = snprintf(r->repo, sizeof(r->repo), "channels/%s/%s", c[0], c[1]);
        if (k < 0 || (size_t) k >= sizeof(r->repo))
                return -ENOENT; /* longer than a repository name can be */
        if (n == 2)
                return route_to(r, NODE_CHAN_SVC);
        if (n != 3 || !(streq(c[2], "stable") || streq(c[2], "candidate")))
                return -ENOENT;
        r->name = c[2];
        return route_to(r, NODE_CHAN_PTR);
}

static int route_blobs(Route *r, char **c, size_t n) {
        if (n == 0)
                return route_to(r, NODE_BLOBS);
        if (!streq(c[0], "sha256") && !streq(c[0], "sha512"))
                return -ENOENT;
        if (n == 1) {
                r->name = c[0];
                return route_to(r, NODE_BLOB_ALGO);
        }
        if (n != 2)
                return -ENOENT;
        r->sub = c[0];
        r->name = c[1];
        return route_to(r, NODE_BLOB);
}

static int route_gc(Route *r, char **c, size_t n) {
        if (n == 0)
                return route_to(r, NODE_GC);
        if (n == 1 && streq(c[0], "last.json"))
                return route_to(r, NODE_GC_LAST);
        if (!streq(c[0], "history") || n > 2)
                return -ENOENT;
        if (n == 1)
                return route_to(r, NODE_GC_HISTORY);
        r->name = c[1];
        return route_to(r, NODE_GC_REPORT);
}

static int route_holds(Route *r, char **c, size_t n) {
        if (n == 0)
                return route_to(r, NODE_HOLDS);
        if (n > 2)
                return -ENOENT;
        if (n == 1) {
                r->name = c[0];
                return route_to(r, NODE_HOLD_CASE);
        }
        if (!endswith(c[1], ".json"))
                return -ENOENT;
        r->sub = c[0];
        r->name = c[1];
        return route_to(r, NODE_HOLD_FILE);
}

int route_parse(const char *path, Route *r) {
        *r = (Route) { .kind = _NODE_KIND_INVALID };
        r->copy = strdup(path);
        if (!r->copy)
                return -ENOMEM;
        for (char *s = r->copy, *save = NULL, *t; (t = strtok_r(s, "/", &save)); s = NULL) {
                if (r->n == ELEMENTSOF(r->comps) || !component_ok(t))
                        return -ENOENT;
                r->comps[r->n++] = t;
        }
        if (r->n == 0)
                return route_to(r, NODE_ROOT);
        char **c = r->comps + 1;
        size_t n = r->n - 1;
        if (streq(r->comps[0], "README") && r->n == 1)
                return route_to(r, NODE_README);
        if (streq(r->comps[0], "repos"))
                return route_repos(r, c, n);
        if (streq(r->comps[0], "channels"))
                return route_channels(r, c, n);
        if (streq(r->comps[0], "blobs"))
                return route_blobs(r, c, n);
        if (streq(r->comps[0], "gc"))
                return route_gc(r, c, n);
        if (streq(r->comps[0], "holds"))
                return route_holds(r, c, n);
        return -ENOENT;
}

void route_done(Route *r) {
        free(r->copy);
        *r = (Route) { .kind = _NODE_KIND_INVALID };
}

/* ------------------------------------------------------------------ listings */

void dirlist_done(FsView *v, DirList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->e[i].name);
                node_done(v, &l->e[i].node);
        }
        free(l->e);
        *l = (DirList) {};
}

Node *dirlist_add(DirList *l, const char *name) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 16;
                DirEnt *ne = realloc(l->e, na * sizeof(DirEnt));
                if (!ne)
                        return NULL;
                l->e = ne;
                l->allocated = na;
        }
        DirEnt *d = l->e + l->n;
        *d = (DirEnt) {};
        if (!(d->name = strdup(name)))
                return NULL;
        l->n++;
        return &d->node;
}

bool dirlist_has(const DirList *l, const char *name) {
        for (size_t j = 0; j < l->n; j++)
                if (streq(l->e[j].name, name))
                        return true;
        return false;
}

char *child_path(const char *parent, const char *name) {
        return streq(parent, "/") ? strdup_printf("/%s", name) : strdup_printf("%s/%s", parent, name);
}

int list_resolve(FsView *v, const char *path, DirList *l, const char *name) {
        _cleanup_free_ char *cp = child_path(path, name);
        if (!cp)
                return -ENOMEM;
        Node tmp;
        int r = node_resolve(v, cp, &tmp);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        Node *n = dirlist_add(l, name);
        if (!n) {
                node_done(v, &tmp);
                return -ENOMEM;
        }
        *n = tmp;
        return 0;
}

int names_add_unique(char ***names, size_t *n, const char *s) {
        for (size_t i = 0; i < *n; i++)
                if (streq((*names)[i], s))
                        return 0;
        char **nn = realloc(*names, (*n + 1) * sizeof(char *));
        if (!nn)
                return -ENOMEM;
        *names = nn;
        if (!(nn[*n] = strdup(s)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

void names_free(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static int list_root(FsView *v, const char *path, const Node *dir, DirList *l) {
        static const char *const top[] = { "README", "repos", "channels", "blobs", "gc", "holds" };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(top) && r >= 0; i++)
                r = list_resolve(v, path, l, top[i]);
        return r;
}

/* ------------------------------------------------------------------ opening files */

static int open_content(FsView *v, const char *path, Node *n, FileHandle *h) {
        h->content = steal_pointer(&n->content);
        h->content_len = n->content_len;
        h->size = n->content_len;
        return 0;
}

static int open_blob(FsView *v, const char *path, Node *n, FileHandle *h) {
        int r = store_blob_open(v->store, n->blob, &h->br);
        if (r == -ENOENT)
                return -EIO;
        if (r < 0)
                return r;
        h->fd = blob_reader_fd(h->br);
        h->size = blob_reader_size(h->br);
        return 0;
}

void file_handle_free(FsView *v, FileHandle *h) {
        if (!h)
                return;
        free(h->content);
        blob_reader_free(h->br);
        layer_reader_free(h->lr);
        if (h->rootfs)
                rootfs_cache_put(v->rootfs, h->rootfs);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

ssize_t file_handle_pread(FileHandle *h, void *buf, size_t n, uint64_t offset) {
        ssize_t k;
        pthread_mutex_lock(&h->lock);
        if (h->lr)
                k = layer_reader_pread(h->lr, buf, n, h->base + offset);
        else
                k = blob_reader_pread(h->br, buf, n, offset);
        pthread_mutex_unlock(&h->lock);
        return k;
}

/* ------------------------------------------------------------------ the node kinds */

uint64_t ino_link(const char *path, const Node *n) {
        if (S_ISLNK(n->st.st_mode) && !n->immutable && n->link)
                return ino_of_moving_link(path, n->link);
        return ino_of_path(path);
}

static const NodeKindInfo node_kinds[_NODE_KIND_MAX] = {
        [NODE_ROOT]          = { "root",          resolve_dir,           .list = list_root },
        [NODE_README]        = { "README",        resolve_readme,        .open = open_content },
        [NODE_REPOS]         = { "repos",         resolve_dir,           .list = list_namespace },
        [NODE_NS]            = { "namespace",     resolve_namespace,     .list = list_namespace },
        [NODE_TAGS]          = { "tags",          resolve_repo_dir,      .list = list_tags },
        [NODE_TAG]           = { "tag",           resolve_tag,           .ino = ino_link },
        [NODE_MANIFESTS]     = { "manifests",     resolve_repo_dir,      .list = list_manifests },
        [NODE_MANIFEST]      = { "manifest",      resolve_manifest,      .list = list_manifest },
        [NODE_MANIFEST_JSON] = { "manifest.json", resolve_manifest_json, .open = open_content },
        [NODE_CONFIG_JSON]   = { "config.json",   resolve_config_json,   .open = open_blob },
        [NODE_LAYERS]        = { "layers",        resolve_layers,        .list = list_layers },
        [NODE_LAYER]         = { "layer",         resolve_layer,         .open = open_blob },
        [NODE_ROOTFS]        = { "rootfs",        resolve_rootfs,        .list = list_rootfs, .open = open_rootfs,
                                 .ino = ino_rootfs },
        [NODE_REFERRERS]     = { "referrers",     resolve_referrers,     .list = list_referrers },
        [NODE_REFTYPE]       = { "referrer type", resolve_referrer,      .list = list_referrers },
        [NODE_REFERRER]      = { "referrer",      resolve_referrer,      .ino = ino_link },
        [NODE_PLATFORMS]     = { "platforms",     resolve_platforms,     .list = list_platforms },
        [NODE_PLATFORM]      = { "platform",      resolve_platform,      .ino = ino_link },
        [NODE_HISTORY]       = { "history",       resolve_repo_dir,      .list = list_history },
        [NODE_HISTORY_FILE]  = { "tag history",   resolve_history_file,  .open = open_content },
        [NODE_CHANNELS]      = { "channels",      resolve_dir,           .list = list_channels },
        [NODE_CHAN_ENV]      = { "channel env",   resolve_chan_env,      .list = list_channels },
        [NODE_CHAN_SVC]      = { "channel",       resolve_chan_svc,      .list = list_chan_svc },
        [NODE_CHAN_PTR]      = { "channel pointer", resolve_chan_ptr,    .ino = ino_link },
        [NODE_BLOBS]         = { "blobs",         resolve_dir,           .list = list_blobs },
        [NODE_BLOB_ALGO]     = { "blob algorithm", resolve_dir,          .list = list_blob_algo },
        [NODE_BLOB]          = { "blob",          resolve_blob,          .open = open_blob, .name_may_vanish = true },
        [NODE_GC]            = { "gc",            resolve_dir,           .list = list_gc },
        [NODE_GC_LAST]       = { "gc last",       resolve_gc_last,       .open = open_content },
        [NODE_GC_HISTORY]    = { "gc history",    resolve_dir,           .list = list_gc_history },
        [NODE_GC_REPORT]     = { "gc report",     resolve_gc_report,     .open = open_content },
        [NODE_HOLDS]         = { "holds",         resolve_dir,           .list = list_holds },
        [NODE_HOLD_CASE]     = { "hold case",     resolve_hold_case,     .list = list_holds },
        [NODE_HOLD_FILE]     = { "hold",          resolve_hold_file,     .open = open_content },
};

const char *node_kind_to_string(NodeKind k) {
        return k >= 0 && k < _NODE_KIND_MAX ? node_kinds[k].name : NULL;
}

int node_resolve(FsView *v, const char *path, Node *n) {
        *n = (Node) {};
        Route rt;
        int r = route_parse(path, &rt);
        if (r >= 0)
                r = node_kinds[rt.kind].resolve(v, &rt, n);
        route_done(&rt);
        if (r < 0)
                node_done(v, n);
        return r;
}

int node_list(FsView *v, const char *path, const Node *dir, DirList *l) {
        const NodeKindInfo *k = &node_kinds[dir->kind];
        return k->list ? k->list(v, path, dir, l) : -ENOTDIR;
}

int node_open(FsView *v, const char *path, Node *n, FileHandle **ret) {
        if (S_ISDIR(n->st.st_mode))
                return -EISDIR;
        if (!S_ISREG(n->st.st_mode))
                return -EINVAL;
        const NodeKindInfo *k = &node_kinds[n->kind];
        if (!k->open)
                return -EIO;
        FileHandle *h = calloc(1, sizeof(FileHandle));
        if (!h)
                return -ENOMEM;
        pthread_mutex_init(&h->lock, NULL);
        h->fd = -1;
        int r = k->open(v, path, n, h);
        if (r < 0) {
                file_handle_free(v, h);
                return r;
        }
        *ret = h;
        return 0;
}

uint64_t node_ino(const char *path, const Node *n) {
        const NodeKindInfo *k = &node_kinds[n->kind];
        return k->ino ? k->ino(path, n) : ino_of_path(path);
}

double node_attr_timeout(const Node *n) {
        return n->immutable ? TIMEOUT_IMMUTABLE : TIMEOUT_MUTABLE;
}

double node_entry_timeout(const Node *n) {
        return node_kinds[n->kind].name_may_vanish ? TIMEOUT_MUTABLE : node_attr_timeout(n);
}
