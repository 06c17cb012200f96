#!/usr/bin/env python3
"""Checks the worker ScaledObject's scaling arithmetic offline.

Reads the rendered KEDA kustomization and the rendered base, then for each
scenario below:

1. runs every prometheus trigger's query through `promtool test rules`
   against the scenario's series (as metrics-tracker exports them, from two
   replicas with the same values) and checks it returns what the scenario
   says the trigger should see: waiting + running jobs over the three
   priorities counted once, the oldest waiting job's age per priority, or
   nothing at all when the series are missing;
2. computes the replica count the HPA that KEDA creates would want from
   those values (each trigger an External metric of type AverageValue:
   ceil(value / threshold), unchanged within the HPA's 10% tolerance, the
   largest over the triggers, bounded by min and max; KEDA's fallback when
   a query returns nothing) and compares it with the scenario's.

It also checks that the work trigger's threshold (jobs per replica) is the
worker Deployment's WORKER_COUNT (jobs one replica runs at once).

usage: scaling.py KEDA_RENDER.yaml BASE_RENDER.yaml WORKDIR
Prints one line per scenario; exits 1 if any check failed.
"""

import math
import pathlib
import subprocess
import sys

import yaml

PRIORITIES = ("high", "normal", "low")
TRACKERS = ("metrics-tracker-a", "metrics-tracker-b")


def scenario(name, waiting, running, ages, current, replicas, old=None):
    """waiting/running: jobs per priority; ages: oldest waiting job's age
    per priority (seconds); current: replicas now; replicas: what the HPA
    should want; old: what the previous ScaledObject (three rabbitmq
    QueueLength triggers, targets 20/50/100, ready messages only) gave."""
    return {"name": name, "waiting": dict(zip(PRIORITIES, waiting)), "running": dict(zip(PRIORITIES, running)),
            "ages": dict(zip(PRIORITIES, ages)), "current": current, "replicas": replicas, "old": old}


SCENARIOS = [
    scenario("19 + 49 + 99 waiting: the sum scales, up to maxReplicaCount",
             (19, 49, 99), (0, 0, 0), (5, 20, 60), current=1, replicas=20, old=1),
    scenario("3 + 5 + 9 waiting: 17 jobs are 5 workers' worth",
             (3, 5, 9), (0, 0, 0), (2, 3, 4), current=1, replicas=5, old=1),
    scenario("busy: 6 replicas running 4 jobs each, nothing waiting, keep 6",
             (0, 0, 0), (8, 8, 8), (0, 0, 0), current=6, replicas=6, old=1),
    scenario("busy and a little more: 24 running + 1 waiting is within the 10% tolerance",
             (1, 0, 0), (8, 8, 8), (1, 0, 0), current=6, replicas=6),
    scenario("HIGH waits 150 s behind LOW work: the age trigger scales by itself",
             (2, 0, 0), (0, 0, 8), (150, 0, 0), current=2, replicas=5),
    scenario("LOW waits 1 hour: ceil(3600 / 600)",
             (0, 0, 1), (0, 0, 0), (0, 0, 3600), current=1, replicas=6),
    scenario("idle: minReplicaCount",
             (0, 0, 0), (0, 0, 0), (0, 0, 0), current=3, replicas=1),
    {"name": "metrics-tracker down: no series, every query empty, KEDA holds the fallback",
     "missing": True, "current": 3, "replicas": "fallback"},
]


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def series_of(sc):
    """Input series as metrics-tracker exports them, from each replica."""
    out = []
    if sc.get("missing"):
        return out
    for inst in TRACKERS:
        for p in PRIORITIES:
            for state in ("waiting", "running"):
                out.append((f'docflow_queue_jobs{{priority="{p}",state="{state}",instance="{inst}"}}', sc[state][p]))
            out.append((f'docflow_queue_oldest_job_age_seconds{{priority="{p}",instance="{inst}"}}', sc["ages"][p]))
    return out


def expected_value(trigger, sc):
    """What the trigger's query must return in this scenario (None: nothing)."""
    if sc.get("missing"):
        return None
    role = trigger["role"]
    if role == "work":
        return sum(sc["waiting"][p] + sc["running"][p] for p in PRIORITIES)
    return sc["ages"][role]


def hpa_replicas(values, triggers, current, lo, hi):
    """The HPA's desired replicas for AverageValue External metrics."""
    wanted = []
    for trig, value in zip(triggers, values):
        target = float(trig["metadata"]["threshold"])
        ratio = value / (target * current) if current > 0 else math.inf
        if current > 0 and abs(ratio - 1.0) <= 0.1:
            wanted.append(current)
        else:
            wanted.append(math.ceil(value / target))
    return max(lo, min(hi, max(wanted)))


def role_of(trig):
    q = trig["metadata"].get("query", "")
    if "docflow_queue_jobs" in q:
        return "work"
    for p in PRIORITIES:
        if "docflow_queue_oldest_job_age_seconds" in q and f'priority="{p}"' in q:
            return p
    return None


def main(argv):
    if len(argv) != 4:
        print("usage: scaling.py KEDA_RENDER.yaml BASE_RENDER.yaml WORKDIR", file=sys.stderr)
        return 2
    keda, base, work = load_all(argv[1]), load_all(argv[2]), pathlib.Path(argv[3])
    problems = []
    so = next((d for d in keda if d["kind"] == "ScaledObject" and d["metadata"]["name"] == "worker"), None)
    if so is None:
        print("no ScaledObject worker")
        return 1
    spec = so["spec"]
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    fallback = (spec.get("fallback") or {}).get("replicas")
    triggers = spec["triggers"]
    for t in triggers:
        if t["type"] != "prometheus":
            problems.append(f"trigger {t.get('name')}: type {t['type']}, this check knows prometheus triggers only")
        if t.get("metricType", "AverageValue") != "AverageValue":
            problems.append(f"trigger {t.get('name')}: metricType {t['metricType']}, the arithmetic here is AverageValue's")
        t["role"] = role_of(t)
        if t["role"] is None:
            problems.append(f"trigger {t.get('name')}: query reads neither docflow_queue_jobs nor one priority's age")
    roles = [t["role"] for t in triggers]
    for r in ("work",) + PRIORITIES:
        if roles.count(r) != 1:
            problems.append(f"want exactly one trigger for {r}, found {roles.count(r)}")
    if fallback is None:
        problems.append("no fallback: an unreadable metric would leave the replica count to chance")
    worker = next((d for d in base if d["kind"] == "Deployment" and d["metadata"]["name"] == "worker"), None)
    env = {e["name"]: e.get("value") for c in worker["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])} \
        if worker else {}
    work_trig = next((t for t in triggers if t["role"] == "work"), None)
    if work_trig and env.get("WORKER_COUNT") != work_trig["metadata"]["threshold"]:
        problems.append(f"work trigger threshold {work_trig['metadata']['threshold']!r} is not the worker's "
                        f"WORKER_COUNT {env.get('WORKER_COUNT')!r}: busy replicas would be scaled in or out")
    if problems:
        print("\n".join(problems))
        return 1

    # 1. Every query, every scenario, through promtool.
    (work / "empty-rules.yml").write_text("groups: []\n")
    tests = []
    for sc in SCENARIOS:
        exprs = []
        for t in triggers:
            v = expected_value(t, sc)
            exprs.append({"expr": t["metadata"]["query"], "eval_time": "2m",
                          "exp_samples": [] if v is None else [{"labels": "{}", "value": v}]})
        tests.append({"interval": "1m",
                      "input_series": [{"series": s, "values": f"{v}x5"} for s, v in series_of(sc)],
                      "promql_expr_test": exprs})
    test_file = work / "keda-scaling-test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["empty-rules.yml"], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    run = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True)
    if run.returncode != 0:
        print("promtool: the trigger queries do not return what the scenarios say they see")
        print(run.stdout[-3000:], run.stderr[-3000:])
        return 1

    # 2. Replicas from those values.
    failed = False
    for sc in SCENARIOS:
        values = [expected_value(t, sc) for t in triggers]
        if any(v is None for v in values):
            got = fallback
            want = fallback if sc["replicas"] == "fallback" else sc["replicas"]
            how = f"queries empty -> fallback {fallback}"
        else:
            got = hpa_replicas(values, triggers, sc["current"], lo, hi)
            want = sc["replicas"]
            how = ", ".join(f"{t['name']} {v:g}/{t['metadata']['threshold']}" for t, v in zip(triggers, values))
        ok = got == want
        failed |= not ok
        old = f"; before: {sc['old']}" if sc.get("old") is not None else ""
        print(f"{'ok  ' if ok else 'FAIL'} {sc['name']}: {got} replicas (want {want}; {how}{old})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
