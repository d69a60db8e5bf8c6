"""The one exception family Tether shows to users, with what a controller needs to act on it.

Every stage raises a ``TetherError`` (or a subclass) for anything a user can fix: bad
input, a missing secret, an unreachable server. The message must already name the file
and field involved, and must never carry a secret value; callers print ``str(err)``.

Each error also carries a stable ``reason`` (``RenderFailed``, ``SecretMissing``,
``InvalidSpec``, ``Forbidden``, ``ClusterUnreachable``, ``Conflict``, ``Timeout``…) and
whether a ``retryable`` attempt can help, so the controller sets its conditions and
retries from data, never from the text. A subclass sets both as class attributes; a raise
site may override them. The app an error belongs to is added in one place, ``for_app``,
which prefixes ``app 'name': `` once, however many layers call it.
"""

from __future__ import annotations

from typing import Self


class Reason:
    """The stable reasons a ``TetherError`` can carry (strings, so they serialise as they are)."""

    ERROR = "Error"
    RENDER_FAILED = "RenderFailed"
    SOURCE_FAILED = "SourceFailed"
    SECRET_MISSING = "SecretMissing"
    INVALID_SPEC = "InvalidSpec"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "NotFound"
    CONFLICT = "Conflict"
    INVALID = "Invalid"
    CLUSTER_UNREACHABLE = "ClusterUnreachable"
    CLUSTER_ERROR = "ClusterError"
    TIMEOUT = "Timeout"
    TOOL_FAILED = "ToolFailed"
    UNVERIFIED_SIGNATURE = "UnverifiedSignature"


class TetherError(Exception):
    """A failure with a message fit to show a user, a stable reason and whether a retry can help."""

    reason: str = Reason.ERROR
    retryable: bool = False

    def __init__(self, message: str = "", *, reason: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.detail = message
        self.app: str | None = None
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable

    def for_app(self, app: str | None) -> Self:
        """This error, its message prefixed with ``app '<app>': `` unless it already names an app."""
        if app and self.app is None:
            self.app = app
            self.args = (f"app {app!r}: {self.detail}", *self.args[1:])
        return self

    @classmethod
    def wrapping(cls, cause: TetherError, context: str = "") -> Self:
        """A ``cls`` error for ``cause`` seen from ``context`` (e.g. the object): same app, reason, retryability
        and whatever else ``cause`` carries."""
        error = cls(f"{context}: {cause.detail}" if context else cause.detail)
        error.reason, error.retryable = cause.reason, cause.retryable
        for key, value in vars(cause).items():  # what a subclass adds (GitError.repository) stays too
            vars(error).setdefault(key, value)
        return error.for_app(cause.app)

    def to_dict(self) -> dict[str, object]:
        """What a status condition or an API answer shows: the reason, retryability and message."""
        return {"reason": self.reason, "retryable": self.retryable, "message": str(self)}


class ProcessError(TetherError):
    """An external program failed, timed out or wrote more than allowed."""

    reason = Reason.TOOL_FAILED
