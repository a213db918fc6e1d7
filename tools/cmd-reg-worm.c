/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 6 replaces this file) */
#include <stdio.h>
#include "plura.h"

int reg_hold(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

int reg_worm(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

