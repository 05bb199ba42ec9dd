"""dashboards/: the committed files are the generator's output, follow Grafana's and Prometheus's
rules for such files, use only contract metrics, and the alert rules pass promtool's checks and
unit tests."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "dashboards"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smbwatch_dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class bodies run.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
OUTPUTS: dict[str, str] = gen.outputs()
DASHBOARD_FILES = ("grafana/smbwatch-overview.json", "grafana/smbwatch-sensor-health.json")
RULES = DASHBOARDS / "prometheus" / "smbwatch-rules.yml"
RULE_TESTS = DASHBOARDS / "prometheus" / "smbwatch-rules.test.yml"
GRAFANA_ALERTS = DASHBOARDS / "provisioning" / "alerting" / "smbwatch-alerts.yml"


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads((DASHBOARDS / name).read_text(encoding="utf-8")) for name in DASHBOARD_FILES]


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (panel for panel in dashboard["panels"] if panel["type"] != "row")


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'; scripts/install.sh installs it)")
    return promtool


# --- the committed files are exactly what the generator writes -----------------------------------


@pytest.mark.parametrize("relative", sorted(OUTPUTS))
def test_committed_file_equals_generator_output(relative: str) -> None:
    path = DASHBOARDS / relative
    assert path.exists(), f"dashboards/{relative} is missing: run python dashboards/generate.py"
    assert path.read_bytes() == OUTPUTS[relative].encode("utf-8"), (
        f"dashboards/{relative} differs from the generator's output: edit dashboards/generate.py and rerun it"
    )


def test_generate_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_no_file_outside_the_generator() -> None:
    """A hand-made file in the generated folders would escape every check below."""
    found = {
        str(path.relative_to(DASHBOARDS))
        for folder in ("grafana", "provisioning", "prometheus")
        for path in (DASHBOARDS / folder).rglob("*")
        if path.is_file()
    }
    assert found == set(OUTPUTS)


@pytest.mark.parametrize("relative", sorted(name for name in OUTPUTS if name.endswith(".yml")))
def test_yaml_reads_back_as_generated(relative: str) -> None:
    """The YAML emitter is the generator's own: a YAML parser must read back the document it was given."""
    documents = {
        "provisioning/datasources/smbwatch.yml": gen.datasource_provisioning(),
        "provisioning/dashboards/smbwatch.yml": gen.dashboard_provisioning(),
        "provisioning/alerting/smbwatch-alerts.yml": gen.grafana_alert_rules(
            {gen.OVERVIEW_UID: gen.overview(), gen.HEALTH_UID: gen.sensor_health()}
        ),
        "prometheus/smbwatch-rules.yml": gen.prometheus_rules(),
        "prometheus/smbwatch-rules.test.yml": gen.prometheus_rule_tests(),
    }
    assert yaml.safe_load((DASHBOARDS / relative).read_text(encoding="utf-8")) == documents[relative]


def test_yaml_emitter_quotes_what_yaml_would_misread() -> None:
    tricky = ["yes", "no", "on", "null", "~", "1e3", "0x10", "012", "1:30", "a: b", "# c", "- d", "'q'", 'x="y"', ""]
    document = {"values": tricky, "key with space": "it's", "n": 3, "f": 0.01, "t": True, "e": [], "m": {}}
    assert yaml.safe_load(gen.to_yaml(document)) == document


# --- Grafana dashboards -------------------------------------------------------------------------


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda d: d["uid"])
def test_dashboard_model(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 41
    assert dashboard["uid"] in (gen.OVERVIEW_UID, gen.HEALTH_UID)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["multi"] and variables[name]["includeAll"]
    assert '{job=~"$job"}' in variables["instance"]["definition"], "the sensor list follows the chosen jobs"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda d: d["uid"])
def test_every_panel_has_a_unit_and_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], f"{panel['title']}: no description"


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda d: d["uid"])
def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def _dashboard_queries() -> list[tuple[str, str]]:
    return [pair for dashboard in _dashboards() for pair in gen.dashboard_expressions(dashboard)]


QUERIES = _dashboard_queries()
QUERY_IDS = [name for name, _ in QUERIES]
# Queries Grafana runs once for the whole time range (tables): there `increase(...[$__range])` is the count.
INSTANT_QUERIES = {
    f"{dashboard['uid']}/{panel['title']}/{target['refId']}"
    for dashboard in _dashboards()
    for panel in _panels(dashboard)
    for target in panel["targets"]
    if target["instant"]
}


def _selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(metric, matchers) for each vector selector of a contract metric in the expression."""
    for match in re.finditer(r"(?<![\w:])([a-z_:][a-z0-9_:]*)(\{[^}]*\})?", expr):
        if match.group(1) in gen.METRICS:
            yield match.group(1), match.group(2) or ""


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=QUERY_IDS)
def test_dashboard_counters_use_rate_interval(name: str, expr: str) -> None:
    """A raw counter, or a rate over a fixed window, shows wrong values at some zoom level or scrape interval.
    An instant query (a table) may count over the whole time range instead: `increase(...[$__range])`."""
    for metric, matchers in _selectors(expr):
        if gen.METRICS[metric].kind != "counter":
            continue
        selector = rf"(?<![\w:]){re.escape(metric + matchers)}"
        wrapped = rf"\b(rate|increase)\({selector}\[\$__rate_interval\]\)"
        if name in INSTANT_QUERIES:
            wrapped = rf"\b((rate|increase)\({selector}\[\$__rate_interval\]\)|increase\({selector}\[\$__range\]\))"
        uses = len(re.findall(selector, expr))
        assert len(re.findall(wrapped, expr)) == uses, f"{name}: {metric} not in rate()/increase() on $__rate_interval"
    assert "$__range" not in expr or name in INSTANT_QUERIES, f"{name}: $__range in a range query"


def test_the_activity_row_shows_rpc_files_and_the_after_login_alerts() -> None:
    overview = next(d for d in _dashboards() if d["uid"] == gen.OVERVIEW_UID)
    rows = [panel["title"] for panel in overview["panels"] if panel["type"] == "row"]
    assert "Activity" in rows
    start = next(i for i, p in enumerate(overview["panels"]) if p["type"] == "row" and p["title"] == "Activity")
    end = next(i for i in range(start + 1, len(overview["panels"])) if overview["panels"][i]["type"] == "row")
    exprs = [t["expr"] for panel in overview["panels"][start + 1 : end] for t in panel["targets"]]
    read = set().union(*(metric_names(expr) for expr in exprs))
    assert {"smbwatch_rpc_calls_total", "smbwatch_rpc_binds_total", "smbwatch_file_actions_total"} <= read
    assert "sum by (interface) (rate(smbwatch_rpc_calls_total" in " ".join(exprs)
    assert "sum by (action) (rate(smbwatch_file_actions_total" in " ".join(exprs)
    activity = [expr for expr in exprs if "smbwatch_alerts_total" in expr]
    assert activity and all(f'kind=~"{"|".join(gen.ACTIVITY_ALERT_KINDS)}"' in expr for expr in activity)
    tables = [panel for panel in overview["panels"][start + 1 : end] if panel["type"] == "table"]
    for table in tables:  # a table of counts shows its counts
        excluded = table["transformations"][0]["options"]["excludeByName"]
        assert "Value" not in excluded, table["title"]


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=QUERY_IDS)
def test_dashboard_queries_follow_the_job_and_sensor_variables(name: str, expr: str) -> None:
    selectors = list(_selectors(expr))
    assert selectors, f"{name}: no contract metric"
    for metric, matchers in selectors:
        assert 'job=~"$job"' in matchers and 'instance=~"$instance"' in matchers, f"{name}: {metric}{matchers}"


# --- only contract metrics ----------------------------------------------------------------------

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads, found without trusting the generator's own builders."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue
        if match.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def test_metric_name_finder_finds_names() -> None:
    expr = 'sum by (job) (rate(a_total{x="b_total"}[5m])) / on (job) group_left (c) (d > 0) * 60 or vector(1)'
    assert metric_names(expr) == {"a_total", "d"}


def _every_expression() -> list[tuple[str, str]]:
    pairs = list(gen.expressions(grafana_variables=True))
    for dashboard in _dashboards():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                inner = re.fullmatch(r"label_values\((.*), *\w+\)", variable["definition"])
                assert inner, variable["definition"]
                pairs.append((f"{dashboard['uid']}/variable/{variable['name']}", inner.group(1)))
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    pairs += [(f"rules/{r['alert']}", r["expr"]) for group in rules["groups"] for r in group["rules"]]
    grafana = yaml.safe_load(GRAFANA_ALERTS.read_text(encoding="utf-8"))
    pairs += [
        (f"grafana/{rule['uid']}", query["model"]["expr"])
        for group in grafana["groups"]
        for rule in group["rules"]
        for query in rule["data"]
        if "expr" in query["model"]
    ]
    return pairs


def test_only_contract_metrics_are_used() -> None:
    used: set[str] = set()
    for name, expr in _every_expression():
        unknown = metric_names(expr) - set(gen.METRICS)
        assert not unknown, f"{name}: {sorted(unknown)} not in the metric contract"
        used |= metric_names(expr)
    # Every contract metric earns its place on a dashboard or in an alert.
    assert used == set(gen.METRICS)


def test_contract_names_follow_prometheus_conventions() -> None:
    for name, metric in gen.METRICS.items():
        assert metric.kind in ("counter", "gauge")
        assert name.endswith("_total") == (metric.kind == "counter"), name
        if metric.source == "smbwatch":
            assert name.startswith("smbwatch_"), name
        assert set(metric.values) <= set(metric.labels), name
        assert "job" not in metric.labels and "instance" not in metric.labels, "Prometheus adds these"


# --- alert rules --------------------------------------------------------------------------------

REQUIRED_ALERTS = {
    "SmbwatchSmb1TrafficSeen",
    "SmbwatchScan445",
    "SmbwatchMs17010Probe",
    "SmbwatchEternalBlue",
    "SmbwatchDoublePulsar",
    "SmbwatchBruteForce",
    "SmbwatchRemoteExecution",
    "SmbwatchAdminShareExecutable",
    "SmbwatchLateralMovement",
    "SmbwatchPrintDriverInstall",
    "SmbwatchRpcCoercion",
    "SmbwatchRpcBigEndian",
    "SmbwatchRansomwareActivity",
    "SmbwatchCaptureDrops",
    "SmbwatchSensorDown",
}


def _prometheus_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_prometheus_alerts_are_complete_and_documented() -> None:
    rules = {rule["alert"]: rule for rule in _prometheus_rules() if "alert" in rule}
    assert set(rules) == REQUIRED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key), f"{name}: no {key}"
    detector_kinds = {a.detector_kind for a in gen.alerts() if a.detector_kind}
    # smb1_negotiated is covered by the SMB1-use counter, which counts connections rather than alerts.
    assert detector_kinds == set(gen.ALERT_KINDS) - {"smb1_negotiated"}
    for alert in gen.alerts():
        if alert.detector_kind:
            critical = alert.detector_kind in gen.CRITICAL_KINDS
            assert rules[alert.name]["labels"]["severity"] == ("critical" if critical else "warning"), alert.name
            assert f'kind="{alert.detector_kind}"' in rules[alert.name]["expr"], alert.name
    assert "smbwatch_smb1_connections_total" in rules["SmbwatchSmb1TrafficSeen"]["expr"]
    assert 'job=~"smbwatch.*"' in rules["SmbwatchSensorDown"]["expr"]


def test_grafana_alert_rules_follow_the_provisioning_schema() -> None:
    document = yaml.safe_load(GRAFANA_ALERTS.read_text(encoding="utf-8"))
    datasources = yaml.safe_load((DASHBOARDS / "provisioning/datasources/smbwatch.yml").read_text(encoding="utf-8"))
    datasource_uid = datasources["datasources"][0]["uid"]
    assert document["apiVersion"] == 1
    uids = []
    names = set()
    for group in document["groups"]:
        assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
        for rule in group["rules"]:
            assert {"uid", "title", "condition", "data", "noDataState", "execErrState", "for"} <= set(rule)
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", rule["uid"]), rule["uid"]
            uids.append(rule["uid"])
            assert rule["noDataState"] in ("Alerting", "NoData", "OK", "KeepLast")
            assert rule["execErrState"] in ("Alerting", "Error", "OK", "KeepLast")
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            by_ref = {query["refId"]: query for query in rule["data"]}
            assert len(by_ref) == len(rule["data"]) and rule["condition"] in by_ref
            for query in rule["data"]:
                assert query["model"]["refId"] == query["refId"]
                assert {"from", "to"} <= set(query["relativeTimeRange"])
                if query["datasourceUid"] == "__expr__":
                    assert query["model"]["expression"] in by_ref, "an expression reads an existing query"
                else:
                    assert query["datasourceUid"] == datasource_uid
                    assert query["model"]["instant"] is True
            condition = by_ref[rule["condition"]]["model"]
            assert condition["type"] == "threshold"
            assert condition["conditions"][0]["evaluator"]["type"] in ("gt", "lt")
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            names.add(rule["labels"]["prometheus_alertname"])
    assert len(uids) == len(set(uids))
    assert names == REQUIRED_ALERTS


def test_grafana_and_prometheus_evaluate_the_same_expression() -> None:
    prometheus = {rule["alert"]: rule for rule in _prometheus_rules()}
    grafana = yaml.safe_load(GRAFANA_ALERTS.read_text(encoding="utf-8"))
    for rule in grafana["groups"][0]["rules"]:
        name = rule["labels"]["prometheus_alertname"]
        query = rule["data"][0]["model"]["expr"]
        threshold = rule["data"][2]["model"]["conditions"][0]["evaluator"]
        op = {"gt": ">", "lt": "<"}[threshold["type"]]
        expected = re.escape(query).join([r"^\(?", rf"\)? {re.escape(op)} {threshold['params'][0]:g}$"])
        assert re.match(expected, prometheus[name]["expr"]), name
        assert rule["for"].rstrip("sm") == "0" or rule["for"] == prometheus[name]["for"], name


def test_dashboard_links_and_provisioning_agree() -> None:
    provider = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/smbwatch.yml").read_text(encoding="utf-8"))
    assert provider["providers"][0]["options"]["path"] == gen.DASHBOARD_PATH
    grafana = yaml.safe_load(GRAFANA_ALERTS.read_text(encoding="utf-8"))
    panels = {(d["uid"], str(p["id"])) for d in _dashboards() for p in d["panels"]}
    for rule in grafana["groups"][0]["rules"]:
        link = (rule["annotations"]["__dashboardUid__"], rule["annotations"]["__panelId__"])
        assert link in panels, rule["uid"]


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_firing_and_silent_unit_tests() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    firing: set[str] = set()
    silent: set[str] = set()
    for test in document["tests"]:
        for case in test["alert_rule_test"]:
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    assert firing == REQUIRED_ALERTS
    assert silent == REQUIRED_ALERTS


def test_every_expression_parses(tmp_path: Path) -> None:
    """promtool has no parse command for a bare expression; as recording rules, `check rules` parses them."""
    promtool = _promtool()
    pairs = gen.expressions()
    assert len(pairs) > 40
    rules = {
        "groups": [
            {
                "name": "parse",
                "rules": [{"record": f"smbwatch_parse_check_{i}", "expr": expr} for i, (_, expr) in enumerate(pairs)],
            }
        ]
    }
    path = tmp_path / "expressions.yml"
    path.write_text(gen.to_yaml(rules), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        # Name the expressions promtool rejected instead of only their index.
        failed = {int(i) for i in re.findall(r"smbwatch_parse_check_(\d+)", result.stdout + result.stderr)}
        pytest.fail(f"{[pairs[i] for i in sorted(failed)]}\n{result.stdout}{result.stderr}")
    assert "SUCCESS" in result.stdout


def test_expressions_keep_no_grafana_variable() -> None:
    for name, expr in gen.expressions():
        assert "$" not in expr, name


# --- the README tells users what each alert means -----------------------------------------------


def test_readme_covers_paths_and_every_alert() -> None:
    readme = (DASHBOARDS / "README.md").read_text(encoding="utf-8")
    for needle in (
        gen.DASHBOARD_PATH,
        gen.DATASOURCE_UID,
        "provisioning/datasources",
        "provisioning/dashboards",
        "provisioning/alerting",
        "promtool test rules",
    ):
        assert needle in readme, needle
    for alert in gen.alerts():
        assert alert.name in readme, alert.name
        assert alert.title in readme, alert.title
