#!/usr/bin/python3
"""Checks of plura's Kubernetes and compose files, as shipped (make test-deploy).

  check-manifests.py k8s DEPLOY_DIR          every object against the Kubernetes API's own types
                                             (python3-kubernetes' models: unknown or misspelt fields,
                                             wrong types, missing required fields), then our rules:
                                             digests only, restricted securityContext, probes on the
                                             right paths, requests/limits, CronJob Forbid, Secrets
                                             and ConfigMap consistent with the config plura reads
  check-manifests.py compose DEPLOY_DIR      compose.yaml, compose/config.json, prometheus/prometheus.yml
  check-manifests.py k8s-config DEPLOY_DIR   prints the ConfigMap's config.json
  check-manifests.py k8s-gc-args DEPLOY_DIR  prints the GC CronJob's steps' args, one JSON array a line
  check-manifests.py k8s-args DEPLOY_DIR     prints the registry container's args as one JSON array

Debian's python3 (python3-yaml, python3-kubernetes), not whatever python3 comes first in PATH.
Each check prints "ok - ..." or "not ok - ..."; the exit status is 1 if any failed.
"""
import fnmatch
import json
import os
import re
import sys

import yaml

failed = 0


def check(what, cond, detail=""):
    global failed
    if cond:
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}" + (f": {detail}" if detail else ""))
    return cond


DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")

# ------------------------------------------------------------------------------------------------
# Kubernetes: the API's types, from python3-kubernetes (the client's models name every field of
# every object with its JSON name and type)

KINDS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}


def schema_errors(value, typ, path, errors):
    """Walks value against the client's type string (e.g. 'V1PodSpec', 'list[V1Container]',
    'dict(str, str)', 'str', 'int', 'bool', 'object')."""
    import kubernetes.client as k

    if value is None:
        return
    m = re.fullmatch(r"list\[(.*)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, v in enumerate(value):
            schema_errors(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.*)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for kk, v in value.items():
            schema_errors(v, m.group(1), f"{path}.{kk}", errors)
        return
    if typ == "str" or typ == "datetime" or typ == "date":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return
    if typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {value!r}")
        return
    if typ == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
        return
    if typ == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {value!r}")
        return
    if typ == "object":
        return
    cls = getattr(k, typ, None)
    if cls is None:
        errors.append(f"{path}: unknown type {typ}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({typ}), got {type(value).__name__}")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for kk, v in value.items():
        if kk not in by_json:
            errors.append(f"{path}.{kk}: no such field in {typ} (known: {', '.join(sorted(by_json))})")
            continue
        schema_errors(v, cls.openapi_types[by_json[kk]], f"{path}.{kk}", errors)


def required_errors(obj, typ):
    """The client's own validation: building the model raises on a missing required field."""
    import kubernetes.client as k

    try:
        k.ApiClient()._ApiClient__deserialize(obj, typ)
    except (ValueError, TypeError) as e:
        return [str(e)]
    return []


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def pod_specs(objs):
    """(owner name, pod spec) of every workload"""
    for o in objs:
        if o["kind"] == "StatefulSet":
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def all_containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def kustomize_images(images, objs):
    """kustomize's images transformer, for what kustomization.yaml uses (name -> newName, digest)."""
    for o in objs:
        for _, spec in pod_specs([o]):
            for c in all_containers(spec):
                name = re.split(r"[@:]", c["image"], 1)[0] if "@" in c["image"] else c["image"].rsplit(":", 1)[0]
                for im in images:
                    if im["name"] == name:
                        ref = im.get("newName", name)
                        if "digest" in im:
                            ref += "@" + im["digest"]
                        elif "newTag" in im:
                            ref += ":" + im["newTag"]
                        c["image"] = ref


def k8s_objects(deploy):
    kdir = os.path.join(deploy, "kubernetes")
    return load_all(os.path.join(kdir, "plura.yaml")), kdir


def k8s_config(objs):
    cm = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "plura-config"]
    return json.loads(cm[0]["data"]["config.json"]) if cm else None


def registry_container(objs):
    sts = [o for o in objs if o["kind"] == "StatefulSet"]
    return sts[0]["spec"]["template"]["spec"]["containers"][0] if sts else None


def mount_of(container, spec, path):
    """(volume, mountPath) of the mount that holds path in container"""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[1]):
                vol = [v for v in spec.get("volumes", []) if v["name"] == m["name"]]
                best = (vol[0] if vol else {"name": m["name"]}, mp)
    return best


def check_k8s(deploy):
    objs, kdir = k8s_objects(deploy)
    secrets = load_all(os.path.join(kdir, "secrets.example.yaml"))
    kust = load_all(os.path.join(kdir, "kustomization.yaml"))[0]

    # -- the API's types
    for o in objs + secrets:
        what = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        typ = KINDS.get((o.get("apiVersion"), o.get("kind")))
        if not check(f"{what}: a known apiVersion/kind ({o.get('apiVersion')})", typ is not None):
            continue
        errors = []
        schema_errors(o, typ, what, errors)
        check(f"{what}: every field is one of the Kubernetes API's, with its type", not errors, "; ".join(errors))
        errors = required_errors(o, typ)
        check(f"{what}: required fields present", not errors, "; ".join(errors))
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    check("object names are unique per kind", len(names) == len(set(names)), str(names))

    # -- images: digests only, no latest, one placeholder kustomize fills
    values = json.dumps(objs) + json.dumps(kust)  # what is applied, not the comments
    check("no 'latest' anywhere in the manifests", not re.search(r"\blatest\b", values), "found 'latest'")
    images = kust.get("images", [])
    for name, spec in pod_specs(objs):
        for c in all_containers(spec):
            check(f"{name}/{c['name']}: image by digest, no tag ({c['image']})", DIGEST_REF.match(c["image"]) and
                  not re.search(r":[^/@]*@", c["image"]))
    check("kustomization.yaml lists plura.yaml", kust.get("resources") == ["plura.yaml"], str(kust.get("resources")))
    check("kustomization: one image entry, by digest (no newTag)", len(images) == 1 and
          re.fullmatch(r"sha256:[0-9a-f]{64}", images[0].get("digest", "")) and "newTag" not in images[0], str(images))
    filled = json.loads(json.dumps(objs))
    release = "sha256:" + "ab" * 32
    kustomize_images([dict(images[0], digest=release)] if images else [], filled)
    refs = {c["image"] for _, spec in pod_specs(filled) for c in all_containers(spec)}
    check("a release digest set in kustomization.yaml reaches every container", refs == {
        images[0].get("newName", "plura") + "@" + release} if images else False, str(refs))

    # -- pods: restricted securityContext, resources
    for name, spec in pod_specs(objs):
        psc = spec.get("securityContext", {})
        check(f"{name}: pod runAsNonRoot, a non-zero runAsUser/runAsGroup (10001)", psc.get("runAsNonRoot") is True and
              psc.get("runAsUser") == 10001 and psc.get("runAsGroup") == 10001, str(psc))
        check(f"{name}: pod seccompProfile RuntimeDefault", psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        check(f"{name}: no service account token mounted", spec.get("automountServiceAccountToken") is False)
        check(f"{name}: no hostNetwork/hostPID/hostIPC", not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
        for c in all_containers(spec):
            sc = c.get("securityContext", {})
            w = f"{name}/{c['name']}"
            check(f"{w}: runAsNonRoot", sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True)
            check(f"{w}: readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
            check(f"{w}: allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
            check(f"{w}: capabilities: drop ALL, add none", sc.get("capabilities", {}).get("drop") == ["ALL"] and
                  not sc.get("capabilities", {}).get("add"))
            check(f"{w}: seccomp RuntimeDefault", sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") ==
                  "RuntimeDefault")
            check(f"{w}: not privileged", not sc.get("privileged"))
            r = c.get("resources", {})
            check(f"{w}: requests and limits of cpu and memory",
                  all(k in r.get(x, {}) for x in ("requests", "limits") for k in ("cpu", "memory")), str(r))
            for v in c.get("volumeMounts", []):
                check(f"{w}: mount {v['name']} names a volume of the pod",
                      any(vol["name"] == v["name"] for vol in spec.get("volumes", [])) or
                      any(t["metadata"]["name"] == v["name"] for o in objs if o["kind"] == "StatefulSet"
                          for t in o["spec"].get("volumeClaimTemplates", [])))

    # -- the registry: StatefulSet with its PVC, probes, one replica, no PDB
    sts = [o for o in objs if o["kind"] == "StatefulSet"]
    if check("one StatefulSet", len(sts) == 1):
        s = sts[0]["spec"]
        spec = s["template"]["spec"]
        c = spec["containers"][0]
        check("StatefulSet: 1 replica (RocksDB has a single writer)", s.get("replicas") == 1)
        vct = s.get("volumeClaimTemplates", [])
        check("StatefulSet: a PVC template 'data', ReadWriteOnce, with a size", len(vct) == 1 and vct[0]["metadata"]["name"] ==
              "data" and vct[0]["spec"]["accessModes"] == ["ReadWriteOnce"] and
              "storage" in vct[0]["spec"]["resources"]["requests"])
        check("the PVC is mounted at /var/lib/plura", any(m["name"] == "data" and m["mountPath"] == "/var/lib/plura"
                                                          for m in c.get("volumeMounts", [])))
        check("args: serve --data /var/lib/plura", c["args"][:1] == ["serve"] and "--data" in c["args"] and
              c["args"][c["args"].index("--data") + 1] == "/var/lib/plura", str(c["args"]))
        check("selector matches the pod template's labels",
              s["selector"]["matchLabels"].items() <= s["template"]["metadata"]["labels"].items())
        svc = [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == s.get("serviceName")]
        check("serviceName is a Service of the manifests, selecting the pod", svc and
              svc[0]["spec"]["selector"].items() <= s["template"]["metadata"]["labels"].items())
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
            g = c.get(probe, {}).get("httpGet", {})
            check(f"{probe}: GET {path} on the registry port", g.get("path") == path and
                  (g.get("port") in ports or g.get("port") in ports.values()), str(g))
        st = c.get("startupProbe", {})
        check("startupProbe: allows a slow index open (>= 2 minutes)",
              st.get("periodSeconds", 10) * st.get("failureThreshold", 3) >= 120)
        check("terminationGracePeriodSeconds leaves time to drain (>= 30)", spec.get("terminationGracePeriodSeconds", 30) >= 30)
        check("no PodDisruptionBudget for one replica (it would block every drain)",
              not any(o["kind"] == "PodDisruptionBudget" for o in objs))
        check("a /tmp (emptyDir) beside the read-only root", any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])))

        # the config plura reads: the ConfigMap, its paths inside the mounted Secrets
        cfg = k8s_config(objs)
        if check("ConfigMap plura-config has a config.json that parses", cfg is not None):
            cpath = c["args"][c["args"].index("-c") + 1] if "-c" in c["args"] else None
            m = mount_of(c, spec, cpath or "")
            check(f"-c {cpath} is the ConfigMap's config.json", m and m[0].get("configMap", {}).get("name") ==
                  "plura-config" and cpath == m[1] + "/config.json")
            secret_keys = {o["metadata"]["name"]: set(o.get("stringData", {})) | set(o.get("data", {})) for o in secrets}
            files = {"tls.cert": cfg.get("tls", {}).get("cert"), "tls.key": cfg.get("tls", {}).get("key"),
                     "auth.htpasswd": cfg.get("auth", {}).get("htpasswd"),
                     "auth.token.key": cfg.get("auth", {}).get("token", {}).get("key")}
            for key, path in files.items():
                m = mount_of(c, spec, path or "")
                sec = m[0].get("secret", {}).get("secretName") if m else None
                check(f"config {key} ({path}) is a key of a mounted Secret ({sec})", path and sec in secret_keys and
                      os.path.relpath(path, m[1]) in secret_keys[sec])
            check("config listen: all addresses, the container port", cfg.get("listen") == f"0.0.0.0:{ports.get('registry')}")
            check("config: authentication on (htpasswd, acl)", cfg.get("auth", {}).get("htpasswd") and cfg["auth"].get("acl"))

    # -- the GC CronJob
    cj = [o for o in objs if o["kind"] == "CronJob"]
    if check("one CronJob", len(cj) == 1):
        s = cj[0]["spec"]
        spec = s["jobTemplate"]["spec"]["template"]["spec"]
        check("CronJob: concurrencyPolicy Forbid", s.get("concurrencyPolicy") == "Forbid")
        check("CronJob: a weekly schedule (5 fields)", len(s.get("schedule", "").split()) == 5)
        steps = [c["args"] for c in all_containers(spec)]
        check("CronJob: dry run first (init container), then the run, both --if-idle",
              steps == [["reg", "gc", "--dry-run", "--if-idle"], ["reg", "gc", "--if-idle"]], str(steps))
        check("CronJob: restartPolicy Never or OnFailure", spec.get("restartPolicy") in ("Never", "OnFailure"))
        check("CronJob: an activeDeadlineSeconds bounds a run", s["jobTemplate"]["spec"].get("activeDeadlineSeconds", 0) > 0)
        secret_keys = {o["metadata"]["name"]: set(o.get("stringData", {})) | set(o.get("data", {})) for o in secrets}
        for c in all_containers(spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    check(f"{c['name']}: ${e['name']} from a Secret key that secrets.example.yaml has ({ref['name']}/{ref['key']})",
                          ref["key"] in secret_keys.get(ref["name"], set()))
        for v in spec.get("volumes", []):
            sec = v.get("secret")
            if sec:
                check(f"CronJob volume {v['name']}: keys of Secret {sec['secretName']}",
                      all(i["key"] in secret_keys.get(sec["secretName"], set()) for i in sec.get("items", [])))
        cfg = k8s_config(objs)
        tokens = [t for r in (cfg or {}).get("auth", {}).get("acl", []) if "gc" in r.get("allow", []) for t in r.get("tokens", [])]
        check("the config's ACL gives a token the gc action (the CronJob's)", bool(tokens), str(tokens))

    # every Secret volume of the StatefulSet is described
    for name, spec in pod_specs(objs):
        for v in spec.get("volumes", []):
            if "secret" in v:
                check(f"{name}: Secret {v['secret']['secretName']} is described in secrets.example.yaml",
                      any(o["metadata"]["name"] == v["secret"]["secretName"] for o in secrets))

    # -- NetworkPolicies select the pods
    nps = [o for o in objs if o["kind"] == "NetworkPolicy"]
    for owner in [o for o in objs if o["kind"] in ("StatefulSet", "CronJob")]:
        name = owner["metadata"]["name"]
        labels = (owner["spec"]["template"]["metadata"]["labels"] if owner["kind"] == "StatefulSet" else
                  owner["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
        sel = [n for n in nps if n["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()]
        check(f"{name}: a NetworkPolicy selects its pods, Ingress and Egress",
              any(set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} for n in sel))


# ------------------------------------------------------------------------------------------------
# compose


def check_compose(deploy):
    path = os.path.join(deploy, "compose.yaml")
    c = yaml.safe_load(open(path))
    check("compose.yaml: no 'latest'", not re.search(r"\blatest\b", json.dumps(c)))
    services = c.get("services", {})
    check("compose: services plura and prometheus", set(services) == {"plura", "prometheus"}, str(list(services)))
    for name, s in services.items():
        img = s.get("image", "")
        check(f"{name}: image is a required variable (${{VAR:?...}}) or a digest, no build",
              (re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", img) or DIGEST_REF.match(img)) and "build" not in s, img)
        check(f"{name}: read-only root, no capabilities, no-new-privileges", s.get("read_only") is True and
              s.get("cap_drop") == ["ALL"] and "no-new-privileges:true" in s.get("security_opt", []))
        check(f"{name}: a non-root user", re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", str(s.get("user", ""))), s.get("user"))
        check(f"{name}: limits (cpus, mem_limit)", "cpus" in s and "mem_limit" in s)
        check(f"{name}: no privileged, no host network", not s.get("privileged") and s.get("network_mode") != "host")
    p = services.get("plura", {})
    check("plura: uid/gid 10001 (the image's)", p.get("user") == "10001:10001")
    check("plura: the image's healthcheck (plura health) stays on", not p.get("healthcheck", {}).get("disable") and
          "test" not in p.get("healthcheck", {}))
    check("plura: a /tmp in memory", any(t.startswith("/tmp") for t in p.get("tmpfs", [])))
    check("plura: a named volume at /var/lib/plura", any(v.split(":")[:2] == ["plura-data", "/var/lib/plura"]
                                                         for v in p.get("volumes", [])))
    cmd = p.get("command", [])
    cpath = cmd[cmd.index("-c") + 1] if "-c" in cmd else None
    mounts = {v.split(":")[1]: v.split(":")[0] for v in p.get("volumes", []) if isinstance(v, str)}
    check(f"plura: -c {cpath} is mounted from compose/config.json", mounts.get(cpath) == "./compose/config.json")
    check("plura: serve --data /var/lib/plura", cmd[:1] == ["serve"] and cmd[cmd.index("--data") + 1] == "/var/lib/plura")
    cfg = json.load(open(os.path.join(deploy, "compose", "config.json")))
    targets = {"/run/secrets/" + s["target"]: s["source"] for s in p.get("secrets", [])}
    for key, fpath in (("tls.cert", cfg.get("tls", {}).get("cert")), ("tls.key", cfg.get("tls", {}).get("key")),
                       ("auth.htpasswd", cfg.get("auth", {}).get("htpasswd")),
                       ("auth.token.key", cfg.get("auth", {}).get("token", {}).get("key"))):
        check(f"compose/config.json {key} ({fpath}) is a secret of the plura service", fpath in targets, str(targets))
    env = p.get("environment", {})
    check("plura: the healthcheck's PLURA_URL is https (tls is on) and PLURA_CA a mounted secret",
          env.get("PLURA_URL", "").startswith("https://") and env.get("PLURA_CA") in targets)
    for s in list(services.values()):
        for sec in s.get("secrets", []):
            check(f"secret {sec['source']} is declared with a file", sec["source"] in c.get("secrets", {}) and
                  "file" in c["secrets"][sec["source"]])

    # Prometheus: scrapes plura's /metrics with a user the config allows metrics; the rules
    pr = services.get("prometheus", {})
    pmounts = {v.split(":")[1]: v.split(":")[0] for v in pr.get("volumes", []) if isinstance(v, str)}
    check("prometheus: prometheus.yml mounted", pmounts.get("/etc/prometheus/prometheus.yml") == "./prometheus/prometheus.yml")
    prom = yaml.safe_load(open(os.path.join(deploy, "prometheus", "prometheus.yml")))
    rules = prom.get("rule_files", [])
    rules_dir = {m: src for m, src in pmounts.items() if src == "./prometheus"}
    check("prometheus: rule_files lie in the mounted deploy/prometheus/ directory",
          rules and all(any(os.path.dirname(r) == m for m in rules_dir) for r in rules), str(rules))
    check("prometheus: rule_files would load deploy/prometheus/plura-rules.yml (the events issue's file)",
          any(fnmatch.fnmatch("plura-rules.yml", os.path.basename(r)) for r in rules))
    check("prometheus: rule_files would not load prometheus.yml itself",
          not any(fnmatch.fnmatch("prometheus.yml", os.path.basename(r)) for r in rules))
    jobs = [j for j in prom.get("scrape_configs", []) if j.get("job_name") == "plura"]
    if check("prometheus: a scrape job plura", len(jobs) == 1):
        j = jobs[0]
        port = cfg.get("listen", "").rsplit(":", 1)[-1]
        check("... of plura:<its port>/metrics", j.get("static_configs", [{}])[0].get("targets") == [f"plura:{port}"] and
              j.get("metrics_path", "/metrics") == "/metrics")
        check("... over https, as plura serves TLS", j.get("scheme") == "https" and "tls" in cfg)
        user = j.get("basic_auth", {}).get("username")
        acl = cfg.get("auth", {}).get("acl", [])
        check(f"... as {user}, whom the config allows metrics", any(user in r.get("users", []) and "metrics" in r.get("allow", [])
                                                                    for r in acl))
        psecrets = {"/run/secrets/" + s["target"] for s in pr.get("secrets", [])}
        for f in (j.get("basic_auth", {}).get("password_file"), j.get("tls_config", {}).get("ca_file")):
            check(f"... {f} is a secret of the prometheus service", f in psecrets)
    check("plura and prometheus share a network", set(p.get("networks", [])) & set(pr.get("networks", [])))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, deploy = sys.argv[1], sys.argv[2]
    if cmd == "k8s":
        check_k8s(deploy)
    elif cmd == "compose":
        check_compose(deploy)
    elif cmd == "k8s-config":
        print(json.dumps(k8s_config(k8s_objects(deploy)[0]), indent=2))
        return 0
    elif cmd == "k8s-args":
        print(json.dumps(registry_container(k8s_objects(deploy)[0])["args"]))
        return 0
    elif cmd == "k8s-gc-args":
        for _, spec in pod_specs([o for o in k8s_objects(deploy)[0] if o["kind"] == "CronJob"]):
            for c in all_containers(spec):
                print(json.dumps(c["args"]))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
