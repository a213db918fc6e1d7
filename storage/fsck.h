/* SPDX-License-Identifier: MIT */
#pragma once

/* The store's consistency check (storage/fsck.c): plura fsck, the server's start-up check, tests. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

/* ---- fsck */

typedef struct FsckReport {
        uint64_t blobs_checked;
        uint64_t bytes_checked;
        uint64_t corrupt_blobs;        /* content does not hash to its name */
        uint64_t records_without_file;
        uint64_t files_without_record;
        uint64_t manifests_missing_children;
        uint64_t manifests_unlinked_children; /* per repository: a child not linked where the manifest is */
        uint64_t stale_temp_files;
        uint64_t quarantined;          /* with repair */
        json_t *problems;              /* array of {kind, digest/path, detail} */
} FsckReport;
int store_fsck(Store *s, bool repair, FsckReport *ret);
void fsck_report_done(FsckReport *r);
