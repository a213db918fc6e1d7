/* SPDX-License-Identifier: MIT */
/* Generates a store for the GC benchmark through the storage layer (not HTTP): M manifests in
 * R repositories, each with a config and L-1 tiny unique layers (plus one layer shared by all
 * images of a repository). --drop-pct of the manifests are pushed untagged 30 days ago (the
 * GC collects them and their unique blobs); the rest are tagged with release tags (kept).
 * Usage: bench-gc-populate --data DIR --manifests M [--layers L] [--repos R] [--drop-pct P] [--threads T] */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/storage.h"

static Store *store;
static unsigned long n_manifests = 1000, n_layers = 10, n_repos = 100, drop_pct = 10, n_threads = 8;
static atomic_ulong next_i, done, failed;
static int64_t now0;

static void put_blob(const char *repo, const char *content, char out[DIGEST_MAX_LEN]) {
        StoreError e = {};
        if (store_blob_put(store, repo, content, strlen(content), NULL, out, &e) < 0) {
                fprintf(stderr, "blob put: %s\n", e.message);
                atomic_fetch_add(&failed, 1);
        }
}

static void *worker(void *arg) {
        char *body = malloc(64 * 1024);
        for (;;) {
                unsigned long i = atomic_fetch_add(&next_i, 1);
                if (i >= n_manifests)
                        break;
                char repo[64], content[128], cd[DIGEST_MAX_LEN], ld[DIGEST_MAX_LEN], sd[DIGEST_MAX_LEN];
                snprintf(repo, sizeof repo, "bench/r%lu", i % n_repos);
                bool drop = (i * 7919 % 100) < drop_pct;
                snprintf(content, sizeof content, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":%lu}", i);
                put_blob(repo, content, cd);
                snprintf(content, sizeof content, "shared layer of %s", repo);
                put_blob(repo, content, sd);
                /* the config's size (content now holds the shared layer's text) */
                char cfgc[128];
                snprintf(cfgc, sizeof cfgc, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":%lu}", i);
                size_t o = (size_t) snprintf(body, 64 * 1024,
                        "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"config\":{\"mediaType\":\""
                        MEDIA_TYPE_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
                        "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}",
                        cd, strlen(cfgc), sd, strlen(content));
                for (unsigned long j = 2; j < n_layers; j++) {
                        snprintf(content, sizeof content, "layer %lu of image %lu", j, i);
                        put_blob(repo, content, ld);
                        o += (size_t) snprintf(body + o, 64 * 1024 - o,
                                ",{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}",
                                ld, strlen(content));
                }
                snprintf(body + o, 64 * 1024 - o, "]}");
                char tag[DIGEST_MAX_LEN], md[DIGEST_MAX_LEN];
                if (drop)
                        digest_buffer(DIGEST_SHA256, body, strlen(body), tag);
                else
                        snprintf(tag, sizeof tag, "v1.0.%lu", i);
                ManifestPut p = { .repo = repo, .data = body, .len = strlen(body), .content_type = MEDIA_TYPE_OCI_MANIFEST,
                                  .reference = tag, .actor = "bench" };
                StoreError e = {};
                if (store_manifest_put(store, &p, md, &e) < 0) {
                        fprintf(stderr, "manifest put %s:%s: %s\n", repo, tag, e.message);
                        atomic_fetch_add(&failed, 1);
                }
                unsigned long d = atomic_fetch_add(&done, 1) + 1;
                if (d % 10000 == 0)
                        fprintf(stderr, "  %lu manifests\n", d);
        }
        free(body);
        return NULL;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "data", required_argument, NULL, 'd' },     { "manifests", required_argument, NULL, 'm' },
                { "layers", required_argument, NULL, 'l' },   { "repos", required_argument, NULL, 'r' },
                { "drop-pct", required_argument, NULL, 'p' }, { "threads", required_argument, NULL, 't' },
                {},
        };
        const char *data = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "d:m:l:r:p:t:", options, NULL)) >= 0)
                switch (c) {
                case 'd': data = optarg; break;
                case 'm': n_manifests = strtoul(optarg, NULL, 10); break;
                case 'l': n_layers = strtoul(optarg, NULL, 10); break;
                case 'r': n_repos = strtoul(optarg, NULL, 10); break;
                case 'p': drop_pct = strtoul(optarg, NULL, 10); break;
                case 't': n_threads = strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!data || n_layers < 2 || n_repos == 0 || n_threads == 0) {
                fprintf(stderr, "usage: bench-gc-populate --data DIR --manifests M [--layers L>=2] [--repos R] [--drop-pct P] [--threads T]\n");
                return 2;
        }
        log_set_max_level(LOG_LEVEL_WARNING);
        StoreOptions o;
        store_options_init(&o);
        o.root = data;
        o.fsync = false; /* set-up only */
        mkdir_p(data, 0755);
        if (store_open(&o, &store) < 0)
                return 1;
        /* everything is pushed "30 days ago": old enough for any grace; the tagged ones are kept */
        now0 = clock_now_ns();
        clock_set_fake(now0 - 30 * 86400LL * (int64_t) NSEC_PER_SEC);
        pthread_t *t = calloc(n_threads, sizeof(pthread_t));
        for (unsigned long i = 0; i < n_threads; i++)
                pthread_create(&t[i], NULL, worker, NULL);
        for (unsigned long i = 0; i < n_threads; i++)
                pthread_join(t[i], NULL);
        free(t);
        store_free(store);
        printf("manifests %lu, blobs ~%lu, failed %lu\n", n_manifests, n_manifests * (n_layers - 1) + n_repos,
               (unsigned long) atomic_load(&failed));
        return atomic_load(&failed) ? 1 : 0;
}
