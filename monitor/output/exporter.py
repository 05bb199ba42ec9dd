"""The HTTP endpoint Prometheus scrapes: the registry on a path, with optional TLS and basic auth.

prometheus-client renders the registry (`make_wsgi_app`); this module only adds what
a sensor on a shared network needs around it: its own path, TLS, basic auth,
IPv6, and a server that runs in a daemon thread and stops cleanly.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hanging scrape never holds up shutdown


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes are not worth a stderr line each; the event log carries what matters."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _authorized(environ: Environ, users: Mapping[str, str]) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = users.get(user)
    # Compare even for an unknown user, so the answer takes as long either way.
    return hmac.compare_digest(password.encode(), (expected or "\0").encode()) and expected is not None


def build_app(registry: CollectorRegistry, telemetry_path: str, users: Mapping[str, str]) -> Callable:
    metrics_app = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if users and not _authorized(environ, users):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="smbwatch"')])
            return [b"authentication required\n"]
        path = environ.get("PATH_INFO", "")
        if path == telemetry_path:
            return metrics_app(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [f'<html><body><h1>smbwatch</h1><a href="{telemetry_path}">metrics</a></body></html>\n'.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class Exporter:
    """Serves `registry` on `host:port` + `telemetry_path` from a daemon thread until `close()`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        telemetry_path: str = "/metrics",
        tls_cert_file: str = "",
        tls_key_file: str = "",
        basic_auth_users: Mapping[str, str] | None = None,
    ) -> None:
        server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
        app = build_app(registry, telemetry_path, dict(basic_auth_users or {}))
        self.server = make_server(host or "0.0.0.0", port, app, server_class, handler_class=_QuietHandler)
        if tls_cert_file:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls_cert_file, tls_key_file)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="smbwatch-exporter", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
