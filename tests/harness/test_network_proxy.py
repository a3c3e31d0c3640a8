"""ralph's filtering proxy (sandbox/network.py) on its own: the allowed model API passes, everything else is
refused with a record, and no input brings it down or opens a way to another endpoint."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.sandbox import network
from harness.sandbox.network import Egress, Endpoint, FilteringProxy, proxy_env
from tests.fakes.local_server import LocalServer, answering


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalServer, list[str], LocalServer, list[str]]]:
    api, api_hits = answering(b"model-api")
    other, other_hits = answering(b"host-service")  # a Ray dashboard, a database: anything else on the host
    with api, other:
        yield api, api_hits, other, other_hits


@pytest.fixture
def api_and_other(servers) -> tuple[LocalServer, list[str], LocalServer, list[str]]:
    """(the model API, what it served, another service on the host's loopback, what that served): counts from 0."""
    servers[1].clear()
    servers[3].clear()
    return servers


def ask(proxy: FilteringProxy, data: bytes, *, close_write: bool = False) -> bytes:
    """Send `data` to the proxy's socket and read until it closes (or 5 s pass)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(proxy.socket_path))
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply and b"Connection: close" not in reply and b"Content-Length" in reply:
                    head, _, body = reply.partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
        except TimeoutError:
            pass
        return reply


def port_of(srv: LocalServer) -> int:
    return int(srv.base_url.rsplit(":", 1)[1])


def test_the_allowed_api_is_reached_by_connect_and_by_absolute_url(api_and_other) -> None:
    api, api_hits, _, other_hits = api_and_other
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        got = ask(proxy, f"GET {api.base_url}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert got.startswith(b"HTTP/1.0 200") and got.endswith(b"model-api"), got
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(proxy.socket_path))
            s.sendall(f"CONNECT 127.0.0.1:{port_of(api)} HTTP/1.1\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200 Connection established")
            s.sendall(b"GET /v1/messages HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := s.recv(1000):  # the server answers HTTP/1.0 and closes
                reply += chunk
            assert reply.endswith(b"model-api"), reply
    assert api_hits == ["/v1/models", "/v1/messages"] and other_hits == []
    assert proxy.refused_count == 0


@pytest.mark.parametrize("request_line", [
    "CONNECT 127.0.0.1:{other} HTTP/1.1",  # the host's loopback, another port
    "GET http://127.0.0.1:{other}/api/jobs/ HTTP/1.1",  # the Ray Job API the agent reached
    "GET http://localhost:{api}/ HTTP/1.1",  # the API's port under another name is another endpoint
    "CONNECT 10.0.0.7:443 HTTP/1.1",  # private ranges
    "CONNECT 192.168.1.1:80 HTTP/1.1",
    "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1",  # the cloud metadata service
    "CONNECT [::1]:{other} HTTP/1.1",
    "CONNECT example.com:443 HTTP/1.1",  # the public internet
])
def test_any_other_endpoint_is_refused_with_403_and_recorded(api_and_other, request_line: str) -> None:
    api, api_hits, other, other_hits = api_and_other
    line = request_line.format(other=port_of(other), api=port_of(api))
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        got = ask(proxy, f"{line}\r\nHost: x\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 403"), got
    assert b"not the agent's model API" in got
    assert api_hits == [] and other_hits == []
    assert proxy.refused_count == 1 and line.split()[0] in proxy.report()[0]


def test_a_second_request_on_a_kept_alive_connection_still_reaches_only_the_api(api_and_other) -> None:
    """The endpoint is chosen once per connection: an absolute URL naming another host later on the same
    connection goes to the API, never to that host."""
    api, api_hits, other, other_hits = api_and_other
    with FilteringProxy(Egress.to([api.base_url])) as proxy, socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(proxy.socket_path))
        s.sendall(f"GET {api.base_url}/one HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(1000)
        s.sendall(f"GET {other.base_url}/two HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            s.recv(1000)
        except TimeoutError:
            pass
    assert other_hits == []
    assert api_hits[0] == "/one"


def test_an_allowed_name_that_resolves_to_a_local_address_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                    api_and_other) -> None:
    """DNS pointing the allowed public name at the host's loopback must not open the host to the agent."""
    _, _, other, other_hits = api_and_other
    port = port_of(other)
    monkeypatch.setattr(network.socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    with FilteringProxy(Egress.to([f"http://api.example.com:{port}"])) as proxy:
        got = ask(proxy, f"GET http://api.example.com:{port}/ HTTP/1.1\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 403") and b"resolves to a loopback or private address" in got, got
    assert other_hits == []


@pytest.mark.parametrize("garbage,status", [
    (b"\x00\xff\xfe garbage \x80\r\n\r\n", b"400"),
    (b"HELLO\r\n\r\n", b"400"),
    (b"GET /relative HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"400"),  # a proxy takes absolute URLs only
    (b"GET https://api.example.com/ HTTP/1.1\r\n\r\n", b"400"),  # https goes through CONNECT
    (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", b"400"),
    (b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n", b"400"),
    (b"GET http://127.0.0.1:notaport/ HTTP/1.1\r\n\r\n", b"400"),
    (b"CONNECT \xe2\x80\x8b127.0.0.1:80 HTTP/1.1\r\n\r\n", b"400"),
    (b"X" * (network.HEAD_MAX + 10), b"431"),  # an endless head
])
def test_garbage_fails_closed_and_the_proxy_keeps_serving(api_and_other, garbage: bytes, status: bytes) -> None:
    api, api_hits, _, other_hits = api_and_other
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        got = ask(proxy, garbage)
        assert got.startswith(b"HTTP/1.1 " + status), got
        cut_short = ask(proxy, b"CONNECT 127.0.0.1:1", close_write=True)  # no end of head: nothing forwarded
        assert cut_short.startswith(b"HTTP/1.1 400"), cut_short
        good = ask(proxy, f"GET {api.base_url}/after HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert good.endswith(b"model-api") and api_hits == ["/after"] and other_hits == []
    assert proxy.refused_count == 2


def test_a_slow_client_is_cut_off(monkeypatch: pytest.MonkeyPatch, api_and_other) -> None:
    api, api_hits, _, _ = api_and_other
    monkeypatch.setattr(network, "HEAD_TIMEOUT_S", 0.3)
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        got = ask(proxy, f"GET {api.base_url}/ HTTP/1.1\r\n".encode())  # never finished
    assert got.startswith(b"HTTP/1.1 408") and api_hits == []


def test_many_clients_at_once(api_and_other) -> None:
    api, api_hits, _, _ = api_and_other
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        replies: list[bytes] = []
        threads = [threading.Thread(target=lambda i=i: replies.append(
            ask(proxy, f"GET {api.base_url}/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(replies) == 20 and all(r.endswith(b"model-api") for r in replies)
    assert sorted(api_hits) == sorted(f"/{i}" for i in range(20))


def test_the_socket_is_private_and_gone_after_the_block() -> None:
    with FilteringProxy(Egress.to(["https://api.anthropic.com"])) as proxy:
        path = proxy.socket_path
        assert path.is_socket() and (path.stat().st_mode & 0o777) == 0o600
    assert not path.exists() and not path.parent.exists()


def test_endpoints_from_urls_and_the_environment() -> None:
    assert Egress.to(["https://api.anthropic.com", "https://API.anthropic.com/v1/"]).allowed == (
        Endpoint("api.anthropic.com", 443),)
    assert Endpoint.from_url("http://127.0.0.1:8080/v1") == Endpoint("127.0.0.1", 8080)
    assert str(Endpoint.from_url("http://[::1]:9/")) == "[::1]:9"
    for bad in ("api.anthropic.com", "ftp://x", "https://"):
        with pytest.raises(ValueError, match="API URL"):
            Endpoint.from_url(bad)
    env = proxy_env({"PATH": "/bin", "NO_PROXY": "*", "no_proxy": "localhost", "HTTPS_PROXY": "http://corp:8080"})
    assert "NO_PROXY" not in env and "no_proxy" not in env and env["PATH"] == "/bin"
    assert {env[v] for v in network.PROXY_VARS} == {f"http://127.0.0.1:{network.PROXY_PORT}"}


def test_refusals_are_capped(api_and_other, tmp_path: Path) -> None:
    api, _, other, _ = api_and_other
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        for _ in range(network.REFUSALS_KEPT + 5):
            ask(proxy, f"CONNECT 127.0.0.1:{port_of(other)} HTTP/1.1\r\n\r\n".encode())
    lines = proxy.report()
    assert len(lines) == network.REFUSALS_KEPT + 1 and "5 more refusals" in lines[-1]


def test_connections_past_the_cap_are_refused_until_one_closes(monkeypatch: pytest.MonkeyPatch, api_and_other) -> None:
    """An agent opening tunnels without end cannot spend ralph's threads: past MAX_CONNECTIONS, 503."""
    api, _, _, _ = api_and_other
    monkeypatch.setattr(network, "MAX_CONNECTIONS", 2)
    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        held = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(proxy.socket_path))
            s.sendall(f"CONNECT 127.0.0.1:{port_of(api)} HTTP/1.1\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            held.append(s)
        assert ask(proxy, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
        held.pop().close()
        deadline = time.monotonic() + 30  # the freed slot comes back once its handler has seen the close (slow
        while time.monotonic() < deadline:  # on a loaded machine: a deadline, not a count of tries)
            reply = ask(proxy, f"GET {api.base_url}/again HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            if reply.endswith(b"model-api"):
                break
            time.sleep(0.05)
        assert reply.endswith(b"model-api"), reply
        for s in held:
            s.close()


def test_an_error_inside_the_proxy_drops_that_connection_and_is_recorded(monkeypatch: pytest.MonkeyPatch,
                                                                        api_and_other) -> None:
    api, _, _, _ = api_and_other

    def broken(a: socket.socket, b: socket.socket) -> None:
        raise RuntimeError("pipe broke")

    with FilteringProxy(Egress.to([api.base_url])) as proxy:
        monkeypatch.setattr(network, "pipe", broken)
        assert b"model-api" not in ask(proxy, f"GET {api.base_url}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        monkeypatch.undo()
        assert ask(proxy, f"GET {api.base_url}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()).endswith(b"model-api")
    assert proxy.report() == ["network: refused proxy error, connection dropped: RuntimeError('pipe broke')"]
