/* SPDX-License-Identifier: MIT */
/* Bench helper: fills a store with N repositories x T tags through the storage layer
 * (one small image per repository). Usage: fuse-populate DATA_DIR N T */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "storage/storage.h"

int main(int argc, char **argv) {
        if (argc != 4)
                return 2;
        int n = atoi(argv[2]), t = atoi(argv[3]);
        StoreOptions o;
        store_options_init(&o);
        o.root = argv[1];
        o.fsync = false;
        Store *s = NULL;
        if (store_open(&o, &s) < 0)
                return 1;
        for (int i = 0; i < n; i++) {
                char repo[64], cfg[128], layer[128], cd[DIGEST_MAX_LEN], ld[DIGEST_MAX_LEN], md[DIGEST_MAX_LEN];
                snprintf(repo, sizeof(repo), "bench/team%02d/svc%05d", i % 50, i);
                int cl = snprintf(cfg, sizeof(cfg), "{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":%d}", i);
                int ll = snprintf(layer, sizeof(layer), "layer-%d", i);
                StoreError e = {};
                if (store_blob_put(s, repo, cfg, (size_t) cl, NULL, cd, &e) < 0 || store_blob_put(s, repo, layer, (size_t) ll, NULL, ld, &e) < 0) {
                        fprintf(stderr, "blob put: %s\n", e.message);
                        return 1;
                }
                char *m = strdup_printf("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                                        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%d},"
                                        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%d}]}",
                                        cd, cl, ld, ll);
                char tags[16][16];
                const char *tp[16];
                for (int k = 0; k < t && k < 16; k++) {
                        snprintf(tags[k], sizeof(tags[k]), "v1.%d", k);
                        tp[k] = tags[k];
                }
                ManifestPut p = { .repo = repo, .data = m, .len = strlen(m), .content_type = MEDIA_TYPE_OCI_MANIFEST,
                                  .reference = "latest", .tags = tp, .n_tags = (size_t) (t > 1 ? t - 1 : 0), .actor = "bench" };
                if (store_manifest_put(s, &p, md, &e) < 0) {
                        fprintf(stderr, "manifest put %s: %s\n", repo, e.message);
                        return 1;
                }
                free(m);
        }
        store_free(s);
        return 0;
}
