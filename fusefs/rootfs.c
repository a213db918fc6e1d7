/* SPDX-License-Identifier: MIT */
/* Merged rootfs trees: the layers' entry tables applied bottom to top with OCI whiteouts
 * (".wh.<name>" hides a lower entry, ".wh..wh..opq" hides every lower child of its directory).
 * Hard links resolve at merge time to the data of their (already present) target, so a link
 * can never loop; a dangling link is dropped with a log line. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "fusefs-internal.h"
#include "storage/records.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define ROOTFS_NODES_MAX (4U << 20)

static RNode *node_new(Rootfs *r, const char *name, size_t nl) {
        if (r->n_nodes >= ROOTFS_NODES_MAX)
                return NULL;
        RNode *n = calloc(1, sizeof(RNode));
        if (!n)
                return NULL;
        n->name = strndup(name, nl);
        if (!n->name) {
                free(n);
                return NULL;
        }
        n->group = n;
        n->nlink = 1;
        n->all_next = r->all;
        r->all = n;
        r->n_nodes++;
        return n;
}

void rootfs_free(Rootfs *r) {
        if (!r)
                return;
        for (RNode *n = r->all, *next; n; n = next) {
                next = n->all_next;
                free(n->name);
                free(n->children);
                free(n);
        }
        free(r->layers);
        free(r);
}

static size_t child_pos(RNode *dir, const char *name, size_t nl, bool *found) {
        size_t lo = 0, hi = dir->n_children;
        *found = false;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                const char *cn = dir->children[mid]->name;
                int c = strncmp(cn, name, nl);
                if (c == 0)
                        c = cn[nl] ? 1 : 0;
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static RNode *child_n(RNode *dir, const char *name, size_t nl) {
        bool found;
        if (!dir || dir->type != TAR_ENTRY_DIR)
                return NULL;
        size_t p = child_pos(dir, name, nl, &found);
        return found ? dir->children[p] : NULL;
}

RNode *rnode_child(RNode *dir, const char *name) {
        return child_n(dir, name, strlen(name));
}

static void mark_removed(RNode *n) {
        n->removed = true;
        if (n->type == TAR_ENTRY_FILE && n->group->nlink > 1)
                n->group->nlink--;
        for (size_t i = 0; i < n->n_children; i++)
                mark_removed(n->children[i]);
        n->n_children = 0;
}

static void detach(RNode *n) {
        RNode *p = n->parent;
        bool found;
        if (!p)
                return;
        size_t pos = child_pos(p, n->name, strlen(n->name), &found);
        if (found) {
                memmove(p->children + pos, p->children + pos + 1, (p->n_children - pos - 1) * sizeof(RNode *));
                p->n_children--;
        }
        mark_removed(n);
}

static int attach(RNode *dir, RNode *n) {
        bool found;
        size_t pos = child_pos(dir, n->name, strlen(n->name), &found);
        if (found) {
                detach(dir->children[pos]);
                pos = child_pos(dir, n->name, strlen(n->name), &found);
        }
        if (dir->n_children == dir->n_allocated) {
                size_t na = dir->n_allocated ? dir->n_allocated * 2 : 4;
                RNode **nc = realloc(dir->children, na * sizeof(RNode *));
                if (!nc)
                        return -ENOMEM;
                dir->children = nc;
                dir->n_allocated = na;
        }
        memmove(dir->children + pos + 1, dir->children + pos, (dir->n_children - pos) * sizeof(RNode *));
        dir->children[pos] = n;
        dir->n_children++;
        n->parent = dir;
        return 0;
}

RNode *rootfs_lookup(Rootfs *r, const char *path) {
        RNode *n = r->root;
        const char *s = path;
        while (n && *s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                n = child_n(n, s, (size_t) (e - s));
                s = e;
        }
        return n;
}

/* Walks to the directory of path, creating missing (or replacing non-directory) components. */
static int ensure_dir(Rootfs *r, const char *path, size_t len, RNode **ret) {
        RNode *n = r->root;
        size_t i = 0;
        while (i < len) {
                size_t j = i;
                while (j < len && path[j] != '/')
                        j++;
                RNode *c = child_n(n, path + i, j - i);
                if (!c || c->type != TAR_ENTRY_DIR) {
                        RNode *d = node_new(r, path + i, j - i);
                        if (!d)
                                return -ENOMEM;
                        d->type = TAR_ENTRY_DIR;
                        d->mode = 0755;
                        int k = attach(n, d);
                        if (k < 0)
                                return k;
                        c = d;
                }
                n = c;
                i = j + 1;
        }
        *ret = n;
        return 0;
}

static void split(const char *path, size_t *dirlen, const char **base) {
        const char *slash = strrchr(path, '/');
        *base = slash ? slash + 1 : path;
        *dirlen = slash ? (size_t) (slash - path) : 0;
}

static void set_attrs(RNode *n, const TarEntry *e, uint32_t layer, uint32_t entry) {
        n->mode = e->mode;
        n->uid = e->uid;
        n->gid = e->gid;
        n->mtime_ns = e->mtime_ns;
        n->size = e->type == TAR_ENTRY_SYMLINK ? strlen(e->link) : e->type == TAR_ENTRY_FILE ? e->size : 0;
        n->layer = layer;
        n->entry = entry;
}

static int apply_layer(Rootfs *r, uint32_t li) {
        const TarIndex *t = r->layers[li]->tar;
        int k;

        /* whiteouts first: they only hide what lower layers put there */
        for (size_t i = 0; i < t->n_entries; i++) {
                const TarEntry *e = t->entries + i;
                size_t dl;
                const char *base;
                split(e->path, &dl, &base);
                if (!startswith(base, WH_PREFIX))
                        continue;
                _cleanup_free_ char *dir = strndup(e->path, dl);
                if (!dir)
                        return -ENOMEM;
                RNode *d = rootfs_lookup(r, dir);
                if (!d || d->type != TAR_ENTRY_DIR)
                        continue;
                if (streq(base, WH_OPAQUE)) {
                        for (size_t c = 0; c < d->n_children; c++)
                                mark_removed(d->children[c]);
                        d->n_children = 0;
                } else {
                        RNode *victim = rnode_child(d, base + strlen(WH_PREFIX));
                        if (victim)
                                detach(victim);
                }
        }

        for (size_t i = 0; i < t->n_entries; i++) {
                const TarEntry *e = t->entries + i;
                size_t dl;
                const char *base;
                split(e->path, &dl, &base);
                if (startswith(base, WH_PREFIX))
                        continue;
                if (!e->path[0]) {
                        if (e->type == TAR_ENTRY_DIR)
                                set_attrs(r->root, e, li, (uint32_t) i);
                        continue;
                }
                RNode *dir;
                k = ensure_dir(r, e->path, dl, &dir);
                if (k < 0)
                        return k;
                RNode *old = rnode_child(dir, base);
                if (e->type == TAR_ENTRY_DIR && old && old->type == TAR_ENTRY_DIR) {
                        set_attrs(old, e, li, (uint32_t) i);
                        continue;
                }
                const TarEntry *src = e;
                uint32_t src_layer = li, src_entry = (uint32_t) i;
                RNode *group = NULL;
                if (e->type == TAR_ENTRY_HARDLINK) {
                        RNode *target = rootfs_lookup(r, e->link);
                        if (!target || target->type != TAR_ENTRY_FILE || target == old) {
                                log_debug("fusefs: layer %s: hard link %s -> %s has no regular file target, skipped",
                                          r->layers[li]->digest, e->path, e->link);
                                continue;
                        }
                        group = target->group;
                        src_layer = target->layer;
                        src_entry = target->entry;
                        src = r->layers[src_layer]->tar->entries + src_entry;
                }
                RNode *n = node_new(r, base, strlen(base));
                if (!n)
                        return -ENOMEM;
                n->type = e->type == TAR_ENTRY_HARDLINK ? TAR_ENTRY_FILE : e->type;
                set_attrs(n, src, src_layer, src_entry);
                if (group) {
                        n->group = group;
                        group->nlink++;
                }
                k = attach(dir, n);
                if (k < 0)
                        return k;
        }
        return 0;
}

int rootfs_build(const char *digest, Layer **layers, size_t n_layers, Rootfs **ret) {
        Rootfs *r = calloc(1, sizeof(Rootfs));
        if (!r)
                return -ENOMEM;
        snprintf(r->digest, sizeof(r->digest), "%s", digest);
        r->layers = calloc(MAX(n_layers, 1), sizeof(Layer *));
        r->root = node_new(r, "", 0);
        if (!r->layers || !r->root) {
                rootfs_free(r);
                return -ENOMEM;
        }
        memcpy(r->layers, layers, n_layers * sizeof(Layer *));
        r->n_layers = n_layers;
        r->root->type = TAR_ENTRY_DIR;
        r->root->mode = 0755;
        for (size_t i = 0; i < n_layers; i++) {
                int k = apply_layer(r, (uint32_t) i);
                if (k < 0) {
                        rootfs_free(r);
                        return k;
                }
        }
        *ret = r;
        return 0;
}

const TarEntry *rnode_entry(Rootfs *r, RNode *n) {
        if (n->layer >= r->n_layers || n->entry >= r->layers[n->layer]->tar->n_entries)
                return NULL;
        return r->layers[n->layer]->tar->entries + n->entry;
}

const char *rnode_link(Rootfs *r, RNode *n) {
        const TarEntry *e = rnode_entry(r, n);
        return e && e->type == TAR_ENTRY_SYMLINK ? e->link : NULL;
}

/* ---- cache */

struct RootfsCache {
        Store *store;
        LayerCache *layers;
        size_t max;
        pthread_mutex_t lock, build_lock;
        Rootfs **items;
        size_t n_items;
        uint64_t tick;
};

int rootfs_cache_new(Store *s, LayerCache *lc, size_t max, RootfsCache **ret) {
        RootfsCache *c = calloc(1, sizeof(RootfsCache));
        if (!c)
                return -ENOMEM;
        c->store = s;
        c->layers = lc;
        c->max = max ? max : 16;
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->build_lock, NULL);
        *ret = c;
        return 0;
}

static void rootfs_release(RootfsCache *c, Rootfs *r) {
        for (size_t i = 0; i < r->n_layers; i++)
                layer_cache_put(c->layers, r->layers[i]);
        rootfs_free(r);
}

RootfsCache *rootfs_cache_free(RootfsCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_items; i++)
                rootfs_release(c, c->items[i]);
        free(c->items);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->build_lock);
        free(c);
        return NULL;
}

static Rootfs *find_locked(RootfsCache *c, const char *digest) {
        for (size_t i = 0; i < c->n_items; i++)
                if (streq(c->items[i]->digest, digest)) {
                        c->items[i]->refs++;
                        c->items[i]->last_used = ++c->tick;
                        return c->items[i];
                }
        return NULL;
}

static void evict_locked(RootfsCache *c) {
        while (c->n_items > c->max) {
                size_t victim = SIZE_MAX;
                for (size_t i = 0; i < c->n_items; i++)
                        if (c->items[i]->refs == 0 &&
                            (victim == SIZE_MAX || c->items[i]->last_used < c->items[victim]->last_used))
                                victim = i;
                if (victim == SIZE_MAX)
                        return;
                Rootfs *r = c->items[victim];
                c->items[victim] = c->items[--c->n_items];
                rootfs_release(c, r);
        }
}

int rootfs_cache_get(RootfsCache *c, const char *digest, Rootfs **ret) {
        pthread_mutex_lock(&c->lock);
        Rootfs *r = find_locked(c, digest);
        pthread_mutex_unlock(&c->lock);
        if (r) {
                *ret = r;
                return 0;
        }

        pthread_mutex_lock(&c->build_lock);
        pthread_mutex_lock(&c->lock);
        r = find_locked(c, digest);
        pthread_mutex_unlock(&c->lock);
        if (r) {
                pthread_mutex_unlock(&c->build_lock);
                *ret = r;
                return 0;
        }

        _cleanup_(manifest_freep) Manifest *m = NULL;
        int k = store_manifest_parsed(c->store, NULL, digest, &m);
        if (k < 0) {
                pthread_mutex_unlock(&c->build_lock);
                return k;
        }
        if (manifest_kind_is_index(m->kind)) {
                pthread_mutex_unlock(&c->build_lock);
                return -ENOTDIR;
        }
        _cleanup_free_ Layer **layers = calloc(MAX(m->n_layers, 1), sizeof(Layer *));
        if (!layers) {
                pthread_mutex_unlock(&c->build_lock);
                return -ENOMEM;
        }
        size_t got = 0;
        for (; got < m->n_layers; got++) {
                k = layer_cache_get(c->layers, m->layers[got].digest, &layers[got]);
                if (k < 0)
                        break;
        }
        if (k >= 0)
                k = rootfs_build(digest, layers, m->n_layers, &r);
        if (k < 0) {
                for (size_t i = 0; i < got; i++)
                        layer_cache_put(c->layers, layers[i]);
                pthread_mutex_unlock(&c->build_lock);
                return k == -ENOMEM ? k : -EIO;
        }
        pthread_mutex_lock(&c->lock);
        Rootfs **ni = realloc(c->items, (c->n_items + 1) * sizeof(Rootfs *));
        if (!ni) {
                pthread_mutex_unlock(&c->lock);
                pthread_mutex_unlock(&c->build_lock);
                rootfs_release(c, r);
                return -ENOMEM;
        }
        c->items = ni;
        c->items[c->n_items++] = r;
        r->refs = 1;
        r->last_used = ++c->tick;
        evict_locked(c);
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->build_lock);
        *ret = r;
        return 0;
}

void rootfs_cache_put(RootfsCache *c, Rootfs *r) {
        if (!r)
                return;
        pthread_mutex_lock(&c->lock);
        r->refs--;
        evict_locked(c);
        pthread_mutex_unlock(&c->lock);
}

void rootfs_cache_ref(RootfsCache *c, Rootfs *r) {
        pthread_mutex_lock(&c->lock);
        r->refs++;
        pthread_mutex_unlock(&c->lock);
}
