/* SPDX-License-Identifier: MIT */
/* The configuration parser (user JSON merged over the embedded defaults). */
#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        Config *c = NULL;
        char err[512] = "";
        int r = config_load_string(s, &c, err, sizeof(err));
        if (r < 0) {
                if (c || (r == -EINVAL && !err[0]))
                        abort();
        } else {
                if (!c || !c->listen_host || !c->data_dir || !c->log_level || !c->registry_id)
                        abort();
                (void) config_section(c, "gc");
                config_free(c);
        }
        free(s);
        return 0;
}
