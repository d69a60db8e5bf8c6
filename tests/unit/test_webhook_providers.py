"""Webhook deliveries of every provider: detected, verified and parsed, from the providers' real payloads.

The payloads are the corpora in ../shared/corpora (read in place, never copied); Bitbucket Server
and the generic format, which have none there, use tests/unit/webhook_payloads/. Each delivery
carries the headers its provider really sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.datastructures import Headers

from tether.server.webhook import (
    Event,
    Ignored,
    Ping,
    PullRequest,
    Push,
    WebhookError,
    WebhookSecrets,
    detect,
    parse,
    verify,
)

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
GITHUB = CORPORA / "github-webhook-payloads"
PROVIDERS_DIR = CORPORA / "git-provider-webhook-payloads"
LOCAL = Path(__file__).resolve().parent / "webhook_payloads"

BITBUCKET_HOOK_UUID = "{6f3c3bd4-61ac-4b9a-8b1d-0fd1c4c8a1e2}"
SECRETS = WebhookSecrets(
    github="gh-Secret-1",
    gitlab="gl-token-2",
    gitea="gitea-secret-3",
    gogs="gogs-secret-4",
    bitbucket=BITBUCKET_HOOK_UUID,
    bitbucketserver="bbs-secret-5",
    azuredevops_username="tether",
    azuredevops_password="az-pass-6",
    generic="generic-secret-7",
)

# (provider, event as the provider names it, payload file): every real payload, and ours.
CASES: list[tuple[str, str, Path]] = [
    *[("github", path.parent.name, path) for path in sorted(GITHUB.glob("*/*.json"))],
    ("gitlab", "Push Hook", PROVIDERS_DIR / "gitlab" / "push-event.json"),
    ("gitlab", "Tag Push Hook", PROVIDERS_DIR / "gitlab" / "tag-event.json"),
    ("gitea", "push", PROVIDERS_DIR / "gitea" / "push-event.json"),
    ("gogs", "push", PROVIDERS_DIR / "gogs" / "push-event.json"),
    ("bitbucket", "repo:push", PROVIDERS_DIR / "bitbucket" / "repo-push.json"),
    ("azuredevops", "git.push", PROVIDERS_DIR / "azuredevops" / "git.push.json"),
    ("bitbucketserver", "repo:refs_changed", LOCAL / "bitbucketserver" / "repo-refs-changed.json"),
    ("bitbucketserver", "diagnostics:ping", LOCAL / "bitbucketserver" / "diagnostics-ping.json"),
    ("bitbucketserver", "pr:opened", LOCAL / "bitbucketserver" / "pr-opened.json"),
    ("generic", "push", LOCAL / "generic" / "push.json"),
    ("generic", "push", LOCAL / "generic" / "push-minimal.json"),
    ("generic", "ping", LOCAL / "generic" / "ping.json"),
]


def _hmac(secret: str, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def headers_for(
    provider: str, event: str, body: bytes, secrets: WebhookSecrets = SECRETS, *, sign: bool = True
) -> dict[str, str]:
    """The headers ``provider`` sends with ``body`` (signed with ``secrets`` when ``sign``)."""
    delivery = "f6266f16-1bf3-46a5-9ea4-602e06ead473"
    if provider == "github":
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/7a9b2c1",
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": "109948940",
            "X-GitHub-Hook-Installation-Target-ID": "186853002",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
        }
        if sign:
            headers["X-Hub-Signature"] = "sha1=" + _hmac(secrets.github, body, "sha1")
            headers["X-Hub-Signature-256"] = "sha256=" + _hmac(secrets.github, body)
        return headers
    if provider == "gitea":  # Gitea also sends Gogs' and GitHub's headers
        headers = {"Content-Type": "application/json"}
        for prefix in ("X-Gitea", "X-Gogs", "X-GitHub"):
            headers |= {f"{prefix}-Delivery": delivery, f"{prefix}-Event": event, f"{prefix}-Event-Type": event}
        if sign:
            signature = _hmac(secrets.gitea, body)
            headers |= {
                "X-Gitea-Signature": signature,
                "X-Gogs-Signature": signature,
                "X-Hub-Signature": "sha1=" + _hmac(secrets.gitea, body, "sha1"),
                "X-Hub-Signature-256": "sha256=" + signature,
            }
        return headers
    if provider == "gogs":
        headers = {"Content-Type": "application/json", "X-Gogs-Delivery": delivery, "X-Gogs-Event": event}
        if sign:
            headers["X-Gogs-Signature"] = _hmac(secrets.gogs, body)
        return headers
    if provider == "gitlab":
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.5.0",
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Webhook-UUID": "2f1a3b7c-5d4e-4f60-8a9b-0c1d2e3f4a5b",
            "X-Gitlab-Instance": "https://gitlab.example.com",
        }
        if sign:
            headers["X-Gitlab-Token"] = secrets.gitlab
        return headers
    if provider == "bitbucket":
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Bitbucket-Webhooks/2.0",
            "X-Attempt-Number": "1",
            "X-Event-Key": event,
            "X-Request-UUID": delivery,
        }
        if sign:
            headers["X-Hook-UUID"] = secrets.bitbucket.strip("{}")  # Bitbucket sends the UUID without braces
        return headers
    if provider == "bitbucketserver":
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian HttpClient 4.2.0 / Bitbucket-9.4.0 (9004000) / Default",
            "X-Event-Key": event,
            "X-Request-Id": delivery,
        }
        if sign:
            headers["X-Hub-Signature"] = "sha256=" + _hmac(secrets.bitbucketserver, body)
        return headers
    if provider == "azuredevops":
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Vss-ActivityId": "6a2b3c4d-0000-1111-2222-333344445555",
            "X-Vss-SubscriptionId": "7b8c9d0e-6666-7777-8888-999900001111",
        }
        if sign:
            pair = f"{secrets.azuredevops_username}:{secrets.azuredevops_password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers
    if provider == "generic":
        headers = {"Content-Type": "application/json", "X-Tether-Event": event}
        if sign:
            headers["X-Signature"] = "sha256=" + _hmac(secrets.generic, body)
        return headers
    raise AssertionError(provider)


def deliver(provider: str, event: str, body: bytes | dict[str, Any]) -> list[Event]:
    """detect + verify (with the right secret) + parse, as the receiver does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = headers_for(provider, event, raw)
    assert detect(headers) == provider
    verify(provider, headers, raw, SECRETS, allow_unauthenticated=False)
    return parse(provider, headers, raw)


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


def one(events: list[Event], kind: type) -> Any:
    assert len(events) == 1 and isinstance(events[0], kind), events
    return events[0]


def refused(status: int, call: Any, *args: Any, **kwargs: Any) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status, caught.value.message
    return caught.value


# ---------------------------------------------------------------------------------------------
# every real payload


def test_the_corpora_are_where_the_tests_read_them() -> None:
    assert len([c for c in CASES if c[0] == "github"]) == 24
    assert all(path.is_file() for _, _, path in CASES)


EXPECTED_TYPE = {
    "push": Push,
    "ping": Ping,
    "pull_request": PullRequest,
    "create": Ignored,
    "delete": Ignored,
    "Push Hook": Push,
    "Tag Push Hook": Push,
    "repo:push": Push,
    "git.push": Push,
    "repo:refs_changed": Push,
    "diagnostics:ping": Ping,
    "pr:opened": Ignored,
}


@pytest.mark.parametrize(
    ("provider", "event", "path"), CASES, ids=[f"{p}:{f.parent.name}/{f.name}" for p, _, f in CASES]
)
def test_every_payload_is_detected_verified_and_parsed_to_its_event_type(provider: str, event: str, path: Path) -> None:
    events = deliver(provider, event, path.read_bytes())
    assert events and all(isinstance(e, EXPECTED_TYPE[event]) for e in events)
    assert all(e.provider == provider for e in events)


# ---------------------------------------------------------------------------------------------
# what each provider's payload says

HELLO_WORLD = (
    "https://github.com/Codertocat/Hello-World",
    "https://github.com/Codertocat/Hello-World.git",
    "git@github.com:Codertocat/Hello-World.git",
    "git://github.com/Codertocat/Hello-World.git",
)


def test_github_push_of_a_new_branch() -> None:
    push = one(deliver("github", "push", (GITHUB / "push" / "with-new-branch.payload.json").read_bytes()), Push)
    assert push == Push(
        provider="github",
        repo_urls=HELLO_WORLD,
        ref="refs/heads/master",
        before=None,  # all zeros: a new branch, so the commit list is not the whole change
        after="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        changed_files=None,
        default_branch="master",
        forced=False,
    )


def test_github_push_deleting_a_tag() -> None:
    push = one(deliver("github", "push", (GITHUB / "push" / "payload.json").read_bytes()), Push)
    assert (push.ref, push.before, push.after) == (
        "refs/tags/simple-tag",
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        None,
    )
    assert push.changed_files == ()  # nothing listed, and the list is complete


def test_github_changed_files_only_when_the_list_is_complete() -> None:
    payload = load(GITHUB / "push" / "with-new-branch.payload.json")
    payload["before"] = "5113728f27ae82c7b1a177c8d03f9e96e0adf245"
    payload["commits"][0]["modified"] = ["apps/web/deployment.yaml"]
    payload["commits"][0]["removed"] = ["old.yaml"]
    assert one(deliver("github", "push", payload), Push).changed_files == (
        "README.md",
        "apps/web/deployment.yaml",
        "old.yaml",
    )
    forced = payload | {"forced": True}
    assert one(deliver("github", "push", forced), Push).changed_files is None
    twenty = payload | {"commits": payload["commits"] * 20}
    assert one(deliver("github", "push", twenty), Push).changed_files is None
    nineteen = payload | {"commits": payload["commits"] * 19}
    assert one(deliver("github", "push", nineteen), Push).changed_files is not None


def test_github_ping_with_and_without_a_repository() -> None:
    for name in ("payload.json", "with-organization.payload.json"):  # an organisation hook's ping has no repository
        assert deliver("github", "ping", (GITHUB / "ping" / name).read_bytes()) == [Ping("github")]


def test_github_pull_request_synchronize() -> None:
    pr = one(
        deliver("github", "pull_request", (GITHUB / "pull_request" / "synchronize.payload.json").read_bytes()),
        PullRequest,
    )
    assert pr == PullRequest(
        provider="github",
        repo_urls=HELLO_WORLD,
        action="synchronize",
        number=2,
        head_ref="changes",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        base_ref="master",
        title="Update the README with new information.",
    )


def test_github_create_and_delete_are_ignored() -> None:
    assert deliver("github", "create", (GITHUB / "create" / "payload.json").read_bytes()) == [
        Ignored("github", "create")
    ]
    assert deliver("github", "delete", (GITHUB / "delete" / "payload.json").read_bytes()) == [
        Ignored("github", "delete")
    ]


def test_github_form_encoded_delivery() -> None:
    payload = (GITHUB / "push" / "with-new-branch.payload.json").read_bytes()
    body = urlencode({"payload": payload.decode()}).encode()
    headers = headers_for("github", "push", body) | {"Content-Type": "application/x-www-form-urlencoded"}
    verify("github", headers, body, SECRETS, allow_unauthenticated=False)
    assert one(parse("github", headers, body), Push).after == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


GITLAB_DIASPORA = (
    "http://example.com/mike/diaspora",
    "http://example.com/mike/diaspora.git",
    "git@example.com:mike/diaspora.git",
)


def test_gitlab_push() -> None:
    push = one(deliver("gitlab", "Push Hook", (PROVIDERS_DIR / "gitlab" / "push-event.json").read_bytes()), Push)
    assert push == Push(
        provider="gitlab",
        repo_urls=GITLAB_DIASPORA,
        ref="refs/heads/master",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        changed_files=None,  # total_commits_count is 4 but 2 commits are listed
        default_branch="master",
    )


def test_gitlab_changed_files_when_every_commit_is_listed() -> None:
    payload = load(PROVIDERS_DIR / "gitlab" / "push-event.json")
    payload["total_commits_count"] = 2
    push = one(deliver("gitlab", "Push Hook", payload), Push)
    assert push.changed_files == ("CHANGELOG", "app/controller/application.rb")
    del payload["total_commits_count"]
    assert one(deliver("gitlab", "Push Hook", payload), Push).changed_files is None


def test_gitlab_tag_push() -> None:
    push = one(deliver("gitlab", "Tag Push Hook", (PROVIDERS_DIR / "gitlab" / "tag-event.json").read_bytes()), Push)
    assert (push.ref, push.before, push.after, push.changed_files) == (
        "refs/tags/v1.0.0",
        None,
        "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
        None,
    )
    assert "ssh://git@example.com/jsmith/example.git" in push.repo_urls
    assert push.repo_urls[0] == "http://example.com/jsmith/example"


def test_gitlab_system_hook_push_and_others() -> None:
    payload = load(PROVIDERS_DIR / "gitlab" / "push-event.json") | {"event_name": "push"}
    assert one(deliver("gitlab", "System Hook", payload), Push).after == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert deliver("gitlab", "System Hook", {"event_name": "project_create"}) == [Ignored("gitlab", "System Hook")]


def test_gitlab_merge_request() -> None:
    project = load(PROVIDERS_DIR / "gitlab" / "push-event.json")["project"]
    payload = {
        "object_kind": "merge_request",
        "project": project,
        "object_attributes": {
            "iid": 7,
            "action": "open",
            "title": "Raise replicas",
            "source_branch": "replicas",
            "target_branch": "master",
            "last_commit": {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
        },
    }
    pr = one(deliver("gitlab", "Merge Request Hook", payload), PullRequest)
    assert (pr.number, pr.action, pr.head_ref, pr.head_sha, pr.base_ref, pr.title) == (
        7,
        "open",
        "replicas",
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "master",
        "Raise replicas",
    )
    assert pr.repo_urls[0] == "http://example.com/mike/diaspora"


def test_gitea_push() -> None:
    push = one(deliver("gitea", "push", (PROVIDERS_DIR / "gitea" / "push-event.json").read_bytes()), Push)
    assert push == Push(
        provider="gitea",
        repo_urls=(
            "http://localhost:3000/example/example",
            "http://localhost:3000/example/example.git",
            "git@localhost:example/example.git",
        ),
        ref="refs/heads/master",
        before=None,
        after="67b56589a45103f891bdee7c0546e5d40bc02001",
        changed_files=None,  # a new branch
        default_branch="master",
    )


def test_gitea_changed_files_and_total_commits() -> None:
    payload = load(PROVIDERS_DIR / "gitea" / "push-event.json")
    payload["before"] = "57b56589a45103f891bdee7c0546e5d40bc02001"
    assert one(deliver("gitea", "push", payload), Push).changed_files == ("example",)
    payload["total_commits"] = 1
    assert one(deliver("gitea", "push", payload), Push).changed_files == ("example",)
    payload["total_commits"] = 3  # Gitea listed fewer commits than it pushed
    assert one(deliver("gitea", "push", payload), Push).changed_files is None


def test_gogs_push_without_file_lists() -> None:
    push = one(deliver("gogs", "push", (PROVIDERS_DIR / "gogs" / "push-event.json").read_bytes()), Push)
    assert push == Push(
        provider="gogs",
        repo_urls=(
            "http://localhost:3000/unknwon/webhooks",
            "http://localhost:3000/unknwon/webhooks.git",
            "ssh://unknwon@localhost:2222/unknwon/webhooks.git",
        ),
        ref="refs/heads/develop",
        before="28e1879d029cb852e4844d9c718537df08844e03",
        after="bffeb74224043ba2feb48d137756c8a9331c449a",
        changed_files=None,  # this Gogs lists no added/modified/removed per commit
        default_branch="master",
    )
    payload = load(PROVIDERS_DIR / "gogs" / "push-event.json")
    payload["commits"][0] |= {"added": ["a.yaml"], "modified": [], "removed": []}
    assert one(deliver("gogs", "push", payload), Push).changed_files == ("a.yaml",)


def test_gogs_pull_request() -> None:
    repo = load(PROVIDERS_DIR / "gogs" / "push-event.json")["repository"]
    payload = {
        "action": "opened",
        "number": 3,
        "pull_request": {"id": 9, "index": 3, "title": "t", "head_branch": "feat", "base_branch": "master"},
        "repository": repo,
    }
    pr = one(deliver("gogs", "pull_request", payload), PullRequest)
    assert (pr.number, pr.head_ref, pr.head_sha, pr.base_ref) == (3, "feat", None, "master")


def test_bitbucket_cloud_push() -> None:
    push = one(deliver("bitbucket", "repo:push", (PROVIDERS_DIR / "bitbucket" / "repo-push.json").read_bytes()), Push)
    assert push == Push(
        provider="bitbucket",
        repo_urls=(
            "https://api.bitbucket.org/bitbucket/bitbucket",
            "https://api.bitbucket.org/bitbucket/bitbucket.git",
        ),
        ref="refs/heads/name-of-branch",
        before="1e65c05c1d5171631d92438a13901ca7dae9618c",
        after="709d658dc5b6d6afcd46049c2f332ee3f515a67d",
        changed_files=None,
    )


def test_bitbucket_cloud_created_tag_deleted_branch_and_main_branch() -> None:
    payload = load(PROVIDERS_DIR / "bitbucket" / "repo-push.json")
    change = payload["push"]["changes"][0]
    tag = {**change, "old": None, "new": {**change["new"], "type": "tag", "name": "v3"}}
    deleted = {**change, "new": None}
    payload["push"]["changes"] = [tag, deleted]
    payload["repository"]["mainbranch"] = {"name": "main", "type": "branch"}
    created, gone = deliver("bitbucket", "repo:push", payload)
    assert isinstance(created, Push) and isinstance(gone, Push)
    assert (created.ref, created.before, created.after) == (
        "refs/tags/v3",
        None,
        "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
    )
    assert (gone.ref, gone.before, gone.after) == (
        "refs/heads/name-of-branch",
        "1e65c05c1d5171631d92438a13901ca7dae9618c",
        None,
    )
    assert created.default_branch == gone.default_branch == "main"


def test_bitbucket_server_push_gives_one_push_per_changed_ref() -> None:
    events = deliver(
        "bitbucketserver", "repo:refs_changed", (LOCAL / "bitbucketserver" / "repo-refs-changed.json").read_bytes()
    )
    urls = (
        "ssh://git@bitbucket.example.com:7999/ops/platform-apps.git",
        "https://bitbucket.example.com/scm/ops/platform-apps.git",
        "https://bitbucket.example.com/projects/OPS/repos/platform-apps/browse",
    )
    assert events == [
        Push(
            "bitbucketserver",
            urls,
            "refs/heads/main",
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "9c1185a5c5e9fc54612808977ee8f548b2258d31",
            None,
        ),
        Push("bitbucketserver", urls, "refs/tags/v2.4.0", None, "9c1185a5c5e9fc54612808977ee8f548b2258d31", None),
        Push(
            "bitbucketserver",
            urls,
            "refs/heads/feature/old-ingress",
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
            None,
            None,
        ),
    ]


def test_bitbucket_server_ping_and_pull_request() -> None:
    assert deliver("bitbucketserver", "diagnostics:ping", b'{"test": true}') == [Ping("bitbucketserver")]
    pr = (LOCAL / "bitbucketserver" / "pr-opened.json").read_bytes()
    assert deliver("bitbucketserver", "pr:opened", pr) == [Ignored("bitbucketserver", "pr:opened")]


def test_azure_devops_push() -> None:
    events = deliver("azuredevops", "git.push", (PROVIDERS_DIR / "azuredevops" / "git.push.json").read_bytes())
    assert events == [
        Push(
            provider="azuredevops",
            repo_urls=("https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git",),
            ref="refs/heads/main",
            before="aad331d8d3b131fa9ae03cf5e53965b51942618a",
            after="33b55f7cb7e7e245323987634f960cf4a6e6bc74",
            changed_files=None,
            default_branch="main",
        )
    ]


def test_azure_devops_several_ref_updates_and_other_events() -> None:
    payload = load(PROVIDERS_DIR / "azuredevops" / "git.push.json")
    first = payload["resource"]["refUpdates"][0]
    payload["resource"]["refUpdates"].append({**first, "name": "refs/tags/v1", "oldObjectId": "0" * 40})
    payload["resource"]["repository"]["sshUrl"] = (
        "git@ssh.dev.azure.com:v3/fabrikam-fiber-inc/DefaultCollection/Fabrikam-Fiber-Git"
    )
    pushes = deliver("azuredevops", "git.push", payload)
    assert [(p.ref, p.before) for p in pushes if isinstance(p, Push)] == [
        ("refs/heads/main", "aad331d8d3b131fa9ae03cf5e53965b51942618a"),
        ("refs/tags/v1", None),
    ]
    assert isinstance(pushes[0], Push) and pushes[0].repo_urls == (
        "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git",
        "git@ssh.dev.azure.com:v3/fabrikam-fiber-inc/DefaultCollection/Fabrikam-Fiber-Git",
    )
    pr = payload | {"eventType": "git.pullrequest.created"}
    assert deliver("azuredevops", "", pr) == [Ignored("azuredevops", "git.pullrequest.created")]


def test_generic_push_and_ping() -> None:
    push = one(deliver("generic", "push", (LOCAL / "generic" / "push.json").read_bytes()), Push)
    assert push == Push(
        provider="generic",
        repo_urls=(
            "https://git.example.com/platform/apps.git",
            "git@git.example.com:platform/apps.git",
            "https://git.example.com/platform/apps",
        ),
        ref="refs/heads/main",  # a short name is a branch
        before="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        after="9c1185a5c5e9fc54612808977ee8f548b2258d31",
        changed_files=("apps/web/deployment.yaml", "base/configmap.yaml"),
        default_branch="main",
    )
    minimal = one(deliver("generic", "push", (LOCAL / "generic" / "push-minimal.json").read_bytes()), Push)
    assert (minimal.ref, minimal.before, minimal.after, minimal.changed_files) == (
        "refs/tags/v1.0.0",
        None,
        "9c1185a5c5e9fc54612808977ee8f548b2258d31",
        None,
    )
    assert deliver("generic", "ping", b"{}") == [Ping("generic")]


# ---------------------------------------------------------------------------------------------
# detect


def test_detect_order_follows_what_providers_really_send() -> None:
    body = b"{}"
    assert detect(headers_for("gitea", "push", body)) == "gitea"  # carries Gogs' and GitHub's headers too
    assert detect(headers_for("gogs", "push", body) | {"X-GitHub-Event": "push"}) == "gogs"
    assert detect(headers_for("azuredevops", "", body) | {"X-GitHub-Event": "push"}) == "azuredevops"
    assert detect(headers_for("bitbucket", "repo:push", body)) == "bitbucket"
    assert detect(headers_for("bitbucket", "repo:push", body, sign=False)) == "bitbucket"
    assert detect({"X-Event-Key": "pullrequest:created"}) == "bitbucket"
    for key in ("repo:refs_changed", "diagnostics:ping", "pr:opened", "pr:merged"):
        assert detect({"X-Event-Key": key}) == "bitbucketserver"
    assert detect({"X-Tether-Event": "push"}) == "generic"
    assert detect({"Content-Type": "application/json"}) is None
    assert detect({}) is None
    assert detect({"X-GitHub-Event": ""}) is None


def test_detect_reads_header_names_in_any_case_from_any_mapping() -> None:
    assert detect({"x-github-event": "push"}) == "github"
    assert detect({"X-GITLAB-EVENT": "Push Hook"}) == "gitlab"
    assert detect({"x-vss-activityid": "1"}) == "azuredevops"
    starlette = Headers(raw=[(b"x-gogs-event", b"push"), (b"content-type", b"application/json")])
    assert detect(starlette) == "gogs"
    body = (PROVIDERS_DIR / "gogs" / "push-event.json").read_bytes()
    signed = Headers(headers=headers_for("gogs", "push", body))
    verify("gogs", signed, body, SECRETS, allow_unauthenticated=False)
    assert one(parse("gogs", signed, body), Push).ref == "refs/heads/develop"


# ---------------------------------------------------------------------------------------------
# verify

SIGNED = [
    ("github", "push", GITHUB / "push" / "with-new-branch.payload.json"),
    ("gitlab", "Push Hook", PROVIDERS_DIR / "gitlab" / "push-event.json"),
    ("gitea", "push", PROVIDERS_DIR / "gitea" / "push-event.json"),
    ("gogs", "push", PROVIDERS_DIR / "gogs" / "push-event.json"),
    ("bitbucket", "repo:push", PROVIDERS_DIR / "bitbucket" / "repo-push.json"),
    ("bitbucketserver", "repo:refs_changed", LOCAL / "bitbucketserver" / "repo-refs-changed.json"),
    ("azuredevops", "git.push", PROVIDERS_DIR / "azuredevops" / "git.push.json"),
    ("generic", "push", LOCAL / "generic" / "push.json"),
]
WRONG = WebhookSecrets(
    github="wrong",
    gitlab="wrong",
    gitea="wrong",
    gogs="wrong",
    bitbucket="{00000000-0000-0000-0000-000000000000}",
    bitbucketserver="wrong",
    azuredevops_username="tether",
    azuredevops_password="wrong",
    generic="wrong",
)


@pytest.mark.parametrize(("provider", "event", "path"), SIGNED, ids=[s[0] for s in SIGNED])
def test_the_right_secret_is_accepted_and_a_wrong_or_missing_one_refused(provider: str, event: str, path: Path) -> None:
    body = path.read_bytes()
    verify(provider, headers_for(provider, event, body), body, SECRETS, allow_unauthenticated=False)
    # allow_unauthenticated does not weaken a configured secret
    wrong = headers_for(provider, event, body, WRONG)
    error = refused(401, verify, provider, wrong, body, SECRETS, allow_unauthenticated=True)
    assert "wrong" in error.message
    missing = headers_for(provider, event, body, sign=False)
    error = refused(401, verify, provider, missing, body, SECRETS, allow_unauthenticated=True)
    assert "without" in error.message
    for secret in (SECRETS.github, SECRETS.gitlab, SECRETS.azuredevops_password, "gh-Secret", "gl-token"):
        assert secret not in error.message


@pytest.mark.parametrize(("provider", "event", "path"), SIGNED, ids=[s[0] for s in SIGNED])
def test_no_secret_configured_is_refused_unless_unauthenticated_webhooks_are_on(
    provider: str, event: str, path: Path
) -> None:
    body = path.read_bytes()
    headers = headers_for(provider, event, body)
    error = refused(401, verify, provider, headers, body, WebhookSecrets(), allow_unauthenticated=False)
    assert error.message.startswith(f"no webhook secret is configured for {provider}")
    assert "docs/webhooks.md" in error.message
    verify(provider, headers, body, WebhookSecrets(), allow_unauthenticated=True)
    # another provider's secret is not this one's
    others = WebhookSecrets(**{f: "x" for f in ("github", "gitlab", "gitea", "gogs", "generic") if f != provider})
    refused(401, verify, provider, headers, body, others, allow_unauthenticated=False)


@pytest.mark.parametrize("provider", ["github", "gitea", "gogs", "bitbucketserver", "generic"])
def test_an_hmac_over_another_body_is_refused(provider: str) -> None:
    body = b'{"ref": "refs/heads/main"}'
    headers = headers_for(provider, "push", body)
    refused(401, verify, provider, headers, body + b" ", SECRETS, allow_unauthenticated=False)
    refused(401, verify, provider, headers, b"", SECRETS, allow_unauthenticated=False)


def test_signature_spellings() -> None:
    body = b"{}"
    digest = _hmac(SECRETS.generic, body)
    for given in (digest, "sha256=" + digest, digest.upper(), " sha256=" + digest + " "):
        verify("generic", {"X-Tether-Event": "push", "X-Signature": given}, body, SECRETS, allow_unauthenticated=False)
    github = _hmac(SECRETS.github, body)
    refused(
        401, verify, "github", {"X-Hub-Signature-256": github}, body, SECRETS, allow_unauthenticated=False
    )  # prefix required
    refused(
        401, verify, "github", {"X-Hub-Signature-256": "sha1=" + github}, body, SECRETS, allow_unauthenticated=False
    )
    refused(401, verify, "github", {"X-Hub-Signature-256": "sha256="}, body, SECRETS, allow_unauthenticated=False)
    refused(
        401, verify, "github", {"X-Hub-Signature-256": "sha256=é" + github}, body, SECRETS, allow_unauthenticated=False
    )
    sha1_only = {"X-Hub-Signature": "sha1=" + _hmac(SECRETS.github, body, "sha1")}
    refused(401, verify, "github", sha1_only, body, SECRETS, allow_unauthenticated=False)


def test_bitbucket_hook_uuid_compares_without_case_or_braces() -> None:
    bare = BITBUCKET_HOOK_UUID.strip("{}")
    for given in (bare, bare.upper(), BITBUCKET_HOOK_UUID, "{" + bare.upper() + "}"):
        verify("bitbucket", {"X-Hook-UUID": given}, b"{}", SECRETS, allow_unauthenticated=False)
    refused(401, verify, "bitbucket", {"X-Hook-UUID": bare[:-1]}, b"{}", SECRETS, allow_unauthenticated=False)
    braces_free = WebhookSecrets(bitbucket=bare.upper())
    verify("bitbucket", {"X-Hook-UUID": "{" + bare + "}"}, b"{}", braces_free, allow_unauthenticated=False)


def test_azure_devops_basic_auth() -> None:
    def auth(value: str) -> dict[str, str]:
        return {"X-Vss-ActivityId": "1", "Authorization": value}

    good = base64.b64encode(b"tether:az-pass-6").decode()
    verify("azuredevops", auth("Basic " + good), b"{}", SECRETS, allow_unauthenticated=False)
    verify("azuredevops", auth("basic " + good), b"{}", SECRETS, allow_unauthenticated=False)
    for bad in (
        "Bearer " + good,
        "Basic " + base64.b64encode(b"tether:az-pass-").decode(),
        "Basic " + base64.b64encode(b"other:az-pass-6").decode(),
        "Basic " + base64.b64encode(b"tether:az-pass-6:").decode(),
        "Basic not*base64",
        "Basic",
        "Basic é",
    ):
        refused(401, verify, "azuredevops", auth(bad), b"{}", SECRETS, allow_unauthenticated=False)
    only_user = WebhookSecrets(azuredevops_username="tether")
    assert not only_user.configured("azuredevops")
    refused(401, verify, "azuredevops", auth("Basic " + good), b"{}", only_user, allow_unauthenticated=False)


def test_verify_of_an_unknown_provider_is_a_bad_request() -> None:
    refused(400, verify, "svn", {}, b"", SECRETS, allow_unauthenticated=True)


# ---------------------------------------------------------------------------------------------
# secrets


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def test_secrets_from_a_secrets_data() -> None:
    data = {
        "github": _b64("gh"),
        "gitlab": _b64("gl\n"),  # `echo ... | base64` adds a line break no provider sends
        "gitea": "not base64!",
        "gogs": 12,
        "bitbucket": _b64("{UUID}"),
        "bitbucketserver": _b64(""),
        "azuredevops-username": _b64("user"),
        "azuredevops-password": _b64("pass"),
        "generic": _b64(b"\xff\xfe-binary"),
        "unrelated": _b64("x"),
    }
    secrets = WebhookSecrets.from_secret_data(data)
    assert (secrets.github, secrets.gitlab, secrets.gitea, secrets.gogs) == ("gh", "gl", "", "")
    assert (secrets.bitbucket, secrets.bitbucketserver) == ("{UUID}", "")
    assert (secrets.azuredevops_username, secrets.azuredevops_password) == ("user", "pass")
    assert [
        p
        for p in ("github", "gitlab", "gitea", "gogs", "bitbucket", "bitbucketserver", "azuredevops", "generic")
        if secrets.configured(p)
    ] == [
        "github",
        "gitlab",
        "bitbucket",
        "azuredevops",
        "generic",
    ]
    assert secrets.configured_providers() == ("github", "gitlab", "bitbucket", "azuredevops", "generic")
    assert not secrets.configured("svn")
    # a binary HMAC key is used as its exact bytes
    body = b"{}"
    signature = hmac.new(b"\xff\xfe-binary", body, hashlib.sha256).hexdigest()
    verify("generic", {"X-Signature": signature}, body, secrets, allow_unauthenticated=False)


def test_secrets_never_raise_and_never_show() -> None:
    samples: list[Any] = [
        None,
        {},
        {"github": None},
        {"github": b"Z2g="},
        {"github": "Z2g"},
        {"github": "Z2g=\n"},
        "github",
        [1],
    ]
    for data in samples:
        assert WebhookSecrets.from_secret_data(data) == WebhookSecrets()
    secrets = WebhookSecrets.from_secret_data({"github": _b64("hunter2"), "azuredevops-password": _b64("pw-9")})
    assert "hunter2" not in repr(secrets) and "pw-9" not in repr(secrets)


# ---------------------------------------------------------------------------------------------
# malformed deliveries: 400, a short message, nothing from the body


def _github_push() -> dict[str, Any]:
    return load(GITHUB / "push" / "with-new-branch.payload.json")


def _bbs_push() -> dict[str, Any]:
    return load(LOCAL / "bitbucketserver" / "repo-refs-changed.json")


def _azure_push() -> dict[str, Any]:
    return load(PROVIDERS_DIR / "azuredevops" / "git.push.json")


def _bitbucket_push() -> dict[str, Any]:
    return load(PROVIDERS_DIR / "bitbucket" / "repo-push.json")


def _set(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = payload
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[keys[-1]]
    elif isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return payload


_DELETE = object()

MALFORMED_PAYLOADS: list[tuple[str, str, str, Any]] = [
    # (provider, event, dotted path in the payload, value put there)
    (
        "bitbucketserver",
        "repo:refs_changed",
        "repository.links.clone",
        {"href": "https://x/y.git"},
    ),  # a non-array clone-links field
    ("bitbucketserver", "repo:refs_changed", "repository.links.clone", "https://x/y.git"),
    ("bitbucketserver", "repo:refs_changed", "repository.links.clone", []),
    ("bitbucketserver", "repo:refs_changed", "repository.links.clone.0", None),  # a null in a list
    ("bitbucketserver", "repo:refs_changed", "repository.links.clone.0.href", 7),
    ("bitbucketserver", "repo:refs_changed", "repository", _DELETE),  # a missing repository
    ("bitbucketserver", "repo:refs_changed", "changes", []),
    ("bitbucketserver", "repo:refs_changed", "changes.0.refId", ["refs/heads/main"]),
    ("bitbucketserver", "repo:refs_changed", "changes.0.toHash", "--upload-pack=touch /tmp/x"),
    ("azuredevops", "git.push", "resource.refUpdates", []),  # empty refUpdates
    ("azuredevops", "git.push", "resource.refUpdates", None),
    ("azuredevops", "git.push", "resource.refUpdates.0", None),
    ("azuredevops", "git.push", "resource.refUpdates.0.name", 1),
    ("azuredevops", "git.push", "resource.repository.remoteUrl", {"href": "x"}),
    ("azuredevops", "git.push", "resource.repository.remoteUrl", _DELETE),
    ("azuredevops", "git.push", "resource", []),
    ("azuredevops", "git.push", "eventType", 5),
    ("azuredevops", "git.push", "eventType", "git.nonsense; drop table"),
    ("github", "push", "repository", _DELETE),
    ("github", "push", "repository", "https://github.com/a/b"),
    ("github", "push", "repository.html_url", 5),  # a number where a string belongs
    ("github", "push", "repository.html_url", ["https://github.com/a/b"]),
    ("github", "push", "ref", 5),
    ("github", "push", "ref", None),
    ("github", "push", "ref", "refs/heads/a..b"),
    ("github", "push", "ref", "-main"),
    ("github", "push", "after", "not-a-sha"),
    ("github", "push", "after", 6113728),
    ("github", "push", "forced", "yes"),
    ("github", "push", "commits", {"0": {}}),
    ("github", "push", "commits.0", None),
    ("github", "push", "commits.0.added", "README.md"),
    ("github", "push", "commits.0.added.0", None),
    ("github", "push", "commits.0.added.0", 1),
    ("bitbucket", "repo:push", "push.changes", []),
    ("bitbucket", "repo:push", "push.changes.0", None),
    ("bitbucket", "repo:push", "push.changes.0.new.type", "bookmark"),
    ("bitbucket", "repo:push", "push.changes.0.new.target", None),
    ("bitbucket", "repo:push", "push", None),
    ("bitbucket", "repo:push", "repository.links.html", [{"href": "x"}]),
    ("gitlab", "Push Hook", "project", "http://example.com/mike/diaspora"),
    ("gitlab", "Push Hook", "repository.git_ssh_url", 22),
    ("gitlab", "Push Hook", "total_commits_count", "4"),
    ("gitlab", "Push Hook", "project.web_url", False),
    ("gitea", "push", "total_commits", 1.0),
    ("gitea", "push", "repository.clone_url", "\nhttp://x/y.git"),
    ("gogs", "push", "repository.default_branch", 1),
    ("generic", "push", "repository.url", _DELETE),
    ("generic", "push", "repository.urls", "https://x/y"),
    ("generic", "push", "repository.urls.0", None),
    ("generic", "push", "changed_files", "apps/web"),
    ("generic", "push", "changed_files.0", None),
]
PAYLOAD_FILES = {
    "bitbucketserver": LOCAL / "bitbucketserver" / "repo-refs-changed.json",
    "azuredevops": PROVIDERS_DIR / "azuredevops" / "git.push.json",
    "github": GITHUB / "push" / "with-new-branch.payload.json",
    "bitbucket": PROVIDERS_DIR / "bitbucket" / "repo-push.json",
    "gitlab": PROVIDERS_DIR / "gitlab" / "push-event.json",
    "gitea": PROVIDERS_DIR / "gitea" / "push-event.json",
    "gogs": PROVIDERS_DIR / "gogs" / "push-event.json",
    "generic": LOCAL / "generic" / "push.json",
}


@pytest.mark.parametrize(
    ("provider", "event", "path", "value"),
    MALFORMED_PAYLOADS,
    ids=[f"{p}:{path}={'<deleted>' if v is _DELETE else json.dumps(v)[:30]}" for p, _, path, v in MALFORMED_PAYLOADS],
)
def test_a_wrong_type_anywhere_is_a_bad_request(provider: str, event: str, path: str, value: Any) -> None:
    payload = _set(load(PAYLOAD_FILES[provider]), path, value)
    body = json.dumps(payload).encode()
    # the untouched payload parses, so the 400 is the mutation's
    assert parse(
        provider,
        headers_for(provider, event, PAYLOAD_FILES[provider].read_bytes()),
        PAYLOAD_FILES[provider].read_bytes(),
    )
    error = refused(400, parse, provider, headers_for(provider, event, body), body)
    assert 0 < len(error.message) <= 120


SENTINEL = "SENTINEL-7f3a"

MALFORMED_BODIES: list[tuple[str, str, str, bytes]] = [
    # (provider, event, content type, body)
    ("github", "push", "application/json", b'{"ref": "SENTINEL-7f3a'),
    ("github", "push", "application/json", b""),
    ("github", "push", "application/json", b"[]"),
    ("github", "push", "application/json", b'"SENTINEL-7f3a"'),
    ("github", "push", "application/json", b"null"),
    ("github", "push", "application/json", b"[" * 200_000),  # deep nesting: json.loads' RecursionError
    ("github", "push", "application/json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("github", "push", "application/json", b'{"ref": "\xff\xfe SENTINEL-7f3a"}'),
    ("github", "push", "application/json", b'{"ref": "\\ud800"}'),  # a lone surrogate
    ("github", "push", "application/json", b'{"ref": "refs/heads/a\\u0000b"}'),
    ("github", "push", "application/json", b'{"n": ' + b"9" * 5000 + b"}"),  # past int()'s digit limit
    ("github", "push", "text/plain", b"{}"),  # a wrong content type
    ("github", "push", "", b"{}"),
    ("github", "push", "application/jsonx", b"{}"),
    ("gitlab", "Push Hook", "application/x-www-form-urlencoded", b"payload=%7B%7D"),  # GitLab never sends forms
    ("github", "push", "application/x-www-form-urlencoded", b"ref=SENTINEL-7f3a"),
    ("github", "push", "application/x-www-form-urlencoded", b"payload=%7B%7D&payload=%7B%7D"),
    ("github", "push", "application/x-www-form-urlencoded", b"payload=%ff%fe"),
    ("github", "push", "application/x-www-form-urlencoded", b"payload=\xff"),
    ("github", "push", "application/x-www-form-urlencoded", b"&".join(b"k%d=1" % i for i in range(100))),
    ("github", "push", "application/x-www-form-urlencoded", b"payload=" + b"%5B" * 100_000),
    ("github", "frobnicate", "application/json", b"{}"),  # an unknown event
    ("github", "", "application/json", b"{}"),
    ("gitlab", "Nope Hook", "application/json", b"{}"),
    ("gitlab", "System Hook", "application/json", b"{}"),
    ("gitea", "frobnicate", "application/json", b"{}"),
    ("gogs", "pull_request_review", "application/json", b"{}"),
    ("bitbucket", "repo:refs_changed", "application/json", b"{}"),
    ("bitbucket", "pullrequest:" + "x" * 200, "application/json", b"{}"),
    ("bitbucketserver", "repo:push", "application/json", b"{}"),
    ("bitbucketserver", "frobnicate", "application/json", b"{}"),
    ("azuredevops", "", "application/json", b'{"eventType": "SENTINEL-7f3a"}'),
    ("azuredevops", "", "application/json", b"{}"),
    ("generic", "pull", "application/json", b"{}"),
]


@pytest.mark.parametrize(
    ("provider", "event", "content_type", "body"),
    MALFORMED_BODIES,
    ids=[f"{p}:{e[:20]}:{c}:{b[:20]!r}" for p, e, c, b in MALFORMED_BODIES],
)
def test_a_malformed_delivery_is_a_bad_request_with_a_short_message(
    provider: str, event: str, content_type: str, body: bytes
) -> None:
    headers = headers_for(provider, event, body) | {"Content-Type": content_type}
    error = refused(400, parse, provider, headers, body)
    assert 0 < len(error.message) <= 120
    assert SENTINEL not in error.message and SENTINEL not in str(error)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("number", "2"),
        ("number", True),
        ("number", 2.0),
        ("pull_request", None),
        ("pull_request.head", None),
        ("pull_request.head.ref", 3),
        ("pull_request.head.sha", "not hex"),
        ("pull_request.base", ["master"]),
        ("pull_request.title", {"text": "t"}),
        ("action", None),
    ],
)
def test_a_pull_request_of_a_wrong_type_is_a_bad_request(path: str, value: Any) -> None:
    payload = _set(load(GITHUB / "pull_request" / "opened.payload.json"), path, value)
    body = json.dumps(payload).encode()
    refused(400, parse, "github", headers_for("github", "pull_request", body), body)


def test_gitlab_reads_the_repository_when_the_project_is_missing_and_refuses_neither() -> None:
    payload = load(PROVIDERS_DIR / "gitlab" / "push-event.json")
    del payload["project"]
    push = one(deliver("gitlab", "Push Hook", payload), Push)
    assert push.repo_urls == (
        "http://example.com/mike/diaspora",
        "http://example.com/mike/diaspora.git",
        "git@example.com:mike/diaspora.git",
    )
    assert push.default_branch is None
    del payload["repository"]
    body = json.dumps(payload).encode()
    refused(400, parse, "gitlab", headers_for("gitlab", "Push Hook", body), body)


def test_unknown_provider_and_missing_event_header() -> None:
    refused(400, parse, "svn", {"Content-Type": "application/json"}, b"{}")
    refused(400, parse, "github", {"Content-Type": "application/json"}, b"{}")
    refused(400, parse, "bitbucketserver", {"Content-Type": "application/json"}, b"{}")


def test_event_names_are_not_case_sensitive_and_content_type_may_carry_a_charset() -> None:
    body = (GITHUB / "push" / "with-new-branch.payload.json").read_bytes()
    headers = {"X-GitHub-Event": "Push", "Content-Type": "Application/JSON; charset=UTF-8"}
    assert one(parse("github", headers, body), Push).ref == "refs/heads/master"
    headers = {"X-Gitlab-Event": "push hook", "Content-Type": "application/json"}
    assert one(parse("gitlab", headers, (PROVIDERS_DIR / "gitlab" / "push-event.json").read_bytes()), Push)
