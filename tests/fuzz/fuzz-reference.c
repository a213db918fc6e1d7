/* SPDX-License-Identifier: MIT */
/* Repository names, tags, references and digests: the hand-written matchers are checked
 * against the spec's regular expressions (POSIX ERE, C locale) as an oracle. */
#include <regex.h>

#include "storage/storage.h"

static regex_t re_name, re_tag, re_digest, re_hex;

static void compile(regex_t *re, const char *pattern) {
        if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        compile(&re_name, "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$");
        compile(&re_tag, "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$");
        compile(&re_digest, "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$");
        compile(&re_hex, "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$");
        return 0;
}

static bool matches(regex_t *re, const char *s) {
        return regexec(re, s, 0, NULL, 0) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 1024) /* keeps the regex oracle fast; longer inputs add nothing */
                return 0;
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        size_t len = strlen(s);

        bool name = repo_name_is_valid(s);
        if (name != (matches(&re_name, s) && len <= REPO_NAME_MAX))
                abort();

        bool tag = tag_is_valid(s);
        if (tag != matches(&re_tag, s))
                abort();

        DigestAlgorithm a = _DIGEST_ALGORITHM_INVALID;
        int d = digest_parse(s, &a);
        bool grammar = matches(&re_digest, s), supported = matches(&re_hex, s);
        if (supported) {
                if (d != 0 || a < 0 || a >= _DIGEST_ALGORITHM_MAX || len >= DIGEST_MAX_LEN)
                        abort();
                if (!startswith(s, digest_algorithm_to_string(a)) || digest_hex(s) != s + strlen(digest_algorithm_to_string(a)) + 1)
                        abort();
        } else if (grammar) {
                /* well-formed: either an algorithm we do not know, or one we know with bad hex */
                bool known = startswith(s, "sha256:") || startswith(s, "sha512:");
                if (d != (known ? -EINVAL : -EOPNOTSUPP))
                        abort();
        } else if (d != -EINVAL)
                abort();

        int r = reference_parse(s);
        if (r == REFERENCE_TAG && !tag)
                abort();
        if (r == REFERENCE_DIGEST && d != 0)
                abort();
        if (r < 0 && (tag || d == 0))
                abort();
        free(s);
        return 0;
}
