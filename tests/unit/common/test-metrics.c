/* SPDX-License-Identifier: MIT */
#include <math.h>

#include "common/metrics.h"
#include "tests/unit/tests.h"

TEST(test_counter_gauge_histogram) {
        metrics_declare("t_requests_total", METRIC_COUNTER, "requests", NULL, 0);
        metrics_counter_add("t_requests_total", "route=\"a\"", 1);
        metrics_counter_add("t_requests_total", "route=\"a\"", 2);
        metrics_counter_add("t_requests_total", "route=\"b\"", 1);
        ASSERT_EQ(metrics_get("t_requests_total", "route=\"a\""), 3);
        metrics_gauge_set("t_bytes", NULL, 42);
        ASSERT_EQ(metrics_get("t_bytes", NULL), 42);
        double b[] = { 1, 2, 4, 8 };
        metrics_declare("t_lat", METRIC_HISTOGRAM, "latency", b, 4);
        for (int i = 0; i < 100; i++)
                metrics_histogram_observe("t_lat", NULL, i < 90 ? 0.5 : 7);
        ASSERT_EQ(metrics_histogram_count("t_lat", NULL), 100);
        double p50 = metrics_histogram_quantile("t_lat", NULL, 0.5);
        double p95 = metrics_histogram_quantile("t_lat", NULL, 0.95);
        ASSERT_TRUE(p50 > 0 && p50 <= 1);
        ASSERT_TRUE(p95 > 4 && p95 <= 8);
        ASSERT_TRUE(isnan(metrics_histogram_quantile("t_none", NULL, 0.5)));
        char *s = metrics_render();
        ASSERT_TRUE(strstr(s, "# TYPE t_requests_total counter"));
        ASSERT_TRUE(strstr(s, "t_requests_total{route=\"a\"} 3\n"));
        ASSERT_TRUE(strstr(s, "t_bytes 42\n"));
        ASSERT_TRUE(strstr(s, "t_lat_bucket{le=\"1\"} 90\n"));
        ASSERT_TRUE(strstr(s, "t_lat_bucket{le=\"+Inf\"} 100\n"));
        ASSERT_TRUE(strstr(s, "t_lat_count 100\n"));
        free(s);
}

int main(void) {
        RUN(test_counter_gauge_histogram);
        metrics_reset();
        return 0;
}
