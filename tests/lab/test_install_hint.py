"""Issue 24: the command `lab` prints for a missing extra works as printed — on a CPU machine it takes torch's
CPU build (not the CUDA one and its 15 nvidia wheels), on a GPU machine PyPI's CUDA build; into the environment
lab runs from, with pip where it has pip and with uv where it does not (`uv tool install`), from the clone or the
source pip recorded (a `pipx install /path/to/clone`, where the old hint named site-packages as the source)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from lab import install
from lab.install import CPU_INDEX, Machine, install_command

CPU = Machine(python="/env/bin/python", has_pip=True, uv=False, linux=True, nvidia=False)
GPU = Machine(python="/env/bin/python", has_pip=True, uv=False, linux=True, nvidia=True)
UV_TOOL = Machine(python="/uv/tools/ralph-lab/bin/python", has_pip=False, uv=True, linux=True, nvidia=False)
MAC = Machine(python="/env/bin/python", has_pip=True, uv=False, linux=False, nvidia=False)


def words(command: str) -> list[str]:
    return shlex.split(command)


def test_cpu_gets_the_cpu_index_and_the_clones_constraints() -> None:
    root = install.ROOT
    cmd = words(install_command("lab", CPU, clone=root))
    assert cmd[:4] == ["/env/bin/python", "-m", "pip", "install"]
    assert cmd[cmd.index("--extra-index-url") + 1] == CPU_INDEX
    assert cmd[cmd.index("-c") + 1] == str(root / "constraints" / "cpu.txt")
    assert cmd[-2:] == ["-e", f"{root}[lab]"]


def test_gpu_gets_pypis_cuda_build_and_mac_its_own() -> None:
    assert "--extra-index-url" not in words(install_command("lab", GPU, clone=install.ROOT))
    assert "--extra-index-url" not in words(install_command("lab", MAC, clone=install.ROOT))


def test_an_environment_without_pip_is_installed_into_with_uv_pipx_or_ensurepip() -> None:
    """uv tool and pipx environments have no pip (checked on real ones: `python -m pip` there says "No module
    named pip"), so the old `python -m pip install` line failed as printed."""
    cmd = words(install_command("llm", UV_TOOL, clone=install.ROOT))
    assert cmd[:5] == ["uv", "pip", "install", "--python", "/uv/tools/ralph-lab/bin/python"]
    pipx = Machine(python="/p/venvs/ralph-lab/bin/python", has_pip=False, uv=False, linux=True, nvidia=False,
                   pipx_venv="ralph-lab")
    assert words(install_command("lab", pipx, clone=install.ROOT)) == [
        "pipx", "install", "--force", f"{install.ROOT}[lab]",
        f"--pip-args=--extra-index-url {CPU_INDEX} -c {install.ROOT / 'constraints' / 'cpu.txt'}"]
    bare = Machine(python="/e/bin/python", has_pip=False, uv=False, linux=True, nvidia=False)
    assert install_command("lab", bare, clone=install.ROOT).startswith(
        "/e/bin/python -m ensurepip && /e/bin/python -m pip install ")


def test_an_install_from_a_path_names_that_path_not_site_packages(tmp_path: Path) -> None:
    clone = tmp_path / "ralph-lab"
    (clone / "constraints").mkdir(parents=True)
    (clone / "constraints" / "cpu.txt").write_text("torch==2.13.0\n")
    cmd = words(install_command("lab", CPU, source=str(clone)))
    assert cmd[-1] == f"ralph-lab[lab] @ {clone.as_uri()}"
    assert cmd[cmd.index("-c") + 1] == str(clone / "constraints" / "cpu.txt")
    git = words(install_command("lab", GPU, source="git+https://example.org/ralph-lab.git@abc123"))
    assert git[-1] == "ralph-lab[lab] @ git+https://example.org/ralph-lab.git@abc123"


def test_the_recorded_source_is_read_from_direct_url(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dist:
        def __init__(self, info: dict) -> None:
            self.info = info

        def read_text(self, name: str) -> str:
            assert name == "direct_url.json"
            return json.dumps(self.info)

    for info, expected in [({"url": "file:///src/ralph%20lab", "dir_info": {}}, "/src/ralph lab"),
                           ({"url": "https://h/r.git", "vcs_info": {"vcs": "git", "commit_id": "c0ffee"}},
                            "git+https://h/r.git@c0ffee")]:
        monkeypatch.setattr(install.metadata, "distribution", lambda name, info=info: Dist(info))
        assert install.recorded_source() == expected


@pytest.mark.parametrize("machine", [CPU, GPU, MAC])
def test_pip_accepts_the_printed_options(machine: Machine) -> None:
    """pip's own parser reads the printed command: every option exists and takes what follows it."""
    create_command = pytest.importorskip("pip._internal.commands").create_command
    cmd = words(install_command("lab", machine, clone=install.ROOT))
    options, args = create_command("install").parse_args(cmd[4:])
    assert options.editables == [f"{install.ROOT}[lab]"]
    assert (CPU_INDEX in options.extra_index_urls) == (machine is CPU)
