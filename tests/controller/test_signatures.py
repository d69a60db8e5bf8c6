"""Projects with signatureKeys through the running controller: real GnuPG keys, commits signed with git, and
the public keys in ConfigMap tether-gpg-keys. Only a commit signed with a listed key syncs; nothing else is applied."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import API, application, eventually
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer, LocalRepo

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Signer:
    """A GnuPG home with one signing key, and a gpg wrapper git can use as ``gpg.program``."""

    fingerprint: str
    armored: str
    program: Path

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]


def make_signer(directory: Path, name: str) -> Signer:
    home = directory / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}

    def gpg(*args: str) -> str:
        done = subprocess.run(
            ["gpg", "--batch", *args], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    gpg("--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.com>", "ed25519", "sign", "never")
    fingerprint = next(
        line.split(":")[9] for line in gpg("--with-colons", "--list-keys").splitlines() if line.startswith("fpr:")
    )
    program = directory / f"gpg-{name}"
    program.write_text(f'#!/bin/sh\nGNUPGHOME="{home}" exec gpg "$@"\n')
    program.chmod(0o755)
    return Signer(fingerprint, gpg("--armor", "--export", fingerprint), program)


@pytest.fixture
def signers() -> Iterator[Callable[[str], Signer]]:
    """Makes signers in a short temporary directory (gpg-agent's socket path has a length limit, which a
    deep pytest path exceeds); their agents, started to sign, are stopped and the directory removed after."""
    directory = Path(tempfile.mkdtemp(prefix="tsig-"))
    made: list[str] = []

    def make(name: str) -> Signer:
        made.append(name)
        return make_signer(directory, name)

    yield make
    for name in made:
        env = {"GNUPGHOME": str(directory / f"gnupg-{name}"), "PATH": "/usr/bin:/bin"}
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, timeout=30, check=True)
    shutil.rmtree(directory, ignore_errors=True)


def signed_commit(repo: LocalRepo, signer: Signer, message: str, files: dict[str, str]) -> str:
    for rel, content in files.items():
        (repo.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / rel).write_text(content)
    repo.git("add", "--all")
    repo.git(
        "-c",
        f"gpg.program={signer.program}",
        "-c",
        f"user.signingkey={signer.fingerprint}",
        "commit",
        "-q",
        "-S",
        "-m",
        message,
    )
    repo.git("push", "--quiet", "origin", f"HEAD:refs/heads/{repo.git('rev-parse', '--abbrev-ref', 'HEAD')}")
    return repo.head


def comparison_error(s: dict[str, Any]) -> str:
    return next((c["message"] for c in s.get("conditions") or [] if c.get("type") == "ComparisonError"), "")


async def test_only_commits_signed_with_a_listed_key_sync(
    controller: Controller,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    signers: Callable[[str], Signer],
) -> None:
    trusted, stranger = signers("trusted"), signers("stranger")
    keys = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tether-gpg-keys", "namespace": namespace}}
    await kube.apply({**keys, "data": {trusted.key_id: trusted.armored}})
    project = {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "signatureKeys": [{"keyID": trusted.key_id}],
    }
    await kube.apply(
        {"apiVersion": API, "kind": "Project", "metadata": {"name": "signed", "namespace": namespace}, "spec": project}
    )
    repo = git_server.create_repo(unique_repo_name)
    first = signed_commit(repo, trusted, "v1", {"app/a.yaml": configmap("a", "v1")})
    await kube.apply(
        application("web", namespace, repo.url, "app", namespace, project="signed", syncPolicy={"automated": {}})
    )
    status = await eventually(lambda: app_status(kube, namespace, "web"), synced_healthy, timeout=30)
    assert status["sync"]["revision"] == first

    async def value() -> str:
        return (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"]

    unsigned = repo.commit("v2", files={"app/a.yaml": configmap("a", "v2")})
    error = comparison_error(await eventually(lambda: app_status(kube, namespace, "web"), comparison_error, timeout=30))
    assert f"revision {unsigned[:12]} is not signed" in error and error.startswith("app 'web': spec.source: ")
    assert await value() == "v1"

    foreign = signed_commit(repo, stranger, "v3", {"app/a.yaml": configmap("a", "v3")})
    status = await eventually(
        lambda: app_status(kube, namespace, "web"), lambda s: foreign[:12] in comparison_error(s), timeout=30
    )
    assert "not in ConfigMap tether-gpg-keys" in comparison_error(status) and stranger.key_id in comparison_error(
        status
    )
    assert await value() == "v1"

    # the stranger's key added to the ConfigMap, but not to the project: still refused, as not one of its keys
    await kube.apply({**keys, "data": {trusted.key_id: trusted.armored, stranger.key_id: stranger.armored}})
    await eventually(
        lambda: app_status(kube, namespace, "web"),
        lambda s: "not one of the project's signatureKeys" in comparison_error(s),
        timeout=30,
    )
    assert await value() == "v1"

    last = signed_commit(repo, trusted, "v4", {"app/a.yaml": configmap("a", "v4")})
    status = await eventually(
        lambda: app_status(kube, namespace, "web"),
        lambda s: (s.get("sync") or {}).get("revision") == last and synced_healthy(s),
        timeout=30,
    )
    assert not comparison_error(status) and await value() == "v4"
