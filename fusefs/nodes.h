/* SPDX-License-Identifier: MIT */
#pragma once

/* Between nodes.c (the table of node kinds, resolution, listing, opening) and the files that
 * implement the kinds: nodes-repos.c (/repos) and nodes-registry.c (/channels, /blobs, /gc,
 * /holds). Not used outside these three files. */

#include "fusefs-internal.h"

/* ---- node kinds: what a kind does (nodes.c has the table, one row per NodeKind) */

typedef struct NodeKindInfo {
        const char *name;
        /* Fills n for the path r, or -ENOENT / -EIO. Required. */
        int (*resolve)(FsView *v, const Route *r, Node *n);
        /* Directories: adds the children of dir (resolved from path) to l. */
        int (*list)(FsView *v, const char *path, const Node *dir, DirList *l);
        /* Regular files: where the bytes come from (h is empty, fd -1). */
        int (*open)(FsView *v, const char *path, Node *n, FileHandle *h);
        /* The inode, when it is not ino_of_path(path). */
        uint64_t (*ino)(const char *path, const Node *n);
        /* Its bytes never change, but the name may go (GC): short entry timeout. */
        bool name_may_vanish;
} NodeKindInfo;

/* ---- helpers (nodes.c) */

void node_fill(FsView *v, Node *n, NodeKind k, mode_t type, uint64_t size, int64_t mtime_ns);
/* Takes target / content (NULL: -ENOMEM). */
int node_fill_link(FsView *v, Node *n, NodeKind k, char *target, int64_t mtime_ns);
int node_fill_content(FsView *v, Node *n, NodeKind k, char *content, size_t len, int64_t mtime_ns);
/* A directory that exists whenever its path routes: /, /repos, /blobs/sha256, ... */
int resolve_dir(FsView *v, const Route *r, Node *n);
Node *dirlist_add(DirList *l, const char *name);
/* Adds name by resolving path/name (small listings). Missing children are skipped. */
int list_resolve(FsView *v, const char *path, DirList *l, const char *name);
bool dirlist_has(const DirList *l, const char *name);
/* Adds s to names (malloc'ed copies) unless it is there already. */
int names_add_unique(char ***names, size_t *n, const char *s);
void names_free(char **names, size_t n);
uint64_t ino_link(const char *path, const Node *n);

/* ---- repositories (nodes-repos.c) */

/* A repository is visible when it has a manifest; a namespace when some repository is below. */
bool repo_exists(FsView *v, const char *repo);
bool namespace_exists(FsView *v, const char *prefix);
/* Distinct next path components of repositories below prefix ("" = top level). */
int ns_children(FsView *v, const char *prefix, char ***ret, size_t *ret_n);

int resolve_namespace(FsView *v, const Route *r, Node *n);
int resolve_repo_dir(FsView *v, const Route *r, Node *n);
int resolve_tag(FsView *v, const Route *r, Node *n);
int resolve_history_file(FsView *v, const Route *r, Node *n);
int resolve_manifest(FsView *v, const Route *r, Node *n);
int resolve_rootfs(FsView *v, const Route *r, Node *n);
int resolve_manifest_json(FsView *v, const Route *r, Node *n);
int resolve_config_json(FsView *v, const Route *r, Node *n);
int resolve_layers(FsView *v, const Route *r, Node *n);
int resolve_layer(FsView *v, const Route *r, Node *n);
int resolve_platforms(FsView *v, const Route *r, Node *n);
int resolve_platform(FsView *v, const Route *r, Node *n);
int resolve_referrers(FsView *v, const Route *r, Node *n);
int resolve_referrer(FsView *v, const Route *r, Node *n); /* NODE_REFTYPE and NODE_REFERRER */

int list_namespace(FsView *v, const char *path, const Node *dir, DirList *l); /* NODE_REPOS and NODE_NS */
int list_tags(FsView *v, const char *path, const Node *dir, DirList *l);
int list_manifests(FsView *v, const char *path, const Node *dir, DirList *l);
int list_manifest(FsView *v, const char *path, const Node *dir, DirList *l);
int list_layers(FsView *v, const char *path, const Node *dir, DirList *l);
int list_platforms(FsView *v, const char *path, const Node *dir, DirList *l);
int list_referrers(FsView *v, const char *path, const Node *dir, DirList *l); /* NODE_REFERRERS and NODE_REFTYPE */
int list_history(FsView *v, const char *path, const Node *dir, DirList *l);
int list_rootfs(FsView *v, const char *path, const Node *dir, DirList *l);
int open_rootfs(FsView *v, const char *path, Node *n, FileHandle *h);
uint64_t ino_rootfs(const char *path, const Node *n);

/* ---- channels, blobs, GC reports, holds (nodes-registry.c) */

int resolve_chan_env(FsView *v, const Route *r, Node *n);
int resolve_chan_svc(FsView *v, const Route *r, Node *n);
int resolve_chan_ptr(FsView *v, const Route *r, Node *n);
int resolve_blob(FsView *v, const Route *r, Node *n);
int resolve_gc_last(FsView *v, const Route *r, Node *n);
int resolve_gc_report(FsView *v, const Route *r, Node *n);
int resolve_hold_case(FsView *v, const Route *r, Node *n);
int resolve_hold_file(FsView *v, const Route *r, Node *n);

int list_channels(FsView *v, const char *path, const Node *dir, DirList *l); /* NODE_CHANNELS and NODE_CHAN_ENV */
int list_chan_svc(FsView *v, const char *path, const Node *dir, DirList *l);
int list_blobs(FsView *v, const char *path, const Node *dir, DirList *l);
int list_blob_algo(FsView *v, const char *path, const Node *dir, DirList *l);
int list_gc(FsView *v, const char *path, const Node *dir, DirList *l);
int list_gc_history(FsView *v, const char *path, const Node *dir, DirList *l);
int list_holds(FsView *v, const char *path, const Node *dir, DirList *l); /* NODE_HOLDS and NODE_HOLD_CASE */
