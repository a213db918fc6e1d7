/* SPDX-License-Identifier: MIT */
/* The configuration parser: the user's JSON merged over the embedded defaults and checked
 * against the schema (common/config-schema.c). A refusal names a path ("<path>: <problem>");
 * an accepted document gives a Config inside the ranges the schema promises. */
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
                if (c || (r == -EINVAL && (!err[0] || !strstr(err, ": "))))
                        abort();
        } else {
                if (!c || !c->listen_host || !c->data_dir || !c->log_level || !c->registry_id)
                        abort();
                if (c->http_max_connections_per_client < 1 || c->http_max_connections_per_client > c->http_max_connections ||
                    c->http_header_timeout_s < 1 || c->http_header_timeout_s > 3600 || c->max_upload_sessions < 1 ||
                    c->max_upload_sessions_per_client < 1 || c->zstd_level < 1 || c->zstd_level > 19)
                        abort();
                (void) config_section(c, "gc");
                config_free(c);
        }
        free(s);
        return 0;
}
