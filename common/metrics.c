/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>

#include "metrics.h"

#define MAX_BUCKETS 24

typedef struct Series {
        char *labels;
        double value;                 /* counter/gauge; histogram: sum */
        uint64_t count;               /* histogram */
        uint64_t buckets[MAX_BUCKETS];/* histogram: non-cumulative counts */
        struct Series *next;
} Series;

typedef struct Family {
        char *name;
        char *help;
        MetricType type;
        double bounds[MAX_BUCKETS];
        size_t n_bounds;
        Series *series;
        struct Family *next;
} Family;

typedef struct Collector {
        MetricsCollectFn fn;
        void *userdata;
        struct Collector *next;
} Collector;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Family *families = NULL;
static Collector *collectors = NULL;
static unsigned collecting = 0;                               /* renders running collectors */
static pthread_cond_t collected = PTHREAD_COND_INITIALIZER;   /* collecting went down */

static const double default_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };

static Family *family_find(const char *name) {
        for (Family *f = families; f; f = f->next)
                if (streq(f->name, name))
                        return f;
        return NULL;
}

void metrics_declare(const char *name, MetricType type, const char *help, const double *buckets, size_t n_buckets) {
        pthread_mutex_lock(&lock);
        if (!family_find(name)) {
                Family *f = calloc(1, sizeof(Family));
                if (f) {
                        f->name = strdup(name);
                        f->help = strdup(help ? help : name);
                        f->type = type;
                        if (!buckets) {
                                buckets = default_buckets;
                                n_buckets = ELEMENTSOF(default_buckets);
                        }
                        f->n_bounds = MIN(n_buckets, (size_t) MAX_BUCKETS - 1);
                        memcpy(f->bounds, buckets, f->n_bounds * sizeof(double));
                        /* append to keep declaration order in the output */
                        Family **p = &families;
                        while (*p)
                                p = &(*p)->next;
                        *p = f;
                }
        }
        pthread_mutex_unlock(&lock);
}

static Series *series_get(Family *f, const char *labels) {
        labels = labels ? labels : "";
        for (Series *s = f->series; s; s = s->next)
                if (streq(s->labels, labels))
                        return s;
        Series *s = calloc(1, sizeof(Series));
        if (!s)
                return NULL;
        s->labels = strdup(labels);
        if (!s->labels) {
                free(s);
                return NULL;
        }
        Series **p = &f->series;
        while (*p)
                p = &(*p)->next;
        *p = s;
        return s;
}

static Family *family_get(const char *name, MetricType type) {
        Family *f = family_find(name);
        if (f)
                return f;
        pthread_mutex_unlock(&lock);
        metrics_declare(name, type, NULL, NULL, 0);
        pthread_mutex_lock(&lock);
        return family_find(name);
}

void metrics_counter_add(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        Family *f = family_get(name, METRIC_COUNTER);
        Series *s = f ? series_get(f, labels) : NULL;
        if (s)
                s->value += v;
        pthread_mutex_unlock(&lock);
}

void metrics_gauge_set(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        Family *f = family_get(name, METRIC_GAUGE);
        Series *s = f ? series_get(f, labels) : NULL;
        if (s)
                s->value = v;
        pthread_mutex_unlock(&lock);
}

void metrics_histogram_observe(const char *name, const char *labels, double v) {
        pthread_mutex_lock(&lock);
        Family *f = family_get(name, METRIC_HISTOGRAM);
        Series *s = f ? series_get(f, labels) : NULL;
        if (s) {
                size_t i = 0;
                while (i < f->n_bounds && v > f->bounds[i])
                        i++;
                s->buckets[i]++; /* i == n_bounds is +Inf */
                s->count++;
                s->value += v;
        }
        pthread_mutex_unlock(&lock);
}

double metrics_get(const char *name, const char *labels) {
        double v = 0;
        pthread_mutex_lock(&lock);
        Family *f = family_find(name);
        if (f)
                for (Series *s = f->series; s; s = s->next)
                        if (streq(s->labels, labels ? labels : ""))
                                v = f->type == METRIC_HISTOGRAM ? (double) s->count : s->value;
        pthread_mutex_unlock(&lock);
        return v;
}

uint64_t metrics_histogram_count(const char *name, const char *labels) {
        return (uint64_t) metrics_get(name, labels);
}

double metrics_histogram_quantile(const char *name, const char *labels, double q) {
        double r = NAN;
        pthread_mutex_lock(&lock);
        Family *f = family_find(name);
        Series *s = NULL;
        if (f)
                for (Series *i = f->series; i; i = i->next)
                        if (streq(i->labels, labels ? labels : ""))
                                s = i;
        if (f && s && s->count > 0) {
                double want = q * (double) s->count, acc = 0;
                for (size_t i = 0; i <= f->n_bounds; i++) {
                        double prev = acc;
                        acc += (double) s->buckets[i];
                        if (acc >= want && s->buckets[i] > 0) {
                                double lo = i == 0 ? 0 : f->bounds[i - 1];
                                double hi = i < f->n_bounds ? f->bounds[i] : lo; /* +Inf: report the last bound */
                                r = lo + (hi - lo) * ((want - prev) / (double) s->buckets[i]);
                                break;
                        }
                }
        }
        pthread_mutex_unlock(&lock);
        return r;
}

void metrics_add_collector(MetricsCollectFn fn, void *userdata) {
        Collector *c = calloc(1, sizeof(Collector));
        if (!c)
                return;
        c->fn = fn;
        c->userdata = userdata;
        pthread_mutex_lock(&lock);
        c->next = collectors;
        collectors = c;
        pthread_mutex_unlock(&lock);
}

void metrics_remove_collector(MetricsCollectFn fn, void *userdata) {
        pthread_mutex_lock(&lock);
        Collector *gone = NULL;
        for (Collector **c = &collectors; *c; c = &(*c)->next)
                if ((*c)->fn == fn && (*c)->userdata == userdata) {
                        gone = *c;
                        *c = gone->next;
                        break;
                }
        /* a render may still be calling it: once none is, no render will */
        while (collecting > 0)
                pthread_cond_wait(&collected, &lock);
        pthread_mutex_unlock(&lock);
        free(gone);
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) _printf_(4, 5);
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
        va_list ap;
        for (;;) {
                va_start(ap, fmt);
                int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
                va_end(ap);
                if (n < 0)
                        return;
                if (*buf && *len + (size_t) n < *cap) {
                        *len += (size_t) n;
                        return;
                }
                size_t ncap = MAX(*cap * 2, *len + (size_t) n + 4096);
                char *nb = realloc(*buf, ncap);
                if (!nb)
                        return;
                *buf = nb;
                *cap = ncap;
        }
}

char *metrics_render(void) {
        /* collectors may call metrics_gauge_set, so run them unlocked, from a copy of the list
         * (metrics_remove_collector() waits until no render runs them) */
        pthread_mutex_lock(&lock);
        size_t n = 0;
        for (Collector *c = collectors; c; c = c->next)
                n++;
        Collector *cs = calloc(n ? n : 1, sizeof(Collector));
        n = 0;
        for (Collector *c = collectors; cs && c; c = c->next)
                cs[n++] = *c;
        collecting++;
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; cs && i < n; i++)
                cs[i].fn(cs[i].userdata);
        free(cs);
        pthread_mutex_lock(&lock);
        collecting--;
        pthread_cond_broadcast(&collected);
        pthread_mutex_unlock(&lock);

        char *buf = NULL;
        size_t len = 0, cap = 0;
        static const char *const type_names[_METRIC_TYPE_MAX] = { "counter", "gauge", "histogram" };
        pthread_mutex_lock(&lock);
        for (Family *f = families; f; f = f->next) {
                append(&buf, &len, &cap, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
                for (Series *s = f->series; s; s = s->next) {
                        const char *sep = *s->labels ? "," : "";
                        if (f->type != METRIC_HISTOGRAM) {
                                if (*s->labels)
                                        append(&buf, &len, &cap, "%s{%s} %.17g\n", f->name, s->labels, s->value);
                                else
                                        append(&buf, &len, &cap, "%s %.17g\n", f->name, s->value);
                                continue;
                        }
                        uint64_t cum = 0;
                        for (size_t i = 0; i < f->n_bounds; i++) {
                                cum += s->buckets[i];
                                append(&buf, &len, &cap, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", f->name, s->labels, sep, f->bounds[i], cum);
                        }
                        append(&buf, &len, &cap, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", f->name, s->labels, sep, s->count);
                        if (*s->labels) {
                                append(&buf, &len, &cap, "%s_sum{%s} %.17g\n", f->name, s->labels, s->value);
                                append(&buf, &len, &cap, "%s_count{%s} %" PRIu64 "\n", f->name, s->labels, s->count);
                        } else {
                                append(&buf, &len, &cap, "%s_sum %.17g\n", f->name, s->value);
                                append(&buf, &len, &cap, "%s_count %" PRIu64 "\n", f->name, s->count);
                        }
                }
        }
        pthread_mutex_unlock(&lock);
        if (!buf)
                buf = strdup("");
        return buf;
}

void metrics_reset(void) {
        pthread_mutex_lock(&lock);
        for (Family *f = families; f;) {
                for (Series *s = f->series; s;) {
                        Series *n = s->next;
                        free(s->labels);
                        free(s);
                        s = n;
                }
                Family *n = f->next;
                free(f->name);
                free(f->help);
                free(f);
                f = n;
        }
        families = NULL;
        pthread_mutex_unlock(&lock);
}
