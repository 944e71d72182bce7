"""Where our HTTP calls may go, and how long one may take.

Webhook and Slack URLs are set by admins, but a URL pointing inside the network
(127.0.0.1, 10/8, 169.254.169.254, the database's port) would let anyone who can
add a channel make the worker call internal services. So a call only goes to
addresses on the public internet, unless its host is listed in
`OUTBOUND_ALLOW_HOSTS` (comma-separated `host` or `host:port`: an on-premise
receiver, a loopback receiver in tests). The check runs when a URL is saved and
again at every call, on the address actually connected to (after DNS resolution,
so a name that later resolves inside the network is refused too).

Each call also has one deadline for the whole exchange: a receiver trickling a
byte every few seconds would otherwise hold the sending thread for as long as it
likes, since socket timeouts count only the wait for each read.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import itertools
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings


class ForbiddenDestination(OSError):
    """The URL's host is (or resolves to) an address inside the network."""


def _allowed() -> set[str]:
    raw = str(getattr(settings, "OUTBOUND_ALLOW_HOSTS", "") or "")
    return {h.strip().lower() for h in raw.split(",") if h.strip()}


def host_allowed(host: str, port: int) -> bool:
    """Listed in OUTBOUND_ALLOW_HOSTS, as the host alone or as host:port."""
    allowed = _allowed()
    host = host.lower().strip("[]")
    return host in allowed or f"{host}:{port}" in allowed or f"[{host}]:{port}" in allowed


def internal(address: str) -> bool:
    """Not an address on the public internet: private, loopback, link-local (the cloud
    metadata service), shared, multicast, reserved or unspecified."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _inside(infos: list[tuple[Any, ...]]) -> list[str]:
    """The resolved addresses that are inside the network, in order."""
    return sorted({info[4][0] for info in infos if internal(info[4][0])})


def refusal(url: str) -> str | None:
    """Why a URL may not be called (saving a channel), or None. A name that cannot be
    resolved now is accepted: it is checked again at every call."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "has a port that is not a number"
    if not host:
        return "has no host"
    if host_allowed(host, port):
        return None
    try:
        inside = _inside(_resolve(host, port))
    except (OSError, UnicodeError):
        return None
    if inside:
        return (
            f"points inside the network ({host} is {inside[0]}); list the host in "
            "OUTBOUND_ALLOW_HOSTS to allow an on-premise receiver"
        )
    return None


def connect(
    address: tuple[str, int], timeout: float | None = None, source: Any = None
) -> socket.socket:
    """socket.create_connection, to public addresses only (or an allowed host), and
    under the current call's deadline."""
    host, port = address
    if host_allowed(host, port):
        sock = socket.create_connection(address, timeout, source)
    else:
        infos = _resolve(host, port)
        inside = _inside(infos)
        if inside:
            raise ForbiddenDestination(
                f"{host} resolves to {inside[0]}, inside the network (OUTBOUND_ALLOW_HOSTS)"
            )
        sock = _first_connecting(infos, timeout)
    _watch(sock)
    return sock


def _first_connecting(infos: list[tuple[Any, ...]], timeout: float | None) -> socket.socket:
    """Connect to the addresses checked, not to a second lookup's (which could differ)."""
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("no address to connect to")


class _Guarded(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = connect


class _GuardedTLS(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = connect


class GuardedHTTP(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Guarded, req)


class GuardedHTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedTLS, req)


# --- one deadline per call ------------------------------------------------------------------


class _Watchdog:
    """One thread that shuts down the sockets of calls past their deadline."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.heap: list[tuple[float, int]] = []
        self.sockets: dict[int, socket.socket] = {}
        self.ids = itertools.count()
        self.thread: threading.Thread | None = None

    def add(self, sock: socket.socket, deadline: float) -> int:
        with self.lock:
            key = next(self.ids)
            self.sockets[key] = sock
            heapq.heappush(self.heap, (deadline, key))
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="closeloop-deadlines", daemon=True
                )
                self.thread.start()
            self.lock.notify()
            return key

    def remove(self, key: int) -> None:
        with self.lock:
            self.sockets.pop(key, None)

    def _run(self) -> None:
        while True:
            with self.lock:
                while self.heap and self.heap[0][1] not in self.sockets:
                    heapq.heappop(self.heap)  # finished in time
                if not self.heap:
                    self.lock.wait()
                    continue
                deadline, key = self.heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self.lock.wait(wait)
                    continue
                heapq.heappop(self.heap)
                sock = self.sockets.pop(key)
            try:
                sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
            except OSError:
                pass


_watchdog = _Watchdog()
_call = threading.local()


class Call:
    """The sockets of one call under a deadline."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.keys: list[int] = []

    @property
    def expired(self) -> bool:
        """Whether the deadline shut one of its sockets down."""
        with _watchdog.lock:
            return any(key not in _watchdog.sockets for key in self.keys)


@contextmanager
def deadline(seconds: float) -> Iterator[Call]:
    """Every socket this thread opens inside is shut down `seconds` after the call began."""
    call = _call.current = Call(seconds)
    try:
        yield call
    finally:
        _call.current = None
        for key in call.keys:
            _watchdog.remove(key)


def _watch(sock: socket.socket) -> None:
    call: Call | None = getattr(_call, "current", None)
    if call is not None:
        call.keys.append(_watchdog.add(sock, call.end))
