"""One error → exit idiom: every error the user can fix is a LabError, and every `lab` command turns it into
one red line and exit code 2; other exceptions stay bugs with tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.cli import app
from lab.compare import CompareError
from lab.config import ConfigError
from lab.data.base import DatasetMissingError
from lab.errors import LabError
from lab.eval.gates import GateConfigError
from lab.llm.loading import ModelError
from lab.results import ResultsError
from lab.train.launch import TrainingProcessFailed
from lab.rundir.directory import RunStateError


@pytest.mark.parametrize("cls, builtin", [
    (ConfigError, ValueError), (CompareError, ValueError), (ResultsError, ValueError), (GateConfigError, ValueError),
    (RunStateError, RuntimeError), (TrainingProcessFailed, RuntimeError), (DatasetMissingError, FileNotFoundError),
    (ModelError, Exception),
])
def test_every_user_error_is_a_lab_error_and_keeps_its_builtin_base(cls: type, builtin: type) -> None:
    assert issubclass(cls, LabError) and issubclass(cls, builtin)


def test_a_lab_error_anywhere_in_a_command_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.evaluate

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("name: run\n")

    def broken(*args, **kwargs):
        raise ResultsError("results.json has no key eval.acc; evaluate the run again")

    monkeypatch.setattr(lab.evaluate, "evaluate", broken)
    result = CliRunner().invoke(app, ["eval", str(run)])
    assert result.exit_code == 2 and "no key eval.acc" in result.output and "Traceback" not in result.output

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr(lab.evaluate, "evaluate", bug)
    result = CliRunner().invoke(app, ["eval", str(run)])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)  # bugs keep their traceback
