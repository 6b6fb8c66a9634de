#!/usr/bin/env python3
"""Renders, lints and validates the Helm chart offline with Helm's own Go SDK
(the PyPI package helm-python-sdk, installed into .cache/venv by
scripts/install-test-tools). Used by tests/chart.rs, the box's RBAC and
scripts/generate.

  chart.py render   [--values JSON] [--namespace NS] [--release NAME]
  chart.py lint     [--values JSON]
  chart.py validate [--values JSON]

`render` validates the values against values.schema.json first, then prints
every manifest as a YAML document preceded by `# Source: <template>`.
`lint` prints each finding and fails on any warning or error (strict).
`validate` prints the schema error, if any, and fails on it.
"""

import argparse
import json
import os
import sys

import helm_python as helm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "charts", "mysql-aa-operator")
NAMESPACE = "mysql-aa-system"
RELEASE = "mysql-aa-operator"


def values_of(text):
    return json.loads(text) if text else {}


def render(values, namespace, release):
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    out = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        if not text or path.endswith("NOTES.txt"):
            continue
        for doc in text.split("\n---\n"):
            doc = doc.strip()
            if doc.startswith("---"):
                doc = doc[3:].strip()
            if doc and any(line.strip() and not line.lstrip().startswith("#") for line in doc.splitlines()):
                out.append(f"# Source: {path}\n{doc}\n")
    return "---\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["render", "lint", "validate"])
    p.add_argument("--values", default="", help="values as a JSON object")
    p.add_argument("--namespace", default=NAMESPACE)
    p.add_argument("--release", default=RELEASE)
    a = p.parse_args()
    values = values_of(a.values)
    try:
        if a.command == "render":
            sys.stdout.write(render(values, a.namespace, a.release))
        elif a.command == "validate":
            with helm.Chart.load(CHART) as chart:
                chart.validate_schema(chart.merge_values(values))
            print("valid")
        else:
            report = helm.lint(CHART, values, strict=True, namespace=a.namespace, kube_version="v1.32.0")
            findings = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
            for m in report.get("messages", []):
                print(f"severity={m.get('severity')} {m.get('path')}: {m.get('error')}")
            for e in report.get("errors", []) or []:
                print(f"error: {e}")
            print(f"linted {report.get('total_charts_linted')} chart(s): {len(findings)} warning(s) or error(s)")
            if findings or report.get("errors"):
                sys.exit(1)
    except helm.HelmError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
