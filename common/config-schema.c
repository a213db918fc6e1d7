/* SPDX-License-Identifier: MIT */
/* The configuration schema (see config-schema.h): a tree of nodes, one per value, from the
 * document's top level down. An object node lists its keys, a map node checks its keys with a
 * function and gives the node of its values, an array node the node of its elements; leaves
 * are strings, booleans, integers and numbers with a range, durations, regular expressions,
 * repository globs and enums. Any node may add a check of its own, which runs once the
 * node's type checks passed. Where a check needs knowledge of a module (the gates governance
 * implements, how gc compiles a regex), its comment names the module: keep the two in step.
 * common/ depends on no module, so that knowledge is written down here, not linked in. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-schema.h"
#include "config.h"
#include "regexp.h"
#include "util.h"

typedef enum NodeType {
        NODE_OBJECT,   /* the keys in fields, nothing else */
        NODE_MAP,      /* any key check_key accepts, each value an `items` */
        NODE_ARRAY,    /* elements `items`, size min..max (max 0: unbounded) */
        NODE_ONE_OF,   /* the first of `alternatives` whose JSON type matches */
        NODE_STRING,   /* length min..max (max 0: unbounded) */
        NODE_BOOL,
        NODE_INTEGER,  /* min..max */
        NODE_NUMBER,   /* integer or real, min..max */
        NODE_DURATION, /* config_duration_ns(), min..max ns */
        NODE_REGEX,    /* POSIX extended, compiled as policy and retention do */
        NODE_GLOB,     /* repository glob (repo_glob_match) */
        NODE_ENUM,     /* one of `values` */
        _NODE_TYPE_MAX,
        _NODE_TYPE_INVALID = -1,
} NodeType;

typedef struct Checker Checker;
typedef struct Node Node;

typedef struct Field {
        const char *key;
        const Node *node;
} Field;

struct Node {
        NodeType type;
        const char *expect;              /* what "expected ..." says instead of the type's words */
        const Field *fields;             /* OBJECT, terminated by { NULL } */
        const char *const *required;     /* OBJECT: keys that must be there, NULL-terminated */
        const char *noun;                /* OBJECT, MAP: what a key is ("unknown <noun>"), default "key" */
        const Node *items;               /* ARRAY elements, MAP values */
        /* MAP; from_user: the key is in the user's document, not only in the defaults */
        int (*check_key)(Checker *c, const Node *n, const char *key, bool from_user);
        const Node *const *alternatives; /* ONE_OF, NULL-terminated */
        const char *const *values;       /* ENUM, NULL-terminated */
        int64_t min, max;
        /* after the type's checks passed; u is the user's value here (NULL: only the defaults') */
        int (*check)(Checker *c, json_t *v, json_t *u);
};

/* One validation: the merged document, where we are in it, where the error goes. Beside each
 * value of the merged document walks the user's value at the same path, so that a check can
 * tell what the user wrote from what the defaults brought. */
struct Checker {
        json_t *root;
        char *err;
        size_t errlen;
        char path[512];
        size_t len;
};

#define DURATION_WORDS "a duration like \"90s\", \"15m\", \"24h\" or \"7d\", or an integer number of seconds"

/* ------------------------------------------------------------------ paths and errors */

static void path_append(Checker *c, const char *fmt, ...) _printf_(2, 3);
static void path_append(Checker *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(c->path + c->len, sizeof c->path - c->len, fmt, ap);
        va_end(ap);
        if (k > 0)
                c->len = MIN(c->len + (size_t) k, sizeof c->path - 1);
}

static bool key_is_plain(const char *k) {
        if (!*k)
                return false;
        for (const char *p = k; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_-:/*?@+", *p)))
                        return false;
        return true;
}

/* Keys that would read ambiguously in a dotted path (dots, brackets, spaces, control
 * characters) are written as ["..."], escaped so that a log line stays one line; so are keys
 * longer than 64 bytes, cut there, so that the path leaves room for the problem in the message. */
#define PATH_KEY_MAX 64
static size_t path_push_key(Checker *c, const char *key) {
        size_t saved = c->len;
        if (key_is_plain(key) && strlen(key) <= PATH_KEY_MAX) {
                path_append(c, "%s%s", c->len ? "." : "", key);
                return saved;
        }
        path_append(c, "[\"");
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *) key; *p && n < PATH_KEY_MAX; p++, n++) {
                if (*p == '"' || *p == '\\')
                        path_append(c, "\\%c", *p);
                else if (*p < 0x20 || *p == 0x7f)
                        path_append(c, "\\x%02x", *p);
                else
                        path_append(c, "%c", *p);
        }
        path_append(c, "%s\"]", strlen(key) > n ? "..." : "");
        return saved;
}

static size_t path_push_index(Checker *c, size_t i) {
        size_t saved = c->len;
        path_append(c, "[%zu]", i);
        return saved;
}

static void path_pop(Checker *c, size_t saved) {
        c->len = saved;
        c->path[saved] = 0;
}

static int vfail(Checker *c, const char *fmt, va_list ap) _printf_(2, 0);
static int vfail(Checker *c, const char *fmt, va_list ap) {
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        snprintf(c->err, c->errlen, "%s: %s", c->len ? c->path : "(top level)", msg);
        return -EINVAL;
}

static int fail(Checker *c, const char *fmt, ...) _printf_(2, 3);
static int fail(Checker *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(c, fmt, ap);
        va_end(ap);
        return r;
}

/* For checks of an object that find fault with one of its keys. */
static int fail_key(Checker *c, const char *key, const char *fmt, ...) _printf_(3, 4);
static int fail_key(Checker *c, const char *key, const char *fmt, ...) {
        size_t saved = path_push_key(c, key);
        va_list ap;
        va_start(ap, fmt);
        int r = vfail(c, fmt, ap);
        va_end(ap);
        path_pop(c, saved);
        return r;
}

static void join(char *buf, size_t n, const char *word) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", l ? ", " : "", word);
}

/* What a value of node n must be, for "expected ..." */
static const char *describe(const Node *n, char *buf, size_t len) {
        if (n->expect)
                return n->expect;
        switch (n->type) {
        case NODE_OBJECT:
        case NODE_MAP:
                return "an object";
        case NODE_ARRAY:
                return "an array";
        case NODE_STRING:
                return n->min > 0 ? "a non-empty string" : "a string";
        case NODE_BOOL:
                return "true or false";
        case NODE_INTEGER:
        case NODE_NUMBER: {
                const char *what = n->type == NODE_INTEGER ? "an integer" : "a number";
                if (n->min == 0 && n->max == INT64_MAX)
                        snprintf(buf, len, "a non-negative %s", what + (n->type == NODE_INTEGER ? 3 : 2));
                else if (n->min == 1 && n->max == INT64_MAX)
                        snprintf(buf, len, "a positive %s", what + (n->type == NODE_INTEGER ? 3 : 2));
                else if (n->max == INT64_MAX)
                        snprintf(buf, len, "%s of at least %" PRIi64, what, n->min);
                else
                        snprintf(buf, len, "%s %" PRIi64 "..%" PRIi64, what, n->min, n->max);
                return buf;
        }
        case NODE_DURATION:
                return DURATION_WORDS;
        case NODE_REGEX:
                return "a regular expression (POSIX extended)";
        case NODE_GLOB:
                return "a repository glob like \"apps/**\"";
        case NODE_ENUM:
                snprintf(buf, len, "one of ");
                for (const char *const *v = n->values; *v; v++)
                        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", v == n->values ? "" : ", ", *v);
                return buf;
        case NODE_ONE_OF:
        default:
                return "a value of another type";
        }
}

static int fail_expected(Checker *c, const Node *n) {
        char buf[256];
        return fail(c, "expected %s", describe(n, buf, sizeof buf));
}

/* ------------------------------------------------------------------ node types */

static int check_node(Checker *c, const Node *n, json_t *v, json_t *u);

static bool type_matches(const Node *n, const json_t *v) {
        switch (n->type) {
        case NODE_OBJECT:
        case NODE_MAP:
                return json_is_object(v);
        case NODE_ARRAY:
                return json_is_array(v);
        case NODE_BOOL:
                return json_is_boolean(v);
        case NODE_INTEGER:
                return json_is_integer(v);
        case NODE_NUMBER:
                return json_is_number(v);
        case NODE_DURATION:
                return json_is_string(v) || json_is_integer(v);
        case NODE_STRING:
        case NODE_REGEX:
        case NODE_GLOB:
        case NODE_ENUM:
                return json_is_string(v);
        case NODE_ONE_OF:
                for (const Node *const *a = n->alternatives; *a; a++)
                        if (type_matches(*a, v))
                                return true;
                return false;
        default:
                return false;
        }
}

static int check_object(Checker *c, const Node *n, json_t *v, json_t *u) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
                const Field *f = n->fields;
                while (f->key && !streq(f->key, k))
                        f++;
                if (f->key)
                        continue;
                char known[768] = "";
                for (f = n->fields; f->key; f++)
                        join(known, sizeof known, f->key);
                return fail_key(c, k, "unknown %s (known: %s)", n->noun ?: "key", known);
        }
        for (const Field *f = n->fields; f->key; f++) {
                e = json_object_get(v, f->key);
                if (!e) {
                        char buf[256];
                        for (const char *const *q = n->required; q && *q; q++)
                                if (streq(*q, f->key))
                                        return fail_key(c, f->key, "missing; expected %s", describe(f->node, buf, sizeof buf));
                        continue;
                }
                size_t saved = path_push_key(c, f->key);
                int r = check_node(c, f->node, e, json_object_get(u, f->key));
                path_pop(c, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_map(Checker *c, const Node *n, json_t *v, json_t *u) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
                json_t *uk = json_object_get(u, k);
                size_t saved = path_push_key(c, k);
                int r = n->check_key ? n->check_key(c, n, k, uk != NULL) : 0;
                if (r >= 0)
                        r = check_node(c, n->items, e, uk);
                path_pop(c, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_array(Checker *c, const Node *n, json_t *v, json_t *u) {
        size_t size = json_array_size(v);
        if ((int64_t) size < n->min || (n->max > 0 && (int64_t) size > n->max)) {
                char buf[256];
                if (n->max == 0)
                        return fail(c, "expected %s with at least %" PRIi64 " element(s)", describe(n, buf, sizeof buf), n->min);
                return fail(c, "expected %s with %" PRIi64 "..%" PRIi64 " elements", describe(n, buf, sizeof buf), n->min,
                            n->max);
        }
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
                size_t saved = path_push_index(c, i);
                int r = check_node(c, n->items, e, json_array_get(u, i));
                path_pop(c, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_one_of(Checker *c, const Node *n, json_t *v, json_t *u) {
        for (const Node *const *a = n->alternatives; *a; a++)
                if (type_matches(*a, v))
                        return check_node(c, *a, v, u);
        return fail_expected(c, n);
}

static int check_string(Checker *c, const Node *n, json_t *v, json_t *u) {
        /* no NUL inside: the loaders do not pass JSON_ALLOW_NUL */
        size_t l = json_string_length(v);
        if ((int64_t) l < n->min || (n->max > 0 && (int64_t) l > n->max))
                return fail_expected(c, n);
        return 0;
}

static int check_bool(Checker *c, const Node *n, json_t *v, json_t *u) {
        return 0;
}

static int check_integer(Checker *c, const Node *n, json_t *v, json_t *u) {
        json_int_t i = json_integer_value(v);
        if (i < n->min || i > n->max)
                return fail_expected(c, n);
        return 0;
}

static int check_number(Checker *c, const Node *n, json_t *v, json_t *u) {
        double d = json_number_value(v);
        if (!(d >= (double) n->min && d <= (double) n->max))
                return fail_expected(c, n);
        return 0;
}

static int check_duration(Checker *c, const Node *n, json_t *v, json_t *u) {
        int64_t ns;
        int r = config_duration_ns(v, &ns);
        if (r == -ERANGE)
                return fail(c, "duration too large");
        if (r < 0)
                return fail(c, "expected " DURATION_WORDS);
        if (ns < n->min || ns > n->max)
                return fail_expected(c, n);
        return 0;
}

static int check_regex(Checker *c, const Node *n, json_t *v, json_t *u) {
        int r = check_string(c, n, v, u);
        if (r < 0)
                return r;
        /* what governance/policy.c (patterns_parse) and gc/retention.c (parse_rule) build */
        _cleanup_(regexp_freep) Regexp *re = NULL;
        char buf[256];
        r = regexp_new(json_string_value(v), &re, buf, sizeof buf);
        if (r == -ENOMEM)
                return fail(c, "out of memory");
        if (r < 0)
                return fail(c, "invalid regular expression \"%.200s\": %s", json_string_value(v), buf);
        return 0;
}

/* A glob that can match a repository name: lower-case path components (the OCI name grammar
 * has no upper case) with '*', '**' and '?' (common/util.c repo_glob_match). */
static int check_glob(Checker *c, const Node *n, json_t *v, json_t *u) {
        int r = check_string(c, n, v, u);
        if (r < 0)
                return r;
        const char *s = json_string_value(v);
        bool ok = *s && *s != '/' && s[strlen(s) - 1] != '/' && !strstr(s, "//");
        for (const char *p = s; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._-/*?", *p);
        if (!ok)
                return fail(c, "\"%.200s\" is not a repository glob (lower-case name components separated by '/'; "
                            "'*' matches within one component, '**' across components, '?' one character)", s);
        return 0;
}

static int check_enum(Checker *c, const Node *n, json_t *v, json_t *u) {
        for (const char *const *e = n->values; *e; e++)
                if (streq(*e, json_string_value(v)))
                        return 0;
        return fail_expected(c, n);
}

static int (*const type_checks[_NODE_TYPE_MAX])(Checker *c, const Node *n, json_t *v, json_t *u) = {
        [NODE_OBJECT] = check_object,     [NODE_MAP] = check_map,       [NODE_ARRAY] = check_array,
        [NODE_ONE_OF] = check_one_of,     [NODE_STRING] = check_string, [NODE_BOOL] = check_bool,
        [NODE_INTEGER] = check_integer,   [NODE_NUMBER] = check_number, [NODE_DURATION] = check_duration,
        [NODE_REGEX] = check_regex,       [NODE_GLOB] = check_glob,     [NODE_ENUM] = check_enum,
};

static int check_node(Checker *c, const Node *n, json_t *v, json_t *u) {
        if (!type_matches(n, v))
                /* a duration's expect says its range */
                return n->type == NODE_DURATION ? fail(c, "expected " DURATION_WORDS) : fail_expected(c, n);
        int r = type_checks[n->type](c, n, v, u);
        if (r >= 0 && n->check)
                r = n->check(c, v, u);
        return r;
}

int config_duration_ns(const json_t *v, int64_t *ret) {
        if (json_is_integer(v)) {
                json_int_t s = json_integer_value(v);
                if (s < 0)
                        return -EINVAL;
                if (s > INT64_MAX / (int64_t) NSEC_PER_SEC)
                        return -ERANGE;
                *ret = s * (int64_t) NSEC_PER_SEC;
                return 0;
        }
        if (!json_is_string(v))
                return -EINVAL;
        return parse_duration_ns(json_string_value(v), ret);
}

/* ------------------------------------------------------------------ checks of single keys */

static int check_listen(Checker *c, json_t *v, json_t *u) {
        if (config_parse_listen(json_string_value(v), NULL, NULL) < 0)
                return fail(c, "expected \"HOST:PORT\" (\"127.0.0.1:5000\", \":5000\" for every address, \"[::1]:5000\")");
        return 0;
}

/* A per-client cap above the total is refused where the user wrote it; the default one is
 * lowered to a smaller total (config.c) */
static int check_http(Checker *c, json_t *v, json_t *u) {
        json_int_t all = json_integer_value(json_object_get(v, "max_connections"));
        json_int_t per = json_integer_value(json_object_get(v, "max_connections_per_client"));
        if (per > all && json_object_get(u, "max_connections_per_client"))
                return fail_key(c, "max_connections_per_client", "expected 1..%" PRIi64 " (at most http.max_connections)",
                                (int64_t) all);
        return 0;
}

/* The environments channels/<env>/<svc> uses: channels.envs of the merged document (the
 * default has it; channels is checked before gc, so a bad list was refused already). */
static json_t *channel_envs(Checker *c) {
        return json_object_get(json_object_get(c->root, "channels"), "envs");
}

/* Gate and retention window keys, as governance/ resolves a promotion target
 * (channel_ref_parse, gates_for) and gc/retention.c a window (gc_effective_window): "<env>"
 * (its candidate pointer), "<env>:candidate", and "<last env>:stable" (only the last
 * environment has a stable pointer, channel_ref_step). A key only the defaults have ("stg")
 * stays when the user's channels.envs has no such environment, as it cannot be removed by a
 * merge: it never applies, and is not the user's typo. */
static int check_channel_target(Checker *c, const Node *n, const char *key, bool from_user) {
        json_t *envs = channel_envs(c);
        size_t n_envs = json_array_size(envs);
        const char *colon = strchr(key, ':');
        size_t el = colon ? (size_t) (colon - key) : strlen(key);
        for (size_t i = 0; i < n_envs; i++) {
                const char *e = json_string_value(json_array_get(envs, i));
                if (!e || strlen(e) != el || strncmp(e, key, el) != 0)
                        continue;
                if (!colon || streq(colon + 1, "candidate") || (streq(colon + 1, "stable") && i + 1 == n_envs))
                        return 0;
        }
        if (!from_user)
                return 0;
        char known[768] = "";
        for (size_t i = 0; i < n_envs; i++) {
                const char *e = json_string_value(json_array_get(envs, i));
                char full[128];
                if (!e)
                        continue;
                join(known, sizeof known, e);
                snprintf(full, sizeof full, "%s:candidate", e);
                join(known, sizeof known, full);
                if (i + 1 == n_envs) {
                        snprintf(full, sizeof full, "%s:stable", e);
                        join(known, sizeof known, full);
                }
        }
        return fail(c, "unknown %s (known: %s; environments are channels.envs)", n->noun ?: "key", known);
}

/* channels.envs: each name is a path component of channels/<env>/<svc> (lower case, the OCI
 * name grammar), short enough for governance's ChannelRef.env[32], and not one of the words
 * channel_ref_parse() reads as "the application repository". */
static int check_env_name(Checker *c, json_t *v, json_t *u) {
        static const char *const reserved[] = { "repo", "build", "source", "push" };
        const char *s = json_string_value(v);
        bool ok = *s && strlen(s) < 32;
        for (const char *p = s; ok && *p; p++) {
                bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
                bool sep = strchr("._-", *p) && p != s && p[1] && !strchr("._-", p[1]);
                ok = alnum || sep;
        }
        if (!ok)
                return fail(c, "\"%.64s\" is not an environment name (lower-case letters and digits, '.', '_' or '-' "
                            "between them, at most 31 characters)", s);
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (streq(s, reserved[i]))
                        return fail(c, "\"%s\" is reserved (promotions from \"%s\" start at the application repository)",
                                    s, s);
        return 0;
}

static int check_unique_strings(Checker *c, json_t *v, json_t *u) {
        for (size_t i = 0; i < json_array_size(v); i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(json_string_value(json_array_get(v, i)), json_string_value(json_array_get(v, j)))) {
                                size_t saved = path_push_index(c, i);
                                int r = fail(c, "\"%.64s\" is listed twice (also at [%zu])", json_string_value(json_array_get(v, i)), j);
                                path_pop(c, saved);
                                return r;
                        }
        return 0;
}

/* A file the module opens at start (a key, a certificate, an htpasswd file): refused now, with
 * its path, rather than when the module gets to it. */
static int check_readable_file(Checker *c, json_t *v, json_t *u) {
        const char *s = json_string_value(v);
        struct stat st;
        if (!*s)
                return fail(c, "expected the path of a file");
        if (stat(s, &st) < 0 || access(s, R_OK) < 0)
                return fail(c, "cannot read %.256s: %s", s, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return fail(c, "%.256s is a directory, not a file", s);
        return 0;
}

/* governance/governance.c keys_load(): an inline PEM key, or a PEM file it reads at start */
static int check_public_key(Checker *c, json_t *v, json_t *u) {
        return startswith(json_string_value(v), "-----BEGIN") ? 0 : check_readable_file(c, v, u);
}

/* A file that may be left unset: "" */
static int check_optional_file(Checker *c, json_t *v, json_t *u) {
        return *json_string_value(v) ? check_readable_file(c, v, u) : 0;
}

/* registry-api/tls.c tls_new(): TLS is on when tls.cert is set; it needs its key, and a client
 * CA means nothing without it */
static int check_tls(Checker *c, json_t *v, json_t *u) {
        const char *cert = strempty(json_string_value(json_object_get(v, "cert")));
        const char *key = strempty(json_string_value(json_object_get(v, "key")));
        if (*cert && !*key)
                return fail_key(c, "key", "missing: tls.cert (%.256s) is set, its private key (a PEM file) is needed too", cert);
        if (*key && !*cert)
                return fail_key(c, "cert", "missing: tls.key (%.256s) is set, the certificate (a PEM file, chain allowed) "
                                "is needed too", key);
        if (*strempty(json_string_value(json_object_get(v, "client_ca"))) && !*cert)
                return fail_key(c, "client_ca", "client certificates need TLS: set tls.cert and tls.key too");
        return 0;
}

/* governance fails a signature gate when no key is configured: say so at start instead */
static int check_signature_gate(Checker *c, json_t *v, json_t *u) {
        json_t *keys = json_object_get(json_object_get(c->root, "channels"), "public_keys");
        if (json_is_true(v) && json_array_size(keys) == 0)
                return fail(c, "no key in channels.public_keys to verify signatures with");
        return 0;
}

/* gc/retention.c gc_parse_schedule() */
static int check_schedule(Checker *c, json_t *v, json_t *u) {
        static const char *const words[] = { "", "off", "never", "hourly", "daily", "weekly" };
        const char *s = json_string_value(v);
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (streq(s, words[i]))
                        return 0;
        int64_t ns;
        if (parse_duration_ns(s, &ns) < 0 || ns < (int64_t) NSEC_PER_SEC)
                return fail(c, "\"%.64s\" is not \"\" (off), \"hourly\", \"daily\", \"weekly\" or a duration of at least 1s",
                            s);
        return 0;
}

/* registry-api/acl.c acl_action_is_valid(): the actions a rule or an API token scope can name */
static int check_acl_action(Checker *c, json_t *v, json_t *u) {
        static const char *const simple[] = { "pull", "push", "delete", "block", "unblock", "hold", "release",
                                              "worm", "gc", "audit", "metrics", "admin" };
        const char *s = json_string_value(v);
        for (size_t i = 0; i < ELEMENTSOF(simple); i++)
                if (streq(s, simple[i]))
                        return 0;
        const char *rest = startswith(s, "promote");
        bool promote = rest != NULL;
        if (!rest)
                rest = startswith(s, "rollback");
        if (rest && *rest == 0)
                return 0;
        if (rest && *rest == ':') {
                const char *env = rest + 1, *colon = strchr(env, ':');
                size_t el = colon ? (size_t) (colon - env) : strlen(env);
                bool ok = el > 0 && el <= 64 && (!colon || (promote && (streq(colon + 1, "stable") || streq(colon + 1, "candidate"))));
                for (size_t i = 0; ok && i < el; i++)
                        ok = (env[i] >= 'a' && env[i] <= 'z') || (env[i] >= '0' && env[i] <= '9') || env[i] == '-' || env[i] == '_';
                if (ok)
                        return 0;
        }
        return fail(c, "unknown action \"%.64s\" (known: pull, push, delete, promote[:<env>[:stable|candidate]], "
                       "rollback[:<env>], block, unblock, hold, release, worm, gc, audit, metrics, admin)", s);
}

/* registry-api/auth.c: "a.b.c.d/n" or "v6/n" (or one address) */
static int check_cidr(Checker *c, json_t *v, json_t *u) {
        const char *s = json_string_value(v);
        char addr[64];
        const char *slash = strchr(s, '/');
        size_t al = slash ? (size_t) (slash - s) : strlen(s);
        unsigned char buf[16];
        bool v6 = memchr(s, ':', al) != NULL;
        if (al == 0 || al >= sizeof addr)
                return fail(c, "expected an address or a CIDR block like \"10.0.0.0/8\"");
        memcpy(addr, s, al);
        addr[al] = 0;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, buf) != 1)
                return fail(c, "\"%.64s\" is not an IPv4 or IPv6 address", addr);
        if (slash) {
                char *end;
                errno = 0;
                unsigned long bits = strtoul(slash + 1, &end, 10);
                if (errno || end == slash + 1 || *end || bits > (v6 ? 128U : 32U))
                        return fail(c, "\"%.64s\": the prefix length must be 0..%u", s, v6 ? 128U : 32U);
        }
        return 0;
}

/* ------------------------------------------------------------------ the schema */

#define SEC ((int64_t) NSEC_PER_SEC)
#define FIELDS(...) ((const Field[]) { __VA_ARGS__, { NULL, NULL } })
#define REQUIRED(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define INTEGER(lo, hi) (&(const Node) { .type = NODE_INTEGER, .min = (lo), .max = (hi) })
#define UINT INTEGER(0, INT64_MAX)
#define DURATION_IN(lo, hi, text) (&(const Node) { .type = NODE_DURATION, .min = (lo), .max = (hi), .expect = (text) })
#define ARRAY_OF(item, text) (&(const Node) { .type = NODE_ARRAY, .items = (item), .max = 0, .expect = (text) })

static const Node bool_node = { .type = NODE_BOOL };
static const Node string_node = { .type = NODE_STRING };
static const Node name_node = { .type = NODE_STRING, .min = 1 };
static const Node regex_node = { .type = NODE_REGEX };
static const Node glob_node = { .type = NODE_GLOB };
static const Node duration_node = { .type = NODE_DURATION, .min = 0, .max = INT64_MAX };
static const Node regex_list_node = { .type = NODE_ARRAY, .items = &regex_node, .expect = "an array of regular expressions" };

static const Node http_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "threads", INTEGER(0, 4096) },
                { "max_connections", INTEGER(1, 1 << 20) },
                { "max_connections_per_client", INTEGER(1, 1 << 20) },
                { "timeout", DURATION_IN(0, (int64_t) UINT_MAX * SEC, "a duration of at most 4294967295s") },
                { "header_timeout", DURATION_IN(1 * SEC, 3600 * SEC, "a duration of 1s..1h, like \"10s\"") },
                { "max_json_body_bytes", INTEGER(1, 1 << 30) }),
        .check = check_http,
};

static const Node tls_file_node = { .type = NODE_STRING, .check = check_optional_file, .expect = "the path of a PEM file" };

/* registry-api/tls.c tls_new() */
static const Node tls_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "cert", &tls_file_node },
                { "key", &tls_file_node },
                { "client_ca", &tls_file_node },
                { "hsts_max_age", DURATION_IN(0, (int64_t) UINT_MAX * SEC,
                                              "a duration of at most 4294967295s, like \"365d\" (0: no HSTS header)") }),
        .check = check_tls,
};

static const Node storage_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "zstd_at_rest", &bool_node },
                { "zstd_level", INTEGER(1, 19) },
                { "fsync", &bool_node },
                { "max_manifest_bytes", INTEGER(1, 4 << 20) },
                { "upload_purge_after", &duration_node },
                { "max_upload_sessions", INTEGER(1, UINT_MAX) },
                { "max_upload_sessions_per_client", INTEGER(1, UINT_MAX) }),
};

/* the gates governance/gates.c gov_check_gates() implements */
static const Node gate_node = {
        .type = NODE_OBJECT,
        .noun = "gate",
        .fields = FIELDS(
                { "not_blocked", &bool_node },
                { "signature", &(const Node) { .type = NODE_BOOL, .check = check_signature_gate } },
                { "sbom", &bool_node },
                { "labels", &(const Node) {
                        .type = NODE_ONE_OF,
                        .alternatives = (const Node *const[]) {
                                &bool_node, ARRAY_OF(&name_node, "an array of annotation or label names"), NULL },
                        .expect = "true (the four org.opencontainers.image.* labels), false or an array of annotation "
                                  "or label names" } },
                { "soak", &duration_node }),
};

static const Node channels_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "envs", &(const Node) {
                        .type = NODE_ARRAY, .min = 1,
                        .items = &(const Node) { .type = NODE_STRING, .check = check_env_name },
                        .expect = "an array of environment names (in promotion order)",
                        .check = check_unique_strings } },
                { "auto_dev_candidate", &bool_node },
                { "public_keys", ARRAY_OF(&((const Node) { .type = NODE_STRING, .check = check_public_key }),
                                          "an array of PEM public key files (or inline PEM keys)") },
                { "gates", &(const Node) {
                        .type = NODE_MAP,
                        .noun = "promotion target",
                        .check_key = check_channel_target,
                        .items = &gate_node,
                        .expect = "an object keyed by promotion target (\"stg\", \"prod:candidate\", \"prod:stable\")" } }),
};

/* governance/policy.c gov_policy_parse() */
static const Node policy_rule_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "repos", &glob_node },
                { "immutable", &regex_list_node },
                { "forbidden", &regex_list_node },
                { "moving", &regex_list_node },
                { "name", &name_node },
                { "reason", &string_node },
                { "comment", &string_node }),
        .required = REQUIRED("repos"),
};

/* gc/retention.c parse_rule() */
static const Node retention_rule_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "repos", &glob_node },
                { "keep_forever", &regex_list_node },
                { "keep_last", UINT },
                { "idle_days", &(const Node) {
                        .type = NODE_NUMBER, .min = 0, .max = 100000,
                        .expect = "a non-negative number of days (at most 100000)" } },
                { "windows", &(const Node) {
                        .type = NODE_MAP,
                        .noun = "channel",
                        .check_key = check_channel_target,
                        .items = &duration_node,
                        .expect = "an object like {\"prod:stable\": \"180d\"}" } },
                { "comment", &string_node }),
        .required = REQUIRED("repos"),
};

/* gc/retention.c gc_config_new() */
static const Node gc_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "grace", &duration_node },
                { "schedule", &(const Node) { .type = NODE_STRING, .check = check_schedule } },
                { "untagged_grace", &duration_node },
                { "reports_kept", INTEGER(1, 100000) },
                { "cpu_nice", INTEGER(0, 19) },
                { "sched_idle", &bool_node },
                { "retention", ARRAY_OF(&retention_rule_node, "an array of rules") }),
};

/* storage/worm.c worm_options_from_json() */
static const Node worm_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "path", &string_node },
                { "registry_id", &string_node },
                { "immutable", &bool_node }),
};

/* fusefs/fs.c fusefs_options_from_json() */
static const Node fuse_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "catch_up_interval", DURATION_IN(1, INT64_MAX, "a duration longer than 0, like \"1s\"") },
                { "allow_other", &bool_node },
                { "threads", INTEGER(0, 1024) },
                { "gzip_span", UINT },
                { "max_layer_bytes", UINT },
                { "zstd_cache_bytes", UINT }),
};

/* registry-api/acl.c acl_from_json(), registry-api/auth.c auth_new() */
static const Node acl_action_list_node = {
        .type = NODE_ARRAY, .items = &(const Node) { .type = NODE_STRING, .check = check_acl_action },
        .expect = "an array of actions",
};
static const Node name_list_node = { .type = NODE_ARRAY, .items = &name_node, .expect = "an array of names" };
static const Node acl_rule_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "repos", &glob_node },
                { "users", &name_list_node },
                { "groups", &name_list_node },
                { "tokens", &name_list_node },
                { "anonymous", &bool_node },
                { "allow", &acl_action_list_node },
                { "deny", &acl_action_list_node },
                { "comment", &string_node }),
        .required = REQUIRED("repos"),
};
static const Node auth_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "htpasswd", &(const Node) { .type = NODE_STRING, .check = check_optional_file } },
                { "token", &(const Node) {
                        .type = NODE_OBJECT,
                        .fields = FIELDS(
                                { "key", &(const Node) { .type = NODE_STRING, .check = check_optional_file } },
                                { "ttl", DURATION_IN(10 * SEC, 24 * 3600 * SEC, "a duration of 10s..24h, like \"5m\"") },
                                { "refresh_ttl", DURATION_IN(60 * SEC, 366 * 24 * 3600 * SEC, "a duration of 1m..366d") },
                                { "service", &name_node },
                                { "issuer", &name_node }) } },
                { "groups", &(const Node) {
                        .type = NODE_MAP, .noun = "group", .items = &name_list_node,
                        .expect = "an object of group name -> array of user names" } },
                { "acl", ARRAY_OF(&acl_rule_node, "an array of rules") },
                { "allow_anonymous_remote", &bool_node },
                { "basic_cache_ttl", DURATION_IN(0, 3600 * SEC, "a duration of at most 1h") },
                { "failed_logins", &(const Node) {
                        .type = NODE_OBJECT,
                        .fields = FIELDS(
                                { "per_client", INTEGER(1, 1000000) },
                                { "per_user", INTEGER(1, 1000000) },
                                { "window", DURATION_IN(1 * SEC, 24 * 3600 * SEC, "a duration of 1s..24h") }) } },
                { "metrics", &(const Node) {
                        .type = NODE_ENUM, .values = (const char *const[]) { "open", "loopback", "acl", NULL } } },
                { "trusted_proxies", ARRAY_OF(&((const Node) { .type = NODE_STRING, .check = check_cidr }),
                                              "an array of addresses or CIDR blocks") }),
};

/* channels before policy and gc: gc's windows are keyed by its environments */
static const Node root_node = {
        .type = NODE_OBJECT,
        .fields = FIELDS(
                { "listen", &(const Node) { .type = NODE_STRING, .check = check_listen, .expect = "\"HOST:PORT\"" } },
                { "data", &(const Node) { .type = NODE_STRING, .min = 1, .expect = "a directory path" } },
                /* common/log.c log_level_from_string() */
                { "log_level", &(const Node) {
                        .type = NODE_ENUM, .values = (const char *const[]) { "debug", "info", "warning", "error", NULL } } },
                { "access_log", &bool_node },
                { "registry_id", &string_node },
                { "http", &http_node },
                { "tls", &tls_node },
                { "storage", &storage_node },
                { "channels", &channels_node },
                { "policy", ARRAY_OF(&policy_rule_node, "an array of rules") },
                { "gc", &gc_node },
                { "worm", &worm_node },
                { "fuse", &fuse_node },
                { "auth", &auth_node }),
};

int config_schema_validate(json_t *merged, json_t *user, char *err, size_t errlen) {
        Checker c = { .root = merged, .err = err, .errlen = errlen };
        return check_node(&c, &root_node, merged, user ?: merged);
}
