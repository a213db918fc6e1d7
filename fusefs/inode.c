/* SPDX-License-Identifier: MIT */
/* Inode numbers of the FUSE view (see fusefs-internal.h, "inodes").
 *
 * Inodes are stateless: ino = hash(virtual path), the same in every run of every build, so the
 * kernel, NFS exports and tools that remember (device, inode) pairs see one file as one file across
 * remounts. Two exceptions, both still pure functions of what the node is: the regular files of a
 * rootfs that have hard links share the inode of their data, and a symlink that moves (a tag, a
 * channel pointer, a referrer) gets another inode per target. The only inode state is the table
 * ino -> path of the inodes the kernel currently knows (lookup counts; an entry goes on forget()),
 * so memory is bounded by the kernel's own inode cache. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fusefs-internal.h"

/* ------------------------------------------------------------------ encoding */

/* FNV-1a with a murmur3 finalizer. Changing it changes every inode number: don't. */
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

/* 0 is no inode and INO_ROOT is the root's. */
static uint64_t not_reserved(uint64_t h) {
        return h <= INO_ROOT ? h + 2 : h;
}

uint64_t ino_of_path(const char *path) {
        if (streq(path, "/"))
                return INO_ROOT;
        return not_reserved(hash64(path, strlen(path), 0));
}

uint64_t ino_of_data(const char *manifest_digest, uint32_t layer, uint32_t entry) {
        char key[DIGEST_MAX_LEN + 32];
        snprintf(key, sizeof(key), "%s#%u#%u", manifest_digest, layer, entry);
        return not_reserved(hash64(key, strlen(key), 1));
}

uint64_t ino_of_moving_link(const char *path, const char *target) {
        return not_reserved(hash64(target, strlen(target), ino_of_path(path)));
}

/* ------------------------------------------------------------------ the table */

typedef struct InoEntry {
        uint64_t ino;
        uint64_t nlookup;
        char *path;
        struct InoEntry *next;
} InoEntry;

struct InoTable {
        pthread_mutex_t lock;
        InoEntry **buckets;
        size_t n_buckets, n_entries;
};

static size_t bucket_of(InoTable *t, uint64_t ino) {
        return (size_t) (ino * 0x9e3779b97f4a7c15ULL >> 20) & (t->n_buckets - 1);
}

int ino_table_new(InoTable **ret) {
        InoTable *t = calloc(1, sizeof(InoTable));
        if (!t)
                return -ENOMEM;
        t->n_buckets = 1024;
        t->buckets = calloc(t->n_buckets, sizeof(InoEntry *));
        if (!t->buckets) {
                free(t);
                return -ENOMEM;
        }
        pthread_mutex_init(&t->lock, NULL);
        *ret = t;
        return 0;
}

InoTable *ino_table_free(InoTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_buckets; i++)
                for (InoEntry *e = t->buckets[i], *n; e; e = n) {
                        n = e->next;
                        free(e->path);
                        free(e);
                }
        free(t->buckets);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
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

int ino_remember(InoTable *t, uint64_t ino, const char *path) {
        if (ino == INO_ROOT)
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

void ino_forget(InoTable *t, uint64_t ino, uint64_t n) {
        if (ino == INO_ROOT)
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

char *ino_path(InoTable *t, uint64_t ino) {
        if (ino == INO_ROOT)
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

size_t ino_table_size(InoTable *t) {
        pthread_mutex_lock(&t->lock);
        size_t n = t->n_entries;
        pthread_mutex_unlock(&t->lock);
        return n;
}
