"""Webhooks from git providers: detection, verification and parsing of deliveries, and their secrets."""

from tether.server.webhook.events import PROVIDERS, Event, Ignored, Ping, PullRequest, Push, WebhookError
from tether.server.webhook.providers import detect, parse, verify
from tether.server.webhook.secrets import WebhookSecrets

__all__ = [
    "PROVIDERS",
    "Event",
    "Ignored",
    "Ping",
    "PullRequest",
    "Push",
    "WebhookError",
    "WebhookSecrets",
    "detect",
    "parse",
    "verify",
]
