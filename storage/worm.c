/* SPDX-License-Identifier: MIT */
/* WORM export of a held digest's closure into a write-once bundle (verification and listing:
 * worm-verify.c). See storage.h ("WORM export") for the bundle layout. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "storage/governance-records.h"
#include "storage/index-internal.h"
#include "storage/holds.h"
#include "storage/storage.h"
#include "storage/worm-internal.h"

#define COPY_CHUNK (1U << 20)

pthread_once_t worm_metrics_once = PTHREAD_ONCE_INIT;
void worm_metrics_init(void) {
        metrics_declare(M_BUNDLES, METRIC_COUNTER, "WORM bundles written completely.", NULL, 0);
        metrics_declare(M_BYTES, METRIC_COUNTER, "Bytes written into complete WORM bundles.", NULL, 0);
        metrics_declare(M_VERIFY_FAIL, METRIC_COUNTER, "WORM bundle verifications that found a problem.", NULL, 0);
}

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static char *default_registry_id = NULL;

void worm_set_default_registry_id(const char *id) {
        pthread_mutex_lock(&id_lock);
        free(default_registry_id);
        default_registry_id = id ? strdup(id) : NULL;
        pthread_mutex_unlock(&id_lock);
}

static char fallback_id[300];
static void fallback_id_fill(void) {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(fallback_id, sizeof fallback_id, "plura@%s", host);
}

static const char *registry_id_fallback(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, fallback_id_fill);
        return fallback_id;
}

int worm_options_from_json(json_t *worm, WormOptions *o) {
        *o = (WormOptions) { .immutable = true };
        const char *p = json_string_value(json_object_get(worm, "path"));
        if (!p || !*p)
                return -EDESTADDRREQ;
        o->path = p;
        const char *id = json_string_value(json_object_get(worm, "registry_id"));
        if (!id || !*id) {
                /* the pointer stays valid: the default is set once at start-up */
                pthread_mutex_lock(&id_lock);
                id = default_registry_id;
                pthread_mutex_unlock(&id_lock);
        }
        o->registry_id = id && *id ? id : registry_id_fallback();
        if (json_is_false(json_object_get(worm, "immutable")))
                o->immutable = false;
        return 0;
}

static void format_rfc3339_ns(char buf[64], int64_t ns) {
        time_t t = (time_t) (ns / (int64_t) NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t k = strftime(buf, 64, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + k, 64 - k, ".%09lldZ", (long long) (ns % (int64_t) NSEC_PER_SEC));
}

/* ------------------------------------------------------------------ export */

typedef struct Export {
        Store *store;
        const WormOptions *o;
        StoreError *err;
        int dfd;          /* bundle directory */
        char *bundle;     /* its path */
        json_t *files;    /* [{path, size, sha256}] */
        uint64_t bytes;
        unsigned delay_ms;
        bool immutable_warned;
        bool immutable_ok;
} Export;

static void export_delay(Export *e) {
        if (e->delay_ms > 0)
                usleep(e->delay_ms * 1000U);
}

/* A file of the bundle being written: created with O_EXCL (never an existing file), hashed as
 * written, fsynced and made 0444 when done. */
typedef struct BundleFile {
        int fd;
        char *path;
        Hasher *sha256;
        uint64_t size;
} BundleFile;

static void bundle_file_abandon(BundleFile *f) {
        if (f->fd >= 0)
                close(f->fd);
        f->fd = -1;
        free(f->path);
        f->path = NULL;
        f->sha256 = hasher_free(f->sha256);
}

static int bundle_file_open(Export *e, const char *path, BundleFile *ret) {
        *ret = (BundleFile) { .fd = -1 };
        int r = hasher_new(DIGEST_SHA256, &ret->sha256);
        if (r < 0)
                return r;
        ret->path = strdup(path);
        if (!ret->path) {
                bundle_file_abandon(ret);
                return -ENOMEM;
        }
        ret->fd = openat(e->dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ret->fd < 0) {
                r = -errno;
                bundle_file_abandon(ret);
                return store_error_set(e->err, r, OCI_UNSUPPORTED, "creating %s/%s: %s", e->bundle, path, strerror(-r));
        }
        return 0;
}

static int bundle_file_write(Export *e, BundleFile *f, const void *data, size_t n) {
        int r = loop_write(f->fd, data, n);
        if (r < 0)
                return store_error_set(e->err, r, OCI_UNSUPPORTED, "writing %s/%s: %s", e->bundle, f->path, strerror(-r));
        r = hasher_update(f->sha256, data, n);
        if (r < 0)
                return r;
        f->size += n;
        return 0;
}

static int bundle_file_close(Export *e, BundleFile *f) {
        char d[DIGEST_MAX_LEN];
        int r = hasher_final(f->sha256, d);
        if (r < 0)
                goto fail;
        if (fsync(f->fd) < 0 || fchmod(f->fd, 0444) < 0) {
                r = store_error_set(e->err, -errno, OCI_UNSUPPORTED, "syncing %s/%s: %m", e->bundle, f->path);
                goto fail;
        }
        r = close(f->fd) < 0 ? -errno : 0;
        f->fd = -1;
        if (r < 0) {
                r = store_error_set(e->err, r, OCI_UNSUPPORTED, "closing %s/%s: %s", e->bundle, f->path, strerror(-r));
                goto fail;
        }
        json_t *o = json_pack("{s:s, s:I, s:s}", "path", f->path, "size", (json_int_t) f->size, "sha256", digest_hex(d));
        if (!o || json_array_append_new(e->files, o) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        e->bytes += f->size;
        bundle_file_abandon(f);
        export_delay(e);
        return 0;
fail:
        bundle_file_abandon(f);
        return r;
}

static int bundle_write_buffer(Export *e, const char *path, const void *data, size_t n) {
        BundleFile f;
        int r = bundle_file_open(e, path, &f);
        if (r < 0)
                return r;
        r = bundle_file_write(e, &f, data, n);
        if (r < 0) {
                bundle_file_abandon(&f);
                return r;
        }
        return bundle_file_close(e, &f);
}

static int bundle_write_json(Export *e, const char *path, json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (!s)
                return -ENOMEM;
        size_t n = strlen(s);
        _cleanup_free_ char *t = malloc(n + 2);
        if (!t)
                return -ENOMEM;
        memcpy(t, s, n);
        t[n] = '\n';
        return bundle_write_buffer(e, path, t, n + 1);
}

char *worm_blob_relpath(const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return NULL;
        return strdup_printf("blobs/%s/%s", digest_algorithm_to_string(a), digest_hex(digest));
}

static int mkdirat_bundle(Export *e, const char *path) {
        if (mkdirat(e->dfd, path, 0755) < 0 && errno != EEXIST)
                return store_error_set(e->err, -errno, OCI_UNSUPPORTED, "creating %s/%s: %m", e->bundle, path);
        return 0;
}

/* Copies content while checking it against its digest: a corrupt store must not produce a bundle
 * that verifies against wrong bytes. */
static int export_content(Export *e, const char *digest, const void *data, size_t len, BlobReader *reader) {
        DigestAlgorithm a;
        int r = digest_parse(digest, &a);
        if (r < 0)
                return r;
        _cleanup_free_ char *rel = worm_blob_relpath(digest);
        if (!rel)
                return -ENOMEM;
        _cleanup_free_ char *dir = strdup_printf("blobs/%s", digest_algorithm_to_string(a));
        if (!dir)
                return -ENOMEM;
        r = mkdirat_bundle(e, dir);
        if (r < 0)
                return r;

        _cleanup_(hasher_freep) Hasher *check = NULL;
        r = hasher_new(a, &check);
        if (r < 0)
                return r;
        BundleFile f;
        r = bundle_file_open(e, rel, &f);
        if (r < 0)
                return r;
        if (reader) {
                _cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
                if (!buf) {
                        r = -ENOMEM;
                        goto fail;
                }
                uint64_t off = 0;
                for (;;) {
                        ssize_t k = blob_reader_pread(reader, buf, COPY_CHUNK, off);
                        if (k < 0) {
                                r = store_error_set(e->err, (int) k, OCI_UNSUPPORTED, "reading blob %s from the store: %s",
                                                    digest, strerror((int) -k));
                                goto fail;
                        }
                        if (k == 0)
                                break;
                        r = bundle_file_write(e, &f, buf, (size_t) k);
                        if (r >= 0)
                                r = hasher_update(check, buf, (size_t) k);
                        if (r < 0)
                                goto fail;
                        off += (uint64_t) k;
                }
        } else {
                r = bundle_file_write(e, &f, data, len);
                if (r >= 0)
                        r = hasher_update(check, data, len);
                if (r < 0)
                        goto fail;
        }
        char got[DIGEST_MAX_LEN];
        r = hasher_final(check, got);
        if (r < 0)
                goto fail;
        if (!streq(got, digest)) {
                r = store_error_set(e->err, -EBADMSG, OCI_DIGEST_INVALID,
                                    "the store's copy of %s is corrupt (hashes to %s); run plura fsck", digest, got);
                goto fail;
        }
        return bundle_file_close(e, &f);
fail:
        bundle_file_abandon(&f);
        return r;
}

static int export_manifest(Export *e, const char *digest) {
        _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
        int r = store_manifest_get_by_digest(e->store, digest, &m);
        if (r < 0)
                return store_error_set(e->err, r, OCI_MANIFEST_UNKNOWN, "reading manifest %s: %s", digest, strerror(-r));
        return export_content(e, digest, m->data, m->size, NULL);
}

static int export_blob(Export *e, json_t *b) {
        const char *digest = json_string_value(json_object_get(b, "digest"));
        if (json_object_get(b, "skipped"))
                return 0;
        if (json_is_true(json_object_get(b, "synthesized")))
                return export_content(e, digest, "{}", 2, NULL);
        _cleanup_(blob_reader_freep) BlobReader *reader = NULL;
        int r = store_blob_open(e->store, digest, &reader);
        if (r < 0)
                return store_error_set(e->err, r, OCI_BLOB_UNKNOWN, "opening blob %s: %s", digest, strerror(-r));
        return export_content(e, digest, NULL, 0, reader);
}

/* ---- history slices */

typedef struct Slice {
        json_t *set;    /* digests of the closure */
        json_t *groups; /* "key prefix" -> true, as found in pass 1 */
        json_t *out;    /* array */
        unsigned n_fields;
        const char *const *fields; /* names of the key components before seq */
} Slice;

static bool value_mentions_set(json_t *set, const char *val, size_t vlen) {
        /* any "sha256:<64 hex>" / "sha512:<128 hex>" in the text that is part of the closure */
        const char *end = val + vlen;
        for (const char *p = val; p < end; p++) {
                size_t hexlen;
                if (end - p > 7 && memcmp(p, "sha256:", 7) == 0)
                        hexlen = 64;
                else if (end - p > 7 && memcmp(p, "sha512:", 7) == 0)
                        hexlen = 128;
                else
                        continue;
                if ((size_t) (end - p) < 7 + hexlen)
                        continue;
                char d[DIGEST_MAX_LEN];
                memcpy(d, p, 7 + hexlen);
                d[7 + hexlen] = 0;
                if (json_object_get(set, d))
                        return true;
        }
        return false;
}

/* Splits key into n NUL-separated components followed by an 8-byte big-endian sequence. */
static int split_key(const char *key, size_t klen, unsigned n, char **comp, uint64_t *ret_seq) {
        const char *p = key, *end = key + klen;
        for (unsigned i = 0; i < n; i++) {
                const char *z = memchr(p, 0, (size_t) (end - p));
                if (!z)
                        return -EBADMSG;
                comp[i] = strndup(p, (size_t) (z - p));
                if (!comp[i])
                        return -ENOMEM;
                p = z + 1;
        }
        if (end - p != 8)
                return -EBADMSG;
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | (uint8_t) p[i];
        *ret_seq = v;
        return 0;
}

static int slice_find_groups(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        Slice *sl = userdata;
        if (!value_mentions_set(sl->set, val, vlen))
                return 0;
        /* group = key without the trailing seq */
        if (klen < 8)
                return 0;
        _cleanup_free_ char *hex = malloc(2 * (klen - 8) + 1);
        if (!hex)
                return -ENOMEM;
        hex_encode((const uint8_t *) key, klen - 8, hex);
        json_object_set_new(sl->groups, hex, json_true());
        return 0;
}

static int slice_take(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        Slice *sl = userdata;
        char *comp[4] = {};
        uint64_t seq = 0;
        int r = split_key(key, klen, sl->n_fields, comp, &seq);
        json_t *o = NULL;
        if (r < 0)
                goto finish;
        o = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(o)) {
                json_decref(o);
                o = json_pack("{s:s%}", "raw", val, vlen);
        }
        for (unsigned i = 0; i < sl->n_fields; i++)
                json_object_set_new(o, sl->fields[i], json_string(comp[i]));
        json_object_set_new(o, "seq", json_integer((json_int_t) seq));
        json_array_append_new(sl->out, o);
finish:
        for (unsigned i = 0; i < 4; i++)
                free(comp[i]);
        return r == -EBADMSG ? 0 : r;
}

/* Whole timelines (every entry) of each key group that ever pointed at a digest of the closure. */
static int collect_history(Store *s, IndexSnapshot *snap, IndexColumn c, json_t *set, unsigned n_fields,
                           const char *const *fields, json_t **ret) {
        Slice sl = { .set = set, .groups = json_object(), .out = json_array(), .n_fields = n_fields, .fields = fields };
        int r = -ENOMEM;
        if (!sl.groups || !sl.out)
                goto finish;
        r = store_kv_iterate(s, snap, c, NULL, 0, NULL, 0, slice_find_groups, &sl);
        if (r < 0)
                goto finish;
        const char *hex;
        json_t *v;
        json_object_foreach(sl.groups, hex, v) {
                size_t hl = strlen(hex);
                _cleanup_free_ uint8_t *prefix = malloc(hl / 2 + 1);
                if (!prefix) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = hex_decode(hex, hl, prefix);
                if (r < 0)
                        goto finish;
                r = store_kv_iterate(s, snap, c, prefix, hl / 2, NULL, 0, slice_take, &sl);
                if (r < 0)
                        goto finish;
        }
        *ret = steal_pointer(&sl.out);
        r = 0;
finish:
        json_decref(sl.groups);
        json_decref(sl.out);
        return r;
}

typedef struct AuditSlice {
        json_t *set;
        json_t *out;
} AuditSlice;

static int audit_take(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        AuditSlice *a = userdata;
        if (!value_mentions_set(a->set, val, vlen))
                return 0;
        json_t *o = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(o)) {
                json_decref(o);
                o = json_pack("{s:s%}", "raw", val, vlen);
        }
        if (klen == 17) {
                uint64_t seq = 0;
                for (int i = 9; i < 17; i++)
                        seq = (seq << 8) | (uint8_t) key[i];
                json_object_set_new(o, "seq", json_integer((json_int_t) seq));
        }
        json_array_append_new(a->out, o);
        return 0;
}

typedef struct TagScan {
        json_t *set;
        const char *held;
        json_t *tags;  /* [{repo, tag, digest}] */
        json_t *repos; /* repositories the held manifest is in */
} TagScan;

static int tag_take(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagScan *t = userdata;
        TagInfo ti;
        if (tag_info_decode(val, vlen, &ti) < 0 || !json_object_get(t->set, ti.digest))
                return 0;
        size_t rl = strnlen(key, klen);
        if (rl >= klen)
                return 0;
        json_t *o = json_pack("{s:s%, s:s%, s:s}", "repo", key, rl, "tag", key + rl + 1, klen - rl - 1, "digest", ti.digest);
        if (o)
                json_array_append_new(t->tags, o);
        return 0;
}

static int repo_take(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        TagScan *t = userdata;
        size_t rl = strnlen(key, klen);
        if (rl >= klen)
                return 0;
        if (klen - rl - 1 == strlen(t->held) && memcmp(key + rl + 1, t->held, klen - rl - 1) == 0)
                json_array_append_new(t->repos, json_stringn(key, rl));
        return 0;
}

static int holds_take(void *userdata, const HoldInfo *h) {
        TagScan *t = userdata;
        if (streq(h->digest, t->held))
                json_array_append_new(t->tags /* reused as holds list */, hold_info_to_json(h, clock_now_ns()));
        return 0;
}

/* ---- immutable attribute */

static void set_immutable(Export *e, int dirfd, const char *path, bool is_dir) {
        if (!e->o->immutable)
                return;
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (is_dir ? O_DIRECTORY : 0));
        if (fd < 0) {
                log_warning("immutable attribute: opening %s/%s: %m", e->bundle, path);
                e->immutable_ok = false;
                return;
        }
        int flags = 0;
        int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
        if (r >= 0) {
                flags |= FS_IMMUTABLE_FL;
                r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
        if (r < 0) {
                int err = errno;
                e->immutable_ok = false;
                if (!e->immutable_warned)
                        log_warning("the WORM target %s does not take the immutable attribute (%s); bundle %s is "
                                    "read-only by mode (0444/0555) only",
                                    e->o->path, strerror(err), e->bundle);
                e->immutable_warned = true;
        }
        close(fd);
}

/* ---- the export */

static int make_bundle_dir(Export *e, int casefd, const char *case_dir, const char *digest, int64_t now) {
        char ts[64];
        time_t t = (time_t) (now / (int64_t) NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t k = strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
        snprintf(ts + k, sizeof ts - k, ".%09lldZ", (long long) (now % (int64_t) NSEC_PER_SEC));
        char shorthex[13];
        snprintf(shorthex, sizeof shorthex, "%s", digest_hex(digest));
        for (unsigned n = 0; n < 10000; n++) {
                _cleanup_free_ char *name = n == 0 ? strdup_printf("%s-%s", ts, shorthex)
                                                   : strdup_printf("%s-%s-%u", ts, shorthex, n);
                if (!name)
                        return -ENOMEM;
                if (mkdirat(casefd, name, 0755) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return store_error_set(e->err, -errno, OCI_UNSUPPORTED, "creating bundle %s/%s: %m", case_dir,
                                               name);
                }
                e->bundle = strdup_printf("%s/%s", case_dir, name);
                if (!e->bundle)
                        return -ENOMEM;
                e->dfd = openat(casefd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (e->dfd < 0)
                        return store_error_set(e->err, -errno, OCI_UNSUPPORTED, "opening %s: %m", e->bundle);
                return 0;
        }
        return store_error_set(e->err, -EEXIST, OCI_UNSUPPORTED, "no free bundle name under %s", case_dir);
}

static void note_failure(Export *e, int r) {
        if (e->dfd < 0)
                return;
        /* best effort: the target may be full or read-only; INCOMPLETE already tells */
        _cleanup_free_ char *msg = strdup_printf("export failed: %s\n%s\n", strerror(-r),
                                                 e->err && e->err->message[0] ? e->err->message : "");
        if (!msg)
                return;
        int fd = openat(e->dfd, MARK_FAILED, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (fd < 0)
                return;
        if (loop_write(fd, msg, strlen(msg)) >= 0)
                (void) fsync(fd);
        close(fd);
}

static int export_sums(Export *e) {
        /* every file incl. bundle.json, in `sha256sum -c` format: "<hex>  <path>" */
        size_t cap = 0, len = 0;
        _cleanup_free_ char *buf = NULL;
        size_t i;
        json_t *f;
        json_array_foreach(e->files, i, f) {
                const char *p = json_string_value(json_object_get(f, "path"));
                const char *h = json_string_value(json_object_get(f, "sha256"));
                size_t need = strlen(p) + strlen(h) + 4;
                if (len + need + 1 > cap) {
                        cap = (len + need + 1) * 2;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                len += (size_t) snprintf(buf + len, cap - len, "%s  %s\n", h, p);
        }
        return bundle_write_buffer(e, SHA256SUMS, buf ? buf : "", len);
}

int worm_export(Store *s, const WormOptions *o, const char *case_id, const char *digest, char **ret_bundle,
                json_t **ret_summary, StoreError *err) {
        pthread_once(&worm_metrics_once, worm_metrics_init);
        if (ret_bundle)
                *ret_bundle = NULL;
        if (!o || !o->path || !*o->path)
                return store_error_set(err, -EDESTADDRREQ, OCI_UNSUPPORTED,
                                       "WORM export is not configured: set worm.path in the configuration");
        if (!case_id_is_valid(case_id))
                return store_error_set(err, -EINVAL, OCI_UNSUPPORTED,
                                       "invalid case id '%s': expected 1-128 characters [A-Za-z0-9._-] starting with a "
                                       "letter or digit",
                                       strempty(case_id));
        if (!digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest '%s'", strempty(digest));
        struct stat st;
        if (stat(o->path, &st) < 0)
                return store_error_set(err, -errno, OCI_UNSUPPORTED,
                                       "WORM target %s: %m (is the WORM filesystem mounted?)", o->path);
        if (!S_ISDIR(st.st_mode))
                return store_error_set(err, -ENOTDIR, OCI_UNSUPPORTED, "WORM target %s is not a directory", o->path);

        Export e = { .store = s, .o = o, .err = err, .dfd = -1, .immutable_ok = true };
        const char *delay = getenv("PLURA_WORM_TEST_DELAY_MS");
        if (delay && *delay)
                e.delay_ms = (unsigned) strtoul(delay, NULL, 10);

        int r;
        int casefd = -1;
        _cleanup_(store_snapshot_freep) IndexSnapshot *snap = NULL;
        _cleanup_(json_decrefp) json_t *closure = NULL, *set = NULL, *tag_hist = NULL, *chan_hist = NULL,
                                       *audit = NULL, *tags = NULL, *repos = NULL, *holds = NULL, *bundle_json = NULL,
                                       *index = NULL;
        _cleanup_free_ char *case_dir = NULL;
        _cleanup_strv_free_ char **dirs = NULL;
        char now_s[64];
        int64_t now = clock_now_ns();
        format_rfc3339_ns(now_s, now);

        /* Everything that can fail for reasons of the input happens before anything is written. */
        r = store_snapshot_new(s, NULL, &snap);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "index snapshot: %s", strerror(-r));
        r = store_digest_closure(s, snap, digest, &closure, err);
        if (r < 0)
                return r;
        set = json_object();
        if (!set)
                return -ENOMEM;
        json_t *arr[2] = { json_object_get(closure, "manifests"), json_object_get(closure, "blobs") };
        for (size_t k = 0; k < 2; k++) {
                size_t i;
                json_t *x;
                json_array_foreach(arr[k], i, x)
                        json_object_set_new(set, json_string_value(json_object_get(x, "digest")), json_true());
        }
        static const char *const tag_fields[] = { "repo", "tag" };
        static const char *const chan_fields[] = { "env", "svc", "pointer" };
        r = collect_history(s, snap, INDEX_TAG_HISTORY, set, 2, tag_fields, &tag_hist);
        if (r >= 0)
                r = collect_history(s, snap, INDEX_CHANNEL_HISTORY, set, 3, chan_fields, &chan_hist);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "reading history: %s", strerror(-r));
        AuditSlice as = { .set = set, .out = audit = json_array() };
        r = store_kv_iterate(s, snap, INDEX_AUDIT, NULL, 0, NULL, 0, audit_take, &as);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "reading the audit log: %s", strerror(-r));
        TagScan ts = { .set = set, .held = digest, .tags = tags = json_array(), .repos = repos = json_array() };
        r = store_kv_iterate(s, snap, INDEX_TAG, NULL, 0, NULL, 0, tag_take, &ts);
        if (r >= 0)
                r = store_kv_iterate(s, snap, INDEX_REPO_MANIFEST, NULL, 0, NULL, 0, repo_take, &ts);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "reading tags: %s", strerror(-r));
        TagScan hs = { .held = digest, .tags = holds = json_array() };
        r = store_holds_foreach(s, snap, holds_take, &hs);
        if (r < 0)
                return store_error_set(err, r, OCI_UNSUPPORTED, "reading holds: %s", strerror(-r));

        /* every blob's file must open before anything is written (a record without its file is
         * for fsck, not a reason to leave a half bundle behind) */
        {
                size_t i;
                json_t *b;
                json_array_foreach(json_object_get(closure, "blobs"), i, b) {
                        if (json_object_get(b, "skipped") || json_object_get(b, "synthesized"))
                                continue;
                        _cleanup_(blob_reader_freep) BlobReader *br = NULL;
                        const char *d = json_string_value(json_object_get(b, "digest"));
                        r = store_blob_open(s, d, &br);
                        if (r < 0)
                                return store_error_set(err, r, r == -ENOENT ? OCI_BLOB_UNKNOWN : OCI_UNSUPPORTED,
                                                       "blob %s of the closure cannot be read from the store: %s (run "
                                                       "plura fsck)",
                                                       d, strerror(-r));
                }
        }

        /* ---- the bundle directory */
        case_dir = strdup_printf("%s/%s", o->path, case_id);
        if (!case_dir)
                return -ENOMEM;
        if (mkdir(case_dir, 0755) < 0 && errno != EEXIST)
                return store_error_set(err, -errno, OCI_UNSUPPORTED, "creating %s: %m", case_dir);
        casefd = open(case_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (casefd < 0)
                return store_error_set(err, -errno, OCI_UNSUPPORTED, "opening %s: %m", case_dir);
        e.files = json_array();
        if (!e.files) {
                r = -ENOMEM;
                goto fail;
        }
        r = make_bundle_dir(&e, casefd, case_dir, digest, now);
        if (r < 0)
                goto fail;
        if (ret_bundle && !(*ret_bundle = strdup(e.bundle))) {
                r = -ENOMEM;
                goto fail;
        }

        /* The marker goes first and stays until everything else is on disk. */
        {
                _cleanup_free_ char *marker =
                        strdup_printf("plura WORM export of %s for case %s started %s; not complete until this file is "
                                      "gone and bundle.json and SHA256SUMS exist\n",
                                      digest, case_id, now_s);
                int fd = marker ? openat(e.dfd, MARK_INCOMPLETE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444)
                                : -1;
                if (fd < 0) {
                        r = marker ? store_error_set(err, -errno, OCI_UNSUPPORTED, "creating %s/%s: %m", e.bundle,
                                                     MARK_INCOMPLETE)
                                   : -ENOMEM;
                        goto fail;
                }
                r = loop_write(fd, marker, strlen(marker));
                if (r >= 0 && fsync(fd) < 0)
                        r = -errno;
                close(fd);
                if (r >= 0 && fsync(casefd) < 0)
                        r = -errno;
                if (r < 0) {
                        r = store_error_set(err, r, OCI_UNSUPPORTED, "writing %s/%s: %s", e.bundle, MARK_INCOMPLETE,
                                            strerror(-r));
                        goto fail;
                }
        }

        r = mkdirat_bundle(&e, "blobs");
        if (r < 0)
                goto fail;
        {
                _cleanup_(json_decrefp) json_t *layout = json_pack("{s:s}", "imageLayoutVersion", "1.0.0");
                r = layout ? bundle_write_json(&e, "oci-layout", layout) : -ENOMEM;
                if (r < 0)
                        goto fail;
        }

        /* content: manifests and blobs */
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(closure, "manifests"), i, x) {
                r = export_manifest(&e, json_string_value(json_object_get(x, "digest")));
                if (r < 0)
                        goto fail;
        }
        json_array_foreach(json_object_get(closure, "blobs"), i, x) {
                r = export_blob(&e, x);
                if (r < 0)
                        goto fail;
        }

        /* the OCI layout index: the held manifest as "held", each referrer by its own ref */
        index = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_INDEX, "manifests");
        if (!index) {
                r = -ENOMEM;
                goto fail;
        }
        json_array_foreach(json_object_get(closure, "manifests"), i, x) {
                const char *role = json_string_value(json_object_get(x, "role"));
                const char *d = json_string_value(json_object_get(x, "digest"));
                _cleanup_free_ char *ref = NULL;
                if (streq(role, "held"))
                        ref = strdup("held");
                else if (streq(role, "referrer"))
                        ref = strdup_printf("referrer-%.12s", digest_hex(d));
                else
                        continue; /* children are reached through their index */
                json_t *desc = json_pack("{s:O, s:s, s:O, s:{s:s}}", "mediaType", json_object_get(x, "mediaType"),
                                         "digest", d, "size", json_object_get(x, "size"), "annotations",
                                         "org.opencontainers.image.ref.name", ref ? ref : "held");
                if (desc && json_object_get(x, "artifactType"))
                        json_object_set(desc, "artifactType", json_object_get(x, "artifactType"));
                if (!desc || json_array_append_new(json_object_get(index, "manifests"), desc) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        r = bundle_write_json(&e, "tag-history.json", tag_hist);
        if (r >= 0)
                r = bundle_write_json(&e, "channel-history.json", chan_hist);
        if (r >= 0)
                r = bundle_write_json(&e, "audit.json", audit);
        if (r >= 0)
                r = bundle_write_json(&e, "index.json", index);
        if (r < 0)
                goto fail;

        /* bundle.json lists every file written so far; SHA256SUMS lists those and bundle.json */
        bundle_json = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:s, s:I}",
                                "kind", "plura-worm-bundle", "bundle_version", 1, "case_id", case_id, "digest", digest,
                                "exported_at", now_s, "exported_at_ns", (json_int_t) now, "registry_id",
                                strempty(o->registry_id), "actor", o->actor ? o->actor : "anonymous", "ref", "held",
                                "closure", closure, "holds", holds, "tags", tags, "repositories", repos, "files",
                                e.files, "hash_algorithm", "sha256", "total_bytes", (json_int_t) e.bytes);
        if (!bundle_json) {
                r = -ENOMEM;
                goto fail;
        }
        r = bundle_write_json(&e, BUNDLE_JSON, bundle_json);
        if (r < 0)
                goto fail;
        r = export_sums(&e);
        if (r < 0)
                goto fail;

        /* Everything on stable storage before the marker goes. */
        if (syncfs(e.dfd) < 0) {
                r = store_error_set(err, -errno, OCI_UNSUPPORTED, "syncing %s: %m", e.bundle);
                goto fail;
        }
        if (unlinkat(e.dfd, MARK_INCOMPLETE, 0) < 0 || fsync(e.dfd) < 0) {
                r = store_error_set(err, -errno, OCI_UNSUPPORTED, "completing %s: %m", e.bundle);
                goto fail;
        }

        /* Read-only from here on: directories 0555, then the immutable attribute on every file,
         * directories last (an immutable directory takes no new entries). */
        {
                size_t n = 0;
                dirs = calloc(4, sizeof(char *));
                if (!dirs) {
                        r = -ENOMEM;
                        goto fail;
                }
                DigestAlgorithm algos[] = { DIGEST_SHA256, DIGEST_SHA512 };
                for (size_t k = 0; k < ELEMENTSOF(algos); k++) {
                        char *d = strdup_printf("blobs/%s", digest_algorithm_to_string(algos[k]));
                        struct stat dst;
                        if (d && fstatat(e.dfd, d, &dst, AT_SYMLINK_NOFOLLOW) >= 0)
                                dirs[n++] = d;
                        else
                                free(d);
                }
                dirs[n++] = strdup("blobs");
        }
        for (char **d = dirs; *d; d++)
                if (fchmodat(e.dfd, *d, 0555, 0) < 0)
                        log_warning("chmod %s/%s: %m", e.bundle, *d);
        if (fchmod(e.dfd, 0555) < 0)
                log_warning("chmod %s: %m", e.bundle);
        json_array_foreach(e.files, i, x)
                set_immutable(&e, e.dfd, json_string_value(json_object_get(x, "path")), false);
        set_immutable(&e, e.dfd, BUNDLE_JSON, false);
        set_immutable(&e, e.dfd, SHA256SUMS, false);
        for (char **d = dirs; *d; d++)
                set_immutable(&e, e.dfd, *d, true);
        set_immutable(&e, e.dfd, ".", true);
        (void) fsync(e.dfd);
        (void) syncfs(e.dfd);

        /* e.files now also lists bundle.json and SHA256SUMS */
        metrics_counter_add(M_BUNDLES, NULL, 1);
        metrics_counter_add(M_BYTES, NULL, (double) e.bytes);
        log_info("WORM bundle %s: %zu files, %llu bytes%s", e.bundle, json_array_size(e.files),
                 (unsigned long long) e.bytes, e.immutable_ok && o->immutable ? ", immutable" : "");
        {
                json_t *detail = json_pack("{s:s, s:I, s:I}", "bundle", e.bundle, "files",
                                           (json_int_t) json_array_size(e.files), "bytes", (json_int_t) e.bytes);
                _cleanup_free_ char *target = strdup_printf("%s@%s", case_id, digest);
                if (!s || store_is_read_only(s) || !target ||
                    store_audit(s, o->actor ? o->actor : "anonymous", "worm.export", target, "ok", detail) < 0)
                        log_warning("could not write the audit event of WORM export %s", e.bundle);
                json_decref(detail);
        }
        if (ret_summary) {
                *ret_summary = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:s}", "bundle", e.bundle, "case_id",
                                         case_id, "digest", digest, "exported_at", now_s, "files",
                                         (json_int_t) json_array_size(e.files), "bytes", (json_int_t) e.bytes,
                                         "immutable", e.immutable_ok && o->immutable, "registry_id",
                                         strempty(o->registry_id));
                if (!*ret_summary) {
                        r = -ENOMEM;
                        goto done;
                }
        }
        r = 0;
        goto done;
fail:
        note_failure(&e, r);
        if (e.bundle)
                log_error_errno(r, "WORM export of %s for case %s failed, bundle %s left incomplete: %s", digest, case_id,
                                e.bundle, err && err->message[0] ? err->message : "");
        else
                log_error_errno(r, "WORM export of %s for case %s failed: %s", digest, case_id,
                                err && err->message[0] ? err->message : "");
        if (err && !err->message[0])
                store_error_set(err, r, OCI_UNSUPPORTED, "WORM export failed: %s", strerror(-r));
        if (err && e.bundle) {
                size_t l = strlen(err->message);
                snprintf(err->message + l, sizeof(err->message) - l, " (incomplete bundle left at %s)", e.bundle);
        }
done:
        if (e.dfd >= 0)
                close(e.dfd);
        if (casefd >= 0)
                close(casefd);
        free(e.bundle);
        json_decref(e.files);
        return r;
}

