/* SPDX-License-Identifier: MIT */
/* A POSIX extended regular expression (the subset common/regexp.h lists) parsed into a tree,
 * compiled into a Thompson NFA program (counted repetitions as copies, bounded by
 * REGEXP_MAX_PROGRAM) and run as a set of states over the string: no backtracking, so no pattern
 * takes more than (length + 1) x program size steps. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regexp.h"
#include "util.h"

#define DUP_MAX 255
#define STACK_STATES 256 /* programs up to this size match without malloc() */

typedef struct CharSet {
        uint64_t bits[4];
} CharSet;

static void set_add(CharSet *s, unsigned c) {
        s->bits[c >> 6] |= UINT64_C(1) << (c & 63);
}

static bool set_has(const CharSet *s, unsigned c) {
        return s->bits[c >> 6] & (UINT64_C(1) << (c & 63));
}

/* ---- the tree */

typedef enum NodeKind {
        NODE_SET,    /* one byte of set */
        NODE_BOL,
        NODE_EOL,
        NODE_EMPTY,
        NODE_CAT,    /* children in order */
        NODE_ALT,    /* any child */
        NODE_REPEAT, /* child min..max times, max -1 = unbounded */
} NodeKind;

typedef struct Node {
        NodeKind kind;
        int child, next; /* first child, next sibling: indexes into Parser.nodes, -1 none */
        int set;         /* NODE_SET: index into the sets */
        int min, max;
} Node;

typedef enum Op {
        OP_SET,   /* consume a byte of sets[x], go on at pc + 1 */
        OP_SPLIT, /* go on at x and at y */
        OP_JMP,   /* go on at x */
        OP_BOL,
        OP_EOL,
        OP_MATCH,
} Op;

typedef struct Inst {
        Op op;
        int x, y;
} Inst;

struct Regexp {
        Inst *prog;
        size_t n_prog;
        CharSet *sets;
        size_t n_sets;
};

typedef struct Parser {
        const char *pattern, *p;
        Node *nodes;
        size_t n_nodes, cap_nodes;
        CharSet *sets;
        size_t n_sets, cap_sets;
        int depth;
        char *err;
        size_t errlen;
        int error; /* the first failure, negative errno */
} Parser;

static int fail(Parser *ps, int error, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *ps, int error, const char *fmt, ...) {
        if (ps->error)
                return ps->error;
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(ps->err, ps->errlen, "%s at offset %td", what, ps->p - ps->pattern);
        return ps->error = error;
}

static int node_new(Parser *ps, NodeKind kind) {
        if (ARRAY_RESERVE(ps->nodes, ps->cap_nodes, ps->n_nodes + 1) < 0)
                return fail(ps, -ENOMEM, "out of memory");
        ps->nodes[ps->n_nodes] = (Node) { .kind = kind, .child = -1, .next = -1, .set = -1 };
        return (int) ps->n_nodes++;
}

static int set_new(Parser *ps, CharSet **ret) {
        if (ARRAY_RESERVE(ps->sets, ps->cap_sets, ps->n_sets + 1) < 0)
                return fail(ps, -ENOMEM, "out of memory");
        ps->sets[ps->n_sets] = (CharSet) {};
        *ret = &ps->sets[ps->n_sets];
        return (int) ps->n_sets++;
}

/* a NODE_SET node of one byte */
static int node_byte(Parser *ps, unsigned char c) {
        CharSet *s = NULL;
        int set = set_new(ps, &s);
        if (set < 0)
                return set;
        set_add(s, c);
        int n = node_new(ps, NODE_SET);
        if (n < 0)
                return n;
        ps->nodes[n].set = set;
        return n;
}

/* the C locale's classes, whatever locale the process runs in */
static bool class_has(char id, unsigned c) {
        bool digit = c - '0' < 10, alpha = c < 128 && (c | 32) - 'a' < 26;
        switch (id) {
        case 'a': return alpha;
        case 'n': return alpha || digit;
        case 'b': return c == ' ' || c == '\t';
        case 'c': return c < 32 || c == 127;
        case 'd': return digit;
        case 'g': return c > 32 && c < 127;
        case 'l': return c - 'a' < 26;
        case 'p': return c >= 32 && c < 127;
        case 'P': return c > 32 && c < 127 && !alpha && !digit;
        case 's': return c == ' ' || (c >= '\t' && c <= '\r');
        case 'u': return c - 'A' < 26;
        case 'x': return digit || (c < 128 && (c | 32) - 'a' < 6);
        }
        return false;
}

static const struct {
        const char *name;
        char id;
} classes[] = {
        { "alnum", 'n' }, { "alpha", 'a' }, { "blank", 'b' }, { "cntrl", 'c' }, { "digit", 'd' }, { "graph", 'g' },
        { "lower", 'l' }, { "print", 'p' }, { "punct", 'P' }, { "space", 's' }, { "upper", 'u' }, { "xdigit", 'x' },
};

/* at ps->p just after "[:" */
static int parse_class(Parser *ps, CharSet *s) {
        const char *end = strstr(ps->p, ":]");
        if (!end)
                return fail(ps, -EINVAL, "unterminated character class (\"[:name:]\")");
        size_t len = (size_t) (end - ps->p);
        for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
                if (strlen(classes[i].name) == len && strncmp(classes[i].name, ps->p, len) == 0) {
                        for (unsigned c = 1; c < 256; c++)
                                if (class_has(classes[i].id, c))
                                        set_add(s, c);
                        ps->p = end + 2;
                        return 0;
                }
        return fail(ps, -EINVAL, "unknown character class \"[:%.*s:]\" (known: alnum, alpha, blank, cntrl, digit, graph, "
                    "lower, print, punct, space, upper, xdigit)", (int) (len > 20 ? 20 : len), ps->p);
}

/* at ps->p just after '[' */
static int parse_bracket(Parser *ps) {
        CharSet *unused = NULL;
        int set = set_new(ps, &unused); /* no other set is made until the bracket's end */
        if (set < 0)
                return set;
        bool negate = *ps->p == '^';
        if (negate)
                ps->p++;
        bool first = true;
        for (;;) {
                unsigned char c = (unsigned char) *ps->p;
                if (c == 0)
                        return fail(ps, -EINVAL, "unterminated bracket expression (missing ']')");
                if (c == ']' && !first) {
                        ps->p++;
                        break;
                }
                first = false;
                if (c == '[' && (ps->p[1] == '.' || ps->p[1] == '='))
                        return fail(ps, -EINVAL, "collating elements and equivalence classes (\"[.\" \"[=\") are not supported");
                if (c == '[' && ps->p[1] == ':') {
                        ps->p += 2;
                        int r = parse_class(ps, &ps->sets[set]);
                        if (r < 0)
                                return r;
                        continue;
                }
                ps->p++;
                unsigned char hi = c;
                if (*ps->p == '-' && ps->p[1] && ps->p[1] != ']') {
                        hi = (unsigned char) ps->p[1];
                        if (hi == '[' && (ps->p[2] == '.' || ps->p[2] == '=' || ps->p[2] == ':'))
                                return fail(ps, -EINVAL, "a range must end in a character");
                        if (hi < c)
                                return fail(ps, -EINVAL, "invalid range '%c-%c' (the end comes before the start)", c, hi);
                        ps->p += 2;
                }
                for (unsigned x = c; x <= hi; x++)
                        set_add(&ps->sets[set], x);
        }
        if (negate) {
                CharSet *t = &ps->sets[set];
                for (size_t i = 0; i < 4; i++)
                        t->bits[i] = ~t->bits[i];
                t->bits[0] &= ~UINT64_C(1); /* never NUL: the string's end */
        }
        int n = node_new(ps, NODE_SET);
        if (n < 0)
                return n;
        ps->nodes[n].set = set;
        return n;
}

static int parse_alt(Parser *ps);

static int parse_atom(Parser *ps) {
        char c = *ps->p;
        switch (c) {
        case '(': {
                if (ps->depth >= REGEXP_MAX_DEPTH)
                        return fail(ps, -E2BIG, "groups nested deeper than %d", REGEXP_MAX_DEPTH);
                ps->p++;
                ps->depth++;
                int n = parse_alt(ps);
                ps->depth--;
                if (n < 0)
                        return n;
                if (*ps->p != ')')
                        return fail(ps, -EINVAL, "unbalanced '(' (missing ')')");
                ps->p++;
                return n;
        }
        case '.': {
                ps->p++;
                CharSet *s = NULL;
                int set = set_new(ps, &s);
                if (set < 0)
                        return set;
                for (unsigned x = 1; x < 256; x++)
                        set_add(s, x);
                int n = node_new(ps, NODE_SET);
                if (n >= 0)
                        ps->nodes[n].set = set;
                return n;
        }
        case '[':
                ps->p++;
                return parse_bracket(ps);
        case '^':
                ps->p++;
                return node_new(ps, NODE_BOL);
        case '$':
                ps->p++;
                return node_new(ps, NODE_EOL);
        case '\\': {
                unsigned char e = (unsigned char) ps->p[1];
                if (e == 0)
                        return fail(ps, -EINVAL, "trailing backslash");
                if (isalnum(e))
                        return fail(ps, -EINVAL, "\"\\%c\" is not an escape of POSIX extended regular expressions "
                                    "(a backslash makes a punctuation character literal; for digits write [0-9])", e);
                ps->p += 2;
                return node_byte(ps, e);
        }
        case '*':
        case '+':
        case '?':
        case '{':
                return fail(ps, -EINVAL, "'%c' repeats nothing (write \\%c for the character)", c, c);
        default:
                ps->p++;
                return node_byte(ps, (unsigned char) c);
        }
}

static int parse_number(Parser *ps, int *ret) {
        if (!isdigit((unsigned char) *ps->p))
                return 0;
        long v = 0;
        while (isdigit((unsigned char) *ps->p)) {
                v = v * 10 + (*ps->p++ - '0');
                if (v > DUP_MAX)
                        return fail(ps, -E2BIG, "a repetition count above %d", DUP_MAX);
        }
        *ret = (int) v;
        return 1;
}

/* at ps->p on '{': *min, *max (-1 unbounded) */
static int parse_interval(Parser *ps, int *min, int *max) {
        const char *start = ps->p++;
        int m = 0, n = -1;
        int have_m = parse_number(ps, &m);
        if (have_m < 0)
                return have_m;
        if (*ps->p == ',') {
                ps->p++;
                int have_n = parse_number(ps, &n);
                if (have_n < 0)
                        return have_n;
                if (!have_m && !have_n) {
                        ps->p = start;
                        return fail(ps, -EINVAL, "'{' starts no interval {m}, {m,}, {m,n} or {,n} (write \\{ for the character)");
                }
        } else if (have_m)
                n = m;
        if (*ps->p != '}' || (!have_m && n < 0)) {
                ps->p = start;
                return fail(ps, -EINVAL, "'{' starts no interval {m}, {m,}, {m,n} or {,n} (write \\{ for the character)");
        }
        ps->p++;
        if (n >= 0 && n < m) {
                ps->p = start;
                return fail(ps, -EINVAL, "interval {%d,%d}: the maximum is below the minimum", m, n);
        }
        *min = m;
        *max = n;
        return 0;
}

static bool is_repetition(char c) {
        return c == '*' || c == '+' || c == '?' || c == '{';
}

static int parse_piece(Parser *ps) {
        int atom = parse_atom(ps);
        if (atom < 0)
                return atom;
        if (!is_repetition(*ps->p))
                return atom;
        int min = 0, max = -1;
        switch (*ps->p) {
        case '*':
                ps->p++;
                break;
        case '+':
                min = 1;
                ps->p++;
                break;
        case '?':
                max = 1;
                ps->p++;
                break;
        default: {
                int r = parse_interval(ps, &min, &max);
                if (r < 0)
                        return r;
        }
        }
        if (is_repetition(*ps->p))
                return fail(ps, -EINVAL, "two repetition operators in a row (undefined in POSIX; group the first: \"(a{2}){3}\")");
        int n = node_new(ps, NODE_REPEAT);
        if (n < 0)
                return n;
        ps->nodes[n].child = atom;
        ps->nodes[n].min = min;
        ps->nodes[n].max = max;
        return n;
}

/* a sequence of pieces up to '|', ')' or the end; an empty one is NODE_EMPTY */
static int parse_branch(Parser *ps) {
        int cat = node_new(ps, NODE_CAT);
        if (cat < 0)
                return cat;
        int last = -1;
        while (*ps->p && *ps->p != '|' && *ps->p != ')') {
                int piece = parse_piece(ps);
                if (piece < 0)
                        return piece;
                if (last < 0)
                        ps->nodes[cat].child = piece;
                else
                        ps->nodes[last].next = piece;
                last = piece;
        }
        if (last < 0)
                ps->nodes[cat].kind = NODE_EMPTY;
        return cat;
}

static int parse_alt(Parser *ps) {
        int first = parse_branch(ps);
        if (first < 0 || *ps->p != '|')
                return first;
        int alt = node_new(ps, NODE_ALT);
        if (alt < 0)
                return alt;
        ps->nodes[alt].child = first;
        int last = first;
        while (*ps->p == '|') {
                ps->p++;
                int b = parse_branch(ps);
                if (b < 0)
                        return b;
                ps->nodes[last].next = b;
                last = b;
        }
        return alt;
}

/* ---- the program */

typedef struct Compiler {
        Parser *ps;
        Inst *prog;
        size_t n, cap;
} Compiler;

static int emit(Compiler *c, Op op, int x, int y) {
        if (c->n >= REGEXP_MAX_PROGRAM)
                return fail(c->ps, -E2BIG, "its repetitions expand to more than %d instructions (nested counts multiply: "
                            "write the count once)", REGEXP_MAX_PROGRAM);
        if (ARRAY_RESERVE(c->prog, c->cap, c->n + 1) < 0)
                return fail(c->ps, -ENOMEM, "out of memory");
        c->prog[c->n] = (Inst) { .op = op, .x = x, .y = y };
        return (int) c->n++;
}

static int compile_node(Compiler *c, int i) {
        const Node *n = &c->ps->nodes[i];
        int r;
        switch (n->kind) {
        case NODE_SET:
                return emit(c, OP_SET, n->set, 0);
        case NODE_BOL:
                return emit(c, OP_BOL, 0, 0);
        case NODE_EOL:
                return emit(c, OP_EOL, 0, 0);
        case NODE_EMPTY:
                return 0;
        case NODE_CAT:
                for (int k = n->child; k >= 0; k = c->ps->nodes[k].next)
                        if ((r = compile_node(c, k)) < 0)
                                return r;
                return 0;
        case NODE_ALT: {
                /* SPLIT L1, next; L1: branch; JMP end; next: SPLIT ... ; last branch; end: */
                int jumps = -1; /* a chain through the JMPs' x, patched at the end */
                for (int k = n->child; k >= 0; k = c->ps->nodes[k].next) {
                        bool last = c->ps->nodes[k].next < 0;
                        int split = -1;
                        if (!last && (split = emit(c, OP_SPLIT, 0, 0)) < 0)
                                return split;
                        if (split >= 0)
                                c->prog[split].x = (int) c->n;
                        if ((r = compile_node(c, k)) < 0)
                                return r;
                        if (!last) {
                                int j = emit(c, OP_JMP, jumps, 0);
                                if (j < 0)
                                        return j;
                                jumps = j;
                                c->prog[split].y = (int) c->n;
                        }
                }
                while (jumps >= 0) {
                        int prev = c->prog[jumps].x;
                        c->prog[jumps].x = (int) c->n;
                        jumps = prev;
                }
                return 0;
        }
        case NODE_REPEAT: {
                int child = n->child, min = n->min, max = n->max;
                for (int k = 0; k < min; k++)
                        if ((r = compile_node(c, child)) < 0)
                                return r;
                if (max < 0) {
                        /* L: SPLIT L+1, out; child; JMP L; out: */
                        int split = emit(c, OP_SPLIT, 0, 0);
                        if (split < 0)
                                return split;
                        c->prog[split].x = split + 1;
                        if ((r = compile_node(c, child)) < 0)
                                return r;
                        if ((r = emit(c, OP_JMP, split, 0)) < 0)
                                return r;
                        c->prog[split].y = (int) c->n;
                        return 0;
                }
                /* (max - min) times: SPLIT next, out; child; ... out: */
                int outs = -1; /* a chain through the SPLITs' y */
                for (int k = min; k < max; k++) {
                        int split = emit(c, OP_SPLIT, 0, outs);
                        if (split < 0)
                                return split;
                        outs = split;
                        c->prog[split].x = split + 1;
                        if ((r = compile_node(c, child)) < 0)
                                return r;
                }
                while (outs >= 0) {
                        int prev = c->prog[outs].y;
                        c->prog[outs].y = (int) c->n;
                        outs = prev;
                }
                return 0;
        }
        }
        return 0;
}

Regexp *regexp_free(Regexp *re) {
        if (!re)
                return NULL;
        free(re->prog);
        free(re->sets);
        free(re);
        return NULL;
}

int regexp_new(const char *pattern, Regexp **ret, char *err, size_t errlen) {
        assert(pattern && ret && err && errlen > 0);
        *ret = NULL;
        err[0] = 0;
        Parser ps = { .pattern = pattern, .p = pattern, .err = err, .errlen = errlen };
        Compiler c = { .ps = &ps };
        int r;
        if (strlen(pattern) > REGEXP_MAX_LENGTH) {
                r = fail(&ps, -E2BIG, "longer than %d bytes", REGEXP_MAX_LENGTH);
                goto out;
        }
        int root = parse_alt(&ps);
        if (root < 0) {
                r = root;
                goto out;
        }
        if (*ps.p == ')') {
                r = fail(&ps, -EINVAL, "unbalanced ')'");
                goto out;
        }
        if ((r = compile_node(&c, root)) < 0 || (r = emit(&c, OP_MATCH, 0, 0)) < 0)
                goto out;
        Regexp *re = calloc(1, sizeof(Regexp));
        if (!re) {
                r = fail(&ps, -ENOMEM, "out of memory");
                goto out;
        }
        re->prog = c.prog;
        re->n_prog = c.n;
        re->sets = ps.sets;
        re->n_sets = ps.n_sets;
        c.prog = NULL;
        ps.sets = NULL;
        *ret = re;
        r = 0;
out:
        free(ps.nodes);
        free(ps.sets);
        free(c.prog);
        return r;
}

size_t regexp_program_size(const Regexp *re) {
        return re ? re->n_prog : 0;
}

/* ---- matching: the set of program counters alive after each byte */

typedef struct States {
        int *list;
        size_t n;
} States;

typedef struct Matcher {
        const Regexp *re;
        const char *s;
        uint32_t *mark; /* generation in which a pc was added */
        uint32_t gen;
        int *stack;
} Matcher;

/* adds pc and everything reachable from it without consuming a byte, at position pos */
static void add_state(Matcher *m, States *st, int pc, size_t pos) {
        size_t sp = 0;
        m->stack[sp++] = pc;
        while (sp > 0) {
                pc = m->stack[--sp];
                if (m->mark[pc] == m->gen)
                        continue;
                m->mark[pc] = m->gen;
                const Inst *in = &m->re->prog[pc];
                switch (in->op) {
                case OP_JMP:
                        m->stack[sp++] = in->x;
                        break;
                case OP_SPLIT:
                        m->stack[sp++] = in->y;
                        m->stack[sp++] = in->x;
                        break;
                case OP_BOL:
                        if (pos == 0)
                                m->stack[sp++] = pc + 1;
                        break;
                case OP_EOL:
                        if (m->s[pos] == 0)
                                m->stack[sp++] = pc + 1;
                        break;
                case OP_SET:
                case OP_MATCH:
                        st->list[st->n++] = pc;
                        break;
                }
        }
}

int regexp_match(const Regexp *re, const char *s) {
        assert(re && s);
        size_t n = re->n_prog;
        /* two state lists of n, then add_state()'s stack: every pc it marks pushes at most two
         * more, so 2n + 1 suffice; and the marks */
        int stack_buf[STACK_STATES * 5 + 1];
        uint32_t mark_buf[STACK_STATES];
        int *heap = NULL;
        uint32_t *heap_mark = NULL;
        int *ints = stack_buf;
        uint32_t *mark = mark_buf;
        if (n > STACK_STATES) {
                heap = malloc((5 * n + 1) * sizeof(int));
                heap_mark = calloc(n, sizeof(uint32_t));
                if (!heap || !heap_mark) {
                        free(heap);
                        free(heap_mark);
                        return -ENOMEM;
                }
                ints = heap;
                mark = heap_mark;
        } else
                memset(mark_buf, 0, sizeof mark_buf);
        Matcher m = { .re = re, .s = s, .mark = mark, .gen = 1, .stack = ints + 2 * n };
        States cur = { .list = ints }, next = { .list = ints + n };
        int result = 0;
        add_state(&m, &cur, 0, 0);
        for (size_t pos = 0;; pos++) {
                for (size_t i = 0; i < cur.n; i++)
                        if (re->prog[cur.list[i]].op == OP_MATCH) {
                                result = 1;
                                goto done;
                        }
                unsigned char ch = (unsigned char) s[pos];
                if (ch == 0)
                        break;
                m.gen++;
                next.n = 0;
                for (size_t i = 0; i < cur.n; i++) {
                        const Inst *in = &re->prog[cur.list[i]];
                        if (in->op == OP_SET && set_has(&re->sets[in->x], ch))
                                add_state(&m, &next, cur.list[i] + 1, pos + 1);
                }
                add_state(&m, &next, 0, pos + 1); /* a match may start at any position */
                States t = cur;
                cur = next;
                next = t;
        }
done:
        free(heap);
        free(heap_mark);
        return result;
}
