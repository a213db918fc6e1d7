/* SPDX-License-Identifier: MIT */
/* Content-addressed blobs: their records, atomic commit (optionally as independent zstd frames)
 * into the blob backend (blob-backend.h: only it knows where the bytes live), readers with random
 * access, mount/unlink/put/remove. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/blob-backend.h"
#include "storage/store-internal.h"

/* Seek table at the end of a zstd blob, inside a zstd skippable frame (so `zstd -d` still works):
 *   u32 0x184D2A5E | u32 content length | n x u32 compressed frame size | u32 n | u32 SEEK_MAGIC */
#define ZSTD_SKIPPABLE_MAGIC 0x184D2A5EU
#define SEEK_MAGIC 0x4B534C50U /* "PLSK" */
#define BLOB_IO_BUFFER (256U * 1024U)

char *store_blob_location(Store *s, const char *digest) {
        return blob_backend_location(s->blobs, digest);
}

static int blob_record_read(Store *s, const char *digest, BlobInfo *ret) {
        _cleanup_free_ char *v = NULL;
        size_t vl;
        int r = index_get(s, NULL, INDEX_BLOB, digest, strlen(digest), &v, &vl);
        if (r < 0)
                return r;
        return blob_info_decode(v, vl, ret);
}

int store_blob_info(Store *s, const char *digest, BlobInfo *ret) {
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        BlobInfo tmp;
        return blob_record_read(s, digest, ret ? ret : &tmp);
}

typedef struct BlobInfos {
        BlobInfo *infos;
        int *status;
} BlobInfos;

static int blob_infos_cb(void *userdata, size_t i, const char *val, size_t vlen) {
        BlobInfos *b = userdata;
        b->status[i] = !val ? -ENOENT : blob_info_decode(val, vlen, &b->infos[i]);
        return 0;
}

int store_blob_infos(Store *s, const char *const *digests, size_t n, BlobInfo *ret, int *ret_status) {
        _cleanup_free_ size_t *lens = malloc(MAX(n, (size_t) 1) * sizeof *lens);
        if (!lens)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!digests[i] || digest_parse(digests[i], NULL) < 0)
                        return -EINVAL;
                if (i > 0 && strcmp(digests[i - 1], digests[i]) >= 0)
                        return -EINVAL; /* MultiGet was told the keys are sorted */
                lens[i] = strlen(digests[i]);
        }
        BlobInfos b = { .infos = ret, .status = ret_status };
        return index_multi_get(s, NULL, INDEX_BLOB, digests, lens, n, true, blob_infos_cb, &b);
}

static bool repo_blob_linked(Store *s, const char *repo, const char *digest) {
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        return k && index_get(s, NULL, INDEX_REPO_BLOB, k, kl, NULL, NULL) >= 0;
}

int store_repo_blob_info(Store *s, const char *repo, const char *digest, BlobInfo *ret) {
        if (!repo || !digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        if (!repo_blob_linked(s, repo, digest))
                return -ENOENT;
        return store_blob_info(s, digest, ret);
}

/* ---- zstd at rest */

static bool looks_compressed(const uint8_t *p, size_t n) {
        if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) /* gzip */
                return true;
        if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) /* zstd */
                return true;
        if (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0) /* xz */
                return true;
        if (n >= 3 && memcmp(p, "BZh", 3) == 0) /* bzip2 */
                return true;
        if (n >= 4 && p[0] == 0x04 && p[1] == 0x22 && p[2] == 0x4d && p[3] == 0x18) /* lz4 */
                return true;
        return false;
}

/* Compresses src (size logical bytes) into dst as independent frames plus a seek table.
 * Returns 1 and the stored size if worth it (< 90%), 0 if not, negative on error. */
static int compress_blob(int src, uint64_t size, int dst, int level, uint64_t *ret_stored) {
        uint64_t n_frames = (size + BLOB_ZSTD_FRAME_SIZE - 1) / BLOB_ZSTD_FRAME_SIZE;
        if (n_frames == 0 || n_frames > UINT32_MAX / 8)
                return 0;
        size_t bound = ZSTD_compressBound(BLOB_ZSTD_FRAME_SIZE);
        _cleanup_free_ uint8_t *in = malloc(BLOB_ZSTD_FRAME_SIZE);
        _cleanup_free_ uint8_t *out = malloc(bound);
        _cleanup_free_ uint8_t *table = malloc(n_frames * 4 + 16);
        ZSTD_CCtx *cctx = ZSTD_createCCtx();
        int r = 0;
        uint64_t stored = 0, limit = size / 10 * 9;
        if (!in || !out || !table || !cctx) {
                r = -ENOMEM;
                goto finish;
        }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
        for (uint64_t i = 0; i < n_frames; i++) {
                size_t want = (size_t) MIN((uint64_t) BLOB_ZSTD_FRAME_SIZE, size - i * BLOB_ZSTD_FRAME_SIZE);
                ssize_t got = loop_pread(src, in, want, (off_t) (i * BLOB_ZSTD_FRAME_SIZE));
                if (got < 0) {
                        r = (int) got;
                        goto finish;
                }
                if ((size_t) got != want) {
                        r = -EIO;
                        goto finish;
                }
                if (i == 0 && looks_compressed(in, want))
                        goto finish; /* r = 0 */
                size_t c = ZSTD_compress2(cctx, out, bound, in, want);
                if (ZSTD_isError(c)) {
                        r = -EIO;
                        goto finish;
                }
                stored += c;
                if (stored >= limit)
                        goto finish; /* not worth it */
                r = loop_write(dst, out, c);
                if (r < 0)
                        goto finish;
                put_u32_le(table + 8 + i * 4, (uint32_t) c);
        }
        uint32_t content = (uint32_t) (n_frames * 4 + 8);
        put_u32_le(table, ZSTD_SKIPPABLE_MAGIC);
        put_u32_le(table + 4, content);
        put_u32_le(table + 8 + n_frames * 4, (uint32_t) n_frames);
        put_u32_le(table + 12 + n_frames * 4, SEEK_MAGIC);
        r = loop_write(dst, table, 8 + content);
        if (r < 0)
                goto finish;
        stored += 8 + content;
        *ret_stored = stored;
        r = 1;
finish:
        ZSTD_freeCCtx(cctx);
        return r;
}

/* ---- commit */

int blob_commit_file(Store *s, const char *repo, const char *src_path, int src_fd, const char *digest, uint64_t size,
                     const char *upload_uuid, const char *actor, StoreError *err) {
        _cleanup_free_ char *zpath = NULL;
        int r;

        if (s->read_only) {
                unlink(src_path);
                return -EROFS;
        }

        /* Encode and sync outside the digest lock (slow for big blobs); only the rename and the
         * index write happen under it. */
        BlobEncoding enc = BLOB_ENCODING_RAW;
        uint64_t stored = size;
        _cleanup_close_ int zfd = -1;
        if (s->zstd_at_rest && size >= 256) {
                char rnd[37];
                r = uuid_random(rnd);
                zpath = r >= 0 ? strdup_printf("%s/tmp/%s.zst", s->root, rnd) : NULL;
                zfd = zpath ? open(zpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
                if (zfd >= 0) {
                        r = compress_blob(src_fd, size, zfd, s->zstd_level, &stored);
                        /* mode first, so the one fsync makes it durable too */
                        if (r > 0 && fchmod(zfd, 0444) < 0)
                                r = -errno;
                        if (r > 0 && s->fsync && fsync(zfd) < 0)
                                r = -errno;
                        if (r > 0)
                                enc = BLOB_ENCODING_ZSTD;
                        else {
                                if (r < 0)
                                        log_warning_errno(r, "zstd at rest for %s failed, storing raw: %m", digest);
                                unlink(zpath);
                                stored = size;
                        }
                }
        }
        const char *commit_path = enc == BLOB_ENCODING_ZSTD ? zpath : src_path;
        if (enc == BLOB_ENCODING_RAW) {
                r = 0;
                if (fchmod(src_fd, 0444) < 0)
                        r = -errno;
                if (r >= 0 && s->fsync && fsync(src_fd) < 0)
                        r = -errno;
                if (r < 0) {
                        unlink(src_path);
                        return store_error_set(err, log_error_errno(r, "Cannot sync blob %s: %m", digest),
                                               OCI_BLOB_UPLOAD_INVALID, "cannot store the blob");
                }
        }

        int64_t now = clock_now_ns();
        store_digest_lock(s, digest);

        BlobInfo bi = {};
        bool had_record = blob_record_read(s, digest, &bi) >= 0;
        if (had_record && blob_backend_exists(s->blobs, digest) == 1) {
                /* dedupe: the same content is already committed */
                unlink(commit_path);
        } else {
                bi = (BlobInfo) { .size = size, .stored_size = stored, .encoding = enc, .created = now };
                r = blob_backend_commit(s->blobs, digest, commit_path, enc == BLOB_ENCODING_ZSTD ? zfd : src_fd);
                if (r < 0) {
                        store_digest_unlock(s, digest);
                        if (enc == BLOB_ENCODING_ZSTD)
                                unlink(src_path);
                        return store_error_set(err, log_error_errno(r, "Cannot commit blob %s: %m", digest),
                                               OCI_BLOB_UPLOAD_INVALID, "cannot store the blob");
                }
        }
        if (enc == BLOB_ENCODING_ZSTD)
                unlink(src_path);
        bi.touched = now;

        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        uint8_t rec[BLOB_RECORD_SIZE];
        blob_info_encode(&bi, rec);
        index_batch_put(b, INDEX_BLOB, digest, strlen(digest), rec, sizeof rec);
        if (repo && !repo_blob_linked(s, repo, digest)) {
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
                uint8_t link[REPO_BLOB_RECORD_SIZE];
                repo_blob_encode(now, link);
                if (k)
                        index_batch_put(b, INDEX_REPO_BLOB, k, kl, link, sizeof link);
        }
        if (upload_uuid)
                index_batch_delete(b, INDEX_UPLOAD, upload_uuid, strlen(upload_uuid));
        _cleanup_free_ char *target = strdup_printf("%s@%s", strempty(repo), digest);
        json_t *detail = json_pack("{s:I}", "size", (json_int_t) size);
        r = b ? audit_add(s, b, actor, "blob.push", target, "ok", detail) : -ENOMEM;
        json_decref(detail);
        if (r >= 0)
                r = store_batch_commit(s, b);
        store_digest_unlock(s, digest);
        if (r < 0)
                return store_error_set(err, r, OCI_BLOB_UPLOAD_INVALID, "index write failed");
        return 0;
}

/* ---- readers */

struct BlobReader {
        BlobObject *obj; /* the stored bytes */
        uint64_t size;
        BlobEncoding encoding;
        uint64_t n_frames;
        uint64_t *frame_off; /* n_frames + 1 disk offsets */
        ZSTD_DCtx *dctx;
        uint8_t *frame;      /* decompressed cache of frame `cached` */
        int64_t cached;
        uint8_t *cbuf;
        size_t cbuf_size;
};

BlobReader *blob_reader_free(BlobReader *r) {
        if (!r)
                return NULL;
        blob_object_free(r->obj);
        free(r->frame_off);
        if (r->dctx)
                ZSTD_freeDCtx(r->dctx);
        free(r->frame);
        free(r->cbuf);
        free(r);
        return NULL;
}

static int read_seek_table(BlobReader *r, uint64_t file_size) {
        uint8_t tail[8];
        if (file_size < 16)
                return -EBADMSG;
        ssize_t n = blob_object_pread(r->obj, tail, 8, file_size - 8);
        if (n != 8)
                return n < 0 ? (int) n : -EBADMSG;
        if (get_u32_le(tail + 4) != SEEK_MAGIC)
                return -EBADMSG;
        uint64_t frames = get_u32_le(tail);
        uint64_t expect = (r->size + BLOB_ZSTD_FRAME_SIZE - 1) / BLOB_ZSTD_FRAME_SIZE;
        if (frames != expect || file_size < 16 + frames * 4)
                return -EBADMSG;
        uint64_t table_at = file_size - 8 - frames * 4;
        _cleanup_free_ uint8_t *t = malloc(frames * 4 + 1);
        r->frame_off = calloc(frames + 1, sizeof(uint64_t));
        if (!t || !r->frame_off)
                return -ENOMEM;
        n = blob_object_pread(r->obj, t, frames * 4, table_at);
        if (n < 0 || (uint64_t) n != frames * 4)
                return n < 0 ? (int) n : -EBADMSG;
        uint64_t off = 0;
        for (uint64_t i = 0; i < frames; i++) {
                r->frame_off[i] = off;
                off += get_u32_le(t + 4 * i);
        }
        r->frame_off[frames] = off;
        if (off + 8 != table_at)
                return -EBADMSG;
        r->n_frames = frames;
        return 0;
}

static int blob_reader_open_file(Store *s, const char *digest, const BlobInfo *bi, BlobReader **ret) {
        BlobReader *r = calloc(1, sizeof(BlobReader));
        if (!r)
                return -ENOMEM;
        r->cached = -1;
        r->size = bi->size;
        r->encoding = bi->encoding;
        int q = blob_backend_open(s->blobs, digest, &r->obj);
        if (q >= 0 && r->encoding == BLOB_ENCODING_ZSTD) {
                q = read_seek_table(r, blob_object_size(r->obj));
                if (q >= 0) {
                        r->dctx = ZSTD_createDCtx();
                        r->frame = malloc(BLOB_ZSTD_FRAME_SIZE);
                        if (!r->dctx || !r->frame)
                                q = -ENOMEM;
                }
        }
        if (q < 0) {
                blob_reader_free(r);
                return q;
        }
        *ret = r;
        return 0;
}

int store_blob_open(Store *s, const char *digest, BlobReader **ret) {
        BlobInfo bi;
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        int r = blob_record_read(s, digest, &bi);
        if (r < 0)
                return r;
        return blob_reader_open_file(s, digest, &bi, ret);
}

uint64_t blob_reader_size(BlobReader *r) {
        return r->size;
}

int blob_reader_fd(BlobReader *r) {
        return r->encoding == BLOB_ENCODING_RAW ? blob_object_fd(r->obj) : -1;
}

static int load_frame(BlobReader *r, uint64_t i) {
        if (r->cached == (int64_t) i)
                return 0;
        uint64_t clen = r->frame_off[i + 1] - r->frame_off[i];
        if (clen > r->cbuf_size) {
                uint8_t *b = realloc(r->cbuf, clen);
                if (!b)
                        return -ENOMEM;
                r->cbuf = b;
                r->cbuf_size = clen;
        }
        ssize_t n = blob_object_pread(r->obj, r->cbuf, clen, r->frame_off[i]);
        if (n < 0)
                return (int) n;
        if ((uint64_t) n != clen)
                return -EBADMSG;
        size_t want = (size_t) MIN((uint64_t) BLOB_ZSTD_FRAME_SIZE, r->size - i * BLOB_ZSTD_FRAME_SIZE);
        size_t d = ZSTD_decompressDCtx(r->dctx, r->frame, BLOB_ZSTD_FRAME_SIZE, r->cbuf, clen);
        if (ZSTD_isError(d) || d != want) {
                r->cached = -1;
                return -EBADMSG;
        }
        r->cached = (int64_t) i;
        return 0;
}

ssize_t blob_reader_pread(BlobReader *r, void *buf, size_t n, uint64_t offset) {
        if (offset >= r->size || n == 0)
                return 0;
        n = (size_t) MIN((uint64_t) n, r->size - offset);
        if (r->encoding == BLOB_ENCODING_RAW)
                return blob_object_pread(r->obj, buf, n, offset);
        size_t done = 0;
        while (done < n) {
                uint64_t pos = offset + done;
                uint64_t i = pos / BLOB_ZSTD_FRAME_SIZE;
                int q = load_frame(r, i);
                if (q < 0)
                        return done > 0 ? (ssize_t) done : q;
                size_t in_frame = (size_t) (pos - i * BLOB_ZSTD_FRAME_SIZE);
                size_t avail = (size_t) MIN((uint64_t) BLOB_ZSTD_FRAME_SIZE, r->size - i * BLOB_ZSTD_FRAME_SIZE) - in_frame;
                size_t c = MIN(avail, n - done);
                memcpy((uint8_t *) buf + done, r->frame + in_frame, c);
                done += c;
        }
        return (ssize_t) done;
}

int blob_file_verify(Store *s, const char *digest, const BlobInfo *info, uint64_t *ret_bytes) {
        DigestAlgorithm a;
        int r = digest_parse(digest, &a);
        if (r < 0)
                return r;
        _cleanup_(blob_reader_freep) BlobReader *br = NULL;
        r = blob_reader_open_file(s, digest, info, &br);
        if (r < 0)
                return r;
        _cleanup_(hasher_freep) Hasher *h = NULL;
        r = hasher_new(a, &h);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(BLOB_IO_BUFFER);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        for (;;) {
                ssize_t n = blob_reader_pread(br, buf, BLOB_IO_BUFFER, off);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                r = hasher_update(h, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
        if (ret_bytes)
                *ret_bytes = off;
        if (br->encoding == BLOB_ENCODING_RAW) {
                /* a raw file longer than its record is corrupt too */
                if (blob_object_size(br->obj) != info->size)
                        return -EBADMSG;
        }
        char got[DIGEST_MAX_LEN];
        r = hasher_final(h, got);
        if (r < 0)
                return r;
        return streq(got, digest) ? 0 : -EBADMSG;
}

/* ---- mount, unlink, put, remove */

int store_blob_mount(Store *s, const char *repo, const char *from_repo, const char *digest, const char *actor) {
        if (s->read_only)
                return -EROFS;
        if (!repo || !digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        int64_t now = clock_now_ns();
        int r;
        store_digest_lock(s, digest);
        BlobInfo bi;
        if ((from_repo && !repo_blob_linked(s, from_repo, digest)) || blob_record_read(s, digest, &bi) < 0) {
                store_digest_unlock(s, digest);
                return -ENOENT;
        }
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b) {
                store_digest_unlock(s, digest);
                return -ENOMEM;
        }
        bi.touched = now;
        uint8_t rec[BLOB_RECORD_SIZE];
        blob_info_encode(&bi, rec);
        index_batch_put(b, INDEX_BLOB, digest, strlen(digest), rec, sizeof rec);
        if (!repo_blob_linked(s, repo, digest)) {
                size_t kl;
                _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
                uint8_t link[REPO_BLOB_RECORD_SIZE];
                repo_blob_encode(now, link);
                if (k)
                        index_batch_put(b, INDEX_REPO_BLOB, k, kl, link, sizeof link);
                _cleanup_free_ char *target = strdup_printf("%s@%s", repo, digest);
                json_t *detail = json_pack("{s:s?}", "from", from_repo);
                audit_add(s, b, actor, "blob.mount", target, "ok", detail);
                json_decref(detail);
        }
        r = store_batch_commit(s, b);
        store_digest_unlock(s, digest);
        return r < 0 ? r : 0;
}

int store_blob_unlink(Store *s, const char *repo, const char *digest, const char *actor, StoreError *err) {
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!repo || !digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest");
        size_t kl;
        _cleanup_free_ char *k = index_key_join(&kl, repo, digest, NULL);
        if (!k)
                return -ENOMEM;
        store_digest_lock(s, digest);
        int r = index_get(s, NULL, INDEX_REPO_BLOB, k, kl, NULL, NULL);
        if (r < 0) {
                store_digest_unlock(s, digest);
                return r;
        }
        /* under the lock that every manifest PUT naming this blob takes too */
        char user[DIGEST_MAX_LEN];
        r = repo_manifest_using(s, repo, digest, user);
        if (r != 0) {
                store_digest_unlock(s, digest);
                if (r < 0)
                        return r;
                return store_error_set(err, -EBUSY, OCI_DENIED,
                                       "blob %s is used by manifest %s in %s: deleting its link would break that image; "
                                       "delete the manifest first (GC then reclaims what nothing uses)",
                                       digest, user, repo);
        }
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        _cleanup_free_ char *target = strdup_printf("%s@%s", repo, digest);
        r = b ? 0 : -ENOMEM;
        if (r >= 0) {
                index_batch_delete(b, INDEX_REPO_BLOB, k, kl);
                r = audit_add(s, b, actor, "blob.delete", target, "ok", NULL);
        }
        if (r >= 0)
                r = store_batch_commit(s, b);
        store_digest_unlock(s, digest);
        return r < 0 ? r : 0;
}

int store_blob_put(Store *s, const char *repo, const void *data, size_t len, const char *expected_digest,
                   char out_digest[DIGEST_MAX_LEN], StoreError *err) {
        DigestAlgorithm a = DIGEST_SHA256;
        char digest[DIGEST_MAX_LEN];
        int r;
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "the store is read-only");
        if (!repo || !repo_name_is_valid(repo))
                return store_error_set(err, -EINVAL, OCI_NAME_INVALID, "invalid repository name");
        if (expected_digest && digest_parse(expected_digest, &a) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest");
        r = digest_buffer(a, data ? data : "", len, digest);
        if (r < 0)
                return r;
        if (expected_digest && !streq(expected_digest, digest))
                return store_error_set(err, -EBADMSG, OCI_DIGEST_INVALID, "content digest is %s, not %s", digest,
                                       expected_digest);
        char rnd[37];
        r = uuid_random(rnd);
        if (r < 0)
                return r;
        _cleanup_free_ char *tmp = strdup_printf("%s/tmp/put-%s", s->root, rnd);
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return store_error_set(err, -errno, OCI_BLOB_UPLOAD_INVALID, "cannot create a temporary file");
        r = loop_write(fd, data, len);
        if (r < 0) {
                unlink(tmp);
                return store_error_set(err, r, OCI_BLOB_UPLOAD_INVALID, "cannot write a temporary file");
        }
        r = blob_commit_file(s, repo, tmp, fd, digest, len, NULL, NULL, err);
        if (r < 0)
                return r;
        if (out_digest)
                memcpy(out_digest, digest, DIGEST_MAX_LEN);
        return 0;
}

int store_blob_remove(Store *s, const char *digest, uint64_t *ret_disk_bytes) {
        if (s->read_only)
                return -EROFS;
        if (!digest || digest_parse(digest, NULL) < 0)
                return -EINVAL;
        BlobInfo bi;
        int r = blob_record_read(s, digest, &bi);
        if (r < 0)
                return r;
        /* record first: a crash between the two leaves an orphan file (reconciled later), never a
         * record without content */
        r = store_kv_delete(s, INDEX_BLOB, digest, strlen(digest));
        if (r < 0)
                return r;
        uint64_t bytes = 0;
        r = blob_backend_remove(s->blobs, digest, &bytes);
        if (r < 0)
                return r;
        if (ret_disk_bytes)
                *ret_disk_bytes = bytes;
        return 0;
}
