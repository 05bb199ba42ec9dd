"""The SMB1 messages of a capture twice: as smbwatch decodes them (capture → decode → flows → SmbStream,
the real pipeline up to the records) and as tshark dissects them (`-T json`, one subtree per command of
each SMB layer), each in order per direction of each TCP connection, so they can be compared one by one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from dissectors.records import Smb1Message, StreamEvent
from monitor.input.capture import CaptureFile
from monitor.input.decode import Decoder
from monitor.tcp.flows import Direction, Flow, FlowLimits, FlowTable
from monitor.tcp.identity import format_ip

# One direction of one connection: source ip, source port, destination ip, destination port.
DirectionKey = tuple[str, int, str, int]
# tshark keeps the context it remembers about a FID or a TID (the name it was opened with, ...) in
# these subtrees: not decoded from the message at hand, so left out of the comparison.
_CONTEXT_SUBTREES = frozenset(("smb.fid_tree", "smb.tid_tree"))
_COMMAND_SUBTREE = re.compile(r"^(?P<what>.*) (?P<kind>Request|Response) \(0x(?P<code>[0-9a-f]{2})\)$")


class TsharkCommand(NamedTuple):
    """One SMB1 command as tshark dissected it: every field of its subtree (all values, in order),
    and the frame's other layers when the frame holds this one SMB message only."""

    frame: int
    code: int
    response: bool
    fields: dict[str, list[str]]
    frame_layers: dict[str, dict[str, list[str]]]

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def number(self, name: str) -> int | None:
        value = self.first(name)
        return None if value in (None, "") else int(value, 0)


def smbwatch_messages(path: Path) -> dict[DirectionKey, list[tuple[Smb1Message, list[StreamEvent]]]]:
    """Each SMB1 command record per direction, with the events that followed it (anomalies)."""
    found: dict[DirectionKey, list[tuple[Smb1Message, list[StreamEvent]]]] = defaultdict(list)

    def on_events(flow: Flow, direction: Direction, events: list[StreamEvent], ts: float) -> None:
        source, destination = (flow.client, flow.server) if direction == 0 else (flow.server, flow.client)
        key = (format_ip(source[0]), source[1], format_ip(destination[0]), destination[1])
        for event in events:
            if isinstance(event, Smb1Message):
                found[key].append((event, []))
            elif found[key]:
                found[key][-1][1].append(event)

    table = FlowTable(FlowLimits(), on_events, lambda flow, reason: None)
    decoder = Decoder()
    for ts, linktype, frame in CaptureFile(str(path)):
        segment = decoder.decode(linktype, frame)
        if segment is not None:
            table.process(ts, segment)
    table.close_all()
    return dict(found)


def _flatten(items: list[tuple[str, Any]], into: dict[str, list[str]]) -> None:
    for name, value in items:
        if name in _CONTEXT_SUBTREES:
            continue
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            _flatten(value, into)
        elif isinstance(value, str):
            into.setdefault(name, []).append(value)
        elif isinstance(value, list):
            into.setdefault(name, []).extend(item for item in value if isinstance(item, str))


def _layers_of(packet: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    source = dict(packet)["_source"]
    return list(dict(source)["layers"])


def tshark_commands(path: Path) -> dict[DirectionKey, list[TsharkCommand]]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install.sh installs it)")
    command = [tshark, "-r", str(path), "-Y", "smb", "-o", "tcp.reassemble_out_of_order:TRUE"]
    command += ["-T", "json", "-J", "frame ip ipv6 tcp smb smb_pipe dcerpc"]
    output = subprocess.run(command, capture_output=True, check=True, timeout=300).stdout.decode(
        "utf-8", "surrogateescape"
    )
    packets = json.loads(output, object_pairs_hook=lambda pairs: pairs)
    found: dict[DirectionKey, list[TsharkCommand]] = defaultdict(list)
    for packet in packets:
        layers = _layers_of(packet)
        flat_layers: dict[str, dict[str, list[str]]] = {}
        smb_layers = []
        for name, value in layers:
            if name == "smb":
                # Several SMB messages in one frame: a list of layers.
                smb_layers.extend(value if value and isinstance(value[0], list) else [value])
            elif isinstance(value, list):
                flat: dict[str, list[str]] = {}
                _flatten(value, flat)
                flat_layers.setdefault(name, flat)
        frame = int(flat_layers["frame"]["frame.number"][0])
        if "tcp" not in flat_layers:
            continue  # SMB in a NetBIOS datagram (browser announcements over UDP 138): not a connection
        ip = flat_layers.get("ip") or flat_layers["ipv6"]
        source = (ip.get("ip.src") or ip["ipv6.src"])[0]
        destination = (ip.get("ip.dst") or ip["ipv6.dst"])[0]
        tcp = flat_layers["tcp"]
        key = (source, int(tcp["tcp.srcport"][0]), destination, int(tcp["tcp.dstport"][0]))
        commands = []
        for layer in smb_layers:
            for name, value in layer:
                match = _COMMAND_SUBTREE.match(name)
                if match is None or not isinstance(value, list):
                    continue
                fields: dict[str, list[str]] = {}
                _flatten(value, fields)
                commands.append((int(match["code"], 16), match["kind"] == "Response", fields))
        single = len(commands) == 1
        for code, response, fields in commands:
            found[key].append(TsharkCommand(frame, code, response, fields, flat_layers if single else {}))
    return dict(found)
