/* SPDX-License-Identifier: MIT */
/* Manifest parsing and validation: OCI image manifest and index (incl. artifacts with
 * artifactType/subject), Docker schema 2 manifest and manifest list. Only structure is checked
 * here; whether the referenced blobs exist is the store's business. */

#include <stdarg.h>
#include <strings.h>

#include "storage/storage.h"

#define MEDIA_TYPE_DOCKER_FOREIGN_LAYER "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

static const char *const manifest_kind_media_types[_MANIFEST_KIND_MAX] = {
        [MANIFEST_OCI_IMAGE] = MEDIA_TYPE_OCI_MANIFEST,
        [MANIFEST_OCI_INDEX] = MEDIA_TYPE_OCI_INDEX,
        [MANIFEST_DOCKER_V2] = MEDIA_TYPE_DOCKER_MANIFEST,
        [MANIFEST_DOCKER_LIST] = MEDIA_TYPE_DOCKER_LIST,
};

bool manifest_kind_is_index(ManifestKind k) {
        return k == MANIFEST_OCI_INDEX || k == MANIFEST_DOCKER_LIST;
}

static ManifestKind manifest_kind_from_media_type(const char *mt) {
        for (ManifestKind k = 0; k < _MANIFEST_KIND_MAX; k++)
                if (strcasecmp(mt, manifest_kind_media_types[k]) == 0)
                        return k;
        return _MANIFEST_KIND_INVALID;
}

static bool manifest_kind_is_oci(ManifestKind k) {
        return k == MANIFEST_OCI_IMAGE || k == MANIFEST_OCI_INDEX;
}

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* RFC 6838 restricted-name: [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126} */
static size_t restricted_name_len(const char *s) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
                return 0;
        size_t n = 1;
        for (;; n++) {
                char c = s[n];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
                    c == '#' || c == '$' || c == '&' || c == '^' || c == '_' || c == '.' || c == '+' || c == '-')
                        continue;
                break;
        }
        return n <= 127 ? n : 0;
}

/* "type/subtype" per RFC 6838, without parameters (descriptors carry bare media types). */
static bool media_type_is_valid(const char *s) {
        size_t a = restricted_name_len(s);
        if (a == 0 || s[a] != '/')
                return false;
        size_t b = restricted_name_len(s + a + 1);
        return b > 0 && s[a + 1 + b] == 0;
}

/* Content-Type header value without parameters and surrounding blanks, into buf. Returns 1,
 * 0 if nothing is left (treated as no Content-Type), -E2BIG if it does not fit. */
static int content_type_bare(const char *ct, char *buf, size_t n) {
        while (*ct == ' ' || *ct == '\t')
                ct++;
        size_t l = strcspn(ct, ";");
        while (l > 0 && (ct[l - 1] == ' ' || ct[l - 1] == '\t'))
                l--;
        if (l == 0)
                return 0;
        if (l >= n)
                return -E2BIG;
        memcpy(buf, ct, l);
        buf[l] = 0;
        return 1;
}

static void descriptor_done(Descriptor *d) {
        free(d->media_type);
        free(d->digest);
        free(d->artifact_type);
        free(d->platform_os);
        free(d->platform_arch);
        free(d->platform_variant);
        json_decref(d->annotations);
        *d = (Descriptor) {};
}

Manifest *manifest_free(Manifest *m) {
        if (!m)
                return NULL;
        free(m->media_type);
        free(m->artifact_type);
        descriptor_done(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                descriptor_done(&m->layers[i]);
        free(m->layers);
        for (size_t i = 0; i < m->n_manifests; i++)
                descriptor_done(&m->manifests[i]);
        free(m->manifests);
        descriptor_done(&m->subject);
        json_decref(m->annotations);
        free(m);
        return NULL;
}

static int dup_string(const char *s, char **ret) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

/* Optional string member; *ret stays NULL when absent. */
static int get_optional_string(json_t *o, const char *key, const char *where, char **ret, char *err, size_t errlen) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (!json_is_string(v))
                return fail(err, errlen, "%s.%s: expected a string", where, key);
        return dup_string(json_string_value(v), ret);
}

static int check_annotations(json_t *o, const char *where, json_t **ret, char *err, size_t errlen) {
        json_t *a = json_object_get(o, "annotations");
        if (!a)
                return 0;
        if (!json_is_object(a))
                return fail(err, errlen, "%s.annotations: expected an object of strings", where);
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v)
                if (!json_is_string(v))
                        return fail(err, errlen, "%s.annotations[\"%.64s\"]: expected a string", where, k);
        if (ret)
                *ret = json_incref(a);
        return 0;
}

static int parse_platform(json_t *o, Descriptor *d, const char *where, char *err, size_t errlen) {
        json_t *p = json_object_get(o, "platform");
        if (!p)
                return 0;
        char pwhere[96];
        snprintf(pwhere, sizeof(pwhere), "%s.platform", where);
        if (!json_is_object(p))
                return fail(err, errlen, "%s: expected an object", pwhere);
        /* image-spec image-index.md: architecture and os are REQUIRED in a platform */
        json_t *arch = json_object_get(p, "architecture"), *os = json_object_get(p, "os");
        if (!json_is_string(arch))
                return fail(err, errlen, "%s.architecture: expected a string", pwhere);
        if (!json_is_string(os))
                return fail(err, errlen, "%s.os: expected a string", pwhere);
        json_t *osv = json_object_get(p, "os.version");
        if (osv && !json_is_string(osv))
                return fail(err, errlen, "%s[\"os.version\"]: expected a string", pwhere);
        const char *arrays[] = { "os.features", "features" };
        for (size_t i = 0; i < ELEMENTSOF(arrays); i++) {
                json_t *a = json_object_get(p, arrays[i]);
                if (!a)
                        continue;
                size_t j;
                json_t *e;
                if (!json_is_array(a))
                        return fail(err, errlen, "%s[\"%s\"]: expected an array of strings", pwhere, arrays[i]);
                json_array_foreach(a, j, e)
                        if (!json_is_string(e))
                                return fail(err, errlen, "%s[\"%s\"][%zu]: expected a string", pwhere, arrays[i], j);
        }
        int r = dup_string(json_string_value(os), &d->platform_os);
        if (r < 0)
                return r;
        r = dup_string(json_string_value(arch), &d->platform_arch);
        if (r < 0)
                return r;
        return get_optional_string(p, "variant", pwhere, &d->platform_variant, err, errlen);
}

static int parse_descriptor(json_t *o, const char *where, bool with_platform, Descriptor *d, char *err, size_t errlen) {
        if (!json_is_object(o))
                return fail(err, errlen, "%s: expected a descriptor object", where);

        json_t *mt = json_object_get(o, "mediaType");
        if (!mt)
                return fail(err, errlen, "%s.mediaType: missing", where);
        if (!json_is_string(mt) || !media_type_is_valid(json_string_value(mt)))
                return fail(err, errlen, "%s.mediaType: expected a media type like \"type/subtype\"", where);

        json_t *dg = json_object_get(o, "digest");
        if (!dg)
                return fail(err, errlen, "%s.digest: missing", where);
        if (!json_is_string(dg))
                return fail(err, errlen, "%s.digest: expected a string", where);
        int r = digest_parse(json_string_value(dg), NULL);
        if (r == -EOPNOTSUPP)
                return fail(err, errlen, "%s.digest: unsupported digest algorithm in \"%.80s\" (sha256 and sha512 are supported)",
                            where, json_string_value(dg));
        if (r < 0)
                return fail(err, errlen, "%s.digest: invalid digest \"%.80s\"", where, json_string_value(dg));

        json_t *sz = json_object_get(o, "size");
        if (!sz)
                return fail(err, errlen, "%s.size: missing", where);
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return fail(err, errlen, "%s.size: expected a non-negative integer", where);

        json_t *urls = json_object_get(o, "urls");
        if (urls) {
                size_t i;
                json_t *u;
                if (!json_is_array(urls))
                        return fail(err, errlen, "%s.urls: expected an array of strings", where);
                json_array_foreach(urls, i, u)
                        if (!json_is_string(u))
                                return fail(err, errlen, "%s.urls[%zu]: expected a string", where, i);
        }
        json_t *data = json_object_get(o, "data");
        if (data && !json_is_string(data))
                return fail(err, errlen, "%s.data: expected a base64 string", where);

        json_t *at = json_object_get(o, "artifactType");
        if (at && (!json_is_string(at) || !media_type_is_valid(json_string_value(at))))
                return fail(err, errlen, "%s.artifactType: expected a media type like \"type/subtype\"", where);

        r = check_annotations(o, where, &d->annotations, err, errlen);
        if (r < 0)
                return r;
        if (with_platform) {
                r = parse_platform(o, d, where, err, errlen);
                if (r < 0)
                        return r;
        }
        if (at) {
                r = dup_string(json_string_value(at), &d->artifact_type);
                if (r < 0)
                        return r;
        }
        r = dup_string(json_string_value(mt), &d->media_type);
        if (r < 0)
                return r;
        r = dup_string(json_string_value(dg), &d->digest);
        if (r < 0)
                return r;
        d->size = (uint64_t) json_integer_value(sz);
        return 0;
}

static int parse_descriptor_array(json_t *root, const char *key, bool with_platform, Descriptor **ret, size_t *ret_n,
                                  char *err, size_t errlen) {
        json_t *a = json_object_get(root, key);
        if (!a)
                return fail(err, errlen, "%s: missing", key);
        if (!json_is_array(a))
                return fail(err, errlen, "%s: expected an array of descriptors", key);
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        Descriptor *ds = calloc(n, sizeof(Descriptor));
        if (!ds)
                return -ENOMEM;
        /* hand the array over first so that manifest_free() cleans up a partial parse */
        *ret = ds;
        for (size_t i = 0; i < n; i++) {
                char where[64];
                snprintf(where, sizeof(where), "%s[%zu]", key, i);
                *ret_n = i + 1;
                int r = parse_descriptor(json_array_get(a, i), where, with_platform, &ds[i], err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_body(json_t *root, const char *content_type, Manifest *m, char *err, size_t errlen) {
        int r;

        json_t *sv = json_object_get(root, "schemaVersion");
        if (!sv)
                return fail(err, errlen, "schemaVersion: missing");
        if (!json_is_integer(sv) || json_integer_value(sv) != 2)
                return fail(err, errlen, "schemaVersion: expected 2");

        char ct[256];
        bool have_ct = false;
        if (content_type) {
                r = content_type_bare(content_type, ct, sizeof(ct));
                if (r < 0)
                        return fail(err, errlen, "Content-Type: not a manifest media type");
                have_ct = r > 0;
        }

        json_t *mt = json_object_get(root, "mediaType");
        const char *effective;
        if (mt) {
                if (!json_is_string(mt))
                        return fail(err, errlen, "mediaType: expected a string");
                effective = json_string_value(mt);
                if (manifest_kind_from_media_type(effective) < 0)
                        return fail(err, errlen, "mediaType: unsupported manifest media type \"%.100s\"", effective);
                if (have_ct && strcasecmp(ct, effective) != 0)
                        return fail(err, errlen, "Content-Type \"%.100s\" does not match the manifest's mediaType \"%.100s\"", ct,
                                    effective);
        } else if (have_ct) {
                effective = ct;
                if (manifest_kind_from_media_type(effective) < 0)
                        return fail(err, errlen, "Content-Type: unsupported manifest media type \"%.100s\"", effective);
        } else if (json_object_get(root, "manifests"))
                effective = MEDIA_TYPE_OCI_INDEX;
        else if (json_object_get(root, "config"))
                effective = MEDIA_TYPE_OCI_MANIFEST;
        else
                return fail(err, errlen, "mediaType: missing, and neither \"config\" nor \"manifests\" says what this is");

        m->kind = manifest_kind_from_media_type(effective);
        /* the canonical spelling, whatever the case of the header */
        r = dup_string(manifest_kind_media_types[m->kind], &m->media_type);
        if (r < 0)
                return r;

        bool index = manifest_kind_is_index(m->kind);
        /* a body that could be read as both an image and an index is refused (ambiguity
         * between what was validated and what a client later interprets) */
        if (index && (json_object_get(root, "config") || json_object_get(root, "layers")))
                return fail(err, errlen, "%s: an index must not have \"config\" or \"layers\"", m->media_type);
        if (!index && json_object_get(root, "manifests"))
                return fail(err, errlen, "%s: an image manifest must not have \"manifests\"", m->media_type);

        if (index) {
                r = parse_descriptor_array(root, "manifests", true, &m->manifests, &m->n_manifests, err, errlen);
                if (r < 0)
                        return r;
        } else {
                json_t *cfg = json_object_get(root, "config");
                if (!cfg)
                        return fail(err, errlen, "config: missing");
                r = parse_descriptor(cfg, "config", false, &m->config, err, errlen);
                if (r < 0)
                        return r;
                m->has_config = true;
                r = parse_descriptor_array(root, "layers", false, &m->layers, &m->n_layers, err, errlen);
                if (r < 0)
                        return r;
        }

        r = check_annotations(root, "manifest", &m->annotations, err, errlen);
        if (r < 0)
                return r;

        if (!manifest_kind_is_oci(m->kind))
                return 0;

        /* OCI 1.1 artifacts: artifactType and subject */
        json_t *at = json_object_get(root, "artifactType");
        if (at) {
                if (!json_is_string(at) || !media_type_is_valid(json_string_value(at)))
                        return fail(err, errlen, "artifactType: expected a media type like \"type/subtype\"");
                r = dup_string(json_string_value(at), &m->artifact_type);
                if (r < 0)
                        return r;
        } else if (m->kind == MANIFEST_OCI_IMAGE) {
                /* distribution-spec (referrers): "If the artifactType is empty or missing in the
                 * image manifest, the value of artifactType MUST be set to the config descriptor
                 * mediaType value"; an index without artifactType has none. */
                r = dup_string(m->config.media_type, &m->artifact_type);
                if (r < 0)
                        return r;
        }

        json_t *subject = json_object_get(root, "subject");
        if (subject) {
                r = parse_descriptor(subject, "subject", false, &m->subject, err, errlen);
                if (r < 0)
                        return r;
                m->has_subject = true;
        }
        return 0;
}

int manifest_parse(const void *data, size_t len, const char *content_type, Manifest **ret, char *err, size_t errlen) {
        if (err && errlen > 0)
                err[0] = 0;
        if (len > MANIFEST_SIZE_MAX) {
                fail(err, errlen, "manifest of %zu bytes is larger than the limit of %u bytes", len, MANIFEST_SIZE_MAX);
                return -EFBIG;
        }
        if (!data || len == 0)
                return fail(err, errlen, "empty manifest");

        json_error_t je;
        _cleanup_(json_decrefp) json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return fail(err, errlen, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        if (!json_is_object(root))
                return fail(err, errlen, "a manifest must be a JSON object");

        _cleanup_(manifest_freep) Manifest *m = calloc(1, sizeof(Manifest));
        if (!m)
                return -ENOMEM;
        int r = parse_body(root, content_type, m, err, errlen);
        if (r < 0) {
                if (r == -ENOMEM)
                        fail(err, errlen, "out of memory");
                return r;
        }
        if (ret)
                *ret = steal_pointer(&m);
        return 0;
}
