"""Fixtures shared by the registry tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where tests drop throwaway plugin distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TIO_PLUGINS", raising=False)
    monkeypatch.delenv("TIO_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return tmp_path
