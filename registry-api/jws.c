/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "registry-api/jws.h"

/* ES256: R and S are 32 bytes each (RFC 7518 §3.4); Ed25519 signatures are 64 bytes too. */
#define JWS_SIG_LEN 64
#define ES256_HALF 32

struct JwsKey {
        JwsAlgorithm alg;
        EVP_PKEY *pkey;
        char kid[JWS_KID_LEN + 1];
};

static const char *const algorithm_names[_JWS_ALG_MAX] = {
        [JWS_ALG_EDDSA] = "EdDSA",
        [JWS_ALG_ES256] = "ES256",
};

const char *jws_algorithm_to_string(JwsAlgorithm a) {
        if (a < 0 || a >= _JWS_ALG_MAX)
                return NULL;
        return algorithm_names[a];
}

static void EVP_PKEY_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}
static void EVP_MD_CTX_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
}
static void BIO_freep(BIO **p) {
        BIO_free(*p);
}
static void ECDSA_SIG_freep(ECDSA_SIG **p) {
        ECDSA_SIG_free(*p);
}
static void OPENSSL_freep(void *p) {
        OPENSSL_free(*(void **) p);
}

/* ---- base64url ---------------------------------------------------------------------------- */

/* Branch-free on the data (a bearer token is a secret): every byte costs the same. Masks are
 * 0xff when the comparison holds, 0 otherwise. */
static unsigned ct_lt(unsigned a, unsigned b) { /* a, b < 256 */
        return ((a - b) >> 8) & 0xffU;
}
static unsigned ct_in(unsigned c, unsigned lo, unsigned hi) {
        return ct_lt(c, hi + 1) & ~ct_lt(c, lo) & 0xffU;
}
static unsigned ct_eq(unsigned a, unsigned b) {
        return ct_in(a ^ b, 0, 0);
}

static char b64url_char(unsigned v) { /* v < 64 */
        unsigned c = (ct_lt(v, 26) & (v + 'A')) |
                     (ct_in(v, 26, 51) & (v - 26 + 'a')) |
                     (ct_in(v, 52, 61) & (v - 52 + '0')) |
                     (ct_eq(v, 62) & '-') |
                     (ct_eq(v, 63) & '_');
        return (char) c;
}

/* The 6-bit value of c, or 0x100 if c is not in the alphabet. */
static unsigned b64url_value(unsigned char ch) {
        unsigned c = ch;
        unsigned upper = ct_in(c, 'A', 'Z'), lower = ct_in(c, 'a', 'z'), digit = ct_in(c, '0', '9');
        unsigned dash = ct_eq(c, '-'), under = ct_eq(c, '_');
        unsigned v = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
                     (dash & 62) | (under & 63);
        unsigned valid = upper | lower | digit | dash | under;
        return (v & 0x3fU) | ((~valid & 0xffU) << 1 & 0x100U);
}

int base64url_encode(const void *data, size_t n, char **ret) {
        const uint8_t *p = data;
        if (n > (SIZE_MAX - 4) / 4 * 3)
                return -ENOMEM;
        char *out = malloc(n / 3 * 4 + 4 + 1), *o = out;
        if (!out)
                return -ENOMEM;
        size_t i = 0;
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
                *o++ = b64url_char(v >> 18);
                *o++ = b64url_char((v >> 12) & 63);
                *o++ = b64url_char((v >> 6) & 63);
                *o++ = b64url_char(v & 63);
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t) p[i] << 16;
                *o++ = b64url_char(v >> 18);
                *o++ = b64url_char((v >> 12) & 63);
        } else if (n - i == 2) {
                uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8;
                *o++ = b64url_char(v >> 18);
                *o++ = b64url_char((v >> 12) & 63);
                *o++ = b64url_char((v >> 6) & 63);
        }
        *o = 0;
        *ret = out;
        return 0;
}

int base64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        if (len % 4 == 1) /* one leftover character carries 6 bits: never a whole byte */
                return -EINVAL;
        size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
        _cleanup_free_ uint8_t *out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        unsigned bad = 0;
        uint32_t acc = 0;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned v = b64url_value((unsigned char) s[i]);
                bad |= v;
                acc = acc << 6 | (v & 63);
                if (i % 4 == 3) {
                        out[o++] = (uint8_t) (acc >> 16);
                        out[o++] = (uint8_t) (acc >> 8);
                        out[o++] = (uint8_t) acc;
                        acc = 0;
                }
        }
        /* the unused low bits of the last character must be zero: one encoding per input */
        if (len % 4 == 2) {
                out[o++] = (uint8_t) (acc >> 4);
                bad |= (acc & 0xfU) << 8;
        } else if (len % 4 == 3) {
                out[o++] = (uint8_t) (acc >> 10);
                out[o++] = (uint8_t) (acc >> 2);
                bad |= (acc & 0x3U) << 8;
        }
        if (bad >> 8)
                return -EINVAL;
        out[o] = 0;
        *ret = steal_pointer(&out);
        *ret_len = o;
        return 0;
}

/* ---- keys --------------------------------------------------------------------------------- */

static _printf_(3, 4) int key_error(char *err, size_t errlen, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        ERR_clear_error();
        return -EINVAL;
}

static int key_compute_id(EVP_PKEY *pkey, char kid[static JWS_KID_LEN + 1]) {
        _cleanup_(OPENSSL_freep) unsigned char *der = NULL;
        int n = i2d_PUBKEY(pkey, &der);
        if (n <= 0)
                return -EIO;
        unsigned char md[32];
        if (!EVP_Digest(der, (size_t) n, md, NULL, EVP_sha256(), NULL))
                return -EIO;
        hex_encode(md, JWS_KID_LEN / 2, kid);
        return 0;
}

/* Takes pkey over: Ed25519 or P-256 only, named in err otherwise. */
static int key_new(EVP_PKEY *pkey_in, JwsKey **ret, char *err, size_t errlen) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = pkey_in;
        JwsAlgorithm alg;
        int id = EVP_PKEY_get_base_id(pkey);
        if (id == EVP_PKEY_ED25519)
                alg = JWS_ALG_EDDSA;
        else if (id == EVP_PKEY_EC) {
                char group[64] = "";
                if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) ||
                    OBJ_txt2nid(group) != NID_X9_62_prime256v1)
                        return key_error(err, errlen, "EC key on curve %s refused: only P-256 (prime256v1) is accepted",
                                         group[0] ? group : "(unnamed)");
                alg = JWS_ALG_ES256;
        } else if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS)
                return key_error(err, errlen, "RSA key refused: token keys are Ed25519 or ECDSA P-256 "
                                 "(openssl genpkey -algorithm ed25519)");
        else {
                const char *name = OBJ_nid2sn(id);
                return key_error(err, errlen, "%s key refused: token keys are Ed25519 or ECDSA P-256",
                                 id != NID_undef && name ? name : "unknown");
        }

        _cleanup_(jws_key_freep) JwsKey *k = calloc(1, sizeof(JwsKey));
        if (!k)
                return -ENOMEM;
        k->alg = alg;
        k->pkey = steal_pointer(&pkey);
        int r = key_compute_id(k->pkey, k->kid);
        if (r < 0)
                return r;
        *ret = steal_pointer(&k);
        return 0;
}

/* Never prompt on a terminal for a passphrase: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
        return -1;
}

int jws_key_from_pem(const char *pem, size_t len, JwsKey **ret, char *err, size_t errlen) {
        if (len > INT_MAX)
                return key_error(err, errlen, "PEM text too large");
        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        if (!pkey) {
                unsigned long e = ERR_peek_last_error();
                if (ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || ERR_GET_REASON(e) == PEM_R_PROBLEMS_GETTING_PASSWORD)
                        return key_error(err, errlen, "encrypted private key refused: store it unencrypted, mode 0600");
                return key_error(err, errlen, "no PEM private key (PKCS#8 \"PRIVATE KEY\" or \"EC PRIVATE KEY\")");
        }
        ERR_clear_error(); /* the decoders tried before the right one leave errors behind */
        return key_new(pkey, ret, err, errlen);
}

int jws_key_load(const char *path, JwsKey **ret, char *err, size_t errlen) {
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;
        int r = read_full_file(path, 1024 * 1024, &pem, &len);
        if (r < 0) {
                if (err && errlen > 0)
                        snprintf(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        char msg[256];
        r = jws_key_from_pem(pem, len, ret, msg, sizeof(msg));
        OPENSSL_cleanse(pem, len);
        if (r < 0 && err && errlen > 0)
                snprintf(err, errlen, "%s: %s", path, msg);
        return r;
}

int jws_key_generate(JwsAlgorithm alg, JwsKey **ret) {
        EVP_PKEY *pkey;
        if (alg == JWS_ALG_EDDSA)
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        else if (alg == JWS_ALG_ES256)
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        else
                return -EINVAL;
        if (!pkey) {
                ERR_clear_error();
                return -EIO;
        }
        return key_new(pkey, ret, NULL, 0);
}

/* O_EXCL temporary file, then link(): the key appears whole or not at all, and an existing file
 * at path is never replaced (-EEXIST). */
static int write_new_file_exclusive(const char *path, const void *data, size_t len) {
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (fchmod(fd, 0600) < 0)
                r = -errno;
        if (r == 0)
                r = loop_write(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && link(tmp, path) < 0)
                r = -errno;
        (void) unlink(tmp);
        if (r < 0)
                return r;
        return fsync_directory_of(path);
}

int jws_key_save(const JwsKey *k, const char *path) {
        if (!k || !path)
                return -EINVAL;
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (!PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)) {
                ERR_clear_error();
                return -EIO;
        }
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n <= 0)
                return -EIO;
        int r = write_new_file_exclusive(path, data, (size_t) n);
        OPENSSL_cleanse(data, (size_t) n);
        return r;
}

JwsAlgorithm jws_key_algorithm(const JwsKey *k) {
        return k ? k->alg : _JWS_ALG_INVALID;
}

const char *jws_key_id(const JwsKey *k) {
        return k ? k->kid : NULL;
}

JwsKey *jws_key_free(JwsKey *k) {
        if (!k)
                return NULL;
        EVP_PKEY_free(k->pkey);
        free(k);
        return NULL;
}

/* ---- signatures --------------------------------------------------------------------------- */

static const EVP_MD *key_digest(const JwsKey *k) {
        return k->alg == JWS_ALG_ES256 ? EVP_sha256() : NULL; /* Ed25519 hashes internally */
}

/* DER ECDSA-Sig-Value -> R||S, each left-padded to 32 bytes. */
static int es256_der_to_raw(const unsigned char *der, size_t len, uint8_t raw[static JWS_SIG_LEN]) {
        const unsigned char *p = der;
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
        if (!sig || p != der + len)
                return -EIO;
        const BIGNUM *r = NULL, *s = NULL;
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, raw, ES256_HALF) != ES256_HALF ||
            BN_bn2binpad(s, raw + ES256_HALF, ES256_HALF) != ES256_HALF)
                return -EIO;
        return 0;
}

/* R||S -> DER, for EVP_DigestVerify(). */
static int es256_raw_to_der(const uint8_t raw[static JWS_SIG_LEN], unsigned char **ret, size_t *ret_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = ECDSA_SIG_new();
        if (!sig)
                return -ENOMEM;
        BIGNUM *r = BN_bin2bn(raw, ES256_HALF, NULL), *s = BN_bin2bn(raw + ES256_HALF, ES256_HALF, NULL);
        if (!r || !s || !ECDSA_SIG_set0(sig, r, s)) {
                BN_free(r);
                BN_free(s);
                return -ENOMEM;
        }
        unsigned char *der = NULL;
        int n = i2d_ECDSA_SIG(sig, &der);
        if (n <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

static int sign_raw(const JwsKey *k, const char *data, size_t len, uint8_t sig[static JWS_SIG_LEN]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        unsigned char out[80]; /* ECDSA P-256 DER is at most 72 bytes */
        size_t n = sizeof(out);
        if (EVP_DigestSignInit(ctx, NULL, key_digest(k), NULL, k->pkey) != 1 ||
            EVP_DigestSign(ctx, out, &n, (const unsigned char *) data, len) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        if (k->alg == JWS_ALG_ES256)
                return es256_der_to_raw(out, n, sig);
        if (n != JWS_SIG_LEN)
                return -EIO;
        memcpy(sig, out, JWS_SIG_LEN);
        return 0;
}

static int verify_raw(const JwsKey *k, const char *data, size_t len, const uint8_t sig[static JWS_SIG_LEN]) {
        _cleanup_(OPENSSL_freep) unsigned char *der = NULL;
        const unsigned char *s = sig;
        size_t n = JWS_SIG_LEN;
        if (k->alg == JWS_ALG_ES256) {
                int r = es256_raw_to_der(sig, &der, &n);
                if (r < 0)
                        return r;
                s = der;
        }
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, key_digest(k), NULL, k->pkey) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        int ok = EVP_DigestVerify(ctx, s, n, (const unsigned char *) data, len);
        ERR_clear_error();
        return ok == 1 ? 0 : -EBADE;
}

static char *header_json(const JwsKey *k) {
        _cleanup_(json_decrefp) json_t *h = json_pack("{s:s, s:s, s:s}",
                "alg", jws_algorithm_to_string(k->alg), "typ", "JWT", "kid", k->kid);
        if (!h)
                return NULL;
        return json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

int jws_sign(const JwsKey *k, json_t *payload, char **ret) {
        if (!k || !json_is_object(payload))
                return -EINVAL;
        _cleanup_free_ char *hjson = header_json(k);
        _cleanup_free_ char *pjson = json_dumps(payload, JSON_COMPACT);
        if (!hjson || !pjson)
                return -ENOMEM;
        _cleanup_free_ char *h64 = NULL, *p64 = NULL, *s64 = NULL;
        if (base64url_encode(hjson, strlen(hjson), &h64) < 0 || base64url_encode(pjson, strlen(pjson), &p64) < 0)
                return -ENOMEM;
        _cleanup_free_ char *input = strdup_printf("%s.%s", h64, p64);
        if (!input)
                return -ENOMEM;
        size_t input_len = strlen(input);
        /* what we sign must verify: refuse a token past the verifier's limit */
        if (input_len + 1 + (JWS_SIG_LEN * 4 + 2) / 3 > JWS_MAX_LEN)
                return -E2BIG;
        uint8_t sig[JWS_SIG_LEN];
        int r = sign_raw(k, input, input_len, sig);
        if (r < 0)
                return r;
        if (base64url_encode(sig, sizeof(sig), &s64) < 0)
                return -ENOMEM;
        char *out = strdup_printf("%s.%s", input, s64);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* A decoded part that must be a JSON object: -EBADMSG otherwise. */
static int decode_object(const char *s, size_t len, json_t **ret) {
        _cleanup_free_ uint8_t *raw = NULL;
        size_t n = 0;
        int r = base64url_decode(s, len, &raw, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        json_t *j = json_loadb((const char *) raw, n, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

/* alg and kid must be k's; the algorithm used is always k's own. */
static int check_header(const JwsKey *k, json_t *h) {
        json_t *alg = json_object_get(h, "alg"), *kid = json_object_get(h, "kid");
        json_t *typ = json_object_get(h, "typ");
        if (!json_is_string(alg) || !json_is_string(kid) || (typ && !json_is_string(typ)))
                return -EBADMSG;
        /* RFC 7515 §4.1.11: extensions we do not understand must not be ignored; we have none */
        if (json_object_get(h, "crit"))
                return -EBADMSG;
        if (!streq(json_string_value(alg), jws_algorithm_to_string(k->alg)) ||
            json_string_length(alg) != strlen(jws_algorithm_to_string(k->alg)))
                return -EKEYREJECTED;
        if (!streq(json_string_value(kid), k->kid) || json_string_length(kid) != JWS_KID_LEN)
                return -EKEYREJECTED;
        return 0;
}

static bool all_base64url(const char *s, size_t len) {
        unsigned bad = 0;
        for (size_t i = 0; i < len; i++)
                bad |= b64url_value((unsigned char) s[i]);
        return !(bad & 0x100U);
}

int jws_verify(const JwsKey *k, const char *compact, size_t len, json_t **ret) {
        if (!k || !compact || !ret)
                return -EINVAL;
        if (len > JWS_MAX_LEN)
                return -E2BIG;
        const char *dot1 = memchr(compact, '.', len);
        const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - compact)) : NULL;
        if (!dot2)
                return -EBADMSG;
        const char *h = compact, *p = dot1 + 1, *s = dot2 + 1;
        size_t hlen = (size_t) (dot1 - h), plen = (size_t) (dot2 - p), slen = len - (size_t) (s - compact);
        /* a third '.' or any byte outside the alphabet anywhere (a NUL too) is malformed */
        if (hlen == 0 || plen == 0 || slen == 0 || !all_base64url(h, hlen) || !all_base64url(p, plen) ||
            !all_base64url(s, slen))
                return -EBADMSG;

        _cleanup_(json_decrefp) json_t *header = NULL;
        int r = decode_object(h, hlen, &header);
        if (r < 0)
                return r;
        r = check_header(k, header);
        if (r < 0)
                return r;

        _cleanup_free_ uint8_t *sig = NULL;
        size_t siglen = 0;
        r = base64url_decode(s, slen, &sig, &siglen);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || siglen != JWS_SIG_LEN)
                return -EBADMSG;
        r = verify_raw(k, compact, (size_t) (dot2 - compact), sig);
        if (r < 0)
                return r;

        /* the payload is parsed only once it is known to be ours */
        json_t *payload = NULL;
        r = decode_object(p, plen, &payload);
        if (r < 0)
                return r;
        *ret = payload;
        return 0;
}
