"""An HTTP server on an ephemeral 127.0.0.1 port that runs while a `with` block does (the fakes' base)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalServer:
    """Serves `handler` on 127.0.0.1; `base_url` is known before the block starts, the server stops after it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Answering(BaseHTTPRequestHandler):
    hits: list[str]
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def answering(body: bytes) -> tuple[LocalServer, list[str]]:
    """A LocalServer answering every GET and POST with `body`, and the list of paths it served (for a test to
    prove that nothing reached it)."""
    hits: list[str] = []
    return LocalServer(type("Answering", (_Answering,), {"hits": hits, "body": body})), hits
