/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "common/macros.h"
#include "plura.h"

static void reg_help(FILE *f) {
        fputs("Usage: plura reg VERB [ARGS] [--url URL] [--user USER[:PASSWORD]] [--json] [--actor NAME] [--ca FILE | --insecure]\n"
              "\n"
              "Client of a running plura server's /v1/registry API (default URL http://127.0.0.1:5000,\n"
              "or $PLURA_URL). Human output by default, --json for the server's JSON. The exit status\n"
              "is non-zero with the server's reason when a request is refused.\n"
              "\n"
              "An https:// server's certificate is verified (its chain and the URL's host name) against\n"
              "the system's trust store, or with --ca FILE (or $PLURA_CA) against that PEM CA file only.\n"
              "--insecure skips the verification: anyone on the path can then read and change what is\n"
              "sent, credentials included.\n"
              "\n"
              "Verbs:\n"
              "  gc [--repo R] [--dry-run]                       run (or plan) garbage collection\n"
              "  promote REPO FROM TO DIGEST                    move a digest to the next channel\n"
              "  rollback REPO TO                               TO = prod:stable or prod:stable@sha256:...\n"
              "  block DIGEST --reason R [--cve ID]...          block pulls and promotion of a digest\n"
              "  block --import REPORT.json --threshold critical=0,high=3 --digest D\n"
              "  unblock DIGEST\n"
              "  history REPO [TAG]                             tag and channel timelines\n"
              "  metrics [--repo R]                             release metrics\n"
              "  audit [--limit N] [--after CURSOR]             the audit log\n"
              "  tags REPO                                      list tags\n"
              "  hold add|list|release ...                      RCA holds\n"
              "  worm export|list|verify ...                    write-once exports of held digests\n"
              "  token create|list|revoke ...                   API tokens for CI and robots (admin)\n"
              "\n"
              "Credentials: --user USER[:PASSWORD] (the password from $PLURA_PASSWORD or asked on the\n"
              "terminal), else $PLURA_TOKEN (an API token), else $PLURA_USER + $PLURA_PASSWORD, else the\n"
              "registry's entry in the podman/docker credential files ($REGISTRY_AUTH_FILE,\n"
              "${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json).\n", f);
}

int cmd_reg(int argc, char **argv) {
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                reg_help(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *verb = argv[1];
        if (streq(verb, "gc"))
                return reg_gc(argc - 1, argv + 1);
        if (streq(verb, "hold"))
                return reg_hold(argc - 1, argv + 1);
        if (streq(verb, "worm"))
                return reg_worm(argc - 1, argv + 1);
        if (streq(verb, "token"))
                return reg_token(argc - 1, argv + 1);
        static const char *const gov[] = { "promote", "rollback", "block", "unblock", "history", "metrics", "audit", "tags" };
        for (size_t i = 0; i < ELEMENTSOF(gov); i++)
                if (streq(verb, gov[i]))
                        return reg_governance(argc - 1, argv + 1);
        fprintf(stderr, "plura reg: unknown verb '%s'\n\n", verb);
        reg_help(stderr);
        return 2;
}
