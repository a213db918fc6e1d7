/* SPDX-License-Identifier: MIT */
/* The listening socket, the per-client and total connection caps, and the check of the first
 * request line before a connection goes to libmicrohttpd (see listener.h). */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "registry-api/http-request-line.h"
#include "registry-api/listener.h"

#define SNIFF_MAX (16U * 1024U)      /* a first request line longer than this is 414 */
#define LINGER_NS (1 * NSEC_PER_SEC) /* after an answer of ours: read and drop, then close */
#define CLOSING_MAX 256U             /* answered connections lingering; beyond, closed at once */
#define CLIENT_BUCKETS 1024U
#define ACCEPT_PAUSE_NS (100 * NSEC_PER_MSEC) /* out of file descriptors: accept again after this */
#define EVENTS_MAX 64

typedef enum ConnState {
        CONN_PENDING, /* waiting for its first request line */
        CONN_CLOSING, /* answered by us, draining until the client closes or LINGER_NS passed */
        _CONN_STATE_MAX,
        _CONN_STATE_INVALID = -1,
} ConnState;

typedef struct Conn Conn;
struct Conn {
        Conn *prev, *next;
        int fd;
        ConnState state;
        uint64_t deadline_ns; /* monotonic */
        struct sockaddr_storage addr;
        socklen_t addrlen;
};

/* FIFO by creation: every entry of one list has the same timeout, so the head expires first. */
typedef struct ConnList {
        Conn *head, *tail;
        size_t n;
} ConnList;

typedef struct ClientCount ClientCount;
struct ClientCount {
        ClientCount *next;
        uint8_t key[17]; /* family byte + 4 or 16 address bytes */
        size_t keylen;
        unsigned n;
};

struct Listener {
        ListenerOptions o;
        struct sockaddr_storage addr;
        int fd, epoll_fd, stop_fd;
        uint16_t port;
        pthread_t thread;
        bool started;
        uint64_t accept_paused_until_ns;
        uint64_t last_fd_warning_ns;

        /* listener thread only */
        ConnList lists[_CONN_STATE_MAX];
        char peek[SNIFF_MAX];

        pthread_mutex_t lock; /* clients, total */
        ClientCount *clients[CLIENT_BUCKETS];
        unsigned total; /* connections pending here or open in MHD */
};

/* ------------------------------------------------------------------ per-client counts */

static size_t client_key(const struct sockaddr *sa, uint8_t key[17]) {
        if (sa && sa->sa_family == AF_INET) {
                key[0] = 4;
                memcpy(key + 1, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, 4);
                return 5;
        }
        if (sa && sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a)) { /* the same client as its IPv4 address */
                        key[0] = 4;
                        memcpy(key + 1, a->s6_addr + 12, 4);
                        return 5;
                }
                key[0] = 6;
                memcpy(key + 1, a->s6_addr, 16);
                return 17;
        }
        key[0] = 0; /* unknown family: one shared bucket */
        return 1;
}

static size_t client_bucket(const uint8_t *key, size_t len) {
        return (size_t) (hash_fnv1a(key, len, HASH_FNV1A_INIT) % CLIENT_BUCKETS);
}

/* must hold lock */
static ClientCount **client_find_locked(Listener *l, const uint8_t *key, size_t len) {
        ClientCount **p = &l->clients[client_bucket(key, len)];
        for (; *p; p = &(*p)->next)
                if ((*p)->keylen == len && memcmp((*p)->key, key, len) == 0)
                        break;
        return p;
}

/* must hold lock */
static unsigned client_count_locked(Listener *l, const struct sockaddr *sa) {
        uint8_t key[17];
        size_t len = client_key(sa, key);
        ClientCount **p = client_find_locked(l, key, len);
        return *p ? (*p)->n : 0;
}

/* must hold lock; delta +1 or -1 */
static void client_add_locked(Listener *l, const struct sockaddr *sa, int delta) {
        uint8_t key[17];
        size_t len = client_key(sa, key);
        ClientCount **p = client_find_locked(l, key, len);
        if (delta > 0) {
                if (!*p) {
                        ClientCount *c = calloc(1, sizeof(ClientCount));
                        if (!c) {
                                log_oom();
                                return;
                        }
                        memcpy(c->key, key, len);
                        c->keylen = len;
                        *p = c;
                }
                (*p)->n++;
                l->total++;
                return;
        }
        assert(*p && (*p)->n > 0 && l->total > 0);
        if (!*p)
                return;
        l->total--;
        if (--(*p)->n == 0) {
                ClientCount *c = *p;
                *p = c->next;
                free(c);
        }
}

static void client_add(Listener *l, const struct sockaddr *sa, int delta) {
        pthread_mutex_lock(&l->lock);
        client_add_locked(l, sa, delta);
        pthread_mutex_unlock(&l->lock);
}

void listener_connection_opened(Listener *l, const struct sockaddr *addr) {
        client_add(l, addr, +1);
}

void listener_connection_closed(Listener *l, const struct sockaddr *addr) {
        client_add(l, addr, -1);
}

unsigned listener_client_connections(Listener *l, const struct sockaddr *addr) {
        pthread_mutex_lock(&l->lock);
        unsigned n = client_count_locked(l, addr);
        pthread_mutex_unlock(&l->lock);
        return n;
}

/* ------------------------------------------------------------------ connection lists */

static void list_append(ConnList *list, Conn *c) {
        c->prev = list->tail;
        c->next = NULL;
        if (list->tail)
                list->tail->next = c;
        else
                list->head = c;
        list->tail = c;
        list->n++;
}

static void list_remove(ConnList *list, Conn *c) {
        if (c->prev)
                c->prev->next = c->next;
        else
                list->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                list->tail = c->prev;
        c->prev = c->next = NULL;
        list->n--;
}

/* Closes and forgets c. A pending connection leaves the counts; a closing one had left them. */
static void conn_close(Listener *l, Conn *c) {
        list_remove(&l->lists[c->state], c);
        if (c->state == CONN_PENDING)
                client_add(l, (const struct sockaddr *) &c->addr, -1);
        if (c->fd >= 0)
                close(c->fd); /* also removes it from the epoll set */
        free(c);
}

/* The spec's error body, on a connection that is closed after it. */
static void write_answer(int fd, unsigned status, const char *reason, const char *code, const char *extra_header,
                         const char *message) {
        char body[512], head[512];
        int bl = snprintf(body, sizeof(body), "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"}]}", code, message);
        if (bl < 0 || (size_t) bl >= sizeof(body))
                return;
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                          "Docker-Distribution-API-Version: registry/2.0\r\n%sConnection: close\r\n\r\n",
                          status, reason, bl, extra_header ? extra_header : "");
        if (hl < 0 || (size_t) hl >= sizeof(head))
                return;
        struct iovec iov[2] = { { head, (size_t) hl }, { body, (size_t) bl } };
        /* a new socket's send buffer takes this at once; what does not fit is dropped */
        (void) writev(fd, iov, 2);
}

/* Answers a connection that is in no list and counted nowhere, then lets it linger: the client
 * reads the answer before the close. */
static void conn_linger(Listener *l, Conn *c, unsigned status, const char *reason, const char *code,
                        const char *extra_header, const char *message) {
        write_answer(c->fd, status, reason, code, extra_header, message);
        if (l->lists[CONN_CLOSING].n >= CLOSING_MAX || shutdown(c->fd, SHUT_WR) < 0) {
                close(c->fd);
                free(c);
                return;
        }
        c->state = CONN_CLOSING;
        c->deadline_ns = clock_monotonic_ns() + LINGER_NS;
        list_append(&l->lists[CONN_CLOSING], c);
}

/* The same for a pending connection: it leaves its list and the counts first. */
static void conn_refuse(Listener *l, Conn *c, unsigned status, const char *reason, const char *code,
                        const char *extra_header, const char *message) {
        assert(c->state == CONN_PENDING);
        list_remove(&l->lists[CONN_PENDING], c);
        client_add(l, (const struct sockaddr *) &c->addr, -1);
        conn_linger(l, c, status, reason, code, extra_header, message);
}

static void conn_handoff(Listener *l, Conn *c) {
        int fd = c->fd;
        c->fd = -1;
        (void) epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        /* the count goes with it: MHD's notification of the started connection adds it back */
        struct sockaddr_storage addr = c->addr;
        socklen_t addrlen = c->addrlen;
        conn_close(l, c);
        if (l->o.handoff(l->o.userdata, fd, (const struct sockaddr *) &addr, addrlen) < 0)
                log_debug("a connection was refused by the HTTP server");
}

/* ------------------------------------------------------------------ events */

static void drain(Listener *l, Conn *c) {
        char buf[4096];
        for (;;) {
                ssize_t n = read(c->fd, buf, sizeof buf);
                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                conn_close(l, c); /* EOF or an error: done */
                return;
        }
}

static void sniff(Listener *l, Conn *c) {
        ssize_t n;
        do
                n = recv(c->fd, l->peek, sizeof l->peek, MSG_PEEK);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
        if (n <= 0) {
                conn_close(l, c); /* closed before a request */
                return;
        }
        switch (http_request_line_check(l->peek, (size_t) n, SNIFF_MAX)) {
        case REQUEST_LINE_OK:
                return conn_handoff(l, c);
        case REQUEST_LINE_INCOMPLETE:
                return; /* the next bytes come with the next edge */
        case REQUEST_LINE_TOO_LONG:
                return conn_refuse(l, c, 414, "URI Too Long", "UNSUPPORTED", NULL,
                                   "the request line is longer than 16384 bytes");
        case REQUEST_LINE_VERSION:
                return conn_refuse(l, c, 505, "HTTP Version Not Supported", "UNSUPPORTED", NULL,
                                   "only HTTP/1.0 and HTTP/1.1 are served on this port");
        default:
                return conn_refuse(l, c, 400, "Bad Request", "UNSUPPORTED", NULL,
                                   "malformed HTTP request line (is this a TLS client on the plain-HTTP port?)");
        }
}

static void accept_one(Listener *l, int fd, const struct sockaddr_storage *addr, socklen_t addrlen) {
        Conn *c = calloc(1, sizeof(Conn));
        if (!c) {
                close(fd);
                return;
        }
        c->fd = fd;
        c->addr = *addr;
        c->addrlen = addrlen;
        c->state = CONN_PENDING;
        c->deadline_ns = clock_monotonic_ns() + (uint64_t) l->o.header_timeout_s * NSEC_PER_SEC;
        const struct sockaddr *sa = (const struct sockaddr *) addr;

        pthread_mutex_lock(&l->lock);
        bool client_full = client_count_locked(l, sa) >= l->o.max_per_client;
        bool full = !client_full && l->total >= l->o.max_connections;
        if (!client_full && !full)
                client_add_locked(l, sa, +1);
        pthread_mutex_unlock(&l->lock);

        if (full && l->lists[CONN_PENDING].head) {
                /* make room: the connection that has waited longest without sending a request */
                conn_refuse(l, l->lists[CONN_PENDING].head, 408, "Request Timeout", "UNSUPPORTED", NULL,
                            "closed to make room: no request was sent on this connection");
                pthread_mutex_lock(&l->lock);
                full = client_count_locked(l, sa) >= l->o.max_per_client || l->total >= l->o.max_connections;
                if (!full)
                        client_add_locked(l, sa, +1);
                pthread_mutex_unlock(&l->lock);
        }

        bool counted = !client_full && !full;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c };
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                log_warning_errno(errno, "http: cannot watch a new connection: %m");
                if (counted)
                        client_add(l, sa, -1);
                close(fd);
                free(c);
                return;
        }
        if (client_full) {
                char msg[160];
                snprintf(msg, sizeof(msg), "too many connections from this address (at most %u)", l->o.max_per_client);
                return conn_linger(l, c, 429, "Too Many Requests", "TOOMANYREQUESTS", "Retry-After: 1\r\n", msg);
        }
        if (full)
                return conn_linger(l, c, 503, "Service Unavailable", "UNAVAILABLE", "Retry-After: 1\r\n",
                                   "the server has reached its connection limit");
        list_append(&l->lists[CONN_PENDING], c);
        if (!l->o.sniff)
                conn_handoff(l, c);
}

static void accept_all(Listener *l) {
        for (;;) {
                struct sockaddr_storage addr;
                socklen_t addrlen = sizeof(addr);
                int fd = accept4(l->fd, (struct sockaddr *) &addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                        accept_one(l, fd, &addr, addrlen);
                        continue;
                }
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        uint64_t now = clock_monotonic_ns();
                        if (now - l->last_fd_warning_ns > 10 * NSEC_PER_SEC) {
                                log_warning_errno(errno, "http: cannot accept connections: %m (pausing accept for 100 ms)");
                                l->last_fd_warning_ns = now;
                        }
                        /* level-triggered listen socket: stop watching it until the pause ends */
                        struct epoll_event ev = { .events = 0, .data.ptr = &l->fd };
                        (void) epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev);
                        l->accept_paused_until_ns = now + ACCEPT_PAUSE_NS;
                }
                return; /* EAGAIN, or a pause */
        }
}

static void expire(Listener *l, uint64_t now) {
        Conn *c;
        while ((c = l->lists[CONN_CLOSING].head) && c->deadline_ns <= now)
                conn_close(l, c);
        while ((c = l->lists[CONN_PENDING].head) && c->deadline_ns <= now) {
                char msg[128];
                snprintf(msg, sizeof(msg), "no complete request line within %us", l->o.header_timeout_s);
                conn_refuse(l, c, 408, "Request Timeout", "UNSUPPORTED", NULL, msg);
        }
        if (l->accept_paused_until_ns && l->accept_paused_until_ns <= now) {
                l->accept_paused_until_ns = 0;
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->fd };
                (void) epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, l->fd, &ev);
        }
}

static int next_timeout_ms(Listener *l, uint64_t now) {
        uint64_t next = UINT64_MAX;
        for (ConnState s = 0; s < _CONN_STATE_MAX; s++)
                if (l->lists[s].head)
                        next = MIN(next, l->lists[s].head->deadline_ns);
        if (l->accept_paused_until_ns)
                next = MIN(next, l->accept_paused_until_ns);
        if (next == UINT64_MAX)
                return -1;
        return next <= now ? 0 : (int) MIN((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC, (uint64_t) 60000);
}

static void *listener_thread(void *userdata) {
        Listener *l = userdata;
        (void) pthread_setname_np(pthread_self(), "plura-listen");
        for (;;) {
                struct epoll_event events[EVENTS_MAX];
                int n = epoll_wait(l->epoll_fd, events, EVENTS_MAX, next_timeout_ms(l, clock_monotonic_ns()));
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "http: epoll_wait: %m");
                        break;
                }
                bool stop = false, accept = false;
                for (int i = 0; i < n; i++) {
                        void *p = events[i].data.ptr;
                        if (p == &l->stop_fd)
                                stop = true;
                        else if (p == &l->fd)
                                accept = true;
                        else if (((Conn *) p)->state == CONN_PENDING)
                                sniff(l, p); /* frees no connection but its own */
                        else
                                drain(l, p);
                }
                if (stop)
                        break;
                /* last: making room may free other connections, whose events of this batch are
                 * handled by then */
                if (accept)
                        accept_all(l);
                expire(l, clock_monotonic_ns());
        }
        return NULL;
}

/* ------------------------------------------------------------------ life cycle */

static int listen_socket(const struct sockaddr *sa, socklen_t len, uint16_t *ret_port) {
        _cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* SO_REUSEADDR binds over connections in TIME_WAIT; never SO_REUSEPORT, which would let
         * a second server share the port */
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa->sa_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0)
                return -errno;
        struct sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        if (getsockname(fd, (struct sockaddr *) &bound, &bl) < 0)
                return -errno;
        *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                      : ((struct sockaddr_in *) &bound)->sin_port);
        return take_fd(fd);
}

int listener_new(const ListenerOptions *o, Listener **ret) {
        assert(o && o->addr && o->handoff && o->addrlen <= sizeof(struct sockaddr_storage));
        Listener *l = calloc(1, sizeof(Listener));
        if (!l)
                return -ENOMEM;
        l->o = *o;
        memcpy(&l->addr, o->addr, o->addrlen);
        l->o.addr = (const struct sockaddr *) &l->addr;
        l->o.max_connections = MAX(o->max_connections, 1U);
        l->o.max_per_client = MAX(o->max_per_client, 1U);
        l->o.header_timeout_s = MAX(o->header_timeout_s, 1U);
        l->epoll_fd = l->stop_fd = -1;
        pthread_mutex_init(&l->lock, NULL);
        int r = listen_socket(l->o.addr, o->addrlen, &l->port);
        l->fd = r;
        if (r >= 0) {
                l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
                l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (l->epoll_fd < 0 || l->stop_fd < 0)
                        r = -errno;
        }
        if (r >= 0) {
                struct epoll_event a = { .events = EPOLLIN, .data.ptr = &l->fd };
                struct epoll_event b = { .events = EPOLLIN, .data.ptr = &l->stop_fd };
                if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->fd, &a) < 0 ||
                    epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->stop_fd, &b) < 0)
                        r = -errno;
        }
        if (r < 0) {
                listener_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

uint16_t listener_port(Listener *l) {
        return l->port;
}

int listener_start(Listener *l) {
        int k = pthread_create(&l->thread, NULL, listener_thread, l);
        if (k != 0)
                return -k;
        l->started = true;
        return 0;
}

void listener_stop(Listener *l) {
        if (!l)
                return;
        if (l->started) {
                uint64_t one = 1;
                (void) write(l->stop_fd, &one, sizeof(one));
                pthread_join(l->thread, NULL);
                l->started = false;
        }
        for (ConnState s = 0; s < _CONN_STATE_MAX; s++)
                while (l->lists[s].head)
                        conn_close(l, l->lists[s].head);
        if (l->fd >= 0) {
                close(l->fd);
                l->fd = -1;
        }
}

Listener *listener_free(Listener *l) {
        if (!l)
                return NULL;
        listener_stop(l);
        if (l->epoll_fd >= 0)
                close(l->epoll_fd);
        if (l->stop_fd >= 0)
                close(l->stop_fd);
        for (size_t i = 0; i < CLIENT_BUCKETS; i++)
                while (l->clients[i]) {
                        ClientCount *c = l->clients[i];
                        l->clients[i] = c->next;
                        free(c);
                }
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}
