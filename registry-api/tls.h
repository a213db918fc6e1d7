/* SPDX-License-Identifier: MIT */
#pragma once

/* Native TLS through libmicrohttpd's GnuTLS: the server's certificate chain and key (tls.cert,
 * tls.key), TLS 1.2 and 1.3 only with AEAD ciphers and ECDHE key exchange, optional client
 * certificates (mTLS) verified against tls.client_ca, and the HSTS header value.
 *
 * Credentials come in generations, each reference-counted. Every handshake takes the current
 * generation (MHD's certificate callback) and its connection keeps a reference to it until MHD
 * reports the connection closed, which happens after MHD has freed the connection's GnuTLS session.
 * tls_reload() builds a new generation from the same files and makes it current; the old one is
 * freed when the last connection whose handshake used it closes (at once if there is none). A
 * reload that fails (a missing or malformed file, a key that is not the certificate's) leaves
 * the current generation in place and logs why, naming the file.
 *
 * Threads: tls_reload() from any thread; the callbacks and tls_client_user() from MHD's. */

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

#include "common/macros.h"

typedef struct Tls Tls;

/* From the configuration's tls section (shape checked by the schema). Plain HTTP (tls.cert not
 * set): 0 and *ret = NULL. Otherwise the files are loaded now: -errno, logged with the path,
 * if one cannot be used. */
int tls_new(json_t *section, Tls **ret);
Tls *tls_free(Tls *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tls *, tls_free);

/* Re-reads tls.cert, tls.key and tls.client_ca: 0 when the new generation is current, -errno
 * (logged) when the files could not be used and the current generation stays. */
int tls_reload(Tls *t);

/* The MHD_start_daemon() options for a daemon started with MHD_USE_TLS (pass them with
 * MHD_OPTION_ARRAY): the GnuTLS priorities and the certificate callback. Valid until tls_free(). */
const struct MHD_OptionItem *tls_mhd_options(Tls *t);

/* The Strict-Transport-Security value ("max-age=31536000"), NULL when tls.hsts_max_age is 0. */
const char *tls_hsts(Tls *t);

/* To be called from MHD_OPTION_NOTIFY_CONNECTION for every connection of the TLS daemon. tls.c
 * owns *socket_context then: the connection's state, which holds the generation its handshake
 * used until tls_connection_closed(). */
void tls_connection_started(Tls *t, struct MHD_Connection *c, void **socket_context);
void tls_connection_closed(Tls *t, void **socket_context);

/* The user a request's connection authenticated as with a client certificate (mTLS); for the
 * auth pipeline when it identifies a request. Client certificates are requested only when
 * tls.client_ca is set, and one that does not verify against it fails the handshake already;
 * each call verifies again, against tls.client_ca as it is now (a reload may have replaced the
 * CA; the certificate may have expired on a long-lived connection). Returns:
 *    1  a certificate that verifies (chain to tls.client_ca, validity period, TLS client
 *       purpose when the certificate states purposes) with exactly one subject CN: user = the CN
 *    0  no client certificate (plain HTTP, t NULL, no tls.client_ca, or the client sent none)
 *   <0  a certificate was presented, but it names no user: -EKEYREJECTED it does not verify
 *       (any more), -ENODATA no subject CN, -ENOTUNIQ more than one CN, -EINVAL a CN that cannot
 *       be a user name (empty, control characters, white space, ':'), -ENAMETOOLONG a CN of
 *       len bytes or more. A caller must refuse the request then rather than treat it as
 *       anonymous.
 * user is "" unless 1 is returned. Cheap without a client certificate; with one, a chain
 * verification (tens of microseconds). */
int tls_client_user(Tls *t, struct MHD_Connection *c, char *user, size_t len);
