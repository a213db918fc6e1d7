/* SPDX-License-Identifier: MIT */
/* common/regexp.c: POSIX extended patterns matched in linear time. What it matches is checked
 * against glibc's regexec() (the engine it replaces) on a table and on generated patterns; the
 * patterns that made regcomp() take gigabytes or minutes compile and match at once or are
 * refused with a reason. */
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/regexp.h"
#include "tests/unit/tests.h"

static int match(const char *pattern, const char *s) {
        _cleanup_(regexp_freep) Regexp *re = NULL;
        char err[256];
        int r = regexp_new(pattern, &re, err, sizeof err);
        if (r < 0)
                return r;
        return regexp_match(re, s);
}

static int glibc_match(const char *pattern, const char *s) {
        regex_t re;
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return -EINVAL;
        int r = regexec(&re, s, 0, NULL, 0) == 0;
        regfree(&re);
        return r;
}

TEST(test_matches) {
        static const struct {
                const char *pattern, *s;
                int expect;
        } cases[] = {
                { "^latest$", "latest", 1 },
                { "^latest$", "latest2", 0 },
                { "latest", "not-latest-x", 1 },
                { "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$", "v1.2.3", 1 },
                { "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$", "1.20.3-rc.1_abcdef0", 1 },
                { "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$", "1.2.3_abc", 0 },
                { "^v?[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?(_[0-9a-fA-F]{6,40})?$", "1.2", 0 },
                { "^(dev|stable|candidate)$", "stable", 1 },
                { "^(dev|stable|candidate)$", "stabl", 0 },
                { "a{3}", "aa", 0 },
                { "^a{3}$", "aaa", 1 },
                { "^a{2,3}$", "aaaa", 0 },
                { "^a{2,}$", "aaaaaaa", 1 },
                { "^a{,2}$", "", 1 },
                { "^a{,2}$", "aaa", 0 },
                { "^(ab)+$", "ababab", 1 },
                { "^(ab)+$", "ababa", 0 },
                { "^[^a-c]*$", "xyz", 1 },
                { "^[^a-c]*$", "xbz", 0 },
                { "^[]x]+$", "]x]", 1 },
                { "^[a-]+$", "a-a", 1 },
                { "^[[:digit:]]+$", "123", 1 },
                { "^[[:upper:][:digit:]]+$", "A1B2", 1 },
                { "^[[:upper:][:digit:]]+$", "A1b2", 0 },
                { "\\.", "a.b", 1 },
                { "\\.", "ab", 0 },
                { "^.$", "x", 1 },
                { "a|^b", "cb", 0 },
                { "x$|^y", "yx", 1 },
                { "()", "", 1 },
                { "^(a|)$", "", 1 },
                { "^(((a?){0,9}){0,9})*$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0 },
                { "^(((a?){0,9}){0,9})*$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = match(cases[i].pattern, cases[i].s);
                if (r != cases[i].expect)
                        fprintf(stderr, "\"%s\" on \"%s\": %d, expected %d\n", cases[i].pattern, cases[i].s, r, cases[i].expect);
                ASSERT_EQ(r, cases[i].expect);
                /* glibc agrees (it compiles these quickly) */
                if (i < ELEMENTSOF(cases) - 2)
                        ASSERT_EQ(glibc_match(cases[i].pattern, cases[i].s), cases[i].expect);
        }
}

TEST(test_refusals) {
        static const struct {
                const char *pattern, *why;
                int error;
        } cases[] = {
                { "a{255}{255}{255}", "two repetition operators in a row", -EINVAL },
                { "a+*", "two repetition operators in a row", -EINVAL },
                { "((((a{100}){100}){100}){100})", "expand to more than 20000 instructions", -E2BIG },
                { "(a{255}){255}", "expand to more than 20000 instructions", -E2BIG },
                { "a{256}", "a repetition count above 255", -E2BIG },
                { "a{3,2}", "the maximum is below the minimum", -EINVAL },
                { "a{x}", "'{' starts no interval", -EINVAL },
                { "a{", "'{' starts no interval", -EINVAL },
                { "a{,}", "'{' starts no interval", -EINVAL },
                { "*a", "'*' repeats nothing", -EINVAL },
                { "(+a)", "'+' repeats nothing", -EINVAL },
                { "^\\d+$", "\"\\d\" is not an escape", -EINVAL },
                { "\\1", "\"\\1\" is not an escape", -EINVAL },
                { "a\\", "trailing backslash", -EINVAL },
                { "(a", "unbalanced '('", -EINVAL },
                { "a)", "unbalanced ')'", -EINVAL },
                { "[a-", "unterminated bracket expression", -EINVAL },
                { "[z-a]", "invalid range 'z-a'", -EINVAL },
                { "[[:word:]]", "unknown character class \"[:word:]\"", -EINVAL },
                { "[[.a.]]", "collating elements", -EINVAL },
                { "[[:alpha:]", "unterminated bracket expression", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Regexp *re = NULL;
                char err[256] = "";
                int r = regexp_new(cases[i].pattern, &re, err, sizeof err);
                if (r != cases[i].error || !strstr(err, cases[i].why) || !strstr(err, " at offset "))
                        fprintf(stderr, "\"%s\": %d \"%s\", expected %d \"%s\"\n", cases[i].pattern, r, err, cases[i].error,
                                cases[i].why);
                ASSERT_EQ(r, cases[i].error);
                ASSERT_TRUE(strstr(err, cases[i].why) != NULL);
                ASSERT_TRUE(re == NULL);
        }
        char long_pattern[REGEXP_MAX_LENGTH + 2];
        memset(long_pattern, 'a', sizeof long_pattern - 1);
        long_pattern[sizeof long_pattern - 1] = 0;
        ASSERT_EQ(match(long_pattern, "a"), -E2BIG);
        char deep[2 * REGEXP_MAX_DEPTH + 8] = "";
        for (int i = 0; i <= REGEXP_MAX_DEPTH; i++)
                strcat(deep, "(");
        ASSERT_EQ(match(deep, "a"), -E2BIG);
}

/* Patterns from a small grammar, matched by both engines on strings over the same alphabet.
 * Only shapes glibc compiles quickly (one level of repetition); the generator is seeded, so the
 * run is the same every time. */
static uint32_t rng_state = 12345;
static uint32_t rng(uint32_t n) {
        rng_state = rng_state * 1103515245u + 12345u;
        return (rng_state >> 16) % n;
}

static void gen_atom(char *p, size_t size, int depth) {
        static const char *const atoms[] = { "a", "b", ".", "[ab]", "[^a]", "[[:digit:]]", "1", "\\.", "^", "$" };
        if (depth < 2 && rng(4) == 0) {
                char inner[64] = "", other[64] = "";
                gen_atom(inner, sizeof inner, depth + 1);
                gen_atom(other, sizeof other, depth + 1);
                snprintf(p, size, rng(2) ? "(%s%s)" : "(%s|%s)", inner, other);
        } else /* anchors at the top only: glibc gets "(b|^){2}" wrong ("ab" matches ".(b|^){2}" but
                * not ".(b|^)(b|^)") */
                snprintf(p, size, "%s", atoms[rng(depth == 0 ? ELEMENTSOF(atoms) : ELEMENTSOF(atoms) - 2)]);
        if (depth == 0 && p[0] != '^' && p[0] != '$') {
                static const char *const reps[] = { "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "{,2}" };
                strncat(p, reps[rng(ELEMENTSOF(reps))], size - strlen(p) - 1);
        }
}

TEST(test_same_as_glibc) {
        static const char *const strings[] = { "", "a", "b", "ab", "ba", "aab", "1", "a.1", "..", "aaaa", "abab1", "b1a", "x" };
        size_t compared = 0;
        for (int i = 0; i < 3000; i++) {
                char pattern[256] = "";
                int pieces = 1 + (int) rng(3);
                for (int k = 0; k < pieces; k++) {
                        char atom[128];
                        gen_atom(atom, sizeof atom, 0);
                        strncat(pattern, atom, sizeof pattern - strlen(pattern) - 1);
                }
                if (rng(5) == 0) {
                        char alt[128];
                        gen_atom(alt, sizeof alt, 0);
                        strncat(pattern, "|", sizeof pattern - strlen(pattern) - 1);
                        strncat(pattern, alt, sizeof pattern - strlen(pattern) - 1);
                }
                for (size_t s = 0; s < ELEMENTSOF(strings); s++) {
                        int ours = match(pattern, strings[s]), theirs = glibc_match(pattern, strings[s]);
                        if (ours != theirs)
                                fprintf(stderr, "\"%s\" on \"%s\": plura %d, glibc %d\n", pattern, strings[s], ours, theirs);
                        ASSERT_EQ(ours, theirs);
                        compared++;
                }
        }
        printf("# %zu matches the same as glibc's\n", compared);
}

/* What the engine is for: glibc needs ~3.4 GiB for the first and minutes for the fourth; here
 * each is refused at once or compiles into a small program that matches in one pass. */
TEST(test_pathological_is_cheap) {
        for (int i = 0; i < 100; i++) {
                ASSERT_EQ(match("a{255}{255}{255}", "a"), -EINVAL);
                ASSERT_EQ(match("((a{250}){250}){250}", "a"), -E2BIG);
                ASSERT_EQ(match("(a|b{,3}){,2}", "bbb"), 1);
                ASSERT_EQ(match("((((a|b{,3}){,2}){6,})+)*c", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), 0);
        }
        _cleanup_(regexp_freep) Regexp *re = NULL;
        char err[256];
        ASSERT_OK(regexp_new("(((a?){0,9}){0,9})*", &re, err, sizeof err));
        printf("# (((a?){0,9}){0,9})*: %zu instructions\n", regexp_program_size(re));
        ASSERT_TRUE(regexp_program_size(re) < 1000);
        regexp_free(steal_pointer(&re));
        ASSERT_OK(regexp_new("((((a|b{,3}){,2}){6,})+)*c", &re, err, sizeof err));
        printf("# ((((a|b{,3}){,2}){6,})+)*c: %zu instructions\n", regexp_program_size(re));
        ASSERT_TRUE(regexp_program_size(re) < 1000);
}

int main(void) {
        RUN(test_matches);
        RUN(test_refusals);
        RUN(test_same_as_glibc);
        RUN(test_pathological_is_cheap);
        return 0;
}
