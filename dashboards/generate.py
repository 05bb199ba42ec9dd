#!/usr/bin/env python3
"""Generates smbwatch's Grafana dashboards, Grafana provisioning files and Prometheus rules.

Every PromQL expression that ships in dashboards/ is written here, once, against the metric
contract in `METRICS`; the files under dashboards/ are this script's output and are never edited
by hand. `python dashboards/generate.py` rewrites them, `--check` fails when a committed file
differs from what would be written (the test suite runs the same comparison).

Plain Python and the standard library only: the output is JSON and a small, regular subset of
YAML, so a dashboard SDK or a YAML library would add a dependency without removing much code.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# The metric contract. The exporter is written against the same table: its test compares the
# names, types and label names it registers with this constant, so a rename breaks a test
# instead of silently emptying a dashboard panel.
# ---------------------------------------------------------------------------------------------

DIALECTS = ("smb1", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "2.???", "none", "unknown")
HOST_DIALECTS = ("smb1", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1", "unknown")
AUTH_KINDS = ("ntlmv1", "ntlmv2", "lm", "plaintext", "kerberos", "anonymous", "guest", "unknown")
# Authentication that hands an eavesdropper or a relay something useful, or proves nothing about the user.
WEAK_AUTH_KINDS = ("ntlmv1", "lm", "plaintext", "guest", "anonymous")
# What happens after the login (monitor/detect/activity.py ACTIVITY_ALERT_KINDS).
ACTIVITY_ALERT_KINDS = (
    "remote_execution",
    "admin_share_executable",
    "lateral_movement",
    "print_driver_install",
    "rpc_coercion",
    "rpc_big_endian",
    "ransomware_activity",
)
ALERT_KINDS = (
    "smb1_negotiated",
    "scan_445",
    "ms17_010_probe",
    "eternalblue",
    "doublepulsar",
    "bruteforce",
    *ACTIVITY_ALERT_KINDS,
)
# The kinds whose alert rules are critical: exploitation, an implant, or an attack under way.
CRITICAL_KINDS = ("eternalblue", "doublepulsar", "lateral_movement", "rpc_big_endian", "ransomware_activity")
CRITICAL_KINDS_REGEX = f"^({'|'.join(CRITICAL_KINDS)})$"
RPC_RESULT_CLASSES = ("ok", "error", "fault", "no_answer")
RPC_BIND_RESULTS = ("accepted", "user_rejection", "provider_rejection", "rejected", "no_answer", "other")
FILE_ACTIONS = ("open", "create", "overwrite", "read", "write", "rename", "delete")
RPC_BIND_AUTH_KINDS = ("ntlmv1", "ntlmv2", "lm", "plaintext", "kerberos", "anonymous", "guest", "unknown", "none")


@dataclass(frozen=True)
class Metric:
    """One series family of the contract: its type, label names, and the label values it is pre-set for.

    `values` lists, per label, the values every counter is initialised to 0 for; a label that is
    absent from it is opaque (any bounded value). `source` says who exports it: smbwatch itself,
    prometheus_client's process collector, or Prometheus (for `up`).
    """

    kind: str
    labels: tuple[str, ...] = ()
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "smbwatch"
    opt_in: bool = False


METRICS: dict[str, Metric] = {
    "smbwatch_build_info": Metric("gauge", ("version", "python")),
    "smbwatch_capture_packets_total": Metric("counter", ("interface",)),
    "smbwatch_capture_bytes_total": Metric("counter", ("interface",)),
    "smbwatch_capture_kernel_packets_total": Metric("counter", ("interface",)),
    "smbwatch_capture_kernel_drops_total": Metric("counter", ("interface",)),
    "smbwatch_smb_messages_total": Metric(
        "counter", ("protocol",), {"protocol": ("smb1", "smb2", "encrypted", "compressed")}
    ),
    "smbwatch_smb1_connections_total": Metric("counter"),
    "smbwatch_negotiations_total": Metric("counter", ("dialect",), {"dialect": DIALECTS}),
    "smbwatch_smb1_offers_total": Metric("counter", ("outcome",), {"outcome": ("smb1", "upgraded", "refused")}),
    "smbwatch_session_setups_total": Metric(
        "counter",
        ("auth", "result"),
        {"auth": AUTH_KINDS, "result": ("success", "logon_failure", "other_failure")},
    ),
    "smbwatch_tree_connects_total": Metric("counter", ("result",), {"result": ("success", "failure")}),
    "smbwatch_alerts_total": Metric("counter", ("kind",), {"kind": ALERT_KINDS}),
    "smbwatch_anomalies_total": Metric("counter", ("kind",)),
    "smbwatch_reassembly_gaps_total": Metric("counter"),
    "smbwatch_reassembly_gap_bytes_total": Metric("counter"),
    "smbwatch_flows_active": Metric("gauge"),
    "smbwatch_flows_opened_total": Metric("counter"),
    "smbwatch_flows_evicted_total": Metric("counter", ("reason",)),
    "smbwatch_scan_sources_evicted_total": Metric("counter", ("table",), {"table": ("probation", "tracked")}),
    "smbwatch_connections_total": Metric("counter", ("transport",), {"transport": ("tcp445", "netbios139")}),
    # interface and operation: names from the generated DCE/RPC table, or "other" (pre-set: other, other).
    "smbwatch_rpc_calls_total": Metric(
        "counter", ("interface", "operation", "result_class"), {"result_class": RPC_RESULT_CLASSES}
    ),
    "smbwatch_rpc_binds_total": Metric("counter", ("interface", "result"), {"result": RPC_BIND_RESULTS}),
    "smbwatch_rpc_bind_auth_total": Metric("counter", ("auth",), {"auth": RPC_BIND_AUTH_KINDS}),
    "smbwatch_file_actions_total": Metric("counter", ("action",), {"action": FILE_ACTIONS}),
    "smbwatch_hosts": Metric(
        "gauge",
        ("role", "highest_dialect", "smb1"),
        {"role": ("client", "server"), "highest_dialect": HOST_DIALECTS, "smb1": ("true", "false")},
    ),
    "smbwatch_last_packet_timestamp_seconds": Metric("gauge"),
    "smbwatch_smb1_host_info": Metric("gauge", ("ip", "role"), {"role": ("client", "server")}, opt_in=True),
    "smbwatch_smb1_host_series_dropped": Metric("gauge", opt_in=True),
    "process_resident_memory_bytes": Metric("gauge", source="process"),
    "process_cpu_seconds_total": Metric("counter", source="process"),
    "process_start_time_seconds": Metric("gauge", source="process"),
    "up": Metric("gauge", source="prometheus"),
}

# ---------------------------------------------------------------------------------------------
# Names users configure against. Changing one breaks existing installations: treat as contract.
# ---------------------------------------------------------------------------------------------

DATASOURCE_UID = "smbwatch-prometheus"
DATASOURCE_NAME = "smbwatch Prometheus"
FOLDER = "smbwatch"
OVERVIEW_UID = "smbwatch-overview"
HEALTH_UID = "smbwatch-sensor-health"
# Where the dashboard provider looks for the JSON files; the README tells users to copy them there.
DASHBOARD_PATH = "/var/lib/grafana/dashboards/smbwatch"
# The Prometheus job name "sensor down" watches: any job whose name starts with "smbwatch".
SENSOR_JOB_REGEX = "smbwatch.*"
DROP_RATIO_THRESHOLD = 0.01
# The window of the fixed-range alert expressions: long enough for two scrapes at a 1m interval.
ALERT_WINDOW = "5m"
SCHEMA_VERSION = 41

GENERATED_NOTE = "Generated by dashboards/generate.py: edit the generator, not this file."

# ---------------------------------------------------------------------------------------------
# PromQL builders. They refuse metric names outside the contract.
# ---------------------------------------------------------------------------------------------

DASHBOARD_MATCHERS = {"job": "=~$job", "instance": "=~$instance"}


def metric(name: str) -> str:
    """A contract metric name; anything else is a bug in this file."""
    if name not in METRICS:
        raise KeyError(f"{name} is not in the metric contract (METRICS)")
    return name


def selector(name: str, matchers: Mapping[str, str] | None = None, *, dashboard: bool = True) -> str:
    """`name{...}`, dashboard variables first; a value starting with `=~`, `!=` or `!~` keeps that operator."""
    parts = []
    combined = {**(DASHBOARD_MATCHERS if dashboard else {}), **(matchers or {})}
    for label, value in combined.items():
        op = "="
        for candidate in ("=~", "!=", "!~"):
            if value.startswith(candidate):
                op, value = candidate, value[len(candidate) :]
        parts.append(f'{label}{op}"{value}"')
    return f"{metric(name)}{{{', '.join(parts)}}}" if parts else metric(name)


def aggregate(labels: tuple[str, ...]) -> str:
    """`sum by (a, b) ` or, without labels, `sum`: the aggregation every panel query starts with."""
    return f"sum by ({', '.join(labels)}) " if labels else "sum"


def counter_rate(
    name: str, labels: tuple[str, ...] = (), matchers: Mapping[str, str] | None = None, *, per_minute: bool = False
) -> str:
    """Summed rate of a contract counter over Grafana's `$__rate_interval`.

    Rare events (alerts, SMB1 connections, logons) read better per minute than as 0.0167/s.
    """
    expr = f"{aggregate(labels)}(rate({selector(name, matchers)}[$__rate_interval]))"
    return f"{expr} * 60" if per_minute else expr


def gauge_sum(name: str, labels: tuple[str, ...] = (), matchers: Mapping[str, str] | None = None) -> str:
    return f"{aggregate(labels)}({selector(name, matchers)})"


# ---------------------------------------------------------------------------------------------
# Dashboard model (Grafana dashboard JSON, schemaVersion 41).
# ---------------------------------------------------------------------------------------------

PROM_DS = {"type": "prometheus", "uid": "${datasource}"}


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass
class Panel:
    """What differs between panels; `render` fills in the Grafana boilerplate."""

    kind: str  # timeseries | stat | bargauge | table
    title: str
    description: str
    unit: str
    targets: list[Target]
    width: int = 12
    height: int = 8
    thresholds: list[tuple[str, float | None]] | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)
    stack: bool = False
    bars: bool = False
    mappings: list[dict[str, Any]] = field(default_factory=list)
    text_mode: str = "auto"
    min_zero: bool = True
    # A table of counts keeps the Value column (as `value_name`); the info table shows labels only.
    value_name: str = ""


@dataclass
class Row:
    title: str
    panels: list[Panel]


def red_when_positive() -> list[tuple[str, float | None]]:
    # Any non-zero value must stand out: rates of rare events are tiny fractions, hence the tiny step.
    return [("green", None), ("red", 1e-9)]


def color_override(matcher_id: str, pattern: str, color: str) -> dict[str, Any]:
    return {
        "matcher": {"id": matcher_id, "options": pattern},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
    }


def render_target(target: Target, ref_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "datasource": PROM_DS,
        "editorMode": "code",
        "expr": target.expr,
        "legendFormat": target.legend or "__auto",
        "range": not (target.instant or target.table),
        "instant": target.instant or target.table,
        "refId": ref_id,
    }
    if target.table:
        out["format"] = "table"
    return out


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "color": {"mode": "thresholds" if panel.kind in ("stat", "bargauge") else "palette-classic"},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in (panel.thresholds or [("green", None)])],
        },
        "mappings": panel.mappings,
    }
    if panel.min_zero and panel.kind in ("timeseries", "bargauge", "stat"):
        defaults["min"] = 0
    options: dict[str, Any]
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "lineWidth": 1,
            "fillOpacity": 80 if panel.bars else 15,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
            "axisSoftMin": 0,
        }
        options = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["max", "lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": reduce,
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": panel.text_mode,
            "wideLayout": True,
            "showPercentChange": False,
        }
    elif panel.kind == "bargauge":
        options = {
            "reduceOptions": reduce,
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        }
    elif panel.kind == "table":
        options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    else:
        raise ValueError(panel.kind)
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": PROM_DS,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "options": options,
        "targets": [render_target(t, chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
    }
    if panel.kind == "table" and panel.value_name:
        out["transformations"] = [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "__name__": True},
                    "renameByName": {"Value": panel.value_name},
                },
            }
        ]
    elif panel.kind == "table":
        # The opt-in info metric's value is always 1 and its timestamp is noise: show the labels only.
        out["transformations"] = [
            {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}}}
        ]
    return out


def variables() -> list[dict[str, Any]]:
    def query_var(name: str, label: str, query: str) -> dict[str, Any]:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": PROM_DS,
            "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": ["All"], "value": ["$__all"]},
            "regex": "",
            "sort": 1,
            "hide": 0,
            "options": [],
        }

    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {"text": DATASOURCE_NAME, "value": DATASOURCE_UID},
            "regex": "",
            "refresh": 1,
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "options": [],
        },
        # smbwatch_build_info exists once per running sensor, so it lists exactly the smbwatch jobs and sensors.
        query_var("job", "Job", f"label_values({metric('smbwatch_build_info')}, job)"),
        query_var("instance", "Sensor", f'label_values({metric("smbwatch_build_info")}{{job=~"$job"}}, instance)'),
    ]


def dashboard(
    uid: str, title: str, description: str, rows: list[Row], annotations: list[dict[str, Any]]
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id = 1
    y = 0
    for row in rows:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(render_panel(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["smbwatch", "smb"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "title": "smbwatch",
                "tags": ["smbwatch"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [builtin, *annotations]},
        "templating": {"list": variables()},
        "panels": panels,
    }


# ---------------------------------------------------------------------------------------------
# The two dashboards.
# ---------------------------------------------------------------------------------------------


def overview() -> dict[str, Any]:
    weak = "|".join(WEAK_AUTH_KINDS)
    weak_names = f"^({weak})\\b.*"
    rows = [
        Row(
            "SMBv1 now",
            [
                Panel(
                    "stat",
                    "SMBv1 connections (per minute)",
                    "Connections that actually used SMB1: the server chose an SMB1 dialect, or SMB1 commands "
                    "followed. A client that offers SMB1 and is upgraded to SMB2/3 does not count here.",
                    "cpm",
                    [Target(counter_rate("smbwatch_smb1_connections_total", per_minute=True))],
                    width=6,
                    height=5,
                    thresholds=red_when_positive(),
                ),
                Panel(
                    "stat",
                    "Servers that used SMBv1",
                    "Hosts currently known that answered as an SMB1 server. Summed over sensors: a host seen "
                    "by two sensors counts twice.",
                    "short",
                    [Target(gauge_sum("smbwatch_hosts", (), {"role": "server", "smb1": "true"}))],
                    width=5,
                    height=5,
                    thresholds=[("green", None), ("red", 1)],
                ),
                Panel(
                    "stat",
                    "Clients that used SMBv1",
                    "Hosts currently known that spoke SMB1 as a client. Summed over sensors.",
                    "short",
                    [Target(gauge_sum("smbwatch_hosts", (), {"role": "client", "smb1": "true"}))],
                    width=5,
                    height=5,
                    thresholds=[("green", None), ("red", 1)],
                ),
                Panel(
                    "stat",
                    "SMB1 offered but upgraded (per minute)",
                    "Connections whose client still offers SMB1 dialects but the server chose SMB2/3: "
                    "harmless today, a client to reconfigure before a server starts accepting SMB1.",
                    "cpm",
                    [Target(counter_rate("smbwatch_smb1_offers_total", (), {"outcome": "upgraded"}, per_minute=True))],
                    width=4,
                    height=5,
                    thresholds=[("green", None), ("yellow", 1e-9)],
                ),
                Panel(
                    "stat",
                    "Detector alerts (per minute)",
                    "All alerts raised by smbwatch's detectors; the panel below splits them by kind.",
                    "cpm",
                    [Target(counter_rate("smbwatch_alerts_total", per_minute=True))],
                    width=4,
                    height=5,
                    thresholds=red_when_positive(),
                ),
            ],
        ),
        Row(
            "SMB traffic and dialects",
            [
                Panel(
                    "timeseries",
                    "SMBv1 connections over time",
                    "SMB1 use per sensor. Any bar here is a host pair still speaking SMBv1.",
                    "cpm",
                    [
                        Target(
                            counter_rate("smbwatch_smb1_connections_total", ("job", "instance"), per_minute=True),
                            "{{instance}}",
                        )
                    ],
                    bars=True,
                    overrides=[],
                ),
                Panel(
                    "timeseries",
                    "Clients offering SMB1, by outcome",
                    "smb1: the server chose SMB1. upgraded: the server chose SMB2/3. refused: no dialect accepted.",
                    "cpm",
                    [Target(counter_rate("smbwatch_smb1_offers_total", ("outcome",), per_minute=True), "{{outcome}}")],
                    stack=True,
                    overrides=[
                        color_override("byName", "smb1", "red"),
                        color_override("byName", "upgraded", "yellow"),
                        color_override("byName", "refused", "blue"),
                    ],
                ),
                Panel(
                    "timeseries",
                    "Dialect mix (negotiations per minute)",
                    "Dialect each server chose. 'none': the server refused every offered dialect; "
                    "'2.???': the SMB2 wildcard answer to a multi-protocol SMB1 negotiate.",
                    "cpm",
                    [Target(counter_rate("smbwatch_negotiations_total", ("dialect",), per_minute=True), "{{dialect}}")],
                    stack=True,
                    overrides=[color_override("byName", "smb1", "red")],
                ),
                Panel(
                    "timeseries",
                    "SMB messages by protocol",
                    "Messages decoded per second: SMB1, SMB2/3 in clear, encrypted (transform header) and compressed.",
                    "cps",
                    [Target(counter_rate("smbwatch_smb_messages_total", ("protocol",)), "{{protocol}}")],
                    stack=True,
                    overrides=[color_override("byName", "smb1", "red")],
                ),
            ],
        ),
        Row(
            "Authentication",
            [
                Panel(
                    "stat",
                    "Weak session setups (per minute)",
                    "Session setups with NTLMv1, LM, plaintext passwords, guest or anonymous sessions, "
                    "by kind: each is either crackable or proves nothing about the user.",
                    "cpm",
                    [
                        Target(
                            counter_rate(
                                "smbwatch_session_setups_total", ("auth",), {"auth": f"=~{weak}"}, per_minute=True
                            ),
                            "{{auth}}",
                        )
                    ],
                    width=24,
                    height=5,
                    thresholds=red_when_positive(),
                ),
                Panel(
                    "timeseries",
                    "Session setups by auth kind and result",
                    "Every SESSION_SETUP with its authentication kind and outcome; weak kinds are drawn red.",
                    "cpm",
                    [
                        Target(
                            counter_rate("smbwatch_session_setups_total", ("auth", "result"), per_minute=True),
                            "{{auth}} {{result}}",
                        )
                    ],
                    overrides=[color_override("byRegexp", weak_names, "red")],
                ),
                Panel(
                    "timeseries",
                    "Session setups by result",
                    "logon_failure: wrong or refused credentials (the brute-force detector counts these).",
                    "cpm",
                    [Target(counter_rate("smbwatch_session_setups_total", ("result",), per_minute=True), "{{result}}")],
                    stack=True,
                    overrides=[
                        color_override("byName", "success", "green"),
                        color_override("byName", "logon_failure", "red"),
                        color_override("byName", "other_failure", "orange"),
                    ],
                ),
                Panel(
                    "timeseries",
                    "Tree connects by result",
                    "Share connections (TREE_CONNECT) that succeeded or failed.",
                    "cpm",
                    [Target(counter_rate("smbwatch_tree_connects_total", ("result",), per_minute=True), "{{result}}")],
                    stack=True,
                    overrides=[color_override("byName", "failure", "red")],
                ),
                Panel(
                    "timeseries",
                    "Connections by transport",
                    "Connections that carried SMB, counted when they close: direct TCP 445 or NetBIOS 139.",
                    "cpm",
                    [
                        Target(
                            counter_rate("smbwatch_connections_total", ("transport",), per_minute=True),
                            "{{transport}}",
                        )
                    ],
                    stack=True,
                ),
            ],
        ),
        Row(
            "Alerts",
            [
                Panel(
                    "timeseries",
                    "Detector alerts by kind",
                    "Every kind: smb1_negotiated, scan_445, ms17_010_probe, eternalblue, doublepulsar, bruteforce, "
                    "and the after-login kinds of the Activity row. The alert's details (addresses, evidence) are "
                    "in smbwatch's JSON log.",
                    "cpm",
                    [Target(counter_rate("smbwatch_alerts_total", ("kind",), per_minute=True), "{{kind}}")],
                    width=16,
                    bars=True,
                    stack=True,
                    overrides=[
                        color_override("byRegexp", CRITICAL_KINDS_REGEX, "dark-red"),
                        color_override("byRegexp", "^(ms17_010_probe|bruteforce)$", "orange"),
                    ],
                ),
                Panel(
                    "bargauge",
                    "Alert rate by kind, now",
                    "The same alerts over the last rate interval.",
                    "cpm",
                    [Target(counter_rate("smbwatch_alerts_total", ("kind",), per_minute=True), "{{kind}}")],
                    width=8,
                    thresholds=red_when_positive(),
                ),
            ],
        ),
        activity_row(),
        Row(
            "Hosts",
            [
                Panel(
                    "bargauge",
                    "Servers by highest dialect",
                    "Known servers grouped by the highest dialect they negotiated.",
                    "short",
                    [
                        Target(
                            gauge_sum("smbwatch_hosts", ("highest_dialect",), {"role": "server"}),
                            "{{highest_dialect}}",
                            instant=True,
                        )
                    ],
                    width=6,
                    overrides=[color_override("byName", "smb1", "red")],
                ),
                Panel(
                    "bargauge",
                    "Clients by highest dialect",
                    "Known clients grouped by the highest dialect they negotiated.",
                    "short",
                    [
                        Target(
                            gauge_sum("smbwatch_hosts", ("highest_dialect",), {"role": "client"}),
                            "{{highest_dialect}}",
                            instant=True,
                        )
                    ],
                    width=6,
                    overrides=[color_override("byName", "smb1", "red")],
                ),
                Panel(
                    "timeseries",
                    "Known hosts by role and highest dialect",
                    "How the inventory evolves: hosts on old dialects should shrink.",
                    "short",
                    [
                        Target(
                            gauge_sum("smbwatch_hosts", ("role", "highest_dialect")),
                            "{{role}} {{highest_dialect}}",
                        )
                    ],
                    overrides=[color_override("byRegexp", ".* smb1$", "red")],
                ),
                Panel(
                    "table",
                    "SMBv1 hosts by address (opt-in)",
                    "Empty unless smbwatch runs with its opt-in per-address SMB1 metric, which is capped.",
                    "none",
                    [
                        Target(
                            f"max by (ip, role) ({selector('smbwatch_smb1_host_info')})",
                            table=True,
                        )
                    ],
                    width=18,
                    min_zero=False,
                ),
                Panel(
                    "stat",
                    "SMBv1 hosts left out of the table (opt-in)",
                    "SMB1 (ip, role) series the opt-in per-address metric left out past its cap "
                    "(`[exporter] max_host_series`): raise the cap to see them all.",
                    "short",
                    [Target(gauge_sum("smbwatch_smb1_host_series_dropped"))],
                    width=6,
                    thresholds=red_when_positive(),
                ),
            ],
        ),
    ]
    annotations = [
        {
            "name": "Detector alerts",
            "datasource": PROM_DS,
            "enable": True,
            "hide": False,
            "iconColor": "red",
            "expr": f"sum by (kind) (increase({selector('smbwatch_alerts_total')}[$__rate_interval])) > 0",
            "step": "1m",
            "titleFormat": "{{kind}}",
            "textFormat": "smbwatch raised a {{kind}} alert",
            "useValueForTime": False,
        }
    ]
    return dashboard(
        OVERVIEW_UID,
        "smbwatch / Overview",
        "Who still speaks SMBv1, which dialects and authentication are in use, and what the detectors saw.",
        rows,
        annotations,
    )


def activity_row() -> Row:
    """What happens after the login: DCE/RPC over named pipes, file actions, and the alerts on them."""
    activity = {"kind": "=~" + "|".join(ACTIVITY_ALERT_KINDS)}
    return Row(
        "Activity",
        [
            Panel(
                "timeseries",
                "RPC operations by interface",
                "DCE/RPC calls over SMB named pipes per minute, by interface (svcctl, spoolss, samr, …; "
                "'other': a UUID smbwatch's table does not know). Counted when the connection ends.",
                "cpm",
                [Target(counter_rate("smbwatch_rpc_calls_total", ("interface",), per_minute=True), "{{interface}}")],
                width=8,
                stack=True,
            ),
            Panel(
                "timeseries",
                "RPC calls by result",
                "ok: the server ran the call; error: it answered with a non-zero return code; fault: a fault "
                "PDU (access denied, unknown operation, …); no_answer: the pipe or connection ended first.",
                "cpm",
                [
                    Target(
                        counter_rate("smbwatch_rpc_calls_total", ("result_class",), per_minute=True),
                        "{{result_class}}",
                    )
                ],
                width=8,
                stack=True,
                overrides=[
                    color_override("byName", "ok", "green"),
                    color_override("byName", "error", "orange"),
                    color_override("byName", "fault", "red"),
                    color_override("byName", "no_answer", "yellow"),
                ],
            ),
            Panel(
                "timeseries",
                "RPC binds by interface and result",
                "Interfaces bound on a named pipe (once per pipe and interface per connection), by the server's "
                "answer: accepted, user_rejection, provider_rejection (e.g. an interface the server lacks), "
                "rejected (bind_nak), no_answer.",
                "cpm",
                [
                    Target(
                        counter_rate("smbwatch_rpc_binds_total", ("interface", "result"), per_minute=True),
                        "{{interface}} {{result}}",
                    )
                ],
                width=8,
                overrides=[color_override("byRegexp", ".* (user_rejection|provider_rejection|rejected)$", "red")],
            ),
            Panel(
                "timeseries",
                "RPC binds by authentication",
                "Accepted binds by how their own verifier authenticated (ntlmv2, kerberos, ...), as SMB sessions "
                "are counted by auth kind; none: no verifier, the SMB session's user is the caller.",
                "cpm",
                [Target(counter_rate("smbwatch_rpc_bind_auth_total", ("auth",), per_minute=True), "{{auth}}")],
                width=8,
                overrides=[color_override("byRegexp", "^(ntlmv1|lm|plaintext|anonymous)$", "orange")],
            ),
            Panel(
                "table",
                "Top RPC operations in the time range",
                "The 25 (interface, operation, result) triples called most over the dashboard's time range.",
                "short",
                [
                    Target(
                        "topk(25, sum by (interface, operation, result_class) "
                        f"(increase({selector('smbwatch_rpc_calls_total')}[$__range])))",
                        table=True,
                    )
                ],
                width=16,
                height=10,
                min_zero=False,
                value_name="calls",
            ),
            Panel(
                "timeseries",
                "File actions by action",
                "File opens per minute by what was done through them: how the open ended (open, create, "
                "overwrite), then read, write, rename, delete (each once per open). Renames, overwrites and "
                "deletes are what the ransomware rule counts. Counted when the connection ends; encrypted "
                "SMB3 shows nothing here.",
                "cpm",
                [Target(counter_rate("smbwatch_file_actions_total", ("action",), per_minute=True), "{{action}}")],
                width=12,
                height=10,
                stack=True,
                overrides=[color_override("byRegexp", "^(rename|overwrite|delete)$", "orange")],
            ),
            Panel(
                "timeseries",
                "Activity alerts by kind",
                "remote_execution, admin_share_executable, lateral_movement, print_driver_install, rpc_coercion, "
                "rpc_big_endian, ransomware_activity. The evidence (pipe, operation, share, path, files) is in "
                "the alert's JSON log event.",
                "cpm",
                [Target(counter_rate("smbwatch_alerts_total", ("kind",), activity, per_minute=True), "{{kind}}")],
                width=16,
                bars=True,
                stack=True,
                overrides=[color_override("byRegexp", CRITICAL_KINDS_REGEX, "dark-red")],
            ),
            Panel(
                "table",
                "Activity alerts in the time range",
                "How many of each after-login alert the sensors raised over the dashboard's time range.",
                "short",
                [
                    Target(
                        f"sum by (kind) (increase({selector('smbwatch_alerts_total', activity)}[$__range]))",
                        table=True,
                    )
                ],
                width=8,
                min_zero=False,
                value_name="alerts",
            ),
        ],
    )


def sensor_health() -> dict[str, Any]:
    ratio = (
        f"sum by (instance, interface) (rate({selector('smbwatch_capture_kernel_drops_total')}[$__rate_interval]))"
        f" / (sum by (instance, interface) "
        f"(rate({selector('smbwatch_capture_kernel_packets_total')}[$__rate_interval])) > 0)"
    )
    rows = [
        Row(
            "Sensor",
            [
                Panel(
                    "stat",
                    "Scrape status",
                    "Prometheus's `up` for each sensor: DOWN means the last scrape failed.",
                    "none",
                    [Target(selector("up"), "{{instance}}")],
                    width=6,
                    height=5,
                    thresholds=[("red", None), ("green", 1)],
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "DOWN", "color": "red", "index": 0},
                                "1": {"text": "UP", "color": "green", "index": 1},
                            },
                        }
                    ],
                ),
                Panel(
                    "stat",
                    "Newest packet age",
                    "Now minus the capture time of the newest packet. Grows on an idle network; in replay "
                    "mode it is the age of the capture file.",
                    "s",
                    [
                        Target(
                            f"time() - max by (instance) ({selector('smbwatch_last_packet_timestamp_seconds')})",
                            "{{instance}}",
                        )
                    ],
                    width=6,
                    height=5,
                    thresholds=[("green", None), ("yellow", 300), ("red", 3600)],
                ),
                Panel(
                    "stat",
                    "Uptime",
                    "Time since the smbwatch process started.",
                    "s",
                    [Target(f"time() - {selector('process_start_time_seconds')}", "{{instance}}")],
                    width=6,
                    height=5,
                ),
                Panel(
                    "stat",
                    "Version",
                    "smbwatch and Python version of each sensor.",
                    "none",
                    [Target(selector("smbwatch_build_info"), "{{instance}}: {{version}} (Python {{python}})")],
                    width=6,
                    height=5,
                    text_mode="name",
                ),
            ],
        ),
        Row(
            "Capture",
            [
                Panel(
                    "timeseries",
                    "Capture rate",
                    "Frames smbwatch received per second, by sensor and interface.",
                    "pps",
                    [
                        Target(
                            counter_rate("smbwatch_capture_packets_total", ("instance", "interface")),
                            "{{instance}} {{interface}}",
                        )
                    ],
                ),
                Panel(
                    "timeseries",
                    "Capture throughput",
                    "Bytes smbwatch received per second.",
                    "Bps",
                    [
                        Target(
                            counter_rate("smbwatch_capture_bytes_total", ("instance", "interface")),
                            "{{instance}} {{interface}}",
                        )
                    ],
                ),
                Panel(
                    "timeseries",
                    "Kernel drops",
                    "Packets the kernel dropped before smbwatch could read them: the sensor is too slow or "
                    "its buffer too small.",
                    "pps",
                    [
                        Target(
                            counter_rate("smbwatch_capture_kernel_drops_total", ("instance", "interface")),
                            "{{instance}} {{interface}}",
                        )
                    ],
                ),
                Panel(
                    "timeseries",
                    "Kernel drop ratio",
                    f"Dropped / received by the kernel. The CaptureDrops alert fires above "
                    f"{DROP_RATIO_THRESHOLD:.0%} for 10 minutes. Idle interfaces show no line.",
                    "percentunit",
                    [Target(ratio, "{{instance}} {{interface}}")],
                    thresholds=[("green", None), ("red", DROP_RATIO_THRESHOLD)],
                ),
            ],
        ),
        Row(
            "Decoding",
            [
                Panel(
                    "timeseries",
                    "Reassembly gaps",
                    "TCP sequence holes per minute: bytes the sensor never saw, after which it resynchronises.",
                    "cpm",
                    [
                        Target(
                            counter_rate("smbwatch_reassembly_gaps_total", ("instance",), per_minute=True),
                            "{{instance}}",
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "timeseries",
                    "Bytes lost in gaps",
                    "Bytes per second skipped over by reassembly gaps.",
                    "Bps",
                    [Target(counter_rate("smbwatch_reassembly_gap_bytes_total", ("instance",)), "{{instance}}")],
                    width=8,
                ),
                Panel(
                    "timeseries",
                    "Anomalies by kind",
                    "Malformed or unexpected input and caps that were hit, per minute.",
                    "cpm",
                    [Target(counter_rate("smbwatch_anomalies_total", ("kind",), per_minute=True), "{{kind}}")],
                    width=8,
                    stack=True,
                ),
            ],
        ),
        Row(
            "Flows and process",
            [
                Panel(
                    "timeseries",
                    "Active flows",
                    "TCP flows in the flow table now.",
                    "short",
                    [Target(gauge_sum("smbwatch_flows_active", ("instance",)), "{{instance}}")],
                    width=6,
                ),
                Panel(
                    "timeseries",
                    "Flows opened and evicted",
                    "New flows per second, and flows removed by reason (idle, table cap, timeout). Evictions "
                    "for 'cap' mean the table is full and state is being lost. Scan sources let go: 'probation' "
                    "(one destination each) is what a random-source SYN flood causes and is harmless; 'tracked' "
                    "means sources with several destinations were forgotten.",
                    "cps",
                    [
                        Target(counter_rate("smbwatch_flows_opened_total", ("instance",)), "{{instance}} opened"),
                        Target(
                            counter_rate("smbwatch_flows_evicted_total", ("instance", "reason")),
                            "{{instance}} evicted ({{reason}})",
                        ),
                        Target(
                            counter_rate("smbwatch_scan_sources_evicted_total", ("instance", "table")),
                            "{{instance}} scan sources let go ({{table}})",
                        ),
                    ],
                    width=6,
                    overrides=[color_override("byRegexp", ".*evicted \\(cap\\)$", "red")],
                ),
                Panel(
                    "timeseries",
                    "Process memory",
                    "Resident memory of the smbwatch process.",
                    "bytes",
                    [Target(gauge_sum("process_resident_memory_bytes", ("instance",)), "{{instance}}")],
                    width=6,
                ),
                Panel(
                    "timeseries",
                    "Process CPU",
                    "CPU time per second: 100% is one core busy.",
                    "percentunit",
                    [Target(counter_rate("process_cpu_seconds_total", ("instance",)), "{{instance}}")],
                    width=6,
                ),
            ],
        ),
    ]
    return dashboard(
        HEALTH_UID,
        "smbwatch / Sensor health",
        "Is each smbwatch sensor up, keeping up with the traffic, and decoding it cleanly?",
        rows,
        [],
    )


# ---------------------------------------------------------------------------------------------
# Alerts: one definition rendered twice, as Prometheus alerting rules and as Grafana-managed rules.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """An alert whose value expression is `query`, firing while `query op threshold` holds.

    Grafana evaluates `query` (refId A), reduces it (B) and compares (C); Prometheus evaluates the
    comparison directly. `%VALUE%` in the description becomes each system's own value template.
    """

    name: str
    uid: str
    title: str
    group: str
    query: str
    op: str
    threshold: float
    severity: str
    summary: str
    description: str
    runbook: str
    pending: str = "0s"
    grafana_no_data: str = "OK"
    value_format: str = "humanize"
    # The `kind` label of smbwatch_alerts_total this alert watches, for detector alerts.
    detector_kind: str = ""

    @property
    def expr(self) -> str:
        query = f"({self.query})" if re.search(r" [/*+-] | or | and | unless ", self.query) else self.query
        return f"{query} {self.op} {self.threshold:g}"


def events_in_window(counter: str) -> str:
    """Per sensor, how much `counter` rose over the alert window.

    increase() needs two samples in the window, so a series born inside it (a new sensor, or one
    back after an outage longer than the window) would hide the events it counted before its
    first scrape; such a series counts from zero instead, which the pre-initialised counters make
    exact. That term comes first: `or` keeps its left side wherever it has a value, and from the
    second scrape on increase() has one (0), which would silence the alert after one interval.
    """
    return (
        f"sum by (job, instance) (({counter} unless {counter} offset {ALERT_WINDOW}) "
        f"or increase({counter}[{ALERT_WINDOW}]))"
    )


def detection(kind: str, name: str, title: str, severity: str, what: str, runbook: str) -> Alert:
    return Alert(
        name=name,
        uid=f"smbwatch-{kind.replace('_', '-')}",
        title=title,
        group="detections",
        query=events_in_window(selector("smbwatch_alerts_total", {"kind": kind}, dashboard=False)),
        op=">",
        threshold=0,
        severity=severity,
        summary=f"{title} (sensor {{{{ $labels.instance }}}})",
        description=f"smbwatch on {{{{ $labels.instance }}}} raised {kind} alerts in the last {ALERT_WINDOW}: {what}",
        runbook=runbook,
        detector_kind=kind,
    )


def alerts() -> list[Alert]:
    smb1 = selector("smbwatch_smb1_connections_total", dashboard=False)
    drops = selector("smbwatch_capture_kernel_drops_total", dashboard=False)
    kernel = selector("smbwatch_capture_kernel_packets_total", dashboard=False)
    return [
        Alert(
            name="SmbwatchSmb1TrafficSeen",
            uid="smbwatch-smb1-traffic",
            title="SMBv1 traffic seen",
            group="detections",
            query=events_in_window(smb1),
            op=">",
            threshold=0,
            severity="warning",
            summary="SMBv1 traffic seen (sensor {{ $labels.instance }})",
            description=(
                f"smbwatch on {{{{ $labels.instance }}}} saw connections that used SMB1 in the last {ALERT_WINDOW}: "
                "a server accepted an SMB1 dialect or SMB1 commands were exchanged."
            ),
            runbook=(
                "Find the client/server pair in smbwatch's smb1_negotiated log events or the opt-in SMBv1 hosts "
                "table; disable SMB1 on the server (and the client), or isolate the legacy device."
            ),
        ),
        detection(
            "scan_445",
            "SmbwatchScan445",
            "SMB port scan",
            "warning",
            "one source tried SMB (445/139) on many hosts in a short time.",
            "Identify the source in the scan_445 log event; if it is not an inventory or vulnerability scanner "
            "you run, treat it as a compromised host doing discovery and isolate it.",
        ),
        detection(
            "ms17_010_probe",
            "SmbwatchMs17010Probe",
            "MS17-010 probe",
            "warning",
            "someone checked a server for the EternalBlue vulnerability (a PeekNamedPipe on FID 0).",
            "Read the verdict in the ms17_010_probe log event: 'unpatched' means the server is vulnerable, "
            "patch MS17-010 and disable SMB1 now; then find out who probed and why.",
        ),
        detection(
            "eternalblue",
            "SmbwatchEternalBlue",
            "EternalBlue exploitation attempt",
            "critical",
            "traffic shaped like the EternalBlue exploit (MS17-010) was seen.",
            "Treat as an active intrusion: isolate the target and the source, check the target for "
            "DoublePulsar and other implants, patch MS17-010 and disable SMB1.",
        ),
        detection(
            "doublepulsar",
            "SmbwatchDoublePulsar",
            "DoublePulsar implant activity",
            "critical",
            "a DoublePulsar backdoor ping or answer was seen; the target may already be implanted.",
            "Treat the target as compromised: isolate it, collect memory for forensics, rebuild it; "
            "hunt for the source that talked to the implant.",
        ),
        detection(
            "bruteforce",
            "SmbwatchBruteForce",
            "SMB brute force",
            "warning",
            "many failed logons from one source against one server.",
            "Identify source, server and user names in the bruteforce log event; block the source, check "
            "for a following successful logon (called out in the event) and reset the password if one succeeded.",
        ),
        *activity_alerts(),
        Alert(
            name="SmbwatchCaptureDrops",
            uid="smbwatch-capture-drops",
            title="Capture drops",
            group="sensor",
            # The `> 0` filter on the denominator drops idle interfaces instead of dividing by zero.
            query=(
                f"sum by (job, instance, interface) (rate({drops}[{ALERT_WINDOW}])) / "
                f"(sum by (job, instance, interface) (rate({kernel}[{ALERT_WINDOW}])) > 0)"
            ),
            op=">",
            threshold=DROP_RATIO_THRESHOLD,
            severity="warning",
            summary="smbwatch is missing packets on {{ $labels.instance }} {{ $labels.interface }}",
            description=(
                "The kernel dropped %VALUE% of the packets for smbwatch on {{ $labels.instance }} interface "
                f"{{{{ $labels.interface }}}} over the last 10 minutes (threshold {DROP_RATIO_THRESHOLD:.0%}): "
                "detections can be missed."
            ),
            runbook=(
                "Check the sensor's CPU on the sensor-health dashboard; narrow the capture filter, give the "
                "capture a larger buffer, or move the sensor to a faster host or a less busy span port."
            ),
            pending="10m",
            value_format="humanizePercentage",
        ),
        Alert(
            name="SmbwatchSensorDown",
            uid="smbwatch-sensor-down",
            title="smbwatch sensor down",
            group="sensor",
            query=f"{selector('up', {'job': f'=~{SENSOR_JOB_REGEX}'}, dashboard=False)}",
            op="<",
            threshold=1,
            severity="critical",
            summary="smbwatch sensor {{ $labels.instance }} is down",
            description=(
                "Prometheus could not scrape smbwatch on {{ $labels.instance }} (job {{ $labels.job }}) for 2 "
                "minutes: SMB traffic on its network is not being watched."
            ),
            runbook=(
                "Check the smbwatch service on the sensor (systemctl status, journal), that its metrics port "
                "answers from the Prometheus host, and the capture interface still exists."
            ),
            pending="2m",
            # No `up` series at all means the job is missing or misnamed, which hides a dead sensor as well.
            grafana_no_data="Alerting",
        ),
    ]


def activity_alerts() -> list[Alert]:
    """The after-login detections (monitor/detect/activity.py), one alert rule per kind; critical for
    the kinds in CRITICAL_KINDS (tests/test_dashboards.py checks)."""
    found = [
        detection(
            "remote_execution",
            "SmbwatchRemoteExecution",
            "Remote execution over RPC",
            "warning",
            "a client asked a server to create, reconfigure or start a service, or to register or run a "
            "scheduled task, over a named pipe (PsExec, smbexec, atexec).",
            "Read the remote_execution log event (pipe, operation, whether the server ran it, the user): if "
            "no administrator or deployment tool you run explains it, treat the client as compromised and "
            "check the server for the new service or task.",
        ),
        detection(
            "admin_share_executable",
            "SmbwatchAdminShareExecutable",
            "Executable written to an administrative share",
            "warning",
            "an executable was created or written on ADMIN$, C$ or another $ share.",
            "The admin_share_executable event names share and path: a software deployment explains it, "
            "anything else is a tool being staged for remote execution. Check the file on the server.",
        ),
        detection(
            "lateral_movement",
            "SmbwatchLateralMovement",
            "Lateral movement (executable dropped and run)",
            "critical",
            "one client wrote an executable to a server's administrative share and made the server run "
            "something, within minutes (how PsExec works).",
            "Treat as an intrusion moving between hosts: isolate the client and the server, find the "
            "service or task it created and the binary it dropped (both in the event), reset the credentials used.",
        ),
        detection(
            "print_driver_install",
            "SmbwatchPrintDriverInstall",
            "Printer driver install over RPC",
            "warning",
            "a client asked a server to install a printer driver (RpcAddPrinterDriver(Ex), the PrintNightmare call).",
            "Unless a print administrator did this, check the event's result: a server that accepted it may "
            "run the attacker's DLL; disable the print spooler where no printing is served, patch CVE-2021-34527.",
        ),
        detection(
            "rpc_coercion",
            "SmbwatchRpcCoercion",
            "Authentication coercion over RPC",
            "warning",
            "a client called an RPC operation that makes the server authenticate to a path of the caller's "
            "choosing (PetitPotam, DFSCoerce, PrinterBug, ShadowCoerce).",
            "Expect an NTLM relay: look for the server's machine account logging in elsewhere from the "
            "client's address; require SMB signing and EPA, and block EFSRPC and the spooler where unused.",
        ),
        detection(
            "rpc_big_endian",
            "SmbwatchRpcBigEndian",
            "Big-endian DCE/RPC request",
            "critical",
            "a DCE/RPC request in big-endian data representation, which Windows and Samba clients never "
            "send and RPC exploits (CVE-2022-26809) do.",
            "Treat as exploitation of the server's RPC runtime: isolate the source, patch the server "
            "(CVE-2022-26809), and check it for compromise.",
        ),
        detection(
            "ransomware_activity",
            "SmbwatchRansomwareActivity",
            "Ransomware-like file activity",
            "critical",
            "one client renamed, overwrote or deleted many existing files on one server in a short time.",
            "Act at once: cut the client off the network (or disable its account) before more files go, "
            "then check the event's common new extension and ransom-note names, and restore from backups.",
        ),
    ]
    return found


def prometheus_value(alert: Alert) -> str:
    return f"{{{{ $value | {alert.value_format} }}}}"


def grafana_value(alert: Alert) -> str:
    return f"{{{{ {alert.value_format} $values.B.Value }}}}"


def prometheus_rules() -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts():
        rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
        if alert.pending != "0s":
            rule["for"] = alert.pending
        rule["labels"] = {"severity": alert.severity}
        rule["annotations"] = {
            "summary": alert.summary,
            "description": alert.description.replace("%VALUE%", prometheus_value(alert)),
            "runbook": alert.runbook,
        }
        groups.setdefault(f"smbwatch-{alert.group}", []).append(rule)
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]}


def grafana_alert_rules(dashboards: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    def panel_id(uid: str, title: str) -> int:
        return next(p["id"] for p in dashboards[uid]["panels"] if p["title"] == title)

    linked_panel = {
        "detections": (OVERVIEW_UID, panel_id(OVERVIEW_UID, "Detector alerts by kind")),
        "sensor": (HEALTH_UID, panel_id(HEALTH_UID, "Kernel drop ratio")),
    }
    activity = (OVERVIEW_UID, panel_id(OVERVIEW_UID, "Activity alerts by kind"))
    linked_panel_by_alert = {
        "SmbwatchSmb1TrafficSeen": (OVERVIEW_UID, panel_id(OVERVIEW_UID, "SMBv1 connections over time")),
        "SmbwatchSensorDown": (HEALTH_UID, panel_id(HEALTH_UID, "Scrape status")),
        **{alert.name: activity for alert in activity_alerts()},
    }
    rules = []
    for alert in alerts():
        dash_uid, pid = linked_panel_by_alert.get(alert.name, linked_panel[alert.group])
        evaluator = {">": "gt", "<": "lt"}[alert.op]
        rules.append(
            {
                "uid": alert.uid,
                "title": alert.title,
                "condition": "C",
                "data": [
                    {
                        "refId": "A",
                        "relativeTimeRange": {"from": 600, "to": 0},
                        "datasourceUid": DATASOURCE_UID,
                        "model": {
                            "refId": "A",
                            "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                            "editorMode": "code",
                            "expr": alert.query,
                            "instant": True,
                            "range": False,
                            "intervalMs": 1000,
                            "maxDataPoints": 43200,
                        },
                    },
                    {
                        "refId": "B",
                        "relativeTimeRange": {"from": 600, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "B",
                            "datasource": {"type": "__expr__", "uid": "__expr__"},
                            "type": "reduce",
                            "expression": "A",
                            "reducer": "last",
                            "settings": {"mode": "dropNN"},
                        },
                    },
                    {
                        "refId": "C",
                        "relativeTimeRange": {"from": 600, "to": 0},
                        "datasourceUid": "__expr__",
                        "model": {
                            "refId": "C",
                            "datasource": {"type": "__expr__", "uid": "__expr__"},
                            "type": "threshold",
                            "expression": "B",
                            "conditions": [{"evaluator": {"type": evaluator, "params": [alert.threshold]}}],
                        },
                    },
                ],
                "noDataState": alert.grafana_no_data,
                "execErrState": "Error",
                "for": alert.pending,
                "isPaused": False,
                "annotations": {
                    "summary": alert.summary,
                    "description": alert.description.replace("%VALUE%", grafana_value(alert)),
                    "runbook": alert.runbook,
                    "__dashboardUid__": dash_uid,
                    "__panelId__": str(pid),
                },
                "labels": {"severity": alert.severity, "prometheus_alertname": alert.name},
            }
        )
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": "smbwatch", "folder": FOLDER, "interval": "1m", "rules": rules}],
    }


def datasource_provisioning() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": DATASOURCE_NAME,
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": "http://localhost:9090",
                "isDefault": False,
                "editable": False,
                # $__rate_interval is derived from this: keep it equal to Prometheus's scrape interval.
                "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
            }
        ],
    }


def dashboard_provisioning() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "smbwatch",
                "orgId": 1,
                # By title only, like the alert rules' folder: Grafana runs alert provisioning before
                # dashboard provisioning and may create the folder with a generated uid, which a fixed
                # folderUid here would then not find.
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARD_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }


# ---------------------------------------------------------------------------------------------
# promtool unit tests: for every alert, a case where it fires (with exactly the expected series)
# and a case where it stays silent. The inputs and expectations are written out by hand here;
# only their YAML form is generated.
# ---------------------------------------------------------------------------------------------

JOB = "smbwatch"


@dataclass(frozen=True)
class RuleCase:
    alert: str
    what: str
    series: tuple[tuple[str, str], ...]
    eval_time: str
    fires: tuple[dict[str, str], ...] = ()
    value: str = ""


def _s(name: str, **labels: str) -> str:
    base = {"job": JOB, **labels}
    return f"{metric(name)}{{{', '.join(f'{k}={json.dumps(v)}' for k, v in base.items())}}}"


def rule_cases() -> list[RuleCase]:
    cases: list[RuleCase] = []
    detections = [
        ("SmbwatchSmb1TrafficSeen", "smbwatch_smb1_connections_total", {}),
        *[(a.name, "smbwatch_alerts_total", {"kind": a.detector_kind}) for a in alerts() if a.detector_kind],
    ]
    for name, counter, labels in detections:
        # A different event on the same sensor must not trigger this alert: for SMB1 use, an upgraded
        # SMB1 offer (not SMB1 use); for a detector alert, another kind.
        if counter == "smbwatch_alerts_total":
            other_kind = "smb1_negotiated" if labels["kind"] != "smb1_negotiated" else "scan_445"
            other = _s(counter, instance="sensor-d", kind=other_kind)
        else:
            other = _s("smbwatch_smb1_offers_total", instance="sensor-d", outcome="upgraded")
        cases.append(
            RuleCase(
                name,
                "fires for the sensor whose counter rose, not for the quiet one",
                (
                    (_s(counter, instance="sensor-a", **labels), "0x5 1x10"),
                    (_s(counter, instance="sensor-b", **labels), "0x15"),
                ),
                "8m",
                ({"job": JOB, "instance": "sensor-a"},),
            )
        )
        cases.append(
            RuleCase(
                name,
                "fires for a sensor back from an outage that counted events before its first scrape",
                (
                    (_s(counter, instance="sensor-a", **labels), "0x3 _x10 1x5"),
                    (_s(counter, instance="sensor-b", **labels), "0x3 _x10 0x5"),
                ),
                "14m",
                ({"job": JOB, "instance": "sensor-a"},),
            )
        )
        cases.append(
            RuleCase(
                name,
                "keeps firing on the scrapes after that first one, for the whole window",
                (
                    (_s(counter, instance="sensor-a", **labels), "0x3 _x10 1x5"),
                    (_s(counter, instance="sensor-b", **labels), "0x3 _x10 0x5"),
                ),
                "17m",
                ({"job": JOB, "instance": "sensor-a"},),
            )
        )
        cases.append(
            RuleCase(
                name,
                "silent: counter flat at its initial 0, rose long ago, reset by a restart, back from an "
                "outage with nothing counted, other events only",
                (
                    (_s(counter, instance="sensor-a", **labels), "0x20"),
                    (_s(counter, instance="sensor-b", **labels), "0 1x20"),
                    (_s(counter, instance="sensor-c", **labels), "3x11 0x10"),
                    (_s(counter, instance="sensor-e", **labels), "0x4 _x10 0"),
                    (other, "0x5 1+1x15"),
                ),
                "15m",
            )
        )
    cases.append(
        RuleCase(
            "SmbwatchCaptureDrops",
            "fires after 10 minutes of 5% drops, only on the interface that drops",
            (
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-a", interface="eth0"), "0+1000x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-a", interface="eth0"), "0+50x30"),
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-a", interface="eth1"), "0+1000x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-a", interface="eth1"), "0x30"),
            ),
            "20m",
            ({"job": JOB, "instance": "sensor-a", "interface": "eth0"},),
            "5%",
        )
    )
    cases.append(
        RuleCase(
            "SmbwatchCaptureDrops",
            "silent: 0.5% drops, an idle interface (no division by zero), drops without packets, "
            "and 10% drops for less than the 10 minutes pending",
            (
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-a", interface="eth0"), "0+1000x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-a", interface="eth0"), "0+5x30"),
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-b", interface="eth0"), "0x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-b", interface="eth0"), "0x30"),
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-c", interface="eth0"), "0x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-c", interface="eth0"), "0+1x30"),
                (_s("smbwatch_capture_kernel_packets_total", instance="sensor-d", interface="eth0"), "0+1000x30"),
                (_s("smbwatch_capture_kernel_drops_total", instance="sensor-d", interface="eth0"), "0x10 100+100x20"),
            ),
            "18m",
        )
    )
    cases.append(
        RuleCase(
            "SmbwatchSensorDown",
            "fires for the sensor that has been down for more than 2 minutes",
            (
                (_s("up", instance="sensor-a"), "1x5 0x10"),
                (_s("up", instance="sensor-b"), "1x15"),
            ),
            "10m",
            ({"job": JOB, "instance": "sensor-a"},),
        )
    )
    cases.append(
        RuleCase(
            "SmbwatchSensorDown",
            "silent: one failed scrape, down for less than 2 minutes, another job down",
            (
                (_s("up", instance="sensor-a"), "1x5 0 1x10"),
                (_s("up", instance="sensor-b"), "1x8 0x10"),
                ('up{job="node", instance="host-1"}', "0x15"),
            ),
            "10m",
        )
    )
    return cases


def _render_labels(template: str, labels: Mapping[str, str], value: str) -> str:
    out = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    return re.sub(r"\{\{ \$value \| \w+ \}\}", value, out)


def prometheus_rule_tests() -> dict[str, Any]:
    by_name = {a.name: a for a in alerts()}
    rules = prometheus_rules()
    annotations = {r["alert"]: r["annotations"] for g in rules["groups"] for r in g["rules"]}
    tests = []
    for case in rule_cases():
        alert = by_name[case.alert]
        exp_alerts = []
        for labels in case.fires:
            exp_alerts.append(
                {
                    "exp_labels": {**labels, "severity": alert.severity},
                    "exp_annotations": {
                        k: _render_labels(v, labels, case.value) for k, v in annotations[case.alert].items()
                    },
                }
            )
        tests.append(
            {
                "name": f"{case.alert}: {case.what}",
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "alert_rule_test": [{"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": exp_alerts}],
            }
        )
    return {"rule_files": ["smbwatch-rules.yml"], "evaluation_interval": "1m", "tests": tests}


# ---------------------------------------------------------------------------------------------
# Every PromQL expression that ships, for tests that parse or evaluate them.
# ---------------------------------------------------------------------------------------------

GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "1m", "$__range": "1h", "$job": ".*", "$instance": ".*"}


def concrete(expr: str) -> str:
    """An expression with Grafana's variables replaced, so plain Prometheus can evaluate it."""
    for variable, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_expressions(dash: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield f"{dash['uid']}/{panel['title']}/{target['refId']}", target["expr"]
    for annotation in dash["annotations"]["list"]:
        if "expr" in annotation:
            yield f"{dash['uid']}/annotation/{annotation['name']}", annotation["expr"]


def expressions(*, grafana_variables: bool = False) -> list[tuple[str, str]]:
    """(name, PromQL) for every panel query, dashboard annotation and alert rule.

    With `grafana_variables=False` the dashboard variables are substituted (`$__rate_interval` → 1m,
    `$job`/`$instance` → `.*`) so each expression can be sent to Prometheus as it is. The variable
    queries (`label_values(...)`) are Grafana syntax, not PromQL, and are not listed.
    """
    out: list[tuple[str, str]] = []
    for dash in (overview(), sensor_health()):
        out.extend(dashboard_expressions(dash))
    for alert in alerts():
        out.append((f"alert/{alert.name}", alert.expr))
        out.append((f"alert/{alert.name}/value", alert.query))
    return out if grafana_variables else [(name, concrete(expr)) for name, expr in out]


# ---------------------------------------------------------------------------------------------
# Output: JSON, and a YAML emitter for the regular documents above (mappings, lists, scalars).
# ---------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^([A-Za-z_/][A-Za-z0-9_./-]*|[0-9]+[smhdwy])$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if value == value and abs(value) != float("inf") else json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    if '"' in text and text.isprintable():
        # PromQL is full of double quotes; single quotes keep it readable (only ' needs doubling).
        return "'" + text.replace("'", "''") + "'"
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            head = f"{pad}{_yaml_scalar(key)}:"
            if isinstance(item, dict | list) and item:
                lines.append(head)
                lines.extend(_yaml_lines(item, indent + 2))
            else:
                lines.append(f"{head} {_yaml_inline(item)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_yaml_inline(item)}")
        return lines
    return [pad + _yaml_scalar(value)]


def _yaml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def to_yaml(document: Mapping[str, Any], comment: str = GENERATED_NOTE) -> str:
    return f"# {comment}\n" + "\n".join(_yaml_lines(dict(document), 0)) + "\n"


def to_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[str, str]:
    """Every generated file, by path relative to dashboards/, with its exact content."""
    dashboards = {OVERVIEW_UID: overview(), HEALTH_UID: sensor_health()}
    return {
        "grafana/smbwatch-overview.json": to_json(dashboards[OVERVIEW_UID]),
        "grafana/smbwatch-sensor-health.json": to_json(dashboards[HEALTH_UID]),
        "provisioning/datasources/smbwatch.yml": to_yaml(datasource_provisioning()),
        "provisioning/dashboards/smbwatch.yml": to_yaml(dashboard_provisioning()),
        "provisioning/alerting/smbwatch-alerts.yml": to_yaml(grafana_alert_rules(dashboards)),
        "prometheus/smbwatch-rules.yml": to_yaml(prometheus_rules()),
        "prometheus/smbwatch-rules.test.yml": to_yaml(prometheus_rule_tests()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for relative, content in outputs().items():
        path = HERE / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python dashboards/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    for relative in stale:
        print(f"wrote dashboards/{relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
