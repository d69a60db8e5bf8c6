"""The HTTP side of `tether serve`: health, readiness and metrics now; the API, UI and webhooks later."""

from tether.server.app import create_app

__all__ = ["create_app"]
