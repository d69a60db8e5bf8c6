"""The one error a render raises, with its message already safe to show.

Every render failure names the app, the tool, the file or field involved and the tool's
own explanation; the text passes through the secret redactor and URL-credential
redaction once, here, so no caller can forget to.
"""

from __future__ import annotations

from tether.errors import Reason, TetherError


class RenderError(TetherError):
    """Manifests could not be produced for an app; the message is redacted."""

    reason = Reason.RENDER_FAILED


def redact(text: str) -> str:
    """Mask every secret value the process has seen and every credential inside a URL."""
    from tether.secrets import REDACTOR
    from tether.source import redact_url

    return REDACTOR.redact(redact_url(text))


def render_error(app: str, what: str, detail: str) -> RenderError:
    """``app 'x': <what>: <detail>`` with secrets and credentials masked."""
    return RenderError(redact(f"{what}: {detail}")).for_app(app)
