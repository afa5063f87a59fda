#!/usr/bin/python3
"""Checks the chart's Grafana dashboard: every panel query is valid PromQL (promtool parses it as
a recording rule, with Grafana's variables replaced) and, given a meshmq /metrics page, names only
metrics the broker exports.

usage: dashboard_check.py DASHBOARD.json [METRICS_PAGE.txt]
"""
import json
import re
import subprocess
import sys
import tempfile

GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": "default"}
# Series a histogram adds to its name.
SUFFIXES = ("_bucket", "_sum", "_count")


def queries(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def main():
    dashboard = json.load(open(sys.argv[1]))
    problems = []
    rules = []
    for i, (title, expr) in enumerate(queries(dashboard)):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:query{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        f.flush()
        check = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        if check.returncode != 0:
            problems.append("promtool rejects a dashboard query:\n" + check.stdout + check.stderr)
    if len(sys.argv) > 2:
        page = open(sys.argv[2]).read()
        exported = set(re.findall(r"^# TYPE (\w+) ", page, re.M))
        for title, expr in queries(dashboard):
            for name in set(re.findall(r"\bmeshmq_\w+", expr)):
                base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
                if name not in exported and base not in exported:
                    problems.append(f'panel "{title}": the broker exports no metric {name}')
    for p in problems:
        print("dashboard_check:", p, file=sys.stderr)
    print(f"dashboard_check: {len(rules)} queries, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
