"""Every environment variable a manifest gives a process is one that process reads.

    python deploy_env_read.py HELP_DIR RENDER.yaml... [--compose COMPOSE.yaml] [--sources FILE...]

HELP_DIR holds `<binary>.help`, each binary's `--help` output: clap prints
`[env: NAME=...]` for every setting, so the help is the binary's own list.
A variable no setting names is silently ignored by the binary, which is how
`RABBITMQ_MAX_RETRIES` once sat on four Deployments and worked on one.

Checked: each container's `env`; the keys of every ConfigMap and Secret it
takes through `envFrom`, from the render and from --sources (their data keys
and their commented-out `# KEY: value` lines, which an operator uncomments as
they are; a Secret made out of band is in the sources only); and each
docker-compose service's environment. Read by libraries, not by clap:
OTEL_RESOURCE_ATTRIBUTES (the OpenTelemetry SDK, in every traced service),
the blob store providers' AWS_*/AZURE_*/GOOGLE_* (object_store, in binaries
that take BLOB_STORE_URL), and a variable used only as `$(NAME)` in another.
"""

import argparse
import os
import re
import sys

import yaml

LIBRARY_PREFIXES_BLOB = ("AWS_", "AZURE_", "GOOGLE_")
COMMENTED_KEY = re.compile(r"^\s*#\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+):\s")


def read_helps(help_dir):
    helps = {}
    for name in os.listdir(help_dir):
        if name.endswith(".help"):
            text = open(os.path.join(help_dir, name)).read()
            helps[name[: -len(".help")]] = set(re.findall(r"\[env: ([A-Z][A-Z0-9_]*)", text))
    return helps


def allowed(binary_env, name, others):
    if name in binary_env:
        return True
    if name == "OTEL_RESOURCE_ATTRIBUTES" and "OTEL_SERVICE_NAME" in binary_env:
        return True
    if name.startswith(LIBRARY_PREFIXES_BLOB) and "BLOB_STORE_URL" in binary_env:
        return True
    return any(f"$({name})" in str(v) for v in others)


def source_keys(sources):
    """{(kind, name): keys} of each ConfigMap and Secret in the source files:
    its data keys and its commented `# KEY: value` lines. (A Secret created
    out of band, like the example ones, is in no render: its keys come from
    here alone.)"""
    out = {}
    for path in sources:
        for chunk in open(path).read().split("\n---"):
            doc = yaml.safe_load(chunk)
            if not doc or doc.get("kind") not in ("ConfigMap", "Secret"):
                continue
            keys = {m.group(1) for line in chunk.splitlines() if (m := COMMENTED_KEY.match(line))}
            keys |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
            out.setdefault((doc["kind"], doc["metadata"]["name"]), set()).update(keys)
    return out


def check_render(path, helps, from_sources, problems):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    maps = {}
    for d in docs:
        if d["kind"] in ("ConfigMap", "Secret"):
            keys = set(d.get("data") or {}) | set(d.get("stringData") or {})
            maps[(d["kind"], d["metadata"]["name"])] = keys
    for key, keys in from_sources.items():
        maps.setdefault(key, set()).update(keys)
    for d in docs:
        if d["kind"] not in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            continue
        spec = d["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{os.path.basename(path)}: {d['kind']} {d['metadata']['name']}, container {c['name']}"
            command = (c.get("command") or [""])[0]
            binary = os.path.basename(command)
            if binary not in helps:
                problems.append(f"{where}: runs {command!r}, not one of the binaries {sorted(helps)}")
                continue
            given = {e["name"]: e.get("value") for e in c.get("env", [])}
            sources = {n: "env" for n in given}
            for ef in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    ref = ef.get(field)
                    if ref:
                        for k in maps.get((kind, ref["name"]), set()):
                            sources.setdefault(k, f"{kind} {ref['name']}")
            for name, source in sorted(sources.items()):
                if not allowed(helps[binary], name, given.values()):
                    problems.append(f"{where}: {name} (from {source}) is read by no setting of {binary}")


def check_compose(path, helps, problems):
    cfg = yaml.safe_load(open(path))
    for name, svc in (cfg.get("services") or {}).items():
        entry = svc.get("entrypoint") or svc.get("command") or []
        if isinstance(entry, str):
            entry = entry.split()
        if entry and str(entry[0]).startswith("/usr/local/bin/"):
            binary = os.path.basename(entry[0])
        else:
            binary = ((svc.get("build") or {}).get("args") or {}).get("SERVICE")
        if not binary:
            continue  # an image of its own (postgres, rabbitmq, jaeger, ...)
        if binary not in helps:
            problems.append(f"compose {name}: runs {binary}, not one of the binaries {sorted(helps)}")
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(x.split("=", 1) for x in env)
        for var in sorted(env):
            if not allowed(helps[binary], var, env.values()):
                problems.append(f"compose {name}: {var} is read by no setting of {binary}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("help_dir")
    parser.add_argument("renders", nargs="*")
    parser.add_argument("--compose")
    parser.add_argument("--sources", nargs="*", default=[])
    args = parser.parse_args(argv)
    help_dir, renders, compose, sources = args.help_dir, args.renders, args.compose, args.sources
    helps = read_helps(help_dir)
    if not helps:
        print(f"no <binary>.help files in {help_dir}")
        return 1
    empty = [b for b, env in helps.items() if not env]
    if empty:
        print(f"no [env: ...] in the --help of {empty}: clap's env feature off, or the help format changed")
        return 1
    problems = []
    from_sources = source_keys(sources)
    for path in renders:
        check_render(path, helps, from_sources, problems)
    if compose:
        check_compose(compose, helps, problems)
    print("\n".join(problems))
    checked = ", ".join(f"{b} {len(e)}" for b, e in sorted(helps.items()))
    print(f"settings per binary: {checked}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
