"""The placeholder grammar and resolution rules, on plain data (an in-memory backend)."""

from __future__ import annotations

import base64

import pytest

from tether.secrets import (
    Placeholder,
    PlaceholderError,
    Redactor,
    SecretResolutionError,
    check_entry_path,
    extract,
    find,
    resolve_secrets,
)
from tether.secrets.passbackend import EntryNotFound


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<pass:db/creds>", Placeholder("db/creds")),
        ("<pass:db/creds#password>", Placeholder("db/creds", "password")),
        ("<pass:db/creds#password | base64>", Placeholder("db/creds", "password", "base64")),
        ("<pass:db/creds#password|base64>", Placeholder("db/creds", "password", "base64")),
        ("<pass:db/creds |base64 >", Placeholder("db/creds", None, "base64")),
        ("<pass:api#API key>", Placeholder("api", "API key")),
        ("<pass:team.a/svc_1-x@prod>", Placeholder("team.a/svc_1-x@prod")),
    ],
)
def test_parse(text: str, expected: Placeholder) -> None:
    [found] = find(text)
    assert found.placeholder == expected
    assert (found.start, found.end) == (0, len(text))


def test_several_placeholders_inside_longer_text() -> None:
    text = "postgres://<pass:db#user>:<pass:db#password>@db:5432/app"
    assert [f.placeholder for f in find(text)] == [Placeholder("db", "user"), Placeholder("db", "password")]
    assert find("no placeholders, just <html> and pass:word") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<pass:>", "malformed"),
        ("<pass:db", "malformed"),
        ("<pass:db#>", "empty key"),
        ("<pass:db | rot13>", "unknown filter 'rot13'"),
        ("<pass:../etc/passwd>", "'..'"),
        ("<pass:/abs>", "absolute"),
        ("<pass:-n>", "starts with '-'"),
        ("<pass:a//b>", "empty segment"),
        ("<pass:a/>", "empty segment"),
        ("<pass:a/./b>", "'.'"),
    ],
)
def test_bad_placeholders_are_errors(text: str, message: str) -> None:
    with pytest.raises(PlaceholderError, match=message):
        find(text)


def test_entry_path_checks() -> None:
    assert check_entry_path("a/b-c/d.e") == "a/b-c/d.e"
    for bad in ("", "a/../b", "..", "/a", "-a", "a\nb", "a//b"):
        with pytest.raises(PlaceholderError):
            check_entry_path(bad)


def test_extract() -> None:
    content = "s3cret pass\nusername: app\npassword:  with: colon  \nusername: second\n"
    assert extract(content, None) == "s3cret pass"
    assert extract(content, "username") == "app"
    assert extract(content, "password") == "with: colon"
    assert extract(content, "missing") is None
    assert extract("\nkey: v\n", None) is None
    assert extract("crlf\r\nk: v\r\n", None) == "crlf"


class MemoryBackend:
    def __init__(self, entries: dict[str, str], commit: str | None = "c0ffee") -> None:
        self.entries = entries
        self.commit = commit
        self.reads: list[str] = []

    async def show(self, path: str) -> str:
        self.reads.append(path)
        if path not in self.entries:
            raise EntryNotFound(f"secret entry {path!r} not found in the password store")
        return self.entries[path]

    async def store_commit(self) -> str | None:
        return self.commit


async def test_resolution_on_plain_data() -> None:
    backend = MemoryBackend({"db": "pw-canary-1\nuser: app\n", "tls": "CERTDATA\n"})
    objects = [
        {
            "kind": "Deployment",
            "metadata": {"name": "web", "<pass:db>": "key untouched"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "env": [
                                    {"name": "A", "value": "x"},
                                    {"name": "DSN", "value": "pg://<pass:db#user>:<pass:db>@h"},
                                ]
                            }
                        ]
                    }
                }
            },
        },
        {
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            "data": {
                "pw": "<pass:db | base64>",
                "tls.crt": base64.b64encode(b"-----\n<pass:tls>\n-----\n").decode(),
                "plain": base64.b64encode(b"no placeholder").decode(),
            },
        },
    ]
    before = repr(objects)
    redactor = Redactor()
    result = await resolve_secrets(objects, backend, app="web", redactor=redactor)
    assert repr(objects) == before
    env = result.objects[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[1]["value"] == "pg://app:pw-canary-1@h"
    assert "<pass:db>" in result.objects[0]["metadata"]
    data = result.objects[1]["data"]
    assert base64.b64decode(data["pw"]) == b"pw-canary-1"
    assert base64.b64decode(data["tls.crt"]) == b"-----\nCERTDATA\n-----\n"
    assert data["plain"] == objects[1]["data"]["plain"]
    assert result.usage.entries == frozenset({"db", "tls"})
    assert result.usage.store_commit == "c0ffee"
    assert sorted(backend.reads) == ["db", "tls"]  # each entry read once per pass
    assert "pw-canary-1" not in redactor.redact(f"dsn={env[1]['value']} b64={data['pw']} {data['tls.crt']}")


async def test_no_placeholders_reads_nothing() -> None:
    backend = MemoryBackend({})
    result = await resolve_secrets([{"kind": "ConfigMap", "data": {"a": "b"}}], backend, app="a", redactor=Redactor())
    assert result.usage.entries == frozenset() and result.usage.store_commit is None
    assert backend.reads == []


async def test_errors_name_app_entry_object_field_and_source() -> None:
    backend = MemoryBackend({"db": "pw-canary-2\n"})
    objects = [
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "<pass:db>"}},
        {
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"template": {"spec": {"containers": [{"env": [{}, {"value": "<pass:db#token>"}]}]}}},
        },
    ]
    with pytest.raises(SecretResolutionError) as caught:
        await resolve_secrets(objects, backend, app="shop", redactor=Redactor(), sources=["cm.yaml", "deploy.yaml"])
    message = str(caught.value)
    assert message == (
        "app 'shop': secret entry 'db' has no key 'token' (needed by Deployment prod/web, "
        "field spec.template.spec.containers[0].env[1].value, from deploy.yaml)"
    )
    with pytest.raises(
        SecretResolutionError, match=r"app 'shop': secret entry 'nope' not found .*ConfigMap c, field data\[\"a\.b\"\]"
    ):
        await resolve_secrets(
            [{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a.b": "<pass:nope>"}}],
            backend,
            app="shop",
            redactor=Redactor(),
        )
    with pytest.raises(
        SecretResolutionError, match="app 'shop': malformed secret placeholder .*ConfigMap c, field data.x"
    ):
        await resolve_secrets(
            [{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "<pass:oops"}}],
            backend,
            app="shop",
            redactor=Redactor(),
        )
