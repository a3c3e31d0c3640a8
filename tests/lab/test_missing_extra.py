"""`lab` without its extra installed: a message naming the extra and the exact install command, never
a traceback. The missing package is simulated with `sys.modules[name] = None` (import then raises
ModuleNotFoundError, as it does when the package is absent)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def lab_without(blocked: str, *argv: str) -> subprocess.CompletedProcess[str]:
    code = (f"import sys\nsys.modules[{blocked!r}] = None\nsys.argv = ['lab', *{list(argv)!r}]\n"
            "from lab.cli import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    ("torch", ["train", "experiments/step1-baseline/smoke.yaml"], "lab"),  # fails inside the command
    ("torch", ["bench", "views"], "lab"),  # fails while the deferred sub-app loads
    ("transformers", ["llm", "base", "--out", "/nonexistent/x"], "llm"),  # fails inside the command
])
def test_a_missing_extra_says_which_and_how_to_install_it(blocked: str, argv: list[str], extra: str) -> None:
    result = lab_without(blocked, *argv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    err = " ".join(result.stderr.split())
    assert f"lab needs '{blocked}', which comes with the [{extra}] extra" in err
    assert f"{sys.executable} -m pip install " in err and f"[{extra}]" in err  # from this clone, into this environment
    assert "constraints/cpu.txt" in err and "make setup" in err


def test_a_missing_module_that_no_extra_provides_is_not_disguised() -> None:
    result = lab_without("yaml", "train", "experiments/step1-baseline/smoke.yaml")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr and "extra" not in result.stderr


def test_help_needs_no_extra() -> None:
    """`lab --help` lists every command, the deferred sub-apps included, without importing torch."""
    result = lab_without("torch", "--help")
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("train", "eval", "bench", "llm", "data"))


@pytest.mark.parametrize("blocked", ["torch", "sklearn"])
def test_gate_compares_numbers_without_the_heavy_libraries(tmp_path, blocked: str) -> None:
    """Issue 24: `lab gate` took 3 s to compare two numbers, importing torch and scikit-learn through
    lab.eval; it needs neither."""
    (tmp_path / "results.json").write_text('{"eval.acc": 0.9}')
    (tmp_path / "gates.yaml").write_text('gates:\n  - "eval.acc >= 0.5"\n')
    result = lab_without(blocked, "gate", str(tmp_path / "results.json"), "--config", str(tmp_path / "gates.yaml"))
    assert result.returncode == 0, result.stderr
    assert "all gates pass" in result.stdout
