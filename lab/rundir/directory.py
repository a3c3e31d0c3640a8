"""The run-directory policy: runs/<name>/ is created by the command that trains into it, and never
silently replaced.

- `lab train` (`prepare_run_dir`): a run is its checkpoint. A directory holding one is refused unless
  the request says `--resume` (continue it) or `--overwrite` (delete it and start again); `--resume`
  without a checkpoint is refused; both at once are refused.
- `lab stream` (`replace_run_dir`): one pass with no resume, so any existing directory is a run;
  refused without `--overwrite`, deleted with it.
`open_run_dir` creates the directory and writes the run's config.yaml, once the data and model are built.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.config import ConfigError, RunConfig, save_config
from lab.errors import LabError
from lab.rundir.checkpoint import checkpoint_path


class RunStateError(LabError, RuntimeError):
    """The run directory does not fit the request (exists without --resume, or nothing to resume)."""


def _check_run_dir(cfg: RunConfig, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise RunStateError("--resume continues a run and --overwrite replaces it: pass one of them")
    has_ckpt = checkpoint_path(cfg.run_dir).is_file()
    if has_ckpt and not (resume or overwrite):
        raise RunStateError(
            f"{cfg.run_dir} already holds a run; pass --resume to continue it, --overwrite to start it again, "
            "or pick another name with --set name=NEW"
        )
    if resume and not has_ckpt:
        raise RunStateError(f"--resume: no checkpoint in {cfg.run_dir}; start the run without --resume")


def prepare_run_dir(cfg: RunConfig, resume: bool, overwrite: bool) -> None:
    """`lab train`'s policy: check the run directory fits the request; with `overwrite`, delete it."""
    _check_run_dir(cfg, resume, overwrite)
    if overwrite and cfg.run_dir.exists():
        shutil.rmtree(cfg.run_dir)


def replace_run_dir(cfg: RunConfig, overwrite: bool) -> None:
    """`lab stream`'s policy: an existing run directory is refused (ConfigError), or deleted with `overwrite`."""
    if cfg.run_dir.exists():
        if not overwrite:
            raise ConfigError(f"{cfg.run_dir} already holds a run; pass --overwrite or pick another name with --set name=NEW")
        shutil.rmtree(cfg.run_dir)


def open_run_dir(cfg: RunConfig) -> Path:
    """Create cfg.run_dir (if needed) and write the run's config.yaml into it; returns the directory."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, cfg.run_dir / "config.yaml")
    return cfg.run_dir
