"""A notifier process that dies where a crash loses a digest: it sends a batch of digests as a
worker does (``sending.send_batch``), and its sender SIGKILLs the process right after the
ledger's mark of the N-th message, before that message's last line. The state it leaves is
the one a worker killed in that window leaves, made on purpose rather than by a race.

    python -m tests.notifier.killed_at_the_last_line DATABASE_URL SMTP_URL N DELIVERY_ID...
"""

from __future__ import annotations

import os
import signal
import sys

from services.notifier import sending
from services.notifier.senders import SmtpSender
from shared.db import make_engine
from shared.events import utcnow
from tests.notifier.conftest import make_mail_settings


class DiesAtTheLastLine(SmtpSender):
    def __init__(self, url: str, dies_at: int):
        super().__init__(url)
        self.marks = 0
        self.dies_at = dies_at

    def send(self, sender, recipient, data, before_last_line=None) -> None:
        def mark_then_die():
            after_last_line = before_last_line()
            self.marks += 1
            if self.marks == self.dies_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return after_last_line

        super().send(sender, recipient, data, mark_then_die)


def main(database_url: str, smtp_url: str, dies_at: str, *delivery_ids: str) -> None:
    with DiesAtTheLastLine(smtp_url, int(dies_at)) as sender:
        sending.send_batch(
            make_engine(database_url),
            sender,
            [int(delivery_id) for delivery_id in delivery_ids],
            make_mail_settings(),
            utcnow(),
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
