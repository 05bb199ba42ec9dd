"""The sensor's configuration: a TOML file, then command-line flags over it.

Every key is checked: an unknown key, a wrong type or an impossible value is a
`ConfigError` naming the key (`detection.scan_destinations`), so a typo never
silently leaves a default in force. The file is optional; the defaults suit a
mirror port on a small network. `deploy/smbwatch.toml` is the documented example.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.detect import DetectionSettings, parse_networks
from monitor.input.capture import DEFAULT_FILTER as DEFAULT_BPF_FILTER
from monitor.output.inventory import DEFAULT_MAX_HOSTS
from monitor.tcp.flows import FlowLimits

# The exporter range 9100-9999 of Prometheus' port allocation list is used up, so no number in it is
# free; 10445 stays clear of registered exporters and echoes SMB's own port 445.
DEFAULT_LISTEN_ADDRESS = ":10445"
DEFAULT_TELEMETRY_PATH = "/metrics"


class ConfigError(ValueError):
    """A configuration value smbwatch cannot use; the message names the key."""


@dataclass(slots=True)
class CaptureConfig:
    interfaces: list[str] = field(default_factory=list)
    filter: str = DEFAULT_BPF_FILTER
    buffer_mb: int = 64


@dataclass(slots=True)
class ExporterConfig:
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    telemetry_path: str = DEFAULT_TELEMETRY_PATH
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # user name -> password, compared in constant time; keep the file readable by the sensor only.
    basic_auth_users: dict[str, str] = field(default_factory=dict)
    host_series: bool = False
    max_host_series: int = 1000


@dataclass(slots=True)
class LoggingConfig:
    format: str = "json"
    file: str = ""  # empty: standard output
    statistics_interval: float = 60.0


@dataclass(slots=True)
class LimitsConfig:
    """Caps on what the sensor remembers beyond the flow table and the detectors."""

    max_hosts: int = DEFAULT_MAX_HOSTS  # hosts listed (about 0.7 KiB each); more are counted, not listed


@dataclass(slots=True)
class SensorConfig:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    exporter: ExporterConfig = field(default_factory=ExporterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    flows: FlowLimits = field(default_factory=FlowLimits)
    limits: LimitsConfig = field(default_factory=LimitsConfig)


_SECTIONS = {
    "capture": CaptureConfig,
    "exporter": ExporterConfig,
    "logging": LoggingConfig,
    "detection": DetectionSettings,
    "flows": FlowLimits,
    "limits": LimitsConfig,
}


def _typed(key: str, value: Any, default: Any) -> Any:
    """`value` if it has the default's type (an int is accepted for a float), else a ConfigError."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(default, list | tuple):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return type(default)(value)
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{key}: expected a table of strings, got {value!r}")
        return value
    if type(value) is not type(default):
        raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
    if isinstance(value, int | float) and value < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return value


def _section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: expected a table")
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _typed(f"{name}.{key}", value, getattr(defaults, key))
    return dataclasses.replace(defaults, **values)


def parse_config(document: dict[str, Any]) -> SensorConfig:
    sections = {}
    for name, table in document.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(_SECTIONS)})")
        sections[name] = _section(name, _SECTIONS[name], table)
    config = SensorConfig(**sections)
    validate(config)
    return config


def load_config(path: str | None) -> SensorConfig:
    """The configuration in `path` (TOML), or the defaults when no path is given."""
    if not path:
        return SensorConfig()
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    try:
        return parse_config(document)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def validate(config: SensorConfig) -> None:
    """Values that have the right type but cannot work."""
    if config.logging.format not in ("json", "console"):
        raise ConfigError(f"logging.format: expected json or console, got {config.logging.format!r}")
    if config.logging.statistics_interval <= 0:
        raise ConfigError("logging.statistics_interval: must be positive")
    if not config.exporter.telemetry_path.startswith("/"):
        raise ConfigError(f"exporter.telemetry_path: must start with /, got {config.exporter.telemetry_path!r}")
    parse_listen_address(config.exporter.listen_address, "exporter.listen_address")
    if bool(config.exporter.tls_cert_file) != bool(config.exporter.tls_key_file):
        raise ConfigError("exporter.tls_cert_file and exporter.tls_key_file: give both or neither")
    if config.limits.max_hosts < 1:
        raise ConfigError("limits.max_hosts: must be at least 1")
    if config.flows.max_flows < 1:
        raise ConfigError("flows.max_flows: must be at least 1")
    if config.capture.buffer_mb < 1:
        raise ConfigError("capture.buffer_mb: must be at least 1")
    for name in ("scan_destinations", "bruteforce_failures", "grooming_connections", "ransomware_files"):
        if getattr(config.detection, name) < 1:
            raise ConfigError(f"detection.{name}: must be at least 1")
    for name in ("activity_alert_period", "lateral_movement_window", "ransomware_window", "max_activity_pairs"):
        if getattr(config.detection, name) <= 0:
            raise ConfigError(f"detection.{name}: must be positive")
    try:
        parse_networks(config.detection.smb1_allow)
    except ValueError as error:
        raise ConfigError(f"detection.smb1_allow: {error}") from None


def parse_listen_address(text: str, key: str = "--web.listen-address") -> tuple[str, int]:
    """`host:port`, `:port` (all addresses) or `[v6]:port`; port 0 picks a free one (tests)."""
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{key}: expected HOST:PORT or :PORT, got {text!r}")
    host = host.strip("[]")
    return host, int(port)
