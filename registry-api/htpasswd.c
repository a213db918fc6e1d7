/* SPDX-License-Identifier: MIT */
#include <crypt.h>
#include <errno.h>
#include <stdarg.h>

#include <openssl/crypto.h>

#include "common/util.h"
#include "registry-api/htpasswd.h"

#define USER_MAX 128
#define BCRYPT_LEN 60          /* "$2b$" "NN" "$" 22 salt + 31 hash characters */
#define BCRYPT_COST_MIN 4
#define BCRYPT_COST_MAX 31
#define HTPASSWD_FILE_MAX (64U * 1024U * 1024U)

typedef struct Entry {
        char *user;
        char hash[BCRYPT_LEN + 1];
        unsigned line;
} Entry;

struct Htpasswd {
        Entry *entries; /* sorted by user */
        size_t n;
        /* a bcrypt setting of the most common cost, run for unknown users */
        char dummy[CRYPT_GENSALT_OUTPUT_SIZE];
};

Htpasswd *htpasswd_free(Htpasswd *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n; i++)
                free(h->entries[i].user);
        free(h->entries);
        free(h);
        return NULL;
}

static _printf_(4, 5) int line_error(char *err, size_t errlen, unsigned line, const char *fmt, ...) {
        if (err && errlen > 0) {
                int k = snprintf(err, errlen, "line %u: ", line);
                if (k >= 0 && (size_t) k < errlen) {
                        va_list ap;
                        va_start(ap, fmt);
                        vsnprintf(err + k, errlen - (size_t) k, fmt, ap);
                        va_end(ap);
                }
        }
        return -EINVAL;
}

static bool is_bcrypt_char(char c) {
        return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool all_bcrypt_chars(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_bcrypt_char(s[i]))
                        return false;
        return true;
}

/* What a non-bcrypt hash is, to name it in the refusal; NULL for "$2?$" (checked on its own). */
static const char *hash_kind(const char *h, size_t n) {
        static const struct {
                const char *prefix, *name;
        } kinds[] = {
                { "$apr1$", "MD5 ($apr1$)" },
                { "{SHA}", "SHA-1 ({SHA})" },
                { "{SSHA}", "salted SHA-1 ({SSHA})" },
                { "$1$", "MD5-crypt ($1$)" },
                { "$5$", "SHA-256-crypt ($5$)" },
                { "$6$", "SHA-512-crypt ($6$)" },
                { "$y$", "yescrypt ($y$)" },
                { "$gy$", "gost-yescrypt ($gy$)" },
                { "$7$", "scrypt ($7$)" },
                { "$md5", "Sun MD5 ($md5$)" },
                { "$sha1$", "SHA-1-crypt ($sha1$)" },
                { "$3$", "NT hash ($3$)" },
                { "$2x$", "bcrypt with the pre-2011 8-bit bug ($2x$)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                size_t l = strlen(kinds[i].prefix);
                if (n >= l && memcmp(h, kinds[i].prefix, l) == 0)
                        return kinds[i].name;
        }
        if (n >= 4 && h[0] == '$' && h[1] == '2' && h[3] == '$' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y'))
                return NULL;
        if (n == 13 && all_bcrypt_chars(h, n))
                return "DES crypt";
        if (n == 20 && h[0] == '_' && all_bcrypt_chars(h + 1, n - 1))
                return "extended DES crypt (_)";
        if (n > 0 && h[0] == '$')
                return "unknown crypt scheme ($...$)";
        return "plain-text (or unrecognised)";
}

/* "$2y$NN$" + 53 characters of bcrypt's alphabet, cost 4..31. */
static int parse_bcrypt(const char *h, size_t n, unsigned *ret_cost, const char **problem) {
        if (n != BCRYPT_LEN || h[6] != '$' || h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' ||
            !all_bcrypt_chars(h + 7, n - 7)) {
                *problem = "malformed bcrypt hash (expected $2y$NN$ and 53 characters of [./A-Za-z0-9])";
                return -EINVAL;
        }
        unsigned cost = (unsigned) (h[4] - '0') * 10 + (unsigned) (h[5] - '0');
        if (cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX) {
                *problem = "bcrypt cost outside 04..31";
                return -EINVAL;
        }
        *ret_cost = cost;
        return 0;
}

/* A user name for messages: only names that are valid get quoted. */
static int check_user(const char *u, size_t n, const char **problem) {
        if (n == 0) {
                *problem = "empty user name";
                return -EINVAL;
        }
        if (n > USER_MAX) {
                *problem = "user name longer than 128 bytes";
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) u[i] < 0x20 || (unsigned char) u[i] > 0x7e) {
                        *problem = "user name with a control character or non-ASCII byte";
                        return -EINVAL;
                }
        if (u[n - 1] == ' ') {
                *problem = "user name ends with a space (before ':')";
                return -EINVAL;
        }
        return 0;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

typedef struct Parser {
        Htpasswd *h;
        size_t allocated;
        unsigned costs[BCRYPT_COST_MAX + 1];
        char *err;
        size_t errlen;
} Parser;

static int add_entry(Parser *p, const char *user, size_t ulen, const char *hash, unsigned line) {
        Htpasswd *h = p->h;
        if (h->n == p->allocated) {
                size_t na = p->allocated ? p->allocated * 2 : 16;
                Entry *e = reallocarray(h->entries, na, sizeof(Entry));
                if (!e)
                        return -ENOMEM;
                h->entries = e;
                p->allocated = na;
        }
        Entry *e = &h->entries[h->n];
        e->user = strndup(user, ulen);
        if (!e->user)
                return -ENOMEM;
        memcpy(e->hash, hash, BCRYPT_LEN);
        e->hash[BCRYPT_LEN] = 0;
        e->line = line;
        h->n++;
        return 0;
}

/* One line without its '\n'. */
static int parse_line(Parser *p, const char *s, size_t n, unsigned line) {
        while (n > 0 && is_blank(*s))
                s++, n--;
        while (n > 0 && is_blank(s[n - 1]))
                n--;
        if (n == 0 || s[0] == '#')
                return 0;
        if (memchr(s, 0, n))
                return line_error(p->err, p->errlen, line, "NUL byte");
        const char *colon = memchr(s, ':', n);
        if (!colon)
                return line_error(p->err, p->errlen, line, "no ':' between user name and hash");
        size_t ulen = (size_t) (colon - s);
        const char *problem = NULL;
        if (check_user(s, ulen, &problem) < 0)
                return line_error(p->err, p->errlen, line, "%s", problem);
        const char *hash = colon + 1;
        size_t hlen = n - ulen - 1;
        if (memchr(hash, ':', hlen))
                return line_error(p->err, p->errlen, line, "user %.*s: more than one ':' (a user name cannot contain ':')",
                                  (int) ulen, s);
        if (hlen == 0)
                return line_error(p->err, p->errlen, line, "user %.*s: empty password hash", (int) ulen, s);
        const char *kind = hash_kind(hash, hlen);
        if (kind)
                return line_error(p->err, p->errlen, line,
                                  "user %.*s: %s hash refused: only bcrypt ($2y$/$2b$) is accepted; re-create it with htpasswd -B",
                                  (int) ulen, s, kind);
        unsigned cost = 0;
        if (parse_bcrypt(hash, hlen, &cost, &problem) < 0)
                return line_error(p->err, p->errlen, line, "user %.*s: %s", (int) ulen, s, problem);
        p->costs[cost]++;
        return add_entry(p, s, ulen, hash, line);
}

static int entry_compare(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        int c = strcmp(x->user, y->user);
        if (c != 0)
                return c;
        return x->line < y->line ? -1 : x->line > y->line;
}

/* After sorting, a duplicate is next to its first occurrence; the earliest second occurrence in
 * the file is reported. */
static int check_duplicates(Parser *p) {
        const Entry *dup = NULL, *first = NULL;
        for (size_t i = 1; i < p->h->n; i++) {
                const Entry *a = &p->h->entries[i - 1], *b = &p->h->entries[i];
                if (streq(a->user, b->user) && (!dup || b->line < dup->line)) {
                        dup = b;
                        first = a;
                        while (first > p->h->entries && streq((first - 1)->user, b->user))
                                first--;
                }
        }
        if (dup)
                return line_error(p->err, p->errlen, dup->line, "user %s given twice (first on line %u)",
                                  dup->user, first->line);
        return 0;
}

static int make_dummy(Parser *p) {
        unsigned cost = 10, best = 0; /* 10 only when the file has no user at all */
        for (unsigned c = BCRYPT_COST_MIN; c <= BCRYPT_COST_MAX; c++)
                if (p->costs[c] > 0 && p->costs[c] >= best) {
                        best = p->costs[c];
                        cost = c;
                }
        if (!crypt_gensalt_rn("$2b$", cost, NULL, 0, p->h->dummy, sizeof(p->h->dummy)))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

int htpasswd_parse(const char *text, size_t len, Htpasswd **ret, char *err, size_t errlen) {
        if (!text && len > 0)
                return -EINVAL;
        _cleanup_(htpasswd_freep) Htpasswd *h = calloc(1, sizeof(Htpasswd));
        if (!h)
                return -ENOMEM;
        Parser p = { .h = h, .err = err, .errlen = errlen };
        unsigned line = 1;
        for (size_t i = 0; i < len; line++) {
                const char *nl = memchr(text + i, '\n', len - i);
                size_t end = nl ? (size_t) (nl - text) : len;
                int r = parse_line(&p, text + i, end - i, line);
                if (r < 0)
                        return r;
                i = nl ? end + 1 : len;
        }
        if (h->n > 1)
                qsort(h->entries, h->n, sizeof(Entry), entry_compare);
        int r = check_duplicates(&p);
        if (r < 0)
                return r;
        r = make_dummy(&p);
        if (r < 0)
                return r;
        *ret = steal_pointer(&h);
        return 0;
}

int htpasswd_load(const char *path, Htpasswd **ret, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_full_file(path, HTPASSWD_FILE_MAX, &text, &len);
        if (r < 0) {
                if (err && errlen > 0)
                        snprintf(err, errlen, "%s: %s", path, r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
                return r;
        }
        char msg[512] = "";
        r = htpasswd_parse(text, len, ret, msg, sizeof(msg));
        if (r < 0 && err && errlen > 0)
                snprintf(err, errlen, "%s: %s", path, msg);
        return r;
}

size_t htpasswd_size(const Htpasswd *h) {
        return h ? h->n : 0;
}

static const Entry *find_entry(const Htpasswd *h, const char *user) {
        if (!h || !user || h->n == 0)
                return NULL;
        Entry key = { .user = (char *) user, .line = 0 };
        size_t lo = 0, hi = h->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(key.user, h->entries[mid].user);
                if (c == 0)
                        return &h->entries[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

bool htpasswd_has_user(const Htpasswd *h, const char *user) {
        return find_entry(h, user) != NULL;
}

/* crypt_r() of password with setting: 1 if the result equals expect (BCRYPT_LEN bytes, compared in
 * constant time), 0 if not, -errno if bcrypt failed. */
static int bcrypt_check(const char *password, const char *setting, const char *expect) {
        struct crypt_data *cd = calloc(1, sizeof(struct crypt_data)); /* ~32 KiB: not on the stack */
        if (!cd)
                return -ENOMEM;
        errno = 0;
        const char *out = crypt_r(password, setting, cd);
        int r;
        if (!out || out[0] == '*')
                r = errno > 0 ? -errno : -EINVAL;
        else
                r = expect && strlen(out) == BCRYPT_LEN && CRYPTO_memcmp(out, expect, BCRYPT_LEN) == 0;
        OPENSSL_cleanse(cd, sizeof(*cd));
        free(cd);
        return r;
}

int htpasswd_verify(const Htpasswd *h, const char *user, const char *password) {
        if (!h || !user || !password)
                return -EINVAL;
        /* no bcrypt accepts a longer phrase (crypt_r: ERANGE); nothing about users is told by it */
        if (strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE)
                return 0;
        const Entry *e = find_entry(h, user);
        if (e)
                return bcrypt_check(password, e->hash, e->hash);
        if (h->n == 0) /* no user to hide */
                return 0;
        int r = bcrypt_check(password, h->dummy, NULL);
        return r < 0 ? r : 0;
}
