/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 6 replaces this file): /v1/registry/holds and /v1/registry/worm handlers. */
#include "registry-api/registry-api.h"

void v1_worm_register(Registry *r) {
}
