"""The one exception family Tether shows to users.

Every stage raises a ``TetherError`` (or a subclass) for anything a user can fix: bad
input, a missing secret, an unreachable server. The message must already name the app,
file and field involved, and must never carry a secret value; callers print ``str(err)``.
"""

from __future__ import annotations


class TetherError(Exception):
    """A failure with a message fit to show a user."""


class ProcessError(TetherError):
    """An external program failed, timed out or wrote more than allowed."""
