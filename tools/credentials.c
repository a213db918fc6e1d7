/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/macros.h"
#include "credentials.h"

#define CREDENTIAL_FILE_MAX (1U << 20)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t n) {
        const unsigned char *p = data;
        char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                *o++ = b64[v >> 18 & 63];
                *o++ = b64[v >> 12 & 63];
                *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? b64[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static int b64_value(char c) {
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int) (p - b64) : -1;
}

int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len) {
        if (len % 4 != 0)
                return -EINVAL;
        char *out = malloc(len / 4 * 3 + 1);
        size_t o = 0;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                bool last = i + 4 == len;
                for (int k = 0; k < 4; k++)
                        v[k] = b64_value(s[i + k]);
                int pad = last && s[i + 3] == '=' ? (s[i + 2] == '=' ? 2 : 1) : 0;
                bool ok = v[0] >= 0 && v[1] >= 0 && (pad == 2 || v[2] >= 0) && (pad >= 1 || v[3] >= 0);
                if (!ok) {
                        free(out);
                        return -EINVAL;
                }
                unsigned x = (unsigned) v[0] << 18 | (unsigned) v[1] << 12 | (unsigned) (pad == 2 ? 0 : v[2]) << 6 |
                             (unsigned) (pad >= 1 ? 0 : v[3]);
                out[o++] = (char) (x >> 16);
                if (pad < 2)
                        out[o++] = (char) (x >> 8 & 0xff);
                if (pad < 1)
                        out[o++] = (char) (x & 0xff);
        }
        out[o] = 0;
        *ret = out;
        *ret_len = o;
        return 0;
}

int credentials_from_auth_file(const char *json, size_t len, const char *host, char **ret) {
        json_t *j = json_loadb(json, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EINVAL;
        }
        json_t *auths = json_object_get(j, "auths"), *entry = NULL;
        /* docker writes "host:port", sometimes "https://host:port" or "https://host:port/v1/" */
        const char *prefixes[] = { "", "https://", "http://" };
        for (size_t i = 0; !entry && i < ELEMENTSOF(prefixes); i++) {
                char key[512];
                snprintf(key, sizeof key, "%s%s", prefixes[i], host);
                entry = json_object_get(auths, key);
                if (!entry) {
                        snprintf(key, sizeof key, "%s%s/v1/", prefixes[i], host);
                        entry = json_object_get(auths, key);
                }
        }
        int r = 0;
        const char *auth = json_string_value(json_object_get(entry, "auth"));
        if (entry && auth) {
                char *plain = NULL;
                size_t pl;
                r = base64_decode(auth, strlen(auth), &plain, &pl);
                if (r >= 0 && (strlen(plain) != pl || !strchr(plain, ':') || plain[0] == ':')) {
                        free(plain);
                        r = -EINVAL;
                }
                if (r >= 0) {
                        *ret = plain;
                        r = 1;
                }
        }
        json_decref(j);
        return r;
}

/* host:port of an http(s) URL */
static int url_host(const char *url, char *buf, size_t len) {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        size_t l = strcspn(p, "/?#");
        if (l == 0 || l >= len)
                return -EINVAL;
        memcpy(buf, p, l);
        buf[l] = 0;
        return 0;
}

static char *read_small_file(const char *path, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        char *buf = malloc(CREDENTIAL_FILE_MAX + 1);
        size_t n = 0;
        while (buf && n < CREDENTIAL_FILE_MAX) {
                ssize_t k = read(fd, buf + n, CREDENTIAL_FILE_MAX - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        if (buf)
                buf[n] = 0;
        *ret_len = n;
        return buf;
}

static int from_files(const char *host, char **ret_pair, char *source, size_t slen, char *err, size_t errlen) {
        const char *home = getenv("HOME"), *xdg = getenv("XDG_RUNTIME_DIR"), *dc = getenv("DOCKER_CONFIG");
        char paths[5][512] = {};
        const char *shown[5] = { "$REGISTRY_AUTH_FILE", "${XDG_RUNTIME_DIR}/containers/auth.json",
                                 "~/.config/containers/auth.json", "$DOCKER_CONFIG/config.json", "~/.docker/config.json" };
        if (getenv("REGISTRY_AUTH_FILE"))
                snprintf(paths[0], sizeof paths[0], "%s", getenv("REGISTRY_AUTH_FILE"));
        if (xdg)
                snprintf(paths[1], sizeof paths[1], "%s/containers/auth.json", xdg);
        if (home)
                snprintf(paths[2], sizeof paths[2], "%s/.config/containers/auth.json", home);
        if (dc)
                snprintf(paths[3], sizeof paths[3], "%s/config.json", dc);
        else if (home)
                snprintf(paths[4], sizeof paths[4], "%s/.docker/config.json", home);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                if (!paths[i][0])
                        continue;
                size_t len = 0;
                _cleanup_free_ char *text = read_small_file(paths[i], &len);
                if (!text)
                        continue;
                int r = credentials_from_auth_file(text, len, host, ret_pair);
                if (r < 0) {
                        snprintf(err, errlen, "%s (%s): malformed, or a malformed entry for %s", shown[i], paths[i], host);
                        return r;
                }
                if (r > 0) {
                        snprintf(source, slen, "%s", shown[i]);
                        return 1;
                }
        }
        return 0;
}

/* The password asked on the terminal, without echo. */
static char *ask_password(const char *user) {
        _cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return NULL;
        struct termios old, quiet;
        if (tcgetattr(fd, &old) < 0)
                return NULL;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        dprintf(fd, "Password for %s: ", user);
        (void) tcsetattr(fd, TCSAFLUSH, &quiet);
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        (void) tcsetattr(fd, TCSAFLUSH, &old);
        dprintf(fd, "\n");
        if (n <= 0)
                return NULL;
        buf[n] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        char *pw = strdup(buf);
        explicit_bzero(buf, sizeof buf);
        return pw;
}

static char *basic_header(const char *pair) {
        _cleanup_free_ char *enc = base64_encode(pair, strlen(pair));
        char *h = NULL;
        if (enc && asprintf(&h, "Basic %s", enc) < 0)
                h = NULL;
        return h;
}

int credentials_find(const char *user_flag, const char *base_url, char **ret, char *source, size_t slen, char *err,
                     size_t errlen) {
        char dummy[8];
        if (!source) {
                source = dummy;
                slen = sizeof dummy;
        }
        *ret = NULL;
        _cleanup_free_ char *pair = NULL;
        if (user_flag) {
                const char *colon = strchr(user_flag, ':');
                if (colon)
                        pair = strdup(user_flag);
                else {
                        const char *pw = getenv("PLURA_PASSWORD");
                        _cleanup_free_ char *asked = pw ? NULL : ask_password(user_flag);
                        if (!pw && !asked) {
                                snprintf(err, errlen, "--user %s: no password (give USER:PASSWORD, set $PLURA_PASSWORD, "
                                                      "or run on a terminal)", user_flag);
                                return -EINVAL;
                        }
                        if (asprintf(&pair, "%s:%s", user_flag, pw ? pw : asked) < 0)
                                pair = NULL;
                }
                snprintf(source, slen, "--user");
        } else if (getenv("PLURA_TOKEN") && *getenv("PLURA_TOKEN")) {
                snprintf(source, slen, "$PLURA_TOKEN");
                return asprintf(ret, "Bearer %s", getenv("PLURA_TOKEN")) < 0 ? -ENOMEM : 0;
        } else if (getenv("PLURA_USER") && *getenv("PLURA_USER")) {
                if (!getenv("PLURA_PASSWORD")) {
                        snprintf(err, errlen, "$PLURA_USER is set without $PLURA_PASSWORD");
                        return -EINVAL;
                }
                if (asprintf(&pair, "%s:%s", getenv("PLURA_USER"), getenv("PLURA_PASSWORD")) < 0)
                        pair = NULL;
                snprintf(source, slen, "$PLURA_USER");
        } else {
                char host[256];
                if (url_host(base_url, host, sizeof host) < 0)
                        return 0;
                int r = from_files(host, &pair, source, slen, err, errlen);
                if (r <= 0)
                        return r;
        }
        if (!pair)
                return -ENOMEM;
        *ret = basic_header(pair);
        explicit_bzero(pair, strlen(pair));
        return *ret ? 0 : -ENOMEM;
}
