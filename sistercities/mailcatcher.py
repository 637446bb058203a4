"""A local mail catcher for development: an SMTP server that keeps every message it receives
as an ``.eml`` file under ``DATA_DIR/mail/`` instead of delivering it."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

from shared.logs import get_logger

log = get_logger(__name__)


class MailDirHandler:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, _server, _session, envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, path)  # a reader never sees half a message
        log.info("mail_caught", path=str(path), to=envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def serve(directory: Path, host: str, port: int) -> None:
    controller = Controller(MailDirHandler(directory), hostname=host, port=port)
    controller.start()
    log.info("mailcatcher_listening", host=host, port=port, directory=str(directory))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    controller.stop()
