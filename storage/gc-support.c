/* SPDX-License-Identifier: MIT */
/* Storage internals exported for the GC (declared in storage.h). */

#include "storage/store-internal.h"

void store_digests_lock(Store *s, const char *const *digests, size_t n) {
        lock_digests(s, digests, n);
}

void store_digests_unlock(Store *s, const char *const *digests, size_t n) {
        unlock_digests(s, digests, n);
}

size_t store_digest_stripe(const char *digest) {
        return digest_stripe(digest);
}
