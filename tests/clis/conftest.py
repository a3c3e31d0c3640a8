"""The real-CLI tier: marked `clis`, run by `make test-clis` and `.ci/run`; skipped only without a registry."""

from __future__ import annotations

import pytest

from tests.clis import install


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/clis/" in str(item.fspath):
            item.add_marker(pytest.mark.clis)


@pytest.fixture(scope="session")
def real_cli():
    """`real_cli(name)`: the pinned CLI's executable, installed into the cache on first use."""

    def get(name: str):
        try:
            return install.executable(name)
        except install.Unreachable as exc:
            pytest.skip(f"real {name} CLI not installable, registry unreachable: {exc}")

    return get
