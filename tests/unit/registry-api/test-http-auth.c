/* SPDX-License-Identifier: MIT */
/* Authorization headers (Basic, Bearer), WWW-Authenticate challenges, token service scopes. */
#include <errno.h>

#include "common/macros.h"
#include "common/util.h"
#include "registry-api/http-auth.h"
#include "tests/unit/tests.h"

/* Standard base64 with padding, written here for the tests. */
static char *b64std(const void *data, size_t n) {
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *p = data;
        char *out = malloc(n / 3 * 4 + 5), *o = out;
        ASSERT_TRUE(out);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                *o++ = abc[v >> 18];
                *o++ = abc[(v >> 12) & 63];
                *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
                *o++ = i + 2 < n ? abc[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static char *basic_header(const char *prefix, const void *cred, size_t n) {
        _cleanup_free_ char *e = b64std(cred, n);
        char *h = strdup_printf("%s%s", prefix, e);
        ASSERT_TRUE(h);
        return h;
}

static void basic_ok(const char *header, const char *user, const char *password) {
        HttpAuthorization a;
        int r = http_authorization_parse(header, &a);
        if (r < 0)
                fprintf(stderr, "Authorization \"%.100s\": %d\n", header, r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(a.scheme, HTTP_AUTH_BASIC);
        ASSERT_STREQ(a.user, user);
        ASSERT_STREQ(a.password, password);
        ASSERT_TRUE(!a.token);
        http_authorization_done(&a);
        ASSERT_EQ(a.scheme, HTTP_AUTH_NONE);
        ASSERT_TRUE(!a.user && !a.password);
        http_authorization_done(&a); /* twice is harmless */
}

static void cred_ok(const char *cred, const char *user, const char *password) {
        _cleanup_free_ char *h = basic_header("Basic ", cred, strlen(cred));
        basic_ok(h, user, password);
}

static void bearer_ok(const char *header, const char *token) {
        HttpAuthorization a;
        ASSERT_EQ(http_authorization_parse(header, &a), 0);
        ASSERT_EQ(a.scheme, HTTP_AUTH_BEARER);
        ASSERT_STREQ(a.token, token);
        ASSERT_TRUE(!a.user && !a.password);
        http_authorization_done(&a);
}

static void auth_bad(const char *header) {
        HttpAuthorization a = { .user = (char *) "stale" };
        int r = http_authorization_parse(header, &a);
        if (r != -EINVAL)
                fprintf(stderr, "Authorization \"%.100s\": %d, expected -EINVAL\n", header, r);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_EQ(a.scheme, HTTP_AUTH_NONE);
        ASSERT_TRUE(!a.user && !a.password && !a.token);
}

static void cred_bad(const void *cred, size_t n) {
        _cleanup_free_ char *h = basic_header("Basic ", cred, n);
        auth_bad(h);
}

TEST(test_none) {
        HttpAuthorization a = { .scheme = HTTP_AUTH_BEARER };
        ASSERT_EQ(http_authorization_parse(NULL, &a), 0);
        ASSERT_EQ(a.scheme, HTTP_AUTH_NONE);
        ASSERT_TRUE(!a.user && !a.password && !a.token);
        http_authorization_done(&a);
        ASSERT_EQ(http_authorization_parse("Basic x", NULL), -EINVAL);
}

TEST(test_basic) {
        basic_ok("Basic YWxpY2U6c2VjcmV0", "alice", "secret");
        cred_ok("alice:secret", "alice", "secret");
        cred_ok("alice:pa:ss:word", "alice", "pa:ss:word"); /* the first ':' splits */
        cred_ok("alice:", "alice", "");
        cred_ok("alice::", "alice", ":");
        cred_ok("a:b", "a", "b");
        cred_ok("build bot:p w", "build bot", "p w");
        cred_ok("alice:tab\there", "alice", "tab\there");
        cred_ok("\xc3\xa9l\xc3\xa8ve:mot de passe", "\xc3\xa9l\xc3\xa8ve", "mot de passe");
        /* every padding length */
        cred_ok("alice:s", "alice", "s");
        cred_ok("alice:se", "alice", "se");
        cred_ok("alice:sec", "alice", "sec");

        /* scheme names are case-insensitive; one or more spaces; blanks around the value */
        basic_ok("basic YWxpY2U6c2VjcmV0", "alice", "secret");
        basic_ok("BASIC YWxpY2U6c2VjcmV0", "alice", "secret");
        basic_ok("bAsIc YWxpY2U6c2VjcmV0", "alice", "secret");
        basic_ok("Basic     YWxpY2U6c2VjcmV0", "alice", "secret");
        basic_ok("  Basic YWxpY2U6c2VjcmV0 \t", "alice", "secret");

        /* limits: 128-byte user, 4096-byte password */
        char user[HTTP_AUTH_USER_MAX + 2], pw[HTTP_AUTH_SECRET_MAX + 2];
        memset(user, 'u', sizeof(user) - 1);
        user[sizeof(user) - 1] = 0;
        memset(pw, 'p', sizeof(pw) - 1);
        pw[sizeof(pw) - 1] = 0;
        user[HTTP_AUTH_USER_MAX] = 0;
        pw[HTTP_AUTH_SECRET_MAX] = 0;
        _cleanup_free_ char *longest = strdup_printf("%s:%s", user, pw);
        cred_ok(longest, user, pw);
        user[HTTP_AUTH_USER_MAX] = 'u';
        _cleanup_free_ char *long_user = strdup_printf("%s:x", user);
        cred_bad(long_user, strlen(long_user));
        user[HTTP_AUTH_USER_MAX] = 0;
        pw[HTTP_AUTH_SECRET_MAX] = 'p';
        _cleanup_free_ char *long_pw = strdup_printf("u:%s", pw);
        cred_bad(long_pw, strlen(long_pw));
        _cleanup_free_ char *huge = malloc(100001);
        memset(huge, 'A', 100000);
        huge[100000] = 0;
        _cleanup_free_ char *huge_h = strdup_printf("Basic %s", huge);
        auth_bad(huge_h);
}

TEST(test_basic_malformed) {
        cred_bad("alice", 5);               /* no ':' */
        cred_bad(":secret", 7);             /* empty user */
        cred_bad(":", 1);
        cred_bad("", 0);
        cred_bad("alice\0:secret", 13);     /* NUL in the user */
        cred_bad("alice:sec\0ret", 13);     /* NUL in the password */
        cred_bad("\0", 1);
        cred_bad("al\x01ice:secret", 13);   /* control characters in the user */
        cred_bad("al\tice:secret", 12);
        cred_bad("alice\x7f:secret", 13);
        cred_bad("alice\r\n:secret", 14);

        const char *bad[] = {
                "",
                " ",
                "Basic",
                "Basic ",
                "Basic    ",
                "Basic\tYWxpY2U6c2VjcmV0",      /* a tab is not the separator */
                "BasicYWxpY2U6c2VjcmV0",
                "Basic YWxpY2U6c2VjcmV0 x",      /* junk after the credentials */
                "Basic YWxpY2U6 c2VjcmV0",
                "Basic YWxpY2U6c2VjcmV0,",
                "Basic YWxpY2U6c2VjcmU",         /* "alice:secre" without its '=' */
                "Basic YWxpY2U6c2VjcmU==",       /* too much padding */
                "Basic YWxpY2U6c2VjcmV=",        /* unused bits set: not canonical */
                "Basic YWxpY2U6c2VjcmU=YWxp",    /* padding in the middle */
                "Basic =YWxpY2U6c2VjcmV0",
                "Basic YWxpY2U6c2VjcmV0====",
                "Basic YWxp-2U6c2VjcmV0",        /* base64url alphabet */
                "Basic YWxp_2U6c2VjcmV0",
                "Basic !!!!",
                "Basic YW\xc3\xa9pY2U6",
                "Basic realm=\"x\"",
                "Digest username=\"alice\"",
                "Token abc",
                "Basicx YWxpY2U6c2VjcmV0",
                "Bas YWxpY2U6c2VjcmV0",
                "YWxpY2U6c2VjcmV0",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                auth_bad(bad[i]);
}

TEST(test_bearer) {
        bearer_ok("Bearer abc", "abc");
        bearer_ok("bearer abc", "abc");
        bearer_ok("BEARER abc", "abc");
        bearer_ok("Bearer    abc  ", "abc");
        bearer_ok("Bearer a-b.c_d~e+f/g", "a-b.c_d~e+f/g");
        bearer_ok("Bearer abc==", "abc==");
        bearer_ok("Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln");

        char tok[HTTP_AUTH_SECRET_MAX + 2];
        memset(tok, 't', sizeof(tok) - 1);
        tok[sizeof(tok) - 1] = 0;
        tok[HTTP_AUTH_SECRET_MAX] = 0;
        _cleanup_free_ char *longest = strdup_printf("Bearer %s", tok);
        bearer_ok(longest, tok);
        tok[HTTP_AUTH_SECRET_MAX] = 't';
        _cleanup_free_ char *too_long = strdup_printf("Bearer %s", tok);
        auth_bad(too_long);

        const char *bad[] = {
                "Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer a\"b", "Bearer a;b", "Bearer =abc",
                "Bearer ab=c", "Bearer a\x01", "Bearer a\x7f", "Bearer \xc3\xa9", "Bearer\tabc",
                "Bearer realm=\"x\"", "Bearer a\r\nX-Evil: 1", "Bearerabc", "Bearer2 abc",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                auth_bad(bad[i]);
}

TEST(test_challenges) {
        _cleanup_free_ char *c1 = http_bearer_challenge("https://reg.example/v2/token", "reg.example",
                                                        "repository:apps/search:pull,push", "insufficient_scope");
        ASSERT_STREQ(c1, "Bearer realm=\"https://reg.example/v2/token\",service=\"reg.example\","
                         "scope=\"repository:apps/search:pull,push\",error=\"insufficient_scope\"");
        _cleanup_free_ char *c2 = http_bearer_challenge("http://127.0.0.1:5000/v2/token", "plura", NULL, NULL);
        ASSERT_STREQ(c2, "Bearer realm=\"http://127.0.0.1:5000/v2/token\",service=\"plura\"");
        _cleanup_free_ char *c3 = http_bearer_challenge("r", "s", NULL, "invalid_token");
        ASSERT_STREQ(c3, "Bearer realm=\"r\",service=\"s\",error=\"invalid_token\"");
        _cleanup_free_ char *c4 = http_bearer_challenge("a\"b\\c", "q\"\"", "x\\", "");
        ASSERT_STREQ(c4, "Bearer realm=\"a\\\"b\\\\c\",service=\"q\\\"\\\"\",scope=\"x\\\\\",error=\"\"");
        _cleanup_free_ char *c5 = http_bearer_challenge("tab\there", "s", NULL, NULL);
        ASSERT_STREQ(c5, "Bearer realm=\"tab\there\",service=\"s\"");
        /* a value that cannot be a quoted-string (CR/LF would split the header) */
        ASSERT_TRUE(!http_bearer_challenge("r\r\nSet-Cookie: x", "s", NULL, NULL));
        ASSERT_TRUE(!http_bearer_challenge("r", "s\n", NULL, NULL));
        ASSERT_TRUE(!http_bearer_challenge("r", "s", "a\x01", NULL));
        ASSERT_TRUE(!http_bearer_challenge("r", "s", NULL, "e\x7f"));
        ASSERT_TRUE(!http_bearer_challenge(NULL, "s", NULL, NULL));
        ASSERT_TRUE(!http_bearer_challenge("r", NULL, NULL, NULL));

        _cleanup_free_ char *b1 = http_basic_challenge("plura");
        ASSERT_STREQ(b1, "Basic realm=\"plura\", charset=\"UTF-8\"");
        _cleanup_free_ char *b2 = http_basic_challenge("my \"registry\"\\");
        ASSERT_STREQ(b2, "Basic realm=\"my \\\"registry\\\"\\\\\", charset=\"UTF-8\"");
        _cleanup_free_ char *b3 = http_basic_challenge("");
        ASSERT_STREQ(b3, "Basic realm=\"\", charset=\"UTF-8\"");
        ASSERT_TRUE(!http_basic_challenge("a\nb"));
        ASSERT_TRUE(!http_basic_challenge(NULL));
}

/* ---- scopes ------------------------------------------------------------------------------- */

typedef struct Scopes {
        TokenScope *s;
        size_t n;
} Scopes;

static void scopes_done(Scopes *s) {
        token_scopes_free(s->s, s->n);
        *s = (Scopes) {};
}

static void check_scope(const TokenScope *s, const char *type, const char *name, const char *actions) {
        ASSERT_STREQ(s->type, type);
        ASSERT_STREQ(s->name, name);
        _cleanup_free_ char *want = strdup_printf("%s:%s:%s", type, name, actions);
        _cleanup_free_ char *got = token_scope_format(s);
        ASSERT_STREQ(got, want);
        ASSERT_TRUE(!s->actions[s->n_actions]);
}

static void scopes_bad(const char *v, int want) {
        _cleanup_(scopes_done) Scopes s = {};
        int r = token_scopes_parse(v, &s.s, &s.n);
        if (r != want)
                fprintf(stderr, "scope \"%.100s\": %d, expected %d\n", v, r, want);
        ASSERT_EQ(r, want);
}

TEST(test_scopes) {
        _cleanup_(scopes_done) Scopes s = {};
        ASSERT_OK(token_scopes_parse("repository:apps/search:pull", &s.s, &s.n));
        ASSERT_EQ(s.n, 1);
        ASSERT_EQ(s.s[0].n_actions, 1);
        ASSERT_STREQ(s.s[0].actions[0], "pull");
        check_scope(&s.s[0], "repository", "apps/search", "pull");

        /* several in one value, several spaces; appended to what is there */
        ASSERT_OK(token_scopes_parse("  repository:a/b:pull,push   registry:catalog:*  ", &s.s, &s.n));
        ASSERT_EQ(s.n, 3);
        check_scope(&s.s[1], "repository", "a/b", "pull,push");
        check_scope(&s.s[2], "registry", "catalog", "*");
        /* the name is everything between the first and the last ':' */
        ASSERT_OK(token_scopes_parse("repository:host:5000/a:pull", &s.s, &s.n));
        ASSERT_EQ(s.n, 4);
        check_scope(&s.s[3], "repository", "host:5000/a", "pull");
        /* duplicate actions, and a scope of the same type and name merged into the first one */
        ASSERT_OK(token_scopes_parse("repository:apps/search:push,pull,push repository:apps/search:delete,pull", &s.s, &s.n));
        ASSERT_EQ(s.n, 4);
        check_scope(&s.s[0], "repository", "apps/search", "pull,push,delete");
        ASSERT_EQ(s.s[0].n_actions, 3);
        /* same name, other type: a scope of its own */
        ASSERT_EQ(token_scopes_parse("repository(plugin):x:pull", &s.s, &s.n), -EINVAL);
        ASSERT_OK(token_scopes_parse("registry:apps/search:pull", &s.s, &s.n));
        ASSERT_EQ(s.n, 5);
        /* nothing at all is no scope */
        ASSERT_OK(token_scopes_parse("", &s.s, &s.n));
        ASSERT_OK(token_scopes_parse("    ", &s.s, &s.n));
        ASSERT_EQ(s.n, 5);
        /* actions with digits, '_' and '-' */
        ASSERT_OK(token_scopes_parse("repository:x:pull_2,a-b", &s.s, &s.n));
        check_scope(&s.s[5], "repository", "x", "pull_2,a-b");
        ASSERT_EQ(token_scopes_parse(NULL, &s.s, &s.n), -EINVAL);

        /* a failure leaves what was parsed before valid (freed by scopes_done) */
        ASSERT_EQ(token_scopes_parse("repository:y:pull repository:z:", &s.s, &s.n), -EINVAL);
        ASSERT_TRUE(s.n == 6 || s.n == 7);
}

TEST(test_scopes_malformed) {
        const char *bad[] = {
                "repository", "repository:", "repository:a", "repository::pull", ":a:pull", "::", ":::",
                "repository:a:", "repository:a:pull,", "repository:a:,pull", "repository:a:pull,,push",
                "Repository:a:pull", "repo-sitory:a:pull", "repo_sitory:a:pull", "repository(plugin):a:pull",
                "repository:a:PULL", "repository:a:pu ll", "repository:a:pull\t", "repository:a\001b:pull",
                "repository:a\x7f:pull", "repository:\xc3\xa9:pull", "repository:a:p\"ull", "repository:a:pull;",
                "repository:a:pull repository", "\trepository:a:pull", "repository:a:pull\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                scopes_bad(bad[i], -EINVAL);
}

TEST(test_scopes_limits) {
        /* 64 scopes, 32 actions each: accepted; one more: E2BIG */
        char *v = NULL;
        size_t vn = 0;
        FILE *f = open_memstream(&v, &vn);
        for (int i = 0; i < 64; i++)
                fprintf(f, "repository:r%d:pull ", i);
        fclose(f);
        _cleanup_(scopes_done) Scopes s = {};
        ASSERT_OK(token_scopes_parse(v, &s.s, &s.n));
        ASSERT_EQ(s.n, 64);
        /* merging into one of them is fine, a 65th is not */
        ASSERT_OK(token_scopes_parse("repository:r7:push", &s.s, &s.n));
        ASSERT_EQ(s.n, 64);
        ASSERT_EQ(token_scopes_parse("repository:r64:pull", &s.s, &s.n), -E2BIG);
        ASSERT_EQ(s.n, 64);
        _cleanup_free_ char *v65 = strdup_printf("%srepository:r64:pull", v);
        scopes_bad(v65, -E2BIG);
        free(v);

        v = NULL;
        f = open_memstream(&v, &vn);
        fputs("repository:a:", f);
        for (int i = 0; i < 32; i++)
                fprintf(f, "%sa%d", i ? "," : "", i);
        fclose(f);
        _cleanup_(scopes_done) Scopes t = {};
        ASSERT_OK(token_scopes_parse(v, &t.s, &t.n));
        ASSERT_EQ(t.s[0].n_actions, 32);
        /* duplicates do not count */
        ASSERT_OK(token_scopes_parse("repository:a:a0,a31", &t.s, &t.n));
        ASSERT_EQ(t.s[0].n_actions, 32);
        ASSERT_EQ(token_scopes_parse("repository:a:a32", &t.s, &t.n), -E2BIG);
        _cleanup_free_ char *v33 = strdup_printf("%s,a32", v);
        scopes_bad(v33, -E2BIG);
        free(v);
}

int main(void) {
        RUN(test_none);
        RUN(test_basic);
        RUN(test_basic_malformed);
        RUN(test_bearer);
        RUN(test_challenges);
        RUN(test_scopes);
        RUN(test_scopes_malformed);
        RUN(test_scopes_limits);
        return 0;
}
