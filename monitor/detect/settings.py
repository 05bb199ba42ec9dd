"""The detector's thresholds and caps (`[detection]` in the sensor's configuration)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    # One SMB1 alert per client/server pair per hour: enough to see a pair keeps using SMB1
    # without an alert per connection of a chatty client.
    smb1_alert_period: float = 3600.0
    max_tracked_pairs: int = 100_000
    max_alerts_kept: int = 100_000
    # 445/139 scans: a source that opens (or tries to open) connections to this many distinct
    # destinations within the window. Zeek's old scan script fires at 25 failed destinations in
    # 5 minutes, ntopng at 32, an ET rule at 70 SYNs in 60 s; counting every first-seen flow (a
    # capture may miss the SYNs) 25 in 5 minutes keeps file-share-heavy clients, which talk to a
    # few servers many times, far below it.
    scan_destinations: int = 25
    scan_window: float = 300.0
    scan_alert_period: float = 600.0  # one alert per scanning source per period
    # Sources seen with one destination wait in a fixed table of this many slots, each source in the
    # slot its keyed hash picks; a second destination moves the source to the tracked table below.
    # A flood of random sources (one destination each) only overwrites slots and never reaches the
    # tracked table, so it cannot flush a real scanner out of it; a scanner's one-destination entry
    # survives n further flood sources with probability exp(-n / slots), and one of its many
    # attempts is enough.
    scan_probation_slots: int = 65_536
    max_scan_sources: int = 50_000  # tracked sources (two destinations or more); least recently active go first
    # Brute force: this many failed logons from one source to one server within the window.
    # Windows' account lockout thresholds are commonly 5 to 10 attempts; 10 in 5 minutes stays
    # above a user mistyping a password a few times.
    bruteforce_failures: int = 10
    bruteforce_window: float = 300.0
    max_bruteforce_pairs: int = 50_000
    # EternalBlue grooming: connections opened by one source to one server with a zeroed header in a
    # 0x00FFF7-byte frame. The public tools open a dozen or more within a second; no client sends even one,
    # so a handful within a minute is already the pattern.
    grooming_connections: int = 3
    grooming_window: float = 60.0
    grooming_alert_period: float = 600.0
    max_grooming_pairs: int = 10_000
    # How long (packet time) a request that expects an answer (an MS17-010 probe, a DoublePulsar
    # ping or upload) waits before "no answer" is the verdict. Servers answer these within
    # milliseconds; an alert must not wait for the connection's end.
    answer_timeout: float = 5.0
    # Known legacy devices (addresses or CIDR blocks): their SMB1 use is counted and reported as
    # allowed, but raises no smb1_negotiated alert.
    smb1_allow: tuple[str, ...] = ()
    # After the login (monitor/detect/activity.py). remote_execution, admin_share_executable,
    # print_driver_install, rpc_coercion and rpc_big_endian alert on the first event, then at most once
    # per period per client/server pair and kind: psexec alone creates, starts and deletes a service.
    activity_alert_period: float = 600.0
    # BZAR pairs a service or task created remotely with a file written to an admin share within 10 minutes.
    lateral_movement_window: float = 600.0
    # Ransomware: distinct existing files renamed, overwritten or deleted by one client on one server
    # within the window. The recorded controls change at most 3 files a minute (a user renaming and
    # deleting a few); the ransomware-like recording changes 30 in under 2 seconds. Creations and reads
    # (deployments, backups) are not counted.
    ransomware_files: int = 20
    ransomware_window: float = 60.0
    max_activity_pairs: int = 10_000


def parse_networks(
    entries: tuple[str, ...] | list[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses or CIDR blocks; raises ValueError naming the entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or CIDR block") from None
    return tuple(networks)
