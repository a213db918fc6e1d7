/* SPDX-License-Identifier: MIT */
/* Inode numbers of the FUSE view: the encoding of each node kind is a pure function of the path
 * (or the data, or a moving link's target) with fixed values (the same in every run and build: the
 * numbers below were computed with the encoding as it was before inode.c existed), the routing of
 * a sample path of every kind, the table ino -> path the kernel's lookups fill, and against a real
 * store: every node kind resolved, its inode the one its kind's encoding gives, the same when
 * listed and when looked up, found again through the table, and the same after reopening. */
#include "fusefs/fusefs-internal.h"
#include "storage/gc-records.h"
#include "storage/holds.h"
#include "tests/unit/storage/storage-test-helpers.h"

#define D "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define M "/repos/ns/app/_manifests/" D

static const struct {
        NodeKind kind;
        const char *path;
        uint64_t ino;
} samples[] = {
        { NODE_ROOT, "/", UINT64_C(1) },
        { NODE_README, "/README", UINT64_C(15833258208725108925) },
        { NODE_REPOS, "/repos", UINT64_C(14568855374188160423) },
        { NODE_NS, "/repos/ns/app", UINT64_C(17594758083504754833) },
        { NODE_TAGS, "/repos/ns/app/_tags", UINT64_C(5036881549676141433) },
        { NODE_TAG, "/repos/ns/app/_tags/v1", UINT64_C(15019996746127718251) },
        { NODE_MANIFESTS, "/repos/ns/app/_manifests", UINT64_C(8186153452929436650) },
        { NODE_MANIFEST, M, UINT64_C(6770023690150066319) },
        { NODE_MANIFEST_JSON, M "/manifest.json", UINT64_C(18018418547939268815) },
        { NODE_CONFIG_JSON, M "/config.json", UINT64_C(9758023342912460192) },
        { NODE_LAYERS, M "/layers", UINT64_C(17311056294146200073) },
        { NODE_LAYER, M "/layers/0-" D, UINT64_C(16435948734449424781) },
        { NODE_ROOTFS, M "/rootfs/etc/os-release", UINT64_C(13791492613303259160) },
        { NODE_REFERRERS, M "/referrers", UINT64_C(8661632199479678879) },
        { NODE_REFTYPE, M "/referrers/application_vnd.example.sbom", UINT64_C(841876859689044060) },
        { NODE_REFERRER, M "/referrers/application_vnd.example.sbom/" D, UINT64_C(14316550860757437716) },
        { NODE_PLATFORMS, M "/platforms", UINT64_C(9537334298364771488) },
        { NODE_PLATFORM, M "/platforms/linux-amd64", UINT64_C(13738337809052487934) },
        { NODE_HISTORY, "/repos/ns/app/_history", UINT64_C(10467344431090633070) },
        { NODE_HISTORY_FILE, "/repos/ns/app/_history/v1", UINT64_C(2989498973569312923) },
        { NODE_CHANNELS, "/channels", UINT64_C(3856539499703386494) },
        { NODE_CHAN_ENV, "/channels/prod", UINT64_C(12350789593299640365) },
        { NODE_CHAN_SVC, "/channels/prod/web", UINT64_C(8080011439631438801) },
        { NODE_CHAN_PTR, "/channels/prod/web/stable", UINT64_C(17013433678397438988) },
        { NODE_BLOBS, "/blobs", UINT64_C(4004358359328252710) },
        { NODE_BLOB_ALGO, "/blobs/sha256", UINT64_C(8757066124822705972) },
        { NODE_BLOB, "/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          UINT64_C(904003659464026664) },
        { NODE_GC, "/gc", UINT64_C(18285925338789517282) },
        { NODE_GC_LAST, "/gc/last.json", UINT64_C(11292314416641147999) },
        { NODE_GC_HISTORY, "/gc/history", UINT64_C(13734076882258338929) },
        { NODE_GC_REPORT, "/gc/history/2025-01-01T00:00:00Z-000000000.json", UINT64_C(7752894814663577647) },
        { NODE_HOLDS, "/holds", UINT64_C(10001223193880675998) },
        { NODE_HOLD_CASE, "/holds/INC-1", UINT64_C(12305571885080067843) },
        { NODE_HOLD_FILE, "/holds/INC-1/" D ".json", UINT64_C(15996799981611777118) },
};

TEST(test_encoding) {
        bool seen[_NODE_KIND_MAX] = {};
        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                Route r;
                ASSERT_OK(route_parse(samples[i].path, &r));
                if (r.kind != samples[i].kind)
                        printf("# %s: routed to %s\n", samples[i].path, node_kind_to_string(r.kind));
                ASSERT_EQ(r.kind, samples[i].kind);
                route_done(&r);
                ASSERT_TRUE(ino_of_path(samples[i].path) == samples[i].ino);
                ASSERT_TRUE(node_kind_to_string(samples[i].kind) != NULL);
                seen[samples[i].kind] = true;
        }
        for (size_t k = 0; k < _NODE_KIND_MAX; k++)
                ASSERT_TRUE(seen[k]); /* a sample of every kind */
        ASSERT_TRUE(node_kind_to_string(_NODE_KIND_MAX) == NULL);

        /* the moving symlinks: one inode per target, none equal to the path's */
        ASSERT_TRUE(ino_of_moving_link("/repos/ns/app/_tags/v1", "../_manifests/" D) == UINT64_C(4947370453034035627));
        ASSERT_TRUE(ino_of_moving_link("/channels/prod/web/stable", "../../../repos/channels/prod/web/_manifests/" D) ==
                    UINT64_C(9582323346126356191));
        ASSERT_TRUE(ino_of_moving_link(M "/referrers/application_vnd.example.sbom/" D, "../../../" D) ==
                    UINT64_C(8281841953658252381));
        ASSERT_TRUE(ino_of_moving_link("/repos/ns/app/_tags/v1", "../_manifests/sha256:1") !=
                    ino_of_moving_link("/repos/ns/app/_tags/v1", "../_manifests/sha256:2"));
        /* hard-linked rootfs files: the inode of their data */
        ASSERT_TRUE(ino_of_data(D, 2, 7) == UINT64_C(17085548026643220855));
        ASSERT_TRUE(ino_of_data(D, 2, 7) != ino_of_data(D, 7, 2));

        /* paths no node can have */
        static const char *const bad[] = {
                "/nothere", "/README/x", "/repos/_tags", "/repos/a/_tags/bad:tag", "/repos/a/_bogus",
                "/repos/a/_manifests/sha256:0000", M "/manifest.json/x", M "/layers/0/1", "/channels/a/b/latest",
                "/blobs/md5", "/blobs/sha256/a/b", "/gc/nothere", "/gc/history/a/b", "/holds/a/b/c",
                "/holds/a/b.txt", "/repos/a/../b",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Route r;
                ASSERT_EQ(route_parse(bad[i], &r), -ENOENT);
                route_done(&r);
        }
        /* repository names: components up to the first '_' one; "//" and a trailing "/" do not count */
        Route r;
        ASSERT_OK(route_parse("//repos/a//b/c/_history/", &r));
        ASSERT_EQ(r.kind, NODE_HISTORY);
        ASSERT_STREQ(r.repo, "a/b/c");
        route_done(&r);
}

TEST(test_table) {
        InoTable *t = NULL;
        ASSERT_OK(ino_table_new(&t));
        /* the root is always known and never stored */
        ASSERT_OK(ino_remember(t, INO_ROOT, "/"));
        ASSERT_EQ(ino_table_size(t), 0);
        _cleanup_free_ char *root = ino_path(t, INO_ROOT);
        ASSERT_STREQ(root, "/");
        for (size_t i = 1; i < ELEMENTSOF(samples); i++) {
                ASSERT_TRUE(ino_path(t, samples[i].ino) == NULL);
                ASSERT_OK(ino_remember(t, samples[i].ino, samples[i].path));
                ASSERT_OK(ino_remember(t, samples[i].ino, samples[i].path));
        }
        ASSERT_EQ(ino_table_size(t), ELEMENTSOF(samples) - 1);
        for (size_t i = 1; i < ELEMENTSOF(samples); i++) {
                _cleanup_free_ char *p = ino_path(t, samples[i].ino);
                ASSERT_STREQ(p, samples[i].path);
        }
        /* a second name of a known inode (a hard link) adds nothing: the first path answers */
        ASSERT_OK(ino_remember(t, samples[5].ino, "/elsewhere"));
        _cleanup_free_ char *first = ino_path(t, samples[5].ino);
        ASSERT_STREQ(first, samples[5].path);
        ino_forget(t, samples[5].ino, 3);
        ASSERT_TRUE(ino_path(t, samples[5].ino) == NULL);
        /* forget() counts down the lookups */
        ino_forget(t, samples[6].ino, 1);
        _cleanup_free_ char *still = ino_path(t, samples[6].ino);
        ASSERT_STREQ(still, samples[6].path);
        ino_forget(t, samples[6].ino, 1);
        ASSERT_TRUE(ino_path(t, samples[6].ino) == NULL);
        ino_forget(t, samples[6].ino, 1); /* unknown: nothing happens */
        ASSERT_EQ(ino_table_size(t), ELEMENTSOF(samples) - 3);

        /* many inodes (the table grows) */
        for (unsigned i = 0; i < 20000; i++) {
                char p[64];
                snprintf(p, sizeof p, "/blobs/sha256/%08u", i);
                ASSERT_OK(ino_remember(t, ino_of_path(p), p));
        }
        ASSERT_EQ(ino_table_size(t), ELEMENTSOF(samples) - 3 + 20000);
        for (unsigned i = 0; i < 20000; i += 7) {
                char p[64];
                snprintf(p, sizeof p, "/blobs/sha256/%08u", i);
                _cleanup_free_ char *got = ino_path(t, ino_of_path(p));
                ASSERT_STREQ(got, p);
                ino_forget(t, ino_of_path(p), 1);
                ASSERT_TRUE(ino_path(t, ino_of_path(p)) == NULL);
        }
        for (size_t i = 7; i < ELEMENTSOF(samples); i++) {
                _cleanup_free_ char *p = ino_path(t, samples[i].ino);
                ASSERT_STREQ(p, samples[i].path);
        }
        ino_table_free(t);
}

/* ---- against a real store */

static void tar_header(uint8_t *h, const char *name, char type, size_t size, const char *link) {
        memset(h, 0, 512);
        snprintf((char *) h, 100, "%s", name);
        memcpy(h + 100, "0000644", 8);
        memcpy(h + 108, "0000000", 8);
        memcpy(h + 116, "0000000", 8);
        snprintf((char *) h + 124, 12, "%011zo", size);
        snprintf((char *) h + 136, 12, "%011o", 1700000000U);
        h[156] = (uint8_t) type;
        if (link)
                snprintf((char *) h + 157, 100, "%s", link);
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
}

/* A plain tar: etc/, etc/os-release, a hard link to it and a symlink. */
static size_t make_layer(uint8_t *out) {
        static const char data[] = "ID=test\n";
        size_t o = 0;
        tar_header(out + o, "etc/", '5', 0, NULL), o += 512;
        tar_header(out + o, "etc/os-release", '0', strlen(data), NULL), o += 512;
        memset(out + o, 0, 512);
        memcpy(out + o, data, strlen(data)), o += 512;
        tar_header(out + o, "etc/os-release.link", '1', 0, "etc/os-release"), o += 512;
        tar_header(out + o, "etc/motd", '2', 0, "os-release"), o += 512;
        memset(out + o, 0, 1024), o += 1024;
        return o;
}

static void put(Store *s, const char *repo, const char *ref, const char *body, const char *type, char digest[DIGEST_MAX_LEN]) {
        StoreError e = {};
        ManifestPut p = { .repo = repo, .data = body, .len = strlen(body), .content_type = type, .reference = ref, .actor = "tester" };
        int r = store_manifest_put(s, &p, digest, &e);
        if (r < 0)
                printf("# %s:%s: %s\n", repo, ref, e.message);
        ASSERT_OK(r);
}

typedef struct Paths {
        char *v[64];
        size_t n;
} Paths;

static void add(Paths *p, char *path) {
        ASSERT_TRUE(path && p->n < ELEMENTSOF(p->v));
        p->v[p->n++] = path;
}

/* Resolves every path: returns its inode, checks it against its kind's encoding. */
static uint64_t resolve_ino(FsView *v, const char *path, NodeKind *ret_kind) {
        Node n;
        int r = node_resolve(v, path, &n);
        if (r < 0)
                printf("# %s: %s\n", path, strerror(-r));
        ASSERT_OK(r);
        uint64_t ino = node_ino(path, &n);
        switch (n.kind) {
        case NODE_TAG:
        case NODE_CHAN_PTR:
        case NODE_REFERRER:
                ASSERT_TRUE(n.link && !n.immutable);
                ASSERT_TRUE(ino == ino_of_moving_link(path, n.link));
                break;
        case NODE_ROOTFS:
                if (n.rnode->type == TAR_ENTRY_FILE) {
                        ASSERT_EQ(n.rnode->group->nlink, 2);
                        ASSERT_TRUE(ino == ino_of_data(n.rootfs->digest, n.rnode->layer, n.rnode->entry));
                        break;
                }
                ASSERT_TRUE(ino == ino_of_path(path));
                break;
        default:
                ASSERT_TRUE(ino == ino_of_path(path));
        }
        *ret_kind = n.kind;
        node_done(v, &n);
        return ino;
}

/* Directories: what a listing says of each entry is what a lookup says (readdirplus and lookup
 * must agree on the inode). */
static void check_listing(FsView *v, const char *path) {
        Node dir;
        ASSERT_OK(node_resolve(v, path, &dir));
        if (!S_ISDIR(dir.st.st_mode)) {
                node_done(v, &dir);
                return;
        }
        DirList l = {};
        ASSERT_OK(node_list(v, path, &dir, &l));
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ char *cp = child_path(path, l.e[i].name);
                NodeKind k;
                ASSERT_TRUE(node_ino(cp, &l.e[i].node) == resolve_ino(v, cp, &k));
                ASSERT_EQ(l.e[i].node.kind, k);
        }
        dirlist_done(v, &l);
        node_done(v, &dir);
}

TEST(test_store) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        StoreError e = {};
        uint8_t layer[4096];
        size_t ll = make_layer(layer);
        char cfg[DIGEST_MAX_LEN], ld[DIGEST_MAX_LEN], img[DIGEST_MAX_LEN], img2[DIGEST_MAX_LEN], idx[DIGEST_MAX_LEN],
                ref[DIGEST_MAX_LEN], chan[DIGEST_MAX_LEN];
        static const char config[] = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
        test_blob(s, "ns/app", config, cfg);
        ASSERT_OK(store_blob_put(s, "ns/app", layer, ll, NULL, ld, &e));
        const char *layers[] = { ld };
        size_t sizes[] = { ll };
        _cleanup_free_ char *m = test_image_manifest(cfg, strlen(config), layers, sizes, 1, NULL, NULL, NULL);
        put(s, "ns/app", "v1", m, MEDIA_TYPE_OCI_MANIFEST, img);
        _cleanup_free_ char *m2 = test_image_manifest(cfg, strlen(config), layers, sizes, 1, NULL, NULL, "second");
        put(s, "ns/app", "v2", m2, MEDIA_TYPE_OCI_MANIFEST, img2);
        _cleanup_free_ char *r = test_image_manifest(cfg, strlen(config), layers, sizes, 1, img, "application/vnd.example.sbom", NULL);
        put(s, "ns/app", "sbom", r, MEDIA_TYPE_OCI_MANIFEST, ref);
        ASSERT_OK(store_blob_mount(s, "ns/multi", "ns/app", cfg, "tester"));
        ASSERT_OK(store_blob_mount(s, "ns/multi", "ns/app", ld, "tester"));
        put(s, "ns/multi", "image", m, MEDIA_TYPE_OCI_MANIFEST, chan);
        _cleanup_free_ char *ix = strdup_printf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
                                                "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
                                                MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, img, strlen(m));
        put(s, "ns/multi", "latest", ix, MEDIA_TYPE_OCI_INDEX, idx);
        ASSERT_OK(store_blob_mount(s, "channels/prod/web", "ns/app", cfg, "tester"));
        ASSERT_OK(store_blob_mount(s, "channels/prod/web", "ns/app", ld, "tester"));
        put(s, "channels/prod/web", "stable", m, MEDIA_TYPE_OCI_MANIFEST, chan);
        ASSERT_OK(store_gc_report_put(s, "{\"id\":\"one\"}", 1735689600LL * 1000000000, 10, false));
        ASSERT_OK(store_hold_add(s, img, "INC-1", "review", 0, "tester", &e));

        _cleanup_free_ char *mp = strdup_printf("/repos/ns/app/_manifests/%s", img);
        Paths p = {};
        static const char *const fixed[] = {
                "/", "/README", "/repos", "/repos/ns", "/repos/ns/app", "/repos/ns/app/_tags", "/repos/ns/app/_tags/v1",
                "/repos/ns/app/_manifests", "/repos/ns/app/_history", "/repos/ns/app/_history/v1", "/channels",
                "/channels/prod", "/channels/prod/web", "/channels/prod/web/stable", "/blobs", "/blobs/sha256", "/gc",
                "/gc/last.json", "/gc/history", "/holds", "/holds/INC-1",
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                add(&p, strdup(fixed[i]));
        add(&p, strdup(mp));
        static const char *const below[] = {
                "manifest.json", "config.json", "layers", "rootfs", "rootfs/etc", "rootfs/etc/os-release",
                "rootfs/etc/os-release.link", "rootfs/etc/motd", "referrers", "referrers/application_vnd.example.sbom",
        };
        for (size_t i = 0; i < ELEMENTSOF(below); i++)
                add(&p, strdup_printf("%s/%s", mp, below[i]));
        add(&p, strdup_printf("%s/layers/0-%s", mp, ld));
        add(&p, strdup_printf("%s/referrers/application_vnd.example.sbom/%s", mp, ref));
        add(&p, strdup_printf("/repos/ns/multi/_manifests/%s/platforms", idx));
        add(&p, strdup_printf("/repos/ns/multi/_manifests/%s/platforms/linux-amd64", idx));
        add(&p, strdup_printf("/blobs/sha256/%s", digest_hex(ld)));
        add(&p, strdup_printf("/holds/INC-1/%s.json", img));

        FsView v;
        ASSERT_OK(fs_view_init(&v, s, &(LayerCacheOptions) {}));
        /* the GC report's name, from its listing */
        Node gch;
        DirList l = {};
        ASSERT_OK(node_resolve(&v, "/gc/history", &gch));
        ASSERT_OK(node_list(&v, "/gc/history", &gch, &l));
        ASSERT_EQ(l.n, 1);
        add(&p, strdup_printf("/gc/history/%s", l.e[0].name));
        dirlist_done(&v, &l);
        node_done(&v, &gch);

        uint64_t inos[64];
        bool kinds[_NODE_KIND_MAX] = {};
        InoTable *t = NULL;
        ASSERT_OK(ino_table_new(&t));
        for (size_t i = 0; i < p.n; i++) {
                NodeKind k;
                inos[i] = resolve_ino(&v, p.v[i], &k);
                kinds[k] = true;
                /* the kernel asks again by inode: the table gives the path, which resolves to the same node */
                ASSERT_OK(ino_remember(t, inos[i], p.v[i]));
                _cleanup_free_ char *again = ino_path(t, inos[i]);
                NodeKind k2;
                ASSERT_TRUE(again && resolve_ino(&v, again, &k2) == inos[i]);
                ASSERT_EQ(k2, k);
                check_listing(&v, p.v[i]);
        }
        for (size_t k = 0; k < _NODE_KIND_MAX; k++) {
                if (!kinds[k])
                        printf("# no node of kind %s\n", node_kind_to_string((NodeKind) k));
                ASSERT_TRUE(kinds[k]);
        }
        /* hard links share one inode (the table keeps the first path), other files have their own */
        _cleanup_free_ char *f1 = strdup_printf("%s/rootfs/etc/os-release", mp), *f2 = strdup_printf("%s/rootfs/etc/os-release.link", mp);
        NodeKind k;
        ASSERT_TRUE(resolve_ino(&v, f1, &k) == resolve_ino(&v, f2, &k));
        ASSERT_TRUE(resolve_ino(&v, f1, &k) != ino_of_path(f1));
        /* a tag that moves gets another inode; its path's does not change */
        uint64_t tag_before = resolve_ino(&v, "/repos/ns/app/_tags/v1", &k);
        put(s, "ns/app", "v1", m2, MEDIA_TYPE_OCI_MANIFEST, img2);
        uint64_t tag_after = resolve_ino(&v, "/repos/ns/app/_tags/v1", &k);
        ASSERT_TRUE(tag_before != tag_after);
        _cleanup_free_ char *target = strdup_printf("../_manifests/%s", img2);
        ASSERT_TRUE(tag_after == ino_of_moving_link("/repos/ns/app/_tags/v1", target));
        put(s, "ns/app", "v1", m, MEDIA_TYPE_OCI_MANIFEST, img);
        ASSERT_TRUE(resolve_ino(&v, "/repos/ns/app/_tags/v1", &k) == tag_before);
        fs_view_done(&v);
        ino_table_free(t);

        /* another run: a reopened store and a fresh view give every node the same inode */
        store_free(s);
        s = test_store_open(dir, false);
        ASSERT_OK(fs_view_init(&v, s, &(LayerCacheOptions) {}));
        for (size_t i = 0; i < p.n; i++) {
                ASSERT_TRUE(resolve_ino(&v, p.v[i], &k) == inos[i]);
                free(p.v[i]);
        }
        fs_view_done(&v);
        store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_encoding);
        RUN(test_table);
        RUN(test_store);
        return 0;
}
