#!/usr/bin/env bash
# Validates docflow's deployment files offline (no Docker engine, no cluster):
#
#   bash scripts/check-deploy.sh
#
# Installs what it needs first (scripts/install-check-tools.sh), then prints
# one line per check and ends with "N passed, M failed". Exits non-zero if any
# check failed; a tool that cannot be installed fails its checks, it never
# skips them. Set K8S_VERSION to validate against another Kubernetes release
# (kubernetes-validate bundles 1.25 to 1.37).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
K8S_VERSION=${K8S_VERSION:-1.30.0}
SERVICES=(ingest-api worker dlq-admin metrics-tracker)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, prints one line, and on failure the
# command's output (indented, last 40 lines).
check() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        printf 'ok    %s\n' "$name"
        passed=$((passed + 1))
    else
        printf 'FAIL  %s\n' "$name"
        tail -n 40 "$work/out" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found (scripts/install-check-tools.sh could not install it)"; return 1; }
    done
}

# The python that has kubernetes-validate, jsonschema and PyYAML: the venv
# install-check-tools.sh makes when python3 is Debian's (externally managed),
# else python3 itself. Chosen after the install step has run.
pick_py() {
    local venv=${DOCFLOW_CHECK_VENV:-/opt/docflow-check-tools/venv}
    if [ -x "$venv/bin/python" ]; then PY=$venv/bin/python; else PY=python3; fi
}
PY=python3

need_py() {
    need "$PY" || return 1
    "$PY" -c 'import kubernetes_validate, jsonschema, yaml' 2>&1 \
        || { echo "$PY ($(command -v "$PY")) lacks kubernetes_validate, jsonschema or yaml"; return 1; }
}

# ---------------------------------------------------------------- checks ----

install_tools() {
    bash scripts/install-check-tools.sh
}

dockerfile_builds_all() {
    [ -f Dockerfile ] || { echo "no Dockerfile"; return 1; }
    # The RUN instruction that runs `cargo build`, with its continuation lines joined.
    local build
    build=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -E '^[[:space:]]*RUN .*cargo build' || true)
    [ -n "$build" ] || { echo "no RUN ... cargo build in Dockerfile"; return 1; }
    local rc=0 svc
    for flag in --release --locked; do
        grep -q -- "$flag" <<<"$build" || { echo "cargo build lacks $flag"; rc=1; }
    done
    for svc in "${SERVICES[@]}"; do
        grep -Eq -- "-p ${svc}( |\$)" <<<"$build" || { echo "cargo build does not name -p $svc"; rc=1; }
    done
    grep -q 'target/release' <<<"$build" || { echo "the build step does not copy binaries out of target/release"; rc=1; }
    grep -Eq '^USER +(10001|[a-z_][a-z0-9_-]*)' Dockerfile && ! grep -Eq '^USER +(0|root)\b' Dockerfile \
        || { echo "runtime stage must switch to a non-root USER"; rc=1; }
    # The last stage's base image, with ARG defaults substituted.
    local from name val
    from=$(grep -E '^FROM ' Dockerfile | tail -n 1 | awk '{print $2}')
    while read -r name val; do
        from=${from//\$\{$name\}/$val}
    done < <(sed -nE 's/^ARG +([A-Za-z_][A-Za-z0-9_]*)=("?)([^"]*)\2$/\1 \3/p' Dockerfile)
    grep -Eq '^(debian:bookworm-slim|gcr\.io/distroless/cc)' <<<"$from" \
        || { echo "runtime stage is $from, neither debian:bookworm-slim nor distroless cc"; rc=1; }
    grep -q '^ENTRYPOINT' Dockerfile || { echo "no ENTRYPOINT"; rc=1; }
    grep -q '^ARG SERVICE' Dockerfile || { echo "no ARG SERVICE to choose the entrypoint"; rc=1; }
    return $rc
}

dockerignore_excludes() {
    [ -f .dockerignore ] || { echo "no .dockerignore"; return 1; }
    local rc=0 p
    for p in target .git data; do
        grep -Eq "^/?${p//./\\.}/?\$" .dockerignore || { echo ".dockerignore does not exclude $p/"; rc=1; }
    done
    return $rc
}

compose_config() {
    need docker-compose || return 1
    docker-compose -f docker-compose.yml config -q
}

compose_contract() {
    need docker-compose && need_py || return 1
    docker-compose -f docker-compose.yml config >"$work/compose.yml" || return 1
    "$PY" - "$work/compose.yml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
svcs = cfg["services"]
problems = []
def env(s):
    e = svcs[s].get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: str(v) for k, v in e.items()}
def published(s):
    out = set()
    for p in svcs[s].get("ports") or []:
        if isinstance(p, dict):
            out.add((str(p.get("published")), int(p["target"])))
        else:
            host, _, target = str(p).rpartition(":")
            out.add((host, int(target)))
    return out
expect_images = {"postgres": "postgres:15", "rabbitmq": "rabbitmq:3.13-management"}
for s, img in expect_images.items():
    if s not in svcs or svcs[s].get("image") != img:
        problems.append(f"{s}: image must be {img}")
    elif "healthcheck" not in svcs[s]:
        problems.append(f"{s}: no healthcheck")
j = svcs.get("jaeger", {})
if not str(j.get("image", "")).startswith("jaegertracing/all-in-one"):
    problems.append("jaeger: image must be jaegertracing/all-in-one")
if env("jaeger").get("COLLECTOR_OTLP_ENABLED", "").lower() != "true":
    problems.append("jaeger: COLLECTOR_OTLP_ENABLED must be true")
for port in (16686, 4317, 4318):
    if port not in {t for _, t in published("jaeger")}:
        problems.append(f"jaeger: port {port} not published")
ports = {"ingest-api": 8080, "dlq-admin": 8081, "metrics-tracker": 8082, "worker": 8083}
for s, port in ports.items():
    if s not in svcs:
        problems.append(f"{s}: missing"); continue
    e = env(s)
    reads_blobs = s in ("ingest-api", "worker")
    want = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317",
            "OTEL_SERVICE_NAME": s, "LISTEN_ADDR": f"0.0.0.0:{port}", "LOG_FORMAT": "json"}
    if reads_blobs:
        want["BLOB_STORE_URL"] = "file:///data/blobs"
    for k, v in want.items():
        if e.get(k) != v:
            problems.append(f"{s}: {k}={e.get(k)!r}, want {v!r}")
    for k in ("DATABASE_URL", "AMQP_URL"):
        if not e.get(k):
            problems.append(f"{s}: {k} not set")
    if "@postgres:5432/" not in e.get("DATABASE_URL", ""):
        problems.append(f"{s}: DATABASE_URL does not point at the postgres service")
    if "@rabbitmq:5672" not in e.get("AMQP_URL", ""):
        problems.append(f"{s}: AMQP_URL does not point at the rabbitmq service")
    if port not in {t for _, t in published(s)}:
        problems.append(f"{s}: port {port} not published")
    vols = svcs[s].get("volumes") or []
    mounted = any((v.get("source"), v.get("target")) == ("blobs", "/data/blobs") if isinstance(v, dict)
                  else str(v).startswith("blobs:/data/blobs") for v in vols)
    if reads_blobs and not mounted:
        problems.append(f"{s}: named volume blobs not mounted at /data/blobs")
    if mounted and not reads_blobs:
        problems.append(f"{s}: mounts the blobs volume but reads no blob store")
    deps = svcs[s].get("depends_on") or {}
    for d in ("postgres", "rabbitmq"):
        if not isinstance(deps, dict) or (deps.get(d) or {}).get("condition") != "service_healthy":
            problems.append(f"{s}: depends_on {d} must have condition service_healthy")
    b = svcs[s].get("build") or {}
    if (b.get("args") or {}).get("SERVICE") != s:
        problems.append(f"{s}: build arg SERVICE must be {s}")
    if "healthcheck" not in svcs[s]:
        problems.append(f"{s}: no healthcheck")
if env("ingest-api").get("INGEST_API_KEYS") != "dev-key":
    problems.append("ingest-api: INGEST_API_KEYS must be the dev value dev-key")
if "dev-admin:write" not in env("dlq-admin").get("ADMIN_TOKENS", ""):
    problems.append("dlq-admin: ADMIN_TOKENS must hold dev-admin:write")
w = svcs.get("worker", {})
if (w.get("deploy") or {}).get("replicas", 1) < 2:
    problems.append("worker: deploy.replicas must be at least 2")
grace = float(env("worker").get("WORKER_SHUTDOWN_GRACE_SECONDS", "60"))
sgp = str(w.get("stop_grace_period", "10s"))
secs = int(sgp[:-1]) * (60 if sgp.endswith("m") else 1) if sgp[-1] in "sm" else int(sgp)
if secs <= grace:
    problems.append(f"worker: stop_grace_period {sgp} not longer than WORKER_SHUTDOWN_GRACE_SECONDS {grace}")
if "blobs" not in (cfg.get("volumes") or {}):
    problems.append("no named volume blobs")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

# render NAME DIR: kubectl kustomize DIR > $work/NAME.yaml
render() {
    need kubectl || return 1
    kubectl kustomize "$2" >"$work/$1.yaml" 2>"$work/$1.err" || { cat "$work/$1.err"; return 1; }
    [ -s "$work/$1.yaml" ] || { echo "$2 rendered nothing"; return 1; }
}

# k8s_validate FILE: kubernetes-validate --strict; every resource must pass
# (the tool only warns on a kind it has no schema for: that fails here).
k8s_validate() {
    need_py || return 1
    local out
    out=$("$PY" -m kubernetes_validate --strict -k "$K8S_VERSION" "$1" 2>&1)
    local rc=$?
    grep -v '^INFO ' <<<"$out"
    [ $rc -eq 0 ] || return 1
    if grep -v '^INFO ' <<<"$out" | grep -q .; then
        echo "kubernetes-validate printed warnings or errors"
        return 1
    fi
    local docs
    docs=$("$PY" -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$1")
    [ "$(grep -c '^INFO .* passed ' <<<"$out")" -eq "$docs" ] || { echo "not every one of $docs resources passed"; return 1; }
}

k8s_render_validate() {
    render "$1" "$2" && k8s_validate "$work/$1.yaml"
}

k8s_contract() {
    need_py || return 1
    [ -s "$work/base.yaml" ] && [ -s "$work/production.yaml" ] || { echo "base or production render missing"; return 1; }
    "$PY" - "$work/base.yaml" "$work/production.yaml" deploy/k8s/examples/docflow-secrets.example.yaml \
        deploy/k8s/overlays/production/kustomization.yaml <<'PY'
import sys, yaml
base, prod, secret_file, overlay_file = sys.argv[1:]
PORTS = {"ingest-api": 8080, "dlq-admin": 8081, "metrics-tracker": 8082, "worker": 8083}
secret_keys = set()
for d in yaml.safe_load_all(open(secret_file)):
    if d and d.get("kind") == "Secret" and d["metadata"]["name"] == "docflow-secrets":
        secret_keys |= set(d.get("stringData") or {}) | set(d.get("data") or {})
problems = []

def check(render_name, path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    def P(msg): problems.append(f"{render_name}: {msg}")
    by = lambda kind: {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
    deps, svcs, pdbs, cms = by("Deployment"), by("Service"), by("PodDisruptionBudget"), by("ConfigMap")
    if set(deps) != set(PORTS):
        P(f"Deployments {sorted(deps)}, want {sorted(PORTS)}")
    cm_keys = set((cms.get("docflow-config") or {}).get("data") or {})
    blob_url = ((cms.get("docflow-blob-store") or {}).get("data") or {}).get("BLOB_STORE_URL", "")
    if not cm_keys:
        P("ConfigMap docflow-config missing or empty")
    images = set()
    for name, d in deps.items():
        tpl = d["spec"]["template"]
        spec, labels = tpl["spec"], tpl["metadata"].get("labels", {})
        sel = d["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            P(f"{name}: selector does not match the pod labels")
        psc = spec.get("securityContext", {})
        if not psc.get("runAsNonRoot"):
            P(f"{name}: pod securityContext.runAsNonRoot is not true")
        c = next((c for c in spec["containers"] if c["name"] == name), None)
        if c is None:
            P(f"{name}: no container named {name}"); continue
        images.add(c["image"])
        if c.get("command") != [f"/usr/local/bin/{name}"]:
            P(f"{name}: command must be /usr/local/bin/{name}")
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"): P(f"{name}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False: P(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in (sc.get("capabilities") or {}).get("drop", []): P(f"{name}: capabilities do not drop ALL")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}): P(f"{name}: no {kind}.{r}")
        env = {e["name"]: e for e in c.get("env", [])}
        port = PORTS[name]
        if (env.get("LISTEN_ADDR") or {}).get("value") != f"0.0.0.0:{port}":
            P(f"{name}: LISTEN_ADDR must be 0.0.0.0:{port}")
        if (env.get("OTEL_SERVICE_NAME") or {}).get("value") != name:
            P(f"{name}: OTEL_SERVICE_NAME must be {name}")
        skip = (env.get("SKIP_MIGRATIONS") or {}).get("value")
        want_skip = "true"  # the Job docflow-migrate migrates; services wait for the schema
        if skip != want_skip:
            P(f"{name}: SKIP_MIGRATIONS={skip!r}, want {want_skip!r}")
        for e in env.values():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and (ref.get("name") != "docflow-secrets" or ref.get("key") not in secret_keys):
                P(f"{name}: env {e['name']} references {ref.get('name')}/{ref.get('key')}, not a key of the example docflow-secrets")
        needed = {"DATABASE_URL", "AMQP_URL"} | ({"INGEST_API_KEYS"} if name == "ingest-api" else set()) \
            | ({"ADMIN_TOKENS"} if name == "dlq-admin" else set())
        for n in sorted(needed - {k for k, e in env.items() if (e.get("valueFrom") or {}).get("secretKeyRef")}):
            P(f"{name}: {n} must come from a secretKeyRef")
        if not any((ef.get("configMapRef") or {}).get("name") == "docflow-config" for ef in c.get("envFrom", [])):
            P(f"{name}: envFrom configMapRef docflow-config missing")
        cports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if port not in cports.values():
            P(f"{name}: containerPort {port} missing")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            hg = (c.get(probe) or {}).get("httpGet") or {}
            pport = cports.get(hg.get("port"), hg.get("port"))
            if hg.get("path") != path or pport != port:
                P(f"{name}: {probe} must GET {path} on port {port}")
        ann = tpl["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port) \
                or ann.get("prometheus.io/path", "/metrics") != "/metrics":
            P(f"{name}: prometheus scrape annotations missing or not on port {port}")
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        takes_blobs = any((ef.get("configMapRef") or {}).get("name") == "docflow-blob-store" for ef in c.get("envFrom", []))
        if takes_blobs != (name in ("ingest-api", "worker")):
            P(f"{name}: envFrom docflow-blob-store must be on ingest-api and worker only (the blob store's readers)")
        if takes_blobs and "/data/blobs" not in mounts and blob_url.startswith("file:///data/blobs"):
            P(f"{name}: /data/blobs not mounted (BLOB_STORE_URL is {blob_url})")
        if not takes_blobs and "/data/blobs" in mounts:
            P(f"{name}: mounts /data/blobs but reads no blob store")
        schema_wait = float((env.get("SCHEMA_WAIT_SECONDS") or {}).get("value", "90"))
        sp = c.get("startupProbe") or {}
        budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        if budget <= schema_wait:
            P(f"{name}: startupProbe budget {budget} s not above SCHEMA_WAIT_SECONDS {schema_wait:g}: "
              "the kubelet would restart a pod still waiting for the schema")
        if name == "worker":
            grace = float((env.get("WORKER_SHUTDOWN_GRACE_SECONDS") or {}).get("value", "60"))
            tgp = spec.get("terminationGracePeriodSeconds", 30)
            if tgp <= grace:
                P(f"worker: terminationGracePeriodSeconds {tgp} not longer than WORKER_SHUTDOWN_GRACE_SECONDS {grace}")
        # Services: public ones select their pods; the worker has none.
        if name == "worker":
            if any(s["spec"].get("selector", {}).get("app.kubernetes.io/name") == "worker" for s in svcs.values()):
                P("worker: must not have a Service")
        else:
            s = svcs.get(name)
            if not s:
                P(f"{name}: no Service")
            elif any(labels.get(k) != v for k, v in s["spec"]["selector"].items()):
                P(f"{name}: Service selector does not match the pods")
        if name in ("ingest-api", "worker"):
            pdb = pdbs.get(name)
            if not pdb:
                P(f"{name}: no PodDisruptionBudget")
            elif any(labels.get(k) != v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
                P(f"{name}: PodDisruptionBudget selector does not match the pods")
    job = by("Job").get("docflow-migrate")
    if not job:
        P("no Job docflow-migrate (the services wait for the schema it applies)")
    else:
        jspec = job["spec"]["template"]["spec"]
        jc = next((c for c in jspec["containers"] if c["name"] == "docflow-migrate"), None)
        if jc is None:
            P("docflow-migrate: no container named docflow-migrate")
        else:
            images.add(jc["image"])
            if jc.get("command") != ["/usr/local/bin/docflow-migrate"]:
                P("docflow-migrate: command must be /usr/local/bin/docflow-migrate")
            jenv = {e["name"]: e for e in jc.get("env", [])}
            ref = ((jenv.get("DATABASE_URL") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            if (ref.get("name"), ref.get("key")) != ("docflow-secrets", "database-url"):
                P("docflow-migrate: DATABASE_URL must come from docflow-secrets/database-url")
            jsc = jc.get("securityContext", {})
            if not jsc.get("readOnlyRootFilesystem") or jsc.get("allowPrivilegeEscalation") is not False:
                P("docflow-migrate: container securityContext must be read-only, no privilege escalation")
        if not jspec.get("securityContext", {}).get("runAsNonRoot"):
            P("docflow-migrate: pod securityContext.runAsNonRoot is not true")
        if jspec.get("restartPolicy") not in ("OnFailure", "Never"):
            P("docflow-migrate: restartPolicy must be OnFailure or Never")
        if not job["spec"].get("ttlSecondsAfterFinished"):
            P("docflow-migrate: no ttlSecondsAfterFinished (a finished Job blocks the next apply)")
    if len(images) != 1:
        P(f"the four services and the migrate Job should run one image, found {sorted(images)}")
    return images, deps

check("base", base)
images, deps = check("production", prod)
overlay = yaml.safe_load(open(overlay_file))
tags = {i.get("newTag") for i in overlay.get("images", []) if i.get("newTag")}
if not tags or any(not img.endswith(":" + t) for img in images for t in tags):
    problems.append(f"production: images {sorted(images)} do not carry the overlay's tag {sorted(tags)}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

keda_schema() {
    need_py || return 1
    render keda deploy/k8s/keda || return 1
    [ -s "$work/base.yaml" ] || render base deploy/k8s/base || return 1
    "$PY" deploy/k8s/keda/schema/validate.py "$work/keda.yaml" "$work/base.yaml" \
        deploy/k8s/examples/docflow-secrets.example.yaml
}

# The worker's scaling arithmetic: the rendered triggers' queries evaluated by
# promtool over example series, then the HPA's replica formula over them.
keda_scaling() {
    need_py && need promtool || return 1
    [ -s "$work/keda.yaml" ] || render keda deploy/k8s/keda || return 1
    [ -s "$work/base.yaml" ] || render base deploy/k8s/base || return 1
    "$PY" deploy/k8s/keda/schema/scaling.py "$work/keda.yaml" "$work/base.yaml" "$work"
}

# Every environment variable a manifest or compose gives a process is read
# by that binary: each binary's own --help lists its settings (clap prints
# `[env: NAME=]`), so the debug binaries are built first (the same artifacts
# `cargo nextest run` uses afterwards).
binaries_help() {
    local target=${CARGO_TARGET_DIR:-target}
    cargo build --quiet --bins -p ingest-api -p worker -p dlq-admin -p metrics-tracker -p docflow-migrate || return 1
    mkdir -p "$work/help"
    local bin
    for bin in "${SERVICES[@]}" docflow-migrate; do
        "$target/debug/$bin" --help >"$work/help/$bin.help" || { echo "$bin --help failed"; return 1; }
    done
}

env_read() {
    "$PY" scripts/deploy_env_read.py "$work/help" "$@" \
        --sources deploy/k8s/base/configmap.yaml deploy/k8s/examples/docflow-secrets.example.yaml
}

env_vars_read() {
    need_py && need docker-compose || return 1
    [ -s "$work/base.yaml" ] && [ -s "$work/production.yaml" ] || { echo "base or production render missing"; return 1; }
    binaries_help || return 1
    docker-compose -f docker-compose.yml config >"$work/compose.yml" || return 1
    env_read "$work/base.yaml" "$work/production.yaml" deploy/k8s/examples/docflow-secrets.example.yaml \
        --compose "$work/compose.yml"
}

# The validators must reject known-bad input, or a pass above means nothing.
validators_reject_bad_input() {
    need_py || return 1
    [ -s "$work/base.yaml" ] && [ -s "$work/keda.yaml" ] || { echo "renders missing"; return 1; }
    "$PY" - "$work" <<'PY' || return 1
import sys, yaml
work = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{work}/base.yaml")) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/healthz"
yaml.safe_dump(dep, open(f"{work}/bad-k8s.yaml", "w"))
nokind = {"apiVersion": "apps/v9", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}}
yaml.safe_dump(nokind, open(f"{work}/bad-k8s-version.yaml", "w"))
keda = [d for d in yaml.safe_load_all(open(f"{work}/keda.yaml")) if d]
so = next(d for d in keda if d["kind"] == "ScaledObject")
so["spec"]["maxReplicas"] = 20
yaml.safe_dump_all(keda, open(f"{work}/bad-keda.yaml", "w"))
del so["spec"]["maxReplicas"]
worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "worker")
worker["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "RABBITMQ_MAX_RETRIES", "value": "3"})
yaml.safe_dump_all(docs, open(f"{work}/bad-env.yaml", "w"))
prom = next(t for t in so["spec"]["triggers"] if t["type"] == "prometheus")
prom["metadata"]["ignoreNullValues"] = "true"
yaml.safe_dump_all(keda, open(f"{work}/bad-keda-null.yaml", "w"))
PY
    local rc=0
    if k8s_validate "$work/bad-k8s.yaml" >/dev/null 2>&1; then
        echo "kubernetes-validate --strict accepted an unknown field (httpGet.pathh)"; rc=1
    fi
    if k8s_validate "$work/bad-k8s-version.yaml" >/dev/null 2>&1; then
        echo "an unknown apiVersion (apps/v9) was accepted"; rc=1
    fi
    if "$PY" deploy/k8s/keda/schema/validate.py "$work/bad-keda.yaml" "$work/base.yaml" \
        deploy/k8s/examples/docflow-secrets.example.yaml >/dev/null 2>&1; then
        echo "the KEDA schema accepted an unknown field (spec.maxReplicas)"; rc=1
    fi
    if "$PY" deploy/k8s/keda/schema/validate.py "$work/bad-keda-null.yaml" "$work/base.yaml" \
        deploy/k8s/examples/docflow-secrets.example.yaml >/dev/null 2>&1; then
        echo "the KEDA check accepted a prometheus trigger that reads a lost target as 0"; rc=1
    fi
    if [ -s "$work/help/worker.help" ] && env_read "$work/bad-env.yaml" >/dev/null 2>&1; then
        echo "the env check accepted RABBITMQ_MAX_RETRIES on the worker, which reads no such setting"; rc=1
    fi
    if promtool_available && printf 'groups:\n- name: x\n  rules:\n  - alert: X\n    expr: rate(x[5m] > 1\n' >"$work/bad-rules.yml" \
        && promtool check rules "$work/bad-rules.yml" >/dev/null 2>&1; then
        echo "promtool accepted a broken expression"; rc=1
    fi
    return $rc
}

promtool_available() { need promtool >/dev/null; }

promtool_check() {
    need promtool || return 1
    promtool check rules deploy/prometheus/alerts.yml
}

promtool_test() {
    need promtool || return 1
    [ -f deploy/prometheus/alerts_test.yml ] || { echo "deploy/prometheus/alerts_test.yml missing"; return 1; }
    promtool test rules deploy/prometheus/alerts_test.yml
}

grafana_dashboard() {
    need_py && need promtool || return 1
    "$PY" - deploy/grafana/docflow-dashboard.json "$work/dashboard-rules.yml" <<'PY' || return 1
import json, re, sys, yaml
path, rules_out = sys.argv[1:]
dash = json.load(open(path))
problems, exprs = [], []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
panels = [p for p in walk(dash.get("panels", [])) if p.get("type") != "row"]
if not panels:
    problems.append("no panels")
for p in panels:
    title = p.get("title") or f"panel id {p.get('id')}"
    if not p.get("datasource"):
        problems.append(f"{title}: no datasource")
    targets = [t for t in p.get("targets", []) if (t.get("expr") or "").strip()]
    if not targets:
        problems.append(f"{title}: no target with an expression")
    exprs += [(title, t["expr"]) for t in targets]
# Offline, the names the dashboard may use; that each is really exported is
# checked against a live scrape of every service by the conventions test
# (services/worker/tests/it/conventions.rs).
known = {"docflow_job_attempts_total", "docflow_job_duration_seconds_bucket", "docflow_job_duration_seconds_sum",
         "docflow_job_duration_seconds_count", "docflow_stage_duration_seconds_bucket", "docflow_queue_jobs",
         "docflow_queue_oldest_job_age_seconds", "docflow_dlq_size", "docflow_outbox_backlog",
         "docflow_outbox_broker_connected"}
for title, e in exprs:
    for m in set(re.findall(r"\bdocflow_[a-z_]+", e)) - known:
        problems.append(f"{title}: unknown metric {m}")
want = {"docflow_job_attempts_total", "docflow_job_duration_seconds_bucket", "docflow_stage_duration_seconds_bucket",
        "docflow_queue_jobs", "docflow_dlq_size", "docflow_outbox_backlog"}
used = {m for _, e in exprs for m in re.findall(r"\bdocflow_[a-z_]+", e)}
for m in sorted(want - used):
    problems.append(f"no panel uses {m}")
if problems:
    print("\n".join(problems)); sys.exit(1)
# Let promtool parse every expression, Grafana's variables replaced by values.
def concrete(e):
    return (e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
             .replace("$priority", ".*").replace("${priority}", ".*"))
rules = [{"record": f"dashboard:expr{i}", "expr": concrete(e)} for i, (_, e) in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_out, "w"))
print(f"{len(panels)} panels, {len(exprs)} expressions")
PY
    promtool check rules "$work/dashboard-rules.yml"
}

# ------------------------------------------------------------------ run ----

check "install check tools (docker-compose, kubectl, promtool, kubernetes-validate)" install_tools
pick_py
check "Dockerfile: cargo build names all four binaries, non-root runtime" dockerfile_builds_all
check ".dockerignore excludes target/ .git data/" dockerignore_excludes
check "docker-compose.yml: docker-compose config -q" compose_config
check "docker-compose.yml: services, env, ports, volumes, healthchecks" compose_contract
check "k8s base: kubectl kustomize | kubernetes-validate --strict ($K8S_VERSION)" k8s_render_validate base deploy/k8s/base
check "k8s production overlay: kubectl kustomize | kubernetes-validate --strict ($K8S_VERSION)" \
    k8s_render_validate production deploy/k8s/overlays/production
check "k8s example Secret: kubernetes-validate --strict ($K8S_VERSION)" \
    k8s_validate deploy/k8s/examples/docflow-secrets.example.yaml
check "k8s base + production: probes, security, resources, env, PDBs, images" k8s_contract
check "env vars each manifest and compose service sets are read by that binary (its --help)" env_vars_read
check "KEDA ScaledObject: CRD schema, trigger metadata and references" keda_schema
check "KEDA scaling: waiting + running summed, age per priority, replicas by the HPA formula" keda_scaling
check "validators reject known-bad input" validators_reject_bad_input
check "prometheus alerts: promtool check rules" promtool_check
check "prometheus alerts: promtool test rules" promtool_test
check "grafana dashboard: JSON, datasources, targets, PromQL parses" grafana_dashboard

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
