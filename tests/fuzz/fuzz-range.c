/* SPDX-License-Identifier: MIT */
/* Range header parsing: the first 8 bytes are the blob size, the rest the header. */
#include <inttypes.h>

#include "common/macros.h"
#include "registry-api/http-range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 8)
                return 0;
        uint64_t blob = 0;
        memcpy(&blob, data, 8);
        /* small sizes are the interesting ones half of the time */
        if (blob & 1)
                blob = (blob >> 1) % 4096;
        char *h = malloc(size - 8 + 1);
        if (!h)
                return 0;
        memcpy(h, data + 8, size - 8);
        h[size - 8] = 0;

        uint64_t s = 0, e = 0;
        int r = http_range_parse(h, blob, &s, &e);
        if (r == 0) {
                if (s > e || e >= blob)
                        abort();
                /* the canonical form of the answer parses to the same range */
                char canon[64];
                uint64_t s2, e2;
                snprintf(canon, sizeof(canon), "bytes=%" PRIu64 "-%" PRIu64, s, e);
                if (http_range_parse(canon, blob, &s2, &e2) != 0 || s2 != s || e2 != e)
                        abort();
        } else if (r != -EINVAL && r != -ERANGE)
                abort();
        free(h);
        return 0;
}
