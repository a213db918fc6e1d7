/* SPDX-License-Identifier: MIT */
/* A work-sharing loop over a few threads (the GC's apply phase, the storage sweep). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/parallel.h"
#include "common/util.h"

#define PARALLEL_THREADS_MAX 64

typedef struct Parallel {
        size_t n;
        size_t next;
        const char *name;
        ParallelFn fn;
        bool (*stop)(void *userdata);
        void *userdata;
        int error;
        pthread_mutex_t lock;
} Parallel;

static void parallel_run(Parallel *p) {
        for (;;) {
                pthread_mutex_lock(&p->lock);
                size_t i = p->next++;
                bool stop = i >= p->n || p->error < 0;
                if (!stop && p->stop && p->stop(p->userdata))
                        p->error = -ECANCELED, stop = true;
                pthread_mutex_unlock(&p->lock);
                if (stop)
                        break;
                int q = p->fn(p->userdata, i);
                if (q < 0) {
                        pthread_mutex_lock(&p->lock);
                        if (p->error == 0)
                                p->error = q;
                        pthread_mutex_unlock(&p->lock);
                }
        }
}

static void *parallel_thread(void *userdata) {
        Parallel *p = userdata;
        if (p->name)
                (void) pthread_setname_np(pthread_self(), p->name); /* top -H, ps -L */
        parallel_run(p);
        return NULL;
}

int parallel_for(size_t n, size_t max_threads, const char *name, ParallelFn fn, bool (*stop)(void *userdata),
                 void *userdata) {
        Parallel p = { .n = n, .name = name, .fn = fn, .stop = stop, .userdata = userdata, .lock = PTHREAD_MUTEX_INITIALIZER };
        size_t nt = MIN(MIN(max_threads, (size_t) PARALLEL_THREADS_MAX), n);
        pthread_t t[PARALLEL_THREADS_MAX];
        size_t started = 0;
        for (size_t i = 1; i < nt; i++)
                if (pthread_create(&t[started], NULL, parallel_thread, &p) == 0)
                        started++;
        parallel_run(&p);
        for (size_t i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        pthread_mutex_destroy(&p.lock);
        return p.error;
}
