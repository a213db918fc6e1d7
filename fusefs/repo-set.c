/* SPDX-License-Identifier: MIT */
/* The set of repository names, cached for path resolution under /repos.
 *
 * Resolving /repos/a/b/c/... asks "is a/b/c a repository, is it a namespace" for every
 * directory the kernel opens; against RocksDB that is a prefix seek each. A walk of a large
 * registry (find, ls -R) asks it hundreds of thousands of times, so the names are kept as one
 * sorted array, rebuilt from the store's repository names (store_repo_names_foreach()) when it is
 * older than the TTL or the secondary caught up with the primary (repo_set_invalidate()).
 *
 * Only names found in the set are answered from it: a name it does not know may have been
 * pushed since the last build, so the caller asks the index (a new push shows at once, a
 * deleted repository disappears within the TTL). Bounded: past max_names the set gives up
 * for a while and every question goes to the index. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "fusefs-internal.h"
#include "storage/records.h"

#define DISABLED_RETRY_NS (60 * NSEC_PER_SEC)

typedef struct Names {
        char **v;
        size_t n, allocated;
        size_t bytes;
} Names;

struct RepoSet {
        Store *store;
        RepoSetOptions o;
        pthread_mutex_t lock;
        Names cur;            /* sorted; valid when have_cur */
        bool have_cur;
        bool building;
        uint64_t generation;  /* bumped by repo_set_invalidate() */
        uint64_t cur_generation;
        int64_t built_ns;     /* monotonic */
        int64_t build_ns;     /* how long the last build took */
        int64_t disabled_until;
        RepoSetStats stats;
};

static int64_t mono_ns(void) {
        return (int64_t) clock_monotonic_ns();
}

static void names_done(Names *n) {
        for (size_t i = 0; i < n->n; i++)
                free(n->v[i]);
        free(n->v);
        *n = (Names) {};
}

int repo_set_new(Store *s, const RepoSetOptions *o, RepoSet **ret) {
        RepoSet *r = calloc(1, sizeof(RepoSet));
        if (!r)
                return -ENOMEM;
        r->store = s;
        if (o)
                r->o = *o;
        if (r->o.ttl_ns <= 0)
                r->o.ttl_ns = (int64_t) NSEC_PER_SEC;
        if (r->o.max_names == 0)
                r->o.max_names = 1000000;
        pthread_mutex_init(&r->lock, NULL);
        *ret = r;
        return 0;
}

RepoSet *repo_set_free(RepoSet *r) {
        if (!r)
                return NULL;
        names_done(&r->cur);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

void repo_set_invalidate(RepoSet *r) {
        pthread_mutex_lock(&r->lock);
        r->generation++;
        pthread_mutex_unlock(&r->lock);
}

void repo_set_stats(RepoSet *r, RepoSetStats *ret) {
        pthread_mutex_lock(&r->lock);
        *ret = r->stats;
        pthread_mutex_unlock(&r->lock);
}

/* ---- building */

typedef struct Build {
        Names names;
        size_t max;
} Build;

static int build_cb(void *userdata, const char *repo) {
        Build *b = userdata;
        Names *n = &b->names;
        if (n->n >= b->max)
                return -E2BIG;
        if (n->n == n->allocated) {
                size_t na = n->allocated ? n->allocated * 2 : 256;
                char **nv = realloc(n->v, na * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                n->v = nv;
                n->allocated = na;
        }
        size_t l = strlen(repo);
        if (!(n->v[n->n] = strdup(repo)))
                return -ENOMEM;
        n->n++;
        n->bytes += l + 1 + sizeof(char *);
        return 0;
}

static int build(RepoSet *r, Names *ret) {
        Build b = { .max = r->o.max_names };
        int k = store_repo_names_foreach(r->store, NULL, NULL, NULL, false, build_cb, &b);
        if (k < 0) {
                names_done(&b.names);
                return k;
        }
        /* the names come out sorted by strcmp() already */
        *ret = b.names;
        return 0;
}

/* ---- questions */

/* First index whose name is >= key. */
static size_t lower_bound(const Names *n, const char *key) {
        size_t lo = 0, hi = n->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(n->v[mid], key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static bool fresh(RepoSet *r, int64_t now) {
        int64_t ttl = MAX(r->o.ttl_ns, 10 * r->build_ns); /* a huge registry rebuilds less often */
        return r->have_cur && r->cur_generation == r->generation && now - r->built_ns < ttl;
}

static void refresh(RepoSet *r, int64_t now) {
        /* under the lock; returns with it held */
        if (fresh(r, now) || r->building || now < r->disabled_until)
                return;
        r->building = true;
        uint64_t gen = r->generation;
        pthread_mutex_unlock(&r->lock);
        Names n = {};
        int64_t t0 = mono_ns();
        int k = build(r, &n);
        int64_t t1 = mono_ns();
        pthread_mutex_lock(&r->lock);
        r->building = false;
        r->stats.builds++;
        if (k < 0) {
                if (k == -E2BIG)
                        log_warning("fusefs: more than %zu repositories, not caching their names", r->o.max_names);
                else
                        log_warning_errno(k, "fusefs: listing repositories failed: %m");
                r->disabled_until = t1 + DISABLED_RETRY_NS;
                names_done(&r->cur);
                r->have_cur = false;
                return;
        }
        names_done(&r->cur);
        r->cur = n;
        r->have_cur = true;
        r->cur_generation = gen;
        r->built_ns = t0;
        r->build_ns = t1 - t0;
        r->stats.names = n.n;
        r->stats.bytes = n.bytes;
}

int repo_set_query(RepoSet *r, const char *name, bool *ret_repo, bool *ret_namespace) {
        size_t l = strlen(name);
        int answered = 0;
        pthread_mutex_lock(&r->lock);
        refresh(r, mono_ns());
        if (r->have_cur) {
                size_t i = lower_bound(&r->cur, name);
                bool is_repo = i < r->cur.n && streq(r->cur.v[i], name);
                bool is_ns = false;
                char slash[REPO_NAME_MAX + 2];
                if (l <= REPO_NAME_MAX) {
                        memcpy(slash, name, l);
                        slash[l] = '/';
                        slash[l + 1] = 0;
                        size_t j = lower_bound(&r->cur, slash);
                        is_ns = j < r->cur.n && strncmp(r->cur.v[j], slash, l + 1) == 0;
                }
                if (is_repo || is_ns) {
                        *ret_repo = is_repo;
                        *ret_namespace = is_ns;
                        answered = 1;
                }
        }
        if (answered)
                r->stats.hits++;
        else
                r->stats.misses++;
        pthread_mutex_unlock(&r->lock);
        return answered;
}
