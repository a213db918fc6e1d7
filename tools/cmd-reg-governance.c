/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 4 replaces this file) */
#include <stdio.h>
#include "plura.h"

int reg_governance(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

