"""The activity state stays within its caps under floods of CREATEs, pipes and binds, counts what the
caps drop, and the per-pipe DCE/RPC reading never raises on cut, spliced or random bytes."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissectors.records import (
    AnomalyKind,
    Smb2CreateRequest,
    Smb2CreateResponse,
    Smb2FileId,
    Smb2Header,
    Smb2WriteRequest,
)
from monitor.detect.rpc import classify_call
from monitor.smb.files import MAX_FILES_KEPT, MAX_OPENS_TRACKED, MAX_REQUESTS_WAITING, FileTracker
from monitor.smb.rpc import MAX_INTERFACES_KEPT, MAX_PIPES_TRACKED, RpcTracker

TO_CLIENT = 0x00000001  # SMB2_FLAGS_SERVER_TO_REDIR
STATUS_SUCCESS = 0
CREATE, WRITE = 5, 9
TREES = [
    {"path": "\\\\192.0.2.20\\DATA", "share_type": "disk", "tree_id": 1, "status": "STATUS_SUCCESS"},
    {"path": "\\\\192.0.2.20\\IPC$", "share_type": "pipe", "tree_id": 2, "status": "STATUS_SUCCESS"},
]


def _header(command: int, message_id: int, tree_id: int, response: bool = False) -> Smb2Header:
    return Smb2Header(
        credit_charge=1,
        status=STATUS_SUCCESS,
        command=command,
        credits=1,
        flags=TO_CLIENT if response else 0,
        next_command=0,
        message_id=message_id,
        async_id=None,
        tree_id=tree_id,
        session_id=1,
        signature=b"\x00" * 16,
    )


def _create(name: str) -> Smb2CreateRequest:
    return Smb2CreateRequest(name, 0, 2, 0x0012019F, 0x80, 7, 2, 0x40)


def _created(file_id: int) -> Smb2CreateResponse:
    return Smb2CreateResponse(0, 0, 2, 0, 0, 0x80, Smb2FileId(file_id, file_id))


def _tracker() -> tuple[FileTracker, Counter[AnomalyKind], list[Any]]:
    anomalies: Counter[AnomalyKind] = Counter()
    findings: list[Any] = []
    rpc = RpcTracker(anomalies, findings, classify_call)
    return FileTracker(TREES, anomalies, findings, rpc), anomalies, findings


def _bind(call_id: int, uuid_bytes: bytes) -> bytes:
    """A little-endian DCE/RPC bind of one context ([C706] 12.6.4.3), as a pipe WRITE carries it."""
    syntax = uuid_bytes + (1).to_bytes(2, "little") + (0).to_bytes(2, "little")
    ndr = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + (2).to_bytes(4, "little")
    context = (0).to_bytes(2, "little") + bytes([1, 0]) + syntax + ndr
    body = (4280).to_bytes(2, "little") * 2 + (0).to_bytes(4, "little") + bytes([1, 0, 0, 0]) + context
    length = 16 + len(body)
    header = bytes([5, 0, 11, 3, 0x10, 0, 0, 0]) + length.to_bytes(2, "little") + (0).to_bytes(2, "little")
    return header + call_id.to_bytes(4, "little") + body


def test_a_flood_of_unanswered_creates_stays_within_the_caps() -> None:
    tracker, anomalies, _ = _tracker()
    tracemalloc.start()
    for message_id in range(20_000):
        tracker.smb2(_header(CREATE, message_id, 1), _create(f"dir\\file-{message_id}.txt"), float(message_id))
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(tracker._creates) == MAX_REQUESTS_WAITING
    assert len(tracker.entries) == MAX_FILES_KEPT
    assert tracker.entries_dropped == 20_000 - MAX_FILES_KEPT
    assert anomalies[AnomalyKind.FILE_TRACKING_FULL] >= 20_000 - MAX_REQUESTS_WAITING
    assert current < 2 * 1024 * 1024, current  # bounded by the caps, not by the 20,000 requests


def test_a_flood_of_answered_opens_and_binds_stays_within_the_caps() -> None:
    tracker, anomalies, _ = _tracker()
    for message_id in range(3_000):
        tracker.smb2(_header(CREATE, message_id, 2), _create(f"pipe{message_id}"), 0.0)
        tracker.smb2(_header(CREATE, message_id, 2, response=True), _created(message_id), 0.0)
        uuid = message_id.to_bytes(4, "little") + bytes(12)
        data = _bind(1, uuid)
        write = Smb2WriteRequest(112, len(data), 0, Smb2FileId(message_id, message_id), 0, 0, 0, data)
        tracker.smb2(_header(WRITE, 10_000 + message_id, 2), write, 0.0)
    assert len(tracker._opens) <= MAX_OPENS_TRACKED
    assert len(tracker.rpc._pipes) == MAX_PIPES_TRACKED
    assert len(tracker.rpc.interfaces) <= MAX_INTERFACES_KEPT
    # Opens past the handle cap never reach the RPC tracker; of those that do, pipes past its cap are counted.
    assert anomalies[AnomalyKind.FILE_TRACKING_FULL] == 3_000 - MAX_OPENS_TRACKED
    assert anomalies[AnomalyKind.RPC_TRACKING_FULL] == MAX_OPENS_TRACKED - MAX_PIPES_TRACKED
    assert len(tracker.rpc.interfaces) == MAX_PIPES_TRACKED  # one bind each on the pipes followed
    assert tracker.entries == []  # pipes are not files


def _pipe_stream() -> bytes:
    return b"".join(_bind(call_id, bytes(range(16))) for call_id in range(1, 4))


@given(
    cuts=st.lists(st.integers(0, 300), max_size=12),
    garbage=st.binary(max_size=64),
    where=st.integers(0, 400),
)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
def test_pipe_bytes_cut_spliced_or_garbled_never_raise(cuts: list[int], garbage: bytes, where: int) -> None:
    tracker, _anomalies, _ = _tracker()
    tracker.smb2(_header(CREATE, 1, 2), _create("srvsvc"), 0.0)
    tracker.smb2(_header(CREATE, 1, 2, response=True), _created(7), 0.0)
    data = _pipe_stream()
    data = data[:where] + garbage + data[where:]
    points = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    key = (2, Smb2FileId(7, 7))
    for start, end in itertools.pairwise(points):
        tracker.rpc.data(key, True, data[start:end], 0.0)
        tracker.rpc.data(key, False, data[start:end][::-1], 0.0)
    tracker.end(1.0)
    for interface in tracker.rpc.interfaces:
        assert len(interface.calls) <= 64
    assert len(tracker.rpc.interfaces) <= MAX_INTERFACES_KEPT
