"""`lab`: train, evaluate and gate seq-JEPA runs; probe LLM fine-tuning. Thin: parse, call, render."""

from __future__ import annotations

import typer

from lab.data.cli import app as data_app
from lab.llm.cli import app as llm_app

app = typer.Typer(
    help="Experiments the ralph harness verifies: seq-JEPA training/eval/gates and LLM probes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(llm_app, name="llm")


def main() -> None:
    app()
