/* SPDX-License-Identifier: MIT */
/* Random access into gzip layers, after zlib's examples/zran.c: one pass inflates the layer
 * (feeding the tar parser) and records a checkpoint at a deflate block boundary every `span`
 * output bytes: the compressed bit position and the 32 KiB of output before it (the window a
 * later block may refer back into). A read primes a raw inflater at the nearest checkpoint
 * with inflatePrime() + inflateSetDictionary() and only decompresses from there.
 * Also: zstd layers (decompressed once into a cache file) and layer format detection. */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/log.h"
#include "common/util.h"
#include "layer-index.h"

#define CHUNK (128U * 1024U)

static _Atomic uint64_t bytes_inflated;

uint64_t gz_bytes_inflated(void) {
        return atomic_load(&bytes_inflated);
}

LayerCompression layer_compression_detect(const void *magic, size_t n) {
        const uint8_t *m = magic;
        if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
                return LAYER_GZIP;
        if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
                return LAYER_ZSTD;
        return LAYER_PLAIN;
}

const char *layer_compression_to_string(LayerCompression c) {
        static const char *const t[_LAYER_COMPRESSION_MAX] = { "plain", "gzip", "zstd" };
        return c >= 0 && c < _LAYER_COMPRESSION_MAX ? t[c] : NULL;
}

GzIndex *gz_index_free(GzIndex *g) {
        if (!g)
                return NULL;
        for (size_t i = 0; i < g->n_points; i++)
                free(g->points[i].zwindow);
        free(g->points);
        free(g);
        return NULL;
}

static int add_point(GzIndex *g, uint8_t bits, uint64_t in, uint64_t out, const uint8_t *window, unsigned left) {
        if (g->n_points == g->n_allocated) {
                size_t na = g->n_allocated ? g->n_allocated * 2 : 16;
                GzCheckpoint *np = realloc(g->points, na * sizeof(GzCheckpoint));
                if (!np)
                        return -ENOMEM;
                g->points = np;
                g->n_allocated = na;
        }
        /* The window is circular: the oldest bytes start at the write position. */
        uint8_t flat[GZ_WINDOW_SIZE];
        uint32_t wlen = (uint32_t) MIN(out, (uint64_t) GZ_WINDOW_SIZE);
        unsigned pos = GZ_WINDOW_SIZE - left; /* next write position */
        if (left)
                memcpy(flat, window + pos, left);
        memcpy(flat + left, window, pos);
        const uint8_t *w = flat + GZ_WINDOW_SIZE - wlen;

        size_t bound = ZSTD_compressBound(wlen);
        uint8_t *z = malloc(bound);
        if (!z)
                return -ENOMEM;
        size_t zl = ZSTD_compress(z, bound, w, wlen, 1);
        if (ZSTD_isError(zl)) {
                free(z);
                return -EIO;
        }
        uint8_t *zs = realloc(z, MAX(zl, 1));
        g->points[g->n_points++] = (GzCheckpoint) {
                .out = out, .in = in, .bits = bits, .window_len = wlen,
                .zwindow_len = (uint32_t) zl, .zwindow = zs ? zs : z,
        };
        return 0;
}

int gz_index_build(LayerReadFn rd, void *userdata, uint64_t span, uint64_t max_out, TarParser *tar, GzIndex **ret) {
        _cleanup_(gz_index_freep) GzIndex *g = calloc(1, sizeof(GzIndex));
        _cleanup_free_ uint8_t *input = malloc(CHUNK), *window = malloc(GZ_WINDOW_SIZE);
        if (!g || !input || !window)
                return -ENOMEM;
        if (span == 0)
                span = GZ_DEFAULT_SPAN;

        z_stream strm = {};
        if (inflateInit2(&strm, 47) != Z_OK) /* 32 + 15: zlib or gzip header */
                return -ENOMEM;
        uint64_t totin = 0, totout = 0, last = 0, in_off = 0;
        bool have_point = false, member_done = false;
        int r = 0, zr = Z_OK;
        strm.avail_out = 0;

        for (;;) {
                if (strm.avail_in == 0) {
                        ssize_t k = rd(userdata, input, CHUNK, in_off);
                        if (k < 0) {
                                r = (int) k;
                                goto finish;
                        }
                        if (k == 0) {
                                if (member_done)
                                        break;
                                r = log_debug_errno(EBADMSG, "gzip stream truncated at %" PRIu64, in_off);
                                goto finish;
                        }
                        in_off += (uint64_t) k;
                        strm.next_in = input;
                        strm.avail_in = (uInt) k;
                }
                if (member_done) {
                        /* Bytes after a member: another member, or zero padding we ignore. */
                        if (strm.next_in[0] != 0x1f) {
                                bool zeros = true;
                                for (uInt i = 0; i < strm.avail_in; i++)
                                        if (strm.next_in[i]) {
                                                zeros = false;
                                                break;
                                        }
                                if (!zeros) {
                                        r = log_debug_errno(EBADMSG, "garbage after gzip member at %" PRIu64, totin);
                                        goto finish;
                                }
                                totin += strm.avail_in;
                                strm.avail_in = 0;
                                continue;
                        }
                        inflateReset(&strm);
                        member_done = false;
                }
                if (strm.avail_out == 0) {
                        strm.avail_out = GZ_WINDOW_SIZE;
                        strm.next_out = window;
                }
                uInt before_in = strm.avail_in, before_out = strm.avail_out;
                zr = inflate(&strm, Z_BLOCK);
                uInt produced = before_out - strm.avail_out;
                totin += before_in - strm.avail_in;
                totout += produced;
                if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_MEM_ERROR) {
                        r = log_debug_errno(zr == Z_MEM_ERROR ? ENOMEM : EBADMSG, "inflate: %s", strna(strm.msg));
                        goto finish;
                }
                if (totout > max_out) {
                        r = log_debug_errno(EFBIG, "layer inflates to more than %" PRIu64 " bytes", max_out);
                        goto finish;
                }
                if (tar && produced > 0) {
                        r = tar_parser_feed(tar, strm.next_out - produced, produced);
                        if (r < 0)
                                goto finish;
                }
                if (zr == Z_STREAM_END) {
                        member_done = true;
                        continue;
                }
                /* At the end of a deflate block header that is not the last block: a point. */
                if ((strm.data_type & 128) && !(strm.data_type & 64) && (!have_point || totout - last > span)) {
                        r = add_point(g, (uint8_t) (strm.data_type & 7), totin, totout, window, strm.avail_out);
                        if (r < 0)
                                goto finish;
                        last = totout;
                        have_point = true;
                }
        }
        g->out_size = totout;
        g->in_size = in_off;
        r = 0;
finish:
        inflateEnd(&strm);
        if (r < 0)
                return r;
        *ret = steal_pointer(&g);
        return 0;
}

/* ---- serialization: header "PLGZ" u32 version, u64 out_size, u64 in_size, u64 n_points;
 *      checkpoint: u64 out, u64 in, u8 bits, u32 window_len, zstd window. */

#define GZ_CHECKPOINTS_MAGIC "PLGZ"
#define GZ_CHECKPOINTS_VERSION 1U

static void put_u32(uint8_t *p, uint32_t v) {
        p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
}
static void put_u64(uint8_t *p, uint64_t v) {
        put_u32(p, (uint32_t) v);
        put_u32(p + 4, (uint32_t) (v >> 32));
}
static uint32_t get_u32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
        return get_u32(p) | (uint64_t) get_u32(p + 4) << 32;
}

int gz_index_serialize_header(const GzIndex *g, char **ret, size_t *ret_len) {
        uint8_t *b = malloc(32);
        if (!b)
                return -ENOMEM;
        memcpy(b, GZ_CHECKPOINTS_MAGIC, 4);
        put_u32(b + 4, GZ_CHECKPOINTS_VERSION);
        put_u64(b + 8, g->out_size);
        put_u64(b + 16, g->in_size);
        put_u64(b + 24, g->n_points);
        *ret = (char *) b;
        *ret_len = 32;
        return 0;
}

int gz_index_deserialize_header(const void *data, size_t n, GzIndex **ret) {
        const uint8_t *b = data;
        if (n != 32 || memcmp(b, GZ_CHECKPOINTS_MAGIC, 4) != 0 || get_u32(b + 4) != GZ_CHECKPOINTS_VERSION)
                return -EPROTO;
        uint64_t np = get_u64(b + 24);
        if (np > (UINT64_C(1) << 24))
                return -EBADMSG;
        GzIndex *g = calloc(1, sizeof(GzIndex));
        if (!g)
                return -ENOMEM;
        g->out_size = get_u64(b + 8);
        g->in_size = get_u64(b + 16);
        g->points = calloc(MAX(np, 1), sizeof(GzCheckpoint));
        if (!g->points) {
                free(g);
                return -ENOMEM;
        }
        g->n_allocated = MAX(np, 1);
        g->n_points = 0; /* the caller fills them in with gz_checkpoint_deserialize */
        *ret = g;
        return (int) MIN(np, (uint64_t) INT32_MAX);
}

int gz_checkpoint_serialize(const GzCheckpoint *c, char **ret, size_t *ret_len) {
        size_t n = 21 + c->zwindow_len;
        uint8_t *b = malloc(n);
        if (!b)
                return -ENOMEM;
        put_u64(b, c->out);
        put_u64(b + 8, c->in);
        b[16] = c->bits;
        put_u32(b + 17, c->window_len);
        memcpy(b + 21, c->zwindow, c->zwindow_len);
        *ret = (char *) b;
        *ret_len = n;
        return 0;
}

int gz_checkpoint_deserialize(const void *data, size_t n, GzCheckpoint *ret) {
        const uint8_t *b = data;
        if (n < 21)
                return -EBADMSG;
        GzCheckpoint c = {
                .out = get_u64(b), .in = get_u64(b + 8), .bits = b[16], .window_len = get_u32(b + 17),
                .zwindow_len = (uint32_t) (n - 21),
        };
        if (c.bits > 7 || c.window_len > GZ_WINDOW_SIZE)
                return -EBADMSG;
        c.zwindow = malloc(MAX(c.zwindow_len, 1U));
        if (!c.zwindow)
                return -ENOMEM;
        memcpy(c.zwindow, b + 21, c.zwindow_len);
        *ret = c;
        return 0;
}

/* ---- cursors */

struct GzCursor {
        const GzIndex *g;
        LayerReadFn rd;
        void *userdata;
        z_stream strm;
        bool active;          /* strm is primed and positioned at `out` */
        bool raw;             /* raw deflate (after a checkpoint) vs gzip-wrapped (next member) */
        bool member_done;
        uint64_t out;         /* uncompressed offset of the next byte strm produces */
        uint64_t in_off;      /* compressed offset of the next chunk to read */
        uint8_t *input;
        uint8_t *scratch;
};

int gz_cursor_new(const GzIndex *g, LayerReadFn rd, void *userdata, GzCursor **ret) {
        GzCursor *c = calloc(1, sizeof(GzCursor));
        if (!c)
                return -ENOMEM;
        c->g = g;
        c->rd = rd;
        c->userdata = userdata;
        c->input = malloc(CHUNK);
        c->scratch = malloc(CHUNK);
        if (!c->input || !c->scratch || inflateInit2(&c->strm, -15) != Z_OK) {
                free(c->input);
                free(c->scratch);
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

GzCursor *gz_cursor_free(GzCursor *c) {
        if (!c)
                return NULL;
        inflateEnd(&c->strm);
        free(c->input);
        free(c->scratch);
        free(c);
        return NULL;
}

static int cursor_seek(GzCursor *c, uint64_t offset) {
        const GzIndex *g = c->g;
        if (g->n_points == 0)
                return -EBADMSG;
        /* last checkpoint with out <= offset */
        size_t lo = 0, hi = g->n_points;
        while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (g->points[mid].out <= offset)
                        lo = mid;
                else
                        hi = mid;
        }
        const GzCheckpoint *p = g->points + lo;
        if (p->out > offset)
                return -EBADMSG;

        uint8_t window[GZ_WINDOW_SIZE];
        size_t wl = ZSTD_decompress(window, sizeof(window), p->zwindow, p->zwindow_len);
        if (ZSTD_isError(wl) || wl != p->window_len)
                return -EBADMSG;

        if (inflateReset2(&c->strm, -15) != Z_OK)
                return -EIO;
        c->strm.avail_in = 0;
        c->in_off = p->in;
        if (p->bits) {
                uint8_t byte;
                if (p->in == 0)
                        return -EBADMSG;
                ssize_t k = c->rd(c->userdata, &byte, 1, p->in - 1);
                if (k != 1)
                        return k < 0 ? (int) k : -EBADMSG;
                if (inflatePrime(&c->strm, p->bits, byte >> (8 - p->bits)) != Z_OK)
                        return -EBADMSG;
        }
        if (wl > 0 && inflateSetDictionary(&c->strm, window, (uInt) wl) != Z_OK)
                return -EBADMSG;
        c->raw = true;
        c->member_done = false;
        c->out = p->out;
        c->active = true;
        return 0;
}

/* Produces up to n bytes at the cursor into buf (NULL = discard). Returns bytes, 0 at EOF. */
static ssize_t cursor_inflate(GzCursor *c, uint8_t *buf, size_t n) {
        for (;;) {
                if (c->strm.avail_in == 0) {
                        ssize_t k = c->rd(c->userdata, c->input, CHUNK, c->in_off);
                        if (k < 0)
                                return k;
                        if (k == 0)
                                return c->member_done ? 0 : -EBADMSG;
                        c->in_off += (uint64_t) k;
                        c->strm.next_in = c->input;
                        c->strm.avail_in = (uInt) k;
                }
                if (c->member_done) {
                        /* skip the 8-byte trailer (raw mode) and continue with the next member */
                        if (c->raw) {
                                uInt skip = 8;
                                while (skip > 0) {
                                        if (c->strm.avail_in == 0) {
                                                ssize_t k = c->rd(c->userdata, c->input, CHUNK, c->in_off);
                                                if (k <= 0)
                                                        return k < 0 ? k : -EBADMSG;
                                                c->in_off += (uint64_t) k;
                                                c->strm.next_in = c->input;
                                                c->strm.avail_in = (uInt) k;
                                        }
                                        uInt s = MIN(skip, c->strm.avail_in);
                                        c->strm.next_in += s;
                                        c->strm.avail_in -= s;
                                        skip -= s;
                                }
                                c->raw = false;
                                continue;
                        }
                        if (c->strm.next_in[0] != 0x1f)
                                return 0; /* padding or the end */
                        if (inflateReset2(&c->strm, 31) != Z_OK)
                                return -EIO;
                        c->member_done = false;
                }
                size_t want = MIN(n, (size_t) CHUNK);
                c->strm.next_out = buf ? buf : c->scratch;
                c->strm.avail_out = (uInt) want;
                int zr = inflate(&c->strm, Z_NO_FLUSH);
                size_t got = want - c->strm.avail_out;
                atomic_fetch_add(&bytes_inflated, got);
                c->out += got;
                if (zr == Z_STREAM_END)
                        c->member_done = true;
                else if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_MEM_ERROR)
                        return -EBADMSG;
                if (got > 0)
                        return (ssize_t) got;
        }
}

ssize_t gz_cursor_pread(GzCursor *c, void *buf, size_t n, uint64_t offset) {
        int r;
        if (offset >= c->g->out_size || n == 0)
                return 0;
        n = (size_t) MIN((uint64_t) n, c->g->out_size - offset);

        /* Reuse the stream when the read is ahead of it and no checkpoint lies in between. */
        bool reuse = c->active && c->out <= offset;
        if (reuse) {
                for (size_t i = 0; i < c->g->n_points; i++) /* n_points is small; binary search not needed */
                        if (c->g->points[i].out > c->out && c->g->points[i].out <= offset) {
                                reuse = false;
                                break;
                        }
        }
        if (!reuse) {
                c->active = false;
                r = cursor_seek(c, offset);
                if (r < 0)
                        return r;
        }
        while (c->out < offset) {
                ssize_t k = cursor_inflate(c, NULL, (size_t) MIN(offset - c->out, (uint64_t) CHUNK));
                if (k <= 0) {
                        c->active = false;
                        return k < 0 ? k : -EBADMSG;
                }
        }
        size_t done = 0;
        while (done < n) {
                ssize_t k = cursor_inflate(c, (uint8_t *) buf + done, n - done);
                if (k < 0) {
                        c->active = false;
                        return k;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

/* ---- zstd layers */

int zstd_layer_decompress(LayerReadFn rd, void *userdata, uint64_t max_out, int fd, TarParser *tar,
                          uint64_t *ret_size) {
        _cleanup_free_ uint8_t *in = malloc(ZSTD_DStreamInSize()), *out = malloc(ZSTD_DStreamOutSize());
        ZSTD_DStream *z = ZSTD_createDStream();
        int r = 0;
        if (!in || !out || !z) {
                ZSTD_freeDStream(z);
                return -ENOMEM;
        }
        ZSTD_initDStream(z);
        uint64_t in_off = 0, total = 0;
        size_t last = 1;
        for (;;) {
                ssize_t k = rd(userdata, in, ZSTD_DStreamInSize(), in_off);
                if (k < 0) {
                        r = (int) k;
                        break;
                }
                if (k == 0) {
                        if (last != 0)
                                r = log_debug_errno(EBADMSG, "zstd stream truncated");
                        break;
                }
                in_off += (uint64_t) k;
                ZSTD_inBuffer ib = { in, (size_t) k, 0 };
                while (ib.pos < ib.size) {
                        ZSTD_outBuffer ob = { out, ZSTD_DStreamOutSize(), 0 };
                        last = ZSTD_decompressStream(z, &ob, &ib);
                        if (ZSTD_isError(last)) {
                                r = log_debug_errno(EBADMSG, "zstd: %s", ZSTD_getErrorName(last));
                                goto done;
                        }
                        total += ob.pos;
                        if (total > max_out) {
                                r = log_debug_errno(EFBIG, "layer decompresses to more than %" PRIu64 " bytes", max_out);
                                goto done;
                        }
                        if (tar && ob.pos > 0 && (r = tar_parser_feed(tar, out, ob.pos)) < 0)
                                goto done;
                        if (fd >= 0 && ob.pos > 0 && (r = loop_write(fd, out, ob.pos)) < 0)
                                goto done;
                }
        }
done:
        ZSTD_freeDStream(z);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = total;
        return 0;
}
