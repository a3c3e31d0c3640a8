"""The agent's one way out of its own network namespace: a filtering HTTP proxy on ralph's side.

Under `--sandbox bwrap` an agent runs with `--unshare-net`: a network namespace holding nothing but
its own loopback, so the host's 127.0.0.1 (a Ray dashboard, a database, another user's notebook),
the private ranges, the cluster and abstract Unix sockets are out of reach. `Egress` names what it
may reach instead: its backend's model API, as `host:port` endpoints taken from the backend's base
URL. `FilteringProxy` serves those, and only those: ralph runs it in a thread, listening on a Unix
socket in a directory of its own that is bound read-only into the sandbox; `relay.py`, started in
the sandbox before the agent, forwards 127.0.0.1:`PROXY_PORT` there, and the agent's environment
names that port in HTTPS_PROXY and its kin (`proxy_env`).

The proxy takes `CONNECT host:port` (HTTPS) and absolute `http://` requests. A target that is not
an allowed endpoint gets `403` before any name is resolved (no DNS lookups for the agent either);
an allowed name that resolves to a loopback, private or link-local address is refused too, unless
the allowed host is itself such an address (a local fake API, an in-house gateway named by IP).
Anything else (garbage, an oversized or slow request head, more than MAX_CONNECTIONS at once) is
answered with a 4xx or 503 and the connection closed; the proxy goes on serving. Every refusal is
recorded (`refused`) for the attempt's transcript.

Hand-written on the standard library's `socketserver`: the work is a request line, an allow-list
and a byte pipe; an HTTP proxy library would bring TLS interception and configuration this does
not want (docs/judge.md, "Network", says why not `@anthropic-ai/sandbox-runtime`).
"""

from __future__ import annotations

import ipaddress
import os
import selectors
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PROXY_PORT = 3128  # where the relay listens inside the sandbox (its own loopback: never taken)
HEAD_MAX = 16 << 10  # bytes of a request head the proxy reads before refusing it
HEAD_TIMEOUT_S = 30.0  # seconds a client may take to send its request head
CONNECT_TIMEOUT_S = 15.0  # seconds to reach the allowed endpoint
LINGER_S = 1.0  # seconds a refused client's remaining input is read before the connection closes
POLL_S = 0.05  # how often the server thread looks for its stop request (the wait for it ends each attempt)
MAX_CONNECTIONS = 64  # open at once; more are refused (503), so an agent cannot spend ralph's threads
REFUSALS_KEPT = 50  # refusal lines kept for the transcript; the rest are counted
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Endpoint:
    """One `host:port` the proxy may connect to; `host` lower-case, without brackets or a trailing dot."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, host: str, port: int) -> Endpoint:
        return cls(host.strip("[]").rstrip(".").lower(), port)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """The endpoint of a base URL (`https://api.anthropic.com` is api.anthropic.com:443); ValueError naming the
        URL when it has no host or a scheme whose port is unknown."""
        parts = urlsplit(url.strip())
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        except (KeyError, ValueError):
            raise ValueError(f"API URL {url!r} needs an http:// or https:// scheme (or an explicit port), "
                             "e.g. https://api.example.com") from None
        if not parts.hostname:
            raise ValueError(f"API URL {url!r} names no host; write it as https://HOST[:PORT]")
        return cls.parse(parts.hostname, port)


@dataclass(frozen=True)
class Egress:
    """What a sandboxed agent may reach: only `allowed`, through the proxy. No endpoints: no network at all."""

    allowed: tuple[Endpoint, ...] = ()

    @classmethod
    def to(cls, urls: Iterable[str]) -> Egress:
        """The egress for these base URLs (duplicates dropped, order kept)."""
        return cls(tuple(dict.fromkeys(Endpoint.from_url(u) for u in urls if u)))

    def describe(self) -> str:
        return ", ".join(map(str, self.allowed)) or "nothing"


def proxy_env(env: Mapping[str, str], port: int = PROXY_PORT) -> dict[str, str]:
    """`env` with every proxy variable pointing at the relay and no NO_PROXY (whose hosts would be tried directly,
    and fail, in the sandbox's empty namespace)."""
    url = f"http://127.0.0.1:{port}"
    kept = {k: v for k, v in env.items() if k not in PROXY_VARS and k not in NO_PROXY_VARS}
    return {**kept, **dict.fromkeys(PROXY_VARS, url)}


def _is_local(address: str) -> bool:
    """True for an IP address outside the public internet (loopback, private, link-local, shared, reserved...)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class Refused(Exception):
    """A request the proxy answers with an HTTP error: `status`, and the reason sent to the client and recorded."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(request head up to and including its blank line, the bytes after it); Refused when it is too long, slow
    or cut short."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_MAX:
            raise Refused(431, f"request head longer than {HEAD_MAX} bytes")
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            raise Refused(408, f"no complete request head within {HEAD_TIMEOUT_S:.0f}s") from None
        if not chunk:
            raise Refused(400, "connection closed before a complete request head")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return bytes(data[:end]), bytes(data[end:])


def parse_target(head: bytes) -> tuple[str, Endpoint, bytes | None]:
    """(method, endpoint, head to send upstream) of a request head: None for CONNECT (a tunnel: nothing is sent),
    else the head with its absolute URL made a path. Refused (400) for anything a proxy should not take."""
    try:
        line, _, rest = head.decode("ascii").partition("\r\n")
    except UnicodeDecodeError:
        raise Refused(400, "request head is not ASCII") from None
    words = line.split(" ")
    if len(words) != 3 or not words[2].startswith("HTTP/1."):
        raise Refused(400, f"not an HTTP/1.x request line: {line[:120]!r}")
    method, target, version = words
    if method.upper() == "CONNECT":
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise Refused(400, f"CONNECT needs host:port, got {target[:120]!r}")
        return "CONNECT", Endpoint.parse(host, int(port)), None
    parts = urlsplit(target)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise Refused(400, f"{method} {target[:120]}: the proxy takes CONNECT host:port or an absolute http:// URL")
    try:
        port = parts.port or 80
    except ValueError:
        raise Refused(400, f"bad port in {target[:120]!r}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return method, Endpoint.parse(parts.hostname, port), f"{method} {path} {version}\r\n{rest}".encode("ascii")


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both directions are closed; an end that closes is half-closed on the other."""
    open_ends = {a: b, b: a}
    with selectors.DefaultSelector() as sel:
        for s in open_ends:
            s.setblocking(True)
            s.settimeout(None)
            sel.register(s, selectors.EVENT_READ)
        while open_ends:
            for key, _ in sel.select():
                src = key.fileobj
                assert isinstance(src, socket.socket)
                try:
                    data = src.recv(1 << 16)
                except OSError:
                    data = b""
                dst = open_ends.get(src)
                if dst is None:
                    continue
                if data:
                    try:
                        dst.sendall(data)
                        continue
                    except OSError:
                        pass  # the other side is gone: stop this direction
                sel.unregister(src)
                del open_ends[src]
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        if not owner.slots.acquire(blocking=False):
            self.refuse(Refused(503, f"more than {MAX_CONNECTIONS} connections open at once"), "?", "?")
            return
        try:
            self.serve()
        finally:
            owner.slots.release()

    def refuse(self, refusal: Refused, method: str, target: str) -> None:
        """Answer `refusal` with its status and reason, and record it."""
        self.server.owner.refuse(f"{method} {target}: {refusal}")
        body = f"ralph's sandbox proxy refused this request: {refusal}\n".encode()
        reply = (f"HTTP/1.1 {refusal.status} Refused\r\nContent-Type: text/plain\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        try:
            self.request.sendall(reply)
            # Closing with unread input would reset the connection, and the client might lose the reply:
            # half-close, then read what it still sends for a moment (bounded) before closing.
            self.request.shutdown(socket.SHUT_WR)
            self.request.settimeout(LINGER_S)
            drained = 0
            while drained < HEAD_MAX and (chunk := self.request.recv(4096)):
                drained += len(chunk)
        except OSError:
            pass

    def serve(self) -> None:
        client: socket.socket = self.request
        client.settimeout(HEAD_TIMEOUT_S)
        method, target = "?", "?"
        try:
            head, early = read_head(client)
            method, endpoint, upstream_head = parse_target(head)
            target = str(endpoint)
            upstream = self.server.owner.connect(endpoint)
        except Refused as refusal:
            self.refuse(refusal, method, target)
            return
        with upstream:
            if upstream_head is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(upstream_head)
            if early:
                upstream.sendall(early)
            # Every later byte on this connection goes to the same endpoint, whatever it says: a second
            # request naming another host in absolute form still reaches only the allowed one.
            with self.server.owner.tracked(upstream):
                pipe(client, upstream)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a full backlog fails a Unix-socket connect at once (EAGAIN): CLIs open several
    owner: FilteringProxy

    def handle_error(self, request: object, client_address: object) -> None:  # fail closed: drop, record
        self.owner.refuse(f"proxy error, connection dropped: {sys.exc_info()[1]!r}")


class FilteringProxy:
    """`with FilteringProxy(egress) as proxy:` — serves `proxy.socket_path` until the block ends.

    `refused` lists what it turned away (at most REFUSALS_KEPT lines; `refused_count` counts all).
    """

    def __init__(self, egress: Egress) -> None:
        self.allowed = frozenset(egress.allowed)
        self.egress = egress
        self.refused: list[str] = []
        self.refused_count = 0
        self._lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: list[socket.socket] = []
        self._dir = Path(tempfile.mkdtemp(prefix="ralph-net-"))
        self.socket_path = self._dir / "proxy.sock"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FilteringProxy:
        self._server = _Server(str(self.socket_path), _Handler)
        self._server.owner = self
        os.chmod(self.socket_path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,), name="ralph-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for s in self._open:  # tunnels still open end with the attempt
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def refuse(self, line: str) -> None:
        with self._lock:
            self.refused_count += 1
            if len(self.refused) < REFUSALS_KEPT:
                self.refused.append(line)

    @contextmanager
    def tracked(self, upstream: socket.socket) -> Iterator[None]:
        """While the block runs, `upstream` is shut down if the proxy stops."""
        with self._lock:
            self._open.append(upstream)
        try:
            yield
        finally:
            with self._lock:
                self._open.remove(upstream)

    def connect(self, endpoint: Endpoint) -> socket.socket:
        """A connection to `endpoint` when it is allowed; Refused (403 / 502) otherwise."""
        if endpoint not in self.allowed:
            raise Refused(403, f"{endpoint} is not the agent's model API (allowed: {self.egress.describe()})")
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Refused(502, f"cannot resolve {endpoint.host}: {exc}") from None
        # An allowed public name pointed (by DNS) at a local address would reach the host or its network.
        local_ok = _is_local(endpoint.host) or endpoint.host == "localhost"
        addresses = [info for info in infos if local_ok or not _is_local(str(info[4][0]))]
        if not addresses:
            raise Refused(403, f"{endpoint.host} resolves to a loopback or private address only")
        error: OSError | None = None
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(CONNECT_TIMEOUT_S)
            try:
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise Refused(502, f"cannot reach {endpoint}: {error}")

    def report(self) -> list[str]:
        """Lines for the transcript: each refusal, and how many more there were."""
        lines = [f"network: refused {line}" for line in self.refused]
        if self.refused_count > len(self.refused):
            lines.append(f"network: … and {self.refused_count - len(self.refused)} more refusals")
        return lines
