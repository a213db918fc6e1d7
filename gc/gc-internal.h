/* SPDX-License-Identifier: MIT */
#pragma once

/* Internals shared by the gc/ sources. Other modules use gc.h only. */

#include "common/regexp.h"
#include "gc/gc.h"

/* ---------------------------------------------------------------- string map
 * Open addressing, string keys (copied), size_t values. */
typedef struct StrMap StrMap;
StrMap *strmap_new(void);
StrMap *strmap_free(StrMap *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(StrMap *, strmap_free);
/* Returns 1 and the value if present, 0 if not. */
int strmap_get(StrMap *m, const char *key, size_t klen, size_t *ret);
/* Inserts or replaces. */
int strmap_put(StrMap *m, const char *key, size_t klen, size_t value);

/* ---------------------------------------------------------------- digest table
 * Interns digests as compact binary keys (32 bytes: sha256 in full, the first 32 bytes of a
 * sha512) and hands out dense uint32 ids, so the mark set of a million blobs stays small. */
#define DT_NONE UINT32_MAX

enum {
        DT_MARKED = 1 << 0,
        DT_MANIFEST = 1 << 1,   /* a manifest record exists (in the graph) */
        DT_BLOB = 1 << 2,       /* a blob record was seen */
        DT_PROTECTED = 1 << 3,  /* channel window or hold: live everywhere */
        DT_FREED = 1 << 4,      /* attributed to a deletion already (report) */
        DT_SWEPT = 1 << 5,      /* removed (or would be, in a dry run) */
        DT_HELD = 1 << 6,       /* RCA hold: live everywhere */
        DT_FILE = 1 << 7,       /* reconcile: its file exists */
        DT_CANDIDATE = 1 << 8,  /* referenced by a manifest this run removes */
};

typedef struct DigestTable DigestTable;
DigestTable *digest_table_new(void);
DigestTable *digest_table_free(DigestTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(DigestTable *, digest_table_free);
/* Returns the id, interning the digest if needed (DT_NONE for a malformed digest or OOM). */

uint32_t digest_table_intern(DigestTable *t, const char *digest);
/* DT_NONE if unknown. */
uint32_t digest_table_find(DigestTable *t, const char *digest);
size_t digest_table_size(DigestTable *t);
uint16_t *digest_table_flags(DigestTable *t, uint32_t id);
uint32_t *digest_table_manifest(DigestTable *t, uint32_t id); /* index into Graph.manifests */
/* Writes the digest string of id into out. */
void digest_table_name(DigestTable *t, uint32_t id, char out[DIGEST_MAX_LEN]);

/* ---------------------------------------------------------------- manifest graph */
typedef struct GraphManifest {
        uint32_t id;            /* digest id */
        uint32_t subject;       /* digest id or DT_NONE */
        bool is_index;
        uint32_t size;          /* manifest bytes */
        uint32_t n_children;    /* the first n_children edges are index entries (manifests) */
        uint32_t n_edges;       /* children, then config, layers */
        uint32_t *edges;
} GraphManifest;

typedef struct Graph {
        DigestTable *digests;
        GraphManifest *manifests;
        size_t n_manifests, allocated;
} Graph;

int graph_init(Graph *g);
void graph_done(Graph *g);
/* Loads every manifest record of the snapshot. */
int graph_load(Graph *g, Store *s, IndexSnapshot *snap);
/* Makes sure digest's manifest is in the graph (loading it from snap if it is a manifest).
 * Returns the manifest index, or -ENOENT if it is no manifest. */
int graph_ensure(Graph *g, Store *s, IndexSnapshot *snap, uint32_t id);

/* ---------------------------------------------------------------- retention config */
typedef struct GcWindow {
        char *name;             /* "prod:stable", "stg", ... */
        int64_t ns;
} GcWindow;

typedef struct GcRuleSet {
        char *repos;            /* glob */
        bool has_keep_forever, has_keep_last, has_idle, has_windows;
        Regexp **keep_forever;
        char **keep_forever_src;
        size_t n_keep_forever;
        int64_t keep_last;
        int64_t idle_ns;
        GcWindow *windows;
        size_t n_windows;
} GcRuleSet;

/* The settings in force for one repository: every rule whose glob matches applies in order,
 * a later rule overriding the keys it sets. Pointers borrow from the GcConfig. */
typedef struct GcEffective {
        const GcRuleSet *keep_forever_from; /* NULL: nothing kept forever by name */
        int64_t keep_last;
        int64_t idle_ns;
        const GcRuleSet *windows_from;
} GcEffective;

#define GC_SCHED_IDLE_DEFAULT false

struct GcConfig {
        int64_t grace_ns;
        int64_t untagged_grace_ns;
        unsigned reports_kept;
        int cpu_nice;           /* nice value of the GC's threads, 0..19 */
        bool sched_idle;        /* run the GC's threads under SCHED_IDLE */
        int64_t schedule_ns;    /* 0 = off */
        char *schedule;
        GcRuleSet *rules;
        size_t n_rules;
        json_t *worm;           /* own reference to the config's "worm" section */
};

void gc_effective(const GcConfig *c, const char *repo, GcEffective *ret);
bool gc_effective_keep_forever(const GcEffective *e, const char *tag);
/* Window for "env:pointer" (falling back to "env"); 0 if none. */
int64_t gc_effective_window(const GcEffective *e, const char *env, const char *pointer);

/* ---------------------------------------------------------------- the plan */
typedef enum GcRule {
        RULE_KEEP_FOREVER,      /* tag matches keep_forever */
        RULE_KEEP_LAST,         /* among the keep_last newest versions */
        RULE_ACTIVE,            /* beyond keep_last but pushed/pulled within idle_days */
        RULE_KEEP_LAST_IDLE,    /* beyond keep_last AND idle: deleted */
        RULE_UNTAGGED_GRACE,    /* untagged, younger than untagged_grace */
        RULE_UNTAGGED,          /* untagged and older than untagged_grace: deleted */
        RULE_CHANNEL_WINDOW,    /* was at a channel pointer within the window */
        RULE_HOLD,              /* RCA hold (active, or inactive and not exported) */
        RULE_CHILD_OF_INDEX,       /* child of a live index */
        RULE_REFERRER,          /* referrer: follows its subject */
        RULE_TAGGED,            /* tagged with a kept tag */
        RULE_UNLINKED,          /* manifest record with no repository link */
        RULE_UNREFERENCED,      /* blob no live manifest references */
        RULE_ORPHAN,            /* blob file without index record */
        RULE_OUT_OF_SCOPE,      /* repository not selected by --repo */
        _GC_RULE_MAX,
        _GC_RULE_INVALID = -1,
} GcRule;

const char *gc_rule_to_string(GcRule r);

typedef struct PlanTag {
        uint32_t repo;
        uint32_t link;          /* index into Plan.links or UINT32_MAX (tag without link) */
        char *name;
        TagInfo info;
        bool keep_forever;
        bool cosign_subject;    /* sha256-<hex>.sig/.att/.sbom: follows that digest */
        uint32_t cosign_link;   /* link of the subject in the same repo or UINT32_MAX */
        bool deleted;
        GcRule rule;
        bool applied;           /* deleted for real */
} PlanTag;

typedef struct PlanLink {
        uint32_t repo;
        uint32_t digest;        /* digest id */
        int64_t pushed, last_pulled;
        uint32_t n_tags;
        uint32_t n_tags_deleted;
        bool keep_forever_tagged;
        bool subject_in_repo;   /* a referrer whose subject is linked in the same repo */
        bool live;
        bool queued;
        GcRule rule;            /* why live, or why deleted */
        uint32_t next_referrer; /* chain of links in the repo with the same subject */
        bool applied;           /* deleted for real */
        bool failed;
        bool is_version;        /* has ranked (non-forever, non-cosign) tags */
        int64_t v_newest;       /* newest update of those tags */
        int64_t v_activity;     /* newest push or pull */
} PlanLink;

typedef struct PlanRepo {
        char *name;
        GcEffective eff;
        bool selected;
        uint32_t link_start, link_count; /* links of a repository are contiguous */
} PlanRepo;

typedef struct Plan {
        PlanRepo *repos;
        size_t n_repos;
        PlanLink *links;
        size_t n_links;
        PlanTag *tags;
        size_t n_tags;
        StrMap *repo_index;     /* name -> repo */
        StrMap *link_index;     /* repo "\1" digest -> link */
        StrMap *referrer_heads; /* repo "\1" subject -> first link with that subject */
        StrMap *tag_index;      /* repo "\1" tag -> tag */
        json_t *holds;          /* report entries */
        json_t *windows;        /* report: channel digests protected */
        json_t *errors;
} Plan;

void plan_done(Plan *p);
/* Evaluates retention over snap into p (graph must be loaded from the same snapshot). */
int plan_build(Plan *p, Store *s, IndexSnapshot *snap, Graph *g, const GcConfig *c, const GcOptions *o, int64_t now);
uint32_t plan_find_link(Plan *p, uint32_t repo, const char *digest);
/* "repo\1name": the keys of link_index, tag_index and referrer_heads. */
char *plan_key(const char *repo, const char *name, size_t *ret_len);
/* Adds (or finds) a repository seen after the plan (mark of the second snapshot). */
int plan_add_repo(Plan *p, const GcConfig *c, const GcOptions *o, const char *name, size_t nlen, uint32_t *ret);

/* ---------------------------------------------------------------- the Gc object (run.c) */
#include <pthread.h>

struct Gc {
        Store *store;
        GcConfig *config;
        pthread_mutex_t lock;
        pthread_cond_t cond;    /* CLOCK_MONOTONIC: idle, the scheduler's waits */
        bool running;           /* a run between its start and its report being readable */
        unsigned active_runs;   /* in gc_run(), including the tail after running (the report's sync) */
        bool stopping;          /* gc_stop(): no new runs */
        int cancel;             /* atomic: gc_cancel() */
        void (*finished_fn)(void *userdata);
        void *finished_userdata;

        /* gc_start(): the background run, its options' strings owned */
        pthread_t async_thread;
        bool async_joinable;    /* started and not joined yet */
        GcOptions async_options;
        char *async_repo, *async_actor, *async_trigger;

        /* the schedule */
        pthread_t sched_thread;
        bool sched_started, sched_stop;
        int64_t next_run;       /* wall clock ns, 0 = none */

        /* the storage metrics' collector (metrics.c) */
        pthread_mutex_t metrics_lock;
        bool metrics_registered;
        int64_t metrics_cache_ns;
        uint64_t metrics_computed; /* monotonic ns */
};

bool gc_cancelled(Gc *g);
void gc_metrics_unregister(Gc *g);

/* ---------------------------------------------------------------- one run */
#define LIST_MAX 10000 /* entries of each report list; the totals are always complete */

typedef struct Acc {
        uint64_t tags, links, manifests, blobs, bytes_logical, bytes_disk, manifest_bytes;
} Acc;

typedef struct LinkBytes {
        uint64_t logical, disk;
        bool manifest_removed;
} LinkBytes;

typedef struct Run {
        Gc *gc;
        Store *s;
        const GcConfig *c;
        const GcOptions *o;
        const char *actor;
        int64_t now, cutoff, mark_start;
        unsigned delay_ms;

        Graph g;
        Plan p;
        IndexSnapshot *snap1, *snap2;
        IndexSnapshot *live;    /* the current state, read cold */

        uint32_t *owner;        /* digest id -> first dead link referencing it (attribution) */
        size_t n_owner;
        LinkBytes *link_bytes;

        Acc *repo_acc;          /* per plan repo, plus [n_repos] = "(none)" */
        size_t n_repo_acc;
        Acc rule_acc[_GC_RULE_MAX];
        Acc total;

        uint64_t tags_scanned, blobs_scanned, blobs_marked, manifests_marked, orphans, orphan_bytes;
        uint64_t skipped_raced, missing_files;
        json_t *orphan_list, *missing_list, *raced_list, *errors;
        double t_plan, t_apply, t_mark, t_sweep, t_reconcile;
        int cpu_nice;           /* of the thread that ran the phases (report) */
        bool cpu_idle;          /* that thread ran under SCHED_IDLE (report) */
        bool intent_written;
        bool scoped;            /* o->repo: the sweep only what the plan's deletions referenced */
        pthread_mutex_t lock;   /* reports and accounting, from the removal threads */
} Run;

#define CHECK_CANCEL(r)                                 \
        do {                                            \
                if (gc_cancelled((r)->gc))              \
                        return -ECANCELED;              \
        } while (0)

void run_error(Run *r, const char *what, const char *target, int err);
void run_error_msg(Run *r, const char *what, const char *target, const char *msg);
void note_raced(Run *r, const char *kind, const char *repo, const char *name, const char *why);
/* tests: PLURA_GC_TEST_DELAY_MS between steps */
void run_test_delay(Run *r);
Acc *repo_acc(Run *r, uint32_t repo);
double since(uint64_t t0);
long peak_rss_mib(void);

/* apply.c: the plan's tag and link deletions, each re-checked against the live index */
int gc_apply(Run *r);
/* mark.c: marks what the snapshot's links, tags and protected digests reach (exclude_plan: the
 * plan's deletions are no roots, a dry run's mark) */
int gc_mark(Run *r, IndexSnapshot *snap, bool exclude_plan);
/* sweep.c: the unmarked manifests and blobs through store_sweep_*(), accounted; the orphans */
int gc_sweep(Run *r, IndexSnapshot *msnap);
int gc_reconcile(Run *r);
/* report.c */
json_t *gc_report_build(Run *r, int64_t started, int64_t ended);
/* Stores the report as the last one and in the list, the oldest beyond gc.reports_kept dropped
 * and (clear_intent) the sweep intent cleared, in one unsynced batch. */
int gc_report_store(Store *s, const GcConfig *c, json_t *rep, int64_t started, bool clear_intent);
void gc_metrics_after_run(const GcOptions *o, int result, const json_t *rep);
/* metrics.c */
void gc_metrics_declare(void);
