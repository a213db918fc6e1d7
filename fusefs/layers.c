/* SPDX-License-Identifier: MIT */
/* Layer indexes (built once, persisted in the layer_fs column family, cached in memory with
 * LRU eviction) and merged rootfs trees with OCI whiteouts applied.
 *
 * Records of a layer (format version 1), through store_layer_index_get/put() under these sub-keys
 * (the store keys them "<layer digest>\0<sub-key>"):
 *   "v1\0entries"       tar entry table (tar_index_serialize, own magic and version)
 *   "v1\0kind"          "plain" | "gzip" | "zstd"
 *   "v1\0gz"            gzip checkpoint header (gz_index_serialize_header)
 *   "v1\0cp\0<u32 BE>"  one gzip checkpoint with its zstd-compressed 32 KiB window
 * "kind" is written last in the same batch, so its presence means the record is complete.
 * A read-only store (plura mount beside a server, a RocksDB secondary) cannot write them: the
 * same records, keyed "<layer digest>\0<sub-key>", go into <root>/tmp/fuse-cache/<hex>.idx instead. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fusefs-internal.h"
#include "storage/layer-fs.h"

struct LayerCache {
        Store *store;
        LayerCacheOptions o;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Layer **layers;
        size_t n_layers;
        char **building;   /* digests being built right now */
        size_t n_building;
        uint64_t tick;
        char *cache_dir;
        /* layers that failed to index: answered with EIO without re-reading them (FIFO) */
        char failed[64][DIGEST_MAX_LEN];
        size_t n_failed;
};

/* ---- reading stored layer bytes */

typedef struct BlobSource {
        BlobReader *br;
        int fd;
} BlobSource;

static ssize_t blob_source_read(void *userdata, void *buf, size_t n, uint64_t offset) {
        BlobSource *b = userdata;
        if (b->fd >= 0)
                return loop_pread(b->fd, buf, n, (off_t) offset);
        return blob_reader_pread(b->br, buf, n, offset);
}

static int blob_source_open(Store *s, const char *digest, BlobSource *ret) {
        int r = store_blob_open(s, digest, &ret->br);
        if (r < 0)
                return r;
        ret->fd = blob_reader_fd(ret->br);
        return 0;
}

static void blob_source_done(BlobSource *b) {
        blob_reader_free(b->br);
        b->br = NULL;
}

/* ---- cache */

int layer_cache_new(Store *s, const LayerCacheOptions *o, LayerCache **ret) {
        LayerCache *c = calloc(1, sizeof(LayerCache));
        if (!c)
                return -ENOMEM;
        c->store = s;
        c->o = *o;
        if (!c->o.span)
                c->o.span = GZ_DEFAULT_SPAN;
        if (!c->o.max_layer_bytes)
                c->o.max_layer_bytes = UINT64_C(64) << 30;
        if (!c->o.zstd_cache_bytes)
                c->o.zstd_cache_bytes = UINT64_C(8) << 30;
        if (!c->o.max_layers)
                c->o.max_layers = 256;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        c->cache_dir = strdup_printf("%s/tmp/fuse-cache", store_root(s));
        if (!c->cache_dir) {
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void layer_free(Layer *l) {
        if (!l)
                return;
        tar_index_free(l->tar);
        gz_index_free(l->gz);
        free(l->cache_path);
        free(l);
}

LayerCache *layer_cache_free(LayerCache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_layers; i++)
                layer_free(c->layers[i]);
        free(c->layers);
        free(c->building);
        free(c->cache_dir);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
        free(c);
        return NULL;
}

/* ---- persistence */

typedef struct Rec {
        char *key;      /* sub-key */
        size_t klen;
        char *val;
        size_t vlen;
} Rec;

static void recs_free(Rec *r, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(r[i].key);
                free(r[i].val);
        }
        free(r);
}

/* The sub-key "v1\0<name>[\0<cp u32 BE>]". */
static char *lkey(const char *name, uint32_t cp, bool with_cp, size_t *ret_len) {
        size_t nl = strlen(name);
        size_t n = 2 + 1 + nl + (with_cp ? 5 : 0);
        char *k = malloc(n);
        if (!k)
                return NULL;
        memcpy(k, "v1", 2);
        k[2] = 0;
        memcpy(k + 3, name, nl);
        if (with_cp) {
                k[3 + nl] = 0;
                uint8_t *b = (uint8_t *) k + 4 + nl;
                b[0] = cp >> 24, b[1] = cp >> 16, b[2] = cp >> 8, b[3] = (uint8_t) cp;
        }
        *ret_len = n;
        return k;
}

static int layer_records(const Layer *l, Rec **ret, size_t *ret_n) {
        size_t n = 2 + (l->gz ? 1 + l->gz->n_points : 0), i = 0;
        Rec *r = calloc(n, sizeof(Rec));
        int k = 0;
        if (!r)
                return -ENOMEM;
        r[i].key = lkey("entries", 0, false, &r[i].klen);
        k = tar_index_serialize(l->tar, &r[i].val, &r[i].vlen);
        i++;
        if (k >= 0 && l->gz) {
                r[i].key = lkey("gz", 0, false, &r[i].klen);
                k = gz_index_serialize_header(l->gz, &r[i].val, &r[i].vlen);
                i++;
                for (size_t p = 0; k >= 0 && p < l->gz->n_points; p++, i++) {
                        r[i].key = lkey("cp", (uint32_t) p, true, &r[i].klen);
                        k = gz_checkpoint_serialize(l->gz->points + p, &r[i].val, &r[i].vlen);
                }
        }
        if (k >= 0) {
                r[i].key = lkey("kind", 0, false, &r[i].klen);
                r[i].val = strdup(layer_compression_to_string(l->compression));
                r[i].vlen = r[i].val ? strlen(r[i].val) : 0;
                i++;
        }
        for (size_t j = 0; j < i; j++)
                if (!r[j].key || !r[j].val)
                        k = -ENOMEM;
        if (k < 0) {
                recs_free(r, n);
                return k;
        }
        *ret = r;
        *ret_n = i;
        return 0;
}

static char *idx_file_path(LayerCache *c, const char *digest) {
        return strdup_printf("%s/%s.idx", c->cache_dir, digest_hex(digest));
}

static int persist(LayerCache *c, const Layer *l) {
        Rec *recs = NULL;
        size_t n = 0;
        int r = layer_records(l, &recs, &n);
        if (r < 0)
                return r;
        size_t dl = strlen(l->digest);
        if (!store_is_read_only(c->store)) {
                _cleanup_free_ LayerIndexRecord *lr = calloc(n, sizeof(LayerIndexRecord));
                if (!lr) {
                        recs_free(recs, n);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n; i++)
                        lr[i] = (LayerIndexRecord) { recs[i].key, recs[i].klen, recs[i].val, recs[i].vlen };
                r = store_layer_index_put(c->store, l->digest, lr, n);
        } else {
                /* "PLFC" u32 version, then u32 klen, key (digest\0sub-key), u32 vlen, val ... */
                size_t total = 8;
                for (size_t i = 0; i < n; i++)
                        total += 8 + dl + 1 + recs[i].klen + recs[i].vlen;
                _cleanup_free_ uint8_t *buf = malloc(total);
                if (!buf)
                        r = -ENOMEM;
                else {
                        size_t o = 0;
                        memcpy(buf, "PLFC\1\0\0\0", 8);
                        o = 8;
                        for (size_t i = 0; i < n; i++) {
                                uint32_t kl = (uint32_t) (dl + 1 + recs[i].klen), vl = (uint32_t) recs[i].vlen;
                                memcpy(buf + o, &kl, 4);
                                memcpy(buf + o + 4, l->digest, dl + 1);
                                memcpy(buf + o + 4 + dl + 1, recs[i].key, recs[i].klen);
                                o += 4 + kl;
                                memcpy(buf + o, &vl, 4);
                                memcpy(buf + o + 4, recs[i].val, vl);
                                o += 4 + vl;
                        }
                        _cleanup_free_ char *p = idx_file_path(c, l->digest);
                        r = mkdir_p(c->cache_dir, 0700);
                        if (r >= 0 && p)
                                r = write_file_atomic(p, buf, total, 0600);
                }
        }
        recs_free(recs, n);
        return r;
}

/* Looks a record of layer digest up in the store or, failing that, in the file cache (loaded into
 * file/flen). */
static int rec_get(LayerCache *c, const char *file, size_t flen, const char *digest, const char *key, size_t klen,
                   char **ret, size_t *ret_len) {
        int r = store_layer_index_get(c->store, digest, key, klen, ret, ret_len);
        if (r != -ENOENT || !file)
                return r;
        size_t dl = strlen(digest), o = 8;
        while (o + 4 <= flen) {
                uint32_t kl, vl;
                memcpy(&kl, file + o, 4);
                if (kl > flen - o - 4)
                        return -EBADMSG;
                const char *k = file + o + 4;
                o += 4 + kl;
                if (o + 4 > flen)
                        return -EBADMSG;
                memcpy(&vl, file + o, 4);
                if (vl > flen - o - 4)
                        return -EBADMSG;
                if (kl == dl + 1 + klen && memcmp(k, digest, dl + 1) == 0 && memcmp(k + dl + 1, key, klen) == 0) {
                        char *v = malloc(vl + 1);
                        if (!v)
                                return -ENOMEM;
                        memcpy(v, file + o + 4, vl);
                        v[vl] = 0;
                        *ret = v;
                        *ret_len = vl;
                        return 0;
                }
                o += 4 + vl;
        }
        return -ENOENT;
}

static int load(LayerCache *c, const char *digest, Layer **ret) {
        _cleanup_free_ char *file = NULL, *kind = NULL, *ent = NULL, *gzh = NULL;
        size_t flen = 0, kl, el, gl, klen;
        _cleanup_free_ char *fp = idx_file_path(c, digest);
        if (fp && read_full_file(fp, 1U << 30, &file, &flen) >= 0 && (flen < 8 || memcmp(file, "PLFC\1\0\0\0", 8) != 0)) {
                free(file);
                file = NULL;
        }
        _cleanup_free_ char *k = lkey("kind", 0, false, &klen);
        if (!k)
                return -ENOMEM;
        int r = rec_get(c, file, flen, digest, k, klen, &kind, &kl);
        if (r < 0)
                return r;
        Layer *l = calloc(1, sizeof(Layer));
        if (!l)
                return -ENOMEM;
        snprintf(l->digest, sizeof(l->digest), "%s", digest);
        l->compression = streq(kind, "gzip") ? LAYER_GZIP : streq(kind, "zstd") ? LAYER_ZSTD : LAYER_PLAIN;
        free(k);
        k = lkey("entries", 0, false, &klen);
        r = k ? rec_get(c, file, flen, digest, k, klen, &ent, &el) : -ENOMEM;
        if (r >= 0)
                r = tar_index_deserialize(ent, el, &l->tar);
        if (r >= 0 && l->compression == LAYER_GZIP) {
                free(k);
                k = lkey("gz", 0, false, &klen);
                r = k ? rec_get(c, file, flen, digest, k, klen, &gzh, &gl) : -ENOMEM;
                int np = 0;
                if (r >= 0)
                        r = np = gz_index_deserialize_header(gzh, gl, &l->gz);
                for (int i = 0; r >= 0 && i < np; i++) {
                        _cleanup_free_ char *ck = NULL, *cv = NULL;
                        size_t ckl, cvl;
                        ck = lkey("cp", (uint32_t) i, true, &ckl);
                        r = ck ? rec_get(c, file, flen, digest, ck, ckl, &cv, &cvl) : -ENOMEM;
                        if (r >= 0)
                                r = gz_checkpoint_deserialize(cv, cvl, l->gz->points + i);
                        if (r >= 0)
                                l->gz->n_points++;
                }
        }
        if (r >= 0 && l->compression == LAYER_ZSTD) {
                /* the decompressed file may have been evicted: then rebuild */
                l->cache_path = strdup_printf("%s/%s.tar", c->cache_dir, digest_hex(digest));
                struct stat st;
                if (!l->cache_path || stat(l->cache_path, &st) < 0 || (uint64_t) st.st_size != l->tar->stream_size)
                        r = -ENOENT;
        }
        if (r < 0) {
                layer_free(l);
                return r == -ENOMEM ? r : -ENOENT;
        }
        *ret = l;
        return 0;
}

static void zstd_cache_evict(LayerCache *c, const char *keep) {
        DIR *d = opendir(c->cache_dir);
        if (!d)
                return;
        struct F {
                char name[300];
                off_t size;
                time_t atime;
        } *f = NULL;
        size_t n = 0;
        uint64_t total = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!endswith(de->d_name, ".tar") || strlen(de->d_name) >= 300)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;
                struct F *nf = realloc(f, (n + 1) * sizeof(*f));
                if (!nf)
                        break;
                f = nf;
                snprintf(f[n].name, sizeof(f[n].name), "%s", de->d_name);
                f[n].size = st.st_size;
                f[n].atime = st.st_mtime;
                total += (uint64_t) st.st_size;
                n++;
        }
        while (total > c->o.zstd_cache_bytes && n > 0) {
                size_t oldest = 0;
                for (size_t i = 1; i < n; i++)
                        if (f[i].atime < f[oldest].atime)
                                oldest = i;
                if (!strstr(keep, f[oldest].name)) {
                        /* open readers keep their fd; the next open rebuilds */
                        (void) unlinkat(dirfd(d), f[oldest].name, 0);
                        total -= (uint64_t) f[oldest].size;
                }
                f[oldest] = f[--n];
        }
        free(f);
        closedir(d);
}

static int build(LayerCache *c, const char *digest, Layer **ret) {
        BlobSource src = {};
        _cleanup_(tar_parser_freep) TarParser *tp = NULL;
        uint64_t t0 = clock_monotonic_ns();
        int r = blob_source_open(c->store, digest, &src);
        if (r < 0)
                return log_warning_errno(r, "fusefs: layer %s: cannot open blob: %m", digest);
        Layer *l = calloc(1, sizeof(Layer));
        if (!l) {
                blob_source_done(&src);
                return -ENOMEM;
        }
        snprintf(l->digest, sizeof(l->digest), "%s", digest);
        uint8_t magic[4] = {};
        ssize_t k = blob_source_read(&src, magic, sizeof(magic), 0);
        l->compression = layer_compression_detect(magic, k > 0 ? (size_t) k : 0);
        r = tar_parser_new(&tp);
        if (r < 0)
                goto fail;

        switch (l->compression) {
        case LAYER_GZIP:
                r = gz_index_build(blob_source_read, &src, c->o.span, c->o.max_layer_bytes, tp, &l->gz);
                break;
        case LAYER_ZSTD: {
                r = mkdir_p(c->cache_dir, 0700);
                if (r < 0)
                        break;
                l->cache_path = strdup_printf("%s/%s.tar", c->cache_dir, digest_hex(digest));
                _cleanup_free_ char *tmp = strdup_printf("%s/.%s.tmp.XXXXXX", c->cache_dir, digest_hex(digest));
                if (!l->cache_path || !tmp) {
                        r = -ENOMEM;
                        break;
                }
                _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        break;
                }
                r = zstd_layer_decompress(blob_source_read, &src, c->o.max_layer_bytes, fd, tp, NULL);
                if (r >= 0 && rename(tmp, l->cache_path) < 0)
                        r = -errno;
                if (r < 0)
                        (void) unlink(tmp);
                else
                        zstd_cache_evict(c, l->cache_path);
                break;
        }
        default: {
                _cleanup_free_ uint8_t *buf = malloc(1U << 20);
                uint64_t off = 0;
                if (!buf) {
                        r = -ENOMEM;
                        break;
                }
                for (;;) {
                        k = blob_source_read(&src, buf, 1U << 20, off);
                        if (k < 0) {
                                r = (int) k;
                                break;
                        }
                        if (k == 0)
                                break;
                        off += (uint64_t) k;
                        r = tar_parser_feed(tp, buf, (size_t) k);
                        if (r < 0)
                                break;
                }
        }
        }
        if (r >= 0)
                r = tar_parser_finish(tp, &l->tar);
        if (r < 0) {
                if (r == -EBADMSG || r == -E2BIG)
                        log_warning("fusefs: layer %s (%s) is not a valid tar: %s", digest,
                                    layer_compression_to_string(l->compression), tar_parser_error(tp));
                else
                        log_warning_errno(r, "fusefs: layer %s (%s): cannot index: %m", digest,
                                          layer_compression_to_string(l->compression));
                goto fail;
        }
        blob_source_done(&src);
        uint64_t dt = clock_monotonic_ns() - t0;
        log_info("fusefs: indexed layer %s (%s): %zu entries, %zu checkpoints, %" PRIu64 " bytes in %" PRIu64 " ms",
                 digest, layer_compression_to_string(l->compression), l->tar->n_entries, l->gz ? l->gz->n_points : 0,
                 l->tar->stream_size, dt / 1000000);
        r = persist(c, l);
        if (r < 0)
                log_debug_errno(r, "fusefs: layer %s: cannot persist the index: %m", digest);
        *ret = l;
        return 0;
fail:
        blob_source_done(&src);
        layer_free(l);
        return -EIO;
}

static void evict_locked(LayerCache *c) {
        while (c->n_layers > c->o.max_layers) {
                size_t victim = SIZE_MAX;
                for (size_t i = 0; i < c->n_layers; i++)
                        if (c->layers[i]->refs == 0 && (victim == SIZE_MAX || c->layers[i]->last_used < c->layers[victim]->last_used))
                                victim = i;
                if (victim == SIZE_MAX)
                        return;
                layer_free(c->layers[victim]);
                c->layers[victim] = c->layers[--c->n_layers];
        }
}

int layer_cache_get(LayerCache *c, const char *digest, Layer **ret) {
        int r;
        pthread_mutex_lock(&c->lock);
        for (;;) {
                for (size_t i = 0; i < c->n_layers; i++)
                        if (streq(c->layers[i]->digest, digest)) {
                                Layer *l = c->layers[i];
                                l->refs++;
                                l->last_used = ++c->tick;
                                pthread_mutex_unlock(&c->lock);
                                *ret = l;
                                return 0;
                        }
                for (size_t i = 0; i < MIN(c->n_failed, ELEMENTSOF(c->failed)); i++)
                        if (streq(c->failed[i], digest)) {
                                pthread_mutex_unlock(&c->lock);
                                return -EIO;
                        }
                bool busy = false;
                for (size_t i = 0; i < c->n_building; i++)
                        if (streq(c->building[i], digest))
                                busy = true;
                if (!busy)
                        break;
                pthread_cond_wait(&c->cond, &c->lock);
        }
        char **nb = realloc(c->building, (c->n_building + 1) * sizeof(char *));
        if (!nb) {
                pthread_mutex_unlock(&c->lock);
                return -ENOMEM;
        }
        c->building = nb;
        c->building[c->n_building++] = (char *) digest;
        pthread_mutex_unlock(&c->lock);

        Layer *l = NULL;
        r = load(c, digest, &l);
        if (r == -ENOENT)
                r = build(c, digest, &l);

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n_building; i++)
                if (c->building[i] == digest) {
                        c->building[i] = c->building[--c->n_building];
                        break;
                }
        if (r == -EIO)
                snprintf(c->failed[c->n_failed++ % ELEMENTSOF(c->failed)], DIGEST_MAX_LEN, "%s", digest);
        if (r >= 0) {
                Layer **nl = realloc(c->layers, (c->n_layers + 1) * sizeof(Layer *));
                if (!nl) {
                        layer_free(l);
                        r = -ENOMEM;
                } else {
                        c->layers = nl;
                        c->layers[c->n_layers++] = l;
                        l->refs = 1;
                        l->last_used = ++c->tick;
                        evict_locked(c);
                        *ret = l;
                }
        }
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return r;
}

void layer_cache_put(LayerCache *c, Layer *l) {
        if (!l)
                return;
        pthread_mutex_lock(&c->lock);
        l->refs--;
        evict_locked(c);
        pthread_mutex_unlock(&c->lock);
}

/* ---- readers */

struct LayerReader {
        LayerCache *cache;
        Layer *layer;        /* referenced */
        BlobSource src;
        int fd;              /* plain: blob fd; zstd: cache file */
        GzCursor *cursor;
};

int layer_reader_open(LayerCache *c, Layer *l, LayerReader **ret) {
        LayerReader *r = calloc(1, sizeof(LayerReader));
        int k;
        if (!r)
                return -ENOMEM;
        r->fd = -1;
        r->cache = c;
        pthread_mutex_lock(&c->lock);
        l->refs++;
        pthread_mutex_unlock(&c->lock);
        r->layer = l;
        if (l->compression == LAYER_ZSTD) {
                r->fd = open(l->cache_path, O_RDONLY | O_CLOEXEC);
                if (r->fd < 0) {
                        k = -errno;
                        goto fail;
                }
        } else {
                k = blob_source_open(c->store, l->digest, &r->src);
                if (k < 0)
                        goto fail;
                if (l->compression == LAYER_PLAIN)
                        r->fd = r->src.fd;
                else {
                        k = gz_cursor_new(l->gz, blob_source_read, &r->src, &r->cursor);
                        if (k < 0)
                                goto fail;
                }
        }
        *ret = r;
        return 0;
fail:
        layer_reader_free(r);
        return k;
}

int layer_reader_fd(LayerReader *r) {
        return r->fd;
}

ssize_t layer_reader_pread(LayerReader *r, void *buf, size_t n, uint64_t offset) {
        if (r->cursor)
                return gz_cursor_pread(r->cursor, buf, n, offset);
        if (r->fd >= 0)
                return loop_pread(r->fd, buf, n, (off_t) offset);
        return blob_reader_pread(r->src.br, buf, n, offset);
}

LayerReader *layer_reader_free(LayerReader *r) {
        if (!r)
                return NULL;
        gz_cursor_free(r->cursor);
        if (r->layer && r->layer->compression == LAYER_ZSTD && r->fd >= 0)
                close(r->fd);
        blob_source_done(&r->src);
        layer_cache_put(r->cache, r->layer);
        free(r);
        return NULL;
}
