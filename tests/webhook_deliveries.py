"""Real provider payloads, pointed at a test repository and commit, with the headers each provider sends.

The payloads are the real ones in ``../shared/corpora`` (Bitbucket Server and the generic format,
which the corpora lack, are our own fixtures in ``tests/unit/webhook_payloads``). ``retarget``
rewrites every repository URL the payload carries to the test repository (whatever field it
sits in: the URLs ``providers.parse`` reads are replaced wherever they appear) and sets the
pushed ref and commits where that provider puts them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from tether.server.webhook.events import Push
from tether.server.webhook.providers import detect, parse

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
OWN = ROOT / "tests" / "unit" / "webhook_payloads"
ZEROS = "0" * 40

# provider -> (payload file, the event headers it comes with)
PUSH_PAYLOADS: dict[str, tuple[Path, dict[str, str]]] = {
    "github": (CORPORA / "github-webhook-payloads/push/payload.json", {"X-GitHub-Event": "push"}),
    "gitlab": (CORPORA / "git-provider-webhook-payloads/gitlab/push-event.json", {"X-Gitlab-Event": "Push Hook"}),
    "gitea": (CORPORA / "git-provider-webhook-payloads/gitea/push-event.json", {"X-Gitea-Event": "push"}),
    "gogs": (CORPORA / "git-provider-webhook-payloads/gogs/push-event.json", {"X-Gogs-Event": "push"}),
    "bitbucket": (CORPORA / "git-provider-webhook-payloads/bitbucket/repo-push.json", {"X-Event-Key": "repo:push"}),
    "bitbucketserver": (OWN / "bitbucketserver/repo-refs-changed.json", {"X-Event-Key": "repo:refs_changed"}),
    "azuredevops": (CORPORA / "git-provider-webhook-payloads/azuredevops/git.push.json", {}),
    "generic": (OWN / "generic/push.json", {"X-Tether-Event": "push"}),
}
PROVIDERS = tuple(PUSH_PAYLOADS)
SECRETS = {
    "github": "gh-secret",
    "gitlab": "gl-token",
    "gitea": "gitea-secret",
    "gogs": "gogs-secret",
    "bitbucket": "{5d4d2b2a-9d8c-4a5e-8a4b-2f1f0f6f0a11}",
    "bitbucketserver": "bbs-secret",
    "azuredevops": "ado-user:ado-password",
    "generic": "generic-secret",
}


def secret_data() -> dict[str, str]:
    """The ``tether-webhook`` Secret's ``data`` holding every provider's secret above."""
    values = {k: v for k, v in SECRETS.items() if k != "azuredevops"}
    user, _, password = SECRETS["azuredevops"].partition(":")
    values |= {"azuredevops-username": user, "azuredevops-password": password}
    return {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}


def payload(provider: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PUSH_PAYLOADS[provider][0].read_text())
    return data


def headers(provider: str, body: bytes, secret: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers ``provider`` sends with ``body``, signed with ``secret`` (None: unsigned)."""
    out = {"Content-Type": "application/json", **PUSH_PAYLOADS[provider][1], **(extra or {})}
    if provider == "azuredevops":
        out["X-Vss-ActivityId"] = str(uuid.uuid4())
    if provider == "github":
        out["X-GitHub-Delivery"] = str(uuid.uuid4())
    if secret is None:
        return out
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "github":
        out["X-Hub-Signature-256"] = f"sha256={digest}"
    elif provider == "gitea":
        out["X-Gitea-Signature"] = digest
    elif provider == "gogs":
        out["X-Gogs-Signature"] = digest
    elif provider == "gitlab":
        out["X-Gitlab-Token"] = secret
    elif provider == "bitbucket":
        out["X-Hook-UUID"] = secret
    elif provider == "bitbucketserver":
        out["X-Hub-Signature"] = f"sha256={digest}"
    elif provider == "azuredevops":
        out["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    elif provider == "generic":
        out["X-Signature"] = f"sha256={digest}"
    return out


def retarget(
    provider: str,
    url: str,
    *,
    branch: str = "main",
    before: str | None,
    after: str,
    files: list[str] | None = None,
) -> bytes:
    """``provider``'s real push payload, as a push of ``before..after`` to ``branch`` of ``url``.

    ``files`` (where the provider lists changed files) replaces the commits' lists with one
    commit changing them; None leaves the payload without a complete list (as a long push).
    """
    data = payload(provider)
    original = _pushes(provider, data)[0].repo_urls
    data = _replace_strings(data, set(original), url)
    ref = f"refs/heads/{branch}"
    old = before or ZEROS
    for holder in (data.get("repository"), data.get("project")):  # the test repository's default branch
        if isinstance(holder, dict):
            if "default_branch" in holder:
                holder["default_branch"] = branch
            if isinstance(holder.get("mainbranch"), dict):
                holder["mainbranch"]["name"] = branch
    if provider in ("github", "gitea", "gogs", "gitlab"):
        data.update(ref=ref, before=old, after=after)
        commit = {"id": after, "message": "test", "added": [], "removed": [], "modified": files or []}
        many = [commit] * (21 if files is None else 1)
        data["commits"] = many
        if provider == "gitlab":
            data["checkout_sha"] = after
            data["total_commits_count"] = len(many) + (5 if files is None else 0)
        if provider == "gitea":
            data["total_commits"] = len(many) + (5 if files is None else 0)
        if "head_commit" in data:
            data["head_commit"] = commit
    elif provider == "bitbucket":
        change = data["push"]["changes"][0]
        change["new"]["name"], change["new"]["type"] = branch, "branch"
        change["new"]["target"]["hash"] = after
        if change.get("old"):
            change["old"]["name"] = branch
            change["old"]["target"]["hash"] = old
        data["push"]["changes"] = [change]
    elif provider == "bitbucketserver":
        change = data["changes"][0]
        change.update(refId=ref, fromHash=old, toHash=after, type="UPDATE")
        change.setdefault("ref", {})["id"] = ref
        data["changes"] = [change]
    elif provider == "azuredevops":
        data["resource"]["refUpdates"] = [{"name": ref, "oldObjectId": old, "newObjectId": after}]
    elif provider == "generic":
        data = {"repository": {"url": url}, "ref": ref, "before": old, "after": after}
        if files is not None:
            data["changed_files"] = files
    body = json.dumps(data).encode()
    pushes = _pushes(provider, json.loads(body))
    assert pushes and pushes[0].after == after and pushes[0].ref == ref, pushes  # the rewrite says what we mean
    return body


def _pushes(provider: str, data: dict[str, Any]) -> list[Push]:
    body = json.dumps(data).encode()
    given = headers(provider, body, None)
    assert detect(given) == provider
    return [e for e in parse(provider, given, body) if isinstance(e, Push)]


def _replace_strings(value: Any, old: set[str], new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_strings(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, old, new) for v in value]
    if isinstance(value, str) and value in old:
        return new
    return copy.copy(value)
