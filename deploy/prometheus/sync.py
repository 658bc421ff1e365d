#!/usr/bin/env python3
"""Generate the Kubernetes PrometheusRule from the plain rules file (the source of truth).

    python3 deploy/prometheus/sync.py          # write deploy/k8s/base/app/prometheusrule.yaml
    python3 deploy/prometheus/sync.py --check  # exit 1 if it is out of date

tests/deploy/test_rules.py runs the --check form. Needs PyYAML only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "predlog.yml"
TARGET = HERE.parent / "k8s" / "base" / "app" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/rules/predlog.yml by deploy/prometheus/sync.py: edit the
# rules file and re-run the script (tests/deploy/test_rules.py fails when they differ).
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "predlog",
            # kube-prometheus-stack's default ruleSelector for a release named "prometheus"
            "labels": {"release": "prometheus", "app.kubernetes.io/name": "predlog"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=4096,
                              allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python3 deploy/prometheus/sync.py",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
