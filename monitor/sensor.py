"""The live sensor: frames from an interface (or a replayed file) through the pipeline to the exporter
and the event log, until stopped.

The pipeline runs in the calling thread. Between frames, and on the idle
heartbeats a source yields as `None`, the sensor refreshes the metrics snapshot
(once a second of wall time) and logs capture statistics (every
`logging.statistics_interval`). `stop()` may be called from a signal handler:
it only sets flags; the loop ends at the next frame or heartbeat, closes every
flow so its facts reach the sinks, logs the final statistics and returns.
`request_reload()` (SIGHUP) too: the reload runs in the loop at its next tick,
so a signal handler never writes an event itself (the logger holds a lock
while it writes: a handler interrupting a write would wait for itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from monitor.config import SensorConfig
from monitor.detect import DetectionSettings, Detector
from monitor.input.capture import CaptureError, CaptureFile, Frame, InterfaceStatistics, LiveCapture
from monitor.output.events import EventLog
from monitor.output.inventory import Inventory
from monitor.output.metrics import SensorMetrics
from monitor.pipeline import Pipeline

REFRESH_INTERVAL = 1.0  # seconds of wall time between metric snapshots
# The host counts walk the whole host table: once per usual scrape interval is enough for a slow-moving gauge.
HOSTS_REFRESH_INTERVAL = 15.0
HEARTBEAT = 0.25  # longest a source stays silent, so stop() and refreshes happen on an idle link


class FrameSource(Protocol):
    """Frames in capture order; `None` items are idle heartbeats. `stop()` ends the iteration soon.
    `pace` is how many seconds of capture time pass per second of wall time (1 live, the speed of a
    replay, 0 when that is unknown): it lets a quiet link advance capture time between packets."""

    pace: float

    def __iter__(self) -> Iterator[Frame | None]: ...

    def stop(self) -> None: ...

    def statistics(self) -> Mapping[str, InterfaceStatistics]: ...


class ReplaySource:
    """A capture file played as if it arrived live, `speed` times real time (0: as fast as possible)."""

    def __init__(self, path: str, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.capture = CaptureFile(path)
        self.speed = speed
        self.pace = speed
        self._clock = clock
        self._stop = threading.Event()
        self.packets = 0
        self.bytes = 0

    def __iter__(self) -> Iterator[Frame | None]:
        start_wall: float | None = None
        first_ts = 0.0
        for frame in self.capture:
            if self._stop.is_set():
                return
            if self.speed > 0:
                if start_wall is None:
                    start_wall, first_ts = self._clock(), frame[0]
                due = start_wall + (frame[0] - first_ts) / self.speed
                while (wait := due - self._clock()) > 0:
                    if self._stop.wait(min(wait, HEARTBEAT)):
                        return
                    yield None
            self.packets += 1
            self.bytes += len(frame[2])
            yield frame

    def stop(self) -> None:
        self._stop.set()

    def statistics(self) -> Mapping[str, InterfaceStatistics]:
        # A file has no kernel in between: everything read was "received by the kernel", nothing dropped.
        return {"replay": InterfaceStatistics("replay", self.packets, self.bytes, self.packets, 0)}


class LiveSource:
    """Live interfaces as a `FrameSource`: the capture's frames with its idle heartbeats."""

    pace = 1.0

    def __init__(self, capture: LiveCapture) -> None:
        self.capture = capture

    def __iter__(self) -> Iterator[Frame | None]:
        return self.capture.frames(heartbeats=True)

    def stop(self) -> None:
        self.capture.stop()

    def statistics(self) -> Mapping[str, InterfaceStatistics]:
        return self.capture.statistics()

    def close(self) -> None:
        self.capture.close()


@dataclass(slots=True)
class SensorParts:
    """What the sensor wires together; built by `build_parts` and replaceable in tests."""

    pipeline: Pipeline
    inventory: Inventory
    detector: Detector
    metrics: SensorMetrics
    events: EventLog


def build_parts(config: SensorConfig, registry: CollectorRegistry, logger: Any, version: str) -> SensorParts:
    metrics = SensorMetrics(
        registry, version, host_series=config.exporter.host_series, max_host_series=config.exporter.max_host_series
    )
    events = EventLog(logger)
    inventory = Inventory(max_records=0, max_hosts=config.limits.max_hosts)
    detector = Detector(config.detection, sinks=[metrics.alert, events.alert], keep_alerts=False)
    pipeline = Pipeline(
        config.flows,
        sinks=[inventory, metrics.connection_closed],
        detector=detector,
        observers=[metrics, events, inventory],
    )
    return SensorParts(pipeline, inventory, detector, metrics, events)


class Sensor:
    def __init__(
        self,
        parts: SensorParts,
        source: FrameSource,
        statistics_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parts = parts
        self.source = source
        self.statistics_interval = statistics_interval
        self._clock = clock
        self._stopping = threading.Event()
        self._last_ts = 0.0
        self._frames = 0
        # When the newest frame was first seen by a tick: (frame count, wall time, its capture time).
        self._anchor = (0, 0.0, 0.0)
        self._next_refresh = 0.0
        self._next_hosts_refresh = 0.0
        self._next_statistics = 0.0
        self.error: CaptureError | None = None
        # What request_reload() runs, in the loop; None: nothing to reload.
        self.on_reload: Callable[[], None] | None = None
        self._reload_requested = threading.Event()

    def stop(self) -> None:
        """Safe from a signal handler: only sets flags."""
        self._stopping.set()
        self.source.stop()

    def request_reload(self) -> None:
        """Safe from a signal handler: `on_reload` runs at the next tick of the loop (or of the serving
        after a replay); without one, a `reload_skipped` event says there is nothing to reload."""
        self._reload_requested.set()

    def _reload_if_requested(self) -> None:
        if not self._reload_requested.is_set():
            return
        self._reload_requested.clear()
        if self.on_reload is None:
            self.parts.events.lifecycle(
                "reload_skipped", reason="no configuration file to reload (start with --config)"
            )
        else:
            self.on_reload()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def reload(self, settings: DetectionSettings) -> None:
        """New thresholds; what the detector remembers (pairs, sources) stays."""
        self.parts.detector.settings = settings
        self.parts.events.lifecycle("reload", **{"smbwatch.detection": _public(settings)})

    def run(self) -> None:
        """Until the source ends or `stop()`; every flow is closed on the way out."""
        now = self._clock()
        self._next_statistics = now + self.statistics_interval
        try:
            self.parts.pipeline.feed(self._frames_between_ticks())
        except CaptureError as error:
            self.error = error
            self.parts.events.failure("capture_error", error=str(error))
        self.parts.pipeline.finish()
        self.tick(force=True)

    def serve_until_stopped(self) -> None:
        """After a replay: keep the final metrics up until `stop()`."""
        while not self._stopping.wait(HEARTBEAT):
            self._reload_if_requested()

    def _frames_between_ticks(self) -> Iterator[Frame]:
        for frame in self.source:
            if frame is not None:
                self._frames += 1
                self._last_ts = frame[0]
                yield frame
                if self._frames & 0xFF:
                    continue  # the clock is read once every 256 frames
            if self._stopping.is_set():
                return
            self.tick()

    def tick(self, force: bool = False) -> None:
        self._reload_if_requested()
        now = self._clock()
        parts = self.parts
        self._advance_capture_time(now)
        if force or now >= self._next_refresh:
            self._next_refresh = now + REFRESH_INTERVAL
            hosts = force or now >= self._next_hosts_refresh
            if hosts:
                self._next_hosts_refresh = now + HOSTS_REFRESH_INTERVAL
            statistics = self.source.statistics()
            parts.metrics.refresh(parts.pipeline, parts.inventory, statistics, self._last_ts, include_hosts=hosts)
        if force or now >= self._next_statistics:
            self._next_statistics = now + self.statistics_interval
            self._log_statistics()

    def _advance_capture_time(self, now: float) -> None:
        """On a quiet link capture time goes on without packets: estimate it from the wall clock since
        the newest frame, so answers that never come and holes never filled are settled on time."""
        frames, wall, ts = self._anchor
        if self._frames != frames:
            self._anchor = (self._frames, now, self._last_ts)
        elif frames and self.source.pace > 0:
            self.parts.pipeline.advance(ts + (now - wall) * self.source.pace)

    def _log_statistics(self) -> None:
        parts = self.parts
        snapshot = parts.metrics.snapshot()
        interfaces = {
            name: {"packets": c.packets, "bytes": c.bytes, "kernel_packets": c.kernel_packets, "drops": c.kernel_drops}
            for name, c in snapshot.interfaces.items()
        }
        parts.events.statistics(
            {
                "capture.interfaces": interfaces,
                "smb.messages": snapshot.messages,
                "flows.active": snapshot.flows_active,
                "flows.opened": snapshot.flows_opened,
                "reassembly.gaps": snapshot.gaps,
                "alerts": dict(parts.detector.counts),
                "ts": snapshot.last_packet_ts or None,
            }
        )
        parts.events.anomalies(snapshot.anomalies)


def _public(settings: DetectionSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
