"""`lab data …` commands: check what is on disk, or download / say where to get it. Thin: parse, call, render."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.data.base import DatasetMissingError
from lab.data.disk.check import EMBEDDED, NAMES, DatasetSummary, summarize
from lab.data.disk.download import download, instructions
from lab.data.registry import DEFAULT_ROOT

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)  # name and help: lab.cli.DEFERRED
out = Console()
err = Console(stderr=True)

NameArg = typer.Argument(..., help=f"dataset: {', '.join(NAMES)}")
RootOpt = typer.Option(DEFAULT_ROOT, "--data-root", envvar="LAB_DATA_ROOT", help="directory holding on-disk datasets")


def _known(name: str) -> str:
    if name not in NAMES:
        err.print(f"[red]unknown dataset {name!r}[/red]; choose one of {', '.join(NAMES)}")
        raise typer.Exit(2)
    return name


def _size(n: int | None) -> str:
    if n is None:
        return "not on disk"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{value:.1f} {unit} on disk"


def _render(s: DatasetSummary) -> None:
    names = ", ".join(s.class_names[:10]) + (" …" if len(s.class_names) > 10 else "")
    out.print(f"[bold]{s.name}[/bold] at {escape(s.location)} — {_size(s.size_bytes)}; "
              f"{s.num_classes} classes: {escape(names)}", soft_wrap=True)
    table = Table("split", "images", "image shape (C, H, W)", "labels present", "note")
    for sp in s.splits:
        table.add_row(sp.split, str(sp.count), str(sp.image_shape), str(sp.labels_present), sp.note)
    out.print(table)


@app.command()
def check(name: str = NameArg, data_root: Path = RootOpt) -> None:
    """Report what dataset NAME holds (splits, counts, shapes, classes, size), or where it should be."""
    _known(name)
    try:
        summary = summarize(name, data_root)
    except DatasetMissingError as e:
        err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        err.print(f"{name}: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _render(summary)


@app.command("download")
def download_cmd(name: str = NameArg, data_root: Path = RootOpt) -> None:
    """Download NAME with torchvision where it imports; otherwise print where to get the files and where to put them."""
    if _known(name) in EMBEDDED:
        out.print(f"{name} is embedded (generated in memory); nothing to download.")
        return
    try:
        done = download(name, data_root)
    except Exception as e:  # network or mirror failures surface as many types; report and fall back to instructions
        err.print(f"{name}: download failed: {e}", markup=False, highlight=False, soft_wrap=True)
        err.print(instructions(name, data_root), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if done is None:
        why = "torchvision has no downloader for it" if name == "3diebench" else "torchvision is not importable here"
        out.print(f"Nothing downloaded: {why}.", markup=False, soft_wrap=True)
        out.print(instructions(name, data_root), markup=False, highlight=False, soft_wrap=True)
        return
    out.print(done, markup=False, soft_wrap=True)
