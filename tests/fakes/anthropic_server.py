"""A scripted stand-in for the Anthropic Messages API, served on 127.0.0.1 for the real SDK.

    with FakeAnthropic([rate_limited(0.05), message(tool_use("bash", {"command": "ls"})),
                        message(text("done"))]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)   # or api.env()
        ...
        assert api.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"

A script is a list of `Reply` (served in order) or a callable `(request_body, index) -> Reply`;
`first_prompt(body)` and `turn(body)` help a callable route by feature and turn.
Every POST to /v1/messages is recorded in `requests` (the JSON bodies) and `headers`. When the
list runs out the server answers 400 so the client fails loudly instead of retrying.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.local_server import LocalServer

Script = Sequence["Reply"] | Callable[[dict[str, Any], int], "Reply"]
_ids = itertools.count(1)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, params: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or f"toolu_{next(_ids):04d}", "name": name, "input": params}


def bash(command: str) -> dict[str, Any]:
    return tool_use("bash", {"command": command})


def edit(**params: Any) -> dict[str, Any]:
    """A str_replace_based_edit_tool call, e.g. edit(command="create", path="a.py", file_text="x")."""
    return tool_use("str_replace_based_edit_tool", params)


def message(
    *blocks: dict[str, Any],
    stop_reason: str | None = None,
    input_tokens: int = 100,
    output_tokens: int = 20,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    model: str = "claude-sonnet-4-6",
) -> Reply:
    """An assistant message; stop_reason defaults to tool_use when a block calls a tool, else end_turn."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return Reply(
        200,
        {
            "id": f"msg_{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": list(blocks),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation_input_tokens,
                "cache_read_input_tokens": cache_read_input_tokens,
            },
        },
    )


def first_prompt(body: dict[str, Any]) -> str:
    """The text of a request's first user message (the attempt's prompt), for routing in a callable script."""
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def turn(body: dict[str, Any]) -> int:
    """How many assistant turns the request already contains (0 on an attempt's first call)."""
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def api_error(status: int, kind: str, msg: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": msg}}, headers or {})


def overloaded() -> Reply:
    return api_error(529, "overloaded_error", "Overloaded")


def rate_limited(retry_after: float = 0.05) -> Reply:
    return api_error(429, "rate_limit_error", "Rate limited", {"retry-after": str(retry_after)})


def server_error() -> Reply:
    return api_error(500, "api_error", "Internal server error")


class FakeAnthropic(LocalServer):
    """Serves `script` on an ephemeral port while the `with` block runs."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        super().__init__(self._handler())

    def env(self, api_key: str = "test-key") -> dict[str, str]:
        """Environment variables that point the SDK here."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": api_key}

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(body)
            self.headers.append(headers)
        if callable(self.script):
            return self.script(body, index)
        if index < len(self.script):
            return self.script[index]
        return api_error(
            400, "invalid_request_error", f"FakeAnthropic script exhausted after {len(self.script)} replies"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.split("?")[0] != "/v1/messages":
                    reply = api_error(404, "not_found_error", f"FakeAnthropic serves /v1/messages, not {self.path}")
                else:
                    reply = fake._next(body, dict(self.headers))
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler
