/* SPDX-License-Identifier: MIT */
/* Native TLS (see tls.h): credential generations handed to libmicrohttpd's GnuTLS sessions
 * through the certificate callback, client certificate verification, HSTS. */

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>

#include "common/config-schema.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-api/tls.h"

/* TLS 1.3 and 1.2; AEAD ciphers only (AES-GCM, ChaCha20-Poly1305); for 1.2 ECDHE key exchange
 * only (forward secrecy; no RSA key exchange, no CBC, no SHA-1 signatures); the server's order. */
#define TLS_PRIORITIES                                                                          \
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"     \
        "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-SIGN-RSA-SHA1:"     \
        "-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:%SERVER_PRECEDENCE"
#define CHAIN_MAX 16                              /* certificates in tls.cert, and from a client */
#define PEM_MAX ((size_t) 1 << 20)                /* bytes per file */
#define HSTS_DEFAULT_S (365 * 24 * 3600)

typedef struct TlsCreds {
        unsigned refs; /* atomic: the Tls while current, and each connection whose handshake used it */
        unsigned generation;
        gnutls_pcert_st chain[CHAIN_MAX];
        unsigned n_chain;
        gnutls_privkey_t key;
        gnutls_x509_trust_list_t client_ca; /* NULL without tls.client_ca */
        char summary[512];                  /* what was loaded, for the log */
} TlsCreds;

struct Tls {
        char *cert_path, *key_path, *client_ca_path;
        char hsts[40]; /* "" when off */
        struct MHD_OptionItem options[3];

        pthread_mutex_t lock; /* current, generations */
        TlsCreds *current;
        unsigned generations;
};

/* MHD's per-connection state (socket_context) while a TLS connection is open. */
typedef struct TlsConn {
        Tls *tls;
        TlsCreds *creds; /* the generation of the handshake, referenced; NULL before it */
} TlsConn;

/* ------------------------------------------------------------------ generations */

static void creds_free(TlsCreds *c) {
        for (unsigned i = 0; i < c->n_chain; i++)
                gnutls_pcert_deinit(&c->chain[i]);
        if (c->key)
                gnutls_privkey_deinit(c->key);
        if (c->client_ca)
                gnutls_x509_trust_list_deinit(c->client_ca, 1);
        free(c);
}

static void creds_unref(TlsCreds *c) {
        if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
                return;
        if (c->generation > 0) /* one that was served */
                log_info("tls: certificate generation %u released (no connection uses it any more)", c->generation);
        creds_free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsCreds *, creds_unref);

/* The current generation, referenced (the caller unrefs). Under the lock: a reload may drop the
 * Tls's reference right after the pointer is read. */
static TlsCreds *creds_current(Tls *t) {
        pthread_mutex_lock(&t->lock);
        TlsCreds *c = t->current;
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&t->lock);
        return c;
}

/* Reads a PEM file whole (the caller frees; key material is wiped by the caller). */
static int read_pem(const char *what, const char *path, char **ret, gnutls_datum_t *ret_datum) {
        size_t len = 0;
        int r = read_full_file(path, PEM_MAX, ret, &len);
        if (r < 0)
                return log_error_errno(r, "%s %s: cannot read: %m", what, path);
        *ret_datum = (gnutls_datum_t) { .data = (unsigned char *) *ret, .size = (unsigned) len };
        return 0;
}

static int load_chain(TlsCreds *c, const char *path) {
        _cleanup_free_ char *pem = NULL;
        gnutls_datum_t d;
        int r = read_pem("tls.cert", path, &pem, &d);
        if (r < 0)
                return r;
        unsigned n = CHAIN_MAX;
        /* the server certificate first, then its issuers: sorted if the file has another order */
        int g = gnutls_pcert_list_import_x509_raw(c->chain, &n, &d, GNUTLS_X509_FMT_PEM, GNUTLS_X509_CRT_LIST_SORT);
        if (g == GNUTLS_E_SHORT_MEMORY_BUFFER) {
                log_error("tls.cert %s: more than %u certificates", path, CHAIN_MAX);
                return -E2BIG;
        }
        if (g < 0 || n == 0) {
                log_error("tls.cert %s: no PEM certificate (chain) in it: %s", path, g < 0 ? gnutls_strerror(g) : "empty");
                return -EBADMSG;
        }
        c->n_chain = n;
        return 0;
}

static int load_key(TlsCreds *c, const char *path) {
        char *pem = NULL;
        gnutls_datum_t d;
        int r = read_pem("tls.key", path, &pem, &d);
        if (r < 0)
                return r;
        int g = gnutls_privkey_init(&c->key);
        if (g >= 0)
                g = gnutls_privkey_import_x509_raw(c->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
        explicit_bzero(pem, d.size);
        free(pem);
        if (g < 0) {
                log_error("tls.key %s: not a usable PEM private key%s: %s", path,
                          g == GNUTLS_E_DECRYPTION_FAILED ? " (encrypted keys are not supported)" : "", gnutls_strerror(g));
                return -EBADMSG;
        }
        return 0;
}

static int key_id(gnutls_pubkey_t k, unsigned char *id, size_t *len) {
        return gnutls_pubkey_get_key_id(k, GNUTLS_KEYID_USE_SHA256, id, len);
}

/* The private key must be the one of the first certificate's public key. */
static int check_key_matches(TlsCreds *c, const char *cert_path, const char *key_path) {
        gnutls_pubkey_t pk = NULL;
        unsigned char a[64], b[64];
        size_t al = sizeof a, bl = sizeof b;
        int g = gnutls_pubkey_init(&pk);
        if (g >= 0)
                g = gnutls_pubkey_import_privkey(pk, c->key, 0, 0);
        if (g >= 0)
                g = key_id(pk, a, &al);
        if (g >= 0)
                g = key_id(c->chain[0].pubkey, b, &bl);
        if (pk)
                gnutls_pubkey_deinit(pk);
        if (g < 0) {
                log_error("tls.key %s: cannot compare it with the certificate in %s: %s", key_path, cert_path, gnutls_strerror(g));
                return -EBADMSG;
        }
        if (al != bl || memcmp(a, b, al) != 0) {
                log_error("tls.key %s is not the private key of the certificate in %s", key_path, cert_path);
                return -EKEYREJECTED;
        }
        return 0;
}

static int load_client_ca(TlsCreds *c, const char *path) {
        _cleanup_free_ char *pem = NULL;
        gnutls_datum_t d;
        int r = read_pem("tls.client_ca", path, &pem, &d);
        if (r < 0)
                return r;
        int g = gnutls_x509_trust_list_init(&c->client_ca, 0);
        if (g >= 0)
                g = gnutls_x509_trust_list_add_trust_mem(c->client_ca, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        if (g <= 0) {
                log_error("tls.client_ca %s: no PEM CA certificate in it%s%s", path, g < 0 ? ": " : "",
                          g < 0 ? gnutls_strerror(g) : "");
                return -EBADMSG;
        }
        return 0;
}

/* "CN=registry.example, SHA-256 ab12..., valid until ..." of the server certificate, and a
 * warning when it is outside its validity period (clients will refuse it). */
static void describe_chain(TlsCreds *c, const char *path) {
        gnutls_x509_crt_t crt = NULL;
        if (gnutls_x509_crt_init(&crt) < 0)
                return;
        if (gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER) < 0) {
                gnutls_x509_crt_deinit(crt);
                return;
        }
        char dn[256] = "", hex[2 * 32 + 1] = "", until[64] = "?";
        size_t dl = sizeof dn;
        unsigned char fp[32];
        size_t fl = sizeof fp;
        (void) gnutls_x509_crt_get_dn(crt, dn, &dl);
        if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl) >= 0 && fl == sizeof fp)
                hex_encode(fp, fl, hex);
        time_t from = gnutls_x509_crt_get_activation_time(crt), to = gnutls_x509_crt_get_expiration_time(crt);
        gnutls_x509_crt_deinit(crt);
        format_timestamp(until, sizeof until, (int64_t) to * (int64_t) NSEC_PER_SEC);
        snprintf(c->summary, sizeof c->summary, "%s (%s, %u certificate(s) in the chain, SHA-256 %s, valid until %s)",
                 path, dn, c->n_chain, hex, until);
        int64_t now = clock_now_ns() / (int64_t) NSEC_PER_SEC;
        if (now > (int64_t) to || now < (int64_t) from)
                log_warning("tls.cert %s: the certificate is not valid now (valid until %s): clients will refuse it", path,
                            until);
}

/* A new generation from the files (nothing is current yet: the caller swaps it in). */
static int creds_load(Tls *t, TlsCreds **ret) {
        _cleanup_(creds_unrefp) TlsCreds *c = calloc(1, sizeof(TlsCreds));
        if (!c)
                return log_oom();
        c->refs = 1;
        int r = load_chain(c, t->cert_path);
        if (r >= 0)
                r = load_key(c, t->key_path);
        if (r >= 0)
                r = check_key_matches(c, t->cert_path, t->key_path);
        if (r >= 0 && t->client_ca_path)
                r = load_client_ca(c, t->client_ca_path);
        if (r < 0)
                return r;
        describe_chain(c, t->cert_path);
        *ret = steal_pointer(&c);
        return 0;
}

/* Makes c current and drops the reference to the one before (freed with its last connection). */
static void creds_swap(Tls *t, TlsCreds *c) {
        pthread_mutex_lock(&t->lock);
        TlsCreds *old = t->current;
        c->generation = ++t->generations;
        log_info("tls: serving %s, generation %u%s", c->summary, c->generation,
                 t->client_ca_path ? ", client certificates requested (tls.client_ca)" : "");
        t->current = c;
        pthread_mutex_unlock(&t->lock);
        creds_unref(old);
}

int tls_reload(Tls *t) {
        TlsCreds *c = NULL;
        int r = creds_load(t, &c);
        if (r < 0) {
                pthread_mutex_lock(&t->lock);
                unsigned g = t->current->generation;
                pthread_mutex_unlock(&t->lock);
                return log_error_errno(r, "tls: reload failed, still serving the certificate of generation %u", g);
        }
        creds_swap(t, c);
        return 0;
}

/* ------------------------------------------------------------------ sessions */

/* libmicrohttpd sets each TLS session's pointer to its connection (daemon.c,
 * new_connection_prepare_(); its own PSK callback relies on that too). */
static TlsConn *session_conn(gnutls_session_t s) {
        struct MHD_Connection *c = gnutls_session_get_ptr(s);
        const union MHD_ConnectionInfo *ci = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
        return ci ? ci->socket_context : NULL;
}

/* gnutls_certificate_retrieve_function2: each handshake takes the current generation. gnutls
 * neither frees nor copies what it gets: the connection keeps the generation referenced. */
static int retrieve_cert(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                         unsigned int *pcert_length, gnutls_privkey_t *privkey) {
        TlsConn *tc = session_conn(s);
        if (!tc)
                return -1; /* no state (out of memory at the start): fail this handshake */
        TlsCreds *c = creds_current(tc->tls);
        /* a second handshake on the connection (renegotiation): the session lets go of the first's */
        creds_unref(tc->creds);
        tc->creds = c;
        *pcert = c->chain;
        *pcert_length = c->n_chain;
        *privkey = c->key;
        return 0;
}

/* Verifies a peer's chain (DER, leaf first) against ca for TLS client use. 0 and *status (0 =
 * verified, else gnutls_certificate_status_t bits), -EBADMSG if it cannot be parsed. */
static int chain_verify(gnutls_x509_trust_list_t ca, const gnutls_datum_t *peers, unsigned n, unsigned *status) {
        gnutls_x509_crt_t crts[CHAIN_MAX];
        unsigned k = 0;
        int g = 0;
        n = MIN(n, CHAIN_MAX);
        for (; k < n; k++) {
                if ((g = gnutls_x509_crt_init(&crts[k])) < 0)
                        break;
                if ((g = gnutls_x509_crt_import(crts[k], &peers[k], GNUTLS_X509_FMT_DER)) < 0) {
                        gnutls_x509_crt_deinit(crts[k]);
                        break;
                }
        }
        if (g >= 0) {
                gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
                                                  .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT };
                g = gnutls_x509_trust_list_verify_crt2(ca, crts, n, &purpose, 1, 0, status, NULL);
        }
        for (unsigned i = 0; i < k; i++)
                gnutls_x509_crt_deinit(crts[i]);
        return g < 0 ? -EBADMSG : 0;
}

static void peer_address(struct MHD_Connection *c, char *buf, size_t len) {
        const union MHD_ConnectionInfo *ci = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        snprintf(buf, len, "unknown");
        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, buf, (socklen_t) len);
        else if (sa && sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, buf, (socklen_t) len);
}

/* gnutls_certificate_verify_function, while the client's certificate arrives: one that does not
 * verify against the handshake's tls.client_ca fails the handshake. None at all is fine. */
static int verify_client(gnutls_session_t s) {
        unsigned n = 0;
        const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
        if (!peers || n == 0)
                return 0;
        TlsConn *tc = session_conn(s);
        unsigned status = GNUTLS_CERT_INVALID;
        int r = tc && tc->creds && tc->creds->client_ca ? chain_verify(tc->creds->client_ca, peers, n, &status) : -EINVAL;
        if (r >= 0 && status == 0)
                return 0;
        gnutls_datum_t why = {};
        char addr[INET6_ADDRSTRLEN];
        peer_address(gnutls_session_get_ptr(s), addr, sizeof addr);
        if (r >= 0)
                (void) gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        log_info("tls: refused the client certificate of %s: %s", addr, why.data ? (const char *) why.data : "malformed");
        gnutls_free(why.data);
        return GNUTLS_E_CERTIFICATE_ERROR;
}

void tls_connection_started(Tls *t, struct MHD_Connection *c, void **socket_context) {
        TlsConn *tc = calloc(1, sizeof(TlsConn));
        if (!tc) {
                log_oom(); /* its handshake fails (retrieve_cert finds no state) */
                return;
        }
        tc->tls = t;
        *socket_context = tc;
        if (!t->client_ca_path)
                return;
        /* MHD created the session before this notification; the handshake has not begun */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci && ci->tls_session) {
                gnutls_certificate_server_set_request(ci->tls_session, GNUTLS_CERT_REQUEST);
                gnutls_session_set_verify_function(ci->tls_session, verify_client);
        }
}

/* MHD calls this after gnutls_deinit() of the connection's session: nothing uses the
 * generation's certificates and key on its behalf any more. */
void tls_connection_closed(Tls *t, void **socket_context) {
        TlsConn *tc = *socket_context;
        if (!tc)
                return;
        *socket_context = NULL;
        creds_unref(tc->creds);
        free(tc);
}

/* The single subject CN of a DER certificate, as a user name (see tls_client_user()). */
static int leaf_common_name(const gnutls_datum_t *der, char *user, size_t len) {
        gnutls_x509_crt_t crt = NULL;
        char cn[256];
        size_t cl = sizeof cn - 1;
        int g = gnutls_x509_crt_init(&crt);
        if (g >= 0)
                g = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER);
        if (g >= 0)
                g = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cl);
        char second[8];
        size_t sl = sizeof second;
        bool two = g >= 0 && gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, second, &sl) !=
                                     GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
        if (crt)
                gnutls_x509_crt_deinit(crt);
        if (g == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                return -ENODATA;
        if (g == GNUTLS_E_SHORT_MEMORY_BUFFER)
                return -ENAMETOOLONG;
        if (g < 0)
                return -EKEYREJECTED;
        if (two)
                return -ENOTUNIQ;
        cn[MIN(cl, sizeof cn - 1)] = 0;
        if (!*cn || strlen(cn) != cl || !utf8_is_valid(cn, cl))
                return -EINVAL;
        for (const unsigned char *p = (const unsigned char *) cn; *p; p++)
                if (*p <= ' ' || *p == 0x7f || *p == ':')
                        return -EINVAL;
        if (cl >= len)
                return -ENAMETOOLONG;
        memcpy(user, cn, cl + 1);
        return 1;
}

int tls_client_user(Tls *t, struct MHD_Connection *c, char *user, size_t len) {
        if (len > 0)
                user[0] = 0;
        if (!t || !c || len == 0)
                return 0;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (!ci || !ci->tls_session)
                return 0;
        unsigned n = 0;
        const gnutls_datum_t *peers = gnutls_certificate_get_peers(ci->tls_session, &n);
        if (!peers || n == 0)
                return 0;
        _cleanup_(creds_unrefp) TlsCreds *cr = creds_current(t);
        unsigned status = GNUTLS_CERT_INVALID;
        if (!cr->client_ca || chain_verify(cr->client_ca, peers, n, &status) < 0 || status != 0)
                return -EKEYREJECTED;
        int r = leaf_common_name(&peers[0], user, len);
        if (r < 0)
                user[0] = 0;
        return r;
}

/* ------------------------------------------------------------------ life cycle */

const struct MHD_OptionItem *tls_mhd_options(Tls *t) {
        return t->options;
}

const char *tls_hsts(Tls *t) {
        return t && t->hsts[0] ? t->hsts : NULL;
}

static char *path_of(json_t *section, const char *key) {
        const char *s = json_string_value(json_object_get(section, key));
        return s && *s ? strdup(s) : NULL;
}

int tls_new(json_t *section, Tls **ret) {
        *ret = NULL;
        _cleanup_free_ char *cert = path_of(section, "cert");
        if (!cert)
                return 0;
        _cleanup_(tls_freep) Tls *t = calloc(1, sizeof(Tls));
        if (!t)
                return log_oom();
        pthread_mutex_init(&t->lock, NULL);
        t->cert_path = steal_pointer(&cert);
        t->key_path = path_of(section, "key");
        t->client_ca_path = path_of(section, "client_ca");
        if (!t->key_path) /* the schema refuses this; a caller that did not validate gets told too */
                return log_error_errno(EINVAL, "tls.cert %s is set but tls.key is not", t->cert_path);

        int64_t hsts_ns = (int64_t) HSTS_DEFAULT_S * (int64_t) NSEC_PER_SEC;
        json_t *h = json_object_get(section, "hsts_max_age");
        if (h && config_duration_ns(h, &hsts_ns) < 0)
                return log_error_errno(EINVAL, "tls.hsts_max_age: not a duration");
        if (hsts_ns > 0)
                snprintf(t->hsts, sizeof t->hsts, "max-age=%" PRIi64, hsts_ns / (int64_t) NSEC_PER_SEC);

        t->options[0] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITIES };
        t->options[1] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *) retrieve_cert };
        t->options[2] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };

        TlsCreds *c = NULL;
        int r = creds_load(t, &c);
        if (r < 0)
                return r;
        creds_swap(t, c);
        *ret = steal_pointer(&t);
        return 0;
}

/* After the daemon stopped: every connection has dropped its reference by then. */
Tls *tls_free(Tls *t) {
        if (!t)
                return NULL;
        creds_unref(t->current);
        pthread_mutex_destroy(&t->lock);
        free(t->cert_path);
        free(t->key_path);
        free(t->client_ca_path);
        free(t);
        return NULL;
}
