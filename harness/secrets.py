"""What is a credential: environment variables (removed from what checks and agents see, never written
into a job's environment) and file contents (never committed by ralph)."""

from __future__ import annotations

import fnmatch
import re

# Names always removed; the glob patterns catch the rest (GITHUB_TOKEN, AWS_SECRET, HF_API_KEY, ...).
SECRET_NAMES = frozenset({"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY"})


SECRET_PATTERNS = ("*_TOKEN", "*_SECRET", "*_KEY")
# Not secrets in form, but each grants access beyond the run: a cluster that runs jobs outside any sandbox
# (RAY_ADDRESS), the user's SSH agent (push rights), a container or Kubernetes control plane.
ACCESS_NAMES = frozenset({"RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "SSH_AUTH_SOCK", "DOCKER_HOST", "KUBECONFIG",
                          "RAY_JOB_HEADERS"})
# The same by form: where a control plane listens (RAY_DASHBOARD_ADDRESS, DASK_SCHEDULER_ADDRESS, the session
# bus's DBUS_SESSION_BUS_ADDRESS; VAULT_ADDR, NOMAD_ADDR, CONSUL_HTTP_ADDR) and what reaches one (*_SOCK).
ACCESS_PATTERNS = ("*_ADDRESS", "*_ADDR", "*_SOCK")


# Credential formats a file must not carry into a commit ralph makes: kind -> pattern. Hand-written rather
# than detect-secrets: ralph's core stays light, and these are formats, not entropy guesses that would flag
# every hash in a lock file.
CREDENTIAL_FORMATS: dict[str, re.Pattern[bytes]] = {
    "a private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "an AWS access key": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "an AWS secret key": re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
    "a GitHub token": re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})"),
    "an Anthropic API key": re.compile(rb"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    "an OpenAI API key": re.compile(rb"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}"),
    "a Hugging Face token": re.compile(rb"\bhf_[A-Za-z0-9]{30,}"),
    "a Slack token": re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "a password in a .netrc": re.compile(rb"(?m)^\s*machine\s+\S+.*\bpassword\s+\S+"),
    # a GCP service-account key file carries "a private key" (above); these are the other Google formats
    "a Google API key": re.compile(rb"\bAIza[0-9A-Za-z_-]{35}"),
    "a Google OAuth client secret or refresh token": re.compile(rb"\bGOCSPX-[A-Za-z0-9_-]{20,}|\"refresh_token\"\s*:\s*\"1//[A-Za-z0-9_-]{20,}"),
    "an Azure storage account key": re.compile(rb"(?i)\bAccountKey=[A-Za-z0-9+/]{80,}={0,2}"),
    "an Azure shared access signature": re.compile(rb"(?i)\bSharedAccessSignature=[^;\s]{20,}|[?&]sig=[A-Za-z0-9%+/]{40,}"),
    "a GitLab token": re.compile(rb"\bglpat-[A-Za-z0-9_-]{20,}"),
    "a PyPI token": re.compile(rb"\bpypi-AgE[A-Za-z0-9_-]{50,}"),
    "an npm token": re.compile(rb"\bnpm_[A-Za-z0-9]{36}"),
    "a registry login in a Docker config": re.compile(rb"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{16,}={0,2}\""),
    "a Kubernetes client key": re.compile(rb"\bclient-key-data:\s*[A-Za-z0-9+/]{40,}"),
}


def credential_in(data: bytes) -> str | None:
    """The kind of credential `data` holds (one of CREDENTIAL_FORMATS), or None."""
    return next((kind for kind, pattern in CREDENTIAL_FORMATS.items() if pattern.search(data)), None)


def is_secret(name: str) -> bool:
    """True when a variable name looks like a credential or grants access (ACCESS_NAMES, ACCESS_PATTERNS)."""
    upper = name.upper()
    return (upper in SECRET_NAMES or upper in ACCESS_NAMES
            or any(fnmatch.fnmatchcase(upper, p) for p in (*SECRET_PATTERNS, *ACCESS_PATTERNS)))
