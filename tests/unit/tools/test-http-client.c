/* SPDX-License-Identifier: MIT */
/* The `plura reg` HTTP client: the response parser on its own, and whole requests against a
 * server thread on a loopback port that answers each connection with a canned response and
 * keeps the request it read. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-client.h"
#include "http-response.h"
#include "tests/unit/tests.h"

static int parse(const char *raw, long *status, char **body, size_t *bl) {
        return http_response_parse(raw, strlen(raw), true, status, body, bl);
}

static int parse_open(const char *raw) {
        long st;
        char *b = NULL;
        size_t bl;
        int r = http_response_parse(raw, strlen(raw), false, &st, &b, &bl);
        free(b);
        return r;
}

TEST(test_response_parse) {
        long st;
        char *b;
        size_t bl;
        ASSERT_OK(parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing", &st, &b, &bl));
        ASSERT_EQ(st, 200);
        ASSERT_EQ(bl, 2);
        ASSERT_STREQ(b, "{}");
        free(b);
        /* chunked, with an extension and a trailer; header names in any case */
        ASSERT_OK(parse("HTTP/1.1 404 Not Found\r\ntransfer-encoding: Chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n", &st,
                        &b, &bl));
        ASSERT_EQ(st, 404);
        ASSERT_STREQ(b, "{\"a\":1}");
        ASSERT_EQ(bl, 7);
        free(b);
        /* no length: to the end; HTTP/1.0; bare LF; no reason phrase */
        ASSERT_OK(parse("HTTP/1.0 202\nServer: x\n\nbody", &st, &b, &bl));
        ASSERT_EQ(st, 202);
        ASSERT_STREQ(b, "body");
        free(b);
        /* an interim 100 Continue first */
        ASSERT_OK(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", &st, &b, &bl));
        ASSERT_EQ(st, 201);
        ASSERT_EQ(bl, 0);
        free(b);
        /* a body with a NUL byte keeps its length */
        static const char nul[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na\0b";
        ASSERT_OK(http_response_parse(nul, sizeof nul - 1, true, &st, &b, &bl));
        ASSERT_EQ(bl, 3);
        ASSERT_TRUE(b[0] == 'a' && b[1] == 0 && b[2] == 'b');
        free(b);

        static const char *const bad[] = {
                "",
                "HTTP/1.1",
                "HTTP/1.1 200 OK",                                          /* headers not terminated */
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",          /* truncated */
                "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  /* truncated chunk */
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",         /* no last chunk */
                "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                "HTTP/2 200\r\n\r\n",
                "HTTP/1.1 999 x\r\n\r\n",
                "HTTP/1.1 20 x\r\n\r\n",
                "HTTP/1.1 2000\r\n\r\n",
                "SSH-2.0-OpenSSH\r\n\r\n",
                "HTTP/1.1 100 Continue\r\n\r\n", /* only an interim response */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = parse(bad[i], &st, &b, &bl);
                if (r != -EBADMSG)
                        fprintf(stderr, "accepted: %s\n", bad[i]);
                ASSERT_TRUE(r == -EBADMSG);
        }
        ASSERT_TRUE(http_response_parse(NULL, 0, true, &st, &b, &bl) == -EBADMSG);

        /* before the end of the input: complete by its framing, or -EAGAIN for more */
        static const char whole[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        for (size_t l = 0; l < sizeof whole - 1; l++)
                ASSERT_TRUE(http_response_parse(whole, l, false, &st, &b, &bl) == -EAGAIN);
        ASSERT_OK(http_response_parse(whole, sizeof whole - 1, false, &st, &b, &bl));
        ASSERT_STREQ(b, "{}");
        free(b);
        static const char chunks[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n";
        for (size_t l = 0; l < sizeof chunks - 1; l++) {
                ASSERT_TRUE(http_response_parse(chunks, l, false, &st, &b, &bl) == -EAGAIN);
                ASSERT_TRUE(http_response_parse(chunks, l, true, &st, &b, &bl) == -EBADMSG);
        }
        ASSERT_OK(http_response_parse(chunks, sizeof chunks - 1, false, &st, &b, &bl));
        free(b);
        /* no framing: only the end of the connection ends it */
        ASSERT_TRUE(parse_open("HTTP/1.1 200 OK\r\n\r\nsome") == -EAGAIN);
        /* garbage is refused at once, not waited for */
        ASSERT_TRUE(parse_open("SSH-2.0") == -EBADMSG);
        ASSERT_TRUE(parse_open("HTTP/1.1 200 OK\r\nno colon\r\n") == -EBADMSG);
}

TEST(test_url_escape) {
        char *e = http_url_escape("prod:stable@sha256:ab/c d~e_f.g-h");
        ASSERT_STREQ(e, "prod%3Astable%40sha256%3Aab%2Fc%20d~e_f.g-h");
        free(e);
        e = http_url_escape("");
        ASSERT_STREQ(e, "");
        free(e);
}

/* ---- a canned server on a loopback port */

typedef struct Canned {
        int listen_fd;
        const char *response; /* sent after the whole request was read */
        size_t response_len;
        char request[8192];
        size_t request_len;
        bool close_early; /* close after the headers, without an answer */
        bool keep_open;   /* after the answer, wait for the client to hang up (a keep-alive proxy) */
} Canned;

static void *serve_one(void *userdata) {
        Canned *c = userdata;
        int fd = accept(c->listen_fd, NULL, NULL);
        ASSERT_TRUE(fd >= 0);
        /* read the head, then Content-Length bytes of body */
        size_t need = SIZE_MAX;
        while (c->request_len < sizeof c->request - 1 && c->request_len < need) {
                ssize_t k = read(fd, c->request + c->request_len, sizeof c->request - 1 - c->request_len);
                if (k <= 0)
                        break;
                c->request_len += (size_t) k;
                c->request[c->request_len] = 0;
                char *eoh = strstr(c->request, "\r\n\r\n");
                if (eoh && need == SIZE_MAX) {
                        char *cl = strstr(c->request, "Content-Length: ");
                        need = (size_t) (eoh + 4 - c->request) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
                }
        }
        if (!c->close_early)
                ASSERT_TRUE(write(fd, c->response, c->response_len) == (ssize_t) c->response_len);
        char drain;
        if (c->keep_open)
                while (read(fd, &drain, 1) > 0)
                        ;
        close(fd);
        return NULL;
}

static int request(const char *url, const char *method, const char *path, json_t *body, const char *actor, HttpResult *res) {
        HttpClientOptions o = { .url = url, .actor = actor };
        return http_json_request(&o, method, path, body, res);
}

/* base: host + ":" + the port + suffix */
static int canned_request(Canned *c, const char *host, const char *suffix, const char *method, const char *path, json_t *body, const char *actor,
                          HttpResult *res) {
        c->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_TRUE(c->listen_fd >= 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        ASSERT_OK(bind(c->listen_fd, (struct sockaddr *) &sa, sizeof sa));
        ASSERT_OK(listen(c->listen_fd, 1));
        socklen_t sl = sizeof sa;
        ASSERT_OK(getsockname(c->listen_fd, (struct sockaddr *) &sa, &sl));
        char base[256];
        snprintf(base, sizeof base, "%s:%u%s", host, ntohs(sa.sin_port), suffix);
        pthread_t t;
        ASSERT_TRUE(pthread_create(&t, NULL, serve_one, c) == 0);
        int r = request(base, method, path, body, actor, res);
        if (r < 0 && getenv("TEST_VERBOSE"))
                fprintf(stderr, "%s\n", res->error);
        pthread_join(t, NULL);
        close(c->listen_fd);
        return r;
}

TEST(test_requests) {
        static const char chunked[] = "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                                      "18\r\n{\"errors\":[{\"code\":\"GC_R\r\n8\r\nUNNING\"}\r\n2\r\n]}\r\n0\r\n\r\n";
        Canned c = { .response = chunked, .response_len = sizeof chunked - 1 };
        HttpResult res;
        json_t *body = json_pack("{s:b}", "dry_run", 1);
        /* a path prefix in the base URL, and its trailing slash dropped */
        ASSERT_OK(canned_request(&c, "http://127.0.0.1", "/prefix/", "POST", "/v1/registry/gc", body, "alice", &res));
        json_decref(body);
        ASSERT_EQ(res.status, 409);
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(res.body, "errors"), 0), "code")), "GC_RUNNING");
        http_result_done(&res);
        ASSERT_TRUE(strncmp(c.request, "POST /prefix/v1/registry/gc HTTP/1.1\r\n", 38) == 0);
        ASSERT_TRUE(strstr(c.request, "\r\nHost: 127.0.0.1:") != NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nX-Plura-Actor: alice\r\n") != NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nContent-Type: application/json\r\n") != NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nContent-Length: 16\r\n") != NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nConnection: close\r\n") != NULL);
        ASSERT_TRUE(strcmp(c.request + c.request_len - 16, "{\"dry_run\":true}") == 0);

        /* a GET: no body, no Content-Type; the actor from $PLURA_ACTOR */
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"n\": 42}\r\n";
        c = (Canned) { .response = ok, .response_len = sizeof ok - 1 };
        setenv("PLURA_ACTOR", "ci-bot", 1);
        ASSERT_OK(canned_request(&c, "http://localhost", "", "GET", "/v1/registry/gc", NULL, NULL, &res));
        unsetenv("PLURA_ACTOR");
        ASSERT_EQ(res.status, 200);
        ASSERT_EQ(json_integer_value(json_object_get(res.body, "n")), 42);
        http_result_done(&res);
        ASSERT_TRUE(strncmp(c.request, "GET /v1/registry/gc HTTP/1.1\r\n", 30) == 0);
        ASSERT_TRUE(strstr(c.request, "Content-Type") == NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nContent-Length: 0\r\n") != NULL);
        ASSERT_TRUE(strstr(c.request, "\r\nX-Plura-Actor: ci-bot\r\n") != NULL);

        /* a server that keeps the connection open: the answer is complete by its length */
        c = (Canned) { .response = ok, .response_len = sizeof ok - 1, .keep_open = true };
        ASSERT_OK(canned_request(&c, "http://127.0.0.1", "", "GET", "/v2/", NULL, "x", &res));
        ASSERT_EQ(res.status, 200);
        ASSERT_EQ(json_integer_value(json_object_get(res.body, "n")), 42);
        http_result_done(&res);

        /* the server hangs up without answering: a transport error, status 0 */
        c = (Canned) { .close_early = true };
        ASSERT_TRUE(canned_request(&c, "http://127.0.0.1", "", "GET", "/v2/", NULL, "x", &res) == -ECONNREFUSED);
        ASSERT_EQ(res.status, 0);
        ASSERT_TRUE(strstr(res.error, "empty reply") != NULL);
        http_result_done(&res);

        /* a truncated answer is not taken for a complete one */
        static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":";
        c = (Canned) { .response = cut, .response_len = sizeof cut - 1 };
        ASSERT_TRUE(canned_request(&c, "http://127.0.0.1", "", "GET", "/v2/", NULL, "x", &res) == -ECONNREFUSED);
        ASSERT_EQ(res.status, 0);
        ASSERT_TRUE(strstr(res.error, "malformed HTTP response") != NULL);
        http_result_done(&res);
}

TEST(test_request_errors) {
        HttpResult res;
        /* nothing listens on port 1 */
        ASSERT_TRUE(request("http://127.0.0.1:1", "GET", "/v2/", NULL, "x", &res) == -ECONNREFUSED);
        ASSERT_EQ(res.status, 0);
        ASSERT_TRUE(strstr(res.error, "cannot connect") != NULL);
        http_result_done(&res);
        static const char *const bad_urls[] = { "ftp://x", "127.0.0.1:5000", "http://", "http://h:0", "http://h:65536", "http://h:x",
                                                "http://u@h", "http://[::1", "http://h?x" };
        for (size_t i = 0; i < ELEMENTSOF(bad_urls); i++) {
                ASSERT_TRUE(request(bad_urls[i], "GET", "/v2/", NULL, "x", &res) == -EINVAL);
                ASSERT_EQ(res.status, 0);
                ASSERT_TRUE(res.error[0] != 0);
                http_result_done(&res);
        }
        /* no header injection through the actor or the path */
        ASSERT_TRUE(request("http://127.0.0.1:1", "GET", "/v2/", NULL, "a\r\nX-Evil: 1", &res) == -EINVAL);
        ASSERT_TRUE(request("http://127.0.0.1:1", "GET", "/v2/a b", NULL, "x", &res) == -EINVAL);
        ASSERT_TRUE(request("http://127.0.0.1:1", "GET", "/v2/\r\nX: 1", NULL, "x", &res) == -EINVAL);
}

/* The options every plura reg verb takes come out of argv, the rest keeps its order */
TEST(test_client_options) {
        char *argv[] = { "promote", "--url", "https://r:5000", "apps/a", "--ca=/etc/ca.pem", "--json", "--actor", "bob",
                         "x", "--", "--insecure", NULL };
        HttpClientOptions o = {};
        int n = http_client_options_take(11, argv, &o);
        ASSERT_EQ(n, 6);
        ASSERT_STREQ(o.url, "https://r:5000");
        ASSERT_STREQ(o.ca, "/etc/ca.pem");
        ASSERT_STREQ(o.actor, "bob");
        ASSERT_FALSE(o.insecure); /* after "--": an argument */
        ASSERT_STREQ(argv[0], "promote");
        ASSERT_STREQ(argv[1], "apps/a");
        ASSERT_STREQ(argv[2], "--json");
        ASSERT_STREQ(argv[3], "x");
        ASSERT_STREQ(argv[4], "--");
        ASSERT_STREQ(argv[5], "--insecure");
        ASSERT_TRUE(argv[6] == NULL);

        char *insecure[] = { "tags", "--insecure", "apps/a", NULL };
        o = (HttpClientOptions) {};
        ASSERT_EQ(http_client_options_take(3, insecure, &o), 2);
        ASSERT_TRUE(o.insecure);
        ASSERT_TRUE(o.ca == NULL);

        char *both[] = { "tags", "--insecure", "--ca", "/etc/ca.pem", NULL };
        o = (HttpClientOptions) {};
        ASSERT_EQ(http_client_options_take(4, both, &o), -EINVAL);
        char *missing[] = { "tags", "--ca", NULL };
        o = (HttpClientOptions) {};
        ASSERT_EQ(http_client_options_take(2, missing, &o), -EINVAL);
        char *lookalike[] = { "tags", "--cache", "--url", "http://h", NULL };
        o = (HttpClientOptions) {};
        ASSERT_EQ(http_client_options_take(4, lookalike, &o), 2);
        ASSERT_STREQ(lookalike[1], "--cache");
        ASSERT_STREQ(o.url, "http://h");
}

int main(void) {
        RUN(test_response_parse);
        RUN(test_url_escape);
        RUN(test_client_options);
        RUN(test_requests);
        RUN(test_request_errors);
        return 0;
}
