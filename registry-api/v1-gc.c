/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 3 replaces this file): /v1/registry/gc handlers and the GC scheduler. */
#include "registry-api/registry-api.h"

void v1_gc_register(Registry *r) {
}
int gc_scheduler_start(Registry *r) {
        return 0;
}
void gc_scheduler_stop(Registry *r) {
}
