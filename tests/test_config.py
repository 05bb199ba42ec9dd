"""Sensor configuration: TOML, defaults, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config, parse_listen_address

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "smbwatch.toml"


def test_the_shipped_example_loads() -> None:
    config = load_config(str(EXAMPLE))
    assert config.capture.interfaces == ["eth0"]
    assert config.detection.scan_destinations == 25


def test_values_land_where_they_belong() -> None:
    config = parse_config(
        {
            "capture": {"interfaces": ["eth1", "eth2"], "filter": "tcp port 445"},
            "exporter": {"listen_address": "127.0.0.1:9999", "basic_auth_users": {"prom": "secret"}},
            "detection": {"scan_destinations": 40, "scan_window": 60, "smb1_allow": ["192.0.2.50", "198.51.100.0/28"]},
            "flows": {"max_flows": 1000},
        }
    )
    assert config.capture.interfaces == ["eth1", "eth2"] and config.capture.filter == "tcp port 445"
    assert config.detection.scan_destinations == 40 and config.detection.scan_window == 60.0
    assert config.flows.max_flows == 1000 and config.exporter.basic_auth_users == {"prom": "secret"}
    assert config.detection.bruteforce_failures == 10  # untouched defaults stay
    assert config.detection.smb1_allow == ("192.0.2.50", "198.51.100.0/28")


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"detection": {"scan_destination": 5}}, "detection.scan_destination"),
        ({"detection": {"scan_destinations": "many"}}, "detection.scan_destinations"),
        ({"detection": {"scan_destinations": 0}}, "detection.scan_destinations"),
        ({"detection": {"scan_window": -1}}, "detection.scan_window"),
        ({"detection": {"ransomware_files": 0}}, "detection.ransomware_files"),
        ({"detection": {"ransomware_window": 0}}, "detection.ransomware_window"),
        ({"detection": {"lateral_movement_window": -5}}, "detection.lateral_movement_window"),
        ({"detection": {"activity_alert_period": 0}}, "detection.activity_alert_period"),
        ({"capture": {"interfaces": "eth0"}}, "capture.interfaces"),
        ({"exporter": {"listen_address": "nowhere"}}, "exporter.listen_address"),
        ({"exporter": {"host_series": 1}}, "exporter.host_series"),
        ({"exporter": {"tls_cert_file": "cert.pem"}}, "exporter.tls_cert_file"),
        ({"logging": {"format": "xml"}}, "logging.format"),
        ({"loging": {}}, "loging"),
        ({"detection": {"smb1_allow": ["192.0.2.300"]}}, "detection.smb1_allow"),
        ({"detection": {"smb1_allow": "192.0.2.5"}}, "detection.smb1_allow"),
    ],
)
def test_errors_name_the_key(document: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(document)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[capture\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(str(broken))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")  # a pcap header given as the configuration
    with pytest.raises(ConfigError, match=r"binary\.toml: not valid TOML: not UTF-8 text \(byte 0\)"):
        load_config(str(binary))
    typo = tmp_path / "typo.toml"
    typo.write_text("[detection]\nbruteforce_failure = 3\n")
    with pytest.raises(ConfigError, match=r"typo\.toml: detection\.bruteforce_failure: unknown key"):
        load_config(str(typo))


def test_listen_addresses() -> None:
    assert parse_listen_address(":10445") == ("", 10445)
    assert parse_listen_address("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_listen_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ConfigError):
        parse_listen_address("127.0.0.1:0x10")
