"""tether.source against the real git smart-HTTP fixture servers."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import tether.source.cache as cache_module
from tether.devcluster.gitserver import GitHttpServer, LocalRepo
from tether.errors import TetherError
from tether.source import Credentials, GitCache, GitError


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache", timeout=30)


@pytest.fixture
def history(git_server: GitHttpServer, unique_repo_name: str) -> dict[str, str]:
    """A repository with branches, lightweight and annotated tags, and a commit buried in history."""
    repo = git_server.create_repo(unique_repo_name)
    shas = {"buried": repo.commit("buried", {"apps/web/deploy.yaml": "replicas: 1\n"})}
    shas["v1.2.0"] = repo.commit("1.2.0", {"apps/web/deploy.yaml": "replicas: 2\n"})
    repo.tag("v1.2.0", "release 1.2.0")
    shas["v1.4.1"] = repo.commit("1.4.1", {"apps/db/sts.yaml": "kind: StatefulSet\n"})
    repo.tag("v1.4.1")
    shas["v1.9.3"] = repo.commit("1.9.3", {"README.md": "hi\n"})
    repo.tag("v1.9.3", "release 1.9.3")
    shas["v2.0.0"] = repo.commit("2.0.0", {"README.md": "two\n"})
    repo.tag("v2.0.0", "release 2.0.0")
    repo.switch("feature/x")
    shas["feature/x"] = repo.commit("feature", {"apps/web/deploy.yaml": "replicas: 3\n"})
    repo.switch("main", create=False)
    shas["main"] = repo.commit("main tip", {"apps/db/sts.yaml": "kind: StatefulSet\nreplicas: 2\n"})
    shas["url"] = git_server.url_for(unique_repo_name)
    return shas


async def test_each_revision_form(cache: GitCache, history: dict[str, str]) -> None:
    url = history["url"]
    expect = {
        "": history["main"],
        "HEAD": history["main"],
        "main": history["main"],
        "refs/heads/main": history["main"],
        "feature/x": history["feature/x"],
        "v1.2.0": history["v1.2.0"],  # annotated, peeled to the commit
        "refs/tags/v1.2.0": history["v1.2.0"],
        "v1.4.1": history["v1.4.1"],  # lightweight
        history["buried"]: history["buried"],
        history["buried"].upper(): history["buried"],
        history["v1.9.3"][:10]: history["v1.9.3"],  # abbreviated, an advertised tip
        ">=1.2.0 <2": history["v1.9.3"],
        "~1.4": history["v1.4.1"],
        "^1.2": history["v1.9.3"],
        "^2": history["v2.0.0"],
    }
    for revision, sha in expect.items():
        assert await cache.resolve(url, revision) == sha, revision
    assert cache.fetch_count == 0  # all of that came from ls-remote


async def test_abbreviated_id_buried_in_history_is_fetched_and_expanded(
    cache: GitCache, history: dict[str, str]
) -> None:
    assert await cache.resolve(history["url"], history["buried"][:8]) == history["buried"]
    assert cache.fetch_count == 1
    assert await cache.resolve(history["url"], history["buried"][:9]) == history["buried"]
    assert cache.fetch_count == 1  # found in the cache the second time


async def test_unknown_ref_names_repo_and_ref(cache: GitCache, history: dict[str, str]) -> None:
    with pytest.raises(TetherError) as caught:
        await cache.resolve(history["url"], "no-such-branch")
    message = str(caught.value)
    assert history["url"] in message and "'no-such-branch'" in message
    with pytest.raises(GitError, match="no tag matches the version range '>=7'"):
        await cache.resolve(history["url"], ">=7")
    with pytest.raises(GitError, match="no branch, tag or commit named '0000dead'"):
        await cache.resolve(history["url"], "0000dead")


async def test_concurrent_fetches_of_one_commit_share_one_git_fetch(cache: GitCache, history: dict[str, str]) -> None:
    sha = history["v1.4.1"]
    await asyncio.gather(*(cache.fetch(history["url"], sha) for _ in range(8)))
    assert cache.fetch_count == 1
    await cache.fetch(history["url"], sha)
    assert cache.fetch_count == 1
    await asyncio.gather(cache.fetch(history["url"], history["main"]), cache.fetch(history["url"], history["v2.0.0"]))
    assert cache.fetch_count == 3


async def test_one_fetch_per_repository_at_a_time(
    cache: GitCache, history: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = peak = 0
    real_run = cache_module.run

    async def counting_run(argv, **kwargs):
        nonlocal running, peak
        is_fetch = str(argv[1]) == "fetch"
        running += is_fetch
        peak = max(peak, running)
        try:
            return await real_run(argv, **kwargs)
        finally:
            running -= is_fetch

    monkeypatch.setattr(cache_module, "run", counting_run)
    commits = [history[name] for name in ("v1.2.0", "v1.4.1", "v1.9.3", "v2.0.0", "main")]
    await asyncio.gather(*(cache.fetch(history["url"], sha) for sha in commits for _ in range(2)))
    assert (cache.fetch_count, peak) == (5, 1)


async def test_fetch_is_shallow_and_by_commit(cache: GitCache, history: dict[str, str]) -> None:
    repo = cache.repository(history["url"])
    await repo.fetch(history["v1.2.0"])
    shallow = (repo.path / "shallow").read_text().split()
    assert shallow == [history["v1.2.0"]]
    assert not await repo._has_commit(history["buried"])


async def test_unknown_commit_fetch_fails_clearly(cache: GitCache, history: dict[str, str]) -> None:
    with pytest.raises(GitError, match="commit 1234567890123456789012345678901234567890 could not be fetched"):
        await cache.fetch(history["url"], "1234567890123456789012345678901234567890")
    with pytest.raises(GitError, match="not a full commit id"):
        await cache.fetch(history["url"], "main")


async def test_tree_ids_change_only_when_the_path_changes(cache: GitCache, history: dict[str, str]) -> None:
    url = history["url"]
    web = {rev: await cache.tree_id(url, history[rev], "apps/web") for rev in ("v1.2.0", "v1.4.1", "v1.9.3", "main")}
    db = {rev: await cache.tree_id(url, history[rev], "apps/db") for rev in ("v1.2.0", "v1.4.1", "v1.9.3", "main")}
    assert web["v1.2.0"] == web["v1.4.1"] == web["v1.9.3"] == web["main"]
    assert db["v1.2.0"] is None
    assert db["v1.4.1"] == db["v1.9.3"] != db["main"]
    assert await cache.tree_id(url, history["buried"], "apps/web") != web["v1.2.0"]
    root = await cache.tree_id(url, history["main"], "")
    assert root == await cache.tree_id(url, history["main"], ".") != await cache.tree_id(url, history["v1.9.3"], "")
    assert await cache.tree_id(url, history["main"], "./apps/web/") == web["main"]
    with pytest.raises(GitError, match="invalid path"):
        await cache.tree_id(url, history["main"], "apps/../..")


async def test_a_tree_id_is_asked_of_git_once(cache: GitCache, history: dict[str, str]) -> None:
    """(commit, path) -> object id never changes, so the answer is remembered: no git call the second time."""
    url = history["url"]
    first = await cache.tree_id(url, history["main"], "apps/web")
    missing = await cache.tree_id(url, history["v1.2.0"], "apps/db")
    shutil.rmtree(cache.repository(url).path)  # git could not answer now
    assert await cache.tree_id(url, history["main"], "./apps/web/") == first
    assert await cache.tree_id(url, history["v1.2.0"], "apps/db") is missing is None


async def test_checkout_is_read_only_and_cleaned_up(cache: GitCache, history: dict[str, str]) -> None:
    async with cache.checkout(history["url"], history["v1.4.1"]) as tree:
        assert (tree / "apps/web/deploy.yaml").read_text() == "replicas: 2\n"
        assert (tree / "apps/db/sts.yaml").read_text() == "kind: StatefulSet\n"
        assert not (tree / "README.md").exists()
        mode = (tree / "apps/web/deploy.yaml").stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert not tree.stat().st_mode & stat.S_IWUSR
    assert not tree.exists()
    with pytest.raises(RuntimeError):
        async with cache.checkout(history["url"], history["main"]) as tree2:
            raise RuntimeError("render failed")
    assert not tree2.exists()
    assert list(cache.scratch_dir.glob("checkout-*")) == []


async def test_checkout_keeps_committed_bytes_despite_gitattributes(
    cache: GitCache, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    sha = repo.commit(
        "attrs",
        {
            ".gitattributes": "hidden.yaml export-ignore\nsubst.txt export-subst\n",
            "hidden.yaml": "a: 1\n",
            "subst.txt": "$Format:%H$\n",
        },
    )
    async with cache.checkout(git_server.url_for(unique_repo_name), sha) as tree:
        assert (tree / "hidden.yaml").read_text() == "a: 1\n"
        assert (tree / "subst.txt").read_text() == "$Format:%H$\n"


async def test_symlink_out_of_the_tree_is_refused(
    cache: GitCache, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    os.symlink("/etc/passwd", repo.path / "leak.yaml")
    sha = repo.commit("symlink out")
    with pytest.raises(GitError, match="refusing to check out"):
        async with cache.checkout(git_server.url_for(unique_repo_name), sha):
            pass
    assert list(cache.scratch_dir.glob("checkout-*")) == []


async def test_size_limits_refuse_large_checkouts_and_repos(
    tmp_path: Path, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    sha = repo.commit("big", {"blob.bin": os.urandom(200_000), "small.txt": "x"})
    url = git_server.url_for(unique_repo_name)

    small_checkouts = GitCache(tmp_path / "c1", max_checkout_bytes=100_000)
    with pytest.raises(GitError, match=r"checkout of 200001 bytes in 2 files is above the limit of 100000 bytes"):
        async with small_checkouts.checkout(url, sha):
            pass
    assert list(small_checkouts.scratch_dir.glob("checkout-*")) == []

    small_repos = GitCache(tmp_path / "c2", max_repo_bytes=100_000)
    with pytest.raises(GitError, match="above the limit of 100000 bytes; the cache was dropped"):
        await small_repos.fetch(url, sha)
    assert not small_repos.repository(url).path.exists()


async def test_basic_auth_repository_via_credentials(
    tmp_path: Path, git_server_auth: GitHttpServer, unique_repo_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo: LocalRepo = git_server_auth.create_repo(unique_repo_name)
    sha = repo.commit("one", {"app/cm.yaml": "kind: ConfigMap\n"})
    url = git_server_auth.url_for(unique_repo_name)
    password = git_server_auth.password
    assert password
    creds = Credentials(username=git_server_auth.username, password=password)

    calls: list[tuple[tuple[str, ...], dict[str, str]]] = []
    real_run = cache_module.run

    async def recording_run(argv, **kwargs):
        calls.append((tuple(str(a) for a in argv), dict(kwargs.get("env") or {})))
        return await real_run(argv, **kwargs)

    monkeypatch.setattr(cache_module, "run", recording_run)
    cache = GitCache(tmp_path / "cache")
    assert await cache.resolve(url, "main", creds) == sha
    async with cache.checkout(url, sha, creds) as tree:
        assert (tree / "app/cm.yaml").read_text() == "kind: ConfigMap\n"

    # The same credentials carried in the URL are moved out of it.
    in_url = url.replace("http://", f"http://{git_server_auth.username}:{password}@")
    assert await cache.resolve(in_url, "main") == sha

    assert calls and all(password not in " ".join(argv) for argv, _ in calls)
    network_envs = [env for argv, env in calls if argv[1] in ("ls-remote", "fetch")]
    assert network_envs and all(env["TETHER_GIT_PASSWORD"] == password for env in network_envs)
    assert all(
        set(env) - {"TETHER_GIT_USERNAME", "TETHER_GIT_PASSWORD", "GIT_ASKPASS", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT"}
        == {
            "PATH",
            "LANG",
            "LC_ALL",
            "HOME",
            "GIT_CONFIG_NOSYSTEM",
            "GIT_CONFIG_GLOBAL",
            "GIT_TERMINAL_PROMPT",
            "GIT_LFS_SKIP_SMUDGE",
            "GIT_ALLOW_PROTOCOL",
        }
        for _, env in calls
    )


async def test_credentials_never_appear_in_errors(
    tmp_path: Path, git_server_auth: GitHttpServer, unique_repo_name: str
) -> None:
    git_server_auth.create_repo(unique_repo_name).commit("one")
    url = git_server_auth.url_for(unique_repo_name)
    cache = GitCache(tmp_path / "cache")
    good = Credentials(username=git_server_auth.username, password=git_server_auth.password)
    wrong_password = "canary-wrong-pw-5521"

    messages = []
    for attempt in (
        cache.resolve(url, "main", Credentials(username="tether", password=wrong_password)),
        cache.resolve(url.replace("http://", f"http://tether:{wrong_password}@"), "main"),
        cache.resolve(url.replace("http://", f"http://tether:{git_server_auth.password}@"), "nope"),
        cache.resolve(url, "nope", good),
        cache.fetch(url, "ab" * 20, good),
        cache.resolve(url, "main"),
    ):
        with pytest.raises(GitError) as caught:
            await attempt
        messages.append(str(caught.value))
    for message in messages:
        assert wrong_password not in message and str(git_server_auth.password) not in message
        assert url in message or url.removesuffix(".git") in message
    assert "Authentication failed" in messages[0]
    assert "'nope'" in messages[2]
    assert "terminal prompts disabled" in messages[5] or "Authentication failed" in messages[5]


async def test_credentials_never_appear_in_logs(
    tmp_path: Path, git_server_auth: GitHttpServer, unique_repo_name: str
) -> None:
    sha = git_server_auth.create_repo(unique_repo_name).commit("one", {"a.yaml": "a: 1\n"})
    url = git_server_auth.url_for(unique_repo_name)
    password = str(git_server_auth.password)
    in_url = url.replace("http://", f"http://{git_server_auth.username}:{password}@")
    cache = GitCache(tmp_path / "cache")
    with capture_logs() as events:
        assert await cache.resolve(in_url, "main") == sha
        async with cache.checkout(in_url, sha):
            pass
        await cache.resolve(in_url, sha[:8])  # an advertised tip: no fetch of all refs
        with pytest.raises(GitError):
            await cache.fetch(in_url, "ab" * 20)
    assert any(event["event"] == "git fetch" and event["repo"] == url for event in events)
    assert password not in repr(events)


async def test_ssh_without_known_hosts_is_refused_before_git_runs(cache: GitCache) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-key-77\n-----END OPENSSH PRIVATE KEY-----"
    for url in ("ssh://git@127.0.0.1:1/r.git", "git@127.0.0.1:org/r.git"):
        with pytest.raises(GitError, match="SSH needs known_hosts") as caught:
            await cache.resolve(url, "main", Credentials(ssh_private_key=key))
        assert "canary-key-77" not in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: git must give up by its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/repo.git"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


async def test_every_git_call_has_a_timeout(tmp_path: Path, silent_server: str) -> None:
    cache = GitCache(tmp_path / "cache", timeout=1.5)
    with pytest.raises(GitError, match=r"git ls-remote of http://127\.0\.0\.1:\d+/repo\.git: timed out after 1\.5s"):
        await cache.resolve(silent_server, "main")


async def test_one_ls_remote_per_repository_per_interval_shared_by_every_caller(
    counting_git_server: GitHttpServer, tmp_path: Path
) -> None:
    repo = counting_git_server.create_repo("shared")
    first = repo.commit("one", {"a.yaml": "a: 1\n"})
    url = counting_git_server.url_for("shared")

    def listings() -> int:
        return sum(1 for method, path in counting_git_server.requests if "info/refs" in path)

    polled = GitCache(tmp_path / "polled", timeout=30, refs_max_age=60)
    before = listings()
    answers = await asyncio.gather(*(polled.resolve(url, "main") for _ in range(8)))
    answers += [await polled.resolve(url, "HEAD") for _ in range(3)]
    assert set(answers) == {first}
    assert listings() - before == 1  # eleven callers, one ls-remote within the interval

    second = repo.commit("two", {"a.yaml": "a: 2\n"})
    assert await polled.resolve(url, "main") == first  # still inside the interval: the listing is reused
    fresh = GitCache(tmp_path / "fresh", timeout=30)  # refs_max_age 0 (the CLI): every resolve asks
    before = listings()
    assert [await fresh.resolve(url, "main") for _ in range(2)] == [second, second]
    assert listings() - before == 2


async def test_a_commit_is_materialised_once_for_every_render_and_kept_ones_are_bounded(
    tmp_path: Path, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    url = git_server.url_for(unique_repo_name)
    shas = [repo.commit(f"c{i}", {f"apps/a{i}.yaml": f"n: {i}\n"}) for i in range(4)]
    cache = GitCache(tmp_path / "kept", kept_checkouts=2)

    async def render(sha: str) -> Path:
        async with cache.checkout(url, sha) as tree:
            await asyncio.sleep(0.05)
            return tree

    trees = await asyncio.gather(*(render(shas[0]) for _ in range(5)))
    assert len(set(trees)) == 1  # five renders at once, one tree
    again = await render(shas[0])
    assert again == trees[0] and again.exists()  # kept for the next render
    for sha in shas[1:]:
        await render(sha)
    assert len(list(cache.scratch_dir.glob("checkout-*"))) == 2  # only the newest two are kept
    assert not trees[0].exists()
    await cache.close()
    assert list(cache.scratch_dir.glob("checkout-*")) == []
