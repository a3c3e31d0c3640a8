"""The results page (`ralph report`), `ralph show --diff` and the history of attempts behind them.

A scripted project (the replay agent) with two features and three seeds each: FEAT-A fails once (its
accuracy under the gate) and then passes, beating its control; FEAT-B passes at once. The page is read
back as Chromium renders it: per-seed values, the failed attempt, its diff and the charts are on it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness.books.attempts import append_attempt, read_attempts
from harness.cli import app
from harness.project import Project
from tests.harness.conftest import git

SEEDS = [0, 1, 2]
CONTROL = [0.40, 0.42, 0.45]
FIRST = [0.41, 0.44, 0.47]  # under the gate (>= 0.6): the failed attempt
SECOND = [0.81, 0.84, 0.88]
LOSS = [0.21, 0.23, 0.26]
PLAN: dict[str, Any] = {
    "version": 1, "project": "results-page", "description": "two features, three seeds",
    "defaults": {"max_attempts": 3, "attempt_timeout_s": 60, "check_timeout_s": 60},
    "phases": [{"id": 1, "name": "Learn", "approval": True}],
    "features": [
        {"id": "FEAT-A", "phase": 1, "title": "accuracy beats its control", "verify": [
            {"name": "train", "run": "python train.py {seed}", "seeds": SEEDS},
            {"name": "accuracy", "seeds": SEEDS,
             "metric": {"file": "runs/a-s{seed}.json", "key": "acc", "op": ">=", "value": 0.6}},
            {"name": "beats control", "compare": {"a": {"file": "runs/a-s{seed}.json", "key": "acc"},
                                                  "b": {"file": "runs/a-s{seed}.json", "key": "control"},
                                                  "seeds": SEEDS, "paired": True, "test": "greater"}}]},
        {"id": "FEAT-B", "phase": 1, "title": "loss stays low", "verify": [
            {"name": "eval", "run": "python eval.py {seed}", "seeds": SEEDS},
            {"name": "loss", "seeds": SEEDS,
             "metric": {"file": "runs/b-s{seed}.json", "key": "loss", "op": "<=", "value": 0.5}}]},
    ],
}


def train_script(acc: list[float], note: str = "") -> str:
    """Writes acc and the control per seed, and a plot (an SVG) of the seed."""
    return (f"# {note}\nimport json, os, sys\nseed = int(sys.argv[1])\nos.makedirs('runs', exist_ok=True)\n"
            f"json.dump({{'acc': {acc}[seed], 'control': {CONTROL}[seed]}}, open(f'runs/a-s{{seed}}.json', 'w'))\n"
            "open(f'runs/curve-s{seed}.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" "
            "height=\"20\"><rect width=\"40\" height=\"20\" fill=\"#c81e1e\"/></svg>')\n")


def eval_script() -> str:
    return ("import json, os, sys\nseed = int(sys.argv[1])\nos.makedirs('runs', exist_ok=True)\n"
            f"json.dump({{'loss': {LOSS}[seed]}}, open(f'runs/b-s{{seed}}.json', 'w'))\n")


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=160)


def run_script(repo: Path, tmp_path: Path, features: dict[str, list[list[dict[str, Any]]]], *args: str):
    script = tmp_path / f"script-{len(list(tmp_path.glob('script-*')))}.yaml"
    script.write_text(yaml.safe_dump({"features": features}))
    # its commands use files under the host's /tmp, which a sandbox hides: unsandboxed, as the page is the subject
    return ralph("run", "--agent", "replay", "--agent-cmd", script, "--no-input", "--sandbox", "none", "-C", repo,
                 *args)


@pytest.fixture
def worked(repo: Path, tmp_path: Path) -> Path:
    (repo / "PRD.json").write_text(json.dumps(PLAN))
    (repo / ".gitignore").write_text(".ralph/\nruns/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    result = run_script(repo, tmp_path, {
        "FEAT-A": [[{"write": "train.py", "content": train_script(FIRST, "first try")}, {"say": "a first model"}],
                   [{"write": "train.py", "content": train_script(SECOND, "wider layer")}, {"say": "wider"}]],
        "FEAT-B": [[{"write": "eval.py", "content": eval_script()}, {"say": "eval"}]]})
    assert result.exit_code == 3, result.output  # both pass; the phase awaits approval
    return repo


def test_every_attempt_is_recorded_with_its_evidence_cost_and_tree(worked: Path) -> None:
    entries, bad = read_attempts(worked, "FEAT-A")
    assert bad == 0 and [(e.attempt, e.status) for e in entries] == [(1, "failing"), (2, "passing")]
    failed, passed = entries
    acc = {k: v for k, v in failed.evidence[1].figures.items() if "[seed=" in k}
    assert acc == {f"acc[seed={s}]": v for s, v in zip(SEEDS, FIRST)}  # the failed attempt's own figures
    assert failed.agent == "replay" and failed.agent_s is not None and failed.checks_s > 0
    # The failed attempt's tree is kept off the branch, under its ref; the passing one is ralph's commit.
    assert git(worked, "rev-parse", "refs/ralph/attempts/FEAT-A/1") == failed.commit
    assert failed.commit not in git(worked, "rev-list", "HEAD")
    assert "first try" in git(worked, "show", f"{failed.commit}:train.py")
    assert passed.commit in git(worked, "rev-list", "HEAD") and passed.base == failed.base
    assert [p.rsplit("/", 1)[-1] for p in failed.plots] == [f"runs__curve-s{s}.svg" for s in SEEDS]
    with open(worked / ".ralph" / "attempts.jsonl", "a") as f:
        f.write('{"feature": "FEAT-A", "attem')  # ralph killed mid-write
    assert len(read_attempts(worked)[0]) == 3 and read_attempts(worked)[1] == 1
    append_attempt(worked, passed.model_copy(update={"attempt": 9}))  # the next line is whole nonetheless
    assert [e.attempt for e in read_attempts(worked, "FEAT-A")[0]] == [1, 2, 9] and read_attempts(worked)[1] == 1
    assert ralph("report", "--out", worked / "page.html", "-C", worked).exit_code == 0
    page = (worked / "page.html").read_text()
    assert "1 line(s) of .ralph/attempts.jsonl could not be read" in page and page.count("attempt 1: failing") == 1
    assert "attempt 9: passing" in page


def test_show_diff_renders_what_an_attempt_changed(worked: Path) -> None:
    shown = ralph("show", "FEAT-A", "--attempt", "1", "--diff", "-C", worked)
    assert shown.exit_code == 0, shown.output
    assert "\ntrain.py | 6 +" in shown.output and "\n+# first try\n" in shown.output
    assert "progress.txt" not in shown.output.split("diff: what the attempt changed")[1]  # ralph's, not the agent's
    flat = " ".join(shown.output.split())
    assert "failing · $0.0000" in flat and "(kept: git show it)" in flat
    plain = ralph("show", "FEAT-A", "-C", worked).output
    assert "FEAT-A attempt 2" in plain and "ralph show FEAT-A --attempt 2 --diff" in plain and "+# wider" not in plain


def test_attempt_numbers_go_on_after_a_new_round(worked: Path, tmp_path: Path) -> None:
    """`ralph run --feature` gives a new round (attempts counted afresh against max_attempts); its attempts get
    new numbers, so `ralph show` still finds the first ones."""
    project = Project.open(worked)
    project.ledger.unblock("FEAT-A")  # as `ralph run --feature FEAT-A` does for a blocked feature
    result = run_script(worked, tmp_path, {"FEAT-A": [[{"write": "train.py", "content": train_script(SECOND, "again")},
                                                       {"say": "again"}]]}, "--feature", "FEAT-A")
    assert result.exit_code in (0, 3), result.output
    assert "FEAT-A attempt 1/3 (attempt 3 in all" in " ".join(result.output.split())
    state = Project.open(worked).ledger.feature("FEAT-A")
    assert (state.attempts, state.attempt_serial) == (1, 3)
    first = ralph("show", "FEAT-A", "--attempt", "1", "-C", worked).output
    assert "checks and verdict: failing" in first and "first try" in first  # not shadowed by the new round
    assert "FEAT-A attempt 3" in ralph("show", "FEAT-A", "-C", worked).output
    assert "Ralph-Attempt: 3" in git(worked, "log", "-1", "--format=%B")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                                                             "chromium); the page is checked as a browser renders it")


def render(page: Path, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after Chromium loaded it (scripts, had any run, would have changed it)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    if screenshot is not None:
        subprocess.run([*flags, "--window-size=1200,2400", f"--screenshot={screenshot}", page.as_uri()],
                       capture_output=True, timeout=180)
    return subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout


def text_of(dom: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@needs_chromium
def test_the_page_shows_seeds_attempts_diffs_and_charts(worked: Path, tmp_path: Path) -> None:
    board = worked / ".ralph" / "optimize" / "FEAT-A" / "leaderboard.json"
    board.parent.mkdir(parents=True)
    board.write_text(json.dumps({"feature": "FEAT-A", "metric": "acc", "direction": "max", "alpha": 0.05, "trials": [
        {"n": 7, "kind": "candidate", "verdict": "keep", "mean": 0.8433, "p_value": 0.004,
         "hypothesis": "a wider layer"}]}))
    page = tmp_path / "page" / "index.html"
    assert ralph("report", "--out", page, "-C", worked).exit_code == 0
    shot = tmp_path / "report.png"
    dom = render(page, tmp_path, shot)
    text = text_of(dom)
    assert "FEAT-A: accuracy beats its control" in text and "FEAT-B: loss stays low" in text
    # The figures per seed, their spread, the gate and the control.
    for value in (*SECOND, *CONTROL, *LOSS):
        assert f" {value:.4g} " in text, value
    assert "mean 0.8433 0.8433 0.4233" in text  # the gate's acc, the comparison's treatment (acc), its control
    assert "gate >= 0.6 compared control" in text and "gate <= 0.5" in text
    # Every attempt, the failed one with its figures, cost, time and diff.
    assert "attempt 1: failing" in text and "attempt 2: passing" in text
    assert "acc = 0.44 ± 0.03 (n = 3)" in text  # the failed attempt's mean and spread
    assert "+# first try" in text and "+# wider layer" in text
    assert "kept off the branch" in text
    assert "optimize leaderboard" in text and "n kind verdict mean p_value hypothesis 7 candidate keep 0.8433 0.004 a wider layer" in text
    # A chart per gated quantity, and the failed attempt's plots.
    charts = re.findall(r'<img class="chart" alt="chart: ([^"]+)" src="data:image/svg\+xml;base64,', dom)
    assert charts == ["accuracy: acc", "beats control: treatment (a) against its control (b)", "loss: loss"]
    assert dom.count('alt="runs/curve-s0.svg"') == 2  # attached to both attempts of FEAT-A
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("matplotlib.image").imread(shot)
    pixels = {tuple((p[:3] * 255).round().astype(int)) for row in image[::3] for p in row[::3]}
    assert (200, 30, 30) in pixels  # the plot a check wrote was painted


def test_a_chart_has_labelled_axes_the_gate_and_the_control() -> None:
    import base64

    from harness.views.charts import Series, chart_svg

    svg = base64.b64decode(chart_svg(Series(title="t", ylabel="eval $acc$", points={1: {0: 0.4, 1: 0.5}, 2: {0: 0.8}},
                                            control={1: {0: 0.3}}, status={1: "failing", 2: "passing"},
                                            threshold=0.6, op=">=")).split(",", 1)[1]).decode()
    for label in ("attempt", "eval $acc$", "gate: &gt;= 0.6", "control (b), mean", "seed 0", "mean over seeds"):
        assert label in svg, label


# ------------------------------------------------------------------ what an agent writes is never markup

PAYLOAD = "<script>document.body.setAttribute('data-pwned', '1')</script>"
JS_URL = "javascript:document.body.setAttribute('data-pwned', '1')"


@needs_chromium
def test_agent_text_shows_as_text_on_the_page(repo: Path, tmp_path: Path) -> None:
    """A hostile agent puts a script into its code (the diff), a check's output, a plot's file name and content,
    and an optimize trial's hypothesis and metric key: each shows as text, and no script runs."""
    plan = {**PLAN, "defaults": {**PLAN["defaults"], "max_attempts": 1}, "features": [
        {"id": "EVIL", "phase": 1, "title": "hostile", "verify": [
            {"name": "train", "run": "python train.py {seed}", "seeds": SEEDS},
            {"name": "accuracy", "seeds": SEEDS,
             "metric": {"file": "runs/a-s{seed}.json", "key": "acc", "op": ">=", "value": 0.6}}]}]}
    (repo / "PRD.json").write_text(json.dumps(plan))
    (repo / ".gitignore").write_text(".ralph/\nruns/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    linked = f"'wandb_id': 'run1', 'wandb_url': {JS_URL!r}, 'control':"  # the results file names a W&B run
    svg = f'<svg xmlns="http://www.w3.org/2000/svg">{PAYLOAD}</svg>'
    train = train_script(FIRST, PAYLOAD).replace("'control':", linked) + (
        f"open('runs/\"><img src=x onerror=alert(1)>.svg', 'w').write({svg!r})\nprint({PAYLOAD!r})\nsys.exit(1)\n")
    result = run_script(repo, tmp_path, {"EVIL": [[{"write": "train.py", "content": train}, {"say": PAYLOAD}]]})
    assert result.exit_code == 5, result.output  # blocked after its one attempt
    board = repo / ".ralph" / "optimize" / "EVIL"
    board.mkdir(parents=True)
    (board / "leaderboard.json").write_text(json.dumps({"trials": [
        {"n": 1, "kind": "candidate", "verdict": "keep", "mean": 0.5, "hypothesis": PAYLOAD, PAYLOAD: 1.0}]}))
    page = tmp_path / "page" / "index.html"
    assert ralph("report", "--out", page, "-C", repo).exit_code == 0
    source = page.read_text()
    assert "<script" not in source.lower() and "<img src=x" not in source and 'href="javascript' not in source
    assert not re.search(r'href="[^"]*\.svg"', source)  # an SVG the checks wrote is shown, never opened on its own
    dom = render(page, tmp_path)
    assert "<body>" in dom and "data-pwned" not in dom.split("<main>", 1)[0]  # the script never ran
    text = text_of(dom)
    assert f"+# {PAYLOAD}" in text  # the diff
    assert f"exit 1 (seed 0) {PAYLOAD}" in text  # the failing check's output
    assert text.count(PAYLOAD) >= 3  # the diff, the leaderboard's hypothesis and its column
    assert 'runs/"><img src=x onerror=alert(1)>.svg' in text  # the plot's name, as text
    assert f"run1 (url not http(s), not linked: {JS_URL} )" in text  # a W&B link from the results file


def test_a_moved_attempt_ref_is_tampering_and_put_back(worked: Path, tmp_path: Path) -> None:
    """The kept attempts' refs are guarded like ralph's tags: an agent that points one elsewhere is caught."""
    kept = git(worked, "rev-parse", "refs/ralph/attempts/FEAT-A/1")
    Project.open(worked).ledger.unblock("FEAT-A")
    run_script(worked, tmp_path, {"FEAT-A": [[{"run": "git update-ref refs/ralph/attempts/FEAT-A/1 HEAD"},
                                              {"write": "train.py", "content": train_script(SECOND, "x")}]]},
               "--feature", "FEAT-A")
    assert git(worked, "rev-parse", "refs/ralph/attempts/FEAT-A/1") == kept
    (entry,) = [e for e in read_attempts(worked, "FEAT-A")[0] if e.attempt == 3]
    assert entry.status != "passing" and "refs/ralph/attempts/FEAT-A/1" in entry.evidence[0].detail


def test_a_failed_attempt_holding_a_credential_is_not_kept(worked: Path, tmp_path: Path) -> None:
    Project.open(worked).ledger.unblock("FEAT-A")
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    run_script(worked, tmp_path, {"FEAT-A": [[{"write": "train.py", "content": train_script(FIRST, key)}]]},
               "--feature", "FEAT-A")
    (entry,) = [e for e in read_attempts(worked, "FEAT-A")[0] if e.attempt == 3]
    assert entry.status == "failing" and entry.commit is None and "an AWS access key" in entry.kept
    assert "refs/ralph/attempts/FEAT-A/3" not in git(worked, "for-each-ref", "refs/ralph")
    shown = " ".join(ralph("show", "FEAT-A", "--diff", "-C", worked).output.split())
    assert "tree not kept: not committing FEAT-A: train.py holds what looks like an AWS access key" in shown


def test_only_regular_images_inside_the_repository_are_kept(tmp_path: Path, monkeypatch) -> None:
    """A check (the agent's code) that leaves a symlink named like a plot cannot get a file of the user's onto
    the page, nor fill the disk through ralph's copies."""
    from harness.books import attempts
    from harness.books.attempts import keep_plots

    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    repo = tmp_path / "repo"
    (repo / "runs").mkdir(parents=True)
    (repo / "runs" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (repo / "runs" / "evil.png").symlink_to(secret)
    (repo / "runs" / "dir.png").mkdir()
    kept = keep_plots(repo, "F", 1, ["runs/ok.png", "runs/evil.png", "runs/dir.png", "../secret.txt.png",
                                      "runs/missing.png"])
    assert kept == ["plots/F/1/runs__ok.png"]
    assert not any("password" in p.read_text(errors="replace") for p in (repo / ".ralph").rglob("*") if p.is_file())
    monkeypatch.setattr(attempts, "PLOTS_BYTES_PER_ATTEMPT", 12)  # 8 bytes each: the second does not fit
    (repo / "runs" / "ok2.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert keep_plots(repo, "F", 2, ["runs/ok.png", "runs/ok2.png"]) == ["plots/F/2/runs__ok.png"]


def test_the_leaderboard_reader_documents_its_input(tmp_path: Path) -> None:
    from harness.views.leaderboard import read_leaderboard

    assert read_leaderboard(tmp_path, "F") is None
    path = tmp_path / ".ralph" / "optimize" / "F" / "leaderboard.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"trials": [
        {"n": 2, "verdict": "keep", "mean": 0.91234, "per_seed": {"0": 0.9, "1": 0.92}, "params": {"lr": 0.1},
         "commit": "abc"},
        {"n": 0, "kind": "baseline", "verdict": "keep", "mean": 0.8, "extra": [1, 2]}]}))
    found = read_leaderboard(tmp_path, "F")
    assert found is not None and found.problem is None
    assert found.columns == ["n", "kind", "verdict", "mean", "per_seed", "commit", "params.lr", "extra"]
    assert found.rows[0]["mean"] == "0.9123" and found.rows[0]["per_seed"] == "s0: 0.9, s1: 0.92"
    assert found.rows[1]["extra"] == "[1, 2]"
    path.write_text('{"trials": 3}')
    assert read_leaderboard(tmp_path, "F").problem == 'is not {"trials": [{...}, ...]}'


def test_attempt_numbers_of_an_older_ledger_go_on_from_its_round(tmp_path: Path) -> None:
    from harness.books.ledger import FeatureState, Ledger

    (tmp_path / ".ralph").mkdir()
    ledger = Ledger(tmp_path)
    ledger.state.features["F"] = FeatureState(attempts=2)  # as written before attempt_serial existed
    assert ledger.begin_attempt("F") == 3
    ledger.refund_attempt("F")  # Ctrl-C: the attempt is given back, and so is its number
    assert ledger.begin_attempt("F") == 3
    ledger.unblock("F")  # a new round
    assert ledger.begin_attempt("F") == 4 and ledger.feature("F").attempts == 1
    assert Ledger(tmp_path).feature("F").attempt_serial == 4  # saved
