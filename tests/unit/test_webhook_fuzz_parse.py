"""Hypothesis: mutated real payloads, for every provider, never make detect/verify/parse raise anything
but ``WebhookError`` (400 or 401), and whatever parse returns is well-typed.

Mutations start from every payload of test_webhook_providers.CASES (the corpora in
../shared/corpora, plus our Bitbucket Server and generic fixtures): structural ones on the
decoded JSON (keys dropped, nulls, types flipped, values swapped between fields, nulls put in
lists, lists emptied), byte-level ones (truncated, bytes changed or inserted, random bytes, deep
nesting), and header ones (content type, event name, signature, a header dropped). Bodies are
signed with the right secret, so the checks pass and parsing is reached, as in the receiver.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_webhook_providers import CASES, SECRETS, headers_for
from tether.server.webhook import (
    PROVIDERS,
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

# Per provider; the receiver's test sends 10,000 more mutated deliveries through the whole server.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Path_ = tuple[str | int, ...]

# The fields each provider's parser reads ("*" is any list index): mutations aim at these (or
# add them where absent) more than half the time, and anywhere in the payload the rest.
_HUB_REPO = "repository repository.html_url repository.clone_url repository.ssh_url repository.git_url repository.default_branch"
_COMMITS = "commits commits.* commits.*.added commits.*.added.* commits.*.modified commits.*.modified.* commits.*.removed commits.*.removed.*"
_HUB_PR = "action number pull_request pull_request.number pull_request.title"
_GITLAB_REPO = (
    "project project.web_url project.git_http_url project.git_ssh_url project.http_url project.ssh_url project.url "
    "project.default_branch repository repository.homepage repository.git_http_url repository.git_ssh_url repository.url"
)
_BITBUCKET_SIDE = "type name target target.hash"
READ_PATTERNS: dict[str, frozenset[str]] = {
    provider: frozenset(patterns.split())
    for provider, patterns in {
        "github": f"{_HUB_REPO} ref before after forced {_COMMITS} {_HUB_PR} pull_request.head pull_request.head.ref "
        "pull_request.head.sha pull_request.base pull_request.base.ref",
        "gitea": f"{_HUB_REPO} ref before after forced total_commits {_COMMITS} {_HUB_PR} pull_request.head "
        "pull_request.head.ref pull_request.head.sha pull_request.base pull_request.base.ref",
        "gogs": f"{_HUB_REPO} ref before after forced {_COMMITS} {_HUB_PR} pull_request.head_branch pull_request.base_branch",
        "gitlab": f"{_GITLAB_REPO} ref before after total_commits_count {_COMMITS} event_name object_kind "
        "object_attributes object_attributes.iid object_attributes.action object_attributes.title "
        "object_attributes.source_branch object_attributes.target_branch object_attributes.last_commit "
        "object_attributes.last_commit.id",
        "bitbucket": "repository repository.links repository.links.html repository.links.html.href repository.mainbranch "
        "repository.mainbranch.name push push.changes push.changes.* push.changes.*.new push.changes.*.old "
        "push.changes.*.forced "
        + " ".join(f"push.changes.*.{side}.{field}" for side in ("new", "old") for field in _BITBUCKET_SIDE.split()),
        "bitbucketserver": "repository repository.links repository.links.clone repository.links.clone.* "
        "repository.links.clone.*.href repository.links.self repository.links.self.* repository.links.self.*.href "
        "repository.defaultBranch repository.defaultBranch.id changes changes.* changes.*.refId changes.*.ref "
        "changes.*.ref.id changes.*.fromHash changes.*.toHash",
        "azuredevops": "eventType resource resource.repository resource.repository.remoteUrl resource.repository.sshUrl "
        "resource.repository.webUrl resource.repository.defaultBranch resource.refUpdates resource.refUpdates.* "
        "resource.refUpdates.*.name resource.refUpdates.*.oldObjectId resource.refUpdates.*.newObjectId",
        "generic": "repository repository.url repository.urls repository.urls.* ref before after changed_files "
        "changed_files.* default_branch forced",
    }.items()
}

EVENTS = {
    "github": ["push", "ping", "pull_request", "create", "issues"],
    "gitlab": ["Push Hook", "Tag Push Hook", "Merge Request Hook", "System Hook", "Note Hook"],
    "gitea": ["push", "pull_request", "ping", "create"],
    "gogs": ["push", "pull_request", "ping", "release"],
    "bitbucket": ["repo:push", "pullrequest:created", "repo:fork"],
    "bitbucketserver": ["repo:refs_changed", "diagnostics:ping", "pr:opened", "repo:modified"],
    "azuredevops": ["git.push"],
    "generic": ["push", "ping"],
}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
    "multipart/form-data; boundary=x",
]
NASTY_STRINGS = [
    "",
    "0" * 40,
    "0" * 64,
    "--upload-pack=touch /tmp/pwned",
    "refs/heads/../../etc",
    "refs/heads/a b",
    "main",
    "refs/tags/v1",
    "\x00",
    "\ud800",
    "é",
    "https://example.com/o/r.git",
    "git@example.com:o/r.git",
    "-",
    "{",
    "a" * 300,
]
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=12),
)
JSON_VALUES = st.one_of(
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["href", "name", "ref", "sha", "id", "x"]), JSON_SCALARS, max_size=3),
)

CASES_BY_PROVIDER: dict[str, list[tuple[str, bytes]]] = {}
for _provider, _event, _path in CASES:
    CASES_BY_PROVIDER.setdefault(_provider, []).append((_event, _path.read_bytes()))


def _pattern(path: Path_) -> str:
    return ".".join("*" if isinstance(key, int) else key for key in path)


@cache
def _paths(provider: str, body: bytes) -> tuple[tuple[Path_, ...], tuple[Path_, ...]]:
    """(every path in the decoded body, the paths the provider's parser reads, present or not)."""
    every: list[Path_] = []

    def walk(node: Any, path: Path_) -> None:
        every.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(json.loads(body), ())
    read = [path for path in every if _pattern(path) in READ_PATTERNS[provider]]
    present = {_pattern(path) for path in read}
    # fields the parser reads that this payload lacks: added at list index 0
    read += [
        tuple(0 if key == "*" else key for key in pattern.split("."))
        for pattern in sorted(READ_PATTERNS[provider] - present)
    ]
    return tuple(every), tuple(read)


def _node(root: Any, path: Path_) -> Any:
    node = root
    for key in path:
        in_dict = isinstance(node, dict) and isinstance(key, str) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not (in_dict or in_list):
            return _MISSING
        node = node[key]
    return node


_MISSING = object()


def _mutate_json(data: st.DataObject, provider: str, body: bytes) -> bytes:
    root: Any = json.loads(body)
    every, read = _paths(provider, body)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        aimed = data.draw(st.integers(0, 2), label="aimed") > 0
        path = data.draw(st.sampled_from(read if aimed else every), label="path")
        if not path:
            root = data.draw(JSON_VALUES, label="root")
            continue
        parent, key = _node(root, path[:-1]), path[-1]
        if isinstance(parent, dict) and isinstance(key, str) and key not in parent:
            parent[key] = data.draw(JSON_VALUES, label="added")  # a field the parser reads, absent here
            continue
        if parent is _MISSING or _node(root, path) is _MISSING:
            continue
        current = parent[key]
        op = data.draw(
            st.sampled_from(["delete", "null", "value", "wrap_list", "wrap_dict", "null_in_list", "empty", "swap"]),
            label="op",
        )
        if op == "delete":
            del parent[key]
        elif op == "null":
            parent[key] = None
        elif op == "value":
            parent[key] = data.draw(JSON_VALUES, label="value")
        elif op == "wrap_list":
            parent[key] = [current]
        elif op == "wrap_dict":
            parent[key] = {"href": current}
        elif op == "null_in_list" and isinstance(current, list):
            current.insert(data.draw(st.integers(0, len(current)), label="at"), None)
        elif op == "empty" and isinstance(current, list | dict):
            current.clear()
        elif op == "swap":  # another field's value: the real shape of the wrong thing
            other = _node(root, data.draw(st.sampled_from(every), label="other"))
            if other is not _MISSING and other is not parent:
                parent[key] = json.loads(json.dumps(other))
    return json.dumps(root).encode()


def _mutate_bytes(data: st.DataObject, body: bytes) -> bytes:
    op = data.draw(st.sampled_from(["truncate", "flip", "insert", "random", "deep"]), label="byte op")
    if op == "truncate":
        return body[: data.draw(st.integers(0, len(body)), label="cut")]
    if op == "flip":
        out = bytearray(body)
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            out[data.draw(st.integers(0, len(out) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
        return bytes(out)
    if op == "insert":
        at = data.draw(st.integers(0, len(body)), label="at")
        return body[:at] + data.draw(st.binary(min_size=1, max_size=16), label="inserted") + body[at:]
    if op == "random":
        return data.draw(st.binary(max_size=512), label="random body")
    depth = data.draw(st.integers(1, 3000), label="depth")
    opener, closer = data.draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]), label="nesting")
    return opener * depth + body + closer * data.draw(st.sampled_from([depth, 0]), label="closed")


def _mutate_headers(data: st.DataObject, provider: str, headers: dict[str, str]) -> dict[str, str]:
    headers = dict(headers)
    for _ in range(data.draw(st.integers(1, 3), label="header mutations")):
        op = data.draw(st.sampled_from(["content_type", "event", "drop", "garble", "foreign"]), label="header op")
        if op == "content_type":
            headers["Content-Type"] = data.draw(st.sampled_from(CONTENT_TYPES) | st.text(max_size=30), label="ctype")
        elif op == "event":
            name = {
                "github": "X-GitHub-Event",
                "gitlab": "X-Gitlab-Event",
                "gitea": "X-Gitea-Event",
                "gogs": "X-Gogs-Event",
            }
            header = name.get(provider, "X-Tether-Event" if provider == "generic" else "X-Event-Key")
            headers[header] = data.draw(
                st.sampled_from([e for events in EVENTS.values() for e in events]) | st.text(max_size=30), label="event"
            )
        elif op == "drop" and headers:
            del headers[data.draw(st.sampled_from(sorted(headers)), label="dropped")]
        elif op == "garble" and headers:
            headers[data.draw(st.sampled_from(sorted(headers)), label="garbled")] = data.draw(
                st.text(max_size=80), label="v"
            )
        elif op == "foreign":
            foreign = data.draw(
                st.sampled_from(
                    [
                        "X-Gitea-Event",
                        "X-Gogs-Event",
                        "X-GitHub-Event",
                        "X-Hook-UUID",
                        "X-Event-Key",
                        "X-Vss-ActivityId",
                    ]
                ),
                label="foreign",
            )
            headers[foreign] = data.draw(st.text(max_size=20), label="foreign value")
    return headers


_HEX = re.compile(r"[0-9a-f]{4,64}")


def _check_events(provider: str, events: Any) -> None:
    assert isinstance(events, list) and events
    for event in events:
        assert isinstance(event, Push | PullRequest | Ping | Ignored)
        assert event.provider == provider
        if isinstance(event, Push | PullRequest):
            assert isinstance(event.repo_urls, tuple) and event.repo_urls
            assert all(isinstance(url, str) and url and not url.startswith("-") for url in event.repo_urls)
        if isinstance(event, Push):
            assert event.ref.startswith("refs/") and ".." not in event.ref and " " not in event.ref
            for sha in (event.before, event.after):
                assert sha is None or (_HEX.fullmatch(sha) and sha.strip("0"))
            assert event.changed_files is None or (
                isinstance(event.changed_files, tuple) and all(isinstance(f, str) and f for f in event.changed_files)
            )
            assert event.default_branch is None or isinstance(event.default_branch, str)
            assert isinstance(event.forced, bool)
        elif isinstance(event, PullRequest):
            assert isinstance(event.number, int) and not isinstance(event.number, bool)
            assert isinstance(event.action, str) and isinstance(event.title, str)
            assert event.head_ref and event.base_ref and not event.head_ref.startswith("-")
            assert event.head_sha is None or _HEX.fullmatch(event.head_sha)
        elif isinstance(event, Ignored):
            assert isinstance(event.event, str) and 0 < len(event.event) <= 100


def _deliver(provider: str, headers: dict[str, str], body: bytes) -> None:
    """detect, verify and parse: each returns or raises WebhookError, nothing else."""
    assert detect(headers) in (*PROVIDERS, None)
    for secrets, allow in ((SECRETS, False), (WebhookSecrets(), True), (WebhookSecrets(), False)):
        try:
            verify(provider, headers, body, secrets, allow_unauthenticated=allow)
        except WebhookError as error:
            assert error.status in (400, 401) and error.message
    try:
        events: list[Event] = parse(provider, headers, body)
    except WebhookError as error:
        assert error.status == 400 and 0 < len(error.message) <= 200
    else:
        _check_events(provider, events)


@pytest.mark.parametrize("provider", PROVIDERS)
@FUZZ
@given(data=st.data())
def test_mutated_real_payloads_only_ever_parse_or_raise_webhook_error(provider: str, data: st.DataObject) -> None:
    event, body = data.draw(st.sampled_from(CASES_BY_PROVIDER[provider]), label="payload")
    if data.draw(st.integers(0, 3), label="another event") == 0:  # mostly the event the payload belongs to
        event = data.draw(st.sampled_from(EVENTS[provider]), label="event")
    kind = data.draw(st.sampled_from(["json", "json", "bytes", "headers"]), label="kind")
    if kind == "json":
        body = _mutate_json(data, provider, body)
    elif kind == "bytes":
        body = _mutate_bytes(data, body)
    if provider in ("github", "gitea", "gogs") and data.draw(st.booleans(), label="as a form"):
        body = urlencode({"payload": body.decode("utf-8", "replace")}).encode()
        headers = headers_for(provider, event, body) | {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        headers = headers_for(provider, event, body)
    if kind == "headers":
        headers = _mutate_headers(data, provider, headers)
    _deliver(provider, headers, body)


HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "X-GitHub-Event",
        "X-Gitlab-Event",
        "X-Gitea-Event",
        "X-Gogs-Event",
        "X-Event-Key",
        "X-Hook-UUID",
        "X-Vss-ActivityId",
        "X-Tether-Event",
        "X-Hub-Signature-256",
        "X-Hub-Signature",
        "X-Gitlab-Token",
        "X-Gitea-Signature",
        "X-Gogs-Signature",
        "X-Signature",
        "Authorization",
    ]
) | st.text(max_size=20)


@FUZZ
@given(
    provider=st.sampled_from([*PROVIDERS, "svn", ""]),
    headers=st.dictionaries(HEADER_NAMES, st.text(max_size=60) | st.sampled_from(CONTENT_TYPES), max_size=6),
    body=st.binary(max_size=256) | st.sampled_from([b"{}", b"[]", b"null", b'{"repository": null}', b"payload=%7B%7D"]),
)
def test_random_headers_and_bodies_only_ever_parse_or_raise_webhook_error(
    provider: str, headers: dict[str, str], body: bytes
) -> None:
    _deliver(provider, headers, body)
