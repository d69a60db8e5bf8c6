"""Webhook deliveries of every git provider: who sent one, whether it is authentic, and what it says.

Pure functions over headers and bytes, no I/O:

- ``detect(headers)`` names the provider from its headers, or None.
- ``verify(provider, headers, body, secrets, allow_unauthenticated=...)`` checks the signature or
  token against the ``tether-webhook`` Secret, in constant time; it raises ``WebhookError(401)``.
- ``parse(provider, headers, body)`` returns the events of a delivery. It is total: for any bytes
  and headers it returns a list of events or raises ``WebhookError(400)`` with a short message
  that quotes nothing from the body. Every field it reads is type-checked; a commit id must be
  hex and a ref a well-formed git ref, so nothing it returns can reach git as an option.

Providers, in the order ``detect`` tries them:

============== ============================================= ==============================================
provider        detected by                                   checked with
============== ============================================= ==============================================
azuredevops     ``X-Vss-ActivityId``                          HTTP basic auth (``Authorization: Basic``)
gitea           ``X-Gitea-Event``                             HMAC-SHA256 hex in ``X-Gitea-Signature``
gogs            ``X-Gogs-Event``                              HMAC-SHA256 hex in ``X-Gogs-Signature``
github          ``X-GitHub-Event``                            ``sha256=<hex>`` in ``X-Hub-Signature-256``
gitlab          ``X-Gitlab-Event``                            ``X-Gitlab-Token`` equals the secret
bitbucket       ``X-Hook-UUID``, or a Cloud ``X-Event-Key``   ``X-Hook-UUID`` equals the hook's UUID
bitbucketserver ``X-Event-Key`` (``repo:refs_changed``, ...)  ``sha256=<hex>`` in ``X-Hub-Signature``
generic         ``X-Tether-Event``                            HMAC-SHA256 hex of the body in ``X-Signature``
============== ============================================= ==============================================

Gitea is tried before Gogs, and both before GitHub: Gitea also sends Gogs' and GitHub's event
headers, and Gogs sends GitHub's.

Bodies are ``application/json``; GitHub, Gitea and Gogs may also send
``application/x-www-form-urlencoded`` with the JSON in a ``payload`` field.

The generic format, for any other git server or a script (``X-Tether-Event: push`` or ``ping``)::

    {
      "repository": {
        "url": "https://git.example.com/org/repo.git",          # required
        "urls": ["git@git.example.com:org/repo.git"]            # optional: more URLs of the same repository
      },
      "ref": "refs/heads/main",                                 # required; a short name means a branch
      "before": "<commit id>",                                  # optional; omitted or all zeros: a new ref
      "after": "<commit id>",                                   # optional; omitted or all zeros: a deleted ref
      "changed_files": ["apps/web/deployment.yaml"],            # optional; omitted: Tether diffs the commits
      "default_branch": "main",                                 # optional
      "forced": false                                           # optional
    }

signed with ``X-Signature: sha256=<hex HMAC-SHA256 of the body with the generic secret>`` (the
``sha256=`` prefix is optional), for example
``printf %s "$body" | openssl dgst -sha256 -hmac "$secret" -hex``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from tether.server.webhook.events import (
    PROVIDERS,
    Event,
    Ignored,
    Ping,
    PullRequest,
    Push,
    WebhookError,
)
from tether.server.webhook.secrets import WebhookSecrets

__all__ = ["detect", "parse", "verify"]

Json = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Known events. A name listed here but not handled is Ignored (202); a name not listed is a 400.

_GITHUB_IGNORED = frozenset(
    {
        "branch_protection_configuration",
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "code_scanning_alert",
        "commit_comment",
        "create",
        "custom_property",
        "custom_property_values",
        "delete",
        "dependabot_alert",
        "deploy_key",
        "deployment",
        "deployment_protection_rule",
        "deployment_review",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "github_app_authorization",
        "gollum",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "issues",
        "label",
        "marketplace_purchase",
        "member",
        "membership",
        "merge_group",
        "meta",
        "milestone",
        "org_block",
        "organization",
        "package",
        "page_build",
        "personal_access_token_request",
        "project",
        "project_card",
        "project_column",
        "projects_v2",
        "projects_v2_item",
        "public",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "registry_package",
        "release",
        "repository",
        "repository_advisory",
        "repository_dispatch",
        "repository_import",
        "repository_ruleset",
        "repository_vulnerability_alert",
        "secret_scanning_alert",
        "secret_scanning_alert_location",
        "security_advisory",
        "security_and_analysis",
        "sponsorship",
        "star",
        "status",
        "sub_issues",
        "team",
        "team_add",
        "watch",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    }
)
_GITEA_IGNORED = frozenset(
    {
        "create",
        "delete",
        "fork",
        "issues",
        "issue_assign",
        "issue_label",
        "issue_milestone",
        "issue_comment",
        "package",
        "pull_request_approved",
        "pull_request_comment",
        "pull_request_rejected",
        "pull_request_review_request",
        "release",
        "repository",
        "schedule",
        "status",
        "wiki",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    }
)
_GOGS_IGNORED = frozenset({"create", "delete", "fork", "issues", "issue_comment", "release"})
_GITLAB_IGNORED = frozenset(
    {
        "confidential issue hook",
        "confidential note hook",
        "deployment hook",
        "emoji hook",
        "feature flag hook",
        "group hook",
        "issue hook",
        "job hook",
        "member hook",
        "milestone hook",
        "note hook",
        "pipeline hook",
        "project hook",
        "release hook",
        "resource access token hook",
        "subgroup hook",
        "vulnerability hook",
        "wiki page hook",
    }
)
_BITBUCKET_CLOUD_EVENTS = frozenset(
    {
        "repo:push",
        "repo:fork",
        "repo:updated",
        "repo:transfer",
        "repo:imported",
        "repo:deleted",
        "repo:commit_comment_created",
        "repo:commit_status_created",
        "repo:commit_status_updated",
        "project:updated",
    }
)
_BITBUCKET_CLOUD_PREFIXES = ("pullrequest:", "issue:")
_BITBUCKET_SERVER_EVENTS = frozenset(
    {
        "repo:refs_changed",
        "repo:modified",
        "repo:forked",
        "repo:secret_detected",
        "mirror:repo_synchronized",
        "diagnostics:ping",
    }
)
_BITBUCKET_SERVER_PREFIXES = ("pr:", "repo:comment:")
_AZURE_IGNORED_PREFIXES = ("git.", "build.", "tfvc.", "workitem.", "ms.vss-", "message.")
# Event names matched by prefix are echoed in Ignored.event only when they look like event names.
_EVENT_NAME = re.compile(r"[a-z0-9][a-z0-9:._\-]{0,99}")

# ---------------------------------------------------------------------------------------------
# detect


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased; the first value of a repeated header wins (as Starlette's ``Headers[...]``)."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(name, str) and isinstance(value, str):
            lowered.setdefault(name.lower(), value)
    return lowered


def _bitbucket_kind(event_key: str) -> str:
    """``bitbucket`` for a Bitbucket Cloud event key, else ``bitbucketserver`` (which always sends ``X-Event-Key``)."""
    key = event_key.strip().lower()
    if key in _BITBUCKET_CLOUD_EVENTS or key.startswith(_BITBUCKET_CLOUD_PREFIXES):
        return "bitbucket"
    return "bitbucketserver"


def detect(headers: Mapping[str, str]) -> str | None:
    """The provider that sent a delivery, from its headers (names case-insensitive); None when unknown."""
    h = _lower_headers(headers)
    if h.get("x-vss-activityid"):
        return "azuredevops"
    if h.get("x-gitea-event"):
        return "gitea"
    if h.get("x-gogs-event"):
        return "gogs"
    if h.get("x-github-event"):
        return "github"
    if h.get("x-gitlab-event"):
        return "gitlab"
    if h.get("x-hook-uuid"):
        return "bitbucket"
    if h.get("x-event-key"):
        return _bitbucket_kind(h["x-event-key"])
    if h.get("x-tether-event"):
        return "generic"
    return None


# ---------------------------------------------------------------------------------------------
# verify


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _secret_bytes(secret: str) -> bytes:
    # secrets.py decodes with surrogateescape, so this gives back the Secret's exact bytes.
    try:
        return secret.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return secret.encode("utf-8", "replace")


def _hmac_hex(secret: str, body: bytes) -> bytes:
    return hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest().encode()


def _equal(given: str, expected: bytes) -> bool:
    return hmac.compare_digest(_bytes(given), expected)


# A check answers None when its header is missing, else whether the header is right.
_Check = Callable[[dict[str, str], bytes, str], "bool | None"]


def _check_hmac(header: str, prefix: str, *, optional_prefix: bool = False) -> _Check:
    def check(h: dict[str, str], body: bytes, secret: str) -> bool | None:
        given = h.get(header)
        if given is None:
            return None
        given = given.strip().lower()
        if prefix:
            if given.startswith(prefix):
                given = given[len(prefix) :]
            elif not optional_prefix:
                return False
        return _equal(given, _hmac_hex(secret, body))

    return check


def _check_gitlab(h: dict[str, str], body: bytes, secret: str) -> bool | None:
    given = h.get("x-gitlab-token")
    return None if given is None else _equal(given, _secret_bytes(secret))


def _bitbucket_uuid(value: str) -> str:
    return value.strip().strip("{}").strip().lower()


def _check_bitbucket(h: dict[str, str], body: bytes, secret: str) -> bool | None:
    given = h.get("x-hook-uuid")
    if given is None:
        return None
    return _equal(_bitbucket_uuid(given), _bytes(_bitbucket_uuid(secret)))


def _check_basic(h: dict[str, str], expected: bytes) -> bool | None:
    given = h.get("authorization")
    if given is None:
        return None
    scheme, _, encoded = given.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        credentials = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(credentials, expected)


_CHECKS: dict[str, tuple[str, _Check]] = {
    "github": ("X-Hub-Signature-256", _check_hmac("x-hub-signature-256", "sha256=")),
    "gitea": ("X-Gitea-Signature", _check_hmac("x-gitea-signature", "")),
    "gogs": ("X-Gogs-Signature", _check_hmac("x-gogs-signature", "")),
    "bitbucketserver": ("X-Hub-Signature", _check_hmac("x-hub-signature", "sha256=")),
    "generic": ("X-Signature", _check_hmac("x-signature", "sha256=", optional_prefix=True)),
    "gitlab": ("X-Gitlab-Token", _check_gitlab),
    "bitbucket": ("X-Hook-UUID", _check_bitbucket),
}


def verify(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: WebhookSecrets,
    *,
    allow_unauthenticated: bool,
) -> None:
    """Return when the delivery is authentic (or may go unauthenticated); raise ``WebhookError(401)`` otherwise.

    With no secret configured for ``provider`` the delivery is refused unless ``allow_unauthenticated``:
    an unchecked endpoint lets anyone make Tether fetch and parse at will.
    """
    if provider not in PROVIDERS:
        raise WebhookError(400, "unknown webhook provider")
    if not secrets.configured(provider):
        if allow_unauthenticated:
            return
        raise WebhookError(
            401,
            f"no webhook secret is configured for {provider}; unauthenticated webhooks are off (see docs/webhooks.md)",
        )
    h = _lower_headers(headers)
    if provider == "azuredevops":
        header = "Authorization"
        expected = _secret_bytes(secrets.azuredevops_username) + b":" + _secret_bytes(secrets.azuredevops_password)
        outcome = _check_basic(h, expected)
    else:
        header, check = _CHECKS[provider]
        outcome = check(h, bytes(body), getattr(secrets, provider))
    if outcome is None:
        raise WebhookError(401, f"{provider} webhook without {header}")
    if not outcome:
        raise WebhookError(401, f"{provider} webhook with a wrong {header}")


# ---------------------------------------------------------------------------------------------
# parse: typed reads of the decoded JSON


def _bad(message: str) -> WebhookError:
    return WebhookError(400, message)


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{path}: expected a string")
    if "\x00" in value or (not value.isascii() and _has_surrogate(value)):
        raise _bad(f"{path}: invalid text")
    return value


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _req_str(obj: Json, key: str, path: str) -> str:
    value = _text(obj.get(key), path)
    if not value:
        raise _bad(f"{path}: empty")
    return value


def _opt_str(obj: Json, key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return _text(value, path)


def _req_obj(obj: Json, key: str, path: str) -> Json:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _bad(f"{path}: expected an object")
    return value


def _opt_obj(obj: Json, key: str, path: str) -> Json | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{path}: expected an object")
    return value


def _opt_list(obj: Json, key: str, path: str) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(f"{path}: expected an array")
    return value


def _req_list(obj: Json, key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise _bad(f"{path}: expected an array")
    if not value:
        raise _bad(f"{path}: empty")
    return value


def _item_obj(value: Any, path: str) -> Json:
    if not isinstance(value, dict):
        raise _bad(f"{path}: expected an object")
    return value


def _opt_bool(obj: Json, key: str, path: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"{path}: expected a boolean")
    return value


def _int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"{path}: expected an integer")
    return value


_SHA = re.compile(r"[0-9a-fA-F]{4,64}")


def _sha(value: str | None, path: str) -> str | None:
    """A commit id, lower-cased; None when absent, empty or all zeros (a ref created or deleted)."""
    if not value:
        return None
    if not _SHA.fullmatch(value):
        raise _bad(f"{path}: not a commit id")
    if value.strip("0") == "":
        return None
    return value.lower()


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


def _ref_name(value: str, path: str) -> str:
    """``value`` when it is a well-formed git ref or branch name (``git check-ref-format``'s main rules)."""
    if (
        not value
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", "."))
        or value == "@"
        or _REF_FORBIDDEN.search(value)
    ):
        raise _bad(f"{path}: not a valid ref")
    return value


def _full_ref(value: str, path: str, kind: str = "heads") -> str:
    ref = _ref_name(value, path)
    return ref if ref.startswith("refs/") else f"refs/{kind}/{ref}"


def _branch_name(value: str | None, path: str) -> str | None:
    """A default branch as a short name (``refs/heads/`` dropped)."""
    if value is None or value == "":
        return None
    return _ref_name(value, path).removeprefix("refs/heads/") or None


def _url(value: str | None, path: str) -> str | None:
    if value is None or value == "":
        return None
    if value.startswith("-") or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise _bad(f"{path}: not a URL")
    return value


def _urls(candidates: list[str | None]) -> tuple[str, ...]:
    urls = tuple(dict.fromkeys(url for url in candidates if url))
    if not urls:
        raise _bad("the payload names no repository URL")
    return urls


def _str_list(values: list[Any], path: str) -> list[str]:
    out = []
    for i, value in enumerate(values):
        item = _text(value, f"{path}[{i}]")
        if not item:
            raise _bad(f"{path}[{i}]: empty")
        out.append(item)
    return out


def _commit_files(commits: list[Any] | None, path: str) -> tuple[tuple[str, ...], bool]:
    """Union of the commits' added/modified/removed paths, and whether every commit listed all three."""
    if commits is None:
        return (), False
    files: dict[str, None] = {}
    every = True
    for i, commit in enumerate(commits):
        entry = _item_obj(commit, f"{path}[{i}]")
        for key in ("added", "modified", "removed"):
            listed = _opt_list(entry, key, f"{path}[{i}].{key}")
            if listed is None:
                every = False
            else:
                files.update(dict.fromkeys(_str_list(listed, f"{path}[{i}].{key}")))
    return tuple(files), every


# ---------------------------------------------------------------------------------------------
# parse: the body


_FORM_PROVIDERS = frozenset({"github", "gitea", "gogs"})
_MAX_FORM_FIELDS = 16


def _load(provider: str, h: dict[str, str], body: bytes) -> Json:
    media = h.get("content-type", "").split(";", 1)[0].strip().lower()
    raw: bytes | str
    if media == "application/json":
        raw = bytes(body)
    elif media == "application/x-www-form-urlencoded" and provider in _FORM_PROVIDERS:
        try:
            fields = parse_qs(
                bytes(body).decode("ascii"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=_MAX_FORM_FIELDS,
            )
        except ValueError:  # not ASCII, bad percent-escapes, too many fields
            raise _bad("malformed form body") from None
        payload = fields.get("payload")
        if payload is None or len(payload) != 1:
            raise _bad("form body without exactly one payload field")
        raw = payload[0]
    else:
        allowed = (
            "application/json or application/x-www-form-urlencoded"
            if provider in _FORM_PROVIDERS
            else "application/json"
        )
        raise _bad(f"unsupported content type; send {allowed}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _bad("malformed JSON") from None
    if not isinstance(data, dict):
        raise _bad("the payload is not a JSON object")
    return data


def _event_header(h: dict[str, str], name: str) -> str:
    value = h.get(name.lower(), "").strip()
    if not value:
        raise _bad(f"missing {name}")
    return value.lower()


def _unknown_event(provider: str) -> WebhookError:
    return _bad(f"unknown {provider} event")


def parse(provider: str, headers: Mapping[str, str], body: bytes) -> list[Event]:
    """The events of one delivery; ``WebhookError(400)`` when it is malformed, of a wrong type or unknown."""
    try:
        handler = _PARSERS[provider]
    except (KeyError, TypeError):
        raise _bad("unknown webhook provider") from None
    h = _lower_headers(headers)
    return handler(h, _load(provider, h, body))


# ---------------------------------------------------------------------------------------------
# GitHub, Gitea, Gogs (one payload family)


def _hub_repo_urls(repo: Json) -> list[str | None]:
    return [
        _url(_opt_str(repo, key, f"repository.{key}"), f"repository.{key}")
        for key in ("html_url", "clone_url", "ssh_url", "git_url")
    ]


def _hub_push(provider: str, data: Json, complete: Callable[[Json, list[Any], str | None, bool], bool]) -> Push:
    repo = _req_obj(data, "repository", "repository")
    before = _sha(_opt_str(data, "before", "before"), "before")
    forced = _opt_bool(data, "forced", "forced")
    commits = _opt_list(data, "commits", "commits")
    files, every = _commit_files(commits, "commits")
    listed = commits is not None and every and complete(data, commits, before, forced)
    return Push(
        provider=provider,
        repo_urls=_urls(_hub_repo_urls(repo)),
        ref=_full_ref(_req_str(data, "ref", "ref"), "ref"),
        before=before,
        after=_sha(_opt_str(data, "after", "after"), "after"),
        changed_files=files if listed else None,
        default_branch=_branch_name(
            _opt_str(repo, "default_branch", "repository.default_branch"), "repository.default_branch"
        ),
        forced=forced,
    )


def _github_complete(data: Json, commits: list[Any], before: str | None, forced: bool) -> bool:
    return len(commits) < 20 and not forced and before is not None


def _gitea_complete(data: Json, commits: list[Any], before: str | None, forced: bool) -> bool:
    total = data.get("total_commits")
    if total is not None and _int(total, "total_commits") != len(commits):
        return False
    return before is not None and not forced


def _gogs_complete(data: Json, commits: list[Any], before: str | None, forced: bool) -> bool:
    return before is not None and not forced


def _hub_pull_request(provider: str, data: Json) -> PullRequest:
    pr = _req_obj(data, "pull_request", "pull_request")
    number = data.get("number")
    head = _req_obj(pr, "head", "pull_request.head")
    base = _req_obj(pr, "base", "pull_request.base")
    return PullRequest(
        provider=provider,
        repo_urls=_urls(_hub_repo_urls(_req_obj(data, "repository", "repository"))),
        action=_req_str(data, "action", "action"),
        number=_int(number if number is not None else pr.get("number"), "number"),
        head_ref=_ref_name(_req_str(head, "ref", "pull_request.head.ref"), "pull_request.head.ref"),
        head_sha=_sha(_opt_str(head, "sha", "pull_request.head.sha"), "pull_request.head.sha"),
        base_ref=_ref_name(_req_str(base, "ref", "pull_request.base.ref"), "pull_request.base.ref"),
        title=_opt_str(pr, "title", "pull_request.title") or "",
    )


def _gogs_pull_request(data: Json) -> PullRequest:
    pr = _req_obj(data, "pull_request", "pull_request")
    number = data.get("number")
    return PullRequest(
        provider="gogs",
        repo_urls=_urls(_hub_repo_urls(_req_obj(data, "repository", "repository"))),
        action=_req_str(data, "action", "action"),
        number=_int(number if number is not None else pr.get("number"), "number"),
        head_ref=_ref_name(_req_str(pr, "head_branch", "pull_request.head_branch"), "pull_request.head_branch"),
        head_sha=None,
        base_ref=_ref_name(_req_str(pr, "base_branch", "pull_request.base_branch"), "pull_request.base_branch"),
        title=_opt_str(pr, "title", "pull_request.title") or "",
    )


def _parse_github(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-GitHub-Event")
    if event == "push":
        return [_hub_push("github", data, _github_complete)]
    if event == "ping":
        return [Ping("github")]
    if event == "pull_request":
        return [_hub_pull_request("github", data)]
    if event in _GITHUB_IGNORED:
        return [Ignored("github", event)]
    raise _unknown_event("github")


def _parse_gitea(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Gitea-Event")
    if event == "push":
        return [_hub_push("gitea", data, _gitea_complete)]
    if event == "ping":
        return [Ping("gitea")]
    if event == "pull_request":
        return [_hub_pull_request("gitea", data)]
    if event in _GITEA_IGNORED:
        return [Ignored("gitea", event)]
    raise _unknown_event("gitea")


def _parse_gogs(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Gogs-Event")
    if event == "push":
        return [_hub_push("gogs", data, _gogs_complete)]
    if event == "ping":
        return [Ping("gogs")]
    if event == "pull_request":
        return [_gogs_pull_request(data)]
    if event in _GOGS_IGNORED:
        return [Ignored("gogs", event)]
    raise _unknown_event("gogs")


# ---------------------------------------------------------------------------------------------
# GitLab


def _gitlab_urls(data: Json) -> tuple[str, ...]:
    project = _opt_obj(data, "project", "project")
    repository = _opt_obj(data, "repository", "repository")
    if project is None and repository is None:
        raise _bad("project: expected an object")
    candidates: list[str | None] = []
    for name, obj, keys in (
        ("project", project, ("web_url", "git_http_url", "git_ssh_url", "http_url", "ssh_url", "url")),
        ("repository", repository, ("homepage", "git_http_url", "git_ssh_url", "url")),
    ):
        if obj is not None:
            candidates += [_url(_opt_str(obj, key, f"{name}.{key}"), f"{name}.{key}") for key in keys]
    return _urls(candidates)


def _gitlab_push(data: Json) -> Push:
    before = _sha(_opt_str(data, "before", "before"), "before")
    commits = _opt_list(data, "commits", "commits")
    files, every = _commit_files(commits, "commits")
    total = data.get("total_commits_count")
    listed = (
        commits is not None
        and every
        and total is not None
        and _int(total, "total_commits_count") == len(commits)
        and before is not None
    )
    project = _opt_obj(data, "project", "project")
    default = _opt_str(project, "default_branch", "project.default_branch") if project else None
    return Push(
        provider="gitlab",
        repo_urls=_gitlab_urls(data),
        ref=_full_ref(_req_str(data, "ref", "ref"), "ref"),
        before=before,
        after=_sha(_opt_str(data, "after", "after"), "after"),
        changed_files=files if listed else None,
        default_branch=_branch_name(default, "project.default_branch"),
    )


def _gitlab_merge_request(data: Json) -> PullRequest:
    attrs = _req_obj(data, "object_attributes", "object_attributes")
    last = _opt_obj(attrs, "last_commit", "object_attributes.last_commit")
    head_sha = _opt_str(last, "id", "object_attributes.last_commit.id") if last else None
    return PullRequest(
        provider="gitlab",
        repo_urls=_gitlab_urls(data),
        action=_opt_str(attrs, "action", "object_attributes.action") or "",
        number=_int(attrs.get("iid"), "object_attributes.iid"),
        head_ref=_ref_name(
            _req_str(attrs, "source_branch", "object_attributes.source_branch"), "object_attributes.source_branch"
        ),
        head_sha=_sha(head_sha, "object_attributes.last_commit.id"),
        base_ref=_ref_name(
            _req_str(attrs, "target_branch", "object_attributes.target_branch"), "object_attributes.target_branch"
        ),
        title=_opt_str(attrs, "title", "object_attributes.title") or "",
    )


def _parse_gitlab(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Gitlab-Event")
    if event in ("push hook", "tag push hook"):
        return [_gitlab_push(data)]
    if event == "merge request hook":
        return [_gitlab_merge_request(data)]
    if event == "system hook":
        name = _opt_str(data, "event_name", "event_name")
        kind = _opt_str(data, "object_kind", "object_kind")
        if name is None and kind is None:
            raise _bad("event_name: expected a string")
        if name in ("push", "tag_push"):
            return [_gitlab_push(data)]
        return [Ignored("gitlab", "System Hook")]
    if event in _GITLAB_IGNORED:
        return [Ignored("gitlab", h["x-gitlab-event"].strip())]
    raise _unknown_event("gitlab")


# ---------------------------------------------------------------------------------------------
# Bitbucket Cloud

_BITBUCKET_REF_KINDS = {"branch": "heads", "named_branch": "heads", "tag": "tags", "annotated_tag": "tags"}


def _bitbucket_side(change: Json, key: str, path: str) -> tuple[str | None, str | None]:
    """``(full ref, commit id)`` of a change's ``new`` or ``old`` side; ``(None, None)`` when it is null."""
    side = _opt_obj(change, key, f"{path}.{key}")
    if side is None:
        return None, None
    kind = _BITBUCKET_REF_KINDS.get(_req_str(side, "type", f"{path}.{key}.type"))
    if kind is None:
        raise _bad(f"{path}.{key}.type: not a branch or tag")
    ref = _full_ref(_req_str(side, "name", f"{path}.{key}.name"), f"{path}.{key}.name", kind)
    target = _req_obj(side, "target", f"{path}.{key}.target")
    return ref, _sha(_opt_str(target, "hash", f"{path}.{key}.target.hash"), f"{path}.{key}.target.hash")


def _bitbucket_push(data: Json) -> list[Event]:
    repo = _req_obj(data, "repository", "repository")
    links = _req_obj(repo, "links", "repository.links")
    html = _req_obj(links, "html", "repository.links.html")
    href = _url(_req_str(html, "href", "repository.links.html.href"), "repository.links.html.href")
    assert href is not None  # _req_str refuses the empty string
    urls = _urls([href, href.rstrip("/") + ".git"])
    mainbranch = _opt_obj(repo, "mainbranch", "repository.mainbranch")
    default = _opt_str(mainbranch, "name", "repository.mainbranch.name") if mainbranch else None
    default_branch = _branch_name(default, "repository.mainbranch.name")
    changes = _req_list(_req_obj(data, "push", "push"), "changes", "push.changes")
    events: list[Event] = []
    for i, item in enumerate(changes):
        path = f"push.changes[{i}]"
        change = _item_obj(item, path)
        new_ref, after = _bitbucket_side(change, "new", path)
        old_ref, before = _bitbucket_side(change, "old", path)
        ref = new_ref or old_ref
        if ref is None:
            raise _bad(f"{path}: neither new nor old")
        events.append(
            Push(
                provider="bitbucket",
                repo_urls=urls,
                ref=ref,
                before=before,
                after=after,
                changed_files=None,
                default_branch=default_branch,
                forced=_opt_bool(change, "forced", f"{path}.forced"),
            )
        )
    return events


def _parse_bitbucket(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Event-Key")
    if event == "repo:push":
        return _bitbucket_push(data)
    if _bitbucket_kind(event) == "bitbucket" and _EVENT_NAME.fullmatch(event):
        return [Ignored("bitbucket", event)]
    raise _unknown_event("bitbucket")


# ---------------------------------------------------------------------------------------------
# Bitbucket Server / Data Center


def _href_list(links: Json, key: str, required: bool) -> list[str | None]:
    path = f"repository.links.{key}"
    items = _req_list(links, key, path) if required else (_opt_list(links, key, path) or [])
    return [
        _url(_req_str(_item_obj(item, f"{path}[{i}]"), "href", f"{path}[{i}].href"), f"{path}[{i}].href")
        for i, item in enumerate(items)
    ]


def _bitbucketserver_push(data: Json) -> list[Event]:
    repo = _req_obj(data, "repository", "repository")
    links = _req_obj(repo, "links", "repository.links")
    urls = _urls(_href_list(links, "clone", required=True) + _href_list(links, "self", required=False))
    default = _opt_obj(repo, "defaultBranch", "repository.defaultBranch")
    default_id = _opt_str(default, "id", "repository.defaultBranch.id") if default else None
    default_branch = _branch_name(default_id, "repository.defaultBranch.id")
    events: list[Event] = []
    for i, item in enumerate(_req_list(data, "changes", "changes")):
        path = f"changes[{i}]"
        change = _item_obj(item, path)
        ref_id = _opt_str(change, "refId", f"{path}.refId")
        if not ref_id:
            ref_id = _req_str(_req_obj(change, "ref", f"{path}.ref"), "id", f"{path}.ref.id")
        events.append(
            Push(
                provider="bitbucketserver",
                repo_urls=urls,
                ref=_full_ref(ref_id, f"{path}.refId"),
                before=_sha(_opt_str(change, "fromHash", f"{path}.fromHash"), f"{path}.fromHash"),
                after=_sha(_opt_str(change, "toHash", f"{path}.toHash"), f"{path}.toHash"),
                changed_files=None,
                default_branch=default_branch,
            )
        )
    return events


def _parse_bitbucketserver(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Event-Key")
    if event == "repo:refs_changed":
        return _bitbucketserver_push(data)
    if event == "diagnostics:ping":
        return [Ping("bitbucketserver")]
    if event in _BITBUCKET_SERVER_EVENTS or (
        event.startswith(_BITBUCKET_SERVER_PREFIXES) and _EVENT_NAME.fullmatch(event)
    ):
        return [Ignored("bitbucketserver", event)]
    raise _unknown_event("bitbucketserver")


# ---------------------------------------------------------------------------------------------
# Azure DevOps


def _azure_push(data: Json) -> list[Event]:
    resource = _req_obj(data, "resource", "resource")
    repo = _req_obj(resource, "repository", "resource.repository")
    urls = _urls(
        [
            _url(_opt_str(repo, key, f"resource.repository.{key}"), f"resource.repository.{key}")
            for key in ("remoteUrl", "sshUrl", "webUrl")
        ]
    )
    default_branch = _branch_name(
        _opt_str(repo, "defaultBranch", "resource.repository.defaultBranch"), "resource.repository.defaultBranch"
    )
    events: list[Event] = []
    for i, item in enumerate(_req_list(resource, "refUpdates", "resource.refUpdates")):
        path = f"resource.refUpdates[{i}]"
        update = _item_obj(item, path)
        events.append(
            Push(
                provider="azuredevops",
                repo_urls=urls,
                ref=_full_ref(_req_str(update, "name", f"{path}.name"), f"{path}.name"),
                before=_sha(_opt_str(update, "oldObjectId", f"{path}.oldObjectId"), f"{path}.oldObjectId"),
                after=_sha(_opt_str(update, "newObjectId", f"{path}.newObjectId"), f"{path}.newObjectId"),
                changed_files=None,
                default_branch=default_branch,
            )
        )
    return events


def _parse_azuredevops(h: dict[str, str], data: Json) -> list[Event]:
    event = _req_str(data, "eventType", "eventType")
    if event == "git.push":
        return _azure_push(data)
    if event.startswith(_AZURE_IGNORED_PREFIXES) and _EVENT_NAME.fullmatch(event):
        return [Ignored("azuredevops", event)]
    raise _unknown_event("azuredevops")


# ---------------------------------------------------------------------------------------------
# generic (Tether's own format, see the module docstring)


def _generic_push(data: Json) -> Push:
    repo = _req_obj(data, "repository", "repository")
    urls: list[str | None] = [_url(_req_str(repo, "url", "repository.url"), "repository.url")]
    more = _opt_list(repo, "urls", "repository.urls")
    if more is not None:
        urls += [_url(url, f"repository.urls[{i}]") for i, url in enumerate(_str_list(more, "repository.urls"))]
    files = _opt_list(data, "changed_files", "changed_files")
    return Push(
        provider="generic",
        repo_urls=_urls(urls),
        ref=_full_ref(_req_str(data, "ref", "ref"), "ref"),
        before=_sha(_opt_str(data, "before", "before"), "before"),
        after=_sha(_opt_str(data, "after", "after"), "after"),
        changed_files=None if files is None else tuple(dict.fromkeys(_str_list(files, "changed_files"))),
        default_branch=_branch_name(_opt_str(data, "default_branch", "default_branch"), "default_branch"),
        forced=_opt_bool(data, "forced", "forced"),
    )


def _parse_generic(h: dict[str, str], data: Json) -> list[Event]:
    event = _event_header(h, "X-Tether-Event")
    if event == "push":
        return [_generic_push(data)]
    if event == "ping":
        return [Ping("generic")]
    raise _unknown_event("generic")


_PARSERS: dict[str, Callable[[dict[str, str], Json], list[Event]]] = {
    "github": _parse_github,
    "gitlab": _parse_gitlab,
    "gitea": _parse_gitea,
    "gogs": _parse_gogs,
    "bitbucket": _parse_bitbucket,
    "bitbucketserver": _parse_bitbucketserver,
    "azuredevops": _parse_azuredevops,
    "generic": _parse_generic,
}
