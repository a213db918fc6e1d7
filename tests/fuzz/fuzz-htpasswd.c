/* SPDX-License-Identifier: MIT */
/* htpasswd files: any bytes. A refusal names a line that exists; an accepted file has one user per
 * line that is neither blank nor a comment, and each of those users is found. (No verification
 * here: a fuzzed cost 31 would run bcrypt for days.) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry-api/htpasswd.h"

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

/* Every user an accepted text must hold, found independently of the parser's own loop. */
static void check_users(const Htpasswd *h, const char *text, size_t len) {
        size_t users = 0;
        for (size_t i = 0; i < len;) {
                const char *nl = memchr(text + i, '\n', len - i);
                size_t end = nl ? (size_t) (nl - text) : len;
                const char *s = text + i;
                size_t n = end - i;
                while (n > 0 && is_blank(*s))
                        s++, n--;
                while (n > 0 && is_blank(s[n - 1]))
                        n--;
                if (n > 0 && s[0] != '#') {
                        const char *colon = memchr(s, ':', n);
                        if (!colon || colon == s || colon - s > 128)
                                abort();
                        char user[129];
                        memcpy(user, s, (size_t) (colon - s));
                        user[colon - s] = 0;
                        if (strlen(user) != (size_t) (colon - s) || !htpasswd_has_user(h, user))
                                abort();
                        users++;
                }
                i = nl ? end + 1 : len;
        }
        if (users != htpasswd_size(h))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;
        char err[256];
        Htpasswd *h = NULL;
        int r = htpasswd_parse(text, size, &h, err, sizeof(err));
        if (r == 0) {
                check_users(h, text, size);
                htpasswd_free(h);
                return 0;
        }
        if (r != -EINVAL || h)
                abort();
        /* "line N: ..." with 1 <= N <= the number of lines */
        unsigned line = 0;
        if (sscanf(err, "line %u: ", &line) != 1 || line < 1)
                abort();
        size_t lines = 1;
        for (size_t i = 0; i + 1 < size; i++)
                lines += data[i] == '\n';
        if (line > lines)
                abort();
        return 0;
}
