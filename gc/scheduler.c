/* SPDX-License-Identifier: MIT */
/* The GC's schedule (gc.schedule: "", "hourly", "daily", "weekly" or a duration): a thread of its
 * own runs the GC every interval, the first run one interval after the start. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "gc/gc-internal.h"

static void *scheduler_thread(void *userdata) {
        Gc *g = userdata;
        (void) pthread_setname_np(pthread_self(), "plura-gc-sched");
        int64_t interval = gc_config_schedule_ns(g->config);
        uint64_t next_mono = clock_monotonic_ns() + (uint64_t) interval;
        pthread_mutex_lock(&g->lock);
        g->next_run = clock_now_ns() + interval;
        while (!g->sched_stop) {
                uint64_t now = clock_monotonic_ns();
                if (now < next_mono) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        uint64_t wait = MIN(next_mono - now, (uint64_t) 3600 * NSEC_PER_SEC);
                        uint64_t ns = (uint64_t) ts.tv_nsec + wait % NSEC_PER_SEC;
                        ts.tv_sec += (time_t) (wait / NSEC_PER_SEC) + (time_t) (ns / NSEC_PER_SEC);
                        ts.tv_nsec = (long) (ns % NSEC_PER_SEC);
                        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
                        continue;
                }
                pthread_mutex_unlock(&g->lock);
                GcOptions o = { .actor = "gc-schedule", .trigger = "schedule" };
                int k = gc_run(g, &o, NULL);
                if (k == -EBUSY)
                        log_info("gc: scheduled run skipped, a GC is already running");
                else if (k < 0 && k != -ECANCELED && k != -ESHUTDOWN)
                        log_error_errno(k, "gc: scheduled run failed: %m");
                pthread_mutex_lock(&g->lock);
                next_mono = clock_monotonic_ns() + (uint64_t) interval;
                g->next_run = clock_now_ns() + interval;
        }
        g->next_run = 0;
        pthread_mutex_unlock(&g->lock);
        return NULL;
}

int gc_scheduler_start(Gc *g) {
        int k = 0;
        pthread_mutex_lock(&g->lock);
        g->stopping = false;
        g->sched_stop = false;
        bool start = !g->sched_started && gc_config_schedule_ns(g->config) > 0 && !store_is_read_only(g->store);
        if (start) {
                k = -pthread_create(&g->sched_thread, NULL, scheduler_thread, g); /* it waits for the lock */
                g->sched_started = k >= 0;
        }
        pthread_mutex_unlock(&g->lock);
        if (start && k >= 0)
                log_info("gc: scheduled every %s", gc_config_schedule(g->config));
        return k;
}

void gc_scheduler_stop(Gc *g) {
        pthread_mutex_lock(&g->lock);
        g->sched_stop = true;
        pthread_cond_broadcast(&g->cond);
        bool started = g->sched_started;
        g->sched_started = false;
        pthread_mutex_unlock(&g->lock);
        if (started)
                pthread_join(g->sched_thread, NULL);
}

int64_t gc_scheduler_next_run(Gc *g) {
        pthread_mutex_lock(&g->lock);
        int64_t next = g->next_run;
        pthread_mutex_unlock(&g->lock);
        return next;
}
