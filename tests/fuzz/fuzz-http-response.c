/* SPDX-License-Identifier: MIT */
/* http_response_parse (the `plura reg` client's response reader) on arbitrary bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/http-response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        long status = 0;
        char *body = NULL;
        size_t bl = 0;
        /* as the client reads: before the end, then at it */
        int r = http_response_parse((const char *) data, size, false, &status, &body, &bl);
        if (r == 0) {
                if (!body || status < 200 || status > 599 || bl > size || body[bl] != 0)
                        abort();
                free(body);
                body = NULL;
        } else if (r != -EAGAIN && r != -EBADMSG && r != -ENOMEM)
                abort();
        int k = http_response_parse((const char *) data, size, true, &status, &body, &bl);
        if (k == -EAGAIN || (r == 0 && k != 0)) /* complete before the end stays complete at it */
                abort();
        if (k == 0) {
                if (!body || status < 200 || status > 599 || bl > size || body[bl] != 0)
                        abort();
                free(body);
        }
        return 0;
}
