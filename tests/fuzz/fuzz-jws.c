/* SPDX-License-Identifier: MIT */
/* JWS tokens. The first byte chooses the key (bit 0: Ed25519 or P-256) and the mode (bits 1-2):
 *   0: the rest is a token verified against the fixed key: only the documented errors, and a
 *      token that verifies is one this key signed (never, in practice);
 *   1: the rest is a JSON object, signed and verified back to an equal object; the token with any
 *      one byte changed (position and value from the input) never verifies;
 *   2: the rest goes through base64url_decode(): what decodes re-encodes to the same text.
 * The keys below are for this fuzzer only. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/jws.h"

static const char ed25519_pem[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIDmazeyGH0MUqvB4I0LaCOCKfFc0iiipsbHUvXh1klG0\n"
        "-----END PRIVATE KEY-----\n";
static const char p256_pem[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIpUnfnMCTA7iQtnK\n"
        "KJuCDJ7yE8MeDesWc+F1UrxkYdyhRANCAAQP1kmaFrFeD45/1K4CCU5wUqCQLQtv\n"
        "d7oUPInpM1CjAAK2CeGoMbz5JL3u2aJdERbQkN01IdVGOHMOkEPuzGVF\n"
        "-----END PRIVATE KEY-----\n";

static JwsKey *keys[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char err[256];
        if (jws_key_from_pem(ed25519_pem, sizeof(ed25519_pem) - 1, &keys[0], err, sizeof(err)) < 0 ||
            jws_key_from_pem(p256_pem, sizeof(p256_pem) - 1, &keys[1], err, sizeof(err)) < 0)
                abort();
        if (jws_key_algorithm(keys[0]) != JWS_ALG_EDDSA || jws_key_algorithm(keys[1]) != JWS_ALG_ES256)
                abort();
        return 0;
}

static void fuzz_verify(const JwsKey *k, const char *s, size_t n) {
        json_t *payload = NULL;
        int r = jws_verify(k, s, n, &payload);
        if (r == 0) {
                if (!json_is_object(payload))
                        abort();
                json_decref(payload);
        } else if (r != -EBADMSG && r != -EKEYREJECTED && r != -EBADE && r != -E2BIG && r != -ENOMEM)
                abort();
        if ((n > JWS_MAX_LEN) != (r == -E2BIG))
                abort();
}

static void fuzz_round_trip(const JwsKey *k, const uint8_t *d, size_t n) {
        if (n < 4)
                return;
        size_t pos = (size_t) d[0] << 8 | d[1];
        uint8_t xor = d[2] ? d[2] : 1;
        json_t *in = json_loadb((const char *) d + 3, n - 3, 0, NULL);
        if (!in)
                return;
        char *t = NULL;
        int r = jws_sign(k, in, &t);
        if (r == -EINVAL && !json_is_object(in)) {
                json_decref(in);
                return;
        }
        if (r == -E2BIG) {
                json_decref(in);
                return;
        }
        if (r < 0)
                abort();
        size_t len = strlen(t);
        if (len > JWS_MAX_LEN)
                abort();
        json_t *out = NULL;
        if (jws_verify(k, t, len, &out) != 0 || !json_equal(in, out))
                abort();
        json_decref(out);
        /* the other key: not its token */
        if (jws_verify(keys[0] == k ? keys[1] : keys[0], t, len, &out) != -EKEYREJECTED)
                abort();
        pos %= len;
        t[pos] ^= (char) xor;
        r = jws_verify(k, t, len, &out);
        if (r == 0 || (r != -EBADMSG && r != -EKEYREJECTED && r != -EBADE))
                abort();
        free(t);
        json_decref(in);
}

static void fuzz_base64url(const char *s, size_t n) {
        uint8_t *d = NULL;
        size_t dl = 0;
        int r = base64url_decode(s, n, &d, &dl);
        if (r < 0) {
                if (r != -EINVAL && r != -ENOMEM)
                        abort();
                return;
        }
        char *e = NULL;
        if (base64url_encode(d, dl, &e) < 0 || strlen(e) != n || memcmp(e, s, n) != 0)
                abort();
        free(e);
        free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const JwsKey *k = keys[data[0] & 1];
        const char *s = (const char *) data + 1;
        size_t n = size - 1;
        switch ((data[0] >> 1) & 3) {
        case 0:
                fuzz_verify(k, s, n);
                break;
        case 1:
                fuzz_round_trip(k, data + 1, n);
                break;
        default:
                fuzz_base64url(s, n);
                break;
        }
        return 0;
}
