"""The HTTP side of `tether serve`: health, readiness, metrics and the webhook receiver; the API and UI later.

``tether.server.app.create_app`` builds the FastAPI app. This package imports nothing itself, so the
controller can use the webhook event types (``tether.server.webhook.events``) without a cycle.
"""
