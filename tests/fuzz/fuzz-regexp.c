/* SPDX-License-Identifier: MIT */
/* The configuration's regular expressions (common/regexp.c): any pattern either builds or is
 * refused with a reason and an offset; a built one stays inside the program limit and matches
 * any string without crashing, in time bounded by the string's length times the program size
 * (the fuzzer's -timeout catches a blow-up; glibc's regcomp() took minutes on some of these). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/regexp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* pattern NUL subject */
        char *s = malloc(size + 2);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = s[size + 1] = 0;
        const char *subject = s + strlen(s) + 1;
        Regexp *re = NULL;
        char err[256] = "";
        int r = regexp_new(s, &re, err, sizeof err);
        if (r == 0) {
                if (!re || regexp_program_size(re) > REGEXP_MAX_PROGRAM)
                        abort();
                int m = regexp_match(re, subject);
                if (m != 0 && m != 1 && m != -ENOMEM)
                        abort();
                /* a pattern matches itself when it has no special characters */
                if (strcspn(s, "^.[$()|*+?{\\") == strlen(s) && regexp_match(re, s) == 0)
                        abort();
                regexp_free(re);
        } else if ((r != -E2BIG && r != -EINVAL && r != -ENOMEM) || re || !strstr(err, " at offset "))
                abort();
        free(s);
        return 0;
}
