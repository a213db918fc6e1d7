/* SPDX-License-Identifier: MIT */
/* The credentials plura reg sends: base64, podman/docker credential files, the order of the
 * sources (--user, $PLURA_TOKEN, $PLURA_USER + $PLURA_PASSWORD, the files). */
#include <stdlib.h>
#include <sys/stat.h>

#include "common/util.h"
#include "credentials.h"
#include "tests/unit/tests.h"

TEST(test_base64) {
        const char *cases[] = { "", "a", "ab", "abc", "abcd", "alice:pa:ss", "\xff\xfe\x01" };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = base64_encode(cases[i], strlen(cases[i]));
                char *d = NULL;
                size_t n;
                ASSERT_OK(base64_decode(e, strlen(e), &d, &n));
                ASSERT_EQ(n, strlen(cases[i]));
                ASSERT_TRUE(memcmp(d, cases[i], n) == 0);
                free(d);
        }
        _cleanup_free_ char *e = base64_encode("alice:secret", 12);
        ASSERT_STREQ(e, "YWxpY2U6c2VjcmV0");
        char *d = NULL;
        size_t n;
        ASSERT_EQ(base64_decode("YWxp!2U6", 8, &d, &n), -EINVAL);
        ASSERT_EQ(base64_decode("YWx", 3, &d, &n), -EINVAL);
        ASSERT_EQ(base64_decode("Y===", 4, &d, &n), -EINVAL);
        ASSERT_EQ(base64_decode("YQ==YQ==", 8, &d, &n), -EINVAL); /* padding only at the end */
}

TEST(test_auth_files) {
        char *pair = NULL;
        const char *podman = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"YWxpY2U6c2VjcmV0\"}}}";
        ASSERT_EQ(credentials_from_auth_file(podman, strlen(podman), "127.0.0.1:5000", &pair), 1);
        ASSERT_STREQ(pair, "alice:secret");
        free(pair);
        ASSERT_EQ(credentials_from_auth_file(podman, strlen(podman), "127.0.0.1:5001", &pair), 0);
        const char *docker = "{\"auths\":{\"https://reg.example:5000/v1/\":{\"auth\":\"Ym9iOnB3\"}},\"credsStore\":\"x\"}";
        ASSERT_EQ(credentials_from_auth_file(docker, strlen(docker), "reg.example:5000", &pair), 1);
        ASSERT_STREQ(pair, "bob:pw");
        free(pair);
        const char *bad[] = { "[]", "{", "{\"auths\":{\"h:1\":{\"auth\":\"!!\"}}}",
                              "{\"auths\":{\"h:1\":{\"auth\":\"bm9jb2xvbg==\"}}}" /* "nocolon" */ };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_EQ(credentials_from_auth_file(bad[i], strlen(bad[i]), "h:1", &pair), -EINVAL);
}

static char *found(const char *user_flag, char *source) {
        char *h = NULL, err[256] = "";
        int r = credentials_find(user_flag, "http://127.0.0.1:5000", &h, source, 64, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "credentials: %s\n", err);
        ASSERT_OK(r);
        return h;
}

TEST(test_order) {
        char dir[] = "/tmp/plura-creds-XXXXXX", source[64];
        ASSERT_TRUE(mkdtemp(dir));
        unsetenv("PLURA_TOKEN");
        unsetenv("PLURA_USER");
        unsetenv("PLURA_PASSWORD");
        unsetenv("REGISTRY_AUTH_FILE");
        unsetenv("DOCKER_CONFIG");
        setenv("HOME", dir, 1);
        setenv("XDG_RUNTIME_DIR", dir, 1);
        char *h = found(NULL, source);
        ASSERT_TRUE(h == NULL); /* nothing anywhere: no header */
        /* ~/.docker/config.json */
        _cleanup_free_ char *dd = strdup_printf("%s/.docker", dir), *df = strdup_printf("%s/config.json", dd);
        ASSERT_OK(mkdir_p(dd, 0700));
        const char *docker = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"ZG9ja2VyOmQ=\"}}}";
        ASSERT_OK(write_file_atomic(df, docker, strlen(docker), 0600));
        h = found(NULL, source);
        ASSERT_STREQ(h, "Basic ZG9ja2VyOmQ=");
        ASSERT_STREQ(source, "~/.docker/config.json");
        free(h);
        /* podman's file first */
        _cleanup_free_ char *pd = strdup_printf("%s/containers", dir), *pf = strdup_printf("%s/auth.json", pd);
        ASSERT_OK(mkdir_p(pd, 0700));
        const char *podman = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"cG9kbWFuOnA=\"}}}";
        ASSERT_OK(write_file_atomic(pf, podman, strlen(podman), 0600));
        h = found(NULL, source);
        ASSERT_STREQ(h, "Basic cG9kbWFuOnA=");
        free(h);
        /* $PLURA_USER + $PLURA_PASSWORD before the files; without the password it is an error */
        setenv("PLURA_USER", "env", 1);
        char *x = NULL, err[256];
        ASSERT_EQ(credentials_find(NULL, "http://127.0.0.1:5000", &x, source, 64, err, sizeof err), -EINVAL);
        setenv("PLURA_PASSWORD", "e", 1);
        h = found(NULL, source);
        _cleanup_free_ char *want = base64_encode("env:e", 5), *basic = strdup_printf("Basic %s", want);
        ASSERT_STREQ(h, basic);
        free(h);
        /* $PLURA_TOKEN before that, as a bearer */
        setenv("PLURA_TOKEN", "plura_abc_def", 1);
        h = found(NULL, source);
        ASSERT_STREQ(h, "Bearer plura_abc_def");
        free(h);
        /* --user first of all; USER:PASSWORD, or the password from $PLURA_PASSWORD */
        h = found("cli:pw", source);
        _cleanup_free_ char *w2 = base64_encode("cli:pw", 6), *b2 = strdup_printf("Basic %s", w2);
        ASSERT_STREQ(h, b2);
        free(h);
        h = found("cli", source);
        _cleanup_free_ char *w3 = base64_encode("cli:e", 5), *b3 = strdup_printf("Basic %s", w3);
        ASSERT_STREQ(h, b3);
        ASSERT_STREQ(source, "--user");
        free(h);
        unsetenv("PLURA_TOKEN");
        unsetenv("PLURA_USER");
        unsetenv("PLURA_PASSWORD");
        /* a malformed file entry is an error that names the file, not a silent anonymous request */
        const char *broken = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"%%%\"}}}";
        ASSERT_OK(write_file_atomic(pf, broken, strlen(broken), 0600));
        ASSERT_EQ(credentials_find(NULL, "http://127.0.0.1:5000", &x, source, 64, err, sizeof err), -EINVAL);
        ASSERT_TRUE(strstr(err, "containers/auth.json") != NULL);
        unlink(pf);
        unlink(df);
        rmdir(pd);
        rmdir(dd);
        rmdir(dir);
}

int main(void) {
        RUN(test_base64);
        RUN(test_auth_files);
        RUN(test_order);
        return 0;
}
