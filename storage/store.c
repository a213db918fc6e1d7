/* SPDX-License-Identifier: MIT */
/* The store: open/close, locks, manifests and tags (listing.c: catalog, tags, referrers; pulls.c:
 * pull bookkeeping). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/gc-records.h"
#include "storage/records.h"
#include "storage/store-internal.h"

void store_options_init(StoreOptions *o) {
        *o = (StoreOptions) {
                .root = "./data",
                .zstd_at_rest = false,
                .zstd_level = 3,
                .fsync = true,
                .read_only = false,
                .secondary_dir = NULL,
        };
}

char *store_path(Store *s, const char *sub) {
        return strdup_printf("%s/%s", s->root, sub);
}

int store_dirs_make(Store *s) {
        static const char *const dirs[] = { "uploads", "tmp" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = store_path(s, dirs[i]);
                if (!p)
                        return -ENOMEM;
                int r = mkdir_p(p, 0755);
                if (r < 0)
                        return log_error_errno(r, "Cannot create %s: %m", p);
        }
        return 0;
}

/* tmp/ only stages atomic writes of this process; what a crashed predecessor left there is
 * garbage. Only the primary (which holds the RocksDB lock) cleans it. */
static void store_tmp_clean(Store *s) {
        _cleanup_free_ char *dir = store_path(s, "tmp");
        DIR *d = dir ? opendir(dir) : NULL;
        if (!d)
                return;
        unsigned n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_type == DT_REG && unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        closedir(d);
        if (n > 0)
                log_info("Removed %u leftover temporary file(s) from %s.", n, dir);
}


int store_open(const StoreOptions *o, Store **ret) {
        int r;
        if (!o || !o->root || !ret)
                return -EINVAL;

        Store *s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < DIGEST_LOCK_STRIPES; i++)
                pthread_mutex_init(&s->digest_locks[i], NULL);
        for (size_t i = 0; i < TAG_LOCK_STRIPES; i++)
                pthread_mutex_init(&s->tag_locks[i], NULL);
        pthread_mutex_init(&s->seq_lock, NULL);
        pthread_mutex_init(&s->uploads_lock, NULL);
        pthread_mutex_init(&s->pulls_lock, NULL);
        pthread_mutex_init(&s->pulls_flush_lock, NULL);
        pthread_cond_init(&s->pulls_cond, NULL);
        pthread_mutex_init(&s->policy_lock, NULL);
        pthread_mutex_init(&s->counters_lock, NULL);

        s->root = strdup(o->root);
        s->zstd_at_rest = o->zstd_at_rest;
        s->zstd_level = o->zstd_level > 0 ? o->zstd_level : 3;
        s->fsync = o->fsync;
        s->read_only = o->read_only;
        if (!s->root) {
                store_free(s);
                return -ENOMEM;
        }
        /* strip trailing slashes for tidy paths */
        for (size_t l = strlen(s->root); l > 1 && s->root[l - 1] == '/'; l--)
                s->root[l - 1] = 0;
        s->index_dir = store_path(s, "index");
        if (!s->index_dir) {
                store_free(s);
                return -ENOMEM;
        }

        if (s->read_only) {
                if (o->secondary_dir)
                        s->secondary_dir = strdup(o->secondary_dir);
                else
                        s->secondary_dir = strdup("/tmp/plura-secondary-XXXXXX");
                if (!s->secondary_dir) {
                        store_free(s);
                        return -ENOMEM;
                }
                if (!o->secondary_dir && !mkdtemp(s->secondary_dir)) {
                        r = -errno;
                        store_free(s);
                        return log_error_errno(r, "Cannot create a secondary directory: %m");
                }
                r = mkdir_p(s->secondary_dir, 0700);
                if (r < 0) {
                        store_free(s);
                        return log_error_errno(r, "Cannot create %s: %m", o->secondary_dir);
                }
        } else {
                r = mkdir_p(s->root, 0755);
                if (r < 0) {
                        store_free(s);
                        return log_error_errno(r, "Cannot create %s: %m", o->root);
                }
                r = store_dirs_make(s);
                if (r < 0) {
                        store_free(s);
                        return r;
                }
        }

        r = blob_backend_fs_new(&(BlobBackendOptions) { .root = s->root, .fsync = s->fsync, .read_only = s->read_only },
                                &s->blobs);
        if (r < 0) {
                store_free(s);
                return r;
        }
        r = index_open(s);
        if (r < 0) {
                store_free(s);
                return r;
        }
        if (!s->read_only) {
                store_tmp_clean(s);
                (void) uploads_reconcile(s);
                r = pulls_start(s);
                if (r < 0) {
                        store_free(s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        pulls_stop(s);
        uploads_free_all(s);
        index_close(s);
        blob_backend_free(s->blobs);
        for (size_t i = 0; i < DIGEST_LOCK_STRIPES; i++)
                pthread_mutex_destroy(&s->digest_locks[i]);
        for (size_t i = 0; i < TAG_LOCK_STRIPES; i++)
                pthread_mutex_destroy(&s->tag_locks[i]);
        pthread_mutex_destroy(&s->seq_lock);
        pthread_mutex_destroy(&s->uploads_lock);
        pthread_mutex_destroy(&s->pulls_lock);
        pthread_mutex_destroy(&s->pulls_flush_lock);
        pthread_cond_destroy(&s->pulls_cond);
        pthread_mutex_destroy(&s->policy_lock);
        pthread_mutex_destroy(&s->counters_lock);
        free(s->pulls);
        free(s->root);
        free(s->index_dir);
        free(s->secondary_dir);
        free(s);
        return NULL;
}

const char *store_root(Store *s) {
        return s->root;
}

bool store_is_read_only(Store *s) {
        return s->read_only;
}

int store_check_ready(Store *s) {
        if (!s || !s->db)
                return -ENOTCONN;
        if (s->read_only)
                return access(s->root, R_OK) < 0 ? -errno : 0;
        /* the index too: a write error stops RocksDB's writes until it has recovered */
        int r = index_check_writable(s);
        if (r < 0)
                return r;
        char rnd[37];
        r = uuid_random(rnd);
        if (r < 0)
                return r;
        _cleanup_free_ char *p = strdup_printf("%s/tmp/.ready-%s", s->root, rnd);
        if (!p)
                return -ENOMEM;
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, "ok", 2);
        unlink(p);
        return r < 0 ? r : 0;
}

/* ---- locks */

static int hex_nibble(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The stripe of a digest is the first three hex digits of its value (uniform already), so
 * digests that sort together share few stripes: the GC sweep locks a group of consecutive
 * candidates without colliding with the groups other threads hold. Anything else is hashed. */
size_t digest_stripe(const char *digest) {
        _Static_assert(DIGEST_LOCK_STRIPES == 4096, "stripes are three hex digits");
        const char *colon = strchr(digest, ':');
        if (colon) {
                int a = hex_nibble(colon[1]), b = a >= 0 ? hex_nibble(colon[2]) : -1, c = b >= 0 ? hex_nibble(colon[3]) : -1;
                if (c >= 0)
                        return (size_t) (a << 8 | b << 4 | c);
        }
        return hash_fnv1a(digest, strlen(digest), HASH_FNV1A_INIT) % DIGEST_LOCK_STRIPES;
}

void store_digest_lock(Store *s, const char *digest) {
        pthread_mutex_lock(&s->digest_locks[digest_stripe(digest)]);
}

/* Every unlock of a digest stripe moves its generation first (see store_digest_generations()):
 * whatever the holder committed is in the index before the generation moves. */
void store_digest_unlock(Store *s, const char *digest) {
        size_t k = digest_stripe(digest);
        __atomic_add_fetch(&s->digest_gen[k], 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&s->digest_locks[k]);
}

static int cmp_size(const void *a, const void *b) {
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        return x < y ? -1 : x > y ? 1 : 0;
}

/* Stripes of the items, sorted and unique; returns how many. */
static size_t stripes_sorted(size_t *out, size_t n) {
        if (n == 0)
                return 0;
        qsort(out, n, sizeof(size_t), cmp_size);
        size_t m = 1;
        for (size_t i = 1; i < n; i++)
                if (out[i] != out[m - 1])
                        out[m++] = out[i];
        return m;
}

/* gens: on unlock, the stripes' generations to move first (NULL: none) */
static void lock_stripes(pthread_mutex_t *locks, uint32_t *gens, size_t *stripes, size_t n, bool lock) {
        n = stripes_sorted(stripes, n);
        for (size_t i = 0; i < n; i++) {
                if (lock)
                        pthread_mutex_lock(&locks[stripes[i]]);
                else {
                        size_t k = stripes[n - 1 - i];
                        if (gens)
                                __atomic_add_fetch(&gens[k], 1, __ATOMIC_RELEASE);
                        pthread_mutex_unlock(&locks[k]);
                }
        }
}

void lock_digests(Store *s, const char *const *digests, size_t n) {
        size_t *st = calloc(n ? n : 1, sizeof(size_t));
        if (!st)
                abort(); /* cannot fail safely without the lock */
        for (size_t i = 0; i < n; i++)
                st[i] = digest_stripe(digests[i]);
        lock_stripes(s->digest_locks, NULL, st, n, true);
        free(st);
}

void unlock_digests_full(Store *s, const char *const *digests, size_t n, bool move_generations) {
        size_t *st = calloc(n ? n : 1, sizeof(size_t));
        if (!st)
                abort();
        for (size_t i = 0; i < n; i++)
                st[i] = digest_stripe(digests[i]);
        lock_stripes(s->digest_locks, move_generations ? s->digest_gen : NULL, st, n, false);
        free(st);
}

void unlock_digests(Store *s, const char *const *digests, size_t n) {
        unlock_digests_full(s, digests, n, true);
}

static size_t tag_stripe(const char *repo, const char *tag) {
        uint64_t h = hash_fnv1a(repo, strlen(repo) + 1, HASH_FNV1A_INIT);
        return hash_fnv1a(tag, strlen(tag), h) % TAG_LOCK_STRIPES;
}

void lock_tags(Store *s, const char *repo, const char *const *tags, size_t n, bool lock) {
        size_t *st = calloc(n ? n : 1, sizeof(size_t));
        if (!st)
                abort();
        for (size_t i = 0; i < n; i++)
                st[i] = tag_stripe(repo, tags[i]);
        lock_stripes(s->tag_locks, NULL, st, n, lock);
        free(st);
}

void store_set_tag_policy(Store *s, TagPolicyFn fn, void *userdata) {
        pthread_mutex_lock(&s->policy_lock);
        s->tag_policy = fn;
        s->tag_policy_userdata = userdata;
        pthread_mutex_unlock(&s->policy_lock);
}

/* ---- records */

/* The reads of a write with STORE_WRITE_COLD go through the store's cold view of the current state. */
static IndexSnapshot *write_view(Store *s, unsigned flags) {
        return flags & STORE_WRITE_COLD ? s->live_cold : NULL;
}

int tag_read(Store *s, IndexSnapshot *view, const char *repo, const char *tag, TagInfo *ret) {
        size_t kl, vl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, tag, NULL);
        _cleanup_free_ char *v = NULL;
        if (!k)
                return -ENOMEM;
        int r = index_get(s, view, INDEX_TAG, k, kl, &v, &vl);
        if (r < 0)
                return r;
        return tag_info_decode(v, vl, ret);
}

int store_tag_get(Store *s, const char *repo, const char *tag, TagInfo *ret) {
        if (!repo || !tag)
                return -EINVAL;
        return tag_read(s, NULL, repo, tag, ret);
}

int repo_manifest_read(Store *s, const char *repo, const char *digest, RepoManifestInfo *ret) {
        size_t kl, vl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        _cleanup_free_ char *v = NULL;
        if (!k)
                return -ENOMEM;
        int r = index_get(s, NULL, INDEX_REPO_MANIFEST, k, kl, &v, &vl);
        if (r < 0)
                return r;
        if (!ret)
                return 0;
        return repo_manifest_info_decode(v, vl, ret);
}

static bool key_exists(Store *s, IndexSnapshot *view, IndexColumn c, const char *repo, const char *digest) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        if (!k)
                return false;
        return index_get(s, view, c, k, kl, NULL, NULL) >= 0;
}

/* manifest record: u32 meta_len + meta JSON + raw bytes */
static int manifest_record_read(Store *s, IndexSnapshot *snap, const char *digest, json_t **ret_meta, char **ret_raw,
                                size_t *ret_size) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = index_get(s, snap, INDEX_MANIFEST, digest, strlen(digest), &v, &vl);
        if (r < 0)
                return r;
        if (vl < 4)
                return -EBADMSG;
        uint32_t ml = get_u32_le((const uint8_t *) v);
        if (ml > vl - 4)
                return -EBADMSG;
        json_t *meta = json_loadb(v + 4, ml, 0, NULL);
        if (!json_is_object(meta)) {
                json_decref(meta);
                return -EBADMSG;
        }
        size_t rl = vl - 4 - ml;
        char *raw = malloc(rl + 1);
        if (!raw) {
                json_decref(meta);
                return -ENOMEM;
        }
        memcpy(raw, v + 4 + ml, rl);
        raw[rl] = 0;
        *ret_meta = meta;
        *ret_raw = raw;
        *ret_size = rl;
        return 0;
}

int manifest_record_children(Store *s, const char *digest, char ***ret) {
        _cleanup_(json_decrefp) json_t *meta = NULL;
        _cleanup_free_ char *raw = NULL;
        size_t size;
        int r = manifest_record_read(s, NULL, digest, &meta, &raw, &size);
        if (r < 0)
                return r;
        json_t *children = json_object_get(meta, "children");
        _cleanup_strv_free_ char **v = calloc(json_array_size(children) + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        size_t i, n = 0;
        json_t *c;
        json_array_foreach(children, i, c)
                if (json_is_string(c) && !(v[n++] = strdup(json_string_value(c))))
                        return -ENOMEM;
        *ret = steal_pointer(&v);
        return 0;
}

/* manifest_record_children() of the manifest, and whether digest is one of them */
static int manifest_names_child(Store *s, const char *manifest, const char *digest) {
        _cleanup_strv_free_ char **children = NULL;
        int r = manifest_record_children(s, manifest, &children);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        for (char **c = children; *c; c++)
                if (streq(*c, digest))
                        return 1;
        return 0;
}

typedef struct RepoManifestList {
        size_t prefix_len;
        char **v;
        size_t n, allocated;
} RepoManifestList;

static int repo_manifest_collect_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        RepoManifestList *l = userdata;
        if (klen <= l->prefix_len || klen - l->prefix_len >= DIGEST_MAX_LEN)
                return 0;
        if (l->n + 2 > l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 32;
                char **v = realloc(l->v, na * sizeof(char *));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = na;
        }
        if (!(l->v[l->n] = strndup(key + l->prefix_len, klen - l->prefix_len)))
                return -ENOMEM;
        l->v[++l->n] = NULL;
        return 0;
}

int repo_manifest_using(Store *s, const char *repo, const char *digest, char ret_manifest[DIGEST_MAX_LEN]) {
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, "", NULL);
        if (!prefix)
                return -ENOMEM;
        RepoManifestList l = { .prefix_len = pl };
        int r = store_kv_iterate(s, NULL, INDEX_REPO_MANIFEST, prefix, pl, NULL, 0, repo_manifest_collect_cb, &l);
        _cleanup_strv_free_ char **manifests = l.v;
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                r = manifest_names_child(s, manifests[i], digest);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (ret_manifest)
                                snprintf(ret_manifest, DIGEST_MAX_LEN, "%s", manifests[i]);
                        return 1;
                }
        }
        return 0;
}

StoredManifest *stored_manifest_free(StoredManifest *m) {
        if (!m)
                return NULL;
        free(m->media_type);
        free(m->data);
        free(m->subject);
        free(m->artifact_type);
        free(m);
        return NULL;
}

static char *json_strdup_field(json_t *o, const char *k) {
        const char *v = json_string_value(json_object_get(o, k));
        return v ? strdup(v) : NULL;
}

static int stored_manifest_load(Store *s, const char *digest, StoredManifest **ret) {
        json_t *meta = NULL;
        char *raw = NULL;
        size_t size;
        int r = manifest_record_read(s, NULL, digest, &meta, &raw, &size);
        if (r < 0)
                return r;
        StoredManifest *m = calloc(1, sizeof(StoredManifest));
        if (!m) {
                json_decref(meta);
                free(raw);
                return -ENOMEM;
        }
        snprintf(m->digest, sizeof m->digest, "%s", digest);
        m->data = (uint8_t *) raw;
        m->size = size;
        m->media_type = json_strdup_field(meta, "mediaType");
        m->subject = json_strdup_field(meta, "subject");
        m->artifact_type = json_strdup_field(meta, "artifactType");
        json_decref(meta);
        if (!m->media_type)
                m->media_type = strdup(MEDIA_TYPE_OCI_MANIFEST);
        *ret = m;
        return 0;
}

int store_manifest_get_by_digest(Store *s, const char *digest, StoredManifest **ret) {
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        return stored_manifest_load(s, digest, ret);
}

int store_manifest_get(Store *s, const char *repo, const char *reference, StoredManifest **ret) {
        char digest[DIGEST_MAX_LEN];
        int r;
        if (!repo || !reference)
                return -EINVAL;
        if (strchr(reference, ':')) {
                if (digest_parse(reference, NULL) < 0)
                        return -EINVAL;
                snprintf(digest, sizeof digest, "%s", reference);
        } else {
                TagInfo t;
                r = tag_read(s, NULL, repo, reference, &t);
                if (r < 0)
                        return r;
                memcpy(digest, t.digest, sizeof digest);
        }
        RepoManifestInfo rm;
        r = repo_manifest_read(s, repo, digest, &rm);
        if (r < 0)
                return r;
        StoredManifest *m;
        r = stored_manifest_load(s, digest, &m);
        if (r < 0)
                return r;
        m->pushed = rm.pushed;
        *ret = m;
        return 0;
}

int store_manifest_parsed(Store *s, IndexSnapshot *snap, const char *digest, Manifest **ret) {
        json_t *meta = NULL;
        _cleanup_free_ char *raw = NULL;
        size_t size;
        char err[256];
        int r = manifest_record_read(s, snap, digest, &meta, &raw, &size);
        if (r < 0)
                return r;
        r = manifest_parse(raw, size, json_string_value(json_object_get(meta, "mediaType")), ret, err, sizeof err);
        json_decref(meta);
        if (r < 0)
                log_warning("Stored manifest %s does not parse: %s", digest, err);
        return r;
}

/* ---- manifest PUT */

static bool layer_is_foreign(const Descriptor *d) {
        return d->media_type && (strstr(d->media_type, "foreign") || strstr(d->media_type, "nondistributable"));
}

static const char *tag_history_first_digest(Store *s, IndexSnapshot *view, const char *repo, const char *tag,
                                            char buf[DIGEST_MAX_LEN]);

typedef struct FirstDigest {
        char *buf;
        bool found;
} FirstDigest;

static int first_digest_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        FirstDigest *f = userdata;
        json_t *j = json_loadb(val, vlen, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "digest"));
        if (d) {
                snprintf(f->buf, DIGEST_MAX_LEN, "%s", d);
                f->found = true;
        }
        json_decref(j);
        return f->found ? 1 : 0;
}

static const char *tag_history_first_digest(Store *s, IndexSnapshot *view, const char *repo, const char *tag,
                                            char buf[DIGEST_MAX_LEN]) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, tag, "", NULL);
        if (!k)
                return NULL;
        FirstDigest f = { .buf = buf };
        if (store_kv_iterate(s, view, INDEX_TAG_HISTORY, k, kl, NULL, 0, first_digest_cb, &f) < 0)
                return NULL;
        return f.found ? buf : NULL;
}

int tag_history_add(Store *s, IndexBatch *b, const char *repo, const char *tag, const char *digest,
                    const char *actor, const char *action, int64_t now) {
        size_t kl;
        _cleanup_free_ char *k0 = index_key_join(&kl, repo, tag, NULL);
        if (!k0)
                return -ENOMEM;
        _cleanup_free_ char *k = malloc(kl + 9);
        if (!k)
                return -ENOMEM;
        memcpy(k, k0, kl);
        k[kl] = 0;
        put_u64_be((uint8_t *) k + kl + 1, store_next_seq(s));
        json_t *j = json_pack("{s:s?, s:I, s:s, s:s}", "digest", digest, "time", (json_int_t) now, "actor",
                              actor ? actor : "anonymous", "action", action);
        if (!j)
                return -ENOMEM;
        _cleanup_free_ char *v = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!v)
                return -ENOMEM;
        index_batch_put(b, INDEX_TAG_HISTORY, k, kl + 9, v, strlen(v));
        return 0;
}

static int run_tag_policy(Store *s, const char *repo, const char *tag, const char *old_digest, const char *new_digest,
                          unsigned flags, StoreError *err) {
        TagPolicyFn fn;
        void *ud;
        pthread_mutex_lock(&s->policy_lock);
        fn = s->tag_policy;
        ud = s->tag_policy_userdata;
        pthread_mutex_unlock(&s->policy_lock);
        if (!fn)
                return 0;
        char buf[DIGEST_MAX_LEN];
        const char *first = tag ? tag_history_first_digest(s, write_view(s, flags), repo, tag, buf) : NULL;
        StoreError local = {};
        int r = fn(ud, repo, tag, old_digest, new_digest, first, flags, err ? err : &local);
        if (r < 0 && err && err->code == OCI_OK)
                store_error_set(err, r, OCI_DENIED, "%s:%s refused by policy", repo, tag ? tag : "(manifest)");
        return r;
}

static int blob_touch(Store *s, IndexBatch *b, const char *digest, int64_t now) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        BlobInfo bi;
        int r = index_get(s, NULL, INDEX_BLOB, digest, strlen(digest), &v, &vl);
        if (r < 0)
                return r;
        r = blob_info_decode(v, vl, &bi);
        if (r < 0)
                return r;
        bi.touched = now;
        uint8_t rec[BLOB_RECORD_SIZE];
        blob_info_encode(&bi, rec);
        index_batch_put(b, INDEX_BLOB, digest, strlen(digest), rec, sizeof rec);
        return 0;
}

static json_t *referrer_descriptor(const Manifest *m, const char *digest, size_t size) {
        json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", m->media_type ? m->media_type : MEDIA_TYPE_OCI_MANIFEST,
                              "digest", digest, "size", (json_int_t) size);
        if (!d)
                return NULL;
        if (m->artifact_type)
                json_object_set_new(d, "artifactType", json_string(m->artifact_type));
        if (m->annotations)
                json_object_set(d, "annotations", m->annotations);
        return d;
}

int store_manifest_put(Store *s, const ManifestPut *p, char ret_digest[DIGEST_MAX_LEN], StoreError *err) {
        char digest[DIGEST_MAX_LEN];
        char perr[256] = "";
        DigestAlgorithm algo = DIGEST_SHA256;
        bool by_digest;
        int r;

        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!p || !p->repo || !p->reference || (!p->data && p->len > 0))
                return store_error_set(err, -EINVAL, OCI_MANIFEST_INVALID, "incomplete request");
        if (!repo_name_is_valid(p->repo))
                return store_error_set(err, -EINVAL, OCI_NAME_INVALID, "invalid repository name");
        if (p->len > MANIFEST_SIZE_MAX)
                return store_error_set(err, -EFBIG, OCI_MANIFEST_INVALID, "manifest larger than %u bytes",
                                       MANIFEST_SIZE_MAX);

        by_digest = strchr(p->reference, ':') != NULL;
        if (by_digest) {
                r = digest_parse(p->reference, &algo);
                if (r < 0)
                        return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest %s", p->reference);
        } else if (!tag_is_valid(p->reference))
                return store_error_set(err, -EINVAL, OCI_TAG_INVALID, "invalid tag");
        for (size_t i = 0; i < p->n_tags; i++)
                if (!p->tags[i] || !tag_is_valid(p->tags[i]))
                        return store_error_set(err, -EINVAL, OCI_TAG_INVALID, "invalid tag %s", strna(p->tags[i]));

        r = digest_buffer(algo, p->data ? p->data : "", p->len, digest);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "cannot hash the manifest");
        if (by_digest && !streq(digest, p->reference))
                return store_error_set(err, -EBADMSG, OCI_DIGEST_INVALID, "manifest digest is %s, not %s", digest,
                                       p->reference);

        _cleanup_(manifest_freep) Manifest *m = NULL;
        r = manifest_parse(p->data ? p->data : "", p->len, p->content_type, &m, perr, sizeof perr);
        if (r < 0)
                return store_error_set(err, r, OCI_MANIFEST_INVALID, "%s", perr[0] ? perr : "invalid manifest");

        /* tags to set: the reference (if a tag) and ?tag= values, unique */
        size_t n_tags = 0;
        _cleanup_free_ const char **tags = calloc(p->n_tags + 1, sizeof(char *));
        /* children and the manifest itself, for the digest locks */
        size_t n_children = 0, n_locks = 0;
        size_t max_children = (m->has_config ? 1 : 0) + m->n_layers + m->n_manifests;
        _cleanup_free_ const char **locks = calloc(max_children + 1, sizeof(char *));
        if (!tags || !locks)
                return -ENOMEM;
        if (!by_digest)
                tags[n_tags++] = p->reference;
        for (size_t i = 0; i < p->n_tags; i++) {
                bool dup = false;
                for (size_t j = 0; j < n_tags; j++)
                        if (streq(tags[j], p->tags[i]))
                                dup = true;
                if (!dup)
                        tags[n_tags++] = p->tags[i];
        }
        if (m->has_config && m->config.digest)
                locks[n_locks++] = m->config.digest;
        for (size_t i = 0; i < m->n_layers; i++)
                if (!layer_is_foreign(&m->layers[i]) && m->layers[i].digest)
                        locks[n_locks++] = m->layers[i].digest;
        for (size_t i = 0; i < m->n_manifests; i++)
                if (m->manifests[i].digest)
                        locks[n_locks++] = m->manifests[i].digest;
        n_children = n_locks;
        locks[n_locks++] = digest;

        int64_t now = clock_now_ns();
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;

        lock_digests(s, locks, n_locks);

        /* Children must be linked here: blobs (config, layers) in repo_blob with a live blob record;
         * index entries in repo_manifest with a manifest record. */
        bool is_index = manifest_kind_is_index(m->kind);
        for (size_t i = 0; i < n_children; i++) {
                const char *c = locks[i];
                bool ok;
                if (is_index)
                        ok = key_exists(s, NULL, INDEX_REPO_MANIFEST, p->repo, c) &&
                             index_get(s, NULL, INDEX_MANIFEST, c, strlen(c), NULL, NULL) >= 0;
                else
                        ok = key_exists(s, NULL, INDEX_REPO_BLOB, p->repo, c) && blob_touch(s, b, c, now) >= 0;
                if (!ok) {
                        unlock_digests(s, locks, n_locks);
                        return store_error_set(err, -ENOENT, OCI_MANIFEST_BLOB_UNKNOWN, "%s %s unknown to repository %s",
                                               is_index ? "manifest" : "blob", c, p->repo);
                }
        }

        bool changed = false;
        /* manifest record (global, content-addressed: written once) */
        if (index_get(s, NULL, INDEX_MANIFEST, digest, strlen(digest), NULL, NULL) == -ENOENT) {
                json_t *children = json_array();
                for (size_t i = 0; i < n_children; i++)
                        json_array_append_new(children, json_string(locks[i]));
                json_t *meta = json_pack("{s:s, s:I, s:I, s:o}", "mediaType",
                                         m->media_type ? m->media_type : MEDIA_TYPE_OCI_MANIFEST, "size",
                                         (json_int_t) p->len, "created", (json_int_t) now, "children", children);
                if (meta && m->has_subject && m->subject.digest)
                        json_object_set_new(meta, "subject", json_string(m->subject.digest));
                if (meta && m->artifact_type)
                        json_object_set_new(meta, "artifactType", json_string(m->artifact_type));
                char *ms = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
                json_decref(meta);
                char *v = ms ? malloc(4 + strlen(ms) + p->len) : NULL;
                if (!v) {
                        free(ms);
                        unlock_digests(s, locks, n_locks);
                        return -ENOMEM;
                }
                size_t ml = strlen(ms);
                put_u32_le((uint8_t *) v, (uint32_t) ml);
                memcpy(v + 4, ms, ml);
                if (p->len)
                        memcpy(v + 4 + ml, p->data, p->len);
                index_batch_put(b, INDEX_MANIFEST, digest, strlen(digest), v, 4 + ml + p->len);
                free(v);
                free(ms);
                changed = true;
        }

        /* repo link: keep the first push time */
        if (!key_exists(s, NULL, INDEX_REPO_MANIFEST, p->repo, digest)) {
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, p->repo, digest, NULL);
                uint8_t rec[REPO_MANIFEST_RECORD_SIZE];
                repo_manifest_info_encode(&(RepoManifestInfo) { .pushed = now }, rec);
                if (k)
                        index_batch_put(b, INDEX_REPO_MANIFEST, k, kl, rec, sizeof rec);
                changed = true;
        }

        /* referrer record */
        if (m->has_subject && m->subject.digest) {
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, p->repo, m->subject.digest, digest, NULL);
                json_t *d = referrer_descriptor(m, digest, p->len);
                char *v = d ? json_dumps(d, JSON_COMPACT) : NULL;
                json_decref(d);
                if (k && v)
                        index_batch_put(b, INDEX_REFERRER, k, kl, v, strlen(v));
                free(v);
        }

        /* tags, under the tag locks, with the policy hook in the same critical section */
        lock_tags(s, p->repo, tags, n_tags, true);
        json_t *moved = json_array();
        /* the manifest itself (tag == NULL): lets governance refuse writes to read-only repos */
        r = run_tag_policy(s, p->repo, NULL, NULL, digest, p->flags, err);
        if (r < 0)
                goto fail_tags;
        for (size_t i = 0; i < n_tags; i++) {
                TagInfo old = {};
                r = tag_read(s, NULL, p->repo, tags[i], &old);
                bool exists = r >= 0;
                if (r < 0 && r != -ENOENT)
                        goto fail_tags;
                if (exists && streq(old.digest, digest))
                        continue; /* same digest again: nothing changes */
                r = run_tag_policy(s, p->repo, tags[i], exists ? old.digest : NULL, digest, p->flags, err);
                if (r < 0)
                        goto fail_tags;
                TagInfo t = {
                        .pushed = exists ? old.pushed : now,
                        .updated = now,
                        .last_pulled = exists ? old.last_pulled : 0,
                        .flags = exists ? old.flags : 0,
                };
                snprintf(t.digest, sizeof t.digest, "%s", digest);
                uint8_t rec[TAG_RECORD_MAX];
                size_t rl = tag_info_encode(&t, rec);
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, p->repo, tags[i], NULL);
                if (!k) {
                        r = -ENOMEM;
                        goto fail_tags;
                }
                index_batch_put(b, INDEX_TAG, k, kl, rec, rl);
                r = tag_history_add(s, b, p->repo, tags[i], digest, p->actor, exists ? "move" : "create", now);
                if (r < 0)
                        goto fail_tags;
                json_array_append_new(moved, json_string(tags[i]));
                changed = true;
        }

        if (changed) {
                _cleanup_free_ char *target = strdup_printf("%s@%s", p->repo, digest);
                json_t *detail = json_pack("{s:O, s:s}", "tags", moved, "mediaType", strempty(m->media_type));
                r = audit_add(s, b, p->actor, "push", target, "ok", detail);
                json_decref(detail);
                if (r < 0)
                        goto fail_tags;
        }
        r = store_batch_commit(s, b);
        if (r < 0)
                store_error_set(err, r, OCI_UNSUPPORTED, "index write failed");
fail_tags:
        json_decref(moved);
        lock_tags(s, p->repo, tags, n_tags, false);
        unlock_digests(s, locks, n_locks);
        if (r < 0)
                return r;
        if (ret_digest)
                memcpy(ret_digest, digest, DIGEST_MAX_LEN);
        return 0;
}

/* ---- delete */

int tag_list_push(TagList *l, const char *s, size_t len) {
        if (ARRAY_RESERVE(l->v, l->allocated, l->n + 2) < 0)
                return -ENOMEM;
        char *c = strndup(s, len);
        if (!c)
                return -ENOMEM;
        l->v[l->n++] = c;
        l->v[l->n] = NULL;
        return 0;
}

int tag_collect_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagList *l = userdata;
        if (l->match_digest) {
                TagInfo t;
                if (tag_info_decode(val, vlen, &t) < 0 || !streq(t.digest, l->match_digest))
                        return 0;
        }
        if (l->limit && l->n >= l->limit) {
                l->more = true;
                return 1;
        }
        return tag_list_push(l, key + l->prefix_len, klen - l->prefix_len);
}

char **tag_list_steal(TagList *l) {
        if (!l->v) {
                l->v = calloc(1, sizeof(char *));
        }
        char **v = l->v;
        l->v = NULL;
        l->n = 0;
        return v;
}

int store_manifest_delete(Store *s, const char *repo, const char *digest, const char *actor, unsigned flags,
                          StoreError *err) {
        int r;
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!repo || !digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest");

        int64_t now = clock_now_ns();
        IndexSnapshot *view = write_view(s, flags);
        _cleanup_free_ char *k = NULL, *target = NULL, *raw = NULL;
        size_t kl;
        store_digest_lock(s, digest);
        if (!key_exists(s, view, INDEX_REPO_MANIFEST, repo, digest)) {
                store_digest_unlock(s, digest);
                return store_error_set(err, -ENOENT, OCI_MANIFEST_UNKNOWN, "manifest %s unknown to %s", digest, repo);
        }

        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, "", NULL);
        TagList tl = { .match_digest = digest, .prefix_len = pl };
        r = prefix ? store_kv_iterate(s, view, INDEX_TAG, prefix, pl, NULL, 0, tag_collect_cb, &tl) : -ENOMEM;
        _cleanup_strv_free_ char **tags = tag_list_steal(&tl);
        if (r < 0 || !tags) {
                store_digest_unlock(s, digest);
                return r < 0 ? r : -ENOMEM;
        }
        size_t n_tags = 0;
        while (tags[n_tags])
                n_tags++;

        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b) {
                store_digest_unlock(s, digest);
                return -ENOMEM;
        }
        lock_tags(s, repo, (const char *const *) tags, n_tags, true);
        json_t *removed = json_array();
        r = run_tag_policy(s, repo, NULL, digest, NULL, flags, err); /* the manifest itself */
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < n_tags; i++) {
                TagInfo t;
                /* re-check under the lock: another PUT may have moved it meanwhile */
                if (tag_read(s, view, repo, tags[i], &t) < 0 || !streq(t.digest, digest))
                        continue;
                r = run_tag_policy(s, repo, tags[i], digest, NULL, flags, err);
                if (r < 0)
                        goto finish;
                size_t tkl;
                _cleanup_free_ char *tk = index_key_join(&tkl, repo, tags[i], NULL);
                if (!tk) {
                        r = -ENOMEM;
                        goto finish;
                }
                index_batch_delete(b, INDEX_TAG, tk, tkl);
                r = tag_history_add(s, b, repo, tags[i], digest, actor, "delete", now);
                if (r < 0)
                        goto finish;
                json_array_append_new(removed, json_string(tags[i]));
        }
        k = index_key_join(&kl, repo, digest, NULL);
        if (!k) {
                r = -ENOMEM;
                goto finish;
        }
        index_batch_delete(b, INDEX_REPO_MANIFEST, k, kl);

        /* its referrer record, if it has a subject */
        json_t *meta = NULL;
        size_t size;
        if (manifest_record_read(s, view, digest, &meta, &raw, &size) >= 0) {
                const char *subject = json_string_value(json_object_get(meta, "subject"));
                if (subject) {
                        size_t rl;
                        _cleanup_free_ char *rk = index_key_join(&rl, repo, subject, digest, NULL);
                        if (rk)
                                index_batch_delete(b, INDEX_REFERRER, rk, rl);
                }
                json_decref(meta);
        }
        target = strdup_printf("%s@%s", repo, digest);
        json_t *detail = json_pack("{s:O}", "tags", removed);
        r = audit_add(s, b, actor, "delete", target, "ok", detail);
        json_decref(detail);
        if (r >= 0)
                r = flags & STORE_WRITE_NO_SYNC ? index_batch_commit_full(s, b, false) : store_batch_commit(s, b);
finish:
        json_decref(removed);
        lock_tags(s, repo, (const char *const *) tags, n_tags, false);
        store_digest_unlock(s, digest);
        return r < 0 ? r : 0;
}

int store_tag_delete(Store *s, const char *repo, const char *tag, const char *actor, unsigned flags, StoreError *err) {
        int r;
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!repo || !tag || !tag_is_valid(tag))
                return store_error_set(err, -EINVAL, OCI_TAG_INVALID, "invalid tag");
        int64_t now = clock_now_ns();
        const char *t1[1] = { tag };
        lock_tags(s, repo, t1, 1, true);
        TagInfo t;
        r = tag_read(s, write_view(s, flags), repo, tag, &t);
        if (r < 0) {
                lock_tags(s, repo, t1, 1, false);
                if (r == -ENOENT)
                        return store_error_set(err, r, OCI_MANIFEST_UNKNOWN, "tag %s unknown in %s", tag, repo);
                return r;
        }
        r = run_tag_policy(s, repo, tag, t.digest, NULL, flags, err);
        if (r >= 0) {
                _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, repo, tag, NULL);
                _cleanup_free_ char *target = strdup_printf("%s:%s", repo, tag);
                if (!b || !k)
                        r = -ENOMEM;
                else {
                        index_batch_delete(b, INDEX_TAG, k, kl);
                        r = tag_history_add(s, b, repo, tag, t.digest, actor, "delete", now);
                        if (r >= 0) {
                                json_t *detail = json_pack("{s:s}", "digest", t.digest);
                                r = audit_add(s, b, actor, "tag.delete", target, "ok", detail);
                                json_decref(detail);
                        }
                        if (r >= 0)
                                r = flags & STORE_WRITE_NO_SYNC ? index_batch_commit_full(s, b, false) : store_batch_commit(s, b);
                }
        }
        lock_tags(s, repo, t1, 1, false);
        return r < 0 ? r : 0;
}

int store_manifest_remove(Store *s, const char *digest) {
        if (s->read_only)
                return -EROFS;
        return store_kv_delete(s, INDEX_MANIFEST, digest, strlen(digest));
}
