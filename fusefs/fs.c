/* SPDX-License-Identifier: MIT */
/* The FUSE filesystem (libfuse3 low-level API, multithreaded loop).
 *
 * Inodes are stateless: ino = hash(virtual path) (regular files of a rootfs: hash of their data
 * identity, so hard links share an inode). The only inode state is a table ino -> path for the
 * inodes the kernel currently knows (lookup counts; an entry goes on forget()), so memory is
 * bounded by the kernel's own inode cache. Every operation re-resolves the path against the
 * store, which is what makes a new push or a deleted tag visible without remounting. */

#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config-schema.h"
#include "common/log.h"
#include "common/util.h"
#include "fusefs-internal.h"
#include "fusefs.h"

#define TIMEOUT_MUTABLE 1.0
#define TIMEOUT_IMMUTABLE 86400.0

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

/* ------------------------------------------------------------------ inode table */

typedef struct InoEntry {
        uint64_t ino;
        uint64_t nlookup;
        char *path;
        struct InoEntry *next;
} InoEntry;

typedef struct InoTable {
        pthread_mutex_t lock;
        InoEntry **buckets;
        size_t n_buckets, n_entries;
} InoTable;

static uint64_t hash64(const void *data, size_t n, uint64_t seed) {
        const uint8_t *p = data;
        uint64_t h = 0xcbf29ce484222325ULL ^ seed;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

static uint64_t ino_of_path(const char *path) {
        if (streq(path, "/"))
                return FUSE_ROOT_ID;
        uint64_t h = hash64(path, strlen(path), 0);
        return h <= FUSE_ROOT_ID ? h + 2 : h;
}

static size_t bucket_of(InoTable *t, uint64_t ino) {
        return (size_t) (ino * 0x9e3779b97f4a7c15ULL >> 20) & (t->n_buckets - 1);
}

static int ino_table_init(InoTable *t) {
        pthread_mutex_init(&t->lock, NULL);
        t->n_buckets = 1024;
        t->buckets = calloc(t->n_buckets, sizeof(InoEntry *));
        return t->buckets ? 0 : -ENOMEM;
}

static void ino_table_done(InoTable *t) {
        for (size_t i = 0; i < t->n_buckets; i++)
                for (InoEntry *e = t->buckets ? t->buckets[i] : NULL, *n; e; e = n) {
                        n = e->next;
                        free(e->path);
                        free(e);
                }
        free(t->buckets);
        pthread_mutex_destroy(&t->lock);
}

static void ino_table_grow(InoTable *t) {
        size_t nb = t->n_buckets * 2;
        InoEntry **b = calloc(nb, sizeof(InoEntry *));
        if (!b)
                return;
        InoEntry **old = t->buckets;
        size_t on = t->n_buckets;
        t->buckets = b;
        t->n_buckets = nb;
        for (size_t i = 0; i < on; i++)
                for (InoEntry *e = old[i], *n; e; e = n) {
                        n = e->next;
                        size_t k = bucket_of(t, e->ino);
                        e->next = b[k];
                        b[k] = e;
                }
        free(old);
}

/* The kernel learned about ino (lookup, readdirplus, create): count it. */
static int ino_remember(InoTable *t, uint64_t ino, const char *path) {
        if (ino == FUSE_ROOT_ID)
                return 0;
        pthread_mutex_lock(&t->lock);
        size_t k = bucket_of(t, ino);
        for (InoEntry *e = t->buckets[k]; e; e = e->next)
                if (e->ino == ino) {
                        e->nlookup++;
                        /* hard links share an ino: any of their paths resolves to the same data */
                        pthread_mutex_unlock(&t->lock);
                        return 0;
                }
        InoEntry *e = calloc(1, sizeof(InoEntry));
        if (!e || !(e->path = strdup(path))) {
                free(e);
                pthread_mutex_unlock(&t->lock);
                return -ENOMEM;
        }
        e->ino = ino;
        e->nlookup = 1;
        e->next = t->buckets[k];
        t->buckets[k] = e;
        if (++t->n_entries > t->n_buckets * 2)
                ino_table_grow(t);
        pthread_mutex_unlock(&t->lock);
        return 0;
}

static void ino_forget(InoTable *t, uint64_t ino, uint64_t n) {
        if (ino == FUSE_ROOT_ID)
                return;
        pthread_mutex_lock(&t->lock);
        size_t k = bucket_of(t, ino);
        for (InoEntry **p = &t->buckets[k]; *p; p = &(*p)->next)
                if ((*p)->ino == ino) {
                        InoEntry *e = *p;
                        e->nlookup = e->nlookup > n ? e->nlookup - n : 0;
                        if (e->nlookup == 0) {
                                *p = e->next;
                                free(e->path);
                                free(e);
                                t->n_entries--;
                        }
                        break;
                }
        pthread_mutex_unlock(&t->lock);
}

/* Path of ino (malloc'ed) or NULL if the kernel should not be asking about it. */
static char *ino_path(InoTable *t, uint64_t ino) {
        if (ino == FUSE_ROOT_ID)
                return strdup("/");
        char *r = NULL;
        pthread_mutex_lock(&t->lock);
        for (InoEntry *e = t->buckets[bucket_of(t, ino)]; e; e = e->next)
                if (e->ino == ino) {
                        r = strdup(e->path);
                        break;
                }
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* ------------------------------------------------------------------ the filesystem */

struct Fusefs {
        Store *store;
        FusefsOptions o;
        struct fuse_session *se;
        char *mountpoint;
        bool mounted;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;
        bool catch_up_started;
        pthread_t catch_up_thread;
        bool loop_started;
        pthread_t loop_thread;
        LayerCache *layers;
        RootfsCache *rootfs;
        RepoSet *repos;
        InoTable inos;
        int64_t start_ns;
        uid_t uid;
        gid_t gid;
};

typedef enum Kind {
        K_ROOT,
        K_README,
        K_REPOS,          /* /repos */
        K_NS,             /* /repos/<prefix>: a namespace and/or repository */
        K_TAGS,
        K_TAG,
        K_MANIFESTS,
        K_MANIFEST,
        K_MANIFEST_JSON,
        K_CONFIG_JSON,
        K_LAYERS,
        K_LAYER,
        K_ROOTFS,         /* a node of a rootfs tree (the root included) */
        K_REFERRERS,
        K_REFTYPE,
        K_REFERRER,
        K_PLATFORMS,
        K_PLATFORM,
        K_HISTORY,
        K_HISTORY_FILE,
        K_CHANNELS,
        K_CHAN_ENV,
        K_CHAN_SVC,
        K_CHAN_PTR,
        K_BLOBS,
        K_BLOB_ALGO,
        K_BLOB,
        K_GC,
        K_GC_LAST,
        K_GC_HISTORY,
        K_GC_REPORT,
        K_HOLDS,
        K_HOLD_CASE,
        K_HOLD_FILE,
} Kind;

typedef struct Node {
        Kind kind;
        struct stat st;
        bool immutable;
        char repo[REPO_NAME_MAX + 1];
        char digest[DIGEST_MAX_LEN];
        char *name;
        char *link;
        char *content;
        size_t content_len;
        char *blob;             /* file content is this blob */
        Rootfs *rootfs;         /* referenced */
        RNode *rnode;
        bool is_repo;
} Node;

static void node_done(Fusefs *f, Node *n) {
        free(n->name);
        free(n->link);
        free(n->content);
        free(n->blob);
        if (n->rootfs)
                rootfs_cache_put(f->rootfs, n->rootfs);
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

static void fill(Fusefs *f, Node *n, Kind k, mode_t type, uint64_t size, int64_t mtime_ns) {
        n->kind = k;
        n->st.st_mode = type | (type == S_IFDIR ? 0555 : type == S_IFLNK ? 0777 : 0444);
        n->st.st_nlink = type == S_IFDIR ? 2 : 1;
        n->st.st_size = (off_t) size;
        n->st.st_blksize = 4096;
        n->st.st_blocks = (blkcnt_t) ((size + 511) / 512);
        n->st.st_uid = f->uid;
        n->st.st_gid = f->gid;
        set_time(&n->st, mtime_ns > 0 ? mtime_ns : f->start_ns);
}

static int fill_link(Fusefs *f, Node *n, Kind k, char *target, int64_t mtime_ns) {
        if (!target)
                return -ENOMEM;
        n->link = target;
        fill(f, n, k, S_IFLNK, strlen(target), mtime_ns);
        return 0;
}

static int fill_content(Fusefs *f, Node *n, Kind k, char *content, size_t len, int64_t mtime_ns) {
        if (!content)
                return -ENOMEM;
        n->content = content;
        n->content_len = len;
        fill(f, n, k, S_IFREG, len, mtime_ns);
        return 0;
}

/* ---- small store helpers */

typedef struct First {
        bool found;
} First;

static int first_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ((First *) userdata)->found = true;
        return 1;
}

static bool has_prefix(Fusefs *f, IndexColumn c, const char *prefix, size_t plen) {
        First r = {};
        (void) store_kv_iterate(f->store, NULL, c, prefix, plen, NULL, 0, first_cb, &r);
        return r.found;
}

/* A repository is visible when it has a manifest; a namespace when some repository is below.
 * Names the cached set knows are answered from it; others (a push since its last build) from
 * the index. */
static bool index_repo_exists(Fusefs *f, const char *repo) {
        size_t l = strlen(repo);
        _cleanup_free_ char *p = malloc(l + 1);
        if (!p)
                return false;
        memcpy(p, repo, l + 1); /* with the NUL separator */
        return has_prefix(f, INDEX_REPO_MANIFEST, p, l + 1);
}

static bool index_namespace_exists(Fusefs *f, const char *prefix) {
        _cleanup_free_ char *p = strdup_printf("%s/", prefix);
        return p && has_prefix(f, INDEX_REPO_MANIFEST, p, strlen(p));
}

static bool repo_exists(Fusefs *f, const char *repo) {
        bool is_repo, is_ns;
        if (repo_set_query(f->repos, repo, &is_repo, &is_ns) > 0)
                return is_repo;
        return index_repo_exists(f, repo);
}

static bool namespace_exists(Fusefs *f, const char *prefix) {
        bool is_repo, is_ns;
        if (repo_set_query(f->repos, prefix, &is_repo, &is_ns) > 0)
                return is_ns;
        return index_namespace_exists(f, prefix);
}

static int repo_manifest_pushed(Fusefs *f, const char *repo, const char *digest, int64_t *ret) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL), *v = NULL;
        size_t vl;
        if (!k)
                return -ENOMEM;
        int r = store_kv_get(f->store, NULL, INDEX_REPO_MANIFEST, k, kl, &v, &vl);
        if (r < 0)
                return r;
        RepoManifestInfo info = {};
        if (repo_manifest_info_decode(v, vl, &info) >= 0)
                *ret = info.pushed;
        return 0;
}

static bool component_ok(const char *c) {
        return c[0] && !streq(c, ".") && !streq(c, "..") && strlen(c) <= 255;
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

static char *reftype_name(const char *artifact_type) {
        char *s = strdup(artifact_type && *artifact_type ? artifact_type : "unknown");
        for (char *c = s; c && *c; c++)
                if (*c == '/')
                        *c = '_';
        return s;
}

static char *time_name(uint64_t ns) {
        char buf[64];
        format_timestamp(buf, sizeof(buf), (int64_t) ns);
        return strdup_printf("%s-%09" PRIu64 ".json", buf, ns % 1000000000);
}

/* ---- GC reports and holds */

typedef struct Collect {
        const char *want;   /* name to find (NULL = collect all) */
        char **names;
        size_t n;
        char *val;          /* value of `want` */
        size_t vlen;
        uint64_t key_ns;
        size_t prefix_len;
} Collect;

static int gc_report_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        Collect *c = userdata;
        if (klen != c->prefix_len + 8)
                return 0;
        uint64_t ns = 0;
        for (size_t i = 0; i < 8; i++)
                ns = ns << 8 | (uint8_t) key[c->prefix_len + i];
        _cleanup_free_ char *name = time_name(ns);
        if (!name)
                return -ENOMEM;
        if (c->want) {
                if (streq(name, c->want)) {
                        c->val = strndup(val, vlen);
                        c->vlen = vlen;
                        c->key_ns = ns;
                        return 1;
                }
                return 0;
        }
        char **nn = realloc(c->names, (c->n + 1) * sizeof(char *));
        if (!nn)
                return -ENOMEM;
        c->names = nn;
        c->names[c->n++] = steal_pointer(&name);
        return 0;
}

static void collect_done(Collect *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->names[i]);
        free(c->names);
        free(c->val);
}

/* hold keys: digest\0case_id */
typedef struct HoldScan {
        const char *case_id;   /* NULL: collect case ids */
        const char *digest;    /* with case_id: want this digest's value */
        char **names;
        size_t n;
        char *val;
        size_t vlen;
        int64_t created;
} HoldScan;

static int add_unique(char ***names, size_t *n, const char *s) {
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

static int hold_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        HoldScan *h = userdata;
        const char *sep = memchr(key, 0, klen);
        if (!sep)
                return 0;
        _cleanup_free_ char *digest = strndup(key, (size_t) (sep - key));
        _cleanup_free_ char *case_id = strndup(sep + 1, klen - (size_t) (sep - key) - 1);
        if (!digest || !case_id)
                return -ENOMEM;
        if (!h->case_id)
                return add_unique(&h->names, &h->n, case_id);
        if (!streq(case_id, h->case_id))
                return 0;
        if (h->digest) {
                if (streq(digest, h->digest)) {
                        h->val = strndup(val, vlen);
                        h->vlen = vlen;
                        json_t *j = json_loadb(val, vlen, 0, NULL);
                        json_t *c = j ? json_object_get(j, "created") : NULL;
                        h->created = json_is_integer(c) ? (int64_t) json_integer_value(c) : 0;
                        json_decref(j);
                        return 1;
                }
                return 0;
        }
        _cleanup_free_ char *name = strdup_printf("%s.json", digest);
        return name ? add_unique(&h->names, &h->n, name) : -ENOMEM;
}

static void hold_scan_done(HoldScan *h) {
        for (size_t i = 0; i < h->n; i++)
                free(h->names[i]);
        free(h->names);
        free(h->val);
}

/* ---- tag history */

static int history_text_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        FILE *out = userdata;
        json_t *j = json_loadb(val, vlen, 0, NULL);
        if (!j)
                return 0;
        json_t *t = json_object_get(j, "time");
        char ts[64] = "-";
        if (json_is_integer(t))
                format_timestamp(ts, sizeof(ts), (int64_t) json_integer_value(t));
        else if (json_is_string(t))
                snprintf(ts, sizeof(ts), "%s", json_string_value(t));
        const char *action = json_string_value(json_object_get(j, "action"));
        const char *digest = json_string_value(json_object_get(j, "digest"));
        const char *actor = json_string_value(json_object_get(j, "actor"));
        fprintf(out, "%s  %-8s  %s  %s\n", ts, action ? action : "-", digest ? digest : "-", actor ? actor : "-");
        json_decref(j);
        return 0;
}

static int history_text(Fusefs *f, const char *repo, const char *tag, char **ret, size_t *ret_len) {
        size_t pl;
        _cleanup_free_ char *p = index_key_join(&pl, repo, tag, "", NULL);
        if (!p)
                return -ENOMEM;
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (!out)
                return -ENOMEM;
        int r = store_kv_iterate(f->store, NULL, INDEX_TAG_HISTORY, p, pl, NULL, 0, history_text_cb, out);
        fclose(out);
        if (r < 0 || len == 0) {
                free(buf);
                return r < 0 ? r : -ENOENT;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* ---- directory listings */

typedef struct DirEnt {
        char *name;
        Node node;
} DirEnt;

typedef struct DirList {
        DirEnt *e;
        size_t n, allocated;
} DirList;

static void dirlist_done(Fusefs *f, DirList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->e[i].name);
                node_done(f, &l->e[i].node);
        }
        free(l->e);
        *l = (DirList) {};
}

static Node *dirlist_add(DirList *l, const char *name) {
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

/* Distinct next path components of repositories below prefix ("" = top level). */
typedef struct NsScan {
        size_t plen;
        char **names;
        size_t n;
        char *after;
        size_t alen;
} NsScan;

static int ns_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        NsScan *s = userdata;
        const char *c = key + s->plen;
        size_t rest = klen - s->plen, cl = 0;
        while (cl < rest && c[cl] != '/' && c[cl] != 0)
                cl++;
        if (cl == 0 || cl == rest)
                return 0;
        _cleanup_free_ char *name = strndup(c, cl);
        if (!name || add_unique(&s->names, &s->n, name) < 0)
                return -ENOMEM;
        /* skip the rest of this child: everything starting with prefix+name+sep */
        free(s->after);
        s->alen = s->plen + cl + 2;
        s->after = malloc(s->alen);
        if (!s->after)
                return -ENOMEM;
        memcpy(s->after, key, s->plen + cl + 1);
        s->after[s->alen - 1] = (char) 0xff;
        return 1;
}

static int ns_children(Fusefs *f, const char *prefix, char ***ret, size_t *ret_n) {
        _cleanup_free_ char *p = prefix[0] ? strdup_printf("%s/", prefix) : strdup("");
        if (!p)
                return -ENOMEM;
        NsScan s = { .plen = strlen(p) };
        int r;
        for (;;) {
                size_t before = s.n;
                _cleanup_free_ char *after = steal_pointer(&s.after);
                r = store_kv_iterate(f->store, NULL, INDEX_REPO_MANIFEST, p, s.plen, after, after ? s.alen : 0, ns_cb, &s);
                if (r < 0 || (s.n == before && !s.after))
                        break;
                if (!s.after)
                        break;
        }
        free(s.after);
        if (r < 0) {
                for (size_t i = 0; i < s.n; i++)
                        free(s.names[i]);
                free(s.names);
                return r;
        }
        *ret = s.names;
        *ret_n = s.n;
        return 0;
}

static void free_names(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

typedef struct ManifestScan {
        Fusefs *f;
        DirList *l;
        size_t plen;
} ManifestScan;

static int manifests_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ManifestScan *m = userdata;
        _cleanup_free_ char *digest = strndup(key + m->plen, klen - m->plen);
        if (!digest)
                return -ENOMEM;
        RepoManifestInfo info = {};
        (void) repo_manifest_info_decode(val, vlen, &info);
        Node *n = dirlist_add(m->l, digest);
        if (!n)
                return -ENOMEM;
        fill(m->f, n, K_MANIFEST, S_IFDIR, 0, info.pushed);
        n->immutable = true;
        return 0;
}

typedef struct TagScan {
        Fusefs *f;
        DirList *l;
        size_t plen;
} TagScan;

static int tags_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagScan *t = userdata;
        _cleanup_free_ char *tag = strndup(key + t->plen, klen - t->plen);
        if (!tag)
                return -ENOMEM;
        TagInfo ti;
        if (tag_info_decode(val, vlen, &ti) < 0 || !tag_is_valid(tag))
                return 0;
        Node *n = dirlist_add(t->l, tag);
        if (!n)
                return -ENOMEM;
        return fill_link(t->f, n, K_TAG, strdup_printf("../_manifests/%s", ti.digest), ti.updated);
}

typedef struct BlobScan {
        Fusefs *f;
        DirList *l;
        size_t plen;
} BlobScan;

static int blobs_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        BlobScan *b = userdata;
        _cleanup_free_ char *hex = strndup(key + b->plen, klen - b->plen);
        if (!hex)
                return -ENOMEM;
        BlobInfo info = {};
        if (blob_info_decode(val, vlen, &info) < 0)
                return 0;
        Node *n = dirlist_add(b->l, hex);
        if (!n)
                return -ENOMEM;
        fill(b->f, n, K_BLOB, S_IFREG, info.size, info.created);
        n->immutable = true;
        return 0;
}

typedef struct HistScan {
        size_t plen;
        char **names;
        size_t n;
        char *after;
        size_t alen;
} HistScan;

static int hist_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        HistScan *h = userdata;
        const char *t = key + h->plen;
        const char *sep = memchr(t, 0, klen - h->plen);
        if (!sep)
                return 0;
        _cleanup_free_ char *tag = strndup(t, (size_t) (sep - t));
        if (!tag || add_unique(&h->names, &h->n, tag) < 0)
                return -ENOMEM;
        free(h->after);
        h->alen = (size_t) (sep - key) + 2;
        h->after = malloc(h->alen);
        if (!h->after)
                return -ENOMEM;
        memcpy(h->after, key, h->alen - 1);
        h->after[h->alen - 1] = (char) 0xff;
        return 1;
}

/* ------------------------------------------------------------------ resolution */

static int resolve(Fusefs *f, const char *path, Node *n);

/* n takes over a reference to rfs. */
static int fill_rnode(Node *n, Rootfs *rfs, RNode *rn) {
        n->kind = K_ROOTFS;
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

static int resolve_rootfs(Fusefs *f, Node *n, const char *digest, char **comps, size_t nc) {
        Rootfs *rfs = NULL;
        int r = rootfs_cache_get(f->rootfs, digest, &rfs);
        if (r == -ENOTDIR)
                return -ENOENT;
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EIO;
        RNode *rn = rfs->root;
        for (size_t i = 0; i < nc && rn; i++)
                rn = rnode_child(rn, comps[i]);
        if (!rn) {
                rootfs_cache_put(f->rootfs, rfs);
                return -ENOENT;
        }
        return fill_rnode(n, rfs, rn);
}

/* Inside /repos/<repo>/_manifests/<digest>/... */
static int resolve_manifest(Fusefs *f, Node *n, const char *repo, const char *digest, char **comps, size_t nc) {
        int64_t pushed = 0;
        int r;
        if (digest_parse(digest, NULL) < 0)
                return -ENOENT;
        r = repo_manifest_pushed(f, repo, digest, &pushed);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EIO;
        snprintf(n->repo, sizeof(n->repo), "%s", repo);
        snprintf(n->digest, sizeof(n->digest), "%s", digest);
        if (nc == 0) {
                fill(f, n, K_MANIFEST, S_IFDIR, 0, pushed);
                return 0;
        }
        if (streq(comps[0], "rootfs"))
                return resolve_rootfs(f, n, digest, comps + 1, nc - 1);

        _cleanup_(manifest_freep) Manifest *m = NULL;
        r = store_manifest_parsed(f->store, NULL, digest, &m);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EIO;
        n->immutable = true;
        const char *c = comps[0];
        if (streq(c, "manifest.json") && nc == 1) {
                _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
                r = store_manifest_get_by_digest(f->store, digest, &sm);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                char *d = malloc(MAX(sm->size, 1));
                if (!d)
                        return -ENOMEM;
                memcpy(d, sm->data, sm->size);
                return fill_content(f, n, K_MANIFEST_JSON, d, sm->size, pushed);
        }
        if (streq(c, "config.json") && nc == 1 && m->has_config) {
                BlobInfo bi;
                r = store_blob_info(f->store, m->config.digest, &bi);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                fill(f, n, K_CONFIG_JSON, S_IFREG, bi.size, pushed);
                n->blob = strdup(m->config.digest);
                return n->blob ? 0 : -ENOMEM;
        }
        if (streq(c, "layers") && !manifest_kind_is_index(m->kind)) {
                if (nc == 1) {
                        fill(f, n, K_LAYERS, S_IFDIR, 0, pushed);
                        return 0;
                }
                if (nc != 2)
                        return -ENOENT;
                char *end;
                unsigned long i = strtoul(comps[1], &end, 10);
                if (end == comps[1] || *end != '-' || i >= m->n_layers || !streq(end + 1, m->layers[i].digest))
                        return -ENOENT;
                BlobInfo bi;
                r = store_blob_info(f->store, m->layers[i].digest, &bi);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                fill(f, n, K_LAYER, S_IFREG, bi.size, pushed);
                n->blob = strdup(m->layers[i].digest);
                return n->blob ? 0 : -ENOMEM;
        }
        if (streq(c, "platforms") && manifest_kind_is_index(m->kind)) {
                if (nc == 1) {
                        fill(f, n, K_PLATFORMS, S_IFDIR, 0, pushed);
                        return 0;
                }
                if (nc != 2)
                        return -ENOENT;
                for (size_t i = 0; i < m->n_manifests; i++) {
                        _cleanup_free_ char *pn = platform_name(m->manifests + i);
                        if (pn && streq(pn, comps[1]))
                                return fill_link(f, n, K_PLATFORM, strdup_printf("../../%s", m->manifests[i].digest), pushed);
                }
                return -ENOENT;
        }
        if (streq(c, "referrers")) {
                n->immutable = false; /* new referrers may arrive */
                if (nc == 1) {
                        fill(f, n, K_REFERRERS, S_IFDIR, 0, pushed);
                        return 0;
                }
                if (nc > 3)
                        return -ENOENT;
                json_t *arr = NULL;
                r = store_referrers(f->store, repo, digest, NULL, &arr);
                if (r < 0)
                        return -EIO;
                size_t i;
                json_t *d;
                bool found = false;
                json_array_foreach(arr, i, d) {
                        _cleanup_free_ char *tn = reftype_name(json_string_value(json_object_get(d, "artifactType")));
                        const char *rd = json_string_value(json_object_get(d, "digest"));
                        if (!tn || !rd || !streq(tn, comps[1]))
                                continue;
                        if (nc == 2) {
                                found = true;
                                fill(f, n, K_REFTYPE, S_IFDIR, 0, pushed);
                                break;
                        }
                        if (streq(rd, comps[2])) {
                                int64_t rp = 0;
                                (void) repo_manifest_pushed(f, repo, rd, &rp);
                                found = true;
                                r = fill_link(f, n, K_REFERRER, strdup_printf("../../../%s", rd), rp);
                                break;
                        }
                }
                json_decref(arr);
                if (r < 0)
                        return r;
                return found ? 0 : -ENOENT;
        }
        return -ENOENT;
}

static int resolve_repos(Fusefs *f, Node *n, char **comps, size_t nc) {
        char prefix[REPO_NAME_MAX + 2] = "";
        size_t i = 0;
        int r;
        if (nc == 0) {
                fill(f, n, K_REPOS, S_IFDIR, 0, 0);
                return 0;
        }
        for (; i < nc && comps[i][0] != '_'; i++) {
                if (strlen(prefix) + strlen(comps[i]) + 2 > REPO_NAME_MAX + 1)
                        return -ENOENT;
                if (prefix[0])
                        strcat(prefix, "/");
                strcat(prefix, comps[i]);
        }
        if (!prefix[0])
                return -ENOENT;
        bool is_repo = repo_name_is_valid(prefix) && repo_exists(f, prefix);
        size_t pl = strlen(prefix);
        if (pl >= sizeof(n->repo)) /* cannot happen given the check above; keeps -Wformat-truncation quiet too */
                return -ENOENT;
        memcpy(n->repo, prefix, pl + 1);
        if (i == nc) {
                if (!is_repo && !namespace_exists(f, prefix))
                        return -ENOENT;
                fill(f, n, K_NS, S_IFDIR, 0, 0);
                n->is_repo = is_repo;
                return 0;
        }
        if (!is_repo)
                return -ENOENT;
        const char *sec = comps[i++];
        char **rest = comps + i;
        size_t nr = nc - i;
        if (streq(sec, "_tags")) {
                if (nr == 0) {
                        fill(f, n, K_TAGS, S_IFDIR, 0, 0);
                        return 0;
                }
                if (nr != 1 || !tag_is_valid(rest[0]))
                        return -ENOENT;
                TagInfo ti;
                r = store_tag_get(f->store, prefix, rest[0], &ti);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                return fill_link(f, n, K_TAG, strdup_printf("../_manifests/%s", ti.digest), ti.updated);
        }
        if (streq(sec, "_manifests")) {
                if (nr == 0) {
                        fill(f, n, K_MANIFESTS, S_IFDIR, 0, 0);
                        return 0;
                }
                return resolve_manifest(f, n, prefix, rest[0], rest + 1, nr - 1);
        }
        if (streq(sec, "_history")) {
                if (nr == 0) {
                        fill(f, n, K_HISTORY, S_IFDIR, 0, 0);
                        return 0;
                }
                if (nr != 1 || !tag_is_valid(rest[0]))
                        return -ENOENT;
                char *text;
                size_t len;
                r = history_text(f, prefix, rest[0], &text, &len);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                return fill_content(f, n, K_HISTORY_FILE, text, len, 0);
        }
        return -ENOENT;
}

static int resolve(Fusefs *f, const char *path, Node *n) {
        *n = (Node) {};
        _cleanup_free_ char *copy = strdup(path);
        char *comps[512];
        size_t nc = 0;
        int r;
        if (!copy)
                return -ENOMEM;
        for (char *s = copy, *save = NULL, *t; (t = strtok_r(s, "/", &save)); s = NULL) {
                if (nc == ELEMENTSOF(comps) || !component_ok(t))
                        return -ENOENT;
                comps[nc++] = t;
        }
        if (nc == 0) {
                fill(f, n, K_ROOT, S_IFDIR, 0, 0);
                return 0;
        }
        const char *top = comps[0];
        if (streq(top, "README") && nc == 1)
                return fill_content(f, n, K_README, strdup(readme), strlen(readme), 0);
        if (streq(top, "repos")) {
                r = resolve_repos(f, n, comps + 1, nc - 1);
                if (r < 0)
                        node_done(f, n);
                return r;
        }
        if (streq(top, "channels")) {
                if (nc == 1) {
                        fill(f, n, K_CHANNELS, S_IFDIR, 0, 0);
                        return 0;
                }
                _cleanup_free_ char *p = strdup_printf("channels/%s", comps[1]);
                if (!p)
                        return -ENOMEM;
                if (nc == 2) {
                        if (!namespace_exists(f, p))
                                return -ENOENT;
                        fill(f, n, K_CHAN_ENV, S_IFDIR, 0, 0);
                        return 0;
                }
                _cleanup_free_ char *repo = strdup_printf("channels/%s/%s", comps[1], comps[2]);
                if (!repo || !repo_name_is_valid(repo) || !repo_exists(f, repo))
                        return -ENOENT;
                if (nc == 3) {
                        fill(f, n, K_CHAN_SVC, S_IFDIR, 0, 0);
                        return 0;
                }
                if (nc != 4 || !(streq(comps[3], "stable") || streq(comps[3], "candidate")))
                        return -ENOENT;
                TagInfo ti;
                r = store_tag_get(f->store, repo, comps[3], &ti);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                return fill_link(f, n, K_CHAN_PTR, strdup_printf("../../../repos/%s/_manifests/%s", repo, ti.digest),
                                 ti.updated);
        }
        if (streq(top, "blobs")) {
                if (nc == 1) {
                        fill(f, n, K_BLOBS, S_IFDIR, 0, 0);
                        return 0;
                }
                if (!streq(comps[1], "sha256") && !streq(comps[1], "sha512"))
                        return -ENOENT;
                if (nc == 2) {
                        fill(f, n, K_BLOB_ALGO, S_IFDIR, 0, 0);
                        return 0;
                }
                if (nc != 3)
                        return -ENOENT;
                _cleanup_free_ char *d = strdup_printf("%s:%s", comps[1], comps[2]);
                BlobInfo bi;
                if (!d || digest_parse(d, NULL) < 0)
                        return -ENOENT;
                r = store_blob_info(f->store, d, &bi);
                if (r < 0)
                        return r == -ENOENT ? -ENOENT : -EIO;
                fill(f, n, K_BLOB, S_IFREG, bi.size, bi.created);
                n->immutable = true;
                n->blob = steal_pointer(&d);
                return 0;
        }
        if (streq(top, "gc")) {
                if (nc == 1) {
                        fill(f, n, K_GC, S_IFDIR, 0, 0);
                        return 0;
                }
                if (streq(comps[1], "last.json") && nc == 2) {
                        char *v;
                        size_t vl;
                        r = store_kv_get(f->store, NULL, INDEX_META, "gc/last", 7, &v, &vl);
                        if (r < 0)
                                return r == -ENOENT ? -ENOENT : -EIO;
                        return fill_content(f, n, K_GC_LAST, v, vl, 0);
                }
                if (streq(comps[1], "history")) {
                        if (nc == 2) {
                                fill(f, n, K_GC_HISTORY, S_IFDIR, 0, 0);
                                return 0;
                        }
                        if (nc != 3)
                                return -ENOENT;
                        Collect c = { .want = comps[2], .prefix_len = 10 };
                        r = store_kv_iterate(f->store, NULL, INDEX_META, "gc/report/", 10, NULL, 0, gc_report_cb, &c);
                        if (r < 0 || !c.val) {
                                collect_done(&c);
                                return r < 0 ? -EIO : -ENOENT;
                        }
                        r = fill_content(f, n, K_GC_REPORT, steal_pointer(&c.val), c.vlen, (int64_t) c.key_ns);
                        n->immutable = true;
                        collect_done(&c);
                        return r;
                }
                return -ENOENT;
        }
        if (streq(top, "holds")) {
                if (nc == 1) {
                        fill(f, n, K_HOLDS, S_IFDIR, 0, 0);
                        return 0;
                }
                if (nc > 3)
                        return -ENOENT;
                _cleanup_free_ char *digest = nc == 3 && endswith(comps[2], ".json") ? strndup(comps[2], strlen(comps[2]) - 5) : NULL;
                HoldScan h = { .case_id = comps[1], .digest = digest };
                if (nc == 3 && !digest)
                        return -ENOENT;
                r = store_kv_iterate(f->store, NULL, INDEX_HOLD, NULL, 0, NULL, 0, hold_cb, &h);
                if (r < 0) {
                        hold_scan_done(&h);
                        return -EIO;
                }
                if (nc == 2) {
                        bool any = h.n > 0;
                        hold_scan_done(&h);
                        if (!any)
                                return -ENOENT;
                        fill(f, n, K_HOLD_CASE, S_IFDIR, 0, 0);
                        return 0;
                }
                if (!h.val) {
                        hold_scan_done(&h);
                        return -ENOENT;
                }
                r = fill_content(f, n, K_HOLD_FILE, steal_pointer(&h.val), h.vlen, h.created);
                hold_scan_done(&h);
                return r;
        }
        return -ENOENT;
}

static char *child_path(const char *parent, const char *name) {
        return streq(parent, "/") ? strdup_printf("/%s", name) : strdup_printf("%s/%s", parent, name);
}

/* Adds name by resolving it (small listings). Missing children are skipped. */
static int list_resolve(Fusefs *f, const char *path, DirList *l, const char *name) {
        _cleanup_free_ char *cp = child_path(path, name);
        if (!cp)
                return -ENOMEM;
        Node tmp;
        int r = resolve(f, cp, &tmp);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        Node *n = dirlist_add(l, name);
        if (!n) {
                node_done(f, &tmp);
                return -ENOMEM;
        }
        *n = tmp;
        return 0;
}

static int list_dir(Fusefs *f, const char *path, Node *dir, DirList *l) {
        int r = 0;
        switch (dir->kind) {
        case K_ROOT: {
                static const char *const top[] = { "README", "repos", "channels", "blobs", "gc", "holds" };
                for (size_t i = 0; i < ELEMENTSOF(top) && r >= 0; i++)
                        r = list_resolve(f, path, l, top[i]);
                return r;
        }
        case K_REPOS:
        case K_NS:
        case K_CHANNELS:
        case K_CHAN_ENV: {
                char **names = NULL;
                size_t nn = 0;
                const char *prefix = dir->kind == K_REPOS ? "" : dir->kind == K_NS ? dir->repo : NULL;
                _cleanup_free_ char *chp = NULL;
                if (!prefix) {
                        const char *env = strrchr(path, '/') + 1;
                        chp = dir->kind == K_CHANNELS ? strdup("channels") : strdup_printf("channels/%s", env);
                        if (!chp)
                                return -ENOMEM;
                        prefix = chp;
                }
                if (dir->kind == K_NS && dir->is_repo) {
                        static const char *const sec[] = { "_tags", "_manifests", "_history" };
                        for (size_t i = 0; i < ELEMENTSOF(sec); i++) {
                                Node *n = dirlist_add(l, sec[i]);
                                if (!n)
                                        return -ENOMEM;
                                fill(f, n, i == 0 ? K_TAGS : i == 1 ? K_MANIFESTS : K_HISTORY, S_IFDIR, 0, 0);
                                snprintf(n->repo, sizeof(n->repo), "%s", dir->repo);
                        }
                }
                r = ns_children(f, prefix, &names, &nn);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < nn; i++) {
                        if (dir->kind == K_CHAN_ENV) {
                                r = list_resolve(f, path, l, names[i]);
                                if (r < 0)
                                        break;
                                continue;
                        }
                        Node *n = dirlist_add(l, names[i]);
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        fill(f, n, dir->kind == K_CHANNELS ? K_CHAN_ENV : K_NS, S_IFDIR, 0, 0);
                        if (dir->kind != K_CHANNELS) {
                                int k = prefix[0] ? snprintf(n->repo, sizeof(n->repo), "%.*s/%.*s", REPO_NAME_MAX, prefix,
                                                             REPO_NAME_MAX, names[i])
                                                  : snprintf(n->repo, sizeof(n->repo), "%s", names[i]);
                                if (k < 0 || (size_t) k >= sizeof(n->repo)) {
                                        l->n--;
                                        free(l->e[l->n].name);
                                        continue;
                                }
                                n->is_repo = repo_exists(f, n->repo);
                        }
                }
                free_names(names, nn);
                return r;
        }
        case K_TAGS: {
                /* one scan of the repository's tag records (not a list, then a get per tag) */
                size_t pl;
                _cleanup_free_ char *p = index_key_join(&pl, dir->repo, "", NULL);
                if (!p)
                        return -ENOMEM;
                TagScan t = { .f = f, .l = l, .plen = pl };
                return store_kv_iterate(f->store, NULL, INDEX_TAG, p, pl, NULL, 0, tags_cb, &t);
        }
        case K_MANIFESTS: {
                size_t pl;
                _cleanup_free_ char *p = index_key_join(&pl, dir->repo, "", NULL);
                if (!p)
                        return -ENOMEM;
                ManifestScan m = { .f = f, .l = l, .plen = pl };
                return store_kv_iterate(f->store, NULL, INDEX_REPO_MANIFEST, p, pl, NULL, 0, manifests_cb, &m);
        }
        case K_MANIFEST: {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                r = store_manifest_parsed(f->store, NULL, dir->digest, &m);
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
                /* filled from the parsed manifest (what resolve_manifest() gives for each name),
                 * without re-resolving and re-parsing it per entry */
                int64_t pushed = dir->st.st_mtim.tv_sec * 1000000000LL + dir->st.st_mtim.tv_nsec;
                for (size_t i = 0; i < nn; i++) {
                        uint64_t size = 0;
                        Kind k;
                        mode_t type = S_IFDIR;
                        if (streq(names[i], "manifest.json")) {
                                _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
                                if (store_manifest_get_by_digest(f->store, dir->digest, &sm) < 0)
                                        continue;
                                size = sm->size;
                                k = K_MANIFEST_JSON;
                                type = S_IFREG;
                        } else if (streq(names[i], "config.json")) {
                                BlobInfo bi;
                                if (store_blob_info(f->store, m->config.digest, &bi) < 0)
                                        continue;
                                size = bi.size;
                                k = K_CONFIG_JSON;
                                type = S_IFREG;
                        } else
                                k = streq(names[i], "layers")    ? K_LAYERS
                                    : streq(names[i], "rootfs")  ? K_ROOTFS /* no layer index built to list it */
                                    : streq(names[i], "referrers") ? K_REFERRERS
                                                                   : K_PLATFORMS;
                        Node *n = dirlist_add(l, names[i]);
                        if (!n)
                                return -ENOMEM;
                        fill(f, n, k, type, size, pushed);
                        n->immutable = k != K_REFERRERS; /* new referrers may arrive */
                }
                return 0;
        }
        case K_LAYERS: {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                r = store_manifest_parsed(f->store, NULL, dir->digest, &m);
                if (r < 0)
                        return -EIO;
                for (size_t i = 0; i < m->n_layers && r >= 0; i++) {
                        _cleanup_free_ char *name = strdup_printf("%zu-%s", i, m->layers[i].digest);
                        r = name ? list_resolve(f, path, l, name) : -ENOMEM;
                }
                return r;
        }
        case K_PLATFORMS: {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                r = store_manifest_parsed(f->store, NULL, dir->digest, &m);
                if (r < 0)
                        return -EIO;
                for (size_t i = 0; i < m->n_manifests && r >= 0; i++) {
                        _cleanup_free_ char *name = platform_name(m->manifests + i);
                        bool dup = false;
                        for (size_t j = 0; name && j < l->n; j++)
                                dup = dup || streq(l->e[j].name, name);
                        if (name && !dup)
                                r = list_resolve(f, path, l, name);
                }
                return r;
        }
        case K_REFERRERS:
        case K_REFTYPE: {
                json_t *arr = NULL;
                r = store_referrers(f->store, dir->repo, dir->digest, NULL, &arr);
                if (r < 0)
                        return -EIO;
                const char *type = dir->kind == K_REFTYPE ? strrchr(path, '/') + 1 : NULL;
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
                        bool dup = false;
                        for (size_t j = 0; j < l->n; j++)
                                dup = dup || streq(l->e[j].name, name);
                        if (!dup && (r = list_resolve(f, path, l, name)) < 0)
                                break;
                }
                json_decref(arr);
                return r;
        }
        case K_HISTORY: {
                size_t pl;
                _cleanup_free_ char *p = index_key_join(&pl, dir->repo, "", NULL);
                if (!p)
                        return -ENOMEM;
                HistScan h = { .plen = pl };
                for (;;) {
                        size_t before = h.n;
                        _cleanup_free_ char *after = steal_pointer(&h.after);
                        r = store_kv_iterate(f->store, NULL, INDEX_TAG_HISTORY, p, pl, after, after ? h.alen : 0, hist_cb, &h);
                        if (r < 0 || h.n == before || !h.after)
                                break;
                }
                free(h.after);
                for (size_t i = 0; i < h.n && r >= 0; i++)
                        r = list_resolve(f, path, l, h.names[i]);
                free_names(h.names, h.n);
                return r;
        }
        case K_CHAN_SVC: {
                static const char *const ptr[] = { "candidate", "stable" };
                for (size_t i = 0; i < ELEMENTSOF(ptr) && r >= 0; i++)
                        r = list_resolve(f, path, l, ptr[i]);
                return r;
        }
        case K_BLOBS: {
                r = list_resolve(f, path, l, "sha256");
                if (r >= 0 && has_prefix(f, INDEX_BLOB, "sha512:", 7))
                        r = list_resolve(f, path, l, "sha512");
                return r;
        }
        case K_BLOB_ALGO: {
                const char *algo = strrchr(path, '/') + 1;
                _cleanup_free_ char *p = strdup_printf("%s:", algo);
                if (!p)
                        return -ENOMEM;
                BlobScan b = { .f = f, .l = l, .plen = strlen(p) };
                return store_kv_iterate(f->store, NULL, INDEX_BLOB, p, strlen(p), NULL, 0, blobs_cb, &b);
        }
        case K_GC: {
                r = list_resolve(f, path, l, "last.json");
                if (r >= 0)
                        r = list_resolve(f, path, l, "history");
                return r;
        }
        case K_GC_HISTORY: {
                Collect c = { .prefix_len = 10 };
                r = store_kv_iterate(f->store, NULL, INDEX_META, "gc/report/", 10, NULL, 0, gc_report_cb, &c);
                for (size_t i = 0; i < c.n && r >= 0; i++)
                        r = list_resolve(f, path, l, c.names[i]);
                collect_done(&c);
                return r;
        }
        case K_HOLDS:
        case K_HOLD_CASE: {
                HoldScan h = { .case_id = dir->kind == K_HOLD_CASE ? strrchr(path, '/') + 1 : NULL };
                r = store_kv_iterate(f->store, NULL, INDEX_HOLD, NULL, 0, NULL, 0, hold_cb, &h);
                for (size_t i = 0; i < h.n && r >= 0; i++)
                        if (case_id_is_valid(h.names[i]) || dir->kind == K_HOLD_CASE)
                                r = list_resolve(f, path, l, h.names[i]);
                hold_scan_done(&h);
                return r;
        }
        case K_ROOTFS: {
                RNode *rn = dir->rnode;
                for (size_t i = 0; i < rn->n_children; i++) {
                        Node *n = dirlist_add(l, rn->children[i]->name);
                        if (!n)
                                return -ENOMEM;
                        rootfs_cache_ref(f->rootfs, dir->rootfs);
                        r = fill_rnode(n, dir->rootfs, rn->children[i]);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        default:
                return -ENOTDIR;
        }
}

/* ------------------------------------------------------------------ FUSE operations */

static uint64_t node_ino(const char *path, const Node *n) {
        if (n->kind == K_ROOTFS && n->rnode && n->rnode->type == TAR_ENTRY_FILE &&
            (n->rnode->group != n->rnode || n->rnode->group->nlink > 1)) {
                /* hard links share the inode of their data */
                char key[DIGEST_MAX_LEN + 32];
                snprintf(key, sizeof(key), "%s#%u#%u", n->rootfs->digest, n->rnode->layer, n->rnode->entry);
                uint64_t h = hash64(key, strlen(key), 1);
                return h <= FUSE_ROOT_ID ? h + 2 : h;
        }
        if (S_ISLNK(n->st.st_mode) && !n->immutable && n->link) {
                /* A tag or channel pointer that moves gets another inode: the kernel caches a
                 * symlink's target for as long as it keeps the inode (FUSE_CAP_CACHE_SYMLINKS,
                 * no invalidation on attribute changes), so a moved pointer must not keep it. */
                uint64_t h = hash64(n->link, strlen(n->link), ino_of_path(path));
                return h <= FUSE_ROOT_ID ? h + 2 : h;
        }
        return ino_of_path(path);
}

static double node_timeout(const Node *n) {
        return n->immutable ? TIMEOUT_IMMUTABLE : TIMEOUT_MUTABLE;
}

static Fusefs *F(fuse_req_t req) {
        return fuse_req_userdata(req);
}

static void make_entry(const char *path, Node *n, struct fuse_entry_param *e) {
        *e = (struct fuse_entry_param) {};
        e->ino = node_ino(path, n);
        e->attr = n->st;
        e->attr.st_ino = e->ino;
        e->attr_timeout = e->entry_timeout = node_timeout(n);
        if (n->kind == K_BLOB)
                e->entry_timeout = TIMEOUT_MUTABLE; /* the bytes never change, but GC may remove the name */
}

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        if (conn->capable & FUSE_CAP_SPLICE_MOVE)
                conn->want |= FUSE_CAP_SPLICE_MOVE;
        if (conn->capable & FUSE_CAP_READDIRPLUS)
                conn->want |= FUSE_CAP_READDIRPLUS;
        conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
        if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
                conn->want |= FUSE_CAP_CACHE_SYMLINKS;
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        conn->max_readahead = 1U << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        Fusefs *f = F(req);
        _cleanup_free_ char *pp = ino_path(&f->inos, parent);
        if (!pp) {
                fuse_reply_err(req, ESTALE);
                return;
        }
        _cleanup_free_ char *cp = child_path(pp, name);
        Node n;
        int r = cp ? resolve(f, cp, &n) : -ENOMEM;
        if (r < 0) {
                if (r == -ENOENT) {
                        /* negative entries of mutable listings expire quickly */
                        struct fuse_entry_param e = { .entry_timeout = TIMEOUT_MUTABLE };
                        fuse_reply_entry(req, &e);
                } else
                        fuse_reply_err(req, -r);
                return;
        }
        struct fuse_entry_param e;
        make_entry(cp, &n, &e);
        if (ino_remember(&f->inos, e.ino, cp) < 0) {
                node_done(f, &n);
                fuse_reply_err(req, ENOMEM);
                return;
        }
        node_done(f, &n);
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        ino_forget(&F(req)->inos, ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        for (size_t i = 0; i < count; i++)
                ino_forget(&F(req)->inos, forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* Resolves ino; replies with an error and returns false on failure. */
static bool resolve_ino(fuse_req_t req, fuse_ino_t ino, char **ret_path, Node *n) {
        Fusefs *f = F(req);
        char *p = ino_path(&f->inos, ino);
        if (!p) {
                fuse_reply_err(req, ESTALE);
                return false;
        }
        int r = resolve(f, p, n);
        if (r < 0) {
                free(p);
                fuse_reply_err(req, -r);
                return false;
        }
        *ret_path = p;
        return true;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        struct stat st = n.st;
        st.st_ino = ino;
        double t = node_timeout(&n);
        node_done(F(req), &n);
        fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        Fusefs *f = F(req); /* a reply frees req */
        _cleanup_free_ char *link = steal_pointer(&n.link);
        node_done(f, &n);
        if (!link)
                fuse_reply_err(req, EINVAL);
        else
                fuse_reply_readlink(req, link);
}

typedef struct DirHandle {
        char *path;
        DirList list;
} DirHandle;

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Fusefs *f = F(req);
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        if (!S_ISDIR(n.st.st_mode)) {
                node_done(f, &n);
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        DirHandle *h = calloc(1, sizeof(DirHandle));
        if (!h) {
                node_done(f, &n);
                fuse_reply_err(req, ENOMEM);
                return;
        }
        int r = list_dir(f, p, &n, &h->list);
        bool immutable = n.immutable;
        node_done(f, &n);
        if (r < 0) {
                dirlist_done(f, &h->list);
                free(h);
                fuse_reply_err(req, r == -ENOENT ? EIO : -r);
                return;
        }
        h->path = steal_pointer(&p);
        fi->fh = (uintptr_t) h;
        fi->cache_readdir = immutable;
        fi->keep_cache = immutable;
        fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
        Fusefs *f = F(req);
        DirHandle *h = (DirHandle *) (uintptr_t) fi->fh;
        _cleanup_free_ char *buf = malloc(size);
        size_t used = 0;
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        /* offsets: 1 = ".", 2 = "..", 3 + i = entry i */
        for (off_t i = off; (size_t) i < h->list.n + 2; i++) {
                const char *name;
                struct stat st = {};
                struct fuse_entry_param e = {};
                _cleanup_free_ char *cp = NULL;
                if (i == 0) {
                        name = ".";
                        st.st_mode = S_IFDIR;
                        st.st_ino = ino;
                        e.attr = st;
                } else if (i == 1) {
                        name = "..";
                        st.st_mode = S_IFDIR;
                        e.attr = st;
                } else {
                        DirEnt *d = h->list.e + (i - 2);
                        name = d->name;
                        cp = child_path(h->path, name);
                        if (!cp)
                                break;
                        make_entry(cp, &d->node, &e);
                        st = e.attr;
                }
                size_t need = plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
                                   : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
                if (used + need > size)
                        break;
                if (plus) {
                        if (i >= 2 && ino_remember(&f->inos, e.ino, cp) < 0)
                                break;
                        if (i < 2)
                                e = (struct fuse_entry_param) {}; /* "." and "..": no lookup count */
                        fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
                } else
                        fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
                used += need;
        }
        fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        DirHandle *h = (DirHandle *) (uintptr_t) fi->fh;
        if (h) {
                dirlist_done(F(req), &h->list);
                free(h->path);
                free(h);
        }
        fuse_reply_err(req, 0);
}

typedef struct FileHandle {
        pthread_mutex_t lock;
        char *content;
        size_t content_len;
        BlobReader *br;       /* holds the blob open: GC may unlink it, we keep reading */
        LayerReader *lr;
        Rootfs *rootfs;       /* keeps the layer indexes alive */
        int fd;               /* splice source or -1 */
        uint64_t base, size;
} FileHandle;

static void file_handle_free(Fusefs *f, FileHandle *h) {
        if (!h)
                return;
        free(h->content);
        blob_reader_free(h->br);
        layer_reader_free(h->lr);
        if (h->rootfs)
                rootfs_cache_put(f->rootfs, h->rootfs);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Fusefs *f = F(req);
        if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
                fuse_reply_err(req, EROFS);
                return;
        }
        _cleanup_free_ char *p = NULL;
        Node n;
        if (!resolve_ino(req, ino, &p, &n))
                return;
        int r = 0;
        FileHandle *h = calloc(1, sizeof(FileHandle));
        if (!h) {
                node_done(f, &n);
                fuse_reply_err(req, ENOMEM);
                return;
        }
        pthread_mutex_init(&h->lock, NULL);
        h->fd = -1;
        if (S_ISDIR(n.st.st_mode))
                r = -EISDIR;
        else if (!S_ISREG(n.st.st_mode))
                r = -EINVAL;
        else if (n.content) {
                h->content = steal_pointer(&n.content);
                h->content_len = n.content_len;
                h->size = n.content_len;
        } else if (n.blob) {
                r = store_blob_open(f->store, n.blob, &h->br);
                if (r >= 0) {
                        h->fd = blob_reader_fd(h->br);
                        h->size = blob_reader_size(h->br);
                }
                if (r == -ENOENT)
                        r = -EIO;
        } else if (n.kind == K_ROOTFS) {
                const TarEntry *e = rnode_entry(n.rootfs, n.rnode);
                if (!e)
                        r = -EIO;
                else {
                        r = layer_reader_open(f->layers, n.rootfs->layers[n.rnode->layer], &h->lr);
                        h->base = e->offset;
                        h->size = e->size;
                        if (r >= 0)
                                h->fd = layer_reader_fd(h->lr);
                        h->rootfs = steal_pointer(&n.rootfs);
                        if (r < 0) {
                                log_warning_errno(r, "fusefs: %s: cannot open layer: %m", p);
                                r = -EIO;
                        }
                }
        } else
                r = -EIO;
        bool immutable = n.immutable;
        node_done(f, &n);
        if (r < 0) {
                file_handle_free(f, h);
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uintptr_t) h;
        fi->keep_cache = immutable;
        if (!immutable && h->content)
                fi->direct_io = 1; /* synthesized text may change size under the page cache */
        if (fuse_reply_open(req, fi) == -ENOENT)
                file_handle_free(f, h); /* interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        FileHandle *h = (FileHandle *) (uintptr_t) fi->fh;
        if (off < 0 || (uint64_t) off >= h->size) {
                fuse_reply_buf(req, NULL, 0);
                return;
        }
        size = (size_t) MIN((uint64_t) size, h->size - (uint64_t) off);
        if (h->content) {
                /* Reply from a copy: once the kernel has the reply, the reader may close the file
                 * and a RELEASE on another thread frees h before fuse_reply_buf() returns (ASan's
                 * writev interceptor checks the buffer after the syscall and reports that). */
                _cleanup_free_ char *copy = malloc(MAX(size, 1));
                if (!copy) {
                        fuse_reply_err(req, ENOMEM);
                        return;
                }
                memcpy(copy, h->content + off, size);
                fuse_reply_buf(req, copy, size);
                return;
        }
        if (h->fd >= 0) {
                struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
                bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                bv.buf[0].fd = h->fd;
                bv.buf[0].pos = (off_t) (h->base + (uint64_t) off);
                fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
                return;
        }
        _cleanup_free_ char *buf = malloc(MAX(size, 1));
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        ssize_t k;
        pthread_mutex_lock(&h->lock);
        if (h->lr)
                k = layer_reader_pread(h->lr, buf, size, h->base + (uint64_t) off);
        else
                k = blob_reader_pread(h->br, buf, size, (uint64_t) off);
        pthread_mutex_unlock(&h->lock);
        if (k < 0) {
                log_warning_errno((int) k, "fusefs: read of inode %" PRIu64 " failed: %m", (uint64_t) ino);
                fuse_reply_err(req, EIO);
                return;
        }
        fuse_reply_buf(req, buf, (size_t) k);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        file_handle_free(F(req), (FileHandle *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        struct statvfs st = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255, .f_flag = ST_RDONLY };
        fuse_reply_statfs(req, &st);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        if (size == 0)
                fuse_reply_xattr(req, 0);
        else
                fuse_reply_buf(req, NULL, 0);
}

/* Everything that would change something. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
        fuse_reply_err(req, EROFS);
}
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        fuse_reply_err(req, EROFS);
}
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fuse_reply_err(req, EROFS);
}
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
        fuse_reply_err(req, EROFS);
}
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
        fuse_reply_err(req, EROFS);
}
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
        fuse_reply_err(req, EROFS);
}
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
        fuse_reply_err(req, EROFS);
}
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
        fuse_reply_err(req, EROFS);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
        fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .readlink = op_readlink,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .open = op_open,
        .read = op_read,
        .release = op_release,
        .statfs = op_statfs,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setattr = op_setattr,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .unlink = op_unlink,
        .rmdir = op_unlink,
        .symlink = op_symlink,
        .rename = op_rename,
        .link = op_link,
        .write = op_write,
        .create = op_create,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
};

/* ------------------------------------------------------------------ lifecycle */

void fusefs_options_init(FusefsOptions *o) {
        *o = (FusefsOptions) { .catch_up_interval_ns = (int64_t) NSEC_PER_SEC };
}

static int json_u64(json_t *fuse, const char *key, uint64_t *ret, char *err, size_t errlen) {
        json_t *v = json_object_get(fuse, key);
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(err, errlen, "fuse.%s: expected a non-negative integer", key);
                return -EINVAL;
        }
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

int fusefs_options_from_json(json_t *fuse, FusefsOptions *o, char *err, size_t errlen) {
        if (!json_is_object(fuse))
                return 0;
        json_t *v = json_object_get(fuse, "catch_up_interval");
        if (v) {
                int64_t ns;
                if (config_duration_ns(v, &ns) < 0 || ns <= 0) {
                        snprintf(err, errlen, "fuse.catch_up_interval: expected a duration like \"1s\"");
                        return -EINVAL;
                }
                o->catch_up_interval_ns = ns;
        }
        v = json_object_get(fuse, "allow_other");
        if (v) {
                if (!json_is_boolean(v)) {
                        snprintf(err, errlen, "fuse.allow_other: expected a boolean");
                        return -EINVAL;
                }
                o->allow_other = json_is_true(v);
        }
        uint64_t threads = o->threads;
        int r = json_u64(fuse, "threads", &threads, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "gzip_span", &o->gzip_span, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "max_layer_bytes", &o->max_layer_bytes, err, errlen);
        if (r >= 0)
                r = json_u64(fuse, "zstd_cache_bytes", &o->zstd_cache_bytes, err, errlen);
        o->threads = (unsigned) MIN(threads, 1024U);
        return r;
}

static void *catch_up_main(void *userdata) {
        Fusefs *f = userdata;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        pthread_mutex_lock(&f->lock);
        while (!f->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = ts.tv_nsec + f->o.catch_up_interval_ns;
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&f->cond, &f->lock, &ts);
                if (f->stopping)
                        break;
                pthread_mutex_unlock(&f->lock);
                int r = store_catch_up(f->store);
                if (r < 0)
                        log_warning_errno(r, "fusefs: catching up with the primary failed: %m");
                repo_set_invalidate(f->repos);
                pthread_mutex_lock(&f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

int fusefs_mount(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret) {
        int r;
        Fusefs *f = calloc(1, sizeof(Fusefs));
        if (!f)
                return -ENOMEM;
        f->store = s;
        if (o)
                f->o = *o;
        else
                fusefs_options_init(&f->o);
        if (f->o.catch_up_interval_ns <= 0)
                f->o.catch_up_interval_ns = (int64_t) NSEC_PER_SEC;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        f->start_ns = clock_now_ns();
        f->uid = getuid();
        f->gid = getgid();
        f->mountpoint = strdup(mountpoint);
        LayerCacheOptions lo = {
                .span = f->o.gzip_span, .max_layer_bytes = f->o.max_layer_bytes, .zstd_cache_bytes = f->o.zstd_cache_bytes,
        };
        if (!f->mountpoint || ino_table_init(&f->inos) < 0 || layer_cache_new(s, &lo, &f->layers) < 0 ||
            rootfs_cache_new(s, f->layers, 16, &f->rootfs) < 0 || repo_set_new(s, NULL, &f->repos) < 0) {
                fusefs_free(f);
                return -ENOMEM;
        }

        char opts[256];
        snprintf(opts, sizeof(opts), "ro,fsname=plura,subtype=plura%s", f->o.allow_other ? ",allow_other" : "");
        char *argv[] = { (char *) "plura", (char *) "-o", opts, f->o.debug ? (char *) "-d" : NULL, NULL };
        struct fuse_args args = FUSE_ARGS_INIT(f->o.debug ? 4 : 3, argv);
        f->se = fuse_session_new(&args, &ops, sizeof(ops), f);
        fuse_opt_free_args(&args);
        if (!f->se) {
                fusefs_free(f);
                return log_error_errno(EINVAL, "fusefs: cannot create the FUSE session");
        }
        if (fuse_session_mount(f->se, mountpoint) != 0) {
                fusefs_free(f);
                return log_error_errno(EIO, "fusefs: cannot mount on %s", mountpoint);
        }
        f->mounted = true;
        if (store_is_read_only(s)) {
                r = pthread_create(&f->catch_up_thread, NULL, catch_up_main, f);
                if (r != 0) {
                        fusefs_free(f);
                        return -r;
                }
                f->catch_up_started = true;
        }
        log_info("fusefs: mounted on %s%s", mountpoint, store_is_read_only(s) ? " (secondary, catching up)" : "");
        *ret = f;
        return 0;
}

int fusefs_run(Fusefs *f) {
        struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = f->o.threads ? f->o.threads : 10 };
        int r = fuse_session_loop_mt(f->se, &cfg);
        return r < 0 ? r : 0;
}

int fusefs_install_signal_handlers(Fusefs *f) {
        return fuse_set_signal_handlers(f->se) != 0 ? -EIO : 0;
}

void fusefs_remove_signal_handlers(Fusefs *f) {
        fuse_remove_signal_handlers(f->se);
}

static void unmount_once(Fusefs *f) {
        pthread_mutex_lock(&f->lock);
        bool was = f->mounted;
        f->mounted = false;
        pthread_mutex_unlock(&f->lock);
        if (was && f->se)
                fuse_session_unmount(f->se);
}

void fusefs_stop(Fusefs *f) {
        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        if (f->se)
                fuse_session_exit(f->se);
        /* unmounting aborts the connection: the workers' reads fail and the loop returns */
        unmount_once(f);
}

Fusefs *fusefs_free(Fusefs *f) {
        if (!f)
                return NULL;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        if (f->catch_up_started)
                pthread_join(f->catch_up_thread, NULL);
        unmount_once(f);
        if (f->se)
                fuse_session_destroy(f->se);
        rootfs_cache_free(f->rootfs);
        layer_cache_free(f->layers);
        repo_set_free(f->repos);
        if (f->inos.buckets)
                ino_table_done(&f->inos);
        free(f->mountpoint);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
        return NULL;
}

static void *loop_main(void *userdata) {
        Fusefs *f = userdata;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        int r = fusefs_run(f);
        if (r < 0)
                log_warning_errno(r, "fusefs: session loop ended: %m");
        return NULL;
}

int fusefs_start_in_process(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret) {
        Fusefs *f = NULL;
        int r = fusefs_mount(s, mountpoint, o, &f);
        if (r < 0)
                return r;
        r = pthread_create(&f->loop_thread, NULL, loop_main, f);
        if (r != 0) {
                fusefs_free(f);
                return -r;
        }
        f->loop_started = true;
        *ret = f;
        return 0;
}

void fusefs_stop_in_process(Fusefs *f) {
        if (!f)
                return;
        fusefs_stop(f);
        if (f->loop_started)
                pthread_join(f->loop_thread, NULL);
        fusefs_free(f);
}
