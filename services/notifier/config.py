"""The notifier's settings: its database, where mail goes, and the key that signs links."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.settings import SMTP_SCHEMES, EnvReader, ServiceSettings

DEV_KEY_FILE = "secret.key"
MAX_BASE_URL_CHARS = 300


@dataclass(frozen=True)
class NotifierSettings(ServiceSettings):
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Sister Cities <news@sistercities.localhost>"
    secret_key: str | None = None  # development without one: see ``signing_key``
    public_base_url: str = "http://127.0.0.1:8000"
    # Messages a second across all notifier workers (0: as fast as the server takes them).
    mail_rate: float = 0.0
    digest_batch: int = 200
    # The unsubscribe mailbox (``mailbox.py``): where it listens for mail to unsubscribe@.
    mailbox_host: str = "127.0.0.1"
    mailbox_port: int = 2525

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        secret_key = env.str("SECRET_KEY")
        if common["environment"] == "production":
            env.require("SECRET_KEY", secret_key, "in production (a long random string)")
        port = env.int("PORT", 8000, 1, 65535)
        public_base_url = env.url(
            "PUBLIC_BASE_URL", f"http://127.0.0.1:{port}", ("http", "https")
        ).rstrip("/")
        if len(public_base_url) > MAX_BASE_URL_CHARS:
            # Mail's List-Unsubscribe line holds it with two tokens, and may not pass 998 bytes.
            env.problems.append(f"PUBLIC_BASE_URL is longer than {MAX_BASE_URL_CHARS} characters")
        return {
            "smtp_url": env.url("SMTP_URL", "smtp://127.0.0.1:1025", SMTP_SCHEMES),
            "mail_from": env.str("MAIL_FROM", "Sister Cities <news@sistercities.localhost>"),
            "secret_key": secret_key,
            "public_base_url": public_base_url,
            "mail_rate": env.float("MAIL_RATE", 0.0, 0.0, 100_000.0),
            "digest_batch": env.int("DIGEST_BATCH", 200, 1, 10_000),
            "mailbox_host": env.str("MAILBOX_HOST", "127.0.0.1"),
            "mailbox_port": env.int("MAILBOX_PORT", 2525, 1, 65535),
        }

    def signing_key(self) -> str:
        return self.secret_key or _development_key(self.data_dir)


def _development_key(data_dir: Path) -> str:
    """Without SECRET_KEY, development keeps one key under DATA_DIR, so links in mail sent
    yesterday still work after a restart. Created once, atomically: every process that starts
    at the same moment ends up with the same key."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{DEV_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        # Readable by its owner alone from the moment it exists, whatever the umask: a file
        # written first and restricted after can be opened by anyone in between.
        descriptor = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)  # fails if another process was first; its key wins
        draft.unlink()
    return path.read_text().strip()


def load_settings(environ: Mapping[str, str] | None = None) -> NotifierSettings:
    return NotifierSettings.from_env("notifier", environ)
