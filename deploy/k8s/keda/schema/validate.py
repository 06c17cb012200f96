#!/usr/bin/env python3
"""Checks docflow's KEDA resources offline.

kubernetes-validate knows only built-in kinds (custom resources merely warn),
so the rendered KEDA kustomization is checked here against
keda-v1alpha1.schema.json (the subset of KEDA's CRD schema docflow uses, with
unknown fields rejected), then for what a schema cannot see:

- rabbitmq triggers: known metadata keys, mode QueueLength or MessageRate, a
  numeric target, no credentials inline (host comes from a TriggerAuthentication
  or hostFromEnv), and together they cover jobs.high, jobs.normal and jobs.low;
- prometheus triggers: known metadata keys, an http(s) serverAddress, a query,
  a positive numeric threshold, and ignoreNullValues "false" (a lost target
  must be an error that brings the fallback, not a zero that scales in);
- every trigger has a name, unique within its ScaledObject;
- min <= max replicas;
- every authenticationRef names a TriggerAuthentication of the same namespace;
- the scale target is a Deployment of the same name and namespace in the base
  render, and the Secret keys the TriggerAuthentication reads exist in the
  example Secret.

usage: validate.py KEDA_RENDER.yaml BASE_RENDER.yaml EXAMPLE_SECRET.yaml
Prints one line per problem and exits 1 if there is any; exits 0 silently otherwise.
"""

import pathlib
import sys

import yaml

# deploy/k8s/crd_subset.py, shared with the other custom-resource check.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from crd_subset import load_all, name_of, ns, report, schema_problems  # noqa: E402

SCHEMA_PATH = pathlib.Path(__file__).with_name("keda-v1alpha1.schema.json")

RABBITMQ_KEYS = {
    "host", "hostFromEnv", "protocol", "queueName", "mode", "value", "activationValue",
    "vhostName", "useRegex", "excludeUnacknowledged", "pageSize", "operation", "timeout", "unsafeSsl",
}
PRIORITY_QUEUES = {"jobs.high", "jobs.normal", "jobs.low"}
PROMETHEUS_KEYS = {
    "serverAddress", "query", "threshold", "activationThreshold", "ignoreNullValues", "namespace",
    "customHeaders", "queryParameters", "unsafeSsl", "authModes", "timeout",
}


def positive_number(text):
    try:
        return float(text) > 0
    except (TypeError, ValueError):
        return False


def main(argv):
    if len(argv) != 4:
        print("usage: validate.py KEDA_RENDER.yaml BASE_RENDER.yaml EXAMPLE_SECRET.yaml", file=sys.stderr)
        return 2
    keda_docs, base_docs, secret_docs = (load_all(p) for p in argv[1:])
    problems = []

    if not keda_docs:
        problems.append("no KEDA resources found")

    # 1. schema
    problems += schema_problems(keda_docs, SCHEMA_PATH, ("ScaledObject", "TriggerAuthentication"))
    if problems:
        return report(problems)

    # 2. semantics and cross-references

    auths = {(ns(d), d["metadata"]["name"]) for d in keda_docs if d["kind"] == "TriggerAuthentication"}
    deployments = {(ns(d), d["metadata"]["name"]) for d in base_docs if d.get("kind") == "Deployment"}
    secrets = {}
    for d in secret_docs:
        if d.get("kind") == "Secret":
            keys = set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
            secrets[d["metadata"]["name"]] = keys

    scaled = [d for d in keda_docs if d["kind"] == "ScaledObject"]
    if not scaled:
        problems.append("no ScaledObject found")
    for so in scaled:
        spec, where = so["spec"], name_of(so)
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if lo > hi:
            problems.append(f"{where}: minReplicaCount {lo} > maxReplicaCount {hi}")
        target = spec["scaleTargetRef"]
        if target.get("kind", "Deployment") != "Deployment" or (ns(so), target["name"]) not in deployments:
            problems.append(f"{where}: scale target Deployment {ns(so)}/{target['name']} is not in the base render")
        queues = set()
        names = [t.get("name") for t in spec["triggers"]]
        for i, trig in enumerate(spec["triggers"]):
            at = f"{where}: triggers[{i}]"
            if not trig.get("name"):
                problems.append(f"{at}: no name (the HPA metric and any scalingModifiers formula refer to it)")
            elif names.count(trig["name"]) > 1:
                problems.append(f"{at}: name {trig['name']!r} used twice")
            ref = trig.get("authenticationRef")
            if ref and ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication" \
                    and (ns(so), ref["name"]) not in auths:
                problems.append(f"{at}: TriggerAuthentication {ns(so)}/{ref['name']} not defined")
            if trig["type"] == "prometheus":
                md = trig["metadata"]
                for key in sorted(set(md) - PROMETHEUS_KEYS):
                    problems.append(f"{at}: unknown prometheus metadata key {key!r}")
                if not str(md.get("serverAddress", "")).startswith(("http://", "https://")):
                    problems.append(f"{at}: serverAddress must be an http(s) URL")
                if not md.get("query", "").strip():
                    problems.append(f"{at}: query missing")
                if not positive_number(md.get("threshold")):
                    problems.append(f"{at}: threshold must be a positive number, not {md.get('threshold')!r}")
                if md.get("ignoreNullValues") != "false":
                    problems.append(f"{at}: ignoreNullValues must be \"false\" (an empty result must not read as 0)")
                continue
            if trig["type"] != "rabbitmq":
                problems.append(f"{at}: trigger type {trig['type']!r} is not one this check knows")
                continue
            md = trig["metadata"]
            for key in sorted(set(md) - RABBITMQ_KEYS):
                problems.append(f"{at}: unknown rabbitmq metadata key {key!r}")
            if md.get("mode") not in ("QueueLength", "MessageRate"):
                problems.append(f"{at}: mode must be QueueLength or MessageRate, not {md.get('mode')!r}")
            try:
                if float(md.get("value", "")) <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{at}: value must be a positive number, not {md.get('value')!r}")
            if md.get("protocol", "auto") not in ("amqp", "http", "auto"):
                problems.append(f"{at}: protocol must be amqp, http or auto")
            if "host" in md:
                problems.append(f"{at}: host given inline (it carries credentials): use a TriggerAuthentication")
            elif not ref and "hostFromEnv" not in md:
                problems.append(f"{at}: no host: needs authenticationRef or hostFromEnv")
            if "queueName" not in md:
                problems.append(f"{at}: queueName missing")
            queues.add(md.get("queueName"))
        missing = PRIORITY_QUEUES - queues
        if any(t["type"] == "rabbitmq" for t in spec["triggers"]) and missing:
            problems.append(f"{where}: no trigger for {', '.join(sorted(missing))}")

    for ta in (d for d in keda_docs if d["kind"] == "TriggerAuthentication"):
        for ref in ta["spec"].get("secretTargetRef", []):
            keys = secrets.get(ref["name"])
            if keys is None:
                problems.append(f"{name_of(ta)}: Secret {ref['name']!r} not in the example Secret manifest")
            elif ref["key"] not in keys:
                problems.append(f"{name_of(ta)}: Secret {ref['name']!r} has no key {ref['key']!r}")

    return report(problems)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
