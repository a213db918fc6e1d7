/* SPDX-License-Identifier: MIT */
/* plura reg's credential file reader and base64: any bytes. What decodes re-encodes to the same
 * text; an entry found is a "user:password" without NUL. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *pair = NULL;
        int r = credentials_from_auth_file((const char *) data, size, "127.0.0.1:5000", &pair);
        if (r > 0) {
                if (!strchr(pair, ':') || pair[0] == ':')
                        abort();
                free(pair);
        } else if (r != 0 && r != -EINVAL)
                abort();
        char *d = NULL;
        size_t n;
        if (base64_decode((const char *) data, size, &d, &n) == 0) {
                char *e = base64_encode(d, n);
                /* padded standard base64 has one spelling, except for the unused low bits */
                if (!e || strlen(e) != size)
                        abort();
                free(e);
                free(d);
        }
        return 0;
}
