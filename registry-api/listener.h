/* SPDX-License-Identifier: MIT */
#pragma once

/* The listening socket and the first moments of every connection, before libmicrohttpd
 * (started with MHD_USE_NO_LISTEN_SOCKET) gets it through the handoff callback.
 *
 * - Binding fails when the address is in use (SO_REUSEADDR only, never SO_REUSEPORT: a second
 *   server on the same port must not start and split the traffic).
 * - Connections per client address (pending here plus open in MHD) and in total are capped: past
 *   the per-client cap a new connection gets 429 with Retry-After; past the total, the oldest
 *   connection still waiting here for its request line is closed (408) to make room, else the new
 *   one gets 503. An idle flood thus cannot starve a client that sends requests.
 * - With sniff (plain HTTP), a connection is handed on only once its first request line is
 *   complete and well formed (registry-api/http-request-line.h). Anything else gets 400 (414, 505)
 *   at once, a connection that sends no complete line within the header timeout 408; each of
 *   those answers is written, the sending side shut down and what the client still sends read
 *   and dropped for a moment before the close, so that the client reads the answer instead of a
 *   reset. Without sniff (TLS) connections are handed on at once, under the same caps.
 *
 * Threads: one of its own (epoll). listener_connection_opened/closed() are called from MHD's
 * threads; the per-client table has its own lock. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct Listener Listener;

/* Hands a connection (its socket and the peer's address) to the HTTP server. Returns 0 if it
 * took the socket (it closes it from then on), negative if not (the socket is then closed by
 * the handoff callback too: libmicrohttpd closes it in either case). */
typedef int (*ListenerHandoffFn)(void *userdata, int fd, const struct sockaddr *addr, socklen_t addrlen);

typedef struct ListenerOptions {
        const struct sockaddr *addr;   /* where to listen */
        socklen_t addrlen;
        unsigned max_connections;      /* in total, here and in MHD */
        unsigned max_per_client;       /* per client address, here and in MHD */
        unsigned header_timeout_s;     /* for the first request line */
        bool sniff;                    /* plain HTTP: check the first request line before the handoff */
        ListenerHandoffFn handoff;
        void *userdata;
} ListenerOptions;

/* Creates, binds and listens (-EADDRINUSE when another process listens there). */
int listener_new(const ListenerOptions *o, Listener **ret);
/* The bound port (for port 0). */
uint16_t listener_port(Listener *l);
/* Starts the accept thread. */
int listener_start(Listener *l);
/* Stops accepting and closes every connection not yet handed on (idempotent). */
void listener_stop(Listener *l);
Listener *listener_free(Listener *l);

/* MHD's connection notifications (MHD_OPTION_NOTIFY_CONNECTION): a handed-on connection started
 * or closed, for the per-client and total counts. */
void listener_connection_opened(Listener *l, const struct sockaddr *addr);
void listener_connection_closed(Listener *l, const struct sockaddr *addr);

/* Connections per client address right now (here and in MHD), for tests and logs. */
unsigned listener_client_connections(Listener *l, const struct sockaddr *addr);
