/* SPDX-License-Identifier: MIT */
/* manifest_parse on arbitrary bodies; the first byte picks the request Content-Type. */
#include "storage/storage.h"

static const char *const content_types[] = {
        NULL,
        "",
        MEDIA_TYPE_OCI_MANIFEST,
        MEDIA_TYPE_OCI_INDEX,
        MEDIA_TYPE_DOCKER_MANIFEST,
        MEDIA_TYPE_DOCKER_LIST,
        "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
        "application/json",
};

static void check_descriptor(const Descriptor *d) {
        if (!d->media_type || !d->digest || digest_parse(d->digest, NULL) != 0)
                abort();
        if ((d->platform_os == NULL) != (d->platform_arch == NULL))
                abort();
        if (d->platform_variant && !d->platform_os)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *ct = content_types[data[0] % ELEMENTSOF(content_types)];
        char err[256];
        Manifest *m = NULL;
        int r = manifest_parse(data + 1, size - 1, ct, &m, err, sizeof(err));
        if (r < 0) {
                if (m || err[0] == 0 || (r != -EINVAL && r != -EFBIG && r != -ENOMEM))
                        abort();
                return 0;
        }
        if (!m || !m->media_type || m->kind < 0 || m->kind >= _MANIFEST_KIND_MAX)
                abort();
        if (manifest_kind_is_index(m->kind)) {
                if (m->has_config || m->n_layers)
                        abort();
                for (size_t i = 0; i < m->n_manifests; i++)
                        check_descriptor(&m->manifests[i]);
        } else {
                if (!m->has_config || m->n_manifests)
                        abort();
                check_descriptor(&m->config);
                for (size_t i = 0; i < m->n_layers; i++)
                        check_descriptor(&m->layers[i]);
        }
        if (m->has_subject)
                check_descriptor(&m->subject);
        manifest_free(m);
        return 0;
}
