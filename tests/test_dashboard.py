"""deploy/grafana-dashboard.json queries only metrics the metrics observer exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from provisioner.metrics.observer import MetricsObserver

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created")}
WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def exprs(node) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets and template variable queries."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                found.append(value["query"])
            else:
                found += exprs(value)
    elif isinstance(node, list):
        for item in node:
            found += exprs(item)
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords, label matchers,
    grouping labels, ranges or strings."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)", r"\1", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        word = match.group()
        if rest.startswith("(") or word in WORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def exported() -> set[str]:
    observer = MetricsObserver("127.0.0.1", 0)
    names = set()
    for family in observer.registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.5, sum by (pool, le) (rate(a_bucket{pool=~"$pool"}[1h])))') == {"a_bucket"}
    assert metric_names("label_values(b, pool)") == {"b"}
    assert metric_names('sum by (pool) (increase(c_total{x="y"}[1h])) / d') == {"c_total", "d"}


def test_every_queried_metric_is_exported():
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set().union(*(metric_names(e) for e in exprs(dashboard)))
    assert queried, "no query found"
    assert queried <= exported(), f"not exported by the observer: {sorted(queried - exported())}"
    wanted = {"provisioner_queue_pending", "provisioner_pool_starting", "provisioner_pool_phones", "provisioner_pool_warm",
              "provisioner_launches_total", "provisioner_launches_ended_total", "provisioner_idle_outs_total",
              "provisioner_launch_to_claim_seconds_bucket"}
    assert wanted <= queried  # per pool: pending, starting, busy/idle, warm, launches, failures, launch-to-claim
