#!/usr/bin/env python3
"""Checks docflow's prometheus-operator resources offline.

kubernetes-validate knows only built-in kinds, so the rendered
deploy/k8s/prometheus-operator kustomization is checked here against
monitoring-v1.schema.json (the subset of the operator's CRD schemas docflow
uses, unknown fields rejected), then for what a schema cannot see:

- PodMonitors: every Deployment of the base render is selected by exactly
  one PodMonitor of its namespace, and every PodMonitor selects one; each
  endpoint names a container port the pods have, the port of their
  prometheus.io/port annotation, and scrapes /metrics; a jobLabel is a label
  the pods carry;
- PrometheusRule: exactly one, its group names unique, and its spec.groups
  equal to deploy/prometheus/alerts.yml's groups once both are parsed (the
  one source of the rules; render-prometheusrule.sh copies them).

usage: validate.py RENDER.yaml BASE_RENDER.yaml ALERTS.yml [RULES_OUT.yml]
With RULES_OUT, writes the PrometheusRule's spec as a rule file, for
`promtool check rules`. Prints one line per problem and exits 1 if there is
any; exits 0 silently otherwise.
"""

import pathlib
import sys

import yaml

# deploy/k8s/crd_subset.py, shared with the other custom-resource check.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from crd_subset import load_all, name_of, ns, report, schema_problems  # noqa: E402

SCHEMA_PATH = pathlib.Path(__file__).with_name("monitoring-v1.schema.json")
KINDS = ("PodMonitor", "PrometheusRule")


def selects(selector, labels):
    """Whether a LabelSelector selects these labels (an empty one selects nothing here)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__.split("usage: ")[1].splitlines()[0], file=sys.stderr)
        return 2
    docs, base_docs = load_all(argv[1]), load_all(argv[2])
    with open(argv[3]) as f:
        alerts = yaml.safe_load(f)
    problems = []

    if not docs:
        problems.append("no prometheus-operator resources found")
    # 1. schema
    problems += schema_problems(docs, SCHEMA_PATH, KINDS)
    if problems:
        return report(problems)

    # 2. PodMonitors against the Deployments they scrape
    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    deployments = [d for d in base_docs if d.get("kind") == "Deployment"]
    if not deployments:
        problems.append("no Deployment in the base render")
    covered = {name_of(m): 0 for m in monitors}
    for dep in deployments:
        tpl = dep["spec"]["template"]
        labels = tpl["metadata"].get("labels", {})
        mine = [m for m in monitors if ns(m) == ns(dep) and selects(m["spec"]["selector"], labels)]
        where = f"Deployment/{dep['metadata']['name']}"
        if len(mine) != 1:
            problems.append(f"{where}: selected by {len(mine)} PodMonitors ({sorted(map(name_of, mine))}), want 1")
            continue
        mon = mine[0]
        covered[name_of(mon)] += 1
        named = {p["name"]: p["containerPort"] for c in tpl["spec"]["containers"] for p in c.get("ports", []) if p.get("name")}
        annotated = (tpl["metadata"].get("annotations") or {}).get("prometheus.io/port")
        for i, ep in enumerate(mon["spec"]["podMetricsEndpoints"]):
            at = f"{name_of(mon)}: podMetricsEndpoints[{i}]"
            if ep["port"] not in named:
                problems.append(f"{at}: port {ep['port']!r} is not a named container port of {where} ({sorted(named)})")
            elif annotated and str(named[ep["port"]]) != annotated:
                problems.append(f"{at}: port {ep['port']} is {named[ep['port']]}, the pods' prometheus.io/port is {annotated}")
            if ep.get("path", "/metrics") != "/metrics":
                problems.append(f"{at}: path {ep['path']!r}, the services serve /metrics")
        job = mon["spec"].get("jobLabel")
        if job and job not in labels:
            problems.append(f"{name_of(mon)}: jobLabel {job!r} is not a label of {where}'s pods")
    for mon, n in covered.items():
        if n == 0:
            problems.append(f"{mon}: selects no Deployment's pods")

    # 3. The PrometheusRule is alerts.yml
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    if len(rules) != 1:
        problems.append(f"{len(rules)} PrometheusRules, want 1 (deploy/prometheus/alerts.yml)")
    for pr in rules:
        groups = pr["spec"]["groups"]
        names = [g["name"] for g in groups]
        for n in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{name_of(pr)}: group {n!r} twice (the CRD keys groups by name)")
        want = alerts.get("groups") if isinstance(alerts, dict) else None
        if groups != want:
            have_n = {g["name"]: g for g in groups}
            want_n = {g["name"]: g for g in want or []}
            differ = sorted(n for n in set(have_n) | set(want_n) if have_n.get(n) != want_n.get(n))
            problems.append(f"{name_of(pr)}: spec.groups differ from {argv[3]}'s groups (groups {differ}): "
                            "run deploy/k8s/prometheus-operator/render-prometheusrule.sh")
        if len(argv) == 5:
            with open(argv[4], "w") as f:
                yaml.safe_dump({"groups": groups}, f, sort_keys=False)

    return report(problems)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
