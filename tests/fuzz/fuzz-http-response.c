/* SPDX-License-Identifier: MIT */
/* http_response_parse (the `plura reg` client's reader of whole responses) on arbitrary bytes. */
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
        int r = http_response_parse((const char *) data, size, &status, &body, &bl);
        if (r == -EBADMSG || r == -ENOMEM)
                return 0;
        if (r != 0 || !body || status < 200 || status > 599 || bl > size || body[bl] != 0)
                abort();
        free(body);
        return 0;
}
