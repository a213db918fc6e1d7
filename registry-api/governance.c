/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 4 replaces this file): tag policy, block list and channel hooks. */
#include "registry-api/registry-api.h"

int governance_init(Registry *r) {
        return 0;
}
void governance_free(Registry *r) {
}
int governance_check_pull(Registry *r, const char *repo, const char *digest, char *reason, size_t reason_len) {
        return 0;
}
void governance_after_manifest_put(Registry *r, const char *repo, const char *digest, const char *const *tags,
                                   size_t n_tags, const char *actor) {
}
