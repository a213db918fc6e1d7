/* SPDX-License-Identifier: MIT */
#pragma once

/* fusefs internals: tar entry tables and random access into gzip/zstd/plain layers.
 * Used by fs.c, the unit tests and the fuzz target; not part of the public API. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macros.h"

/* ------------------------------------------------------------------ tar entry tables */

typedef enum TarEntryType {
        TAR_ENTRY_FILE,
        TAR_ENTRY_DIR,
        TAR_ENTRY_SYMLINK,
        TAR_ENTRY_HARDLINK,
        _TAR_ENTRY_TYPE_MAX,
        _TAR_ENTRY_TYPE_INVALID = -1,
} TarEntryType;

typedef struct TarEntry {
        char *path;      /* normalized: relative, no "." / ".." / empty components; "" = the root */
        char *link;      /* symlink target (verbatim) or hardlink target (normalized); else NULL */
        uint8_t type;    /* TarEntryType */
        uint32_t mode;   /* permission bits (07777) */
        uint32_t uid, gid;
        int64_t mtime_ns;
        uint64_t size;   /* bytes of data (0 for dirs, links) */
        uint64_t offset; /* of the data in the uncompressed tar stream */
} TarEntry;

typedef struct TarIndex {
        TarEntry *entries;
        size_t n_entries, n_allocated;
        uint64_t stream_size;   /* uncompressed bytes of the tar stream seen */
        size_t string_bytes;    /* memory used by paths and links */
} TarIndex;

/* Bounds that keep a hostile layer from eating memory or time. */
#define TAR_PATH_MAX 4096U
#define TAR_EXT_HEADER_MAX (1U << 20)            /* PAX / GNU long name records */
#define TAR_ENTRIES_MAX (1U << 21)
#define TAR_STRING_BYTES_MAX (256U << 20)
#define TAR_ENTRY_SIZE_MAX (UINT64_C(1) << 40)  /* 1 TiB: anything larger is an absurd size */

typedef struct TarParser TarParser;

int tar_parser_new(TarParser **ret);
/* Feeds the next bytes of the uncompressed stream. -EBADMSG on corrupt or malicious input
 * (with a reason from tar_parser_error()), -E2BIG/-ENOMEM over the bounds. After an error
 * every further call returns the same error. */
int tar_parser_feed(TarParser *p, const void *data, size_t n);
/* The stream ended: checks that it did so at an entry boundary and hands the table over. */
int tar_parser_finish(TarParser *p, TarIndex **ret);
const char *tar_parser_error(TarParser *p);
TarParser *tar_parser_free(TarParser *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(TarParser *, tar_parser_free);

/* One-shot parse of a whole tar in memory (the fuzz target's entry point). */
int tar_index_build_from_buffer(const void *data, size_t n, TarIndex **ret, char *err, size_t errlen);

/* Normalizes a tar member name: strips leading "/" and "./", drops "." components and
 * resolves ".."; a name that would escape the root is refused with -EBADMSG. */
int tar_path_normalize(const char *in, char **ret);

TarIndex *tar_index_free(TarIndex *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TarIndex *, tar_index_free);

/* Versioned binary encoding, for the layer_fs column. */
int tar_index_serialize(const TarIndex *t, char **ret, size_t *ret_len);
int tar_index_deserialize(const void *data, size_t n, TarIndex **ret);

/* ------------------------------------------------------------------ layer sources */

typedef enum LayerCompression {
        LAYER_PLAIN,
        LAYER_GZIP,
        LAYER_ZSTD,
        _LAYER_COMPRESSION_MAX,
        _LAYER_COMPRESSION_INVALID = -1,
} LayerCompression;

/* Reads stored (compressed) bytes of a layer at offset; returns bytes read, 0 at EOF. */
typedef ssize_t (*LayerReadFn)(void *userdata, void *buf, size_t n, uint64_t offset);

LayerCompression layer_compression_detect(const void *magic, size_t n);
const char *layer_compression_to_string(LayerCompression c);

/* ------------------------------------------------------------------ gzip checkpoints (zran) */

#define GZ_WINDOW_SIZE 32768U
#define GZ_DEFAULT_SPAN (2U << 20)

typedef struct GzCheckpoint {
        uint64_t out;      /* uncompressed offset */
        uint64_t in;       /* compressed offset of the first full byte */
        uint8_t bits;      /* bits of the byte before `in` that belong to the block (0-7) */
        uint32_t window_len;  /* uncompressed window bytes (<= 32 KiB) */
        uint32_t zwindow_len;
        uint8_t *zwindow;  /* the window, zstd-compressed */
} GzCheckpoint;

typedef struct GzIndex {
        GzCheckpoint *points;
        size_t n_points, n_allocated;
        uint64_t out_size;  /* total uncompressed size */
        uint64_t in_size;
} GzIndex;

/* Inflates the whole layer once, feeding the tar parser (may be NULL) and recording a
 * checkpoint every span output bytes. max_out bounds the uncompressed size (zip bombs). */
int gz_index_build(LayerReadFn rd, void *userdata, uint64_t span, uint64_t max_out, TarParser *tar,
                   GzIndex **ret);
GzIndex *gz_index_free(GzIndex *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(GzIndex *, gz_index_free);
int gz_index_serialize_header(const GzIndex *g, char **ret, size_t *ret_len);
int gz_index_deserialize_header(const void *data, size_t n, GzIndex **ret);
int gz_checkpoint_serialize(const GzCheckpoint *c, char **ret, size_t *ret_len);
int gz_checkpoint_deserialize(const void *data, size_t n, GzCheckpoint *ret);

/* A decompression cursor: sequential reads continue where the previous one stopped, a
 * jump restarts from the nearest checkpoint at or before the offset. Not thread-safe:
 * one per open file (the caller serializes). */
typedef struct GzCursor GzCursor;
int gz_cursor_new(const GzIndex *g, LayerReadFn rd, void *userdata, GzCursor **ret);
ssize_t gz_cursor_pread(GzCursor *c, void *buf, size_t n, uint64_t offset);
GzCursor *gz_cursor_free(GzCursor *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(GzCursor *, gz_cursor_free);

/* Total bytes inflated by cursors since start (for tests and benchmarks). */
uint64_t gz_bytes_inflated(void);

/* Decompresses a zstd layer completely into fd (the fuse cache file), feeding tar. */
int zstd_layer_decompress(LayerReadFn rd, void *userdata, uint64_t max_out, int fd, TarParser *tar,
                          uint64_t *ret_size);
