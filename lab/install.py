"""The command that installs a missing extra into the environment `lab` runs from, as it works when printed.

Three things decide it, each read from this machine rather than assumed:
- where ralph-lab came from: this clone (a source tree with pyproject.toml), else the `direct_url.json`
  pip and uv record for a path or git URL install (PEP 610); an install from an index needs no source;
- the installer: `python -m pip` where the environment has pip; else `uv pip install --python …` (a
  `uv tool install` environment has no pip); in a pipx environment (no pip of its own either) `pipx install
  --force` of the same source with the extra; else pip bootstrapped with `ensurepip` first;
- torch's build: PyPI's Linux torch is the CUDA one (15 nvidia wheels), right on a GPU machine; a Linux
  machine with no NVIDIA driver gets the CPU wheel from PyTorch's CPU index (`--extra-index-url`, so every
  other package still comes from PyPI). The clone's constraints file pins the version either way.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "ralph-lab"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Machine:
    """What the install command depends on (see the module docstring)."""

    python: str
    has_pip: bool
    uv: bool  # uv is on PATH
    linux: bool
    nvidia: bool  # an NVIDIA driver is loaded
    pipx_venv: str | None = None  # the name of the pipx environment lab runs from (pipx on PATH), else None


def this_machine() -> Machine:
    prefix = Path(sys.prefix)
    pipx = prefix.name if prefix.parent.name == "venvs" and shutil.which("pipx") else None
    return Machine(python=sys.executable, has_pip=importlib.util.find_spec("pip") is not None,
                   uv=shutil.which("uv") is not None, linux=sys.platform.startswith("linux"),
                   nvidia=Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None,
                   pipx_venv=pipx)


def installer(machine: Machine) -> list[str]:
    """The words that start a pip install into `machine.python`'s environment: its own pip; else uv's; else pip
    bootstrapped by ensurepip first. (A pipx environment is reinstalled by pipx instead: `pipx_command`.)"""
    if machine.has_pip:
        return [machine.python, "-m", "pip", "install"]
    if machine.uv:
        return ["uv", "pip", "install", "--python", machine.python]
    return [machine.python, "-m", "ensurepip", "&&", machine.python, "-m", "pip", "install"]


def recorded_source() -> str | None:
    """Where ralph-lab was installed from, as pip or uv recorded it: a local path, or `git+URL@commit`."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        info = json.loads(text) if text else None
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None
    url = info["url"]
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git":
        return f"git+{url}@{vcs.get('commit_id', '')}".rstrip("@")
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" and "dir_info" in info else url


def requirement(extra: str, clone: Path | None, source: str | None) -> list[str]:
    """The requirement words for pip: this clone editable, else the recorded source, else the distribution's name."""
    if clone is not None:
        return ["-e", f"{clone}[{extra}]"]
    if source is not None:
        return [f"{DISTRIBUTION}[{extra}] @ {Path(source).as_uri() if source.startswith('/') else source}"]
    return [f"{DISTRIBUTION}[{extra}]"]


def install_command(extra: str, machine: Machine | None = None, clone: Path | None = None,
                    source: str | None = None) -> str:
    """The shell command that installs `extra` into `machine.python`'s environment (defaults: this machine,
    this clone when `lab` runs from one, else the recorded source)."""
    machine = machine or this_machine()
    if clone is None and source is None and (ROOT / "pyproject.toml").is_file():
        clone = ROOT
    source = source if clone is not None else (source or recorded_source())
    if machine.pipx_venv and not machine.has_pip and not machine.uv:
        return pipx_command(extra, machine, clone, source)
    words = installer(machine)
    if machine.linux and not machine.nvidia:
        words += ["--extra-index-url", CPU_INDEX]
    tree = clone or (Path(source) if source and source.startswith("/") else None)
    if tree is not None and (tree / "constraints" / "cpu.txt").is_file():
        words += ["-c", str(tree / "constraints" / "cpu.txt")]
    return " ".join(w if w == "&&" else shlex.quote(w) for w in words + requirement(extra, clone, source))


def torch_build_note(machine: Machine | None = None) -> str:
    """One line saying which torch build the command installs and why."""
    machine = machine or this_machine()
    if not machine.linux:
        return "(PyPI's torch for this platform)"
    if machine.nvidia:
        return "(an NVIDIA driver is loaded: PyPI's CUDA build of torch)"
    return "(no NVIDIA driver here: torch's CPU build from PyTorch's CPU index, not the CUDA build and its nvidia wheels)"


def pipx_command(extra: str, machine: Machine, clone: Path | None, source: str | None) -> str:
    """`pipx install --force` of ralph-lab with `extra`, from where it came, pip's options passed through: a pipx
    environment has no pip of its own, and pipx installs extras of a path (`/path/to/ralph-lab[lab]`)."""
    tree = clone or (Path(source) if source and source.startswith("/") else None)
    spec = f"{tree}[{extra}]" if tree is not None else requirement(extra, None, source)[-1]
    pip_args = (["--extra-index-url", CPU_INDEX] if machine.linux and not machine.nvidia else []) + \
        (["-c", str(tree / "constraints" / "cpu.txt")] if tree and (tree / "constraints" / "cpu.txt").is_file() else [])
    words = ["pipx", "install", "--force", spec] + ([f"--pip-args={shlex.join(pip_args)}"] if pip_args else [])
    return shlex.join(words)
