/* SPDX-License-Identifier: MIT */
/* RCA hold records (column `hold`, key digest\0case_id -> JSON) and the closure a hold covers.
 * The WORM export itself lives in worm.c. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/holds.h"
#include "storage/records.h"
#include "storage/store-internal.h"

/* Read-modify-write of hold records (release, export path) is serialised in-process: the API
 * and the GC may touch the same record concurrently. */
static pthread_mutex_t holds_lock = PTHREAD_MUTEX_INITIALIZER;

bool hold_is_active(const HoldInfo *h, int64_t now) {
        return h->released == 0 && (h->until == 0 || h->until > now);
}

int hold_parse_until(const char *s, int64_t now, int64_t *ret) {
        int64_t v;
        if (!s || !*s)
                return -EINVAL;
        if (parse_timestamp_ns(s, &v) < 0) {
                int64_t d;
                if (parse_duration_ns(s, &d) < 0)
                        return -EINVAL;
                if (d == 0)
                        return -ERANGE;
                v = now + d;
        }
        if (v <= now)
                return -ERANGE;
        *ret = v;
        return 0;
}

void hold_info_done(HoldInfo *h) {
        if (!h)
                return;
        free(h->case_id);
        free(h->reason);
        free(h->actor);
        free(h->export_bundle);
        *h = (HoldInfo) {};
}

static void hold_info_donep(HoldInfo *h) {
        hold_info_done(h);
}

static char *rfc3339(int64_t ns) {
        char buf[64];
        time_t t = (time_t) (ns / (int64_t) NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t k = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + k, sizeof buf - k, ".%09lldZ", (long long) (ns % (int64_t) NSEC_PER_SEC));
        return strdup(buf);
}

static json_t *json_time_or_null(int64_t ns) {
        if (ns == 0)
                return json_null();
        _cleanup_free_ char *s = rfc3339(ns);
        return s ? json_string(s) : json_null();
}

json_t *hold_info_to_json(const HoldInfo *h, int64_t now) {
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "digest", json_string(h->digest));
        json_object_set_new(o, "case_id", json_string(strempty(h->case_id)));
        json_object_set_new(o, "reason", json_string(strempty(h->reason)));
        json_object_set_new(o, "actor", json_string(h->actor ? h->actor : "anonymous"));
        json_object_set_new(o, "created", json_time_or_null(h->created));
        json_object_set_new(o, "until", json_time_or_null(h->until));
        json_object_set_new(o, "released", json_time_or_null(h->released));
        json_object_set_new(o, "active", json_boolean(hold_is_active(h, now)));
        json_object_set_new(o, "export_bundle", h->export_bundle ? json_string(h->export_bundle) : json_null());
        return o;
}

/* ---- record encoding */

static json_t *hold_record(const HoldInfo *h, const char *released_by) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "digest", h->digest, "case_id", strempty(h->case_id),
                              "reason", strempty(h->reason), "actor", h->actor ? h->actor : "anonymous", "created",
                              (json_int_t) h->created, "until", (json_int_t) h->until, "released",
                              (json_int_t) h->released);
        if (!o)
                return NULL;
        if (h->export_bundle)
                json_object_set_new(o, "export_bundle", json_string(h->export_bundle));
        if (released_by)
                json_object_set_new(o, "released_by", json_string(released_by));
        return o;
}

static char *strdup_json(json_t *o, const char *key) {
        const char *v = json_string_value(json_object_get(o, key));
        return v ? strdup(v) : NULL;
}

static int hold_decode(const char *key, size_t klen, const char *val, size_t vlen, HoldInfo *ret) {
        size_t dl = strnlen(key, klen);
        if (dl == 0 || dl >= DIGEST_MAX_LEN || dl + 1 >= klen)
                return -EBADMSG;
        _cleanup_(json_decrefp) json_t *o = json_loadb(val, vlen, 0, NULL);
        if (!json_is_object(o))
                return -EBADMSG;
        HoldInfo h = {};
        memcpy(h.digest, key, dl);
        h.digest[dl] = 0;
        h.case_id = strndup(key + dl + 1, klen - dl - 1);
        h.reason = strdup_json(o, "reason");
        h.actor = strdup_json(o, "actor");
        h.export_bundle = strdup_json(o, "export_bundle");
        h.created = (int64_t) json_integer_value(json_object_get(o, "created"));
        h.until = (int64_t) json_integer_value(json_object_get(o, "until"));
        h.released = (int64_t) json_integer_value(json_object_get(o, "released"));
        if (!h.case_id) {
                hold_info_done(&h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

static char *hold_key(const char *digest, const char *case_id, size_t *ret_len) {
        return index_key_join(ret_len, digest, case_id, NULL);
}

int store_hold_get(Store *s, const char *digest, const char *case_id, HoldInfo *ret) {
        size_t klen, vlen;
        _cleanup_free_ char *key = hold_key(digest, case_id, &klen);
        _cleanup_free_ char *val = NULL;
        if (!key)
                return -ENOMEM;
        int r = store_kv_get(s, NULL, INDEX_HOLD, key, klen, &val, &vlen);
        if (r < 0)
                return r;
        return hold_decode(key, klen, val, vlen, ret);
}

int store_hold_json(Store *s, const char *digest, const char *case_id, char **ret_json, size_t *ret_len) {
        size_t klen;
        _cleanup_free_ char *key = hold_key(digest, case_id, &klen);
        if (!key)
                return -ENOMEM;
        return store_kv_get(s, NULL, INDEX_HOLD, key, klen, ret_json, ret_len);
}

/* Writes the record and an audit event in one synced batch. */
static int hold_write(Store *s, const HoldInfo *h, const char *released_by, const char *actor, const char *action,
                      json_t *detail) {
        size_t klen;
        _cleanup_free_ char *key = hold_key(h->digest, h->case_id, &klen);
        _cleanup_(json_decrefp) json_t *rec = hold_record(h, released_by);
        _cleanup_free_ char *v = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        if (!key || !v)
                return -ENOMEM;
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        if (!b)
                return -ENOMEM;
        index_batch_put(b, INDEX_HOLD, key, klen, v, strlen(v));
        if (action) {
                _cleanup_free_ char *target = strdup_printf("%s@%s", h->case_id, h->digest);
                if (!target)
                        return -ENOMEM;
                int r = audit_add(s, b, actor, action, target, "ok", detail ? detail : rec);
                if (r < 0)
                        return r;
        }
        return store_batch_commit(s, b);
}

static int digest_exists(Store *s, const char *digest, bool *ret_is_manifest) {
        _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
        int r = store_manifest_get_by_digest(s, digest, &m);
        if (r >= 0) {
                *ret_is_manifest = true;
                return 0;
        }
        if (r != -ENOENT)
                return r;
        BlobInfo bi;
        r = store_blob_info(s, digest, &bi);
        if (r < 0)
                return r;
        *ret_is_manifest = false;
        return 0;
}

int store_hold_add(Store *s, const char *digest, const char *case_id, const char *reason, int64_t until,
                   const char *actor, StoreError *err) {
        if (!digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest '%s'", strempty(digest));
        if (!case_id_is_valid(case_id))
                return store_error_set(err, -EINVAL, OCI_UNSUPPORTED,
                                       "invalid case id '%s': expected 1-128 characters [A-Za-z0-9._-] starting with a "
                                       "letter or digit (no '/' or other path characters)",
                                       strempty(case_id));
        if (s->read_only)
                return store_error_set(err, -EROFS, OCI_UNSUPPORTED, "store is read-only");

        /* Under the digest lock, so a concurrent GC sweep of this digest (which re-checks under
         * the same lock) either sees the hold or has already taken the content. */
        _cleanup_(hold_info_donep) HoldInfo h = {};
        int64_t now = clock_now_ns();
        bool created = false;
        store_digest_lock(s, digest);
        pthread_mutex_lock(&holds_lock);
        int r;
        bool is_manifest = false;
        r = digest_exists(s, digest, &is_manifest);
        if (r == -ENOENT) {
                r = store_error_set(err, -ENOENT, OCI_MANIFEST_UNKNOWN,
                                    "%s is neither a manifest nor a blob in this registry", digest);
                goto finish;
        }
        if (r < 0) {
                r = store_error_set(err, r, OCI_UNSUPPORTED, "looking up %s: %s", digest, strerror(-r));
                goto finish;
        }

        r = store_hold_get(s, digest, case_id, &h);
        if (r == -ENOENT) {
                created = true;
                h = (HoldInfo) { .created = now };
                snprintf(h.digest, sizeof h.digest, "%s", digest);
                h.case_id = strdup(case_id);
                if (!h.case_id) {
                        r = -ENOMEM;
                        goto finish;
                }
        } else if (r < 0)
                goto finish;

        free(h.reason);
        free(h.actor);
        h.reason = strdup(strempty(reason));
        h.actor = strdup(actor ? actor : "anonymous");
        h.until = until;
        h.released = 0;
        if (!h.reason || !h.actor) {
                r = -ENOMEM;
                goto finish;
        }
        r = hold_write(s, &h, NULL, actor, created ? "hold.add" : "hold.renew", NULL);
        if (r < 0) {
                r = store_error_set(err, r, OCI_UNSUPPORTED, "writing hold: %s", strerror(-r));
                goto finish;
        }
        log_info("hold %s on %s (%s) by %s", case_id, digest, is_manifest ? "manifest" : "blob", strna(actor));
        r = created ? 1 : 0;
finish:
        pthread_mutex_unlock(&holds_lock);
        store_digest_unlock(s, digest);
        return r;
}

int store_hold_release(Store *s, const char *digest, const char *case_id, const char *actor, StoreError *err) {
        if (!digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest '%s'", strempty(digest));
        if (!case_id_is_valid(case_id))
                return store_error_set(err, -EINVAL, OCI_UNSUPPORTED, "invalid case id '%s'", strempty(case_id));
        pthread_mutex_lock(&holds_lock);
        _cleanup_(hold_info_donep) HoldInfo h = {};
        int r = store_hold_get(s, digest, case_id, &h);
        if (r == -ENOENT)
                r = store_error_set(err, -ENOENT, OCI_MANIFEST_UNKNOWN, "no hold for case %s on %s", case_id, digest);
        else if (r < 0)
                r = store_error_set(err, r, OCI_UNSUPPORTED, "reading hold: %s", strerror(-r));
        else if (h.released != 0)
                r = 0;
        else {
                h.released = clock_now_ns();
                r = hold_write(s, &h, actor ? actor : "anonymous", actor, "hold.release", NULL);
                if (r < 0)
                        r = store_error_set(err, r, OCI_UNSUPPORTED, "writing hold: %s", strerror(-r));
                else
                        log_info("hold %s on %s released by %s", case_id, digest, strna(actor));
        }
        pthread_mutex_unlock(&holds_lock);
        return r;
}

int store_hold_set_export(Store *s, const char *digest, const char *case_id, const char *bundle) {
        pthread_mutex_lock(&holds_lock);
        _cleanup_(hold_info_donep) HoldInfo h = {};
        int r = store_hold_get(s, digest, case_id, &h);
        if (r >= 0) {
                char *b = strdup(bundle);
                if (!b)
                        r = -ENOMEM;
                else {
                        free(h.export_bundle);
                        h.export_bundle = b;
                        r = hold_write(s, &h, NULL, NULL, NULL, NULL);
                }
        }
        pthread_mutex_unlock(&holds_lock);
        return r;
}

typedef struct HoldsIter {
        HoldIterFn fn;
        void *userdata;
} HoldsIter;

static int holds_iter_one(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        HoldsIter *it = userdata;
        _cleanup_(hold_info_donep) HoldInfo h = {};
        int r = hold_decode(key, klen, val, vlen, &h);
        if (r < 0) {
                log_warning_errno(r, "skipping undecodable hold record: %m");
                return 0;
        }
        return it->fn(it->userdata, &h);
}

int store_holds_foreach(Store *s, IndexSnapshot *snap, HoldIterFn fn, void *userdata) {
        HoldsIter it = { fn, userdata };
        return store_kv_iterate(s, snap, INDEX_HOLD, NULL, 0, NULL, 0, holds_iter_one, &it);
}

typedef struct ActiveHold {
        int64_t now;
        char *case_id; /* of the first active hold found */
} ActiveHold;

static int active_hold_cb(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        ActiveHold *a = userdata;
        _cleanup_(hold_info_donep) HoldInfo h = {};
        if (hold_decode(key, klen, val, vlen, &h) < 0 || !hold_is_active(&h, a->now))
                return 0;
        a->case_id = steal_pointer(&h.case_id);
        return a->case_id ? 1 : -ENOMEM;
}

int store_digest_held(Store *s, const char *digest, char **ret_case_id) {
        size_t pl;
        _cleanup_free_ char *prefix = index_key_join(&pl, digest, "", NULL);
        if (!prefix)
                return -ENOMEM;
        ActiveHold a = { .now = clock_now_ns() };
        int r = store_kv_iterate(s, NULL, INDEX_HOLD, prefix, pl, NULL, 0, active_hold_cb, &a);
        _cleanup_free_ char *case_id = a.case_id;
        if (r < 0)
                return r;
        if (!case_id)
                return 0;
        if (ret_case_id)
                *ret_case_id = steal_pointer(&case_id);
        return 1;
}

int store_hold_forget(Store *s, const HoldInfo *h) {
        size_t klen;
        _cleanup_free_ char *key = hold_key(h->digest, h->case_id, &klen);
        if (!key)
                return -ENOMEM;
        pthread_mutex_lock(&holds_lock);
        _cleanup_(index_batch_freep) IndexBatch *b = index_batch_new();
        int r = b ? 0 : -ENOMEM;
        if (r >= 0) {
                index_batch_delete(b, INDEX_HOLD, key, klen);
                _cleanup_free_ char *target = strdup_printf("%s@%s", h->case_id, h->digest);
                json_t *detail = json_pack("{s:s?}", "export_bundle", h->export_bundle);
                r = target ? audit_add(s, b, "gc", "hold.forget", target, "ok", detail) : -ENOMEM;
                json_decref(detail);
                if (r >= 0)
                        r = store_batch_commit(s, b);
        }
        pthread_mutex_unlock(&holds_lock);
        return r;
}

int store_hold_ensure_exported(Store *s, const HoldInfo *h, json_t *worm, char **ret_bundle) {
        WormOptions o;
        int r = worm_options_from_json(worm, &o);
        if (r < 0)
                return log_error_errno(r, "hold %s on %s: cannot make sure it is exported: worm.path is not configured",
                                       h->case_id, h->digest);
        o.actor = "gc";

        /* The recorded bundle first, then any verifying bundle of this digest under the case
         * (an export whose path did not make it into the record before a crash). */
        if (h->export_bundle && worm_verify(h->export_bundle, NULL) == 0) {
                if (ret_bundle && !(*ret_bundle = strdup(h->export_bundle)))
                        return -ENOMEM;
                return 0;
        }
        if (h->export_bundle)
                log_warning("hold %s on %s: recorded bundle %s does not verify; looking for another", h->case_id,
                            h->digest, h->export_bundle);
        _cleanup_free_ char *found = NULL;
        if (worm_find_verified(o.path, h->case_id, h->digest, &found) >= 0) {
                r = store_hold_set_export(s, h->digest, h->case_id, found);
                if (r < 0 && r != -ENOENT)
                        return log_error_errno(r, "recording export of %s: %m", h->digest);
                if (ret_bundle)
                        *ret_bundle = steal_pointer(&found);
                return 0;
        }

        _cleanup_free_ char *bundle = NULL;
        StoreError err = {};
        r = worm_export(s, &o, h->case_id, h->digest, &bundle, NULL, &err);
        if (r < 0)
                return log_error_errno(r, "hold %s on %s: WORM export failed: %s", h->case_id, h->digest, err.message);
        _cleanup_(json_decrefp) json_t *report = NULL;
        r = worm_verify(bundle, &report);
        if (r < 0)
                return log_error_errno(r, "hold %s on %s: fresh WORM bundle %s does not verify", h->case_id, h->digest,
                                       bundle);
        r = store_hold_set_export(s, h->digest, h->case_id, bundle);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "recording export of %s: %m", h->digest);
        log_info("hold %s on %s exported to %s before collection", h->case_id, h->digest, bundle);
        if (ret_bundle)
                *ret_bundle = steal_pointer(&bundle);
        return 1;
}

/* ---- closure */

typedef struct Closure {
        Store *store;
        IndexSnapshot *snap;
        StoreError *err;
        json_t *seen;      /* digest -> true */
        json_t *manifests; /* array */
        json_t *blobs;     /* array */
        json_t *referrers; /* subject -> [digest] (every repository) */
        uint64_t bytes;
} Closure;

static int referrer_scan_one(void *userdata, const char *key, size_t klen, const char *val, size_t vlen) {
        Closure *c = userdata;
        /* repo\0subject\0digest */
        const char *end = key + klen;
        const char *subject = memchr(key, 0, klen);
        if (!subject)
                return 0;
        subject++;
        const char *dig = memchr(subject, 0, (size_t) (end - subject));
        if (!dig)
                return 0;
        dig++;
        _cleanup_free_ char *sub = strndup(subject, (size_t) (dig - 1 - subject));
        _cleanup_free_ char *d = strndup(dig, (size_t) (end - dig));
        if (!sub || !d)
                return -ENOMEM;
        json_t *l = json_object_get(c->referrers, sub);
        if (!l) {
                l = json_array();
                json_object_set_new(c->referrers, sub, l);
        }
        /* the same referrer in several repositories counts once */
        size_t i;
        json_t *e;
        json_array_foreach(l, i, e)
                if (streq(json_string_value(e), d))
                        return 0;
        json_array_append_new(l, json_string(d));
        return 0;
}

static bool is_nondistributable(const char *media_type) {
        return media_type && (strstr(media_type, "nondistributable") || strstr(media_type, "foreign"));
}

#define EMPTY_JSON_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static int closure_add_blob(Closure *c, const Descriptor *d, const char *role) {
        if (json_object_get(c->seen, d->digest))
                return 0;
        BlobInfo bi;
        int r = store_blob_info(c->store, d->digest, &bi);
        bool skipped = false, synthesized = false;
        if (r == -ENOENT) {
                if (is_nondistributable(d->media_type))
                        skipped = true;
                else if (streq(d->digest, EMPTY_JSON_DIGEST))
                        synthesized = true; /* "{}": written from memory */
                else
                        return store_error_set(c->err, -ENOENT, OCI_BLOB_UNKNOWN, "%s %s of the closure is missing",
                                               role, d->digest);
        } else if (r < 0)
                return store_error_set(c->err, r, OCI_UNSUPPORTED, "reading blob %s: %s", d->digest, strerror(-r));
        json_object_set_new(c->seen, d->digest, json_true());
        uint64_t size = skipped ? d->size : synthesized ? 2 : bi.size;
        json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "digest", d->digest, "size", (json_int_t) size, "mediaType",
                              strempty(d->media_type), "role", role);
        if (!o)
                return -ENOMEM;
        if (skipped)
                json_object_set_new(o, "skipped", json_string("non-distributable layer not in the store"));
        if (synthesized)
                json_object_set_new(o, "synthesized", json_true());
        if (!skipped)
                c->bytes += size;
        json_array_append_new(c->blobs, o);
        return 0;
}

static int closure_add_manifest(Closure *c, const char *digest, const char *role, unsigned depth) {
        if (json_object_get(c->seen, digest))
                return 0;
        if (depth > 16)
                return store_error_set(c->err, -ELOOP, OCI_MANIFEST_INVALID, "closure of %s nests too deep", digest);
        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
        int r = store_manifest_get_by_digest(c->store, digest, &sm);
        if (r == -ENOENT)
                return store_error_set(c->err, -ENOENT, depth == 0 ? OCI_MANIFEST_UNKNOWN : OCI_MANIFEST_BLOB_UNKNOWN,
                                       "%s manifest %s is not in the store", role, digest);
        if (r < 0)
                return store_error_set(c->err, r, OCI_UNSUPPORTED, "reading manifest %s: %s", digest, strerror(-r));
        _cleanup_(manifest_freep) Manifest *m = NULL;
        r = store_manifest_parsed(c->store, c->snap, digest, &m);
        if (r < 0)
                return store_error_set(c->err, r, OCI_MANIFEST_INVALID, "parsing manifest %s: %s", digest, strerror(-r));

        json_object_set_new(c->seen, digest, json_true());
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "digest", digest, "mediaType", strempty(sm->media_type), "size",
                              (json_int_t) sm->size, "role", role);
        if (!o)
                return -ENOMEM;
        /* an image's own config type is not an artifact type */
        if (sm->artifact_type && !streq(sm->artifact_type, MEDIA_TYPE_OCI_CONFIG) &&
            !streq(sm->artifact_type, MEDIA_TYPE_DOCKER_CONFIG))
                json_object_set_new(o, "artifactType", json_string(sm->artifact_type));
        if (sm->subject)
                json_object_set_new(o, "subject", json_string(sm->subject));
        json_array_append_new(c->manifests, o);
        c->bytes += sm->size;

        if (m->has_config) {
                r = closure_add_blob(c, &m->config, "config");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                r = closure_add_blob(c, &m->layers[i], "layer");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < m->n_manifests; i++) {
                r = closure_add_manifest(c, m->manifests[i].digest, "child", depth + 1);
                if (r < 0)
                        return r;
        }
        json_t *refs = json_object_get(c->referrers, digest);
        size_t i;
        json_t *e;
        json_array_foreach(refs, i, e) {
                r = closure_add_manifest(c, json_string_value(e), "referrer", depth + 1);
                /* a referrer record whose manifest is gone is not part of anything we can keep */
                if (r == -ENOENT && !json_object_get(c->seen, json_string_value(e))) {
                        log_warning("referrer %s of %s has no manifest; skipped", json_string_value(e), digest);
                        if (c->err)
                                *c->err = (StoreError) {};
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_digest_closure(Store *s, IndexSnapshot *snap, const char *digest, json_t **ret, StoreError *err) {
        if (!digest || digest_parse(digest, NULL) < 0)
                return store_error_set(err, -EINVAL, OCI_DIGEST_INVALID, "invalid digest '%s'", strempty(digest));
        Closure c = {
                .store = s,
                .snap = snap,
                .err = err,
                .seen = json_object(),
                .manifests = json_array(),
                .blobs = json_array(),
                .referrers = json_object(),
        };
        int r;
        const char *kind = "manifest";
        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
        if (!c.seen || !c.manifests || !c.blobs || !c.referrers) {
                r = -ENOMEM;
                goto finish;
        }
        r = store_kv_iterate(s, snap, INDEX_REFERRER, NULL, 0, NULL, 0, referrer_scan_one, &c);
        if (r < 0) {
                r = store_error_set(err, r, OCI_UNSUPPORTED, "scanning referrers: %s", strerror(-r));
                goto finish;
        }
        r = store_manifest_get_by_digest(s, digest, &sm);
        if (r >= 0)
                r = closure_add_manifest(&c, digest, "held", 0);
        else if (r == -ENOENT) {
                BlobInfo bi;
                r = store_blob_info(s, digest, &bi);
                if (r == -ENOENT) {
                        r = store_error_set(err, -ENOENT, OCI_MANIFEST_UNKNOWN,
                                            "%s is neither a manifest nor a blob in this registry", digest);
                        goto finish;
                }
                kind = "blob";
                Descriptor d = { .digest = (char *) digest, .size = bi.size };
                if (r >= 0)
                        r = closure_add_blob(&c, &d, "held");
        }
        if (r < 0)
                goto finish;
        json_t *o = json_pack("{s:s, s:s, s:O, s:O, s:I}", "digest", digest, "kind", kind, "manifests", c.manifests,
                              "blobs", c.blobs, "bytes", (json_int_t) c.bytes);
        if (!o) {
                r = -ENOMEM;
                goto finish;
        }
        *ret = o;
        r = 0;
finish:
        json_decref(c.seen);
        json_decref(c.manifests);
        json_decref(c.blobs);
        json_decref(c.referrers);
        return r;
}
