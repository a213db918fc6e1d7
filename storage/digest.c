/* SPDX-License-Identifier: MIT */
/* Digests: the OCI digest grammar and streaming sha256/sha512 on OpenSSL EVP. */

#include <openssl/evp.h>

#include "storage/storage.h"
#include "util.h"

#define DIGEST_FD_BUFFER_SIZE (1U << 20)

static const char *const algorithm_names[_DIGEST_ALGORITHM_MAX] = {
        [DIGEST_SHA256] = "sha256",
        [DIGEST_SHA512] = "sha512",
};

static const size_t algorithm_hex_len[_DIGEST_ALGORITHM_MAX] = {
        [DIGEST_SHA256] = 64,
        [DIGEST_SHA512] = 128,
};

const char *digest_algorithm_to_string(DigestAlgorithm a) {
        if (a < 0 || a >= _DIGEST_ALGORITHM_MAX)
                return NULL;
        return algorithm_names[a];
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_encoded_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' ||
               c == '_' || c == '-';
}

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* OCI image-spec descriptor.md:
 *   digest              ::= algorithm ":" encoded
 *   algorithm           ::= algorithm-component (algorithm-separator algorithm-component)*
 *   algorithm-component ::= [a-z0-9]+
 *   algorithm-separator ::= [+._-]
 *   encoded             ::= [a-zA-Z0-9=_-]+ */
int digest_parse(const char *s, DigestAlgorithm *ret_algo) {
        if (!s)
                return -EINVAL;

        const char *p = s;
        for (;;) {
                const char *start = p;
                while (is_lower_alnum(*p))
                        p++;
                if (p == start) /* empty component: leading, doubled or trailing separator */
                        return -EINVAL;
                if (*p == ':')
                        break;
                if (*p != '+' && *p != '.' && *p != '_' && *p != '-')
                        return -EINVAL;
                p++;
        }
        size_t algo_len = (size_t) (p - s);
        const char *encoded = p + 1;

        size_t enc_len = 0;
        for (const char *q = encoded; *q; q++, enc_len++)
                if (!is_encoded_char(*q))
                        return -EINVAL;
        if (enc_len == 0)
                return -EINVAL;

        for (DigestAlgorithm a = 0; a < _DIGEST_ALGORITHM_MAX; a++) {
                if (strlen(algorithm_names[a]) != algo_len || strncmp(s, algorithm_names[a], algo_len) != 0)
                        continue;
                /* registered algorithms: exactly the right number of lower-case hex digits */
                if (enc_len != algorithm_hex_len[a])
                        return -EINVAL;
                for (size_t i = 0; i < enc_len; i++)
                        if (!is_lower_hex(encoded[i]))
                                return -EINVAL;
                if (ret_algo)
                        *ret_algo = a;
                return 0;
        }
        return -EOPNOTSUPP;
}

const char *digest_hex(const char *digest) {
        if (!digest)
                return NULL;
        const char *colon = strchr(digest, ':');
        return colon ? colon + 1 : NULL;
}

struct Hasher {
        DigestAlgorithm algo;
        EVP_MD_CTX *ctx;
        bool finalized;
};

static const EVP_MD *algorithm_md(DigestAlgorithm a) {
        switch (a) {
        case DIGEST_SHA256:
                return EVP_sha256();
        case DIGEST_SHA512:
                return EVP_sha512();
        default:
                return NULL;
        }
}

int hasher_new(DigestAlgorithm a, Hasher **ret) {
        const EVP_MD *md = algorithm_md(a);
        if (!md)
                return -EOPNOTSUPP;
        Hasher *h = calloc(1, sizeof(Hasher));
        if (!h)
                return -ENOMEM;
        h->algo = a;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
                hasher_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

int hasher_update(Hasher *h, const void *data, size_t n) {
        if (!h || h->finalized)
                return -EINVAL;
        if (n == 0)
                return 0;
        if (EVP_DigestUpdate(h->ctx, data, n) != 1)
                return -EIO;
        return 0;
}

int hasher_final(Hasher *h, char out[DIGEST_MAX_LEN]) {
        if (!h || h->finalized)
                return -EINVAL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        h->finalized = true;
        if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1)
                return -EIO;
        size_t name_len = strlen(algorithm_names[h->algo]);
        memcpy(out, algorithm_names[h->algo], name_len);
        out[name_len] = ':';
        hex_encode(md, len, out + name_len + 1);
        return 0;
}

Hasher *hasher_free(Hasher *h) {
        if (!h)
                return NULL;
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
}

int digest_buffer(DigestAlgorithm a, const void *data, size_t n, char out[DIGEST_MAX_LEN]) {
        _cleanup_(hasher_freep) Hasher *h = NULL;
        int r = hasher_new(a, &h);
        if (r < 0)
                return r;
        r = hasher_update(h, data, n);
        if (r < 0)
                return r;
        return hasher_final(h, out);
}

int digest_fd(DigestAlgorithm a, int fd, char out[DIGEST_MAX_LEN], uint64_t *ret_size) {
        if (fd < 0)
                return -EBADF;
        _cleanup_(hasher_freep) Hasher *h = NULL;
        int r = hasher_new(a, &h);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(DIGEST_FD_BUFFER_SIZE);
        if (!buf)
                return -ENOMEM;

        /* pread from 0: the caller's file position does not matter and is left alone */
        uint64_t off = 0;
        for (;;) {
                ssize_t k = loop_pread(fd, buf, DIGEST_FD_BUFFER_SIZE, (off_t) off);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        break;
                r = hasher_update(h, buf, (size_t) k);
                if (r < 0)
                        return r;
                off += (uint64_t) k;
        }
        r = hasher_final(h, out);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = off;
        return 0;
}
