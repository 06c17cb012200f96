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

# dockerfile_builds_all [FILE]: the build step of the Dockerfile (default
# ./Dockerfile) compiles every binary the image ships, with BuildKit cache
# mounts, and the runtime stage is a small non-root one.
dockerfile_builds_all() {
    local file=${1:-Dockerfile}
    [ -f "$file" ] || { echo "no $file"; return 1; }
    local rc=0
    # Cache mounts (RUN --mount) need BuildKit's Dockerfile frontend, which the
    # syntax line pins; it must be the file's first line to count.
    head -n 1 "$file" | grep -Eq '^# *syntax *= *docker/dockerfile:1' \
        || { echo "first line must be '# syntax=docker/dockerfile:1'"; rc=1; }
    # The RUN instruction that runs `cargo build`, with its continuation lines joined.
    local build
    build=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$file" | grep -E '^[[:space:]]*RUN .*cargo build' || true)
    [ -n "$build" ] || { echo "no RUN ... cargo build in $file"; return 1; }
    for flag in --release --locked; do
        grep -q -- "$flag" <<<"$build" || { echo "cargo build lacks $flag"; rc=1; }
    done
    local svc
    for svc in "${SERVICES[@]}" docflow-migrate; do
        grep -Eq -- "-p ${svc}( |\$)" <<<"$build" || { echo "cargo build does not name -p $svc"; rc=1; }
        # Named twice: once to build (-p), once to copy out of target/release.
        [ "$(grep -Eo -- "(^|[ /\"])${svc}([ \";]|\$)" <<<"$build" | wc -l)" -ge 2 ] \
            || { echo "the build step does not copy $svc out of target/release"; rc=1; }
    done
    grep -q 'target/release' <<<"$build" || { echo "the build step does not copy binaries out of target/release"; rc=1; }
    # The target directory is the build stage's WORKDIR/target (no CARGO_TARGET_DIR).
    local workdir
    workdir=$(sed -n '/^FROM .* AS build/,/^FROM /{s/^WORKDIR \+//p}' "$file" | tail -n 1)
    grep -q CARGO_TARGET_DIR "$file" && { echo "CARGO_TARGET_DIR moves target/ away from the cache mount"; rc=1; }
    local dir
    for dir in /usr/local/cargo/registry "${workdir:-/}/target"; do
        grep -Eq -- "--mount=type=cache,([^ ]*,)?target=${dir}( |,|\$)" <<<"$build" \
            || { echo "cargo build has no --mount=type=cache,target=$dir"; rc=1; }
    done
    grep -Eq '^USER +(10001|[a-z_][a-z0-9_-]*)' "$file" && ! grep -Eq '^USER +(0|root)\b' "$file" \
        || { echo "runtime stage must switch to a non-root USER"; rc=1; }
    # The last stage's base image, with ARG defaults substituted.
    local from name val
    from=$(grep -E '^FROM ' "$file" | tail -n 1 | awk '{print $2}')
    while read -r name val; do
        from=${from//\$\{$name\}/$val}
    done < <(sed -nE 's/^ARG +([A-Za-z_][A-Za-z0-9_]*)=("?)([^"]*)\2$/\1 \3/p' "$file")
    grep -Eq '^(debian:bookworm-slim|gcr\.io/distroless/cc)' <<<"$from" \
        || { echo "runtime stage is $from, neither debian:bookworm-slim nor distroless cc"; rc=1; }
    grep -q '^ENTRYPOINT' "$file" || { echo "no ENTRYPOINT"; rc=1; }
    grep -q '^ARG SERVICE' "$file" || { echo "no ARG SERVICE to choose the entrypoint"; rc=1; }
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
    compose_contract_on "$work/compose.yml"
}

# compose_contract_on RENDER: the contract over `docker-compose config` output
# (validators_reject_bad_input runs it on broken copies too).
compose_contract_on() {
    "$PY" - "$1" <<'PY'
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
    # Migrations are the migrate service's step, not the services'.
    if not isinstance(deps, dict) or (deps.get("migrate") or {}).get("condition") != "service_completed_successfully":
        problems.append(f"{s}: depends_on migrate must have condition service_completed_successfully")
    if e.get("SKIP_MIGRATIONS", "").lower() != "true":
        problems.append(f"{s}: SKIP_MIGRATIONS={e.get('SKIP_MIGRATIONS')!r}, want 'true' (the migrate service migrates)")
# migrate: one-shot docflow-migrate from the same build, before the services.
m = svcs.get("migrate")
if m is None:
    problems.append("migrate: missing")
else:
    def same_build(b):
        return {k: (b or {}).get(k) for k in ("context", "dockerfile")}
    if same_build(m.get("build")) != same_build(svcs.get("ingest-api", {}).get("build")):
        problems.append("migrate: build context/dockerfile must be the services' own")
    ep, cmd = m.get("entrypoint"), m.get("command")
    as_list = lambda v: v if isinstance(v, list) else str(v).split() if v else []
    argv = as_list(ep) + as_list(cmd) if ep else as_list(cmd)
    if argv[:1] != ["/usr/local/bin/docflow-migrate"]:
        problems.append(f"migrate: runs {argv}, want /usr/local/bin/docflow-migrate")
    if env("migrate").get("DATABASE_URL") != env("ingest-api").get("DATABASE_URL"):
        problems.append("migrate: DATABASE_URL differs from the services'")
    if ((m.get("depends_on") or {}).get("postgres") or {}).get("condition") != "service_healthy":
        problems.append("migrate: depends_on postgres must have condition service_healthy")
    if str(m.get("restart", "no")) != "no":
        problems.append(f"migrate: restart {m.get('restart')!r}, want \"no\" (a one-shot step)")
    if (m.get("deploy") or {}).get("replicas", 1) != 1:
        problems.append("migrate: must run once (deploy.replicas 1)")
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

# Prometheus and Grafana: the mounted files are read from the paths compose
# resolved, i.e. what the containers would see.
import glob, json, os, posixpath, re
def mounts(s):
    """(source, target) of each volume; sources of bind mounts are absolute paths."""
    out = []
    for v in svcs.get(s, {}).get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v.get("target", ""))))
        else:
            parts = str(v).split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return out
def mounted(s, target):
    """The host path mounted at target (or at a directory above it), or None."""
    for src, tgt in sorted(mounts(s), key=lambda m: -len(m[1])):
        if src.startswith("/") and (target == tgt or target.startswith(tgt.rstrip("/") + "/")):
            return src + target[len(tgt):]
    return None
def pinned(s, pattern):
    img = str(svcs.get(s, {}).get("image", ""))
    if not re.fullmatch(pattern, img):
        problems.append(f"{s}: image {img!r} is not a pinned {pattern}")
def load(path):
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as e:
        problems.append(f"cannot read {path}: {e}")
        return None

if "prometheus" not in svcs:
    problems.append("prometheus: missing")
else:
    pinned("prometheus", r"prom/prometheus:v[23]\.[0-9]+\.[0-9]+")
    if (("9090", 9090)) not in published("prometheus"):
        problems.append("prometheus: port 9090 not published as 9090")
    args = svcs["prometheus"].get("command") or []
    args = args if isinstance(args, list) else str(args).split()
    conf_target = next((a.split("=", 1)[1] for a in args if a.startswith("--config.file=")),
                       "/etc/prometheus/prometheus.yml")
    conf_path = mounted("prometheus", conf_target)
    if not conf_path or not conf_path.endswith("/deploy/prometheus/prometheus.compose.yml"):
        problems.append(f"prometheus: {conf_target} is not deploy/prometheus/prometheus.compose.yml (mounted: {conf_path})")
    prom = load(conf_path) if conf_path else None
    if prom:
        rules = [posixpath.normpath(posixpath.join(posixpath.dirname(conf_target), r)) for r in prom.get("rule_files") or []]
        if not any((mounted("prometheus", r) or "").endswith("/deploy/prometheus/alerts.yml") for r in rules):
            problems.append(f"prometheus: no rule_files entry ({rules}) is where deploy/prometheus/alerts.yml is mounted")
        jobs = {j.get("job_name"): j for j in prom.get("scrape_configs") or []}
        for s, port in ports.items():
            j = jobs.get(s)
            if not j:
                problems.append(f"prometheus: no scrape job {s}"); continue
            if j.get("metrics_path", "/metrics") != "/metrics":
                problems.append(f"prometheus: job {s} scrapes {j['metrics_path']}, not /metrics")
            static = {t for sc in j.get("static_configs") or [] for t in sc.get("targets") or []}
            dns = [d for d in j.get("dns_sd_configs") or []
                   if d.get("type", "SRV") == "A" and s in (d.get("names") or []) and d.get("port") == port]
            if s == "worker":
                # Several replicas behind one name: each must be a target.
                if not dns or static:
                    problems.append(f"prometheus: job worker must find every replica by dns_sd_configs type A on worker port {port}, with no static targets")
            elif f"{s}:{port}" not in static:
                problems.append(f"prometheus: job {s} does not scrape {s}:{port}")

if "grafana" not in svcs:
    problems.append("grafana: missing")
else:
    pinned("grafana", r"grafana/grafana-oss:[0-9]+\.[0-9]+\.[0-9]+")
    if ("3000", 3000) not in published("grafana"):
        problems.append("grafana: port 3000 not published as 3000")
    g = env("grafana")
    if g.get("GF_AUTH_ANONYMOUS_ENABLED", "").lower() != "true" or g.get("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer":
        problems.append("grafana: anonymous Viewer access must be on (GF_AUTH_ANONYMOUS_ENABLED, GF_AUTH_ANONYMOUS_ORG_ROLE)")
    if not g.get("GF_SECURITY_ADMIN_PASSWORD"):
        problems.append("grafana: GF_SECURITY_ADMIN_PASSWORD must hold the dev value")
    def provisioned(kind, key):
        d = mounted("grafana", f"/etc/grafana/provisioning/{kind}")
        if not d or not os.path.isdir(d):
            problems.append(f"grafana: /etc/grafana/provisioning/{kind} is not a mounted directory")
            return []
        files = sorted(glob.glob(f"{d}/*.yml") + glob.glob(f"{d}/*.yaml"))
        items = [i for f in files for i in (load(f) or {}).get(key) or []]
        if not items:
            problems.append(f"grafana: no {key} in {d}")
        return items
    sources = provisioned("datasources", "datasources")
    prom_sources = [s for s in sources if s.get("type") == "prometheus"]
    if not any(re.fullmatch(r"http://prometheus:9090/?", str(s.get("url", ""))) for s in prom_sources):
        problems.append("grafana: no prometheus datasource with url http://prometheus:9090 (the compose service)")
    providers = provisioned("dashboards", "providers")
    # What the container sees under each file provider's path: a mount above
    # it, or mounts at or below it.
    dash_files = set()
    for prov in providers:
        path = (prov.get("options") or {}).get("path")
        if prov.get("type", "file") != "file" or not path:
            continue
        path = path.rstrip("/")
        hosts = [mounted("grafana", path)] + [src for src, tgt in mounts("grafana")
                                               if src.startswith("/") and tgt.startswith(path + "/")]
        for h in filter(None, hosts):
            dash_files |= {h} if os.path.isfile(h) else set(glob.glob(f"{h}/**/*.json", recursive=True))
    if not any(os.path.realpath(f).endswith("/deploy/grafana/docflow-dashboard.json") for f in dash_files):
        problems.append("grafana: deploy/grafana/docflow-dashboard.json is not mounted under a dashboard provider's options.path")
    # Every datasource the dashboard names must be one provisioned here: a
    # literal uid must be a provisioned uid; a ${variable} must be a
    # datasource variable whose plugin type is provisioned, and whose empty
    # `current` then resolves to the default datasource of that type.
    for f in sorted(dash_files):
        dash = json.load(open(f))
        variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
        refs = []
        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("datasource"), (dict, str)):
                    refs.append(o["datasource"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(dash)
        uids = {s.get("uid"): s for s in sources}
        for ref in refs:
            uid, typ = (ref.get("uid"), ref.get("type")) if isinstance(ref, dict) else (ref, None)
            if typ == "grafana" or uid in ("-- Grafana --", "grafana"):
                continue
            m = re.fullmatch(r"\$\{?(\w+)\}?", str(uid or ""))
            if m:
                var = variables.get(m.group(1))
                if not var or var.get("type") != "datasource":
                    problems.append(f"grafana: dashboard uses datasource ${{{m.group(1)}}}, not a datasource variable"); continue
                cur = ((var.get("current") or {}).get("value"))
                of_type = [s for s in sources if s.get("type") == var.get("query")]
                if cur and cur not in uids:
                    problems.append(f"grafana: dashboard variable {m.group(1)} starts on uid {cur!r}, not a provisioned datasource")
                elif not cur and not (len(of_type) == 1 or any(s.get("isDefault") for s in of_type)):
                    problems.append(f"grafana: dashboard variable {m.group(1)} (type {var.get('query')}) finds no single or default provisioned {var.get('query')} datasource")
                if typ and typ != var.get("query"):
                    problems.append(f"grafana: dashboard reference of type {typ} through variable of type {var.get('query')}")
            elif uid not in uids or (typ and uids[uid].get("type") != typ):
                problems.append(f"grafana: dashboard names datasource uid {uid!r} (type {typ}); provisioned: {sorted(map(str, uids))}")
        if not refs:
            problems.append("grafana: the dashboard names no datasource")
problems = list(dict.fromkeys(problems))  # a dashboard repeats its references
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

# The compose Prometheus's config, checked by promtool where the container
# sees it: every bind mount of the prometheus service copied to its target
# under $work/prom-root, so that rule_files resolve (relative to the config
# file) exactly as they would in the container, and a mount path that does
# not line up fails here.
compose_prometheus_config() {
    need docker-compose && need promtool && need_py || return 1
    [ -s "$work/compose.yml" ] || docker-compose -f docker-compose.yml config >"$work/compose.yml" || return 1
    rm -rf "$work/prom-root"
    local conf
    conf=$("$PY" - "$work/compose.yml" "$work/prom-root" <<'PY'
import os, shutil, sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]["prometheus"]
root = sys.argv[2]
for v in svc.get("volumes") or []:
    src, tgt = (v["source"], v["target"]) if isinstance(v, dict) else str(v).split(":")[:2]
    if not src.startswith("/"):
        continue  # a named volume (the TSDB)
    dst = root + tgt
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
args = svc.get("command") or []
args = args if isinstance(args, list) else str(args).split()
print(next((a.split("=", 1)[1] for a in args if a.startswith("--config.file=")), "/etc/prometheus/prometheus.yml"))
PY
) || return 1
    [ -f "$work/prom-root$conf" ] || { echo "nothing is mounted at the config file $conf"; return 1; }
    promtool check config "$work/prom-root$conf"
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
    k8s_contract_on "$work/base.yaml" "$work/production.yaml"
}

# k8s_contract_on BASE_RENDER PRODUCTION_RENDER: the contract over two renders
# (validators_reject_bad_input runs it on broken copies too).
k8s_contract_on() {
    "$PY" - "$1" "$2" deploy/k8s/examples/docflow-secrets.example.yaml \
        deploy/k8s/overlays/production/kustomization.yaml <<'PY'
import sys, yaml
base, prod, secret_file, overlay_file = sys.argv[1:]
PORTS = {"ingest-api": 8080, "dlq-admin": 8081, "metrics-tracker": 8082, "worker": 8083}
secret_keys = set()
for d in yaml.safe_load_all(open(secret_file)):
    if d and d.get("kind") == "Secret" and d["metadata"]["name"] == "docflow-secrets":
        secret_keys |= set(d.get("stringData") or {}) | set(d.get("data") or {})
problems = []

def selects(selector, labels):
    """Whether a LabelSelector (matchLabels, matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if not {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[op]:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))

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
        # Every Deployment: exactly one PodDisruptionBudget selects its pods
        # (the eviction API refuses a pod that two select), and it leaves at
        # least one pod evictable at this render's replica count, or a node
        # drain never finishes.
        budgets = [p for p in pdbs.values() if selects(p["spec"].get("selector") or {}, labels)]
        replicas = d["spec"].get("replicas", 1)
        if not budgets:
            P(f"{name}: no PodDisruptionBudget selects its pods")
        elif len(budgets) > 1:
            P(f"{name}: PodDisruptionBudgets {sorted(b['metadata']['name'] for b in budgets)} all select its pods")
        else:
            bspec, bname = budgets[0]["spec"], budgets[0]["metadata"]["name"]
            lo, hi = bspec.get("minAvailable"), bspec.get("maxUnavailable")
            if (lo is None) == (hi is None):
                P(f"{name}: PodDisruptionBudget {bname} must set one of minAvailable, maxUnavailable")
            elif not isinstance(lo if hi is None else hi, int):
                P(f"{name}: PodDisruptionBudget {bname}: give a count, not a percentage, so this check can evaluate it")
            elif hi is None and lo >= replicas:
                P(f"{name}: PodDisruptionBudget {bname} minAvailable {lo} with {replicas} replicas refuses every eviction (node drains never finish)")
            elif lo is None and hi < 1:
                P(f"{name}: PodDisruptionBudget {bname} maxUnavailable {hi} refuses every eviction (node drains never finish)")
    for bname, b in pdbs.items():
        if not any(selects(b["spec"].get("selector") or {}, d["spec"]["template"]["metadata"].get("labels", {}))
                   for d in deps.values()):
            P(f"PodDisruptionBudget {bname} selects no Deployment's pods")
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

# The optional prometheus-operator resources: the committed PrometheusRule is
# what render-prometheusrule.sh makes of alerts.yml, the render passes the
# vendored CRD schema and the cross-checks (schema/validate.py), and promtool
# parses the rules as the PrometheusRule carries them.
prometheus_operator() {
    need_py && need promtool || return 1
    render prometheus-operator deploy/k8s/prometheus-operator || return 1
    [ -s "$work/base.yaml" ] || render base deploy/k8s/base || return 1
    bash deploy/k8s/prometheus-operator/render-prometheusrule.sh --check || return 1
    "$PY" deploy/k8s/prometheus-operator/schema/validate.py "$work/prometheus-operator.yaml" "$work/base.yaml" \
        deploy/prometheus/alerts.yml "$work/prometheusrule-groups.yml" || return 1
    promtool check rules "$work/prometheusrule-groups.yml"
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
    env_read "$work/base.yaml" "$work/production.yaml" \
        --compose "$work/compose.yml"
}

# The validators must reject known-bad input, or a pass above means nothing.
validators_reject_bad_input() {
    need_py || return 1
    [ -s "$work/base.yaml" ] && [ -s "$work/production.yaml" ] && [ -s "$work/keda.yaml" ] \
        && [ -s "$work/compose.yml" ] && [ -s "$work/prometheus-operator.yaml" ] || { echo "renders missing"; return 1; }
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
# PodDisruptionBudgets: one that blocks every eviction, and one missing.
docs = [d for d in yaml.safe_load_all(open(f"{work}/base.yaml")) if d]
pdb = lambda name: next(d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == name)
blocking = pdb("metrics-tracker")["spec"]
blocking.pop("maxUnavailable", None)
blocking["minAvailable"] = 1
yaml.safe_dump_all(docs, open(f"{work}/bad-pdb-blocking.yaml", "w"))
docs.remove(pdb("dlq-admin"))
yaml.safe_dump_all(docs, open(f"{work}/bad-pdb-missing.yaml", "w"))
# prometheus-operator: an unknown field, a worker PodMonitor on a port the
# worker does not have, and a PrometheusRule that drifted from alerts.yml.
po = [d for d in yaml.safe_load_all(open(f"{work}/prometheus-operator.yaml")) if d]
mon = next(d for d in po if d["kind"] == "PodMonitor" and d["metadata"]["name"] == "worker")
mon["spec"]["podMetricsEndpoints"][0]["pathh"] = "/metrics"
yaml.safe_dump_all(po, open(f"{work}/bad-po-field.yaml", "w"))
del mon["spec"]["podMetricsEndpoints"][0]["pathh"]
mon["spec"]["podMetricsEndpoints"][0]["port"] = "http"
yaml.safe_dump_all(po, open(f"{work}/bad-po-port.yaml", "w"))
mon["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
rule = next(d for d in po if d["kind"] == "PrometheusRule")["spec"]["groups"][0]["rules"][0]
rule["expr"] = rule["expr"].replace("1000", "5000")
yaml.safe_dump_all(po, open(f"{work}/bad-po-drift.yaml", "w"))
# Compose: a service that no longer waits for the migrate step.
compose = yaml.safe_load(open(f"{work}/compose.yml"))
del compose["services"]["worker"]["depends_on"]["migrate"]
yaml.safe_dump(compose, open(f"{work}/bad-compose-migrate.yml", "w"))
# Compose Prometheus scraping one worker replica by a static target, and a
# Grafana whose only datasource is not the dashboard's type.
import os
compose = yaml.safe_load(open(f"{work}/compose.yml"))
def remount(svc, target, src):
    vols = compose["services"][svc]["volumes"]
    for i, v in enumerate(vols):
        if (v["target"] if isinstance(v, dict) else str(v).split(":")[1]) == target:
            vols[i] = f"{src}:{target}:ro"
prom = yaml.safe_load(open("deploy/prometheus/prometheus.compose.yml"))
worker = next(j for j in prom["scrape_configs"] if j["job_name"] == "worker")
worker.pop("dns_sd_configs")
worker["static_configs"] = [{"targets": ["worker:8083"]}]
yaml.safe_dump(prom, open(f"{work}/bad-prometheus-static.yml", "w"))
remount("prometheus", "/etc/prometheus/prometheus.yml", f"{work}/bad-prometheus-static.yml")
os.makedirs(f"{work}/bad-datasources", exist_ok=True)
yaml.safe_dump({"apiVersion": 1, "datasources": [{"name": "Loki", "uid": "loki", "type": "loki",
                "url": "http://loki:3100", "isDefault": True}]}, open(f"{work}/bad-datasources/loki.yml", "w"))
remount("grafana", "/etc/grafana/provisioning/datasources", f"{work}/bad-datasources")
yaml.safe_dump(compose, open(f"{work}/bad-compose-monitoring.yml", "w"))
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
    sed -e 's#--mount=type=cache,target=/src/target ##' Dockerfile >"$work/bad-nocache.Dockerfile"
    if dockerfile_builds_all "$work/bad-nocache.Dockerfile" >/dev/null 2>&1; then
        echo "the Dockerfile check accepted a build without a cache mount for target/"; rc=1
    fi
    sed -e 's# -p docflow-migrate##' Dockerfile >"$work/bad-nomigrate.Dockerfile"
    if dockerfile_builds_all "$work/bad-nomigrate.Dockerfile" >/dev/null 2>&1; then
        echo "the Dockerfile check accepted a build without docflow-migrate"; rc=1
    fi
    if compose_contract_on "$work/bad-compose-migrate.yml" >"$work/bad.out" 2>&1 \
        || ! grep -q 'worker: depends_on migrate must have condition service_completed_successfully' "$work/bad.out"; then
        echo "the compose contract accepted a service that starts before the migrate step"; rc=1
    fi
    compose_contract_on "$work/bad-compose-monitoring.yml" >"$work/bad.out" 2>&1
    if ! grep -q 'prometheus: job worker must find every replica' "$work/bad.out"; then
        echo "the compose contract accepted a Prometheus that scrapes one worker replica"; rc=1
    fi
    if ! grep -q 'grafana: dashboard variable datasource (type prometheus) finds no' "$work/bad.out"; then
        echo "the compose contract accepted a Grafana without the dashboard's datasource"; rc=1
    fi
    if [ -d "$work/prom-root" ]; then
        rm -rf "$work/prom-bad" && cp -r "$work/prom-root" "$work/prom-bad" && rm -f "$work/prom-bad/etc/prometheus/alerts.yml"
        if promtool_available && promtool check config "$work/prom-bad/etc/prometheus/prometheus.yml" >/dev/null 2>&1; then
            echo "promtool check config accepted a config whose rule file is not there"; rc=1
        fi
    else
        echo "the compose Prometheus mirror ($work/prom-root) is missing"; rc=1
    fi
    local bad what
    for bad in field:"an unknown field (podMetricsEndpoints[].pathh)" \
        port:"a worker PodMonitor on port http (the worker's is metrics)" \
        drift:"a PrometheusRule whose groups differ from alerts.yml"; do
        what=${bad#*:}
        if "$PY" deploy/k8s/prometheus-operator/schema/validate.py "$work/bad-po-${bad%%:*}.yaml" "$work/base.yaml" \
            deploy/prometheus/alerts.yml >/dev/null 2>&1; then
            echo "the prometheus-operator check accepted $what"; rc=1
        fi
    done
    rm -rf "$work/deploy-copy" && cp -r deploy "$work/deploy-copy" \
        && sed -i 's/> 1000$/> 5000/' "$work/deploy-copy/prometheus/alerts.yml"
    if bash "$work/deploy-copy/k8s/prometheus-operator/render-prometheusrule.sh" --check >/dev/null 2>&1; then
        echo "render-prometheusrule.sh --check accepted a rendering older than alerts.yml"; rc=1
    fi
    if k8s_contract_on "$work/bad-pdb-blocking.yaml" "$work/production.yaml" >"$work/bad.out" 2>&1 \
        || ! grep -q 'metrics-tracker: PodDisruptionBudget metrics-tracker minAvailable 1 with 1 replicas' "$work/bad.out"; then
        echo "the k8s contract accepted a PodDisruptionBudget that refuses every eviction"; rc=1
    fi
    if k8s_contract_on "$work/bad-pdb-missing.yaml" "$work/production.yaml" >"$work/bad.out" 2>&1 \
        || ! grep -q 'dlq-admin: no PodDisruptionBudget selects its pods' "$work/bad.out"; then
        echo "the k8s contract accepted a Deployment without a PodDisruptionBudget"; rc=1
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
check "Dockerfile: cargo build names all five binaries, cache mounts, non-root runtime" dockerfile_builds_all
check ".dockerignore excludes target/ .git data/" dockerignore_excludes
check "docker-compose.yml: docker-compose config -q" compose_config
check "docker-compose.yml: services, env, ports, volumes, healthchecks, migrate, Prometheus, Grafana" compose_contract
check "compose Prometheus: promtool check config, in the container's file layout" compose_prometheus_config
check "k8s base: kubectl kustomize | kubernetes-validate --strict ($K8S_VERSION)" k8s_render_validate base deploy/k8s/base
check "k8s production overlay: kubectl kustomize | kubernetes-validate --strict ($K8S_VERSION)" \
    k8s_render_validate production deploy/k8s/overlays/production
check "k8s example Secret: kubernetes-validate --strict ($K8S_VERSION)" \
    k8s_validate deploy/k8s/examples/docflow-secrets.example.yaml
check "k8s base + production: probes, security, resources, env, PDBs, images" k8s_contract
check "env vars each manifest and compose service sets are read by that binary (its --help)" env_vars_read
check "KEDA ScaledObject: CRD schema, trigger metadata and references" keda_schema
check "KEDA scaling: waiting + running summed, age per priority, replicas by the HPA formula" keda_scaling
check "prometheus-operator: PodMonitors per Deployment, PrometheusRule = alerts.yml, CRD schema, promtool" \
    prometheus_operator
check "validators reject known-bad input" validators_reject_bad_input
check "prometheus alerts: promtool check rules" promtool_check
check "prometheus alerts: promtool test rules" promtool_test
check "grafana dashboard: JSON, datasources, targets, PromQL parses" grafana_dashboard

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
