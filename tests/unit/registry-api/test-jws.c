/* SPDX-License-Identifier: MIT */
/* JWS compact tokens: round trips, every way a token can be malformed or forged (with the exact
 * error), keys made by `openssl genpkey`, and an independent path through the openssl command
 * (its own DER signatures, converted to R||S here) in both directions. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "common/macros.h"
#include "common/util.h"
#include "registry-api/jws.h"
#include "tests/unit/tests.h"

static char tmpdir[] = "/tmp/test-jws-XXXXXX";

static _printf_(1, 2) int run(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int r = system(cmd);
        if (r != 0)
                fprintf(stderr, "command failed (%d): %s\n", r, cmd);
        return r;
}

static char *path_of(const char *name) {
        char *p = strdup_printf("%s/%s", tmpdir, name);
        ASSERT_TRUE(p);
        return p;
}

static char *read_text(const char *name, size_t *len) {
        _cleanup_free_ char *p = path_of(name);
        char *s = NULL;
        ASSERT_OK(read_full_file(p, 1 << 20, &s, len));
        return s;
}

static void write_text(const char *name, const void *data, size_t len) {
        _cleanup_free_ char *p = path_of(name);
        (void) unlink(p);
        ASSERT_OK(write_file_atomic(p, data, len, 0600));
}

static JwsKey *load_key(const char *name) {
        _cleanup_free_ char *p = path_of(name);
        char err[256] = "";
        JwsKey *k = NULL;
        int r = jws_key_load(p, &k, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "%s: %s\n", name, err);
        ASSERT_OK(r);
        return k;
}

/* The kid as the shell computes it: sha256sum of `openssl pkey -pubout -outform DER`. */
static void check_kid_independently(const JwsKey *k, const char *pem_name) {
        ASSERT_EQ(run("cd %s && openssl pkey -in %s -pubout -outform DER -out %s.pub.der && "
                      "sha256sum %s.pub.der | cut -c1-32 | tr -d '\\n' > %s.kid",
                      tmpdir, pem_name, pem_name, pem_name, pem_name), 0);
        _cleanup_free_ char *kidfile = strdup_printf("%s.kid", pem_name);
        _cleanup_free_ char *kid = read_text(kidfile, NULL);
        ASSERT_STREQ(jws_key_id(k), kid);
        ASSERT_EQ(strlen(jws_key_id(k)), JWS_KID_LEN);
}

/* ---- tokens made by hand ------------------------------------------------------------------ */

static char *b64(const void *d, size_t n) {
        char *s = NULL;
        ASSERT_OK(base64url_encode(d, n, &s));
        return s;
}

static char *b64s(const char *s) {
        return b64(s, strlen(s));
}

/* "<b64(header)>.<b64(payload)>" */
static char *signing_input(const char *header, const char *payload) {
        _cleanup_free_ char *h = b64s(header), *p = b64s(payload);
        char *s = strdup_printf("%s.%s", h, p);
        ASSERT_TRUE(s);
        return s;
}

static char *token_with_sig(const char *input, const void *sig, size_t siglen) {
        _cleanup_free_ char *s = b64(sig, siglen);
        char *t = strdup_printf("%s.%s", input, s);
        ASSERT_TRUE(t);
        return t;
}

static int verify_str(const JwsKey *k, const char *t) {
        json_t *p = NULL;
        int r = jws_verify(k, t, strlen(t), &p);
        if (r == 0) {
                ASSERT_TRUE(json_is_object(p));
                json_decref(p);
        }
        return r;
}

static void expect(const JwsKey *k, const char *t, int want) {
        int r = verify_str(k, t);
        if (r != want)
                fprintf(stderr, "token \"%.200s\": %d (%s), expected %d (%s)\n", t, r, strerror(-r), want,
                        strerror(-want));
        ASSERT_EQ(r, want);
}

/* Part i (0..2) of a compact token, decoded. */
static char *decoded_part(const char *t, int i) {
        const char *s = t;
        for (int j = 0; j < i; j++) {
                s = strchr(s, '.');
                ASSERT_TRUE(s);
                s++;
        }
        size_t n = strcspn(s, ".");
        uint8_t *d = NULL;
        size_t dl = 0;
        ASSERT_OK(base64url_decode(s, n, &d, &dl));
        return (char *) d;
}

/* ---- DER <-> R||S, written here independently of jws.c ------------------------------------ */

static size_t der_int(const uint8_t *d, size_t n, size_t *pos, uint8_t out[32]) {
        ASSERT_TRUE(*pos + 2 <= n && d[*pos] == 0x02);
        size_t l = d[*pos + 1];
        *pos += 2;
        ASSERT_TRUE(l >= 1 && l <= 33 && *pos + l <= n);
        const uint8_t *v = d + *pos;
        if (l == 33) {
                ASSERT_EQ(v[0], 0);
                v++, l--;
        }
        memset(out, 0, 32);
        memcpy(out + 32 - l, v, l);
        *pos += (size_t) (v - (d + *pos)) + l;
        return l;
}

static void der_to_raw(const uint8_t *d, size_t n, uint8_t raw[64]) {
        ASSERT_TRUE(n >= 8 && d[0] == 0x30);
        size_t pos = 2;
        ASSERT_EQ(d[1], n - 2);
        der_int(d, n, &pos, raw);
        der_int(d, n, &pos, raw + 32);
        ASSERT_EQ(pos, n);
}

static size_t der_put_int(uint8_t *o, const uint8_t v[32]) {
        size_t skip = 0;
        while (skip < 31 && v[skip] == 0)
                skip++;
        bool pad = v[skip] & 0x80;
        size_t l = 32 - skip + pad;
        o[0] = 0x02;
        o[1] = (uint8_t) l;
        if (pad)
                o[2] = 0;
        memcpy(o + 2 + pad, v + skip, 32 - skip);
        return 2 + l;
}

static size_t raw_to_der(const uint8_t raw[64], uint8_t der[72]) {
        size_t n = der_put_int(der + 2, raw);
        n += der_put_int(der + 2 + n, raw + 32);
        der[0] = 0x30;
        der[1] = (uint8_t) n;
        return n + 2;
}

/* ---- tests -------------------------------------------------------------------------------- */

TEST(test_base64url) {
        static const struct {
                const char *in, *out;
        } v[] = { { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
                  { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" }, { "\xfb\xff\xbf", "-_-_" } };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *e = b64s(v[i].in);
                ASSERT_STREQ(e, v[i].out);
                _cleanup_free_ uint8_t *d = NULL;
                size_t dl = 9999;
                ASSERT_OK(base64url_decode(v[i].out, strlen(v[i].out), &d, &dl));
                ASSERT_EQ(dl, strlen(v[i].in));
                ASSERT_TRUE(memcmp(d, v[i].in, dl) == 0);
        }
        /* every length and byte value round-trips */
        uint8_t buf[300];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t) (i * 151 + 7);
        for (size_t n = 0; n <= sizeof(buf); n++) {
                _cleanup_free_ char *e = b64(buf, n);
                ASSERT_EQ(strlen(e), (n * 4 + 2) / 3);
                _cleanup_free_ uint8_t *d = NULL;
                size_t dl = 0;
                ASSERT_OK(base64url_decode(e, strlen(e), &d, &dl));
                ASSERT_EQ(dl, n);
                ASSERT_TRUE(memcmp(d, buf, n) == 0);
        }
        const char *bad[] = { "Zg==", "Zg=", "Zm9v+A", "Zm9v/A", "Zm 9v", "Z", "Zm9vY", "Zh", "Zm9", "Zm+",
                              "Zm9vY\x80", "Zm9v\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t *d = NULL;
                size_t dl = 0;
                int r = base64url_decode(bad[i], strlen(bad[i]), &d, &dl);
                if (r != -EINVAL)
                        fprintf(stderr, "base64url \"%s\" decoded\n", bad[i]);
                ASSERT_EQ(r, -EINVAL);
        }
        /* a NUL inside the given length is not a terminator */
        uint8_t *d = NULL;
        size_t dl = 0;
        ASSERT_EQ(base64url_decode("Zm\0v", 4, &d, &dl), -EINVAL);
}

static void round_trip(JwsAlgorithm alg) {
        _cleanup_(jws_key_freep) JwsKey *k = NULL;
        ASSERT_OK(jws_key_generate(alg, &k));
        ASSERT_EQ(jws_key_algorithm(k), alg);
        ASSERT_EQ(strlen(jws_key_id(k)), JWS_KID_LEN);
        _cleanup_(json_decrefp) json_t *claims = json_pack("{s:s, s:s, s:I, s:[{s:s, s:s, s:[s, s]}]}",
                "iss", "plura", "sub", "alice", "exp", (json_int_t) 1735689600,
                "access", "type", "repository", "name", "apps/search", "actions", "pull", "push");
        ASSERT_TRUE(claims);
        _cleanup_free_ char *t = NULL;
        ASSERT_OK(jws_sign(k, claims, &t));
        json_t *got = NULL;
        ASSERT_OK(jws_verify(k, t, strlen(t), &got));
        ASSERT_TRUE(json_equal(got, claims));
        json_decref(got);

        /* the header is exactly {"alg","typ","kid"} */
        _cleanup_free_ char *h = decoded_part(t, 0);
        _cleanup_free_ char *want = strdup_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                                                  jws_algorithm_to_string(alg), jws_key_id(k));
        ASSERT_STREQ(h, want);

        /* not NUL-terminated: only len bytes are read */
        size_t n = strlen(t);
        _cleanup_free_ char *copy = malloc(n + 5);
        memcpy(copy, t, n);
        memcpy(copy + n, "XXXX", 5);
        ASSERT_OK(jws_verify(k, copy, n, &got));
        json_decref(got);
        ASSERT_EQ(jws_verify(k, copy, n + 4, &got), -EBADMSG); /* 67 signature bytes */

        /* a second key of the same algorithm: its kid differs */
        _cleanup_(jws_key_freep) JwsKey *k2 = NULL;
        ASSERT_OK(jws_key_generate(alg, &k2));
        ASSERT_FALSE(streq(jws_key_id(k), jws_key_id(k2)));
        expect(k2, t, -EKEYREJECTED);

        /* non-objects are not signed */
        _cleanup_(json_decrefp) json_t *arr = json_array();
        char *x = NULL;
        ASSERT_EQ(jws_sign(k, arr, &x), -EINVAL);
        ASSERT_EQ(jws_sign(k, NULL, &x), -EINVAL);
        /* what could not be verified is not signed */
        _cleanup_free_ char *big = malloc(JWS_MAX_LEN);
        memset(big, 'a', JWS_MAX_LEN - 1);
        big[JWS_MAX_LEN - 1] = 0;
        _cleanup_(json_decrefp) json_t *huge = json_pack("{s:s}", "x", big);
        ASSERT_EQ(jws_sign(k, huge, &x), -E2BIG);
}

TEST(test_round_trip_eddsa) {
        round_trip(JWS_ALG_EDDSA);
}

TEST(test_round_trip_es256) {
        round_trip(JWS_ALG_ES256);
}

/* Every malformed shape, with a key of alg; tokens that are well formed but forged. */
static void forgeries(JwsAlgorithm alg) {
        _cleanup_(jws_key_freep) JwsKey *k = NULL, *other = NULL;
        ASSERT_OK(jws_key_generate(alg, &k));
        ASSERT_OK(jws_key_generate(alg == JWS_ALG_EDDSA ? JWS_ALG_ES256 : JWS_ALG_EDDSA, &other));
        _cleanup_(json_decrefp) json_t *claims = json_pack("{s:s, s:I}", "sub", "alice", "exp", (json_int_t) 2000000000);
        _cleanup_free_ char *t = NULL;
        ASSERT_OK(jws_sign(k, claims, &t));
        expect(k, t, 0);
        size_t n = strlen(t);
        const char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
        _cleanup_free_ char *hpart = strndup(t, (size_t) (dot1 - t));
        _cleanup_free_ char *ppart = strndup(dot1 + 1, (size_t) (dot2 - dot1 - 1));
        _cleanup_free_ char *spart = strdup(dot2 + 1);

        /* tampered payload: one character changed, still valid base64url */
        _cleanup_free_ char *tp = strdup(t);
        size_t pi = (size_t) (dot1 - t) + 3;
        tp[pi] = tp[pi] == 'A' ? 'B' : 'A';
        expect(k, tp, -EBADE);
        /* tampered payload, other claims */
        _cleanup_free_ char *forged_payload = b64s("{\"sub\":\"admin\",\"exp\":2000000000}");
        _cleanup_free_ char *t2 = strdup_printf("%s.%s.%s", hpart, forged_payload, spart);
        expect(k, t2, -EBADE);
        /* tampered header: same alg and kid, one more member */
        _cleanup_free_ char *h2 = strdup_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\",\"x\":1}",
                                                jws_algorithm_to_string(alg), jws_key_id(k));
        _cleanup_free_ char *h2b = b64s(h2);
        _cleanup_free_ char *t3 = strdup_printf("%s.%s.%s", h2b, ppart, spart);
        expect(k, t3, -EBADE);
        /* tampered signature: first character changed (the last one would leave trailing bits) */
        _cleanup_free_ char *ts = strdup(t);
        size_t si = (size_t) (dot2 - t) + 1;
        ts[si] = ts[si] == 'A' ? 'B' : 'A';
        expect(k, ts, -EBADE);
        /* a signature of all zero bytes / of the wrong length */
        uint8_t zero[65] = {};
        _cleanup_free_ char *in = strndup(t, (size_t) (dot2 - t));
        _cleanup_free_ char *tz = token_with_sig(in, zero, 64);
        expect(k, tz, -EBADE);
        _cleanup_free_ char *t63 = token_with_sig(in, zero, 63), *t65 = token_with_sig(in, zero, 65);
        expect(k, t63, -EBADMSG);
        expect(k, t65, -EBADMSG);
        /* the signature of the whole token from another key, with this key's kid */
        _cleanup_free_ char *t_other = NULL;
        ASSERT_OK(jws_sign(other, claims, &t_other));
        const char *odot = strrchr(t_other, '.');
        _cleanup_free_ char *t4 = strdup_printf("%s%s", in, odot);
        expect(k, t4, -EBADE);

        /* alg none, alg of the other algorithm, HS256 (the key as an HMAC secret), kid mismatch */
        const char *algs[] = { "none", "None", "HS256", "RS256", jws_algorithm_to_string(jws_key_algorithm(other)),
                               alg == JWS_ALG_EDDSA ? "eddsa" : "es256", "" };
        for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
                _cleanup_free_ char *h = strdup_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", algs[i],
                                                       jws_key_id(k));
                _cleanup_free_ char *input = signing_input(h, "{\"sub\":\"admin\"}");
                _cleanup_free_ char *tok = token_with_sig(input, zero, 64);
                expect(k, tok, -EKEYREJECTED);
                /* alg none without a signature: empty third part */
                _cleanup_free_ char *unsigned_tok = strdup_printf("%s.", input);
                expect(k, unsigned_tok, -EBADMSG);
        }
        const char *kids[] = { "", "0", "00000000000000000000000000000000", jws_key_id(other) };
        for (size_t i = 0; i < ELEMENTSOF(kids); i++) {
                _cleanup_free_ char *h = strdup_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                                                       jws_algorithm_to_string(alg), kids[i]);
                _cleanup_free_ char *input = signing_input(h, "{\"sub\":\"admin\"}");
                _cleanup_free_ char *tok = token_with_sig(input, zero, 64);
                expect(k, tok, -EKEYREJECTED);
        }
        /* the other key's own valid token, verified with this key */
        expect(k, t_other, -EKEYREJECTED);

        /* headers of the wrong shape */
        const char *bad_headers[] = {
                "[]", "\"x\"", "null", "{}", "{\"kid\":\"%2$s\"}", "{\"alg\":\"%1$s\"}",
                "{\"alg\":1,\"kid\":\"%2$s\"}", "{\"alg\":\"%1$s\",\"kid\":null}",
                "{\"alg\":\"%1$s\",\"kid\":\"%2$s\",\"typ\":7}",
                "{\"alg\":\"%1$s\",\"kid\":\"%2$s\",\"crit\":[\"exp\"]}",
                "{\"alg\":\"none\",\"alg\":\"%1$s\",\"kid\":\"%2$s\"}", /* duplicate member */
                "{\"alg\":\"%1$s\",\"kid\":\"%2$s\"} x", "{\"alg\":\"%1$s\",\"kid\":\"%2$s\"",
                "{\"alg\":\"%1$s\\u0000\",\"kid\":\"%2$s\"}", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_headers); i++) {
                char h[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(h, sizeof(h), bad_headers[i], jws_algorithm_to_string(alg), jws_key_id(k));
#pragma GCC diagnostic pop
                _cleanup_free_ char *input = signing_input(h, "{\"sub\":\"admin\"}");
                _cleanup_free_ char *tok = token_with_sig(input, zero, 64);
                expect(k, tok, -EBADMSG);
        }

        /* shapes */
        _cleanup_free_ char *padded_sig = strdup_printf("%s=", t);
        _cleanup_free_ char *padded_head = strdup_printf("%s=.%s.%s", hpart, ppart, spart);
        _cleanup_free_ char *four = strdup_printf("%s.%s", t, spart);
        _cleanup_free_ char *trailing_dot = strdup_printf("%s.", t);
        _cleanup_free_ char *two = strdup_printf("%s.%s", hpart, ppart);
        _cleanup_free_ char *empty_h = strdup_printf(".%s.%s", ppart, spart);
        _cleanup_free_ char *empty_p = strdup_printf("%s..%s", hpart, spart);
        _cleanup_free_ char *empty_s = strdup_printf("%s.%s.", hpart, ppart);
        _cleanup_free_ char *space = strdup_printf(" %s", t);
        _cleanup_free_ char *nl = strdup_printf("%s\n", t);
        _cleanup_free_ char *plus = strdup(t), *slash = strdup(t);
        plus[3] = '+';
        slash[n - 3] = '/';
        const char *shapes[] = { "", ".", "..", "...", "a.b", "a.b.c.d", "a..c", padded_sig, padded_head, four,
                                 trailing_dot, two, empty_h, empty_p, empty_s, space, nl, plus, slash };
        for (size_t i = 0; i < ELEMENTSOF(shapes); i++)
                expect(k, shapes[i], -EBADMSG);
        /* a NUL byte inside the given length */
        _cleanup_free_ char *nul = strdup(t);
        nul[pi] = 0;
        json_t *got = NULL;
        ASSERT_EQ(jws_verify(k, nul, n, &got), -EBADMSG);

        /* length limit: over it is E2BIG before anything else, at it is parsed */
        _cleanup_free_ char *longtok = malloc(JWS_MAX_LEN + 2);
        memset(longtok, 'A', JWS_MAX_LEN + 1);
        longtok[10] = '.';
        longtok[20] = '.';
        longtok[JWS_MAX_LEN + 1] = 0;
        ASSERT_EQ(jws_verify(k, longtok, JWS_MAX_LEN + 1, &got), -E2BIG);
        ASSERT_EQ(jws_verify(k, longtok, JWS_MAX_LEN, &got), -EBADMSG);
        ASSERT_EQ(jws_verify(k, "x", 1, NULL), -EINVAL);
}

TEST(test_forgeries_eddsa) {
        forgeries(JWS_ALG_EDDSA);
}

TEST(test_forgeries_es256) {
        forgeries(JWS_ALG_ES256);
}

/* The openssl command signs, jws_verify() accepts; jws_sign() signs, the openssl command verifies. */
static void openssl_cross_check(const char *pem_name, JwsAlgorithm alg) {
        _cleanup_(jws_key_freep) JwsKey *k = load_key(pem_name);
        ASSERT_EQ(jws_key_algorithm(k), alg);
        check_kid_independently(k, pem_name);

        _cleanup_free_ char *h = strdup_printf("{\"alg\":\"%s\",\"kid\":\"%s\"}", jws_algorithm_to_string(alg), jws_key_id(k));
        for (int round = 0; round < 8; round++) {
                _cleanup_free_ char *payload = strdup_printf("{\"sub\":\"ci-%d\",\"n\":%d}", round, round * 7919);
                _cleanup_free_ char *input = signing_input(h, payload);
                write_text("input", input, strlen(input));
                uint8_t raw[64];
                if (alg == JWS_ALG_ES256) {
                        ASSERT_EQ(run("cd %s && openssl dgst -sha256 -sign %s -out sig.der input", tmpdir, pem_name), 0);
                        size_t dl = 0;
                        _cleanup_free_ char *der = read_text("sig.der", &dl);
                        der_to_raw((const uint8_t *) der, dl, raw);
                } else {
                        ASSERT_EQ(run("cd %s && openssl pkeyutl -sign -rawin -inkey %s -in input -out sig.raw", tmpdir, pem_name), 0);
                        size_t dl = 0;
                        _cleanup_free_ char *sig = read_text("sig.raw", &dl);
                        ASSERT_EQ(dl, 64);
                        memcpy(raw, sig, 64);
                }
                _cleanup_free_ char *tok = token_with_sig(input, raw, 64);
                json_t *got = NULL;
                ASSERT_OK(jws_verify(k, tok, strlen(tok), &got));
                ASSERT_EQ(json_integer_value(json_object_get(got, "n")), round * 7919);
                json_decref(got);

                /* and the other way */
                _cleanup_(json_decrefp) json_t *claims = json_pack("{s:i}", "round", round);
                _cleanup_free_ char *mine = NULL;
                ASSERT_OK(jws_sign(k, claims, &mine));
                const char *dot2 = strrchr(mine, '.');
                write_text("input", mine, (size_t) (dot2 - mine));
                _cleanup_free_ uint8_t *sig = NULL;
                size_t sl = 0;
                ASSERT_OK(base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sl));
                ASSERT_EQ(sl, 64);
                if (alg == JWS_ALG_ES256) {
                        uint8_t der[72];
                        size_t dl = raw_to_der(sig, der);
                        write_text("sig.der", der, dl);
                        ASSERT_EQ(run("cd %s && openssl dgst -sha256 -verify %s.pub.pem -signature sig.der input >/dev/null",
                                      tmpdir, pem_name), 0);
                } else {
                        write_text("sig.raw", sig, 64);
                        ASSERT_EQ(run("cd %s && openssl pkeyutl -verify -pubin -inkey %s.pub.pem -rawin -in input -sigfile sig.raw >/dev/null",
                                      tmpdir, pem_name), 0);
                }
        }
        /* an array payload, correctly signed, is still not a token */
        if (alg == JWS_ALG_ES256) {
                _cleanup_free_ char *input = signing_input(h, "[1]");
                write_text("input", input, strlen(input));
                ASSERT_EQ(run("cd %s && openssl dgst -sha256 -sign %s -out sig.der input", tmpdir, pem_name), 0);
                size_t dl = 0;
                _cleanup_free_ char *der = read_text("sig.der", &dl);
                uint8_t raw[64];
                der_to_raw((const uint8_t *) der, dl, raw);
                _cleanup_free_ char *tok = token_with_sig(input, raw, 64);
                expect(k, tok, -EBADMSG);
        }
}

TEST(test_openssl_keys_and_signatures) {
        ASSERT_EQ(run("cd %s && openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null && "
                      "openssl pkey -in ed.pem -pubout -out ed.pem.pub.pem && "
                      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null && "
                      "openssl pkey -in ec.pem -pubout -out ec.pem.pub.pem && "
                      "openssl ecparam -name prime256v1 -genkey -noout -out ec-trad.pem && "
                      "openssl pkey -in ec-trad.pem -pubout -out ec-trad.pem.pub.pem", tmpdir), 0);
        _cleanup_free_ char *trad = read_text("ec-trad.pem", NULL);
        ASSERT_TRUE(strstr(trad, "BEGIN EC PRIVATE KEY"));
        openssl_cross_check("ed.pem", JWS_ALG_EDDSA);
        openssl_cross_check("ec.pem", JWS_ALG_ES256);
        openssl_cross_check("ec-trad.pem", JWS_ALG_ES256);
}

static void refused(const char *pem_name, const char *needle, int want) {
        _cleanup_free_ char *p = path_of(pem_name);
        char err[256] = "";
        JwsKey *k = NULL;
        int r = jws_key_load(p, &k, err, sizeof(err));
        printf("# %s: %s\n", pem_name, err);
        ASSERT_EQ(r, want);
        ASSERT_TRUE(!k);
        ASSERT_TRUE(strstr(err, needle));
        ASSERT_TRUE(strstr(err, pem_name));
}

TEST(test_refused_keys) {
        ASSERT_EQ(run("cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null && "
                      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null && "
                      "openssl ecparam -name secp256k1 -genkey -noout -out k1.pem && "
                      "openssl genpkey -algorithm ed448 -out ed448.pem 2>/dev/null && "
                      "openssl genpkey -algorithm x25519 -out x25519.pem 2>/dev/null && "
                      "openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:secret -out enc.pem 2>/dev/null && "
                      "openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -out pub.pem && "
                      "echo 'not a key' > junk.pem && : > empty.pem", tmpdir), 0);
        refused("rsa.pem", "RSA key refused", -EINVAL);
        refused("p384.pem", "secp384r1", -EINVAL);
        refused("k1.pem", "secp256k1", -EINVAL);
        refused("ed448.pem", "ED448 key refused", -EINVAL);
        refused("x25519.pem", "X25519 key refused", -EINVAL);
        refused("enc.pem", "encrypted", -EINVAL);
        refused("pub.pem", "no PEM private key", -EINVAL);
        refused("junk.pem", "no PEM private key", -EINVAL);
        refused("empty.pem", "no PEM private key", -EINVAL);
        refused("does-not-exist.pem", "No such file", -ENOENT);

        /* from memory, without a path */
        char err[256] = "";
        JwsKey *k = NULL;
        ASSERT_EQ(jws_key_from_pem("", 0, &k, err, sizeof(err)), -EINVAL);
        ASSERT_EQ(jws_key_from_pem("x", 1, &k, NULL, 0), -EINVAL);
}

TEST(test_save) {
        _cleanup_(jws_key_freep) JwsKey *k = NULL;
        ASSERT_OK(jws_key_generate(JWS_ALG_ES256, &k));
        _cleanup_free_ char *p = path_of("saved/key.pem");
        _cleanup_free_ char *d = path_of("saved");
        ASSERT_EQ(mkdir(d, 0700), 0);
        ASSERT_OK(jws_key_save(k, p));
        struct stat st;
        ASSERT_EQ(stat(p, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0600);
        _cleanup_free_ char *pem = read_text("saved/key.pem", NULL);
        ASSERT_TRUE(startswith(pem, "-----BEGIN PRIVATE KEY-----\n")); /* PKCS#8 */
        _cleanup_(jws_key_freep) JwsKey *back = load_key("saved/key.pem");
        ASSERT_STREQ(jws_key_id(back), jws_key_id(k));
        /* the openssl command reads it too */
        ASSERT_EQ(run("openssl pkey -in %s -noout", p), 0);
        /* never replaced */
        _cleanup_(jws_key_freep) JwsKey *k2 = NULL;
        ASSERT_OK(jws_key_generate(JWS_ALG_EDDSA, &k2));
        ASSERT_EQ(jws_key_save(k2, p), -EEXIST);
        _cleanup_(jws_key_freep) JwsKey *still = load_key("saved/key.pem");
        ASSERT_STREQ(jws_key_id(still), jws_key_id(k));
        /* nothing else left in the directory */
        ASSERT_EQ(run("test $(ls -A %s | wc -l) -eq 1", d), 0);
        _cleanup_free_ char *p2 = path_of("saved/ed.pem");
        ASSERT_OK(jws_key_save(k2, p2));
        _cleanup_(jws_key_freep) JwsKey *back2 = load_key("saved/ed.pem");
        ASSERT_EQ(jws_key_algorithm(back2), JWS_ALG_EDDSA);
        ASSERT_STREQ(jws_key_id(back2), jws_key_id(k2));
        _cleanup_free_ char *nodir = path_of("no/such/dir/key.pem");
        ASSERT_EQ(jws_key_save(k2, nodir), -ENOENT);
}

typedef struct ThreadArg {
        const JwsKey *k;
        const char *token;
        json_t *claims;
} ThreadArg;

static void *thread_sign_verify(void *p) {
        const ThreadArg *a = p;
        for (int i = 0; i < 200; i++) {
                json_t *got = NULL;
                ASSERT_OK(jws_verify(a->k, a->token, strlen(a->token), &got));
                json_decref(got);
                _cleanup_free_ char *t = NULL;
                ASSERT_OK(jws_sign(a->k, a->claims, &t));
                ASSERT_OK(jws_verify(a->k, t, strlen(t), &got));
                json_decref(got);
        }
        return NULL;
}

/* One key, shared by the server's threads. */
TEST(test_threads) {
        for (JwsAlgorithm alg = 0; alg < _JWS_ALG_MAX; alg++) {
                _cleanup_(jws_key_freep) JwsKey *k = NULL;
                ASSERT_OK(jws_key_generate(alg, &k));
                _cleanup_(json_decrefp) json_t *claims = json_pack("{s:s}", "sub", "alice");
                _cleanup_free_ char *t = NULL;
                ASSERT_OK(jws_sign(k, claims, &t));
                ThreadArg a = { k, t, claims };
                pthread_t th[4];
                for (size_t i = 0; i < ELEMENTSOF(th); i++)
                        ASSERT_EQ(pthread_create(&th[i], NULL, thread_sign_verify, &a), 0);
                for (size_t i = 0; i < ELEMENTSOF(th); i++)
                        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        }
}

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

/* Not a threshold: the numbers go into the test's output for the benchmark notes. */
TEST(test_speed) {
        const int ops = 2000;
        for (JwsAlgorithm alg = 0; alg < _JWS_ALG_MAX; alg++) {
                _cleanup_(jws_key_freep) JwsKey *k = NULL;
                ASSERT_OK(jws_key_generate(alg, &k));
                _cleanup_(json_decrefp) json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:[{s:s, s:s, s:[s, s]}]}",
                        "iss", "plura", "sub", "ci-search", "aud", "plura", "exp", (json_int_t) 2000000000,
                        "iat", (json_int_t) 1999999700, "access", "type", "repository", "name", "apps/search",
                        "actions", "pull", "push");
                char *t = NULL;
                double t0 = now_us();
                for (int i = 0; i < ops; i++) {
                        free(t);
                        ASSERT_OK(jws_sign(k, claims, &t));
                }
                double t1 = now_us();
                size_t n = strlen(t);
                for (int i = 0; i < ops; i++) {
                        json_t *p = NULL;
                        ASSERT_OK(jws_verify(k, t, n, &p));
                        json_decref(p);
                }
                double t2 = now_us();
                printf("# %s: sign %.1f us/op, verify %.1f us/op (%d ops, %zu-byte token)\n",
                       jws_algorithm_to_string(alg), (t1 - t0) / ops, (t2 - t1) / ops, ops, n);
                free(t);
        }
}

int main(void) {
        ASSERT_TRUE(mkdtemp(tmpdir));
        ASSERT_STREQ(jws_algorithm_to_string(JWS_ALG_EDDSA), "EdDSA");
        ASSERT_STREQ(jws_algorithm_to_string(JWS_ALG_ES256), "ES256");
        ASSERT_TRUE(!jws_algorithm_to_string(_JWS_ALG_MAX));
        RUN(test_base64url);
        RUN(test_round_trip_eddsa);
        RUN(test_round_trip_es256);
        RUN(test_forgeries_eddsa);
        RUN(test_forgeries_es256);
        RUN(test_openssl_keys_and_signatures);
        RUN(test_refused_keys);
        RUN(test_save);
        RUN(test_threads);
        RUN(test_speed);
        ASSERT_EQ(run("rm -rf %s", tmpdir), 0);
        return 0;
}
