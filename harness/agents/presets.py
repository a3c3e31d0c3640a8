"""How ralph drives each agent CLI it knows: the exact invocation, its credentials, its state, its report.

Verified against Claude Code 2.1.332, Codex CLI 0.171.0 and aider-chat 0.86.2, as root and not, with
and without `--sandbox bwrap` (docs/agents.md has the details):

- claude: `-p --output-format json` prints one JSON report (usage, cost, turns, `subtype`);
  `--permission-mode acceptEdits --allowedTools ...` works as root, where the permission bypass
  flags are refused.
- codex: `OPENAI_BASE_URL` alone does not redirect it, so ralph writes a CODEX_HOME whose
  `config.toml` declares a provider (base_url, env_key, wire_api = "responses") unless the user set
  CODEX_HOME; its helper binaries need a CODEX_HOME outside the TMPDIR it sees, so TMPDIR is the
  attempt's scratch directory. `--json` ends with a `turn.completed` event carrying usage.
- aider: `--no-git` stops its own commits and its `.gitignore` edit; usage is only its
  "Tokens: ... Cost: ..." lines.

`cli_for(command)` recognises a preset's CLI in any template (`/opt/bin/claude -p ...` too), so its
credentials reach it however it is named.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.agents import reports
from harness.agents.reports import CliReport

PromptVia = Literal["stdin", "file"]


@dataclass(frozen=True)
class Preset:
    """One CLI: `template` (placeholders as in command.py), where its prompt goes, what it needs."""

    name: str
    executable: str  # the command word that names this CLI
    template: str
    prompt_via: PromptVia
    credentials: tuple[str, ...]  # environment variables holding its API key (any one will do)
    install: str  # the command that installs the verified version
    version: str  # the version these flags were verified with
    parse_report: Callable[[str], CliReport]
    prepare: Callable[[Path], dict[str, str]] | None = None  # (attempt scratch dir) -> extra env
    default_model: str = ""  # "" lets the CLI choose (and report its own cost)
    login_files: tuple[str, ...] = ()  # a login that stands in for the key (`~`, `$VAR` expanded)
    login: str = ""  # how to log in instead of exporting a key
    configured_keys: Callable[[], tuple[str, ...]] | None = None  # more key names its own config names
    # The base URLs of the model APIs it calls, from its settings as ralph runs it: under --sandbox bwrap the
    # only places its network reaches (sandbox/network.py)
    api_urls: Callable[[], tuple[str, ...]] = lambda: ()

    def keys(self) -> tuple[str, ...]:
        """Every environment variable that may hold this CLI's key (fixed ones, then configured ones)."""
        extra = self.configured_keys() if self.configured_keys else ()
        return tuple(dict.fromkeys([*self.credentials, *extra]))


# (base URL variable, the URL it defaults to) per API a CLI reaches
ANTHROPIC_API = ("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
OPENAI_API = ("OPENAI_BASE_URL", "https://api.openai.com/v1")
# aider's providers (litellm): the key that selects one, its base URL variable, its default
AIDER_APIS = {
    "OPENAI_API_KEY": ("OPENAI_API_BASE", "https://api.openai.com/v1"),
    "ANTHROPIC_API_KEY": ANTHROPIC_API,
    "GEMINI_API_KEY": ("GEMINI_API_BASE", "https://generativelanguage.googleapis.com"),
    "DEEPSEEK_API_KEY": ("DEEPSEEK_API_BASE", "https://api.deepseek.com"),
    "OPENROUTER_API_KEY": ("OPENROUTER_API_BASE", "https://openrouter.ai/api/v1"),
}


def _api(variable: str, default: str) -> str:
    return os.environ.get(variable) or default


def claude_apis() -> tuple[str, ...]:
    return (_api(*ANTHROPIC_API),)


def codex_apis() -> tuple[str, ...]:
    """ralph's provider's base URL; with a CODEX_HOME of the user's own, every provider its config.toml declares
    (and OpenAI's, its built-in default)."""
    if not os.environ.get("CODEX_HOME"):
        return (_api(*OPENAI_API),)
    providers = _codex_user_config().get("model_providers")
    urls = [str(p["base_url"]) for p in (providers.values() if isinstance(providers, dict) else ())
            if isinstance(p, dict) and p.get("base_url")]
    return (*urls, _api(*OPENAI_API))


def aider_apis() -> tuple[str, ...]:
    """The API of each provider whose key is set (aider picks one by its model); OpenAI's when none is."""
    chosen = [_api(*api) for key, api in AIDER_APIS.items() if os.environ.get(key)]
    if os.environ.get("OPENAI_API_BASE") is None and os.environ.get("OPENAI_BASE_URL"):
        chosen.append(os.environ["OPENAI_BASE_URL"])  # litellm reads this spelling too
    return tuple(chosen) or (AIDER_APIS["OPENAI_API_KEY"][1],)


def _codex_env(scratch: Path) -> dict[str, str]:
    """CODEX_HOME with a provider that honours OPENAI_BASE_URL, and a TMPDIR that is not its parent.

    A CODEX_HOME the user set is theirs and is used as is. Codex refuses to lay out its helper
    binaries inside the temporary directory it sees (then every shell command fails while it
    exits 0), so TMPDIR becomes the attempt's scratch directory, never an ancestor of CODEX_HOME.
    """
    home = Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else codex_home()
    home.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("CODEX_HOME"):
        (home / "config.toml").write_text(codex_config(os.environ.get("OPENAI_BASE_URL")))
    return {"CODEX_HOME": str(home), "TMPDIR": str(scratch)}


def codex_provider_keys() -> tuple[str, ...]:
    """The `env_key`s of the providers in the user's own CODEX_HOME config (ralph's names OPENAI_API_KEY)."""
    if not os.environ.get("CODEX_HOME"):
        return ()
    config = _codex_user_config()
    providers = config.get("model_providers") if isinstance(config.get("model_providers"), dict) else {}
    return tuple(str(p["env_key"]) for p in providers.values() if isinstance(p, dict) and p.get("env_key"))


def _codex_user_config() -> dict:
    """The user's own CODEX_HOME's config.toml, or {} when there is none (or it cannot be read)."""
    try:
        return tomllib.loads((Path(os.environ["CODEX_HOME"]) / "config.toml").read_text())
    except (KeyError, OSError, ValueError):
        return {}


def codex_home() -> Path:
    """ralph's own CODEX_HOME: under the user's state directory (XDG_STATE_HOME, else ~/.local/state)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ralph" / "codex"


CODEX_PROVIDER = "ralph-openai"


def codex_config(base_url: str | None) -> str:
    """A config.toml whose provider sends the Responses API to `base_url` with OPENAI_API_KEY."""
    url = (base_url or "https://api.openai.com/v1").rstrip("/")
    return (
        "# Written by ralph for `codex exec`; set CODEX_HOME to use your own configuration instead.\n"
        f'model_provider = "{CODEX_PROVIDER}"\n\n'
        f"[model_providers.{CODEX_PROVIDER}]\n"
        'name = "OpenAI (via ralph)"\n'
        f"base_url = {_toml_string(url)}\n"
        'env_key = "OPENAI_API_KEY"\n'
        'wire_api = "responses"\n'
    )


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


PRESETS: dict[str, Preset] = {
    "claude": Preset(
        name="claude",
        executable="claude",
        template="claude -p --output-format json --permission-mode acceptEdits "
        "--allowedTools Bash,Edit,Write,Read --max-turns {max_turns} {model_args}",
        prompt_via="stdin",
        credentials=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"),
        install="npm install -g @anthropic-ai/claude-code@2.1.332",
        version="2.1.332",
        parse_report=reports.claude,
        login_files=("~/.claude/.credentials.json",),
        login="claude setup-token",
        api_urls=claude_apis,
    ),
    "codex": Preset(
        name="codex",
        executable="codex",
        template="codex exec --json --skip-git-repo-check --sandbox workspace-write {model_args} -",
        prompt_via="stdin",
        credentials=("OPENAI_API_KEY",),
        install="npm install -g @openai/codex@0.171.0",
        version="0.171.0",
        parse_report=reports.codex,
        prepare=_codex_env,
        default_model="gpt-6-sol",  # codex reports no cost: ralph prices the model it names
        login_files=("$CODEX_HOME/auth.json",),  # only a CODEX_HOME of your own uses its login
        login="codex login, with CODEX_HOME set to your own configuration",
        configured_keys=codex_provider_keys,
        api_urls=codex_apis,
    ),
    "aider": Preset(
        name="aider",
        executable="aider",
        template="aider --message-file {prompt_file} --yes-always --no-git --chat-history-file /dev/null "
        "--input-history-file /dev/null --no-check-update --no-show-release-notes --no-analytics "
        "--no-pretty {model_args}",
        prompt_via="file",
        credentials=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY"),
        install="pip install aider-chat==0.86.2 (in its own venv, e.g. `pipx install aider-chat==0.86.2`)",
        version="0.86.2",
        parse_report=reports.aider,
        api_urls=aider_apis,
    ),
}


def command_word(command: str) -> str | None:
    """The executable a shell command starts (leading `VAR=value` words skipped), or None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    words = [w for w in words if "=" not in w.split("/")[0]]
    return words[0] if words else None


def cli_for(command: str) -> Preset | None:
    """The preset whose CLI `command` runs, by the executable's name (`/opt/x/bin/claude` is claude)."""
    word = command_word(command)
    if word is None:
        return None
    names = {Path(word).name}
    found = shutil.which(word)
    if found:
        names.add(Path(found).resolve().name)
    return next((p for p in PRESETS.values() if p.executable in names), None)


def install_mounts(executable: Path) -> list[Path]:
    """What must be visible for `executable` to run in a sandbox whose /tmp is private.

    The executable's directory (PATH must find it), its resolved target, and the tree it belongs
    to: the `node_modules` an npm CLI lives in (platform binaries are sibling packages), the
    interpreter of its shebang line (`node`; a venv's python), and for a venv its root plus the
    base installation its `pyvenv.cfg` names.
    """
    mounts = [executable.parent, executable.resolve()]
    target = executable.resolve()
    modules = next((p for p in target.parents if p.name == "node_modules"), None)
    if modules is not None:
        mounts.append(modules)
    interpreter = _shebang_interpreter(target)
    if interpreter is not None:
        mounts += [interpreter.parent, interpreter.resolve().parent.parent]
        mounts += _venv_tree(interpreter)
    mounts += _venv_tree(target)
    return list(dict.fromkeys(p for p in mounts if p != Path("/")))


def _shebang_interpreter(script: Path) -> Path | None:
    try:
        with script.open("rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
        found = shutil.which(words[0]) if words else None
        return Path(found) if found else None
    return Path(words[0])


def _venv_tree(path: Path) -> list[Path]:
    """A venv's root and its base interpreter's prefix, when `path` is inside a venv's bin/."""
    root = path.parent.parent
    cfg = root / "pyvenv.cfg"
    if not cfg.is_file():
        return []
    mounts = [root]
    for line in cfg.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            mounts.append(Path(value.strip()).resolve().parent)
    return mounts
