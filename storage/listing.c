/* SPDX-License-Identifier: MIT */
/* Listing: whether a repository exists, its tags, the catalog and the referrers of a manifest. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/records.h"
#include "storage/store-internal.h"

/* ---- listing */

static int prefix_has_key(Store *s, IndexColumn c, const char *prefix, size_t plen) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[c]);
        if (!it)
                return -ENOMEM;
        rocksdb_iter_seek(it, prefix, plen);
        int r = 0;
        if (rocksdb_iter_valid(it)) {
                size_t kl;
                const char *k = rocksdb_iter_key(it, &kl);
                r = kl >= plen && memcmp(k, prefix, plen) == 0;
        }
        rocksdb_iter_destroy(it);
        return r;
}

int store_repo_exists(Store *s, const char *repo) {
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, "", NULL);
        if (!prefix)
                return -ENOMEM;
        int r = prefix_has_key(s, INDEX_REPO_MANIFEST, prefix, pl);
        if (r != 0)
                return r;
        return prefix_has_key(s, INDEX_REPO_BLOB, prefix, pl);
}

int store_tags_list(Store *s, const char *repo, const char *last, size_t n, char ***ret, bool *ret_more) {
        int r;
        if (!repo || !ret)
                return -EINVAL;
        r = store_repo_exists(s, repo);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        size_t pl, al = 0;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, "", NULL);
        _cleanup_free_ char *after = last ? index_key_join(&al, repo, last, NULL) : NULL;
        if (!prefix || (last && !after))
                return -ENOMEM;
        TagList tl = { .prefix_len = pl, .limit = n };
        r = store_kv_iterate(s, NULL, INDEX_TAG, prefix, pl, after, al, tag_collect_cb, &tl);
        if (r < 0) {
                strv_free(tl.v);
                return r;
        }
        size_t count = tl.n;
        if (ret_more)
                *ret_more = tl.more;
        *ret = tag_list_steal(&tl);
        return *ret ? (int) count : -ENOMEM;
}

/* The smallest repository name > after (or the first if after is NULL) in a repo\0... column. */
static int next_repo(rocksdb_iterator_t *it, const char *after, char **ret) {
        if (after) {
                size_t l = strlen(after);
                _cleanup_free_ char *k = malloc(l + 1);
                if (!k)
                        return -ENOMEM;
                memcpy(k, after, l);
                k[l] = 1; /* past every "after\0..." key */
                rocksdb_iter_seek(it, k, l + 1);
        } else
                rocksdb_iter_seek_to_first(it);
        if (!rocksdb_iter_valid(it)) {
                *ret = NULL;
                return 0;
        }
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *z = memchr(k, 0, kl);
        *ret = strndup(k, z ? (size_t) (z - k) : kl);
        return *ret ? 1 : -ENOMEM;
}

int store_catalog(Store *s, const char *last, size_t n, char ***ret, bool *ret_more) {
        rocksdb_iterator_t *a = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[INDEX_REPO_MANIFEST]);
        rocksdb_iterator_t *b = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[INDEX_REPO_BLOB]);
        TagList l = {};
        int r = 0;
        bool more = false;
        _cleanup_free_ char *cur = last ? strdup(last) : NULL;
        if (!a || !b || (last && !cur)) {
                r = -ENOMEM;
                goto finish;
        }
        for (;;) {
                char *x = NULL, *y = NULL;
                r = next_repo(a, cur, &x);
                if (r >= 0)
                        r = next_repo(b, cur, &y);
                if (r < 0) {
                        free(x);
                        free(y);
                        goto finish;
                }
                char *pick;
                if (x && y) {
                        if (strcmp(x, y) <= 0) {
                                pick = x;
                                free(y);
                        } else {
                                pick = y;
                                free(x);
                        }
                } else
                        pick = x ? x : y;
                if (!pick)
                        break;
                if (n && l.n >= n) {
                        more = true;
                        free(pick);
                        break;
                }
                r = tag_list_push(&l, pick, strlen(pick));
                free(cur);
                cur = pick;
                if (r < 0)
                        goto finish;
        }
        r = 0;
finish:
        if (a)
                rocksdb_iter_destroy(a);
        if (b)
                rocksdb_iter_destroy(b);
        if (r < 0) {
                strv_free(l.v);
                return r;
        }
        size_t count = l.n;
        if (ret_more)
                *ret_more = more;
        *ret = tag_list_steal(&l);
        return *ret ? (int) count : -ENOMEM;
}

typedef struct ReferrerCtx {
        json_t *array;
        const char *artifact_type;
} ReferrerCtx;

static int referrer_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ReferrerCtx *c = userdata;
        json_t *d = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(d)) {
                json_decref(d);
                return 0;
        }
        if (c->artifact_type && !streq_ptr(json_string_value(json_object_get(d, "artifactType")), c->artifact_type)) {
                json_decref(d);
                return 0;
        }
        return json_array_append_new(c->array, d) < 0 ? -ENOMEM : 0;
}

int store_referrers(Store *s, const char *repo, const char *subject, const char *artifact_type, json_t **ret) {
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, repo, subject, "", NULL);
        if (!prefix)
                return -ENOMEM;
        ReferrerCtx c = { .array = json_array(), .artifact_type = artifact_type };
        if (!c.array)
                return -ENOMEM;
        int r = store_kv_iterate(s, NULL, INDEX_REFERRER, prefix, pl, NULL, 0, referrer_cb, &c);
        if (r < 0) {
                json_decref(c.array);
                return r;
        }
        *ret = c.array;
        return 0;
}
