"""An aiosmtpd server that only counts (the digest benchmark's mail server).

    python -m benchmarks.smtp_sink --port 8025 --report /tmp/sink.json

On SIGTERM it writes {"messages", "recipients", "distinct_recipients", "distinct_message_ids"}
to the report file.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID: (.+?)\r?$", re.MULTILINE | re.IGNORECASE)


class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.recipients: list[str] = []
        self.message_ids: set[bytes] = set()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages += 1
        self.recipients.extend(envelope.rcpt_tos)
        found = _MESSAGE_ID.search(envelope.original_content[:4096])
        if found:
            self.message_ids.add(found.group(1))
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--report", required=True)
    arguments = parser.parse_args()
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=arguments.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    with open(arguments.report, "w") as report:
        json.dump(
            {
                "messages": counter.messages,
                "recipients": len(counter.recipients),
                "distinct_recipients": len(set(counter.recipients)),
                "distinct_message_ids": len(counter.message_ids),
            },
            report,
        )


if __name__ == "__main__":
    main()
