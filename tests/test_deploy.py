"""The systemd unit: `systemd-analyze verify` finds nothing to say, and it grants CAP_NET_RAW and
nothing else. The example configuration in deploy/ loads (tests/test_config.py)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "smbwatch.service"
INSTALLED_SMBWATCH = "/opt/smbwatch/.venv/bin/smbwatch"


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNIT)
    return dict(parser["Service"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's smbwatch instead of /opt.
    smbwatch = Path(sys.executable).with_name("smbwatch")
    assert smbwatch.exists(), "install the package first (scripts/install.sh)"
    unit = tmp_path / "smbwatch.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_SMBWATCH, str(smbwatch)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # Unknown keys and bad values are only warnings: any output at all is a failure here.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_the_unit_grants_packet_capture_and_nothing_else() -> None:
    service = service_section()
    assert service["ExecStart"].startswith(INSTALLED_SMBWATCH + " sniff --config /etc/smbwatch/smbwatch.toml")
    assert service["DynamicUser"] == "yes" and service["NoNewPrivileges"] == "yes"
    assert service["AmbientCapabilities"] == service["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert service["ProtectSystem"] == "strict"
    families = set(service["RestrictAddressFamilies"].split())
    assert "AF_PACKET" in families and families <= {"AF_PACKET", "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert service["ExecReload"].endswith("kill -HUP $MAINPID")  # SIGHUP reloads the thresholds
