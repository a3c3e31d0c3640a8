"""The results page's HTML pieces: escaping, badges, links, embedded images, tables, and its style sheet.

Everything the page shows that came from an agent (file names, diffs, check output, figures' names,
a trial's hypothesis) goes through `esc` (the standard library's `html.escape`, quotes included), and
images go in as data URIs of `<img>`, where no script of theirs can run. No template engine: the
harness has none among its dependencies and the page is a handful of tables.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_IMAGE_BYTES = 4_000_000  # larger plots are linked, not embedded
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}
STATUS_COLOURS = {
    "passing": "#1a7f37", "approved": "#1a7f37", "done": "#1a7f37", "failing": "#cf222e", "blocked": "#cf222e",
    "rejected": "#cf222e", "awaiting approval": "#8250df", "exit checks pending": "#0969da",
    "in progress": "#9a6700", "running": "#9a6700", "pending": "#6e7781", "not started": "#6e7781", "planned": "#6e7781",
    "pass": "#1a7f37", "fail": "#cf222e", "error": "#cf222e", "timeout": "#cf222e",
}
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:28px 0 8px}h3{margin:0 0 6px;font-size:16px}h4{margin:14px 0 4px;font-size:14px}
.muted{color:#59636e}.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:14px 16px;margin:12px 0}
.badge{display:inline-block;padding:1px 9px;border-radius:12px;color:#fff;font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid #e6eaef;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f6f8fa}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}tr.sum td{border-top:2px solid #d1d9e0;font-weight:600}.control{color:#8250df}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto;
max-height:240px;margin:4px 0}pre.diff{max-height:420px}.diff .add{color:#1a7f37;background:#dafbe1}
.diff .del{color:#cf222e;background:#ffebe9}.diff .hunk{color:#0969da}.diff .head{font-weight:700}
details{margin:6px 0;border:1px solid #e6eaef;border-radius:6px;padding:4px 8px}summary{cursor:pointer}
.figures span{display:inline-block;margin:2px 8px 2px 0;padding:2px 8px;background:#ddf4ff;border-radius:6px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:14px}
.plots figure{margin:0;background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:8px}
.plots img{width:100%;height:auto}figcaption{font-size:13px;color:#59636e;word-break:break-all}
img.chart{width:49%;min-width:420px;height:auto}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def web_url(url: str) -> bool:
    """An http(s) address, which a link may point at (never `javascript:` or `data:`, which would run or show what
    an agent wrote)."""
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


def badge(status: str) -> str:
    return f'<span class="badge" style="background:{STATUS_COLOURS.get(status, "#6e7781")}">{esc(status)}</span>'


def href(target: Path, page_dir: Path) -> str:
    return esc(Path(os.path.relpath(target, page_dir)).as_posix())


def link(target: Path, page_dir: Path, text: str) -> str:
    """A link from the page to a file, relative so the folder can be moved as a whole."""
    return f'<a href="{href(target, page_dir)}">{esc(text)}</a>'


def image(path: Path, caption: str, page_dir: Path, *, embed: bool = True) -> str:
    """A figure: the image embedded (a data URI, so the page stays whole when copied), linked to the file; with
    `embed` False, or when too large, a link only. An SVG is never linked: opened on its own (not as an `<img>`)
    a browser runs the scripts in it, and a check (the agent's code) wrote it; its path is shown as text."""
    kind = IMAGE_TYPES.get(path.suffix.lower())
    linkable = kind not in (None, "image/svg+xml")
    if embed and kind is not None and path.stat().st_size <= MAX_IMAGE_BYTES:
        img = f'<img alt="{esc(caption)}" src="data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}">'
        if linkable:
            img = f'<a href="{href(path, page_dir)}" title="open full size">{img}</a>'
    else:
        text = caption if not embed else f"{caption} (too large to embed)"
        img = link(path, page_dir, text) if linkable else f"<code>{href(path, page_dir)}</code> ({esc(text)})"
    return f"<figure>{img}<figcaption>{esc(caption)}</figcaption></figure>"


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (),
          row_class: Sequence[str] = ()) -> str:
    """A table whose cells are already HTML (escape them first); `numeric`: columns aligned right."""
    num = ' class="num"'

    def cells(tag: str, items: Sequence[str]) -> str:
        return "".join(f"<{tag}{num if i in numeric else ''}>{c}</{tag}>" for i, c in enumerate(items))

    classes = [f' class="{esc(c)}"' if c else "" for c in row_class]
    body = "".join(f"<tr{classes[i] if i < len(classes) else ''}>{cells('td', r)}</tr>" for i, r in enumerate(rows))
    return f"<table><tr>{cells('th', head)}</tr>{body}</table>"
