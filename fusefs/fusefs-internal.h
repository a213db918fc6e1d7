/* SPDX-License-Identifier: MIT */
#pragma once

/* fusefs internals shared by fs.c and layers.c: the layer cache (entry tables and gzip
 * checkpoints, persisted in layer_fs) and merged rootfs trees. */

#include <pthread.h>

#include "fusefs/layer-index.h"
#include "storage/storage.h"

/* ---- layers */

typedef struct Layer {
        char digest[DIGEST_MAX_LEN];
        LayerCompression compression;
        TarIndex *tar;
        GzIndex *gz;          /* gzip layers */
        char *cache_path;     /* zstd layers: the decompressed tar under <root>/tmp/fuse-cache/ */
        unsigned refs;        /* under the cache lock */
        uint64_t last_used;
} Layer;

typedef struct LayerCache LayerCache;

typedef struct LayerCacheOptions {
        uint64_t span;            /* gzip checkpoint distance */
        uint64_t max_layer_bytes; /* uncompressed bound (zip bombs) */
        uint64_t zstd_cache_bytes;
        size_t max_layers;        /* entry tables kept in memory */
} LayerCacheOptions;

int layer_cache_new(Store *s, const LayerCacheOptions *o, LayerCache **ret);
LayerCache *layer_cache_free(LayerCache *c);
/* Returns the layer's index, loading it from layer_fs (or the file cache of a read-only store)
 * or building it. A broken layer gives -EIO (logged once per attempt). */
int layer_cache_get(LayerCache *c, const char *digest, Layer **ret);
void layer_cache_put(LayerCache *c, Layer *l);

/* Reading the uncompressed tar stream of a layer. One per open file. */
typedef struct LayerReader LayerReader;
int layer_reader_open(LayerCache *c, Layer *l, LayerReader **ret);
/* fd to splice from at the stream offset (plain layers, zstd cache files), or -1. */
int layer_reader_fd(LayerReader *r);
ssize_t layer_reader_pread(LayerReader *r, void *buf, size_t n, uint64_t offset);
LayerReader *layer_reader_free(LayerReader *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(LayerReader *, layer_reader_free);

/* ---- merged rootfs trees */

typedef struct RNode RNode;
struct RNode {
        char *name;
        RNode *parent;
        RNode **children;      /* sorted by name */
        size_t n_children, n_allocated;
        uint8_t type;          /* TarEntryType; hard links are resolved to FILE */
        uint32_t mode, uid, gid;
        int64_t mtime_ns;
        uint64_t size;
        uint32_t layer;        /* data source for files, symlink target source */
        uint32_t entry;
        RNode *group;          /* hard link group head (the first file of the data), or self */
        uint32_t nlink;        /* on the group head */
        bool removed;
        RNode *all_next;       /* every node ever allocated, for freeing */
};

typedef struct Rootfs {
        char digest[DIGEST_MAX_LEN];
        Layer **layers;
        size_t n_layers;
        RNode *root;
        RNode *all;
        size_t n_nodes;
        unsigned refs;
        uint64_t last_used;
} Rootfs;

typedef struct RootfsCache RootfsCache;
int rootfs_cache_new(Store *s, LayerCache *lc, size_t max, RootfsCache **ret);
RootfsCache *rootfs_cache_free(RootfsCache *c);
/* The merged tree of an image manifest; -EIO if a layer is broken, -ENOTDIR for an index. */
int rootfs_cache_get(RootfsCache *c, const char *manifest_digest, Rootfs **ret);
void rootfs_cache_put(RootfsCache *c, Rootfs *r);
void rootfs_cache_ref(RootfsCache *c, Rootfs *r);

/* Builds a merged tree from layer indexes (bottom first). Pure: used by unit tests. */
int rootfs_build(const char *digest, Layer **layers, size_t n_layers, Rootfs **ret);
void rootfs_free(Rootfs *r);
/* Walks a relative path ("" = the root) to a node; NULL if absent. */
RNode *rootfs_lookup(Rootfs *r, const char *path);
RNode *rnode_child(RNode *dir, const char *name);
/* The symlink target of a symlink node. */
const char *rnode_link(Rootfs *r, RNode *n);
const TarEntry *rnode_entry(Rootfs *r, RNode *n);

/* ---- repository names (repo-set.c) */

typedef struct RepoSet RepoSet;
typedef struct RepoSetOptions {
        int64_t ttl_ns;     /* rebuild when older (0 = 1 s; at least 10x the last build's duration) */
        size_t max_names;   /* give up caching past this many repositories (0 = 1,000,000) */
} RepoSetOptions;
typedef struct RepoSetStats {
        uint64_t builds, hits, misses;
        size_t names, bytes;
} RepoSetStats;

int repo_set_new(Store *s, const RepoSetOptions *o, RepoSet **ret);
RepoSet *repo_set_free(RepoSet *r);
/* The index changed (a secondary caught up): the next question rebuilds the set. */
void repo_set_invalidate(RepoSet *r);
/* 1 and the answer if name is a known repository and/or namespace (a prefix of one at a '/');
 * 0 if the set does not know the name (or is not available): ask the index. */
int repo_set_query(RepoSet *r, const char *name, bool *ret_repo, bool *ret_namespace);
void repo_set_stats(RepoSet *r, RepoSetStats *ret);
