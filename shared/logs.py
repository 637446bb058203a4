"""Structured logging (structlog) for every process: JSON in production, readable in development.

Context such as ``request_id`` and ``task_id`` is bound in contextvars, so every line logged
while a request or a task is handled carries it, including lines from the standard library.
"""

from __future__ import annotations

import logging
import sys

import structlog

from shared.settings import CommonSettings


def configure_logging(settings: CommonSettings, process: str) -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process(process),
    ]
    renderer: structlog.types.Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Methods below the level are no-ops: a debug line on a hot path costs nothing.
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(settings.log_level.upper())
        ),
        # Cached loggers skip re-reading this configuration on each line, but keep the one
        # they first saw: only production configures a process once. Elsewhere a process may
        # configure again (the test suite does, in any order), and a logger cached before
        # would keep writing through the old processors, unseen by structlog's capture_logs.
        cache_logger_on_first_use=settings.environment == "production",
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Quieter neighbours: our own middleware logs each request, alembic's plugin set-up and
    # aiosmtpd's per-connection chatter say nothing a reader needs.
    for name in ("werkzeug", "alembic.runtime.plugins", "mail.log"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _add_process(process: str) -> structlog.types.Processor:
    def add(_logger: object, _method: str, event_dict: dict) -> dict:
        event_dict.setdefault("process", process)
        return event_dict

    return add


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
