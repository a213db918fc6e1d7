/* SPDX-License-Identifier: MIT */
/* Storage internals exported for the GC (declared in storage.h). */

#include "storage/store-internal.h"

void store_digests_lock(Store *s, const char *const *digests, size_t n) {
        lock_digests(s, digests, n);
}

void store_digests_unlock(Store *s, const char *const *digests, size_t n) {
        unlock_digests_full(s, digests, n, false);
}

size_t store_digest_stripe(const char *digest) {
        return digest_stripe(digest);
}

void store_digest_generations(Store *s, uint32_t *ret) {
        for (size_t i = 0; i < DIGEST_LOCK_STRIPES; i++)
                ret[i] = __atomic_load_n(&s->digest_gen[i], __ATOMIC_ACQUIRE);
}

uint32_t store_digest_generation(Store *s, size_t stripe) {
        return __atomic_load_n(&s->digest_gen[stripe], __ATOMIC_ACQUIRE);
}
