/* SPDX-License-Identifier: MIT */
/* Compact in-memory structures of a GC run: a string map, the digest table (binary keys, dense
 * ids, one flag byte) and the manifest graph loaded from a snapshot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc-internal.h"
#include "storage/records.h"

static uint64_t hash_bytes(const void *p, size_t n) {
        /* FNV-1a, then a final mix (the table is indexed by the low bits) */
        uint64_t h = hash_fnv1a(p, n, HASH_FNV1A_INIT);
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        return h;
}

/* ---------------------------------------------------------------- StrMap */

typedef struct StrEntry {
        char *key;
        size_t klen;
        size_t value;
} StrEntry;

struct StrMap {
        StrEntry *slots;
        size_t n, cap;
};

StrMap *strmap_new(void) {
        StrMap *m = calloc(1, sizeof *m);
        if (!m)
                return NULL;
        m->cap = 64;
        m->slots = calloc(m->cap, sizeof(StrEntry));
        if (!m->slots) {
                free(m);
                return NULL;
        }
        return m;
}

StrMap *strmap_free(StrMap *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->cap; i++)
                free(m->slots[i].key);
        free(m->slots);
        free(m);
        return NULL;
}

static StrEntry *strmap_slot(StrEntry *slots, size_t cap, const char *key, size_t klen) {
        size_t i = hash_bytes(key, klen) & (cap - 1);
        for (;;) {
                StrEntry *e = &slots[i];
                if (!e->key || (e->klen == klen && memcmp(e->key, key, klen) == 0))
                        return e;
                i = (i + 1) & (cap - 1);
        }
}

int strmap_get(StrMap *m, const char *key, size_t klen, size_t *ret) {
        StrEntry *e = strmap_slot(m->slots, m->cap, key, klen);
        if (!e->key)
                return 0;
        if (ret)
                *ret = e->value;
        return 1;
}

int strmap_put(StrMap *m, const char *key, size_t klen, size_t value) {
        if ((m->n + 1) * 4 > m->cap * 3) {
                size_t ncap = m->cap * 2;
                StrEntry *ns = calloc(ncap, sizeof(StrEntry));
                if (!ns)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++)
                        if (m->slots[i].key)
                                *strmap_slot(ns, ncap, m->slots[i].key, m->slots[i].klen) = m->slots[i];
                free(m->slots);
                m->slots = ns;
                m->cap = ncap;
        }
        StrEntry *e = strmap_slot(m->slots, m->cap, key, klen);
        if (!e->key) {
                e->key = malloc(klen + 1);
                if (!e->key)
                        return -ENOMEM;
                memcpy(e->key, key, klen);
                e->key[klen] = 0;
                e->klen = klen;
                m->n++;
        }
        e->value = value;
        return 0;
}

/* ---------------------------------------------------------------- DigestTable */

typedef struct DigestEntry {
        uint8_t key[32];
        uint8_t algo;   /* DigestAlgorithm */
        uint16_t flags;
        uint32_t manifest;
} DigestEntry;

typedef struct LongName {
        uint32_t id;
        char *name;
} LongName;

struct DigestTable {
        uint32_t *slots; /* id + 1, 0 = empty */
        size_t cap;
        DigestEntry *entries;
        size_t n, allocated;
        LongName *long_names; /* sha512: full names, ids ascending */
        size_t n_long;
};

DigestTable *digest_table_new(void) {
        DigestTable *t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->cap = 1024;
        t->slots = calloc(t->cap, sizeof(uint32_t));
        if (!t->slots) {
                free(t);
                return NULL;
        }
        return t;
}

DigestTable *digest_table_free(DigestTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_long; i++)
                free(t->long_names[i].name);
        free(t->long_names);
        free(t->slots);
        free(t->entries);
        free(t);
        return NULL;
}

/* Lower-case hex digit values plus one, 0 for anything else (upper case is not a valid digest). */
static const uint8_t lower_hex_value1[256] = {
        ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
        ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* "sha256:" + 64 lower-case hex digits, validated and decoded in one pass: every GC phase
 * interns each of a million digests, and digest_parse() + hex_decode() were a fifth of a run. */
static bool sha256_key(const char *digest, uint8_t key[32]) {
        if (memcmp(digest, "sha256:", 7) != 0)
                return false;
        const unsigned char *h = (const unsigned char *) digest + 7;
        for (size_t i = 0; i < 32; i++) {
                int a = lower_hex_value1[h[2 * i]] - 1, b = lower_hex_value1[h[2 * i + 1]] - 1;
                if ((a | b) < 0)
                        return false;
                key[i] = (uint8_t) (a << 4 | b);
        }
        return h[64] == 0;
}

static int digest_key(const char *digest, uint8_t key[32], uint8_t *ret_algo) {
        /* strnlen first: memcmp and the hex loop must not read past a short string's NUL */
        if (strnlen(digest, 7 + 64 + 1) == 7 + 64 && sha256_key(digest, key)) {
                *ret_algo = DIGEST_SHA256;
                return 0;
        }
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return -EINVAL;
        const char *hex = digest_hex(digest);
        /* the first 64 hex digits: all of a sha256, half of a sha512 (still collision free) */
        if (hex_decode(hex, 64, key) < 0)
                return -EINVAL;
        *ret_algo = (uint8_t) a;
        return 0;
}

static size_t dt_slot(const DigestTable *t, size_t cap, const uint32_t *slots, const uint8_t key[32], uint8_t algo) {
        uint64_t h;
        memcpy(&h, key, sizeof h); /* digests are uniformly distributed already */
        size_t i = (size_t) (h ^ algo) & (cap - 1);
        for (;;) {
                uint32_t v = slots[i];
                if (v == 0)
                        return i;
                const DigestEntry *e = &t->entries[v - 1];
                if (e->algo == algo && memcmp(e->key, key, 32) == 0)
                        return i;
                i = (i + 1) & (cap - 1);
        }
}

uint32_t digest_table_find(DigestTable *t, const char *digest) {
        uint8_t key[32], algo;
        if (digest_key(digest, key, &algo) < 0)
                return DT_NONE;
        size_t i = dt_slot(t, t->cap, t->slots, key, algo);
        return t->slots[i] ? t->slots[i] - 1 : DT_NONE;
}

uint32_t digest_table_intern(DigestTable *t, const char *digest) {
        uint8_t key[32], algo;
        if (digest_key(digest, key, &algo) < 0)
                return DT_NONE;
        size_t i = dt_slot(t, t->cap, t->slots, key, algo);
        if (t->slots[i])
                return t->slots[i] - 1;
        if ((t->n + 1) * 10 > t->cap * 7) {
                size_t ncap = t->cap * 2;
                uint32_t *ns = calloc(ncap, sizeof(uint32_t));
                if (!ns)
                        return DT_NONE;
                for (size_t j = 0; j < t->cap; j++)
                        if (t->slots[j]) {
                                const DigestEntry *e = &t->entries[t->slots[j] - 1];
                                ns[dt_slot(t, ncap, ns, e->key, e->algo)] = t->slots[j];
                        }
                free(t->slots);
                t->slots = ns;
                t->cap = ncap;
                i = dt_slot(t, t->cap, t->slots, key, algo);
        }
        if (t->n >= t->allocated) {
                size_t na = t->allocated ? t->allocated * 2 : 1024;
                DigestEntry *ne = realloc(t->entries, na * sizeof(DigestEntry));
                if (!ne)
                        return DT_NONE;
                t->entries = ne;
                t->allocated = na;
        }
        if (algo != DIGEST_SHA256) {
                LongName *nl = realloc(t->long_names, (t->n_long + 1) * sizeof(LongName));
                if (!nl)
                        return DT_NONE;
                t->long_names = nl;
                nl[t->n_long].id = (uint32_t) t->n;
                nl[t->n_long].name = strdup(digest);
                if (!nl[t->n_long].name)
                        return DT_NONE;
                t->n_long++;
        }
        DigestEntry *e = &t->entries[t->n];
        memcpy(e->key, key, 32);
        e->algo = algo;
        e->flags = 0;
        e->manifest = DT_NONE;
        t->slots[i] = (uint32_t) ++t->n;
        return (uint32_t) (t->n - 1);
}

size_t digest_table_size(DigestTable *t) {
        return t->n;
}

uint16_t *digest_table_flags(DigestTable *t, uint32_t id) {
        return &t->entries[id].flags;
}

uint32_t *digest_table_manifest(DigestTable *t, uint32_t id) {
        return &t->entries[id].manifest;
}

void digest_table_name(DigestTable *t, uint32_t id, char out[DIGEST_MAX_LEN]) {
        const DigestEntry *e = &t->entries[id];
        if (e->algo != DIGEST_SHA256) {
                size_t lo = 0, hi = t->n_long;
                while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        if (t->long_names[mid].id < id)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                if (lo < t->n_long && t->long_names[lo].id == id) {
                        snprintf(out, DIGEST_MAX_LEN, "%s", t->long_names[lo].name);
                        return;
                }
        }
        memcpy(out, "sha256:", 7);
        hex_encode(e->key, 32, out + 7);
}

/* ---------------------------------------------------------------- Graph */

int graph_init(Graph *g) {
        *g = (Graph) {};
        g->digests = digest_table_new();
        return g->digests ? 0 : -ENOMEM;
}

void graph_done(Graph *g) {
        for (size_t i = 0; i < g->n_manifests; i++)
                free(g->manifests[i].edges);
        free(g->manifests);
        digest_table_free(g->digests);
        *g = (Graph) {};
}

static int graph_add(Graph *g, uint32_t id, const Manifest *m, size_t size) {
        if (g->n_manifests >= g->allocated) {
                size_t na = g->allocated ? g->allocated * 2 : 256;
                GraphManifest *n = realloc(g->manifests, na * sizeof(GraphManifest));
                if (!n)
                        return -ENOMEM;
                g->manifests = n;
                g->allocated = na;
        }
        size_t n_edges = m->n_manifests + m->n_layers + (m->has_config ? 1 : 0);
        GraphManifest *gm = &g->manifests[g->n_manifests];
        *gm = (GraphManifest) {
                .id = id,
                .subject = DT_NONE,
                .is_index = manifest_kind_is_index(m->kind),
                .size = (uint32_t) MIN(size, (size_t) UINT32_MAX),
        };
        gm->edges = n_edges ? malloc(n_edges * sizeof(uint32_t)) : NULL;
        if (n_edges && !gm->edges)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < m->n_manifests; i++) {
                uint32_t c = digest_table_intern(g->digests, m->manifests[i].digest);
                if (c != DT_NONE)
                        gm->edges[k++] = c;
        }
        gm->n_children = (uint32_t) k;
        if (m->has_config) {
                uint32_t c = digest_table_intern(g->digests, m->config.digest);
                if (c != DT_NONE)
                        gm->edges[k++] = c;
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                uint32_t c = digest_table_intern(g->digests, m->layers[i].digest);
                if (c != DT_NONE)
                        gm->edges[k++] = c;
        }
        gm->n_edges = (uint32_t) k;
        if (m->has_subject && m->subject.digest)
                gm->subject = digest_table_intern(g->digests, m->subject.digest);
        *digest_table_manifest(g->digests, id) = (uint32_t) g->n_manifests;
        *digest_table_flags(g->digests, id) |= DT_MANIFEST;
        g->n_manifests++;
        return (int) (g->n_manifests - 1);
}

/* Adds manifest id from its record meta: media type, the n children's digests (an index's are
 * manifests, an image's its config and layers; NULL entries skipped), subject or NULL. */
static int graph_add_meta(Graph *g, uint32_t id, const char *mt, Descriptor *d, size_t n, const char *subject,
                          size_t raw_size) {
        bool is_index = streq(mt, MEDIA_TYPE_OCI_INDEX) || streq(mt, MEDIA_TYPE_DOCKER_LIST);
        size_t keep = 0;
        for (size_t i = 0; i < n; i++)
                if (d[i].digest)
                        d[keep++] = d[i];
        Manifest m = { .kind = is_index ? MANIFEST_OCI_INDEX : MANIFEST_OCI_IMAGE };
        if (is_index) {
                m.manifests = d;
                m.n_manifests = keep;
        } else {
                /* the order does not matter for marking: all of them are blobs */
                m.layers = d;
                m.n_layers = keep;
        }
        if (subject) {
                m.has_subject = true;
                m.subject.digest = (char *) subject;
        }
        return graph_add(g, id, &m, raw_size);
}

typedef struct MetaChildren {
        char *names; /* n_max names of DIGEST_MAX_LEN bytes */
        size_t n_max;
} MetaChildren;

static int meta_child_cb(void *userdata, size_t i, const char *digest, size_t len) {
        MetaChildren *c = userdata;
        if (len >= DIGEST_MAX_LEN)
                return -EINVAL; /* not a digest: the jansson path decides what it is */
        if (i >= c->n_max) {
                size_t n = MAX(c->n_max * 2, (size_t) 16);
                char *nn = realloc(c->names, n * DIGEST_MAX_LEN);
                if (!nn)
                        return -ENOMEM;
                c->names = nn;
                c->n_max = n;
        }
        memcpy(c->names + i * DIGEST_MAX_LEN, digest, len);
        c->names[i * DIGEST_MAX_LEN + len] = 0;
        return 0;
}

/* manifest_meta_scan() of the meta our store writes: no JSON tree per manifest (it took more
 * than half of the plan). -EINVAL: not that shape, read it with jansson. */
static int graph_load_meta_scan(Graph *g, uint32_t id, const char *meta, size_t ml, size_t raw_size) {
        _cleanup_free_ char *names = NULL;
        MetaChildren c = {};
        ManifestMeta mm;
        int r = manifest_meta_scan(meta, ml, &mm, meta_child_cb, &c);
        names = c.names;
        if (r < 0)
                return r;
        if (!mm.has_children || !mm.media_type)
                return -EINVAL;
        char mt[256], subject[DIGEST_MAX_LEN];
        if (mm.media_type_len >= sizeof mt || (mm.subject && mm.subject_len >= sizeof subject))
                return -EINVAL;
        memcpy(mt, mm.media_type, mm.media_type_len);
        mt[mm.media_type_len] = 0;
        if (mm.subject) {
                memcpy(subject, mm.subject, mm.subject_len);
                subject[mm.subject_len] = 0;
        }
        _cleanup_free_ Descriptor *d = calloc(MAX(mm.n_children, (size_t) 1), sizeof(Descriptor));
        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < mm.n_children; i++)
                d[i].digest = names + i * DIGEST_MAX_LEN;
        return graph_add_meta(g, id, mt, d, mm.n_children, mm.subject ? subject : NULL, raw_size);
}

/* Fast path: the record's meta JSON lists the children (storage writes {mediaType, size, created,
 * children[], subject?, artifactType?}); an index's children are manifests, an image's are its
 * config and layers. Returns -EPROTO when the record does not have them (then parse the manifest). */
static int graph_load_meta(Graph *g, uint32_t id, const char *meta, size_t ml, size_t raw_size) {
        int r = graph_load_meta_scan(g, id, meta, ml, raw_size);
        if (r != -EINVAL)
                return r;
        json_error_t je;
        _cleanup_(json_decrefp) json_t *j = json_loadb(meta, ml, 0, &je);
        json_t *children = json_object_get(j, "children");
        const char *mt = json_string_value(json_object_get(j, "mediaType"));
        if (!json_is_array(children) || !mt)
                return -EPROTO;
        size_t n = json_array_size(children);
        _cleanup_free_ Descriptor *d = calloc(n ? n : 1, sizeof(Descriptor));
        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                d[i].digest = (char *) json_string_value(json_array_get(children, i));
        return graph_add_meta(g, id, mt, d, n, json_string_value(json_object_get(j, "subject")), raw_size);
}

/* The slow path: the stored manifest itself, parsed. */
static int graph_load_parsed(Graph *g, uint32_t id, const char *digest, const char *meta, size_t ml, const char *raw,
                             size_t raw_len) {
        json_error_t je;
        _cleanup_(json_decrefp) json_t *j = json_loadb(meta, ml, 0, &je);
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char err[256];
        int r = manifest_parse(raw, raw_len, json_string_value(json_object_get(j, "mediaType")), &m, err, sizeof err);
        if (r < 0) {
                log_warning("Stored manifest %s does not parse: %s", digest, err);
                return r;
        }
        return graph_add(g, id, m, raw_len);
}

typedef struct LoadCtx {
        Graph *g;
        uint32_t id;          /* graph_load_one(): the digest's id */
        size_t errors;
        int result;
} LoadCtx;

static int load_one_cb(void *userdata, const char *digest, const char *meta, size_t ml, const char *raw, size_t raw_len) {
        LoadCtx *c = userdata;
        int r = graph_load_meta(c->g, c->id, meta, ml, raw_len);
        if (r == -EPROTO)
                r = graph_load_parsed(c->g, c->id, digest, meta, ml, raw, raw_len);
        c->result = r;
        return r == -ENOMEM ? r : 0;
}

static int graph_load_one(Graph *g, Store *s, IndexSnapshot *snap, uint32_t id, const char *digest) {
        LoadCtx c = { .g = g, .id = id };
        int r = store_manifest_record(s, snap, digest, load_one_cb, &c);
        return r < 0 ? r : c.result;
}

static int load_cb(void *userdata, const char *digest, const char *meta, size_t ml, const char *raw, size_t raw_len) {
        LoadCtx *c = userdata;
        uint32_t id = digest_table_intern(c->g->digests, digest);
        if (id == DT_NONE) {
                c->errors++;
                return 0;
        }
        if (*digest_table_flags(c->g->digests, id) & DT_MANIFEST)
                return 0;
        int r = graph_load_meta(c->g, id, meta, ml, raw_len);
        if (r == -EPROTO)
                r = graph_load_parsed(c->g, id, digest, meta, ml, raw, raw_len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_warning_errno(r, "gc: cannot parse manifest %s, treating it as a leaf: %m", digest);
                c->errors++;
        }
        return 0;
}

int graph_load(Graph *g, Store *s, IndexSnapshot *snap) {
        LoadCtx c = { .g = g };
        return store_manifests_foreach(s, snap, load_cb, &c);
}

int graph_ensure(Graph *g, Store *s, IndexSnapshot *snap, uint32_t id) {
        uint16_t f = *digest_table_flags(g->digests, id);
        if (f & DT_MANIFEST)
                return (int) *digest_table_manifest(g->digests, id);
        char digest[DIGEST_MAX_LEN];
        digest_table_name(g->digests, id, digest);
        return graph_load_one(g, s, snap, id, digest);
}
