"""Plans a newcomer can finish and cannot fake: `ralph init --template seq-jepa` in an empty
repository leaves every checked path creatable, and the lint flags features whose checks only
look at files (validate warns, --strict fails, import says which stories need a check)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.judge.verify import Project
from harness.plan.lint import inspects_only, plan_findings
from harness.plan.patterns import matching_pattern
from harness.plan.prd import Check, load_prd
from harness.sandbox import guards


def ralph(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_seq_jepa_in_an_empty_repository_protects_only_what_exists(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    result = ralph("init", "--template", "seq-jepa", "-C", repo)
    assert result.exit_code == 0, result.output
    assert "'tests/lab/**' is not protected yet" in result.output
    project = Project.open(repo)
    assert "tests/lab/**" not in project.protected and "lab/eval/**" not in project.protected
    # an agent writes the tests every exit check runs; the guards keep them (no tampering)
    before = guards.snapshot(repo, project.prd.defaults.protected)
    (repo / "tests" / "lab").mkdir(parents=True)
    (repo / "tests" / "lab" / "test_views.py").write_text("def test_ok():\n    assert True\n")
    (repo / "lab" / "eval").mkdir(parents=True)
    (repo / "lab" / "eval" / "probes.py").write_text("")
    assert guards.check_and_restore(repo, before) == []
    assert (repo / "tests" / "lab" / "test_views.py").is_file()
    # every path a check runs is reachable: none lies under a protected glob that matches nothing
    for check in [c for f in project.prd.features for c in f.verify] + [c for p in project.prd.phases for c in p.exit]:
        for word in (check.run or "").split():
            assert matching_pattern(word, project.protected) is None, (check.name, word)


def test_seq_jepa_keeps_protecting_tests_that_exist(tmp_path: Path) -> None:
    repo = tmp_path / "lab-repo"
    (repo / "tests" / "lab").mkdir(parents=True)
    (repo / "tests" / "lab" / "test_views.py").write_text("def test_ok():\n    pass\n")
    result = ralph("init", "--template", "seq-jepa", "-C", repo)
    assert result.exit_code == 0 and "tests/lab/**" in Project.open(repo).protected
    assert "'lab/eval/**' is not protected yet" in result.output
    before = guards.snapshot(repo, ["tests/lab/**"])
    (repo / "tests" / "lab" / "test_views.py").write_text("")  # weakening the judge is undone
    assert guards.check_and_restore(repo, before) == ["tests/lab/test_views.py"]


def test_the_seq_jepa_template_has_only_executable_features(tmp_path: Path) -> None:
    ralph("init", "--template", "seq-jepa", "-C", tmp_path / "r")
    assert plan_findings(load_prd(tmp_path / "r" / "PRD.json")) == []


@pytest.mark.parametrize(("command", "inspects"), [
    # only look at files: flagged
    ("test -f docs/method.md", True),
    ("test -d experiments && grep -q hypothesis experiments/README.md", True),
    ("[ -s results.json ] || ls docs | wc -l", True),
    ("git ls-files | grep -q lab/", True),
    ("cd docs && test -f method.md", True),
    ("test -f a && grep -q b c", True),
    ("cat notes.md | grep -q hypothesis; ls docs", True),
    ("bash -c 'test -f a && grep -q word a'", True),
    ("sh -euo pipefail -c 'cd docs; ls'", True),
    ("( cd docs && test -f method.md ) || exit 1", True),
    ("{ test -f a; test -f b; }", True),
    ("test -f a\ngrep -q b a", True),
    ("timeout 60 test -f out.json", True),
    ("env LC_ALL=C grep -q ok log.txt > /dev/null 2>&1", True),
    ("git -C sub ls-files | xargs cat | grep -q x", True),
    ("find docs -name '*.md' -exec grep -q method {} \\;", True),
    ("eval 'test -f a'", True),
    # run code somewhere in the chain: not flagged
    ("pytest -q tests", False),
    ("OMP_NUM_THREADS=1 python train.py && test -f out.json", False),
    ("lab train smoke.yaml | grep acc", False),
    ("test -f $(python make.py)", False),
    ("find . -name '*.py' -exec python {} \\;", False),
    ("find runs -name '*.tmp' -delete", False),
    ("cd lab && pytest -q", False),
    ("test -f a && make check", False),
    ("bash -c 'test -f a && python score.py'", False),
    ("bash -o pipefail -c 'pytest -q | tail -1'", False),
    ("bash scripts/check.sh", False),
    ("cat steps.sh | bash", False),
    ("test -f a; ./run.sh", False),
    ("test -f a\npython score.py", False),
    ("ls | xargs python", False),
    ("timeout 60 pytest -q", False),
    ("sudo -u ci env -u HOME nice -n 5 lab eval runs/x", False),
    ("eval \"$CHECK\"", False),
    ("git -C sub status && git commit -m x", False),
])
def test_which_commands_only_inspect_files(command: str, inspects: bool) -> None:
    assert inspects_only(Check(name="c", run=command)) is inspects


def test_nested_shells_are_read_a_few_levels_deep_then_assumed_to_run_code() -> None:
    def nest(command: str, levels: int) -> str:
        for _ in range(levels):
            command = f"bash -c {shlex.quote(command)}"
        return command

    assert inspects_only(Check(name="c", run=nest("test -f a", 3))) is True
    assert inspects_only(Check(name="c", run=nest("python x.py", 3))) is False
    assert inspects_only(Check(name="c", run=nest("test -f a", 8))) is False


def lying_plan(repo: Path, prd_dict) -> None:
    prd_dict["features"][1]["verify"] = [{"name": "doc", "run": "test -f docs/method.md"},
                                         {"name": "word", "run": "grep -q hypothesis docs/method.md"}]
    (repo / "PRD.json").write_text(json.dumps(prd_dict))


def test_validate_warns_and_strict_fails_on_a_feature_that_only_inspects_files(prd_repo: Path, prd_dict) -> None:
    assert "FEAT-2: its checks ('ok') only prove" in ralph("validate", "-C", prd_repo).output  # `true` proves nothing
    lying_plan(prd_repo, prd_dict)
    warned = ralph("validate", "-C", prd_repo)
    assert warned.exit_code == 0
    assert "warning: FEAT-2: its checks ('doc', 'word') only prove that files exist" in warned.output
    assert "FEAT-1" not in warned.output.split("checks", 1)[1]  # it runs a command and gates a metric
    assert "to fix: add a check that runs the code" in warned.output
    strict = ralph("validate", "--strict", "-C", prd_repo)
    assert strict.exit_code == 2 and "error: FEAT-2" in strict.output


def test_import_names_the_stories_without_an_executable_check(tmp_path: Path) -> None:
    src = tmp_path / "prd.json"
    src.write_text(json.dumps({"project": "p", "userStories": [
        {"id": "US-1", "title": "a", "acceptanceCriteria": ["x"], "priority": 1},
        {"id": "US-2", "title": "b", "acceptanceCriteria": ["y"], "priority": 2}]}))
    result = ralph("import", src, "--out", tmp_path / "PRD.json")
    assert result.exit_code == 0
    assert "US-1: no 'verify' checks" in result.output and "US-2: no 'verify' checks" in result.output
    assert result.output.count("to fix: add a check") == 1 and '"run": "pytest' in result.output


def _write_results(repo: Path, prd, gain: float, diff: float) -> None:
    """Every file the plan's gates and comparisons read: runs whose absolute figures look excellent
    (z_AGG accuracy 0.9, R² 0.9, no collapse), `gain` above their untrained twin (`init.*`), the
    no-action ablation `diff` below them, and `lab diff` outputs with `diff` (spread 0.02)."""
    paths = {path for feature in prd.features for check in feature.verify for path in check.read_files()}
    for rel in sorted(paths):
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name == "results.json":
            seeded = re.search(r"-s(\d+)$", path.parent.name)
            seed = int(seeded.group(1)) if seeded else 0
            noise, twin_noise = 0.001 * seed, 0.002 * (seed % 2)  # seed-to-seed variation, unlike in each pair
            r2_equi = 0.9 - diff + twin_noise if "noact" in rel else 0.9 + noise  # the ablation, or the run
            data = {"eval.linacc_agg": 0.9 + noise, "eval.r2_equi": r2_equi, "eval.rankme_enc": 30.0,
                    "eval.collapsed": 0.0, "init.linacc_agg": 0.9 - gain + twin_noise,
                    "init.r2_equi": 0.9 - gain + twin_noise, "gain.linacc_agg": gain + noise - twin_noise,
                    "gain.r2_equi": gain + noise - twin_noise}
        else:  # a `lab diff` output
            data = {"diff": diff, "spread": 0.02, "diff_minus_spread": diff - 0.02, "diff_plus_spread": diff + 0.02}
        path.write_text(json.dumps(data))


@pytest.mark.parametrize(("gain", "diff", "learns"), [(0.0, -0.05, False), (0.1, 0.05, True)])
def test_the_seq_jepa_templates_gates_read_controls_not_absolute_numbers(tmp_path: Path, gain, diff, learns) -> None:
    """An untrained network with excellent absolute figures (gain 0 over its twin, worse than the
    ablation) fails some gate of every learning feature; one that learns passes them all."""
    from harness.judge.checks import run_check

    repo = tmp_path / "r"
    ralph("init", "--template", "seq-jepa", "-C", repo)
    prd = load_prd(repo / "PRD.json")
    _write_results(repo, prd, gain, diff)
    learning = [f for f in prd.features if any(c.run is None for c in f.verify)]
    assert {f.id for f in learning} >= {"S1-SMOKE", "S1-QUICK", "S1-ACTION", "S2-TEACHERLESS"}
    for feature in learning:
        verdicts = [run_check(c, repo, default_timeout_s=5).verdict for c in feature.verify if c.run is None]
        assert (set(verdicts) == {"pass"}) == learns, (feature.id, verdicts)


def test_seq_jepa_checks_judge_the_repositorys_lab_not_the_installed_one(tmp_path: Path) -> None:
    """Issue 24: S0-DATA passed in an empty repository, because `lab data check` ran the `lab` installed beside
    ralph. Now it fails there, although that `lab` is importable by the checks' Python, and passes once the
    repository holds the lab's code."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("torch") is None:
        pytest.skip("the lab extra (torch) is not installed")
    repo = tmp_path / "empty"
    assert ralph("init", "--template", "seq-jepa", "-C", repo).exit_code == 0
    first = ralph("verify", "S0-DATA", "-C", repo)
    assert first.exit_code == 1, first.output
    assert "test -f lab/cli.py" in first.output
    shutil.copytree(Path(__file__).resolve().parents[2] / "lab", repo / "lab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    second = ralph("verify", "S0-DATA", "-C", repo)
    assert second.exit_code == 0, second.output


# What an agent might write for the sklearn template's plan: does standardising help logistic regression on
# scikit-learn's digits (issue 24's first-day question)? The same files drive the README walk.
SKLEARN_PROJECT = {
    "data.py": '''"""Seeded train/test splits of scikit-learn's digits."""
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def split(seed):
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
''',
    "run.py": '''import argparse, json
from pathlib import Path

import yaml
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data import split

parser = argparse.ArgumentParser()
for flag in ("--config", "--seed", "--out"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()
config = yaml.safe_load(Path(args.config).read_text())
x_train, x_test, y_train, y_test = split(int(args.seed))
model = LogisticRegression(max_iter=config["max_iter"])
model = make_pipeline(StandardScaler(), model) if config["standardise"] else model
model.fit(x_train, y_train)
control = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
Path(args.out).parent.mkdir(parents=True, exist_ok=True)
Path(args.out).write_text(json.dumps({"seed": int(args.seed), "config": args.config,
                                      "test.accuracy": model.score(x_test, y_test),
                                      "control.accuracy": control.score(x_test, y_test)}))
''',
    "tests/test_data.py": '''import numpy as np

from data import split


def test_a_quarter_is_held_out():
    x_train, x_test, y_train, y_test = split(0)
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)


def test_same_seed_same_split_and_another_seed_another():
    assert np.array_equal(split(1)[1], split(1)[1])
    assert not np.array_equal(split(1)[1], split(2)[1])
''',
    "configs/baseline.yaml": "max_iter: 100\nstandardise: false\n",
    "configs/treatment.yaml": "max_iter: 100\nstandardise: true\n",
}


@pytest.mark.slow
def test_the_sklearn_template_fails_in_an_empty_repository_and_passes_with_the_code(tmp_path: Path) -> None:
    """Issue 24: a minimal generic template, with the results.json convention, for researchers not doing
    seq-JEPA; like seq-jepa's, its checks fail until the repository has the code."""
    pytest.importorskip("sklearn")
    repo = tmp_path / "digits"
    init = ralph("init", "--template", "sklearn", "-C", repo)
    assert init.exit_code == 0, init.output
    prd = load_prd(repo / "PRD.json")
    assert plan_findings(prd) == [] and [p.id for p in prd.phases] == [1, 2]
    empty = ralph("verify", "--phase", "1", "-C", repo)
    assert empty.exit_code == 1, empty.output
    for rel, text in SKLEARN_PROJECT.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    done = ralph("verify", "--phase", "1", "-C", repo)
    assert done.exit_code == 0, done.output
    results = json.loads((repo / "runs" / "baseline-s4" / "results.json").read_text())
    assert results["test.accuracy"] > results["control.accuracy"]


def test_init_ignores_the_usual_environment_and_tool_folders(tmp_path: Path) -> None:
    """Issue 24: after `ralph init` the first run listed a .venv's 11,329 files as uncommitted changes."""
    import subprocess

    repo = tmp_path / "proj"
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / ".venv" / "lib" / "x.py").write_text("")
    (repo / "pkg" / "__pycache__").mkdir(parents=True)
    (repo / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"")
    (repo / "pkg.egg-info").mkdir()
    (repo / "pkg.egg-info" / "PKG-INFO").write_text("")
    result = ralph("init", "-C", repo)
    assert result.exit_code == 0, result.output
    assert "git add -A && git commit" in " ".join(result.output.split())
    listed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.split()
    assert not [p for p in listed if p.startswith((".venv", "pkg/__pycache__", "pkg.egg-info"))], listed
