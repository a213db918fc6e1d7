/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 4 replaces this file): promote, rollback, block, history, audit, metrics. */
#include "registry-api/registry-api.h"

void v1_governance_register(Registry *r) {
}
