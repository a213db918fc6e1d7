/* SPDX-License-Identifier: MIT */
/* Promotion gates: not_blocked, a cosign signature that verifies against a configured key
 * (simple-signing payload, as the sha256-<hex>.sig tag or an OCI 1.1 referrer), an SBOM
 * referrer, required labels/annotations, and a soak time at the step promoted from. */

#include <inttypes.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/util.h"
#include "governance/governance-internal.h"
#include "storage/records.h"

static void format_duration(char *buf, size_t n, int64_t ns) {
        int64_t s = ns / (int64_t) NSEC_PER_SEC;
        if (s < 0)
                s = 0;
        if (s >= 3600)
                snprintf(buf, n, "%" PRIi64 "h%02" PRIi64 "m%02" PRIi64 "s", s / 3600, (s / 60) % 60, s % 60);
        else if (s >= 60)
                snprintf(buf, n, "%" PRIi64 "m%02" PRIi64 "s", s / 60, s % 60);
        else
                snprintf(buf, n, "%" PRIi64 "s", s);
}

/* ------------------------------------------------------------------ signatures, SBOMs, labels */

static int read_blob(Governance *g, const char *digest, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(blob_reader_freep) BlobReader *br = NULL;
        int r = store_blob_open(g->store, digest, &br);
        if (r < 0)
                return r;
        uint64_t size = blob_reader_size(br);
        if (size > max)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        while (off < size) {
                ssize_t n = blob_reader_pread(br, buf + off, size - off, off);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EIO;
                off += (uint64_t) n;
        }
        buf[size] = 0;
        *ret = steal_pointer(&buf);
        *ret_len = size;
        return 0;
}

static int base64_decode(const char *in, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *clean = malloc(strlen(in) + 4);
        if (!clean)
                return -ENOMEM;
        size_t n = 0;
        for (const char *p = in; *p; p++)
                if (!strchr(" \t\r\n", *p))
                        clean[n++] = *p == '-' ? '+' : *p == '_' ? '/' : *p; /* accept base64url too */
        while (n % 4)
                clean[n++] = '=';
        clean[n] = 0;
        if (n == 0)
                return -EINVAL;
        uint8_t *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int l = EVP_DecodeBlock(out, (const unsigned char *) clean, (int) n);
        if (l < 0) {
                free(out);
                return -EINVAL;
        }
        size_t pad = 0;
        if (n >= 1 && clean[n - 1] == '=')
                pad++;
        if (n >= 2 && clean[n - 2] == '=')
                pad++;
        *ret = out;
        *ret_len = (size_t) l - pad;
        return 0;
}

static bool verify_with_key(EVP_PKEY *key, const uint8_t *sig, size_t siglen, const void *data, size_t len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return false;
        int id = EVP_PKEY_get_base_id(key);
        const EVP_MD *md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
        bool ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
                  EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return ok;
}

static void detail_add(json_t *detail, const char *fmt, ...) _printf_(2, 3);
static void detail_add(json_t *detail, const char *fmt, ...) {
        if (!detail)
                return;
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_array_append_new(detail, json_string(buf));
}

/* Checks every simple-signing layer of a signature manifest. */
static void check_signature_manifest(Governance *g, const char *where, Manifest *m, const char *digest,
                                     int *found, bool *verified, json_t *detail) {
        for (size_t i = 0; i < m->n_layers; i++) {
                Descriptor *l = &m->layers[i];
                if (!streq_ptr(l->media_type, COSIGN_SIMPLESIGNING_TYPE))
                        continue;
                const char *sig_b64 = json_string_value(json_object_get(l->annotations, COSIGN_SIGNATURE_ANNOTATION));
                if (!sig_b64) {
                        detail_add(detail, "%s layer %zu: no %s annotation", where, i, COSIGN_SIGNATURE_ANNOTATION);
                        continue;
                }
                (*found)++;
                _cleanup_free_ char *payload = NULL;
                size_t plen = 0;
                int r = read_blob(g, l->digest, 1U << 20, &payload, &plen);
                if (r < 0) {
                        detail_add(detail, "%s layer %zu: payload %s unreadable: %s", where, i, l->digest, strerror(-r));
                        continue;
                }
                _cleanup_free_ uint8_t *sig = NULL;
                size_t siglen = 0;
                if (base64_decode(sig_b64, &sig, &siglen) < 0) {
                        detail_add(detail, "%s layer %zu: signature annotation is not base64", where, i);
                        continue;
                }
                const char *key_ok = NULL;
                for (size_t k = 0; k < g->n_keys && !key_ok; k++)
                        if (verify_with_key(g->keys[k], sig, siglen, payload, plen))
                                key_ok = g->key_names[k];
                json_t *pj = json_loadb(payload, plen, 0, NULL);
                const char *named = json_string_value(
                        json_object_get(json_object_get(json_object_get(pj, "critical"), "image"), "docker-manifest-digest"));
                bool match = named && streq(named, digest);
                if (!key_ok)
                        detail_add(detail, "%s layer %zu: signature does not verify against any of the %zu configured public key(s)",
                                   where, i, g->n_keys);
                else if (!match)
                        detail_add(detail, "%s layer %zu: signed payload names %s, not %s", where, i, strna(named), digest);
                else {
                        detail_add(detail, "%s layer %zu: verified with %s", where, i, key_ok);
                        *verified = true;
                }
                json_decref(pj);
        }
}

int gov_signature_check(Governance *g, const char *repo, const char *digest, bool *ret_verified, json_t *detail) {
        int found = 0;
        bool verified = false;
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return -EINVAL;

        /* cosign's tag form: <algo>-<hex>.sig in the same repository */
        _cleanup_free_ char *sigtag = strdup_printf("%s-%s.sig", digest_algorithm_to_string(a), digest_hex(digest));
        _cleanup_(stored_manifest_freep) StoredManifest *sm = NULL;
        if (sigtag && store_manifest_get(g->store, repo, sigtag, &sm) >= 0) {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                char err[256];
                if (manifest_parse(sm->data, sm->size, sm->media_type, &m, err, sizeof(err)) >= 0)
                        check_signature_manifest(g, sigtag, m, digest, &found, &verified, detail);
                else
                        detail_add(detail, "%s: unparsable manifest: %s", sigtag, err);
        }

        /* OCI 1.1 referrers form */
        _cleanup_(json_decrefp) json_t *refs = NULL;
        if (store_referrers(g->store, repo, digest, NULL, &refs) >= 0) {
                size_t i;
                json_t *d;
                json_array_foreach(refs, i, d) {
                        const char *at = json_string_value(json_object_get(d, "artifactType"));
                        const char *rd = json_string_value(json_object_get(d, "digest"));
                        if (!rd || (at && !streq(at, COSIGN_SIMPLESIGNING_TYPE) && !streq(at, MEDIA_TYPE_OCI_EMPTY) &&
                                    !streq(at, MEDIA_TYPE_OCI_CONFIG)))
                                continue;
                        if (sm && streq(rd, sm->digest))
                                continue; /* the .sig manifest also names the subject */
                        _cleanup_(manifest_freep) Manifest *m = NULL;
                        if (store_manifest_parsed(g->store, NULL, rd, &m) < 0)
                                continue;
                        char where[DIGEST_MAX_LEN + 16];
                        snprintf(where, sizeof(where), "referrer %.19s", rd);
                        check_signature_manifest(g, where, m, digest, &found, &verified, detail);
                }
        }
        *ret_verified = verified;
        return found;
}

static bool is_sbom_type(const char *t) {
        static const char *const types[] = {
                "application/vnd.cyclonedx+json", "application/vnd.cyclonedx+xml", "application/vnd.cyclonedx",
                "application/spdx+json", "application/vnd.spdx+json", "text/spdx", "text/spdx+json",
                "application/spdx", "text/spdx+xml", "application/spdx+xml",
                "application/vnd.syft+json",
        };
        if (!t)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(t, types[i]) || (startswith(t, types[i]) && t[strlen(types[i])] == ';'))
                        return true;
        return false;
}

bool gov_has_sbom(Governance *g, const char *repo, const char *digest) {
        DigestAlgorithm a;
        if (digest_parse(digest, &a) < 0)
                return false;
        _cleanup_(json_decrefp) json_t *refs = NULL;
        if (store_referrers(g->store, repo, digest, NULL, &refs) >= 0) {
                size_t i;
                json_t *d;
                json_array_foreach(refs, i, d) {
                        if (is_sbom_type(json_string_value(json_object_get(d, "artifactType"))))
                                return true;
                        const char *rd = json_string_value(json_object_get(d, "digest"));
                        _cleanup_(manifest_freep) Manifest *m = NULL;
                        if (!rd || store_manifest_parsed(g->store, NULL, rd, &m) < 0)
                                continue;
                        for (size_t l = 0; l < m->n_layers; l++)
                                if (is_sbom_type(m->layers[l].media_type))
                                        return true;
                }
        }
        /* cosign attach sbom: <algo>-<hex>.sbom */
        _cleanup_free_ char *tag = strdup_printf("%s-%s.sbom", digest_algorithm_to_string(a), digest_hex(digest));
        TagInfo ti;
        return tag && store_tag_get(g->store, repo, tag, &ti) >= 0;
}

static void collect_labels(Governance *g, const char *digest, json_t *have, unsigned depth) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        if (depth > 4 || store_manifest_parsed(g->store, NULL, digest, &m) < 0)
                return;
        if (json_is_object(m->annotations))
                json_object_update(have, m->annotations);
        if (manifest_kind_is_index(m->kind)) {
                for (size_t i = 0; i < m->n_manifests; i++)
                        collect_labels(g, m->manifests[i].digest, have, depth + 1);
                return;
        }
        if (!m->has_config)
                return;
        _cleanup_free_ char *cfg = NULL;
        size_t len;
        if (read_blob(g, m->config.digest, 4U << 20, &cfg, &len) < 0)
                return;
        _cleanup_(json_decrefp) json_t *cj = json_loadb(cfg, len, 0, NULL);
        json_t *labels = json_object_get(json_object_get(cj, "config"), "Labels");
        if (json_is_object(labels))
                json_object_update(have, labels);
}

static const char *const default_labels[] = {
        "org.opencontainers.image.version", "org.opencontainers.image.revision",
        "org.opencontainers.image.source", "org.opencontainers.image.created",
};

int gov_missing_labels(Governance *g, const char *digest, json_t *required, json_t **ret_missing) {
        _cleanup_(json_decrefp) json_t *have = json_object();
        collect_labels(g, digest, have, 0);
        json_t *missing = json_array();
        if (json_is_array(required)) {
                size_t i;
                json_t *v;
                json_array_foreach(required, i, v) {
                        const char *k = json_string_value(v);
                        json_t *hv = k ? json_object_get(have, k) : NULL;
                        if (k && (!json_is_string(hv) || !*json_string_value(hv)))
                                json_array_append_new(missing, json_string(k));
                }
        } else
                for (size_t i = 0; i < ELEMENTSOF(default_labels); i++) {
                        json_t *hv = json_object_get(have, default_labels[i]);
                        if (!json_is_string(hv) || !*json_string_value(hv))
                                json_array_append_new(missing, json_string(default_labels[i]));
                }
        *ret_missing = missing;
        return (int) json_array_size(missing);
}

/* ------------------------------------------------------------------ gates */

static json_t *gates_for(Governance *g, const ChannelRef *to) {
        char name[64];
        channel_ref_format(to, name, sizeof(name));
        json_t *o = json_object_get(g->gates, name);
        if (!o && streq(to->pointer, CHANNEL_CANDIDATE))
                o = json_object_get(g->gates, to->env);
        return json_is_object(o) ? o : NULL;
}

static void gate_fail(GateReport *rep, const char *gate, json_t *detail, const char *fmt, ...) _printf_(4, 5);
static void gate_fail(GateReport *rep, const char *gate, json_t *detail, const char *fmt, ...) {
        char buf[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_t *e = json_pack("{s:s, s:s}", "gate", gate, "reason", buf);
        if (detail)
                json_object_set(e, "detail", detail);
        json_array_append_new(rep->failed, e);
}

static bool gate_enabled(json_t *gates, const char *key) {
        json_t *v = gates ? json_object_get(gates, key) : NULL;
        if (!v || json_is_false(v) || json_is_null(v))
                return false;
        return true;
}

/* When did digest arrive at pointer `from` (the latest history entry that set it there)? */
static int64_t arrived_at(Governance *g, const char *svc, const char *app_repo, const ChannelRef *from,
                          const char *digest) {
        if (from->source) {
                _cleanup_(stored_manifest_freep) StoredManifest *m = NULL;
                if (store_manifest_get(g->store, app_repo, digest, &m) < 0)
                        return 0;
                return m->pushed;
        }
        json_t *h = channel_history_digests(g, svc, from);
        for (size_t i = json_array_size(h); i > 0; i--) {
                json_t *e = json_array_get(h, i - 1);
                if (streq_ptr(json_string_value(json_array_get(e, 0)), digest))
                        return json_integer_value(json_array_get(e, 1));
        }
        return 0;
}

int gov_check_gates(Governance *g, const char *app_repo, const char *svc, const ChannelRef *from,
                    const ChannelRef *to, const char *digest, GateReport *rep) {
        rep->failed = json_array();
        rep->passed = json_array();
        json_t *gates = gates_for(g, to);

        /* not_blocked is on unless a target explicitly turns it off */
        json_t *nb = gates ? json_object_get(gates, "not_blocked") : NULL;
        if (!nb || json_is_true(nb)) {
                char reason[512], bd[DIGEST_MAX_LEN];
                if (gov_check_blocked_closure(g, digest, reason, sizeof(reason), bd) < 0)
                        gate_fail(rep, "not_blocked", NULL, "%s", reason);
                else
                        json_array_append_new(rep->passed, json_string("not_blocked"));
        }

        if (gate_enabled(gates, "signature")) {
                json_t *detail = json_array();
                bool verified = false;
                int found = gov_signature_check(g, app_repo, digest, &verified, detail);
                if (g->n_keys == 0)
                        gate_fail(rep, "signature", detail, "no public key is configured (channels.public_keys), so no signature can verify");
                else if (found <= 0)
                        gate_fail(rep, "signature", detail,
                                  "no cosign signature of %s in %s (neither the sha256-<hex>.sig tag nor a referrer of type %s)",
                                  digest, app_repo, COSIGN_SIMPLESIGNING_TYPE);
                else if (!verified) {
                        _cleanup_free_ char *s = json_dumps(detail, JSON_COMPACT);
                        gate_fail(rep, "signature", detail, "%d signature(s) found, none verifies for %s: %s", found, digest,
                                  strna(s));
                } else
                        json_array_append_new(rep->passed, json_string("signature"));
                json_decref(detail);
        }

        if (gate_enabled(gates, "sbom")) {
                if (!gov_has_sbom(g, app_repo, digest))
                        gate_fail(rep, "sbom", NULL,
                                  "no SBOM referrer of %s in %s (artifactType application/vnd.cyclonedx+json, "
                                  "application/spdx+json or their XML/text variants)", digest, app_repo);
                else
                        json_array_append_new(rep->passed, json_string("sbom"));
        }

        if (gate_enabled(gates, "labels")) {
                json_t *missing = NULL;
                int n = gov_missing_labels(g, digest, json_object_get(gates, "labels"), &missing);
                if (n > 0) {
                        _cleanup_free_ char *s = json_dumps(missing, JSON_COMPACT);
                        gate_fail(rep, "labels", missing, "missing required labels/annotations on %s: %s", digest, strna(s));
                } else
                        json_array_append_new(rep->passed, json_string("labels"));
                json_decref(missing);
        }

        json_t *soak = gates ? json_object_get(gates, "soak") : NULL;
        int64_t soak_ns = 0;
        if (json_is_string(soak))
                (void) parse_duration_ns(json_string_value(soak), &soak_ns);
        else if (json_is_integer(soak))
                soak_ns = json_integer_value(soak) * (int64_t) NSEC_PER_SEC;
        if (soak_ns > 0) {
                int64_t since = arrived_at(g, svc, app_repo, from, digest);
                int64_t now = clock_now_ns();
                char fromname[64], have[32], need[32], ready[64];
                channel_ref_format(from, fromname, sizeof(fromname));
                format_duration(need, sizeof(need), soak_ns);
                if (since <= 0)
                        gate_fail(rep, "soak", NULL, "%s has no recorded arrival at %s; it must soak there for %s", digest,
                                  fromname, need);
                else if (now - since < soak_ns) {
                        format_duration(have, sizeof(have), now - since);
                        format_timestamp(ready, sizeof(ready), since + soak_ns);
                        gate_fail(rep, "soak", NULL, "soaked %s at %s, needs %s (ready at %s)", have, fromname, need, ready);
                } else
                        json_array_append_new(rep->passed, json_string("soak"));
        }
        return (int) json_array_size(rep->failed);
}
