/* SPDX-License-Identifier: MIT */
/* Content-Range of upload PATCH requests. */
#include <inttypes.h>

#include "common/macros.h"
#include "registry-api/http-range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *h = malloc(size + 1);
        if (!h)
                return 0;
        memcpy(h, data, size);
        h[size] = 0;

        uint64_t s = 0, e = 0;
        int r = http_content_range_parse(h, &s, &e);
        if (r == 0) {
                if (s > e || e == UINT64_MAX)
                        abort();
                char canon[64];
                uint64_t s2, e2;
                snprintf(canon, sizeof(canon), "%" PRIu64 "-%" PRIu64, s, e);
                if (http_content_range_parse(canon, &s2, &e2) != 0 || s2 != s || e2 != e)
                        abort();
                snprintf(canon, sizeof(canon), "bytes %" PRIu64 "-%" PRIu64 "/*", s, e);
                if (http_content_range_parse(canon, &s2, &e2) != 0 || s2 != s || e2 != e)
                        abort();
        } else if (r != -EINVAL)
                abort();
        free(h);
        return 0;
}
