"""What the offline checks of custom resources share (KEDA, prometheus-operator).

kubernetes-validate knows only built-in kinds, so each directory vendors the
subset of its operator's CRD schemas docflow uses (unknown fields rejected)
and checks its render against it with `schema_problems`, then for what a
schema cannot see.
"""

import json

import jsonschema
import yaml


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(doc):
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def ns(doc):
    return doc["metadata"].get("namespace", "default")


def schema_problems(docs, schema_path, kinds):
    """One line per document of another kind or per schema violation; the
    schema file holds one `$defs` entry per kind."""
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    problems = []
    for doc in docs:
        kind = doc.get("kind")
        if kind not in kinds:
            problems.append(f"{name_of(doc)}: unexpected kind (the schema covers {', '.join(kinds)})")
            continue
        validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", **schema})
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in err.absolute_path) or "(root)"
            problems.append(f"{name_of(doc)}: {path}: {err.message}")
    return problems


def report(problems):
    for p in problems:
        print(p)
    return 1 if problems else 0
