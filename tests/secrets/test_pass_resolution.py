"""Secrets resolution against a real pass store (GnuPG-encrypted entries, git-tracked)."""

from __future__ import annotations

import base64
import logging
import os

import pytest
import structlog

from tether import log as tether_log
from tether.devcluster.passstore import PassStore
from tether.errors import TetherError
from tether.resource import ResourceKey
from tether.secrets import (
    REDACTOR,
    EntryNotFound,
    PassBackend,
    Redactor,
    SecretResolutionError,
    resolve_secrets,
)

CANARY_PW = "canary-pw-4b1d0c"
CANARY_TOKEN = "canary-token-9e8f7a"
CANARY_USER = "canary-user-33aa"


@pytest.fixture(scope="module")
def backend(pass_store: PassStore) -> PassBackend:
    pass_store.insert("resolve/db/creds", f"{CANARY_PW}\nusername: {CANARY_USER}\ntoken:  {CANARY_TOKEN}  \n")
    pass_store.insert("resolve/api", "canary-api-5c5c\n")
    return PassBackend(pass_store.store_dir, pass_store.gnupg_home, environ={"HOME": str(pass_store.store_dir.parent)})


def secret(data: dict[str, str] | None = None, string_data: dict[str, str] | None = None) -> dict:
    obj: dict = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"}}
    if data is not None:
        obj["data"] = data
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


async def test_first_line_key_and_base64(backend: PassBackend, pass_store: PassStore) -> None:
    objects = [
        secret(
            string_data={"password": "<pass:resolve/db/creds>", "user": "<pass:resolve/db/creds#username>"},
            data={"token": "<pass:resolve/db/creds#token | base64>"},
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"url": "https://<pass:resolve/db/creds#username>@api/?k=<pass:resolve/api>"},
        },
    ]
    redactor = Redactor()
    result = await resolve_secrets(objects, backend, app="shop", redactor=redactor)
    out = result.objects
    assert out[0]["stringData"] == {"password": CANARY_PW, "user": CANARY_USER}
    assert base64.b64decode(out[0]["data"]["token"]).decode() == CANARY_TOKEN
    assert out[1]["data"]["url"] == f"https://{CANARY_USER}@api/?k=canary-api-5c5c"
    assert objects[0]["stringData"]["password"] == "<pass:resolve/db/creds>"
    assert result.usage.entries == frozenset({"resolve/db/creds", "resolve/api"})
    assert result.usage.store_commit == pass_store.commit == await backend.store_commit()
    for canary in (CANARY_PW, CANARY_TOKEN, CANARY_USER, "canary-api-5c5c"):
        assert canary not in redactor.redact(str(out))


async def test_placeholders_inside_base64_secret_data(backend: PassBackend) -> None:
    """As kustomize's secretGenerator writes it: the whole file, placeholders included, base64-encoded."""
    env_file = "DB_USER=<pass:resolve/db/creds#username>\nDB_PASSWORD=<pass:resolve/db/creds>\n"
    objects = [
        secret(
            data={".env": base64.b64encode(env_file.encode()).decode(), "other": base64.b64encode(b"static").decode()}
        )
    ]
    redactor = Redactor()
    result = await resolve_secrets(objects, backend, app="shop", redactor=redactor)
    decoded = base64.b64decode(result.objects[0]["data"][".env"]).decode()
    assert decoded == f"DB_USER={CANARY_USER}\nDB_PASSWORD={CANARY_PW}\n"
    assert result.objects[0]["data"]["other"] == objects[0]["data"]["other"]
    assert redactor.redact(result.objects[0]["data"][".env"]) == "********"


async def test_missing_entry_error_names_everything_but_the_value(backend: PassBackend) -> None:
    objects = [
        secret(string_data={"password": "<pass:resolve/db/creds>"}),
        {
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"env": [{"name": "A", "value": "1"}, {"name": "K", "value": "<pass:resolve/missing>"}]}
                        ]
                    }
                }
            },
        },
    ]
    with pytest.raises(SecretResolutionError) as caught:
        await resolve_secrets(objects, backend, app="shop", redactor=Redactor(), sources=["secret.yaml", "web.yaml"])
    message = str(caught.value)
    assert "app 'shop'" in message and "'resolve/missing'" in message and "not found" in message
    assert "Deployment prod/web" in message and "spec.template.spec.containers[0].env[1].value" in message
    assert "web.yaml" in message
    assert CANARY_PW not in message


async def test_missing_key_error_names_everything_but_the_value(backend: PassBackend) -> None:
    objects = [secret(data={"pw": "<pass:resolve/db/creds#nokey | base64>"})]
    with pytest.raises(SecretResolutionError) as caught:
        await resolve_secrets(objects, backend, app="shop", redactor=Redactor())
    message = str(caught.value)
    assert message == (
        "app 'shop': secret entry 'resolve/db/creds' has no key 'nokey' (needed by Secret prod/db, field data.pw)"
    )
    for canary in (CANARY_PW, CANARY_TOKEN, CANARY_USER):
        assert canary not in message


async def test_traversal_and_directories_are_refused_before_pass_runs(
    backend: PassBackend, pass_store: PassStore, tmp_path
) -> None:
    outside = tmp_path / "outside.gpg"
    outside.write_bytes((pass_store.store_dir / "resolve" / "api.gpg").read_bytes())
    os.symlink(outside, pass_store.store_dir / "resolve" / "escape.gpg")
    try:
        with pytest.raises(EntryNotFound, match="'resolve/db' is a directory"):
            await backend.show("resolve/db")
        with pytest.raises(TetherError, match="outside the password store"):
            await backend.show("resolve/escape")
        for bad in ("../x", "resolve/../resolve/api", "/etc/passwd", "-h", "resolve//api", ""):
            with pytest.raises(TetherError):
                await backend.show(bad)
        with pytest.raises(SecretResolutionError, match="'resolve' is a directory"):
            await resolve_secrets(
                [secret(string_data={"x": "<pass:resolve>"})], backend, app="shop", redactor=Redactor()
            )
    finally:
        (pass_store.store_dir / "resolve" / "escape.gpg").unlink()


async def test_store_commit_moves_with_the_store(backend: PassBackend, pass_store: PassStore) -> None:
    before = await backend.store_commit()
    pass_store.insert("resolve/rotating", "v1-canary\n")
    after = await backend.store_commit()
    assert before != after == pass_store.commit
    not_git = PassBackend(pass_store.store_dir / "resolve", pass_store.gnupg_home)
    assert await not_git.store_commit() is None


async def test_backend_finds_the_store_like_pass(pass_store: PassStore) -> None:
    found = PassBackend(environ={"HOME": "/nonexistent", **pass_store.env})
    assert found.store_dir == pass_store.store_dir and found.gnupg_home == pass_store.gnupg_home
    assert (await found.show("resolve/api")) == "canary-api-5c5c\n"
    default = PassBackend(environ={"HOME": "/home/u"})
    assert str(default.store_dir) == "/home/u/.password-store" and str(default.gnupg_home) == "/home/u/.gnupg"


async def test_resolved_values_are_masked_in_structlog_output(backend: PassBackend, capsys) -> None:
    """Tether's own logging set-up (the one every command uses) masks resolved values."""
    result = await resolve_secrets(
        [secret(string_data={"password": "<pass:resolve/db/creds#token>"})], backend, app="shop", redactor=REDACTOR
    )
    tether_log.configure(logging.INFO, json_output=True)
    try:
        structlog.get_logger("test").info("applied", obj=result.objects[0], note=f"token is {CANARY_TOKEN}")
    finally:
        structlog.reset_defaults()
    text = capsys.readouterr().err
    assert CANARY_TOKEN not in text and "********" in text


async def test_pass_show_has_a_timeout(pass_store: PassStore) -> None:
    slow = PassBackend(
        pass_store.store_dir, pass_store.gnupg_home, environ={"HOME": str(pass_store.store_dir.parent)}, timeout=0.001
    )
    with pytest.raises(
        TetherError, match=r"cannot read secret entry 'resolve/api': pass show resolve/api: timed out"
    ) as caught:
        await slow.show("resolve/api")
    assert "canary-api" not in str(caught.value)


async def test_resolution_records_the_pointer_of_every_field_it_filled(backend: PassBackend) -> None:
    """Displays mask these fields on both sides of a diff, whatever value the live side holds."""
    env_file = "K=<pass:resolve/api>\n"
    objects = [
        secret(
            string_data={"pass/word": "<pass:resolve/db/creds>"},
            data={".env": base64.b64encode(env_file.encode()).decode(), "plain": base64.b64encode(b"x").decode()},
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"note": "user <pass:resolve/db/creds#username>"}},
            "spec": {"template": {"spec": {"containers": [{"env": [{"name": "A", "value": "<pass:resolve/api>"}]}]}}},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}, "data": {"a": "b"}},
    ]
    redactor = Redactor()
    result = await resolve_secrets(objects, backend, app="shop", redactor=redactor)
    secret_key = ResourceKey("", "Secret", "prod", "db")
    web_key = ResourceKey("apps", "Deployment", "", "web")
    assert result.usage.fields == {
        secret_key: {"/stringData/pass~1word", "/data/.env"},
        web_key: {"/metadata/annotations/note", "/spec/template/spec/containers/0/env/0/value"},
    }
    assert redactor.fields.of(secret_key) == result.usage.fields[secret_key]
    assert redactor.fields.of(ResourceKey("apps", "Deployment", "dest", "web")) == result.usage.fields[web_key]
    assert redactor.fields.of(ResourceKey("", "ConfigMap", "", "plain")) == frozenset()
