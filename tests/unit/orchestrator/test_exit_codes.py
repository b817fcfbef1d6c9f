"""An unexpected exception must never exit 1: 1 means the release gate failed."""

from __future__ import annotations

import pytest

from orchestrator.cli.context import CliContext
from orchestrator.cli.main import main


def test_an_unexpected_error_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: CliContext) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(CliContext, "database", explode)
    assert main(["token", "create", "--role", "admin"]) == 3
