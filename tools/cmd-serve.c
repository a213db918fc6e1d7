/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER (issue 2 replaces this file) */
#include <stdio.h>
#include "plura.h"

int cmd_serve(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

int cmd_fsck(int argc, char **argv) {
        fprintf(stderr, "plura: %s is not built yet\n", argv[0]);
        return 1;
}

