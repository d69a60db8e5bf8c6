"""Errors of the diff stage: they name the app, the object and the rule, never a Secret value."""

from __future__ import annotations

from tether.errors import Reason, TetherError


class DiffError(TetherError):
    """The diff could not be computed (bad ignore rule, unreachable cluster, rejected request).

    Its own reason is ``InvalidSpec`` (a rule the app gave); one wrapping another error keeps that one's.
    """

    reason = Reason.INVALID_SPEC


class JqError(DiffError):
    """A ``jqPathExpressions`` entry could not be used.

    ``fatal`` is False only for a runtime error on one particular object (``Cannot iterate
    over null``), which Argo CD treats as "ignores nothing here"; a compile error, an
    oversized input or a dead worker is fatal.
    """

    def __init__(self, message: str, *, fatal: bool = True) -> None:
        super().__init__(message)
        self.fatal = fatal


class JqTimeout(JqError):
    """A ``jqPathExpressions`` entry ran past its deadline (or its memory cap) and was stopped."""

    reason = Reason.TIMEOUT
