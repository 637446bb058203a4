"""The notifier's settings: the development key kept under DATA_DIR."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from services.notifier.config import DEV_KEY_FILE, _development_key, load_settings
from shared.settings import ConfigError


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


def test_dkim_signs_only_with_a_key_and_a_bad_key_stops_the_start(tmp_path):
    environ = {"DATA_DIR": str(tmp_path), "MAIL_FROM": "News <news@sister.example>"}
    assert load_settings(environ).dkim_signer() is None
    key = Path(__file__).parent.parent / "fixtures" / "mail" / "dkim_test_key.pem"
    signer = load_settings({**environ, "DKIM_KEY_FILE": str(key)}).dkim_signer()
    assert (signer.domain, signer.selector) == (b"sister.example", b"sistercities")
    (tmp_path / "not-a-key.pem").write_text("hello")
    for bad, problem in [
        ({"DKIM_KEY_FILE": str(tmp_path / "missing.pem")}, "DKIM_KEY_FILE cannot be read"),
        ({"DKIM_KEY_FILE": str(tmp_path / "not-a-key.pem")}, "does not hold a PEM RSA"),
        ({"DKIM_SELECTOR": "bad selector"}, "DKIM_SELECTOR='bad selector' is not a DNS label"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            load_settings({**environ, **bad})
