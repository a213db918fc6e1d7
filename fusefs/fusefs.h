/* SPDX-License-Identifier: MIT */
#pragma once

/* fusefs: read-only FUSE view of a store (libfuse3 low-level API, multithreaded loop).
 *
 *   /README
 *   /repos/<namespace>/<repo>/_tags/<tag>               symlink -> ../_manifests/sha256:<hex>
 *   /repos/<namespace>/<repo>/_manifests/sha256:<hex>/   manifest.json, config.json, layers/<n>-<digest>,
 *                                                        rootfs/, referrers/<type>/<digest>, platforms/<os>-<arch>[-<v>]
 *   /repos/<namespace>/<repo>/_history/<tag>             the tag's timeline as text
 *   /channels/<env>/<svc>/stable|candidate               symlinks into /repos (repos named channels/<env>/<svc>)
 *   /blobs/sha256/<hex>                                  raw blob bytes
 *   /gc/last.json, /gc/history/<time>.json               GC reports
 *   /holds/<case_id>/<digest>.json                       RCA holds
 *
 * Files are 0444, directories 0555 (rootfs/ keeps the layers' modes), every write is EROFS. */

#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

typedef struct Fusefs Fusefs;

typedef struct FusefsOptions {
        int64_t catch_up_interval_ns; /* read-only stores: store_catch_up() period (0 = 1 s) */
        bool allow_other;             /* mount option allow_other */
        unsigned threads;             /* max idle worker threads (0 = libfuse default) */
        uint64_t gzip_span;           /* checkpoint distance in gzip layers (0 = 2 MiB) */
        uint64_t max_layer_bytes;     /* uncompressed size bound per layer (0 = 64 GiB) */
        uint64_t zstd_cache_bytes;    /* decompressed zstd layers kept under <root>/tmp/fuse-cache (0 = 8 GiB) */
        bool debug;                   /* libfuse request tracing */
} FusefsOptions;

void fusefs_options_init(FusefsOptions *o);
/* Reads the config's "fuse" section: catch_up_interval ("1s"), allow_other, threads,
 * gzip_span, max_layer_bytes, zstd_cache_bytes (config_load() validated it: common/config-schema.c). */
int fusefs_options_from_json(json_t *fuse, FusefsOptions *o, char *err, size_t errlen);

/* Creates the session and mounts it on mountpoint (which must be an existing directory).
 * The store is borrowed and must outlive the Fusefs. */
int fusefs_mount(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret);
/* SIGTERM/SIGINT/SIGHUP end fusefs_run() (plura mount). */
int fusefs_install_signal_handlers(Fusefs *f);
void fusefs_remove_signal_handlers(Fusefs *f);
/* Serves requests until fusefs_stop() or an unmount; installs no signal handlers. */
int fusefs_run(Fusefs *f);
/* Asks the loop to end and unmounts (safe from another thread; not async-signal-safe). */
void fusefs_stop(Fusefs *f);
/* Unmounts (if still mounted) and frees. */
Fusefs *fusefs_free(Fusefs *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Fusefs *, fusefs_free);

/* For plura serve --mount: mounts and serves from a thread of its own. Stop with
 * fusefs_stop_in_process() before closing the store. */
int fusefs_start_in_process(Store *s, const char *mountpoint, const FusefsOptions *o, Fusefs **ret);
void fusefs_stop_in_process(Fusefs *f);
