/* SPDX-License-Identifier: MIT */
#pragma once

/* fusefs internals: the layer cache (entry tables and gzip checkpoints, persisted through
 * store_layer_index_*()), merged rootfs trees, repository names, inode numbers and the nodes of
 * the view (what a path is, independent of FUSE: nodes*.c); fs.c serves them over FUSE. */

#include <pthread.h>
#include <sys/stat.h>

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
/* Returns the layer's index, loading it from the store (or the file cache of a read-only store)
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

/* ---- inode numbers (inode.c): stateless 64-bit ids, a pure function of what a node is */

#define INO_ROOT UINT64_C(1) /* FUSE_ROOT_ID */
/* A node's inode from its path ("/" is INO_ROOT): the same in every run. */
uint64_t ino_of_path(const char *path);
/* A rootfs file with hard links: the inode of its data (image, layer and entry that hold it),
 * shared by all its names. */
uint64_t ino_of_data(const char *manifest_digest, uint32_t layer, uint32_t entry);
/* A symlink that moves (tag, channel pointer, referrer): one inode per target, because the kernel
 * caches a symlink's target for as long as it keeps the inode (FUSE_CAP_CACHE_SYMLINKS). */
uint64_t ino_of_moving_link(const char *path, const char *target);

/* The inodes the kernel knows (lookup counts), to find their paths again. Thread-safe. */
typedef struct InoTable InoTable;
int ino_table_new(InoTable **ret);
InoTable *ino_table_free(InoTable *t);
/* The kernel learned about ino (lookup, readdirplus): count it. A second path of a known ino (a
 * hard link) is not kept: any of them names the same data. */
int ino_remember(InoTable *t, uint64_t ino, const char *path);
void ino_forget(InoTable *t, uint64_t ino, uint64_t n);
/* Path of ino (malloc'ed) or NULL if the kernel should not be asking about it. */
char *ino_path(InoTable *t, uint64_t ino);
size_t ino_table_size(InoTable *t);

/* ---- the nodes of the view (nodes.c: the table of node kinds; nodes-repos.c, nodes-registry.c) */

typedef enum NodeKind {
        NODE_ROOT,
        NODE_README,
        NODE_REPOS,          /* /repos */
        NODE_NS,             /* /repos/<prefix>: a namespace and/or repository */
        NODE_TAGS,
        NODE_TAG,
        NODE_MANIFESTS,
        NODE_MANIFEST,
        NODE_MANIFEST_JSON,
        NODE_CONFIG_JSON,
        NODE_LAYERS,
        NODE_LAYER,
        NODE_ROOTFS,         /* a node of a rootfs tree (the root included) */
        NODE_REFERRERS,
        NODE_REFTYPE,
        NODE_REFERRER,
        NODE_PLATFORMS,
        NODE_PLATFORM,
        NODE_HISTORY,
        NODE_HISTORY_FILE,
        NODE_CHANNELS,
        NODE_CHAN_ENV,
        NODE_CHAN_SVC,
        NODE_CHAN_PTR,
        NODE_BLOBS,
        NODE_BLOB_ALGO,
        NODE_BLOB,
        NODE_GC,
        NODE_GC_LAST,
        NODE_GC_HISTORY,
        NODE_GC_REPORT,
        NODE_HOLDS,
        NODE_HOLD_CASE,
        NODE_HOLD_FILE,
        _NODE_KIND_MAX,
        _NODE_KIND_INVALID = -1,
} NodeKind;

const char *node_kind_to_string(NodeKind k);

/* What the nodes are read from. */
typedef struct FsView {
        Store *store;
        LayerCache *layers;
        RootfsCache *rootfs;
        RepoSet *repos;
        int64_t start_ns;    /* the time of nodes that have none of their own */
        uid_t uid;
        gid_t gid;
} FsView;

int fs_view_init(FsView *v, Store *s, const LayerCacheOptions *lo);
void fs_view_done(FsView *v);

typedef struct Node {
        NodeKind kind;
        struct stat st;
        bool immutable;         /* long kernel cache timeouts, keep_cache */
        char repo[REPO_NAME_MAX + 1];
        char digest[DIGEST_MAX_LEN];
        char *link;
        char *content;          /* synthesized file content */
        size_t content_len;
        char *blob;             /* file content is this blob */
        Rootfs *rootfs;         /* referenced */
        RNode *rnode;
        bool is_repo;
} Node;

void node_done(FsView *v, Node *n);

/* A path split into components, and the kind of node it names as far as the path alone tells
 * (the store decides whether the node exists). */
#define PATH_COMPONENTS_MAX 512
typedef struct Route {
        NodeKind kind;
        char *copy;
        char *comps[PATH_COMPONENTS_MAX];
        size_t n;
        char repo[REPO_NAME_MAX + 1]; /* /repos/<repo>/..., the repository channels/<env>/<svc> */
        const char *digest;           /* /repos/<repo>/_manifests/<digest>/... */
        const char *sub;              /* reftype of a referrer, algorithm of a blob, case of a hold file */
        const char *name;             /* the last component (tag, layer, platform, env, case, ...) */
        char **rest;                  /* below rootfs/ */
        size_t n_rest;
} Route;
/* -ENOENT if no node can have this path. Call route_done() in every case. */
int route_parse(const char *path, Route *ret);
void route_done(Route *r);

/* Kernel cache timeouts (s): listings and pointers that move, digest-addressed nodes. */
#define TIMEOUT_MUTABLE 1.0
#define TIMEOUT_IMMUTABLE 86400.0

char *child_path(const char *parent, const char *name);

/* Resolves an absolute path of the view against the store (every operation re-resolves, which is
 * what makes a new push or a deleted tag visible without remounting). */
int node_resolve(FsView *v, const char *path, Node *n);
uint64_t node_ino(const char *path, const Node *n);
double node_attr_timeout(const Node *n);
double node_entry_timeout(const Node *n);

typedef struct DirEnt {
        char *name;
        Node node;
} DirEnt;

typedef struct DirList {
        DirEnt *e;
        size_t n, allocated;
} DirList;

void dirlist_done(FsView *v, DirList *l);
/* The entries of directory dir (resolved from path); -ENOTDIR for other nodes. */
int node_list(FsView *v, const char *path, const Node *dir, DirList *l);

/* An open file: its bytes come from synthesized content, a blob, or a layer (rootfs files). */
typedef struct FileHandle {
        pthread_mutex_t lock;
        char *content;
        size_t content_len;
        BlobReader *br;       /* holds the blob open: GC may unlink it, we keep reading */
        LayerReader *lr;
        Rootfs *rootfs;       /* keeps the layer indexes alive */
        int fd;               /* splice source or -1 */
        uint64_t base, size;  /* the file's bytes are [base, base + size) of the fd or reader */
} FileHandle;

/* Opens the file n (resolved from path) for reading; takes what it needs from n. */
int node_open(FsView *v, const char *path, Node *n, FileHandle **ret);
/* Reads from the blob or layer reader (not content, not the fd); serialized per handle. */
ssize_t file_handle_pread(FileHandle *h, void *buf, size_t n, uint64_t offset);
void file_handle_free(FsView *v, FileHandle *h);
