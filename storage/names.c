/* SPDX-License-Identifier: MIT */
/* Repository names, tags and manifest references (distribution-spec grammar), matched by
 * hand: no regex engine on the request path. */

#include "storage/holds.h"
#include "storage/storage.h"

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 * Returns the position after the component, or NULL if it does not match. */
static const char *match_component(const char *p) {
        if (!is_lower_alnum(*p))
                return NULL;
        for (;;) {
                while (is_lower_alnum(*p))
                        p++;
                /* separator: ".", "_", "__" or one or more "-" */
                const char *q = p;
                if (*q == '.')
                        q++;
                else if (*q == '_')
                        q += q[1] == '_' ? 2 : 1;
                else if (*q == '-')
                        while (*q == '-')
                                q++;
                else
                        return p; /* end of component */
                if (!is_lower_alnum(*q))
                        return NULL; /* a separator must be followed by [a-z0-9] */
                p = q;
        }
}

bool repo_name_is_valid(const char *name) {
        if (!name)
                return false;
        const char *p = name;
        for (;;) {
                p = match_component(p);
                if (!p)
                        return false;
                if ((size_t) (p - name) > REPO_NAME_MAX)
                        return false;
                if (*p == 0)
                        return true;
                if (*p != '/')
                        return false;
                p++;
        }
}

static bool is_tag_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == '-';
}

bool tag_is_valid(const char *tag) {
        if (!tag)
                return false;
        /* first character: [a-zA-Z0-9_], i.e. a tag character other than '.' and '-' */
        if (!is_tag_char(tag[0]) || tag[0] == '.' || tag[0] == '-')
                return false;
        size_t n = 1;
        for (; tag[n]; n++)
                if (n >= TAG_MAX || !is_tag_char(tag[n]))
                        return false;
        return true;
}

/* A tag never contains ':', a digest always does. Digests of algorithms we do not implement
 * are refused too (-EINVAL): we can not have stored anything under them. */
int reference_parse(const char *ref) {
        if (!ref)
                return -EINVAL;
        if (strchr(ref, ':'))
                return digest_parse(ref, NULL) == 0 ? REFERENCE_DIGEST : -EINVAL;
        return tag_is_valid(ref) ? REFERENCE_TAG : -EINVAL;
}

/* RCA case ids (holds, WORM exports); here with the other name checks so that the client
 * binary validates them without linking the store. */
bool case_id_is_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > CASE_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (i == 0 ? !alnum : !(alnum || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}
