"""The devcluster git server announces pushes as GitHub does: real git pushes over smart HTTP,
a real HTTP receiver on loopback, and the payload checked against what git says happened."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tether.devcluster import githook
from tether.devcluster.gitserver import GitHttpServer, LocalRepo
from tether.errors import TetherError

SECRET = "webhook-secret-" + uuid.uuid4().hex
ZERO = "0" * 40


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    status: int = 202
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self) -> list[Delivery]:
        """The deliveries so far, forgotten afterwards."""
        with self.lock:
            got, self.deliveries = self.deliveries, []
        return got


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback that records every request and answers ``status``."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec = state["r"]
            with rec.lock:
                rec.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/api/webhook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _git(server: GitHttpServer, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=server.git_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done


def _clone(server: GitHttpServer, repo: LocalRepo, where: Path) -> Path:
    _git(server, "clone", "--quiet", repo.url, str(where))
    return where


def _commit(server: GitHttpServer, work: Path, message: str, files: dict[str, str | None]) -> str:
    for rel, content in files.items():
        if content is None:
            _git(server, "rm", "--quiet", rel, cwd=work)
        else:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(content)
    _git(server, "add", "--all", cwd=work)
    _git(server, "commit", "--quiet", "-m", message, cwd=work)
    return _git(server, "rev-parse", "HEAD", cwd=work).stdout.strip()


def _check_github_delivery(delivery: Delivery, secret: str | None) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    assert delivery.path == "/api/webhook"
    assert headers["content-type"] == "application/json"
    assert headers["x-github-event"] == "push"
    assert headers["user-agent"] == "GitHub-Hookshot/tether-devcluster"
    assert uuid.UUID(headers["x-github-delivery"]).version == 4
    if secret is None:
        assert "x-hub-signature-256" not in headers
    else:
        expected = "sha256=" + hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-hub-signature-256"], expected)
    return delivery.event


@pytest.fixture
def hooked_server(tmp_path: Path, receiver: Receiver) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "root", webhook_url=receiver.url, webhook_secret=SECRET) as server:
        yield server


def test_a_push_sends_one_signed_github_push_event_per_ref(
    hooked_server: GitHttpServer, receiver: Receiver, tmp_path: Path
) -> None:
    server = hooked_server
    repo = server.create_repo("team/apps")
    first = repo.commit(
        "initial import", {"keep.txt": "keep\n", "edit.txt": "v1\n", "gone.txt": "x\n", "old.txt": "r\n"}
    )
    (initial,) = receiver.taken()
    event = _check_github_delivery(initial, SECRET)
    assert (event["ref"], event["before"], event["after"]) == ("refs/heads/main", ZERO, first)
    assert event["created"] is True and event["deleted"] is False
    assert [c["id"] for c in event["commits"]] == [first]
    assert sorted(event["commits"][0]["added"]) == ["edit.txt", "gone.txt", "keep.txt", "old.txt"]

    work = _clone(server, repo, tmp_path / "work")
    change = _commit(
        server, work, "add, modify, delete", {"new/added.yaml": "a: 1\n", "edit.txt": "v2\n", "gone.txt": None}
    )
    _git(server, "mv", "old.txt", "renamed.txt", cwd=work)
    rename = _commit(server, work, "a rename\n\nwith a body", {})
    _git(server, "checkout", "--quiet", "-b", "feature", cwd=work)
    feature = _commit(server, work, "feature work", {"feature.txt": "f\n"})
    _git(server, "checkout", "--quiet", "main", cwd=work)
    pushed = _git(server, "push", "origin", "main", "feature", cwd=work)
    assert "tether webhook" not in pushed.stderr  # nothing to report when the receiver answered 2xx

    by_ref = {d.event["ref"]: _check_github_delivery(d, SECRET) for d in receiver.taken()}
    assert sorted(by_ref) == ["refs/heads/feature", "refs/heads/main"]  # one request per pushed ref

    main = by_ref["refs/heads/main"]
    assert (main["before"], main["after"]) == (first, rename)
    assert main["created"] is False and main["deleted"] is False and main["forced"] is False
    assert [c["id"] for c in main["commits"]] == [change, rename]
    one, two = main["commits"]
    assert (one["added"], one["modified"], one["removed"]) == (["new/added.yaml"], ["edit.txt"], ["gone.txt"])
    assert (two["added"], two["modified"], two["removed"]) == (["renamed.txt"], [], ["old.txt"])
    assert two["message"] == "a rename\n\nwith a body"
    assert two["author"] == {"name": "Tether Test", "email": "tether-test@example.invalid"}
    assert two["timestamp"][:4].isdigit() and "T" in two["timestamp"]
    assert main["head_commit"] == two
    assert main["pusher"]["name"] == "anonymous" and main["sender"]["login"] == "anonymous"

    repository = main["repository"]
    assert repository["clone_url"] == repo.url == server.url_for("team/apps")
    assert repository["html_url"] == repo.url
    assert (repository["name"], repository["full_name"], repository["default_branch"]) == ("apps", "team/apps", "main")
    assert repository["ssh_url"].startswith("git@127.0.0.1:") and repository["git_url"].startswith("git://")

    new_branch = by_ref["refs/heads/feature"]
    assert (new_branch["before"], new_branch["after"]) == (ZERO, feature)
    assert new_branch["created"] is True and new_branch["forced"] is False
    assert [c["id"] for c in new_branch["commits"]] == [feature]  # only what the branch brought
    assert new_branch["commits"][0]["added"] == ["feature.txt"]
    assert new_branch["head_commit"]["id"] == feature


def test_force_push_tag_and_deletion(hooked_server: GitHttpServer, receiver: Receiver, tmp_path: Path) -> None:
    server = hooked_server
    repo = server.create_repo("forced")
    base = repo.commit("base", {"a.txt": "a\n"})
    repo.switch("topic")
    gone = repo.commit("topic 1", {"b.txt": "b\n"})
    receiver.taken()

    work = _clone(server, repo, tmp_path / "work")
    _git(server, "checkout", "--quiet", "-B", "topic", base, cwd=work)
    rewritten = _commit(server, work, "topic rewritten", {"c.txt": "c\n"})
    _git(server, "push", "--quiet", "--force", "origin", "topic", cwd=work)
    (forced,) = [_check_github_delivery(d, SECRET) for d in receiver.taken()]
    assert (forced["before"], forced["after"], forced["forced"]) == (gone, rewritten, True)
    assert [c["id"] for c in forced["commits"]] == [rewritten]

    _git(server, "tag", "-a", "v1.0.0", "-m", "release", cwd=work)
    _git(server, "push", "--quiet", "origin", "v1.0.0", cwd=work)
    (tag,) = [_check_github_delivery(d, SECRET) for d in receiver.taken()]
    assert tag["ref"] == "refs/tags/v1.0.0" and tag["created"] is True and tag["before"] == ZERO
    assert tag["commits"] == [] and tag["head_commit"]["id"] == rewritten

    _git(server, "push", "--quiet", "origin", "--delete", "topic", cwd=work)
    (deleted,) = [_check_github_delivery(d, SECRET) for d in receiver.taken()]
    assert (deleted["ref"], deleted["before"], deleted["after"]) == ("refs/heads/topic", rewritten, ZERO)
    assert deleted["deleted"] is True and deleted["created"] is False
    assert deleted["commits"] == [] and deleted["head_commit"] is None


def test_at_most_twenty_commits_the_newest_oldest_first(hooked_server: GitHttpServer, receiver: Receiver) -> None:
    repo = hooked_server.create_repo("many")
    start = repo.commit("start", {"n": "0"})
    receiver.taken()
    work = repo.path
    shas = []
    for n in range(1, 26):
        (work / "n").write_text(str(n))
        repo.git("commit", "--quiet", "-am", f"commit {n}")
        shas.append(repo.head)
    repo.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
    (event,) = [_check_github_delivery(d, SECRET) for d in receiver.taken()]
    assert (event["before"], event["after"]) == (start, shas[-1])
    assert [c["id"] for c in event["commits"]] == shas[-20:]
    assert all(c["modified"] == ["n"] for c in event["commits"])
    assert event["head_commit"]["id"] == shas[-1]


def test_without_a_webhook_url_nothing_is_sent_until_set_webhook(tmp_path: Path, receiver: Receiver) -> None:
    with GitHttpServer(tmp_path / "root") as server:
        assert server.webhook_url is None
        repo = server.create_repo("quiet")
        repo.commit("one", {"a": "1"})
        assert not (repo.bare_path / "hooks" / "post-receive").exists()
        assert not (repo.bare_path / githook.CONFIG_NAME).exists()
        assert receiver.taken() == []

        server.set_webhook(receiver.url)  # the demo: the receiver's port is known after the server started
        two = repo.commit("two", {"a": "2"})
        (delivery,) = receiver.taken()
        assert _check_github_delivery(delivery, None)["after"] == two

        server.set_webhook(None)
        repo.commit("three", {"a": "3"})
        assert receiver.taken() == []
        assert not (repo.bare_path / "hooks" / "post-receive").exists()


def test_set_webhook_moves_existing_repositories_to_a_new_url_and_secret(
    hooked_server: GitHttpServer, receiver: Receiver
) -> None:
    repo = hooked_server.create_repo("moved")
    repo.commit("one", {"a": "1"})
    receiver.taken()
    hooked_server.set_webhook(receiver.url.replace("/api/webhook", "/other"), "another-secret")
    repo.commit("two", {"a": "2"})
    (delivery,) = receiver.taken()
    assert delivery.path == "/other"
    expected = "sha256=" + hmac.new(b"another-secret", delivery.body, hashlib.sha256).hexdigest()
    assert {k.lower(): v for k, v in delivery.headers.items()}["x-hub-signature-256"] == expected


def test_repositories_made_outside_create_repo_send_webhooks_too(tmp_path: Path, receiver: Receiver) -> None:
    root = tmp_path / "root"
    env = {
        "PATH": os.environ["PATH"],
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": str(tmp_path),
    }

    def bare(name: str) -> Path:
        path = root / name
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], env=env, check=True)
        subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], env=env, check=True)
        return path

    before = bare("org/before.git")  # there before the server started
    with GitHttpServer(root, webhook_url=receiver.url, webhook_secret=SECRET) as server:
        after = bare("after.git")  # made behind the server's back while it runs
        for path, name in ((before, "org/before"), (after, "after")):
            work = tmp_path / f"work-{path.name}"
            _git(server, "init", "--quiet", "--initial-branch=main", str(work))
            sha = _commit(server, work, "hello", {"f": name})
            _git(server, "push", "--quiet", server.url_for(name), "HEAD:refs/heads/main", cwd=work)
            (delivery,) = receiver.taken()
            event = _check_github_delivery(delivery, SECRET)
            assert (event["after"], event["repository"]["clone_url"]) == (sha, server.url_for(name))
    assert not (before / "hooks" / "post-receive").exists()  # stopping takes the hook away
    assert not (before / githook.CONFIG_NAME).exists()


def _push_with_stderr(repo: LocalRepo, n: int) -> tuple[subprocess.CompletedProcess[str], float]:
    (repo.path / "f").write_text(str(n))
    repo.git("add", "f")
    repo.git("commit", "--quiet", "-m", f"change {n}")
    started = time.monotonic()
    done = subprocess.run(
        ["git", "push", "origin", "HEAD:refs/heads/main"],
        cwd=repo.path,
        env=repo._env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


def test_a_receiver_that_is_down_or_hangs_never_fails_or_holds_a_push(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down_url = f"http://127.0.0.1:{closed.getsockname()[1]}/api/webhook"
    closed.close()  # nothing listens there: connection refused
    hanging = socket.socket()  # listens, never accepts, never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)
    try:
        with GitHttpServer(tmp_path / "root", webhook_url=down_url, webhook_secret=SECRET) as server:
            repo = server.create_repo("down")
            done, took = _push_with_stderr(repo, 1)
            assert done.returncode == 0, done.stderr
            assert took < 10
            assert "remote: tether webhook: refs/heads/main: delivery to " + down_url + " failed" in done.stderr
            assert repo.git("ls-remote", "origin", "refs/heads/main").split()[0] == repo.head

            server.set_webhook(f"http://127.0.0.1:{hanging.getsockname()[1]}/api/webhook", SECRET)
            done, took = _push_with_stderr(repo, 2)
            assert done.returncode == 0, done.stderr
            assert took < 10
            assert "tether webhook" in done.stderr and "timed out" in done.stderr
            assert repo.git("ls-remote", "origin", "refs/heads/main").split()[0] == repo.head
    finally:
        hanging.close()


def test_the_secret_stays_out_of_output_and_is_stored_0600(hooked_server: GitHttpServer, receiver: Receiver) -> None:
    receiver.status = 401
    repo = hooked_server.create_repo("refused")
    repo.commit("one", {"f": "0"})
    done, _ = _push_with_stderr(repo, 1)
    assert done.returncode == 0
    assert f"remote: tether webhook: refs/heads/main: {receiver.url} answered 401" in done.stderr
    (delivery,) = receiver.taken()[-1:]
    signature = {k.lower(): v for k, v in delivery.headers.items()}["x-hub-signature-256"]
    assert SECRET not in done.stderr + done.stdout and signature not in done.stderr
    config = repo.bare_path / githook.CONFIG_NAME
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    hook = repo.bare_path / "hooks" / "post-receive"
    assert os.access(hook, os.X_OK) and SECRET not in hook.read_text()
    # the smart-HTTP server does not hand the config file out
    answer = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{repo.url}/{githook.CONFIG_NAME}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert answer.stdout != "200"


def test_the_pusher_is_the_authenticated_user(tmp_path: Path, receiver: Receiver) -> None:
    with GitHttpServer(
        tmp_path / "root", username="alice", password="pw-" + uuid.uuid4().hex, webhook_url=receiver.url
    ) as server:
        repo = server.create_repo("authed")
        repo.commit("one", {"f": "1"})
        (delivery,) = receiver.taken()
        event = _check_github_delivery(delivery, None)
        assert event["pusher"]["name"] == "alice" and event["sender"]["login"] == "alice"


def test_the_hook_runs_with_a_bare_environment(hooked_server: GitHttpServer, receiver: Receiver) -> None:
    """The hook script's interpreter imports tether with nothing from this process's environment."""
    repo = hooked_server.create_repo("direct")
    sha = repo.commit("one", {"f": "1"})
    receiver.taken()
    hook = repo.bare_path / "hooks" / "post-receive"
    assert hook.read_text().splitlines()[0] == "#!/bin/sh" and sys.executable in hook.read_text()
    done = subprocess.run(
        [str(hook)],
        input=f"{ZERO} {sha} refs/heads/again\n",
        cwd=repo.bare_path,
        env={"PATH": "/usr/bin:/bin", "GIT_DIR": "."},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    (delivery,) = receiver.taken()
    event = _check_github_delivery(delivery, SECRET)
    assert (event["ref"], event["after"], event["repository"]["clone_url"]) == ("refs/heads/again", sha, repo.url)


def test_bad_webhook_settings_are_refused(tmp_path: Path) -> None:
    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "http:///nohost", "http://h:badport/"):
        with pytest.raises(TetherError):
            GitHttpServer(tmp_path, webhook_url=url)
    with pytest.raises(TetherError):
        GitHttpServer(tmp_path, webhook_secret="s")
