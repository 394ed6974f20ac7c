"""A password identity: the file is read at connect, and a refusal names the user and file, never the password."""

from pathlib import Path

import pytest

from ferry_shared.bus.connection import _identity, read_password
from ferry_shared.settings import ServiceSettings


def test_the_password_file_loses_only_its_trailing_newline(tmp_path: Path) -> None:
    file = tmp_path / "password"
    file.write_text(" s3cret \n")
    assert read_password(file) == " s3cret "


def test_a_refusal_names_the_user_and_the_file(tmp_path: Path) -> None:
    named = _identity(None, "transfer", tmp_path / "password")
    assert "'transfer'" in named and str(tmp_path / "password") in named
    assert "FERRY_NATS_PASSWORD_FILE" in _identity(None, "transfer", None)
    assert "FERRY_NATS_USER" in _identity(None, None, None)


def test_settings_read_the_user_and_password_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FERRY_NATS_USER", "planner")
    monkeypatch.setenv("FERRY_NATS_PASSWORD_FILE", str(tmp_path / "password"))
    settings = ServiceSettings()
    assert settings.nats_user == "planner" and settings.nats_password_file == tmp_path / "password"
