/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to storage/: what the WORM export (worm.c) and its verification (worm-verify.c) share. */

#include <pthread.h>

#define BUNDLE_JSON "bundle.json"
#define SHA256SUMS "SHA256SUMS"
#define MARK_INCOMPLETE "INCOMPLETE"
#define MARK_FAILED "FAILED"
#define BUNDLE_JSON_MAX (256U << 20)

#define M_BUNDLES "plura_worm_bundles_exported_total"
#define M_BYTES "plura_worm_bytes_exported_total"
#define M_VERIFY_FAIL "plura_worm_verify_failures_total"

/* The WORM metrics are declared once, by whichever runs first. */
extern pthread_once_t worm_metrics_once;
void worm_metrics_init(void);

/* "blobs/<algo>/<hex>" of a digest inside a bundle (malloc()ed), NULL if it is not a digest. */
char *worm_blob_relpath(const char *digest);
