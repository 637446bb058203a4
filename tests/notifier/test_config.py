"""The notifier's settings: the development key kept under DATA_DIR."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from services.notifier.config import DEV_KEY_FILE, _development_key


class KeyFileWatch:
    """Records the permissions of every key file in a folder at each audit event of this
    process (each open, link, chmod...): the moments between the steps that make the file."""

    watched: Path | None = None
    modes: set[int] = set()  # one watch at a time, reset by each test
    busy = False

    @classmethod
    def hook(cls, _event: str, _args: tuple) -> None:
        if cls.watched is None or cls.busy:
            return
        cls.busy = True  # listing the folder raises audit events of its own
        try:
            for entry in os.scandir(cls.watched):
                if DEV_KEY_FILE in entry.name:
                    cls.modes.add(stat.S_IMODE(entry.stat().st_mode))
        except FileNotFoundError:
            pass
        finally:
            cls.busy = False


sys.addaudithook(KeyFileWatch.hook)  # audit hooks cannot be removed: it idles when unwatched


@pytest.fixture
def no_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_the_development_key_file_is_never_readable_by_others_even_with_no_umask(
    tmp_path, no_umask
):
    KeyFileWatch.watched, KeyFileWatch.modes = tmp_path, set()
    try:
        key = _development_key(tmp_path)
    finally:
        KeyFileWatch.watched = None
    assert KeyFileWatch.modes == {0o600}
    assert stat.S_IMODE((tmp_path / DEV_KEY_FILE).stat().st_mode) == 0o600
    assert len(key) >= 32 and _development_key(tmp_path) == key
    assert [path.name for path in tmp_path.iterdir()] == [DEV_KEY_FILE]  # no draft left
