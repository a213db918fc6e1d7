/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 3 replaces this file) */
#include <stdio.h>
#include "plura.h"

int cmd_gc(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

int reg_gc(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

