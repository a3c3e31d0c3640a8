"""`lab`: train, evaluate and gate seq-JEPA runs; probe LLM fine-tuning. Thin: parse, call, render."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.errors import LabError

# Sub-apps whose modules import torch (or transformers) at the top: loaded only when their name is on
# the command line, so `lab --help` and the light commands start without them. Click documents this
# "lazy subcommand" pattern; Typer builds the group through `cls`.
DEFERRED = {
    "data": ("lab.data.cli", "Datasets: check what is on disk, or say where to get it."),
    "llm": ("lab.llm.cli", "LLM probes: base model, LoRA/QLoRA fine-tuning, sweeps, forgetting, attention, activations."),
    "bench": ("lab.bench", "Throughput benchmarks (views/s, train steps/s, peak memory)."),
}


class _DeferredGroup(TyperGroup):
    """A sub-app known by name and help text; its module is imported the first time a command is looked up."""

    def __init__(self, name: str, module: str, help: str) -> None:
        super().__init__(name=name, help=help, no_args_is_help=True, rich_markup_mode=None)
        self.module = module

    @functools.cached_property
    def real(self) -> TyperGroup:
        group = typer.main.get_command(importlib.import_module(self.module).app)
        assert isinstance(group, TyperGroup), f"{self.module}.app is not a group of commands"
        return group

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return self.real.list_commands(ctx)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> typer.main.TyperCommand | TyperGroup | None:
        return self.real.get_command(ctx, cmd_name)


class _LabGroup(TyperGroup):
    """`lab`'s own commands plus the deferred sub-apps."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *DEFERRED]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> typer.main.TyperCommand | TyperGroup | None:
        if cmd_name in DEFERRED:
            return _DeferredGroup(cmd_name, *DEFERRED[cmd_name])
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LabGroup,
    help="Experiments the ralph harness verifies: seq-JEPA training/eval/gates and LLM probes.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain click help: typer's rich panels label every flag `<bool>` as if it took a value
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

# The import names of what each extra installs (pyproject.toml), for the message when one is missing.
EXTRAS = {
    "lab": ("torch", "numpy", "sklearn", "scipy", "threadpoolctl", "matplotlib", "kornia", "wandb"),
    "llm": ("transformers", "peft", "bitsandbytes", "accelerate", "tokenizers"),
}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """What to install when `exc` is a module of an extra (None for any other missing module)."""
    top = (exc.name or "").split(".")[0]
    extra = next((name for name, modules in EXTRAS.items() if top in modules), None)
    if extra is None:
        return None
    from lab.install import install_command, torch_build_note

    return (f"lab needs '{top}', which comes with the [{extra}] extra, and it is not installed in this environment "
            f"({sys.prefix}).\nInstall it with:\n  {install_command(extra)}\n{torch_build_note()}; in a clone, "
            "`make setup` installs every extra")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _results_table(results: dict, title: str) -> Table:
    table = Table("key", "value", title=title)
    for key, value in results.items():
        if key.startswith("eval.") and isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    return table


def _overrides(positional: list[str], set_: list[str]) -> list[str]:
    """Positional `key=value` words (the Hydra habit) and `--set key=value`, in that order."""
    for word in positional:
        if "=" not in word:
            raise _fail(f"unexpected argument {word!r}: overrides are key=value (e.g. train.epochs=2); "
                        "lab train takes one config file")
    return [*positional, *set_]


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(..., help="run config YAML (sections: data, model, objective, optim, train, eval, gates, logging)"),
    overrides: list[str] = typer.Argument(None, metavar="KEY=VALUE", show_default=False,
                                          help="overrides, e.g. train.epochs=2 model.act_cond=false (dotted keys, YAML values)"),
    set_: list[str] = typer.Option([], "--set", help="override a key, e.g. --set train.epochs=5 (repeatable; same as KEY=VALUE)"),
    resume: bool = typer.Option(False, "--resume", help="continue runs/<name>/ from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing runs/<name>/ and start again"),
    publish_to: Path | None = typer.Option(None, "--publish", metavar="DEST",
                                           help="after evaluating, copy results.json and plots to DEST (a folder, or a .json file): see `lab publish`"),
    data_root: Path | None = typer.Option(None, "--data-root", envvar="LAB_DATA_ROOT", help="directory of on-disk datasets"),
    nproc: int = typer.Option(1, "--nproc", help="data-parallel processes on this node (torchrun; gloo on CPU, NCCL on CUDA)"),
    nnodes: int = typer.Option(1, "--nnodes", help="nodes taking part (run the same command on each)"),
    node_rank: int = typer.Option(0, "--node-rank", help="this node's index, 0…nnodes−1 (multi-node)"),
    rdzv_endpoint: str | None = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of torchrun's rendezvous (multi-node)"),
    rdzv_id: str = typer.Option("lab", "--rdzv-id", help="rendezvous id shared by the nodes of one job"),
) -> None:
    """Train a seq-JEPA run into runs/<name>/, then evaluate it (unless eval.at_end is false).

    Everything is written under runs/<name>/ (git-ignored); --publish copies the results into a
    tracked folder on purpose. With --nproc N (and, across nodes, --nnodes/--node-rank/--rdzv-endpoint)
    training runs in N processes per node with DistributedDataParallel; train.batch_size is the global batch.
    """
    from lab.config import load_config
    from lab.evaluate import evaluate
    from lab.eval.gates import check_gates, gate_table
    from lab.train.loop import train

    assignments = _overrides(overrides or [], set_) + ([f"data.root={data_root}"] if data_root else [])
    try:
        cfg = load_config(config, assignments)
        if publish_to is not None and not cfg.eval.at_end:
            raise _fail("--publish needs the run evaluated: drop eval.at_end=false, or run `lab eval` then `lab publish`")
        if nproc > 1 or nnodes > 1:
            from lab.train.ddp import Rank, shard_batch
            from lab.train.launch import launch, torchrun_args
            from lab.rundir.directory import prepare_run_dir

            try:
                launcher = torchrun_args(nproc, nnodes, node_rank, rdzv_endpoint, rdzv_id)
                shard_batch(Rank(world=nproc * nnodes), cfg.train.batch_size)  # before starting any process
            except ValueError as e:
                raise _fail(str(e)) from None
            prepare_run_dir(cfg, resume, overwrite)
            launch(config, assignments, resume, launcher)
            run_dir = cfg.run_dir
        else:
            run_dir = train(cfg, resume=resume, overwrite=overwrite)
        out.print(f"trained {cfg.name}: {run_dir}")
        if cfg.eval.at_end and node_rank == 0:
            results = evaluate(run_dir)
            out.print(_results_table(results, f"{cfg.name}: results.json"))
            if cfg.gates:  # informative only; `lab gate RUN` gives the exit code
                out.print(gate_table(check_gates(results, cfg.gates), title=f"gates (check with: lab gate {run_dir})"))
            if publish_to is not None:
                _print_published(run_dir, publish_to, "")
    except LabError as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; the last finished epoch is checkpointed — continue with --resume", 130) from None


def _print_published(run: Path, dest: Path, prefix: str) -> None:
    from lab.publish import publish

    try:
        written = publish(run, dest, prefix)
    except (FileNotFoundError, OSError) as e:
        raise _fail(str(e)) from None
    out.print(f"published {run} → " + ", ".join(str(p) for p in written))


@app.command("publish")
def publish_cmd(
    run: Path = typer.Argument(..., help="run directory with a results.json (seq-JEPA runs/<name>, or a `lab llm` --out folder)"),
    dest: Path = typer.Argument(..., help="folder for results.json + the run's PNGs, or a .json path for the results alone"),
    prefix: str = typer.Option("", "--prefix", help="prepend to every copied file's name, e.g. minilm_"),
) -> None:
    """Copy a run's results.json and figures into a tracked folder such as experiments/<name>/ (on purpose:
    no other lab command writes outside its run directory)."""
    _print_published(run, dest, prefix)


@app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(None, metavar="RUN...", show_default=False,
                                      help="run directories or results.json files; names ending -s<seed> group as seeds"),
    metric: list[str] = typer.Option([], "--metric", "-m", help="metric key or glob, e.g. eval.r2_equi or 'eval.r2_equi@*' (repeatable; default: the headline eval keys)"),
    feature: list[str] = typer.Option([], "--feature", help="add the runs a PRD feature evaluates (its `lab eval` checks, every seed)"),
    prd: Path = typer.Option(Path("PRD.json"), "--prd", help="plan that --feature reads"),
    out_dir: Path = typer.Option(Path("runs/compare"), "--out", help="where compare.md, compare.json and compare.png go"),
) -> None:
    """Runs side by side: mean ± std per metric over each group's seeds → a table, compare.{md,json,png}."""
    from lab.compare import compare, feature_runs

    try:
        paths = [*(runs or []), *(p for f in feature for p in feature_runs(prd, f))]
        summary, metrics = compare(paths, metric, out_dir)
    except LabError as e:
        raise _fail(str(e)) from None
    groups = list(summary)
    table = Table("metric", *groups, *([f"{groups[1]} − {groups[0]}"] if len(groups) == 2 else []),
                  title=f"mean ± std (sample) → {out_dir}/compare.md, compare.png")
    for m in metrics:
        row = [summary[g][m] for g in groups]
        diff = [f"{row[1].mean - row[0].mean:+.3f}"] if len(groups) == 2 and row[0].values and row[1].values else []
        table.add_row(m, *(s.text() for s in row), *diff)
    out.print(table)


@app.command("eval")
def eval_cmd(
    run: Path = typer.Argument(..., help="run directory, e.g. runs/smoke"),
    device: str | None = typer.Option(None, help="override the run's train.device"),
) -> None:
    """Frozen offline probes on a trained run → RUN/results.json and RUN/plots/*.png."""
    from lab.evaluate import evaluate

    if not (run / "config.yaml").is_file():
        raise _fail(f"{run} is not a run directory (no config.yaml); train one with `lab train CONFIG`")
    try:
        results = evaluate(run, device=device)
    except (LabError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    out.print(_results_table(results, f"{run}/results.json"))


@app.command("gate")
def gate_cmd(
    run: Path = typer.Argument(..., help="run directory (its results.json) or a results.json file"),
    config: Path | None = typer.Option(None, "--config", help="gate file or run config with a gates: section (default: RUN/config.yaml)"),
) -> None:
    """Check metric gates against a run's results: exit 0 all pass, 1 any fails, 2 no gates or bad input."""
    from lab.eval.gates import check_gates, gate_command_exit_code, gate_table, load_gates

    results_path = run if run.is_file() else run / "results.json"
    if not results_path.is_file():
        raise _fail(f"no results at {results_path}; evaluate the run first: lab eval {run}")
    if config is None and not run.is_dir():
        raise _fail(f"{run} is a results file: name the gates with --config GATES.yaml (or pass the run directory)")
    gate_source = config or (run / "config.yaml")
    try:
        gates = load_gates(gate_source)
    except LabError as e:
        raise _fail(str(e)) from None
    report = check_gates(json.loads(results_path.read_text()), gates)
    out.print(gate_table(report, title=f"gates from {gate_source}"))
    code = gate_command_exit_code(report)
    out.print({0: "[green]all gates pass[/green]", 1: "[red]gates failed[/red]", 2: "[yellow]no gates to check[/yellow]"}[code])
    raise typer.Exit(code)


@app.command("stream")
def stream_cmd(
    config: Path = typer.Argument(..., help="run config YAML with a `stream:` section (tasks, batch_size, iterations, task_tint, replay, distill, drift)"),
    set_: list[str] = typer.Option([], "--set", help="override a key, e.g. --set stream.replay=reservoir (repeatable)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing runs/<name>/ and start again"),
) -> None:
    """One pass over a class-incremental stream (each sample once, small batches, optional replay,
    distillation, view drift, a colour domain per task and several steps per batch) →
    runs/<name>/stream.json (task × task accuracies, forgetting, gains)."""
    from lab.config import load_config
    from lab.train.stream import train_stream

    try:
        cfg = load_config(config, list(set_))
        results = train_stream(cfg, overwrite=overwrite)
    except (LabError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table("key", "value", title=f"{cfg.name}: stream.json")
    for key, value in results.items():
        if key.split(".")[0] in ("eval", "init", "gain") and isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    out.print(table)


@app.command("diff")
def diff_cmd(
    a: list[Path] = typer.Option(..., "--a", help="results files of group a (repeat, e.g. one per seed)"),
    b: list[Path] = typer.Option(..., "--b", help="results files of group b"),
    key: str = typer.Option(..., "--key", help="metric, e.g. eval.forgetting"),
    out_path: Path | None = typer.Option(None, "--out", help="write {a, b, diff = mean(a) − mean(b)} here as JSON"),
    paired: bool = typer.Option(False, "--paired", help="also the per-seed differences a[i] − b[i] (files in the same "
                                "seed order): their mean and sample std, under `paired`"),
) -> None:
    """Mean ± std of one metric over two groups of runs, and their difference (for comparison gates)."""
    from lab.diff import diff_groups

    try:
        report = diff_groups(a, b, key, paired)
    except ValueError as e:
        raise _fail(str(e)) from None
    table = Table("group", "mean", "std", "values", title=key)
    for name in ("a", "b"):
        g = report[name]
        table.add_row(name, f"{g['mean']:.4f}", f"{g['std']:.4f}", ", ".join(f"{v:.3f}" for v in g["values"]))
    out.print(table)
    out.print(f"diff (a − b) = {report['diff']:.4f}, spread (std a + std b) = {report['spread']:.4f}")
    if paired:
        pr = report["paired"]
        out.print(f"paired a − b per seed: {', '.join(f'{d:+.4f}' for d in pr['diffs'])}; mean {pr['mean']:+.4f} ± {pr['std']:.4f}")
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2))


def main() -> None:
    try:
        app()
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":  # `python -m lab.cli`: what the seq-jepa template's checks run (the repository's own lab)
    main()
