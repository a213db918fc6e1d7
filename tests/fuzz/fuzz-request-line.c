/* SPDX-License-Identifier: MIT */
/* The listener's request-line check: any bytes, any limit from the first byte. The verdict on a
 * prefix must be consistent with the verdict on the whole: a valid line stays valid with more
 * bytes after it, and what is malformed never becomes acceptable by cutting it short. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/http-request-line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t max = 1 + data[0] * 4U;
        const char *buf = (const char *) data + 1;
        size_t len = size - 1;
        RequestLineVerdict v = http_request_line_check(buf, len, max);
        if (v < 0 || v >= _REQUEST_LINE_VERDICT_MAX)
                abort();
        for (size_t n = 0; n < len; n++) {
                RequestLineVerdict p = http_request_line_check(buf, n, max);
                /* OK, MALFORMED and VERSION are final: more bytes do not change them */
                if ((p == REQUEST_LINE_OK || p == REQUEST_LINE_MALFORMED || p == REQUEST_LINE_VERSION) && p != v)
                        abort();
                if (p == REQUEST_LINE_TOO_LONG && v != REQUEST_LINE_TOO_LONG)
                        abort();
        }
        if (v == REQUEST_LINE_OK && !memchr(buf, '\n', len < max ? len : max))
                abort();
        return 0;
}
