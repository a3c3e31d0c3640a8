"""Scripted stand-ins for the APIs the real agent CLIs call, served on 127.0.0.1 with SSE streaming.

- `FakeMessages`: the Anthropic Messages API as Claude Code uses it (`HEAD /api/hello`,
  `POST /v1/messages?beta=true` streaming, `count_tokens`).
- `FakeResponses`: the OpenAI Responses API as Codex uses it (`GET /v1/models`, `POST /v1/responses`).
- `FakeChat`: OpenAI chat completions as aider (through litellm) uses it, streaming with usage.

Each is given one `Work` per conversation it should answer (an agent run: a plain attempt, or one trial
of an optimize search), picked by a marker in ralph's prompt: the files to write. The conversation's first
requests get the tool calls (or SEARCH/REPLACE edits) that write them, the next one a closing message.
Every request body and its credential header are recorded, so a test can assert that the CLI forwarded
ralph's prompt and the key. Servers stop when the `with` block ends.
"""

from __future__ import annotations

import itertools
import json
import shlex
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.local_server import LocalServer

_ids = itertools.count(1)


@dataclass
class Write:
    """One file the scripted model writes: `content` to `path` (relative to the repository). `before`: its content
    when it exists already (Claude Code's Write tool refuses a file it has not Read; aider's SEARCH block is it)."""

    path: str
    content: str
    before: str | None = None


@dataclass
class Work:
    """What the scripted model does in one conversation: `writes`, then `summary`. It answers the conversation
    whose prompt contains `when` (the first such Work, in the order given to the fake)."""

    repo: str  # absolute repository path (Claude's Write tool takes absolute paths)
    writes: list[Write]
    when: str
    summary: str = "Wrote the file the feature asks for."


@dataclass
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class _FakeAPI(LocalServer):
    """An HTTP server on an ephemeral port; subclasses answer `reply(seen, handler)`."""

    key_header = "authorization"

    def __init__(self, *works: Work) -> None:
        self.works = works
        self.seen: list[Seen] = []
        super().__init__(self._handler())

    def work_for(self, conversation: Any) -> Work | None:
        """The Work whose marker the text of `conversation` (part of a request's body) contains."""
        text = strings(conversation)
        return next((w for w in self.works if w.when in text), None)

    # --- what tests assert on -----------------------------------------------------------
    def keys(self) -> set[str]:
        """The credentials the CLI sent (header values, `Bearer ` stripped)."""
        return {s.headers.get(self.key_header, "").removeprefix("Bearer ") for s in self.seen if s.body} - {""}

    def prompts(self) -> str:
        """Every request body, as text: ralph's prompt must be somewhere in it."""
        return "\n".join(json.dumps(s.body) for s in self.seen)

    def texts(self) -> str:
        """Every string in every request body, one after another (newlines as sent)."""
        return "\n".join(strings(s.body) for s in self.seen)

    # --- plumbing -------------------------------------------------------------------------
    def reply(self, seen: Seen, out: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.seen.append(seen)
                fake.reply(seen, self)

            do_GET = do_POST = do_HEAD = _serve  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def strings(value: Any) -> str:
    """The strings in a JSON value, joined by newlines (what a marker is looked for in)."""
    if isinstance(value, str):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return "\n".join(strings(v) for v in items)


def send_json(out: BaseHTTPRequestHandler, value: Any, status: int = 200) -> None:
    data = json.dumps(value).encode()
    out.send_response(status)
    out.send_header("content-type", "application/json")
    out.send_header("content-length", str(len(data)))
    out.end_headers()
    if out.command != "HEAD":
        out.wfile.write(data)


def send_sse(out: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]]) -> None:
    """Server-sent events: `(event name or None, data)`; data "[DONE]" is sent raw."""
    out.send_response(200)
    out.send_header("content-type", "text/event-stream")
    out.send_header("cache-control", "no-cache")
    out.send_header("connection", "close")
    out.end_headers()
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        chunk = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
        out.wfile.write(chunk.encode())
        out.wfile.flush()
    out.close_connection = True


# ------------------------------------------------------------------------------ Claude Code


class FakeMessages(_FakeAPI):
    """The Messages API: a tool call per turn (`Read` of a file that exists, then `Write`), then a closing text."""

    key_header = "x-api-key"
    usage = {"input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 2400}
    output_tokens = 40

    def env(self, key: str) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": key}

    def reply(self, seen: Seen, out: BaseHTTPRequestHandler) -> None:
        path = seen.path.split("?")[0]
        if seen.method in ("HEAD", "GET"):
            return send_json(out, {"ok": True})
        if path.endswith("/count_tokens"):
            return send_json(out, {"input_tokens": 100})
        if path != "/v1/messages":
            return send_json(out, {"type": "error", "error": {"type": "not_found_error", "message": path}}, 404)
        model = seen.body.get("model", "claude-sonnet-5-5")
        tools = {t.get("name") for t in seen.body.get("tools", [])}
        messages = seen.body.get("messages", [])
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        work = self.work_for(messages) if "Write" in tools else None
        calls = self._calls(work) if work else []
        if turn < len(calls):
            name, tool_input = calls[turn]
            block = {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": tool_input}
            return send_sse(out, self._stream(model, block, "tool_use"))
        text = work.summary if work else "Ralph task"
        return send_sse(out, self._stream(model, {"type": "text", "text": text}, "end_turn"))

    @staticmethod
    def _calls(work: Work) -> list[tuple[str, dict[str, str]]]:
        calls = []
        for write in work.writes:
            path = f"{work.repo}/{write.path}"
            if write.before is not None:
                calls.append(("Read", {"file_path": path}))
            calls.append(("Write", {"file_path": path, "content": write.content}))
        return calls

    def _stream(self, model: str, block: dict[str, Any], stop: str) -> list[tuple[str | None, Any]]:
        start = {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}
        delta = (
            {"type": "text_delta", "text": block["text"]}
            if block["type"] == "text"
            else {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        )
        message = {"id": f"msg_{next(_ids):06d}", "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {**self.usage, "output_tokens": 1}}
        return [
            ("message_start", {"type": "message_start", "message": message}),
            ("ping", {"type": "ping"}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": self.output_tokens}}),
            ("message_stop", {"type": "message_stop"}),
        ]


# ------------------------------------------------------------------------------------ Codex


class FakeResponses(_FakeAPI):
    """The Responses API: an `exec_command` call per file, each writing it, then a message."""

    usage = {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 3000}, "output_tokens": 60,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5060}

    def env(self, key: str) -> dict[str, str]:
        return {"OPENAI_BASE_URL": f"{self.base_url}/v1", "OPENAI_API_KEY": key}

    def reply(self, seen: Seen, out: BaseHTTPRequestHandler) -> None:
        path = seen.path.split("?")[0]
        if seen.method in ("GET", "HEAD"):
            return send_json(out, {"object": "list", "models": [], "data": [
                {"id": "gpt-6-sol", "object": "model", "created": 0, "owned_by": "ralph-tests"}]})
        if not path.endswith("/responses"):
            return send_json(out, {"error": {"message": f"not served: {path}"}}, 404)
        inputs = seen.body.get("input", [])
        turn = sum(1 for item in inputs if isinstance(item, dict) and str(item.get("type", "")).endswith("_output"))
        work = self.work_for(inputs)
        writes = work.writes if work else []
        if turn < len(writes):
            command = f"printf %s {shlex.quote(writes[turn].content)} > {shlex.quote(writes[turn].path)}"
            item = {"type": "function_call", "id": f"fc_{next(_ids):04d}", "call_id": f"call_{next(_ids):04d}",
                    "name": "exec_command", "arguments": json.dumps({"cmd": command})}
            return send_sse(out, self._stream(seen.body.get("model", ""), item))
        summary = work.summary if work else "Nothing to do."
        item = {"type": "message", "id": f"msg_{next(_ids):04d}", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": summary, "annotations": []}]}
        return send_sse(out, self._stream(seen.body.get("model", ""), item, summary))

    def _stream(self, model: str, item: dict[str, Any], text: str = "") -> list[tuple[str | None, Any]]:
        rid = f"resp_{next(_ids):06d}"
        response = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
                    "status": "in_progress", "output": []}
        events: list[tuple[str | None, Any]] = [
            ("response.created", {"type": "response.created", "response": response}),
            ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                            "item": {**item, "status": "in_progress"}}),
        ]
        if item["type"] == "message":
            events.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": item["id"],
                                                          "output_index": 0, "content_index": 0,
                                                          "delta": text}))
        events += [
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed",
                                    "response": {**response, "status": "completed", "output": [item],
                                                 "usage": self.usage}}),
        ]
        return events


# ------------------------------------------------------------------------------------ aider


class FakeChat(_FakeAPI):
    """Chat completions: a reply to ralph's prompt carries a SEARCH/REPLACE block per file (aider's `diff` format:
    `before`, or nothing for a new file), any later one (a reflection, a side call) a note."""

    prompt_tokens = 3400
    completion_tokens = 52

    def env(self, key: str) -> dict[str, str]:
        return {"OPENAI_API_BASE": f"{self.base_url}/v1", "OPENAI_API_KEY": key}

    def reply(self, seen: Seen, out: BaseHTTPRequestHandler) -> None:
        path = seen.path.split("?")[0]
        if seen.method in ("GET", "HEAD"):
            return send_json(out, {"object": "list", "data": [
                {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "ralph-tests"}]})
        if not path.endswith("/chat/completions"):
            return send_json(out, {"error": {"message": f"not served: {path}"}}, 404)
        model = seen.body.get("model", "gpt-4o")
        asked = [m.get("content") for m in seen.body.get("messages", []) if m.get("role") == "user"][-1:]
        work = self.work_for(asked)  # ralph's prompt is the latest user message: edit; else a note
        fence = "```"
        text = "".join(f"{w.path}\n{fence}\n<<<<<<< SEARCH\n{_lines(w.before or '')}=======\n{_lines(w.content)}"
                       f">>>>>>> REPLACE\n{fence}\n\n" for w in work.writes) if work else "Done."
        if not seen.body.get("stream"):
            return send_json(out, {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": 0,
                                   "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                                "message": {"role": "assistant", "content": text}}],
                                   "usage": self._usage()})
        cid = f"chatcmpl-{next(_ids)}"

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        pieces = [text[i : i + 40] for i in range(0, len(text), 40)]
        events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}, None))]
        events += [(None, chunk({"content": piece}, None)) for piece in pieces]
        events.append((None, chunk({}, "stop")))
        events.append((None, {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                              "model": model, "choices": [], "usage": self._usage()}))
        events.append((None, "[DONE]"))
        send_sse(out, events)

    def _usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def _lines(text: str) -> str:
    """`text` as whole lines (a SEARCH or REPLACE block's body)."""
    return text if not text or text.endswith("\n") else text + "\n"
