/* SPDX-License-Identifier: MIT */
/* The cached set of repository names behind /repos lookups, against a real store: answers
 * from one build for every known name (no index access per question), names it does not know
 * left to the index, rebuilt after an invalidation (a secondary's catch-up) or its TTL,
 * repositories with many manifests, and the size bound. */
#include <time.h>

#include "fusefs/fusefs-internal.h"
#include "tests/unit/storage/storage-test-helpers.h"

static void push(Store *s, const char *repo, const char *seed, char digest[DIGEST_MAX_LEN]) {
        _cleanup_free_ char *m = test_pushed_image(s, repo, seed);
        StoreError e = {};
        ASSERT_OK(test_put_manifest(s, repo, "latest", m, digest, &e));
}

static int ask(RepoSet *r, const char *name) { /* -1 unknown, else bit 1 = repo, bit 2 = namespace */
        bool repo = false, ns = false;
        int k = repo_set_query(r, name, &repo, &ns);
        ASSERT_OK(k);
        return k == 0 ? -1 : (repo ? 1 : 0) | (ns ? 2 : 0);
}

int main(void) {
        _cleanup_free_ char *dir = test_tmpdir();
        Store *s = test_store_open(dir, false);
        char d[DIGEST_MAX_LEN];
        push(s, "a/b", "1", d);
        push(s, "a/b/c", "2", d);
        push(s, "a/b-x", "3", d);
        push(s, "a/b.y/z", "4", d);
        push(s, "solo", "5", d);
        for (int i = 0; i < 100; i++) { /* more manifests than the build steps through before seeking */
                char seed[16];
                snprintf(seed, sizeof(seed), "many%d", i);
                push(s, "many/manifests", seed, d);
        }
        push(s, "many/manifestsz", "6", d);
        push(s, "zz/last", "7", d);

        RepoSet *r = NULL;
        ASSERT_OK(repo_set_new(s, &(RepoSetOptions) { .ttl_ns = 3600LL * 1000000000 }, &r));
        ASSERT_EQ(ask(r, "a/b"), 3);          /* a repository and a namespace */
        ASSERT_EQ(ask(r, "a"), 2);
        ASSERT_EQ(ask(r, "a/b/c"), 1);
        ASSERT_EQ(ask(r, "a/b-x"), 1);
        ASSERT_EQ(ask(r, "a/b.y"), 2);         /* '.' sorts before '/': still found as a namespace */
        ASSERT_EQ(ask(r, "a/b.y/z"), 1);
        ASSERT_EQ(ask(r, "solo"), 1);
        ASSERT_EQ(ask(r, "many/manifests"), 1);
        ASSERT_EQ(ask(r, "many/manifestsz"), 1); /* found after the seek past a large repository */
        ASSERT_EQ(ask(r, "zz/last"), 1);
        ASSERT_EQ(ask(r, "zz"), 2);
        ASSERT_EQ(ask(r, "a/b/c/d"), -1);       /* not known: the caller asks the index */
        ASSERT_EQ(ask(r, "nothere"), -1);
        ASSERT_EQ(ask(r, "sol"), -1);
        RepoSetStats st;
        repo_set_stats(r, &st);
        ASSERT_EQ(st.names, 8);

        /* every question of a walk is answered from the one build */
        for (int i = 0; i < 10000; i++)
                ASSERT_EQ(ask(r, i % 2 ? "a/b/c" : "a"), i % 2 ? 1 : 2);
        repo_set_stats(r, &st);
        ASSERT_EQ(st.builds, 1);
        ASSERT_TRUE(st.hits >= 10000);

        /* a push after the build: unknown until the set is rebuilt (the caller's index lookup
         * makes it visible at once), then known */
        push(s, "late/push", "8", d);
        ASSERT_EQ(ask(r, "late/push"), -1);
        repo_set_invalidate(r);
        ASSERT_EQ(ask(r, "late/push"), 1);
        ASSERT_EQ(ask(r, "late"), 2);
        repo_set_stats(r, &st);
        ASSERT_EQ(st.builds, 2);

        /* a deleted repository leaves the set with the next build */
        StoreError e = {};
        push(s, "gone/soon", "9", d);
        repo_set_invalidate(r);
        ASSERT_EQ(ask(r, "gone/soon"), 1);
        ASSERT_OK(store_manifest_delete(s, "gone/soon", d, "tester", 0, &e));
        repo_set_invalidate(r);
        ASSERT_EQ(ask(r, "gone/soon"), -1);
        ASSERT_EQ(ask(r, "gone"), -1);
        repo_set_free(r);

        /* the TTL: a short one rebuilds without an invalidation */
        ASSERT_OK(repo_set_new(s, &(RepoSetOptions) { .ttl_ns = 1000000 }, &r));
        ASSERT_EQ(ask(r, "solo"), 1);
        push(s, "ttl/new", "10", d);
        nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000000 }, NULL);
        ASSERT_EQ(ask(r, "ttl/new"), 1);
        repo_set_free(r);

        /* the bound: past max_names nothing is cached, every name goes to the index */
        ASSERT_OK(repo_set_new(s, &(RepoSetOptions) { .max_names = 3 }, &r));
        ASSERT_EQ(ask(r, "solo"), -1);
        ASSERT_EQ(ask(r, "a/b"), -1);
        repo_set_stats(r, &st);
        ASSERT_EQ(st.builds, 1); /* and it does not retry on every question */
        repo_set_free(r);

        store_free(s);
        rm_rf(dir);
        printf("ok - repo set\n");
        return 0;
}
