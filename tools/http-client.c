/* SPDX-License-Identifier: MIT */
/* JSON over HTTP/1.1 for `plura reg`: one request per connection (Connection: close), over a
 * plain socket. libcurl, which this replaced, brought 25 shared libraries (GnuTLS, Kerberos,
 * LDAP, SSH...) whose loading took 12 of the 24 ms that every `plura reg` call spent before main();
 * it is still used, loaded on demand, for https:// URLs (plura's native TLS, or a proxy in front),
 * and always verifies the server's certificate unless told --insecure. */

#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "credentials.h"
#include "http-client.h"
#include "http-response.h"

#define REQUEST_TIMEOUT_S 3600                   /* a GC or an export may take a while */
#define RESPONSE_MAX ((size_t) 1024 * 1024 * 1024) /* the audit log or a report list: generous */

const char *default_registry_url(const char *flag) {
        if (flag)
                return flag;
        const char *e = getenv("PLURA_URL");
        return e && *e ? e : "http://127.0.0.1:5000";
}

/* http://host[:port][/prefix] -> host, port, prefix (without a trailing slash). */
typedef struct Url {
        char host[256];
        char port[8];
        char prefix[1024];
} Url;

static int url_parse(const char *url, Url *ret) {
        const char *p = url;
        if (strncasecmp(p, "http://", 7) != 0)
                return -EPROTONOSUPPORT;
        p += 7;
        const char *host = p, *host_end;
        if (*p == '[') { /* [IPv6] */
                host = ++p;
                host_end = strchr(p, ']');
                if (!host_end)
                        return -EINVAL;
                p = host_end + 1;
        } else {
                while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#' && *p != '@')
                        p++;
                if (*p == '@')
                        return -EINVAL; /* user:password@ is not supported */
                host_end = p;
        }
        size_t hl = (size_t) (host_end - host);
        if (hl == 0 || hl >= sizeof ret->host)
                return -EINVAL;
        memcpy(ret->host, host, hl);
        ret->host[hl] = 0;
        snprintf(ret->port, sizeof ret->port, "80");
        if (*p == ':') {
                const char *ps = ++p;
                while (*p >= '0' && *p <= '9')
                        p++;
                size_t pl = (size_t) (p - ps);
                long port = pl > 0 && pl <= 5 ? strtol(ps, NULL, 10) : 0;
                if (port < 1 || port > 65535)
                        return -EINVAL;
                snprintf(ret->port, sizeof ret->port, "%ld", port);
        }
        if (*p && *p != '/')
                return -EINVAL;
        size_t l = strlen(p);
        while (l > 0 && p[l - 1] == '/')
                l--;
        if (l >= sizeof ret->prefix)
                return -EINVAL;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char) p[i] <= ' ' || p[i] == 0x7f)
                        return -EINVAL;
        memcpy(ret->prefix, p, l);
        ret->prefix[l] = 0;
        return 0;
}

static int64_t now_ms(void) {
        return (int64_t) (clock_monotonic_ns() / NSEC_PER_MSEC);
}

/* Waits for fd to be ready for events until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = { .fd = fd, .events = events };
                int k = poll(&pfd, 1, (int) MIN(left, (int64_t) INT32_MAX));
                if (k > 0)
                        return 0;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
}

static int connect_to(const Url *u, int64_t deadline, int *ret_fd) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *ai = NULL;
        int k = getaddrinfo(u->host, u->port, &hints, &ai);
        if (k != 0)
                return k == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
        int r = -ECONNREFUSED;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
                        if (errno != EINPROGRESS) {
                                r = -errno;
                                close(fd);
                                continue;
                        }
                        int soerr = 0;
                        socklen_t sl = sizeof soerr;
                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                                r = -errno;
                        else if (r >= 0 && soerr != 0)
                                r = -soerr;
                        if (r < 0) {
                                close(fd);
                                continue;
                        }
                }
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                freeaddrinfo(ai);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(ai);
        return r;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Reads until the response is complete by its framing (Content-Length, last chunk), or the
 * server closed the connection: a proxy may keep it open despite Connection: close. */
static int recv_response(int fd, int64_t deadline, long *ret_status, char **ret_body, size_t *ret_body_len) {
        size_t cap = 16384, n = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (n == cap) {
                        if (cap >= RESPONSE_MAX)
                                return -EFBIG;
                        char *nb = realloc(buf, cap * 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
                ssize_t k = recv(fd, buf + n, cap - n, 0);
                if (k > 0) {
                        n += (size_t) k;
                        int r = http_response_parse(buf, n, false, ret_status, ret_body, ret_body_len);
                        if (r != -EAGAIN)
                                return r;
                        continue;
                }
                if (k == 0)
                        return n == 0 ? -ENODATA : http_response_parse(buf, n, true, ret_status, ret_body, ret_body_len);
                if (errno == EINTR)
                        continue;
                int r = errno == EAGAIN ? wait_fd(fd, POLLIN, deadline) : -errno;
                if (r < 0)
                        return r;
        }
}

/* A header value from the environment: no CR or LF may split the request. */
static bool header_value_ok(const char *v) {
        for (; *v; v++)
                if (*v == '\r' || *v == '\n')
                        return false;
        return true;
}

static int plain_request(const Url *u, const char *url, const char *method, const char *path, const char *payload,
                         const char *actor, const char *authorization, HttpResult *ret) {
        int64_t deadline = now_ms() + REQUEST_TIMEOUT_S * 1000LL;
        bool v6 = strchr(u->host, ':') != NULL;
        _cleanup_free_ char *head = NULL;
        size_t plen = payload ? strlen(payload) : 0;
        bool default_port = streq(u->port, "80");
        int hl = asprintf(&head,
                          "%s %s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nAccept: application/json\r\n%s%s%s%s%s%s%s"
                          "Content-Length: %zu\r\nConnection: close\r\nUser-Agent: plura\r\n\r\n",
                          method, u->prefix, path, v6 ? "[" : "", u->host, v6 ? "]" : "", default_port ? "" : ":",
                          default_port ? "" : u->port, payload ? "Content-Type: application/json\r\n" : "",
                          actor ? "X-Plura-Actor: " : "", strempty(actor), actor ? "\r\n" : "",
                          authorization ? "Authorization: " : "", strempty(authorization), authorization ? "\r\n" : "", plen);
        if (hl < 0)
                return -ENOMEM;
        int fd = -1;
        int r = connect_to(u, deadline, &fd);
        if (r < 0) {
                snprintf(ret->error, sizeof ret->error, "%s: cannot connect: %s", url, strerror(-r));
                return -ECONNREFUSED;
        }
        r = send_all(fd, head, (size_t) hl, deadline);
        if (r >= 0 && plen)
                r = send_all(fd, payload, plen, deadline);
        char *body = NULL;
        size_t bl = 0;
        if (r >= 0)
                r = recv_response(fd, deadline, &ret->status, &body, &bl);
        close(fd);
        if (r < 0) {
                ret->status = 0;
                snprintf(ret->error, sizeof ret->error, "%s: %s", url,
                         r == -ETIMEDOUT ? "timed out" : r == -ENODATA ? "empty reply from server" :
                         r == -EBADMSG ? "malformed HTTP response" : strerror(-r));
                return -ECONNREFUSED;
        }
        ret->raw = body;
        return 0;
}

/* ---- https:// through libcurl, loaded when first needed */

typedef void CURL;
struct curl_slist;
#define CURLOPT_URL 10002
#define CURLOPT_CUSTOMREQUEST 10036
#define CURLOPT_HTTPHEADER 10023
#define CURLOPT_POSTFIELDS 10015
#define CURLOPT_WRITEFUNCTION 20011
#define CURLOPT_WRITEDATA 10001
#define CURLOPT_NOSIGNAL 99
#define CURLOPT_TIMEOUT 13
#define CURLOPT_ERRORBUFFER 10010
#define CURLOPT_SSL_VERIFYPEER 64
#define CURLOPT_SSL_VERIFYHOST 81
#define CURLOPT_CAINFO 10065
#define CURLOPT_CAPATH 10097
#define CURLINFO_RESPONSE_CODE 0x200002
#define CURL_ERROR_SIZE 256
#define CURLE_SSL_CONNECT_ERROR 35
#define CURLE_PEER_FAILED_VERIFICATION 60
#define CURLE_SSL_CACERT_BADFILE 77

static struct {
        CURL *(*easy_init)(void);
        int (*easy_setopt)(CURL *, int, ...);
        int (*easy_perform)(CURL *);
        int (*easy_getinfo)(CURL *, int, ...);
        void (*easy_cleanup)(CURL *);
        const char *(*easy_strerror)(int);
        struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
        void (*slist_free_all)(struct curl_slist *);
} curl;

static int curl_load(char *err, size_t errlen) {
        if (curl.easy_init)
                return 0;
        void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                snprintf(err, errlen, "https needs libcurl (libcurl.so.4): %s", dlerror());
                return -ENOPKG;
        }
        curl.easy_setopt = (int (*)(CURL *, int, ...)) dlsym(h, "curl_easy_setopt");
        curl.easy_perform = (int (*)(CURL *)) dlsym(h, "curl_easy_perform");
        curl.easy_getinfo = (int (*)(CURL *, int, ...)) dlsym(h, "curl_easy_getinfo");
        curl.easy_cleanup = (void (*)(CURL *)) dlsym(h, "curl_easy_cleanup");
        curl.easy_strerror = (const char *(*) (int) ) dlsym(h, "curl_easy_strerror");
        curl.slist_append = (struct curl_slist * (*) (struct curl_slist *, const char *) ) dlsym(h, "curl_slist_append");
        curl.slist_free_all = (void (*)(struct curl_slist *)) dlsym(h, "curl_slist_free_all");
        CURL *(*init)(void) = (CURL * (*) (void) ) dlsym(h, "curl_easy_init");
        if (!init || !curl.easy_setopt || !curl.easy_perform || !curl.easy_getinfo || !curl.easy_cleanup || !curl.easy_strerror ||
            !curl.slist_append || !curl.slist_free_all) {
                snprintf(err, errlen, "libcurl.so.4 lacks a function plura needs");
                return -ENOPKG;
        }
        curl.easy_init = init;
        return 0;
}

typedef struct Buf {
        char *data;
        size_t len;
} Buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
        Buf *b = ud;
        size_t add = size * n;
        char *nd = realloc(b->data, b->len + add + 1);
        if (!nd)
                return 0;
        memcpy(nd + b->len, p, add);
        b->len += add;
        nd[b->len] = 0;
        b->data = nd;
        return add;
}

/* Certificate verification: on (the chain to a trusted CA, and the host name) unless insecure;
 * with a CA file, that CA alone is trusted (no CA directory beside it). */
static void curl_verify(CURL *c, const char *ca, bool insecure) {
        curl.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
        curl.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
        if (ca && !insecure) {
                curl.easy_setopt(c, CURLOPT_CAINFO, ca);
                curl.easy_setopt(c, CURLOPT_CAPATH, (const char *) NULL);
        }
}

static void curl_error(HttpResult *ret, const char *url, const char *ca, int cr, const char *detail) {
        const char *why = *detail ? detail : curl.easy_strerror(cr);
        if (cr == CURLE_PEER_FAILED_VERIFICATION || (cr == CURLE_SSL_CONNECT_ERROR && strstr(why, "certificate")))
                snprintf(ret->error, sizeof ret->error, "%s: the server's TLS certificate does not verify (%s)%s", url, why,
                         ca ? "" : "; trust its CA with --ca FILE (or $PLURA_CA)");
        else if (cr == CURLE_SSL_CACERT_BADFILE)
                snprintf(ret->error, sizeof ret->error, "--ca %s: not a usable CA file (%s)", strna(ca), why);
        else
                snprintf(ret->error, sizeof ret->error, "%s: %s", url, why);
}

static int curl_request(const HttpClientOptions *o, const char *url, const char *method, const char *payload,
                        const char *actor, const char *authorization, HttpResult *ret) {
        int r = curl_load(ret->error, sizeof ret->error);
        if (r < 0)
                return -ECONNREFUSED;
        const char *ca = o->ca ? o->ca : getenv("PLURA_CA");
        if (ca && !*ca)
                ca = NULL;
        if (ca && !o->insecure && access(ca, R_OK) < 0) {
                snprintf(ret->error, sizeof ret->error, "--ca %s: %s", ca, strerror(errno));
                return -ENOENT;
        }
        CURL *c = curl.easy_init();
        if (!c)
                return -ENOMEM;
        _cleanup_free_ char *actor_h = NULL, *auth_h = NULL;
        struct curl_slist *h = curl.slist_append(NULL, "Accept: application/json");
        if (authorization && asprintf(&auth_h, "Authorization: %s", authorization) >= 0)
                h = curl.slist_append(h, auth_h);
        if (payload)
                h = curl.slist_append(h, "Content-Type: application/json");
        if (actor && asprintf(&actor_h, "X-Plura-Actor: %s", actor) >= 0)
                h = curl.slist_append(h, actor_h);
        Buf b = {};
        char detail[CURL_ERROR_SIZE] = "";
        curl.easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
        curl_verify(c, ca, o->insecure);
        curl.easy_setopt(c, CURLOPT_URL, url);
        curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl.easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (payload)
                curl.easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl.easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl.easy_setopt(c, CURLOPT_TIMEOUT, (long) REQUEST_TIMEOUT_S);
        int cr = curl.easy_perform(c);
        if (cr != 0)
                curl_error(ret, url, ca, cr, detail);
        else
                curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
        curl.slist_free_all(h);
        curl.easy_cleanup(c);
        ret->raw = b.data;
        return cr == 0 ? 0 : -ECONNREFUSED;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: the value (and *i moved past it), NULL if
 * argv[*i] is not that option. *missing when the value is not there. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing) {
        const char *a = argv[*i];
        size_t l = strlen(name);
        if (strncmp(a, name, l) != 0)
                return NULL;
        if (a[l] == '=')
                return a + l + 1;
        if (a[l] != 0)
                return NULL;
        if (*i + 1 >= argc) {
                *missing = true;
                return NULL;
        }
        return argv[++*i];
}

int http_client_options_take(int argc, char **argv, HttpClientOptions *o) {
        int n = 1;
        for (int i = 1; i < argc; i++) {
                const char *v;
                bool missing = false;
                if (streq(argv[i], "--")) {
                        while (i < argc)
                                argv[n++] = argv[i++];
                        break;
                }
                if ((v = option_value(argc, argv, &i, "--url", &missing)))
                        o->url = v;
                else if ((v = option_value(argc, argv, &i, "--actor", &missing)))
                        o->actor = v;
                else if ((v = option_value(argc, argv, &i, "--user", &missing)))
                        o->user = v;
                else if ((v = option_value(argc, argv, &i, "--ca", &missing)))
                        o->ca = v;
                else if (streq(argv[i], "--insecure"))
                        o->insecure = true;
                else if (!missing)
                        argv[n++] = argv[i];
                if (missing) {
                        fprintf(stderr, "plura reg: %s needs a value\n", argv[i]);
                        return -EINVAL;
                }
        }
        argv[n] = NULL;
        if (o->ca && o->insecure) {
                fprintf(stderr, "plura reg: --ca and --insecure contradict each other (verify with that CA, or not at all)\n");
                return -EINVAL;
        }
        return n;
}

int http_json_request(const HttpClientOptions *o, const char *method, const char *path, json_t *body, HttpResult *ret) {
        memset(ret, 0, sizeof(*ret));
        const char *base_url = default_registry_url(o->url), *actor = o->actor;
        if (!actor)
                actor = getenv("PLURA_ACTOR");
        if (!actor)
                actor = getenv("USER");
        if (actor && !header_value_ok(actor)) {
                snprintf(ret->error, sizeof ret->error, "actor name contains a line break");
                return -EINVAL;
        }
        if (!header_value_ok(method) || !header_value_ok(path) || strchr(path, ' ')) {
                snprintf(ret->error, sizeof ret->error, "invalid request path (a space or line break in it): %s", path);
                return -EINVAL;
        }
        _cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (body && !payload)
                return -ENOMEM;
        _cleanup_free_ char *authorization = NULL;
        char source[64] = "";
        int k = o->anonymous ? 0
                             : credentials_find(o->user, base_url, &authorization, source, sizeof source, ret->error,
                                                sizeof ret->error);
        if (k < 0)
                return k;
        if (authorization && !header_value_ok(authorization)) {
                snprintf(ret->error, sizeof ret->error, "credentials from %s contain a line break", source);
                return -EINVAL;
        }
        size_t bl = strlen(base_url);
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%.*s%s", (int) (bl && base_url[bl - 1] == '/' ? bl - 1 : bl), base_url, path) < 0)
                return -ENOMEM;
        int r;
        if (strncasecmp(base_url, "https://", 8) == 0)
                r = curl_request(o, url, method, payload, actor, authorization, ret);
        else {
                Url u;
                k = url_parse(base_url, &u);
                if (k < 0) {
                        snprintf(ret->error, sizeof ret->error, "%s: %s", base_url,
                                 k == -EPROTONOSUPPORT ? "not an http:// or https:// URL" : "invalid URL");
                        return -EINVAL;
                }
                r = plain_request(&u, url, method, path, payload, actor, authorization, ret);
        }
        if (r >= 0 && ret->raw)
                ret->body = json_loads(ret->raw, 0, NULL);
        return r;
}

void http_result_done(HttpResult *r) {
        json_decref(r->body);
        free(r->raw);
        r->body = NULL;
        r->raw = NULL;
}

void http_print_error(const char *what, const HttpResult *r) {
        if (r->status == 0) {
                fprintf(stderr, "%s: %s\n", what, r->error);
                return;
        }
        if (r->status == 401)
                fprintf(stderr, "%s: the server wants credentials: --user USER[:PASSWORD], $PLURA_TOKEN (an API token), "
                                "$PLURA_USER + $PLURA_PASSWORD, or `podman login` / `docker login` first\n", what);
        json_t *errs = r->body ? json_object_get(r->body, "errors") : NULL;
        if (json_is_array(errs) && json_array_size(errs) > 0) {
                size_t i;
                json_t *e;
                json_array_foreach(errs, i, e) {
                        fprintf(stderr, "%s: refused (HTTP %ld): %s: %s\n", what, r->status,
                                json_string_value(json_object_get(e, "code")) ?: "ERROR",
                                json_string_value(json_object_get(e, "message")) ?: "");
                        json_t *d = json_object_get(e, "detail");
                        if (d) {
                                _cleanup_free_ char *s = json_dumps(d, JSON_INDENT(2));
                                if (s)
                                        fprintf(stderr, "%s\n", s);
                        }
                }
        } else
                fprintf(stderr, "%s: HTTP %ld: %s\n", what, r->status, r->raw ? r->raw : "");
}

char *http_url_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *out = malloc(n * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                /* RFC 3986 unreserved characters stay as they are */
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
                    *p == '_' || *p == '~')
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = 0;
        return out;
}
