"""The NTSTATUS name table generated from [MS-ERREF] 2.3.1 (scripts/generate_nt_status.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from dissectors.constants import NtStatus, nt_status_name
from dissectors.nt_status import NT_STATUS_NAMES

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate_nt_status.py"


def test_known_values() -> None:
    assert nt_status_name(0xC000006D) == "STATUS_LOGON_FAILURE"
    assert nt_status_name(0xC0000016) == "STATUS_MORE_PROCESSING_REQUIRED"
    assert nt_status_name(0xC0000205) == "STATUS_INSUFF_SERVER_RESOURCES"
    assert nt_status_name(0xC0000234) == "STATUS_ACCOUNT_LOCKED_OUT"
    assert nt_status_name(0x005B0002) == "STATUS_SMB_BAD_UID"  # SMB1 DOS class, not in [MS-ERREF]
    assert nt_status_name(0xDEADBEEF) == "unknown-0xdeadbeef"
    assert len(NT_STATUS_NAMES) > 1500


def test_hand_named_values_agree_with_the_table() -> None:
    for status in NtStatus:
        if status.value in NT_STATUS_NAMES:
            assert NT_STATUS_NAMES[status.value] == status.name


@pytest.mark.skipif(importlib.util.find_spec("impacket") is None, reason="impacket (the table's source) not installed")
def test_committed_table_is_what_the_script_generates() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
