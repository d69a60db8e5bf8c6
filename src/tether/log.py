"""Logging set-up: structlog to stderr, with every registered secret masked before output.

One place configures logging for the command line and the server, so no entry point can
forget the redactor: ``redact_processor`` runs after exceptions are rendered to text and
before the renderer, so tracebacks are masked too.
"""

from __future__ import annotations

import logging
import sys

import structlog

from tether.secrets import redact_processor

_current: tuple[int, bool] = (logging.WARNING, False)


def configure(level: int = logging.WARNING, *, json_output: bool = False) -> None:
    """Send logs at ``level`` and above to stderr (stdout stays for command output)."""
    global _current
    _current = (level, json_output)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),  # the stderr of the moment
        cache_logger_on_first_use=False,
    )


def current() -> tuple[int, bool]:
    """The ``(level, json_output)`` last configured: a child process configures itself the same way."""
    return _current
