"""The notifier's settings (its database, where mail goes, the key that signs links) and the
unsubscribe mailbox's (no database, and only the key that checks unsubscribe tokens)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from services.notifier.mail import DkimSigner, envelope_address
from services.notifier.senders import BACKENDS
from services.notifier.tokens import purpose_key
from shared.keys import MAIL_TOKENS, MIN_SECRET_KEY_CHARS, derive_key
from shared.settings import SMTP_SCHEMES, CommonSettings, EnvReader, ServiceSettings

DEV_KEY_FILE = "secret.key"
MAX_BASE_URL_CHARS = 300
DEFAULT_MAIL_FROM = "Sister Cities <news@sistercities.localhost>"
_SELECTOR = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class NotifierSettings(ServiceSettings):
    # Where mail goes (``senders.py``): an SMTP server, the console, files or nowhere.
    mail_backend: str = "smtp"
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_file_dir: Path = Path("var/mail")
    mail_from: str = DEFAULT_MAIL_FROM
    secret_key: str | None = None  # development without one: see ``mail_token_key``
    public_base_url: str = "http://127.0.0.1:8000"
    # Messages a second across all notifier workers (0: as fast as the server takes them).
    mail_rate: float = 0.0
    digest_batch: int = 200
    # The unsubscribe mailbox (``mailbox.py``): where it listens for mail to unsubscribe@.
    mailbox_host: str = "127.0.0.1"
    mailbox_port: int = 2525
    # DKIM: a PEM private key and its selector (the DNS name ``<selector>._domainkey.<domain>``
    # holds the public key). Without a key, mail goes unsigned.
    dkim_key_file: Path | None = None
    dkim_selector: str = "sistercities"

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        secret_key = env.secret_key(common["environment"])
        port = env.int("PORT", 8000, 1, 65535)
        public_base_url = env.url(
            "PUBLIC_BASE_URL", f"http://127.0.0.1:{port}", ("http", "https")
        ).rstrip("/")
        if len(public_base_url) > MAX_BASE_URL_CHARS:
            # Mail's List-Unsubscribe line holds it with two tokens, and may not pass 998 bytes.
            env.problems.append(f"PUBLIC_BASE_URL is longer than {MAX_BASE_URL_CHARS} characters")
        return {
            "mail_backend": env.choice("MAIL_BACKEND", "smtp", BACKENDS),
            "smtp_url": env.url("SMTP_URL", "smtp://127.0.0.1:1025", SMTP_SCHEMES),
            "mail_file_dir": _mail_file_dir(env, common["data_dir"]),
            "secret_key": secret_key,
            "public_base_url": public_base_url,
            "mail_rate": env.float("MAIL_RATE", 0.0, 0.0, 100_000.0),
            "digest_batch": env.int("DIGEST_BATCH", 200, 1, 10_000),
            **_mailbox_values(env),
            **_dkim_values(env),
        }

    def dkim_signer(self) -> DkimSigner | None:
        if self.dkim_key_file is None:
            return None
        domain = envelope_address(self.mail_from).rsplit("@", 1)[-1]
        return DkimSigner(self.dkim_key_file.read_bytes(), self.dkim_selector, domain)

    def mail_token_key(self) -> str:
        """The key of the links in mail: SECRET_KEY's for mail tokens, never the sessions'."""
        return derive_key(self.secret_key or _development_key(self.data_dir), MAIL_TOKENS)

    def legacy_link_key(self) -> str:
        """The key the links of older mail were signed with (SECRET_KEY itself): their
        unsubscribe and preferences links keep working (``tokens.Tokens``)."""
        return self.secret_key or _development_key(self.data_dir)

    def unsubscribe_key(self) -> str:
        """What the mailbox is given (UNSUBSCRIBE_KEY): it checks unsubscribe tokens only."""
        return purpose_key(self.mail_token_key(), "unsubscribe")


def _mail_file_dir(env: EnvReader, data_dir: Path) -> Path:
    """MAIL_BACKEND=file's folder: by default where the development mail catcher keeps the
    mail it catches, so there is one place to look."""
    given = env.str("MAIL_FILE_DIR")
    return Path(given).expanduser().resolve() if given else data_dir / "mail"


def _mailbox_values(env: EnvReader) -> dict[str, Any]:
    """What the notifier and its mailbox both read: the sender, and where the mailbox is."""
    return {
        "mail_from": env.str("MAIL_FROM", DEFAULT_MAIL_FROM),
        "mailbox_host": env.str("MAILBOX_HOST", "127.0.0.1"),
        "mailbox_port": env.int("MAILBOX_PORT", 2525, 1, 65535),
    }


def _dkim_values(env: EnvReader) -> dict[str, Any]:
    """Checked at start-up: a key that cannot sign would otherwise fail every send."""
    selector = env.str("DKIM_SELECTOR", "sistercities")
    if not _SELECTOR.fullmatch(selector):
        env.problems.append(f"DKIM_SELECTOR={selector!r} is not a DNS label (letters, digits, -)")
    key_file = env.str("DKIM_KEY_FILE")
    if key_file is None:
        return {"dkim_selector": selector}
    path = Path(key_file)
    try:
        parse_pem_private_key(path.read_bytes())
    except OSError as error:
        env.problems.append(f"DKIM_KEY_FILE cannot be read ({error.strerror})")
    except (UnparsableKeyError, ValueError, IndexError):
        env.problems.append("DKIM_KEY_FILE does not hold a PEM RSA private key")
    return {"dkim_key_file": path, "dkim_selector": selector}


@dataclass(frozen=True)
class MailboxSettings(CommonSettings):
    """The unsubscribe mailbox: no database, and not SECRET_KEY but UNSUBSCRIBE_KEY, derived
    from it (``sistercities notifier unsubscribe-key`` prints it), which checks unsubscribe
    tokens and can sign nothing else."""

    mail_from: str
    mailbox_host: str
    mailbox_port: int
    unsubscribe_key: str | None
    # Development and tests without UNSUBSCRIBE_KEY: derived as the notifier derives it.
    development: NotifierSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailboxSettings:
        env = EnvReader(environ)
        common = CommonSettings.read(env)
        key = env.str("UNSUBSCRIBE_KEY")
        if common["environment"] == "production":
            env.require(
                "UNSUBSCRIBE_KEY",
                key,
                "for the mailbox in production, instead of SECRET_KEY "
                "(`sistercities notifier unsubscribe-key` prints it)",
            )
        if key is not None and len(key) < MIN_SECRET_KEY_CHARS:
            env.problems.append(
                "UNSUBSCRIBE_KEY is too short: give the one "
                "`sistercities notifier unsubscribe-key` prints"
            )
        values = _mailbox_values(env)
        env.done()
        development = load_settings(environ) if key is None else None
        return cls(unsubscribe_key=key, development=development, **values, **common)

    def checking_key(self) -> str:
        if self.unsubscribe_key is not None:
            return self.unsubscribe_key
        assert self.development is not None  # from_env gives one where no key is given
        return self.development.unsubscribe_key()


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


def load_mailbox_settings(environ: Mapping[str, str] | None = None) -> MailboxSettings:
    return MailboxSettings.from_env(environ)
