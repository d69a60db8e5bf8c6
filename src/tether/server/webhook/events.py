"""What a webhook delivery says, as plain frozen data, and the one error its parsing and checking raise.

``providers.parse`` turns a delivery into a list of these events; ``providers.verify`` and
``providers.parse`` raise ``WebhookError`` and nothing else. The receiver answers a ``Push``
with 202 and queues it, a ``Ping`` with 200, an ``Ignored`` or a ``PullRequest`` with 202
and does nothing more, and a ``WebhookError`` with its status and message.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("github", "gitlab", "gitea", "gogs", "bitbucket", "bitbucketserver", "azuredevops", "generic")


@dataclass(frozen=True)
class Push:
    """One ref that moved. A payload that moves several refs (Bitbucket, Azure DevOps) gives one ``Push`` each."""

    provider: str
    repo_urls: tuple[str, ...]  # every URL the payload gives for the repository: web, https clone, ssh clone
    ref: str  # full ref: "refs/heads/main", "refs/tags/v1.2.0"
    before: str | None  # None when absent or all zeros (a new ref)
    after: str | None  # None when absent or all zeros (a deleted ref)
    changed_files: tuple[str, ...] | None  # repo-relative paths; None when the payload has no complete list
    default_branch: str | None = None  # short name ("main") when the payload says
    forced: bool = False


@dataclass(frozen=True)
class PullRequest:
    """A GitHub pull request, GitLab merge request, Gitea or Gogs pull request event; kept for previews."""

    provider: str
    repo_urls: tuple[str, ...]
    action: str  # as the provider says: opened, synchronize, reopened, closed, update, ...
    number: int
    head_ref: str  # branch names as the provider gives them (short: "feature-x")
    head_sha: str | None
    base_ref: str
    title: str = ""


@dataclass(frozen=True)
class Ping:
    """A provider's ping or test event."""

    provider: str


@dataclass(frozen=True)
class Ignored:
    """A known event that is not a push (create, delete, issues, ...)."""

    provider: str
    event: str


Event = Push | PullRequest | Ping | Ignored


class WebhookError(Exception):
    """A delivery refused: ``status`` is 400 (malformed, unknown) or 401 (unauthenticated).

    ``message`` is short and safe to return and log: it never holds body content or a secret.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"WebhookError({self.status}, {self.message!r})"
