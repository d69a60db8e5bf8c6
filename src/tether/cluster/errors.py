"""Errors from the API server, with the server's own message and the object they concern."""

from __future__ import annotations

from typing import Any

from tether.errors import Reason, TetherError

# The server's reason when its Status names none, and whether trying again can help.
_BY_STATUS = {
    0: (Reason.CLUSTER_UNREACHABLE, True),
    400: (Reason.INVALID, False),
    401: (Reason.FORBIDDEN, False),
    403: (Reason.FORBIDDEN, False),
    404: (Reason.NOT_FOUND, False),
    409: (Reason.CONFLICT, True),
    422: (Reason.INVALID, False),
    429: ("TooManyRequests", True),
}


class ClusterError(TetherError):
    """An API call failed. ``status`` is the HTTP status (0 when the server was not reached).

    ``reason`` is the server's own (``Forbidden``, ``Conflict``, ``Invalid``…), else one
    derived from the status; 5xx answers, 409, 429 and silence are ``retryable``. ``answer`` is
    the server's part of the message alone (its message, status and reason; "" when it sent
    none), for a caller that names the object itself.
    """

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        derived, retryable = _BY_STATUS.get(status, (Reason.CLUSTER_ERROR, status >= 500))
        super().__init__(message, reason=reason or derived, retryable=retryable)
        self.status = status
        self.answer = ""

    @classmethod
    def from_status(cls, what: str, status: int, payload: dict[str, Any]) -> ClusterError:
        reason = str(payload.get("reason") or "")
        message = str(payload.get("message") or payload or "no message")
        answer = f"{message} (HTTP {status}{', ' + reason if reason else ''})"
        error = cls(f"{what}: {answer}", status, reason)
        error.answer = answer
        return error

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class ClusterUnreachable(ClusterError):
    """The API server has not answered for the whole retry budget: the cluster is gone for now.

    Raised after a short bounded retry (see ``Cluster.ensure_reachable``), so a caller can end
    its work at once, with what it has, instead of waiting out its own timeouts.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, 0, "ClusterUnreachable")


class UnknownKind(ClusterError):
    """The server does not serve this apiVersion/kind (yet): e.g. its CRD is not installed."""

    def __init__(self, message: str, status: int = 404, reason: str = "UnknownKind") -> None:
        super().__init__(message, status, reason)
        self.retryable = True  # the CRD may arrive


class WatchExpired(ClusterError):
    """The resourceVersion a watch started from is gone (HTTP 410): list again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 410, "Expired")


def without_request(exc: BaseException) -> str:
    """What went wrong, for a caller that names the object itself: a ``ClusterError``'s answer from the
    server when it has one (its message names the request, ``apply Kind ns/name: …``), else the error's
    message (a ``TetherError``'s without its app prefix)."""
    if isinstance(exc, ClusterError) and exc.answer:
        return exc.answer
    return exc.detail if isinstance(exc, TetherError) else str(exc)


def not_found_status(payload: dict[str, Any]) -> bool:
    """True for a NotFound Status body (or an empty one, as some servers send)."""
    return not payload or payload.get("reason") in ("NotFound", None)
