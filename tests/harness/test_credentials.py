"""Each credential format ralph refuses to commit is recognised, and ordinary text is not (fake values,
assembled at run time so that this file itself carries none)."""

from __future__ import annotations

import pytest

from harness.secrets import CREDENTIAL_FORMATS, credential_in

FOUND = {
    "a private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow==\n",
    "an AWS access key": "key = AKIA" + "IOSFODNN7EXAMPLE",
    "an AWS secret key": "aws_secret_access_key=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "a GitHub token": "ghp" + "_" + "a" * 36,
    "an Anthropic API key": "sk-" + "ant-api03-" + "b" * 40,
    "an OpenAI API key": "sk-" + "proj-" + "c" * 40,
    "a Hugging Face token": "hf" + "_" + "d" * 34,
    "a Slack token": "xox" + "b-1234567890-abcdef",
    "a password in a .netrc": "machine api.example.com login me " + "password hunter2",
    "a Google API key": "AI" + "za" + "e" * 35,
    "a Google OAuth client secret or refresh token": '{"refresh_token": "1' + '//' + "f" * 40 + '"}',
    "an Azure storage account key": "DefaultEndpointsProtocol=https;Account" + "Key=" + "g" * 86 + "==",
    "an Azure shared access signature": "https://x.blob.core.windows.net/c?sv=2022&" + "sig=" + "h" * 44,
    "a GitLab token": "glp" + "at-" + "i" * 20,
    "a PyPI token": "pypi" + "-AgE" + "j" * 60,
    "an npm token": "np" + "m_" + "k" * 36,
    "a registry login in a Docker config": '{"auths": {"ghcr.io": {"au' + 'th": "' + "bWU6c2VjcmV0" * 3 + '"}}}',
    "a Kubernetes client key": "client-key" + "-data: " + "L" * 60,
}


def test_every_format_has_an_example() -> None:
    assert set(FOUND) == set(CREDENTIAL_FORMATS)


@pytest.mark.parametrize("kind", sorted(FOUND))
def test_each_format_is_recognised(kind: str) -> None:
    assert credential_in(f"notes\n{FOUND[kind]}\nmore".encode()) == kind


@pytest.mark.parametrize("text", [
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # a lock file's hash
    "ANTHROPIC_API_KEY=sk-ant-secret",  # a test's placeholder, too short to be a key
    "-----BEGIN PUBLIC KEY-----",
    "the password is in the vault",
])
def test_ordinary_text_is_not_a_credential(text: str) -> None:
    assert credential_in(text.encode()) is None
