/* SPDX-License-Identifier: MIT */
#pragma once

/* The regular expressions of the configuration (the tag policy's immutable, forbidden and moving
 * patterns; retention's keep_forever), matched by plura itself in time linear in the tag:
 * glibc's regcomp() takes gigabytes for "a{255}{255}{255}" and minutes for "(((a?){0,9}){0,9})*",
 * which a configuration (and the config fuzzer) can hold.
 *
 * The syntax is POSIX extended (ERE) as regcomp(REG_EXTENDED | REG_NOSUB) reads it in the C
 * locale, minus what POSIX leaves undefined or what is not ERE:
 *   literals; '.' (any byte); '^' and '$' (anchors, anywhere); bracket expressions with ranges,
 *   negation and the classes [:alnum:] [:alpha:] [:blank:] [:cntrl:] [:digit:] [:graph:]
 *   [:lower:] [:print:] [:punct:] [:space:] [:upper:] [:xdigit:] (byte values, C locale);
 *   groups; '|'; one of '*', '+', '?', {m}, {m,}, {m,n}, {,n} after an atom (m, n <= 255);
 *   '\' before a punctuation character makes it literal.
 * Refused with the offset and the reason: two repetition operators in a row ("a+*", POSIX:
 * undefined; group them), a repetition of nothing, '\' before a letter or digit (GNU's \w, \b,
 * back-references: "\d" would silently be a 'd' in glibc), collating elements [. .] and
 * equivalence classes [= =], unbalanced parentheses and brackets, and '{' that starts no interval
 * (write \{).
 *
 * Limits: a pattern longer than REGEXP_MAX_LENGTH bytes, nested deeper than REGEXP_MAX_DEPTH
 * groups, or whose counted repetitions expand to more than REGEXP_MAX_PROGRAM instructions is
 * refused (-E2BIG). A match costs at most (length of the string + 1) x program size steps. A
 * Regexp is immutable once built: threads may match with one at the same time. */

#include <stdbool.h>
#include <stddef.h>

#include "macros.h"

#define REGEXP_MAX_LENGTH 1024
#define REGEXP_MAX_DEPTH 64
#define REGEXP_MAX_PROGRAM 20000

typedef struct Regexp Regexp;

/* 0 and *ret on success; -EINVAL (not such a pattern), -E2BIG (over a limit) or -ENOMEM, with
 * "<problem> at offset N" in err (the caller names the pattern and where it came from). */
int regexp_new(const char *pattern, Regexp **ret, char *err, size_t errlen);
Regexp *regexp_free(Regexp *re);
DEFINE_TRIVIAL_CLEANUP_FUNC(Regexp *, regexp_free);

/* Whether the pattern matches anywhere in s (as regexec() without REG_NOTBOL/REG_NOTEOL): 1 yes,
 * 0 no, -ENOMEM if the match state could not be allocated (programs above 256 instructions). */
int regexp_match(const Regexp *re, const char *s);

/* The instructions of the compiled program (what REGEXP_MAX_PROGRAM bounds). */
size_t regexp_program_size(const Regexp *re);
