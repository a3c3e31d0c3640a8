"""`lab llm …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="LLM probes: base model, LoRA/QLoRA fine-tuning, sweeps, forgetting, attention, activations.",
                  no_args_is_help=True)
