/* SPDX-License-Identifier: MIT */
#pragma once

/* JWS compact serialization (RFC 7515) for the registry's bearer tokens (Docker/OCI token
 * authentication: docs.docker.com/registry/spec/auth/jwt): signing with a key of the registry and
 * verification of what it signed. Pure crypto and parsing on OpenSSL's libcrypto; no I/O except
 * jws_key_load()/jws_key_save(), no global state.
 *
 * Keys: Ed25519 ("alg":"EdDSA") or ECDSA P-256 ("alg":"ES256", the 64-byte R||S signature form of
 * RFC 7518 §3.4, not DER). The key id ("kid") is derived from the public key: the first 32 hex
 * digits of the SHA-256 of its DER SubjectPublicKeyInfo. A header is {"alg","typ":"JWT","kid"}.
 *
 * Verification is strict: exactly three base64url parts (no padding, no other characters), a
 * header that is a JSON object whose "alg" equals the key's algorithm (never "none", never
 * another one: no algorithm confusion) and whose "kid" equals the key's, a payload that is a JSON
 * object, a signature of the right length that verifies. At most JWS_MAX_LEN bytes. A header with
 * "crit" is refused (RFC 7515 §4.1.11: we understand no extension); "typ", if there, is a string.
 * The payload is parsed only after the signature verified.
 *
 * A header with a member given twice is malformed.
 *
 * Cost (test-jws prints it): a verification is one Ed25519 or ECDSA P-256 verify, 60-150 µs of CPU
 * on the shared 2-core development machine; a caller that needs authenticated requests at nearly
 * the anonymous rate caches verified tokens (keyed by a hash of the token, until "exp"). */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define JWS_MAX_LEN (16U * 1024U)
#define JWS_KID_LEN 32

typedef enum JwsAlgorithm {
        JWS_ALG_EDDSA, /* Ed25519 */
        JWS_ALG_ES256, /* ECDSA P-256 with SHA-256 */
        _JWS_ALG_MAX,
        _JWS_ALG_INVALID = -1,
} JwsAlgorithm;

const char *jws_algorithm_to_string(JwsAlgorithm a); /* "EdDSA", "ES256" */

typedef struct JwsKey JwsKey;

/* A private key from a PEM file (PKCS#8 or the traditional EC form): -EINVAL with a message in
 * err for anything that is not an Ed25519 or P-256 private key (RSA, other curves, Ed448, a public
 * key, an encrypted key: never a passphrase prompt), -errno if unreadable. err starts with the
 * path: "/etc/plura/token-key.pem: RSA key refused: ...". */
int jws_key_load(const char *path, JwsKey **ret, char *err, size_t errlen);
/* The same from PEM text in memory. */
int jws_key_from_pem(const char *pem, size_t len, JwsKey **ret, char *err, size_t errlen);
/* A new random key. */
int jws_key_generate(JwsAlgorithm alg, JwsKey **ret);
/* Writes the private key as PKCS#8 PEM to path, mode 0600, fsynced: written to an O_EXCL temporary
 * file next to it and link()ed into place, so that path holds the whole key or nothing, and an
 * existing file is never replaced (-EEXIST). The directory is fsynced too. */
int jws_key_save(const JwsKey *k, const char *path);
JwsAlgorithm jws_key_algorithm(const JwsKey *k);
const char *jws_key_id(const JwsKey *k); /* JWS_KID_LEN hex digits */
JwsKey *jws_key_free(JwsKey *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(JwsKey *, jws_key_free);

/* Signs the JSON object payload (not stolen): *ret is the malloc()ed compact form. -EINVAL if payload
 * is not an object, -E2BIG if the token would be longer than JWS_MAX_LEN (jws_verify() would refuse
 * it), -EIO if libcrypto fails. */
int jws_sign(const JwsKey *k, json_t *payload, char **ret);
/* Verifies a compact JWS of len bytes (need not be NUL-terminated) made with k: 0 and the payload
 * object in *ret (a new reference); -EBADMSG if malformed (bad base64url, not JSON, wrong shape),
 * -EKEYREJECTED if alg or kid are not k's, -EBADE if the signature does not verify,
 * -E2BIG past JWS_MAX_LEN. Checked in that order: a header without a string "alg" and "kid" is
 * -EBADMSG; any byte outside the base64url alphabet in any part (a NUL too) is -EBADMSG before the
 * header is read. Claims (exp, aud, ...) are the caller's to check. */
int jws_verify(const JwsKey *k, const char *compact, size_t len, json_t **ret);

/* base64url without padding (RFC 4648 §5), used for the parts: *ret malloc()ed, NUL-terminated. */
int base64url_encode(const void *data, size_t n, char **ret);
/* Strict decode: only the base64url alphabet, no padding, no trailing bits set; -EINVAL otherwise. */
int base64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);
