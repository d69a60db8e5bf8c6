"""The git fixture servers are real: stock git clones, fetches and pushes against them."""

from __future__ import annotations

import gzip
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tether.devcluster.gitserver import GitHttpServer


def _git(server: GitHttpServer, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    env = server.git_env()
    env.update(extra)
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_anonymous_clone_sees_commits_and_tags(
    git_server: GitHttpServer, unique_repo_name: str, tmp_path: Path
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    first = repo.commit("first", {"app/deploy.yaml": "kind: Deployment\n"})
    repo.tag("v1.0.0", "release 1.0.0")
    second = repo.commit("second", {"app/deploy.yaml": None, "README": "hi\n"})

    done = _git(git_server, "clone", "--quiet", git_server.url_for(unique_repo_name), str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert _git(git_server, "rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == second
    assert (tmp_path / "c" / "README").read_text() == "hi\n"
    assert not (tmp_path / "c" / "app").exists()
    peeled = _git(git_server, "rev-parse", "v1.0.0^{commit}", cwd=tmp_path / "c").stdout.strip()
    assert peeled == first


def test_fetch_of_a_bare_commit_id_is_allowed(git_server: GitHttpServer, unique_repo_name: str, tmp_path: Path) -> None:
    repo = git_server.create_repo(unique_repo_name)
    old = repo.commit("old", {"f": "1"})
    repo.commit("new", {"f": "2"})
    subprocess.run(["git", "init", "--quiet", "--bare", str(tmp_path / "b")], check=True, env=git_server.git_env())
    done = _git(git_server, "fetch", "--depth", "1", git_server.url_for(unique_repo_name), old, cwd=tmp_path / "b")
    assert done.returncode == 0, done.stderr
    assert _git(git_server, "cat-file", "-t", old, cwd=tmp_path / "b").stdout.strip() == "commit"


def test_large_push_uses_chunked_transfer_encoding(git_server: GitHttpServer, unique_repo_name: str) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("empty")
    (repo.path / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    repo.git("add", "blob.bin")
    repo.git("commit", "--quiet", "-m", "big")
    done = _git(git_server, "push", "origin", "HEAD:refs/heads/main", cwd=repo.path, GIT_TRACE_CURL="1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Transfer-Encoding: chunked" in done.stderr
    remote = _git(git_server, "ls-remote", git_server.url_for(unique_repo_name), "refs/heads/main").stdout
    assert remote.split()[0] == repo.head


def test_gzip_request_body_passes_through(git_server: GitHttpServer, unique_repo_name: str) -> None:
    repo = git_server.create_repo(unique_repo_name)
    sha = repo.commit("one", {"f": "x"})

    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    body = pkt(f"want {sha}\n") + b"0000" + pkt("done\n")
    request = urllib.request.Request(
        git_server.url_for(unique_repo_name) + "/git-upload-pack",
        data=gzip.compress(body),
        headers={"Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert b"PACK" in response.read(1 << 20)


def test_clone_with_basic_auth_via_askpass(
    git_server_auth: GitHttpServer, unique_repo_name: str, tmp_path: Path
) -> None:
    repo = git_server_auth.create_repo(unique_repo_name)
    sha = repo.commit("one", {"f": "x"})
    url = git_server_auth.url_for(unique_repo_name)
    assert git_server_auth.password not in url
    done = _git(git_server_auth, "clone", "--quiet", url, str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert _git(git_server_auth, "rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == sha


def test_wrong_or_missing_password_is_refused(git_server_auth: GitHttpServer, unique_repo_name: str) -> None:
    git_server_auth.create_repo(unique_repo_name).commit("one")
    url = git_server_auth.url_for(unique_repo_name)
    wrong = _git(git_server_auth, "ls-remote", url, TETHER_GIT_PASSWORD="not-the-password")
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + "/info/refs?service=git-upload-pack", timeout=30)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic ")


def test_oversized_body_is_refused(tmp_path: Path) -> None:
    with GitHttpServer(tmp_path / "root", max_body_bytes=1024) as server:
        server.create_repo("r")
        request = urllib.request.Request(
            server.url_for("r") + "/git-upload-pack",
            data=b"0" * 4096,
            headers={"Content-Type": "application/x-git-upload-pack-request"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 413


def test_create_repo_imports_a_directory(git_server: GitHttpServer, unique_repo_name: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "apps" / "web").mkdir(parents=True)
    (source / "apps" / "web" / "deploy.yaml").write_text("kind: Deployment\n")
    repo = git_server.create_repo(unique_repo_name, from_dir=source)
    listed = _git(git_server, "ls-tree", "-r", "--name-only", repo.head, cwd=repo.path).stdout.split()
    assert listed == ["apps/web/deploy.yaml"]
    remote = _git(git_server, "ls-remote", git_server.url_for(unique_repo_name), "HEAD").stdout.split()
    assert remote == [repo.head, "HEAD"]
