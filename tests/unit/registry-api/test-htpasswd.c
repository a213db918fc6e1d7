/* SPDX-License-Identifier: MIT */
/* htpasswd files: entries written by Apache's htpasswd (apache2-utils) and by libxcrypt, every
 * refused hash type named with its line, malformed lines, and the dummy bcrypt for unknown users. */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "common/macros.h"
#include "common/util.h"
#include "registry-api/htpasswd.h"
#include "tests/unit/tests.h"

static char tmpdir[] = "/tmp/test-htpasswd-XXXXXX";

/* The output of a shell command (an htpasswd line), without its final newline. */
static _printf_(1, 2) char *run_output(const char *fmt, ...) {
        char cmd[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        FILE *f = popen(cmd, "r");
        ASSERT_TRUE(f);
        char buf[1024] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        ASSERT_EQ(pclose(f), 0);
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = 0;
        char *s = strdup(buf);
        ASSERT_TRUE(s);
        return s;
}

/* "user:<hash of password with a setting made by crypt_gensalt_rn(prefix, cost)>" */
static char *crypt_line(const char *user, const char *password, const char *prefix, unsigned long cost) {
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        ASSERT_TRUE(crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof(setting)));
        struct crypt_data *cd = calloc(1, sizeof(*cd));
        ASSERT_TRUE(cd);
        const char *h = crypt_r(password, setting, cd);
        ASSERT_TRUE(h && h[0] != '*');
        char *line = strdup_printf("%s:%s", user, h);
        free(cd);
        ASSERT_TRUE(line);
        return line;
}

static Htpasswd *parse_ok(const char *text, size_t len) {
        char err[512] = "";
        Htpasswd *h = NULL;
        int r = htpasswd_parse(text, len, &h, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "parse: %s\n", err);
        ASSERT_OK(r);
        return h;
}

static Htpasswd *parse_str(const char *text) {
        return parse_ok(text, strlen(text));
}

/* A refused text: -EINVAL and exactly this message. */
static void refused(const char *text, size_t len, const char *want) {
        char err[512] = "";
        Htpasswd *h = NULL;
        int r = htpasswd_parse(text, len, &h, err, sizeof(err));
        if (r != -EINVAL || !streq(err, want))
                fprintf(stderr, "text \"%.*s\": r=%d err \"%s\", expected \"%s\"\n", (int) MIN(len, 200), text, r, err, want);
        ASSERT_EQ(r, -EINVAL);
        ASSERT_TRUE(!h);
        ASSERT_STREQ(err, want);
}

static void refused_str(const char *text, const char *want) {
        refused(text, strlen(text), want);
}

#define ONLY_BCRYPT "hash refused: only bcrypt ($2y$/$2b$) is accepted; re-create it with htpasswd -B"

TEST(test_htpasswd_tool) {
        _cleanup_free_ char *a = run_output("htpasswd -nbB -C 4 alice 'correct horse'");
        _cleanup_free_ char *b = run_output("htpasswd -nbB -C 5 bob 'p:a:s:s'");
        _cleanup_free_ char *c = run_output("htpasswd -nbB -C 4 carol ''");
        ASSERT_TRUE(startswith(a, "alice:$2y$04$"));
        _cleanup_free_ char *text = strdup_printf("# users of the registry\n\n%s\n   %s   \n%s\n", a, b, c);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(text);
        ASSERT_EQ(htpasswd_size(h), 3);
        ASSERT_TRUE(htpasswd_has_user(h, "alice"));
        ASSERT_TRUE(htpasswd_has_user(h, "bob"));
        ASSERT_TRUE(htpasswd_has_user(h, "carol"));
        ASSERT_FALSE(htpasswd_has_user(h, "Alice"));
        ASSERT_FALSE(htpasswd_has_user(h, "alic"));
        ASSERT_FALSE(htpasswd_has_user(h, ""));
        ASSERT_EQ(htpasswd_verify(h, "alice", "correct horse"), 1);
        ASSERT_EQ(htpasswd_verify(h, "alice", "correct horse "), 0);
        ASSERT_EQ(htpasswd_verify(h, "alice", "Correct horse"), 0);
        ASSERT_EQ(htpasswd_verify(h, "alice", ""), 0);
        ASSERT_EQ(htpasswd_verify(h, "bob", "p:a:s:s"), 1);
        ASSERT_EQ(htpasswd_verify(h, "bob", "correct horse"), 0);
        ASSERT_EQ(htpasswd_verify(h, "carol", ""), 1);
        ASSERT_EQ(htpasswd_verify(h, "carol", "x"), 0);
        ASSERT_EQ(htpasswd_verify(h, "mallory", "correct horse"), 0);
        ASSERT_EQ(htpasswd_verify(h, "mallory", ""), 0);
        ASSERT_EQ(htpasswd_verify(h, NULL, "x"), -EINVAL);
        /* longer than any passphrase crypt_r takes */
        char longpw[600];
        memset(longpw, 'x', sizeof(longpw) - 1);
        longpw[sizeof(longpw) - 1] = 0;
        ASSERT_EQ(htpasswd_verify(h, "alice", longpw), 0);

        /* and the file itself, as htpasswd -c writes it */
        _cleanup_free_ char *path = strdup_printf("%s/htpasswd", tmpdir);
        _cleanup_free_ char *out = run_output("htpasswd -cbB -C 4 %s dave s3cret 2>&1 && htpasswd -bB -C 4 %s erin 'sp ace' 2>&1",
                                              path, path);
        ASSERT_TRUE(strstr(out, "Adding password for user erin"));
        char err[512] = "";
        _cleanup_(htpasswd_freep) Htpasswd *f = NULL;
        ASSERT_OK(htpasswd_load(path, &f, err, sizeof(err)));
        ASSERT_EQ(htpasswd_size(f), 2);
        ASSERT_EQ(htpasswd_verify(f, "dave", "s3cret"), 1);
        ASSERT_EQ(htpasswd_verify(f, "erin", "sp ace"), 1);
        ASSERT_EQ(htpasswd_verify(f, "erin", "sp"), 0);
}

TEST(test_libxcrypt_prefixes) {
        _cleanup_free_ char *b = crypt_line("b", "pw-b", "$2b$", 4);
        _cleanup_free_ char *y = crypt_line("y", "pw-y", "$2y$", 4);
        _cleanup_free_ char *a = crypt_line("a", "pw-a", "$2a$", 4);
        ASSERT_TRUE(startswith(a, "a:$2a$04$"));
        _cleanup_free_ char *text = strdup_printf("%s\n%s\n%s\n", b, y, a);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(text);
        ASSERT_EQ(htpasswd_size(h), 3);
        ASSERT_EQ(htpasswd_verify(h, "b", "pw-b"), 1);
        ASSERT_EQ(htpasswd_verify(h, "y", "pw-y"), 1);
        ASSERT_EQ(htpasswd_verify(h, "a", "pw-a"), 1);
        ASSERT_EQ(htpasswd_verify(h, "a", "pw-b"), 0);
        ASSERT_EQ(htpasswd_verify(h, "b", "pw-a"), 0);
}

/* Each refused scheme on line 3, after a good line and a comment. */
static void refused_on_line_3(const char *entry, const char *kind) {
        _cleanup_free_ char *good = crypt_line("alice", "x", "$2b$", 4);
        _cleanup_free_ char *text = strdup_printf("%s\n# comment\n%s\n", good, entry);
        _cleanup_free_ char *want = strdup_printf("line 3: user bob: %s " ONLY_BCRYPT, kind);
        refused_str(text, want);
}

TEST(test_refused_schemes) {
        _cleanup_free_ char *md5 = run_output("htpasswd -nbm bob secret");
        _cleanup_free_ char *sha = run_output("htpasswd -nbs bob secret");
        _cleanup_free_ char *des = run_output("htpasswd -nbd bob secret 2>/dev/null");
        _cleanup_free_ char *plain = run_output("htpasswd -nbp bob secret 2>/dev/null");
        ASSERT_TRUE(startswith(md5, "bob:$apr1$"));
        ASSERT_TRUE(startswith(sha, "bob:{SHA}"));
        ASSERT_EQ(strlen(des), strlen("bob:") + 13);
        ASSERT_STREQ(plain, "bob:secret");
        refused_on_line_3(md5, "MD5 ($apr1$)");
        refused_on_line_3(sha, "SHA-1 ({SHA})");
        refused_on_line_3(des, "DES crypt");
        refused_on_line_3(plain, "plain-text (or unrecognised)");

        static const struct {
                const char *prefix, *kind;
                unsigned long cost;
        } xcrypt[] = {
                { "$1$", "MD5-crypt ($1$)", 0 },
                { "$5$", "SHA-256-crypt ($5$)", 1000 },
                { "$6$", "SHA-512-crypt ($6$)", 1000 },
                { "$y$", "yescrypt ($y$)", 0 },
                { "$gy$", "gost-yescrypt ($gy$)", 0 },
                { "$7$", "scrypt ($7$)", 0 },
                { "$sha1", "SHA-1-crypt ($sha1$)", 0 },
                { "$md5", "Sun MD5 ($md5$)", 0 },
                { "$3$", "NT hash ($3$)", 0 },
                { "_", "extended DES crypt (_)", 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(xcrypt); i++) {
                char setting[CRYPT_GENSALT_OUTPUT_SIZE];
                if (!crypt_gensalt_rn(xcrypt[i].prefix, xcrypt[i].cost, NULL, 0, setting, sizeof(setting))) {
                        printf("# libcrypt here does not make %s hashes: skipped\n", xcrypt[i].prefix);
                        continue;
                }
                _cleanup_free_ char *line = crypt_line("bob", "secret", xcrypt[i].prefix, xcrypt[i].cost);
                refused_on_line_3(line, xcrypt[i].kind);
        }
        refused_on_line_3("bob:{SSHA}3xBt3zr5N8kHBt3QE1OynJl7vUFbjR9s", "salted SHA-1 ({SSHA})");
        refused_on_line_3("bob:$2x$04$abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1e",
                          "bcrypt with the pre-2011 8-bit bug ($2x$)");
        refused_on_line_3("bob:$9$whatever", "unknown crypt scheme ($...$)");
        /* bcrypt, but not well formed */
        refused_str("bob:$2y$03$abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1e\n",
                    "line 1: user bob: bcrypt cost outside 04..31");
        refused_str("bob:$2y$32$abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1e\n",
                    "line 1: user bob: bcrypt cost outside 04..31");
        const char *malformed[] = {
                "bob:$2y$10$short\n",
                "bob:$2y$10$abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1ee\n", /* 61 */
                "bob:$2y$1x$abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1e\n",
                "bob:$2y$10$abcdefghijklmnopqrstuuJ0eK1Dkdnl!j3xdZhvZrqvn5xj8pV1e\n",
                "bob:$2y$10abcdefghijklmnopqrstuuJ0eK1DkdnlVj3xdZhvZrqvn5xj8pV1ee\n",
                "bob:$2y$\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                refused_str(malformed[i], "line 1: user bob: malformed bcrypt hash (expected $2y$NN$ and 53 characters of [./A-Za-z0-9])");
}

TEST(test_malformed_lines) {
        _cleanup_free_ char *good = crypt_line("alice", "x", "$2b$", 4);
        const char *hash = strchr(good, ':') + 1;

        _cleanup_free_ char *dup = strdup_printf("%s\nbob:%s\n\n%s\n%s\n", good, hash, good, good);
        refused_str(dup, "line 4: user alice given twice (first on line 1)");
        _cleanup_free_ char *dup2 = strdup_printf("bob:%s\n%s\nbob:%s\n", hash, good, hash);
        refused_str(dup2, "line 3: user bob given twice (first on line 1)");

        _cleanup_free_ char *colon = strdup_printf("%s\nbo:b:%s\n", good, hash);
        refused_str(colon, "line 2: user bo: more than one ':' (a user name cannot contain ':')");
        _cleanup_free_ char *trailing = strdup_printf("carol:%s:comment\n", hash);
        refused_str(trailing, "line 1: user carol: more than one ':' (a user name cannot contain ':')");
        refused_str("alice\n", "line 1: no ':' between user name and hash");
        refused_str("\n\n# x\nalice $2y$\n", "line 4: no ':' between user name and hash");
        _cleanup_free_ char *empty_user = strdup_printf(":%s\n", hash);
        refused_str(empty_user, "line 1: empty user name");
        refused_str("alice:\n", "line 1: user alice: empty password hash");
        refused_str("alice:   \n", "line 1: user alice: empty password hash");

        const char *bad_names[] = { "bo\001b", "bo\tb", "b\x7f", "b\xc3\xa9", "\x1b[31mred" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                _cleanup_free_ char *t = strdup_printf("%s\n%s:%s\n", good, bad_names[i], hash);
                refused_str(t, "line 2: user name with a control character or non-ASCII byte");
        }
        _cleanup_free_ char *sp = strdup_printf("bob :%s\n", hash);
        refused_str(sp, "line 1: user name ends with a space (before ':')");

        char name[130];
        memset(name, 'n', 129);
        name[129] = 0;
        _cleanup_free_ char *too_long = strdup_printf("%s:%s\n", name, hash);
        refused_str(too_long, "line 1: user name longer than 128 bytes");
        name[128] = 0;
        _cleanup_free_ char *longest = strdup_printf("%s:%s\n", name, hash);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(longest);
        ASSERT_TRUE(htpasswd_has_user(h, name));
        ASSERT_EQ(htpasswd_verify(h, name, "x"), 1);

        /* a space inside a name is printable ASCII */
        _cleanup_free_ char *inner = strdup_printf("build bot:%s\n", hash);
        _cleanup_(htpasswd_freep) Htpasswd *h2 = parse_str(inner);
        ASSERT_TRUE(htpasswd_has_user(h2, "build bot"));

        /* NUL bytes are not line ends */
        _cleanup_free_ char *nul = strdup_printf("%s\nbob:%s\n", good, hash);
        size_t nlen = strlen(nul);
        nul[strlen(good) + 3] = 0;
        refused(nul, nlen, "line 2: NUL byte");

        /* a long message is cut, not overflowed */
        char small[12] = "";
        Htpasswd *x = NULL;
        ASSERT_EQ(htpasswd_parse("alice\n", 6, &x, small, sizeof(small)), -EINVAL);
        ASSERT_STREQ(small, "line 1: no ");
        ASSERT_EQ(htpasswd_parse("alice\n", 6, &x, NULL, 0), -EINVAL);
}

TEST(test_line_ends) {
        _cleanup_free_ char *a = crypt_line("alice", "pa", "$2b$", 4);
        _cleanup_free_ char *b = crypt_line("bob", "pb", "$2b$", 4);
        /* CRLF */
        _cleanup_free_ char *crlf = strdup_printf("# crlf\r\n%s\r\n\r\n%s\r\n", a, b);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(crlf);
        ASSERT_EQ(htpasswd_size(h), 2);
        ASSERT_EQ(htpasswd_verify(h, "alice", "pa"), 1);
        ASSERT_EQ(htpasswd_verify(h, "bob", "pb"), 1);
        _cleanup_free_ char *crlf_bad = strdup_printf("%s\r\n\r\nbob:{SHA}x=\r\n", a);
        refused_str(crlf_bad, "line 3: user bob: SHA-1 ({SHA}) " ONLY_BCRYPT);
        /* no final newline */
        _cleanup_free_ char *nofinal = strdup_printf("%s\n%s", a, b);
        _cleanup_(htpasswd_freep) Htpasswd *h2 = parse_str(nofinal);
        ASSERT_EQ(htpasswd_size(h2), 2);
        ASSERT_EQ(htpasswd_verify(h2, "bob", "pb"), 1);
        _cleanup_free_ char *nofinal_bad = strdup_printf("%s\nbob:plain", a);
        refused_str(nofinal_bad, "line 2: user bob: plain-text (or unrecognised) " ONLY_BCRYPT);
        /* whitespace around lines, tabs */
        _cleanup_free_ char *ws = strdup_printf("  \t%s\t \n\t\n   # indented comment\n", a);
        _cleanup_(htpasswd_freep) Htpasswd *h3 = parse_str(ws);
        ASSERT_EQ(htpasswd_size(h3), 1);
        ASSERT_EQ(htpasswd_verify(h3, "alice", "pa"), 1);
        /* empty and comment-only files */
        _cleanup_(htpasswd_freep) Htpasswd *e = parse_ok("", 0);
        ASSERT_EQ(htpasswd_size(e), 0);
        ASSERT_EQ(htpasswd_verify(e, "alice", "pa"), 0);
        _cleanup_(htpasswd_freep) Htpasswd *e2 = parse_str("# nobody yet\n\n");
        ASSERT_EQ(htpasswd_size(e2), 0);
        _cleanup_(htpasswd_freep) Htpasswd *e3 = parse_ok(NULL, 0);
        ASSERT_EQ(htpasswd_size(e3), 0);
}

TEST(test_load_errors) {
        char err[512] = "";
        Htpasswd *h = NULL;
        _cleanup_free_ char *missing = strdup_printf("%s/nope", tmpdir);
        ASSERT_EQ(htpasswd_load(missing, &h, err, sizeof(err)), -ENOENT);
        _cleanup_free_ char *want = strdup_printf("%s: No such file or directory", missing);
        ASSERT_STREQ(err, want);
        _cleanup_free_ char *bad = strdup_printf("%s/bad", tmpdir);
        ASSERT_OK(write_file_atomic(bad, "# x\nbob:$apr1$abc$def\n", 21, 0600));
        ASSERT_EQ(htpasswd_load(bad, &h, err, sizeof(err)), -EINVAL);
        _cleanup_free_ char *want2 = strdup_printf("%s: line 2: user bob: MD5 ($apr1$) " ONLY_BCRYPT, bad);
        ASSERT_STREQ(err, want2);
        ASSERT_EQ(htpasswd_load(tmpdir, &h, err, sizeof(err)), -EISDIR);
}

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static double verify_ms(const Htpasswd *h, const char *user, int rounds) {
        double t0 = now_ms();
        for (int i = 0; i < rounds; i++)
                ASSERT_EQ(htpasswd_verify(h, user, "wrong"), 0);
        return (now_ms() - t0) / rounds;
}

/* An unknown user costs a bcrypt of the file's most common cost, like a known one. */
TEST(test_unknown_user_costs_a_bcrypt) {
        _cleanup_free_ char *a = crypt_line("alice", "pa", "$2b$", 9);
        _cleanup_free_ char *b = crypt_line("bob", "pb", "$2b$", 9);
        _cleanup_free_ char *c = crypt_line("carol", "pc", "$2b$", 4);
        _cleanup_free_ char *text = strdup_printf("%s\n%s\n%s\n", c, a, b);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(text);
        double known = 0, unknown = 0, cheap = 0;
        for (int i = 0; i < 3; i++) {
                known += verify_ms(h, "alice", 2);
                unknown += verify_ms(h, "mallory", 2);
                cheap += verify_ms(h, "carol", 2);
        }
        printf("# bcrypt cost 9: known user %.2f ms, unknown user %.2f ms; cost 4: %.2f ms\n", known / 3, unknown / 3, cheap / 3);
        /* 32 times the work of cost 4: far apart even on a loaded machine */
        ASSERT_TRUE(unknown > 4 * cheap);
        ASSERT_TRUE(unknown > known / 4);
}

static void *verify_thread(void *arg) {
        const Htpasswd *h = arg;
        for (int i = 0; i < 20; i++) {
                ASSERT_EQ(htpasswd_verify(h, "alice", "pa"), 1);
                ASSERT_EQ(htpasswd_verify(h, "alice", "pb"), 0);
                ASSERT_EQ(htpasswd_verify(h, "nobody", "pa"), 0);
        }
        return NULL;
}

TEST(test_threads) {
        _cleanup_free_ char *a = crypt_line("alice", "pa", "$2b$", 4);
        _cleanup_(htpasswd_freep) Htpasswd *h = parse_str(a);
        pthread_t t[4];
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                ASSERT_EQ(pthread_create(&t[i], NULL, verify_thread, h), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                ASSERT_EQ(pthread_join(t[i], NULL), 0);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(tmpdir));
        RUN(test_htpasswd_tool);
        RUN(test_libxcrypt_prefixes);
        RUN(test_refused_schemes);
        RUN(test_malformed_lines);
        RUN(test_line_ends);
        RUN(test_load_errors);
        RUN(test_unknown_user_costs_a_bcrypt);
        RUN(test_threads);
        _cleanup_free_ char *rm = strdup_printf("rm -rf %s", tmpdir);
        ASSERT_EQ(system(rm), 0);
        return 0;
}
