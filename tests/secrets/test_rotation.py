"""Which pass entries changed, from the real store's git history (pass insert/edit/mv/rm commits)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tether.devcluster.passstore import PassStore
from tether.errors import TetherError
from tether.secrets import PassBackend
from tether.secrets.rotation import StoreWatcher, changed_entries


@pytest.fixture(scope="module")
def backend(pass_store: PassStore) -> PassBackend:
    return PassBackend(pass_store.store_dir, pass_store.gnupg_home, environ={"HOME": str(pass_store.store_dir.parent)})


def pass_cmd(store: PassStore, *args: str, editor: Path | None = None) -> None:
    """Run the real ``pass`` against ``store`` (with ``EDITOR`` for ``pass edit``)."""
    env = {**store._env(), **({"EDITOR": str(editor)} if editor else {})}
    store._run(["pass", *args], env=env)


def editor_writing(tmp_path: Path, content: str) -> Path:
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{content}' > \"$1\"\n")
    script.chmod(0o755)
    return script


async def test_insert_edit_rename_and_remove_are_seen(
    pass_store: PassStore, backend: PassBackend, tmp_path: Path
) -> None:
    pass_store.insert("rot/db/password", "first\n")
    pass_store.insert("rot/api/token", "t1\n")
    start = await backend.store_commit()
    assert start is not None

    pass_cmd(pass_store, "edit", "rot/db/password", editor=editor_writing(tmp_path, "rotated"))
    after_edit = await backend.store_commit()
    assert after_edit != start
    assert pass_store.show("rot/db/password") == "rotated\n"
    assert await changed_entries(backend, start, after_edit or "") == {"rot/db/password"}

    pass_cmd(pass_store, "mv", "rot/api/token", "rot/api/key")
    after_mv = await backend.store_commit()
    assert await changed_entries(backend, after_edit, after_mv or "") == {"rot/api/token", "rot/api/key"}

    pass_store.insert("rot/new", "n\n")
    pass_store.remove("rot/db/password")
    head = await backend.store_commit()
    assert await changed_entries(backend, after_mv, head or "") == {"rot/new", "rot/db/password"}
    assert await changed_entries(backend, start, head or "") == {
        "rot/db/password",
        "rot/api/token",
        "rot/api/key",
        "rot/new",
    }
    assert await changed_entries(backend, head, head or "") == frozenset()


async def test_unknown_old_commit_means_everything_changed(pass_store: PassStore, backend: PassBackend) -> None:
    head = await backend.store_commit()
    assert head is not None
    assert await changed_entries(backend, None, head) is None
    assert await changed_entries(backend, "0123456789abcdef0123456789abcdef01234567", head) is None
    assert await changed_entries(backend, "--output=/tmp/x", head) is None


async def test_rewritten_history_loses_the_old_commit(tmp_path: Path) -> None:
    with PassStore.create(tmp_path / "own") as store:
        store.insert("a", "1\n")
        store.insert("b", "2\n")
        backend = PassBackend(store.store_dir, store.gnupg_home, environ={"HOME": str(tmp_path)})
        old = await backend.store_commit()
        # rewrite: drop the last commit and forget it entirely, as a force-push would
        git = ["git", "-C", str(store.store_dir)]
        store._run([*git, "reset", "--hard", "HEAD~1"])
        store._run([*git, "reflog", "expire", "--expire=now", "--all"])
        store._run([*git, "gc", "--prune=now", "--quiet"])
        store.insert("c", "3\n")
        new = await backend.store_commit()
        assert old and new and old != new
        assert await changed_entries(backend, old, new) is None


async def test_bad_new_commit_is_an_error_naming_the_store(pass_store: PassStore, backend: PassBackend) -> None:
    head = await backend.store_commit()
    with pytest.raises(TetherError, match="not in its git repository"):
        await changed_entries(backend, head, "0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(TetherError, match="not a commit id"):
        await changed_entries(backend, head, "HEAD; rm -rf /")


async def test_a_store_that_is_not_git_is_an_error(tmp_path: Path) -> None:
    backend = PassBackend(tmp_path, tmp_path, environ={"HOME": str(tmp_path)})
    with pytest.raises(TetherError, match="not a git repository"):
        await changed_entries(backend, "a" * 40, "b" * 40)


async def test_watcher_yields_the_entries_of_each_move(pass_store: PassStore, backend: PassBackend) -> None:
    watcher = StoreWatcher(backend, interval=0.05)
    changes = watcher.changes()
    first = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.3)
    assert not first.done()  # the current commit is recorded, not reported
    await asyncio.to_thread(pass_store.insert, "watch/one", "1\n")
    assert await asyncio.wait_for(first, 10) == {"watch/one"}
    await asyncio.to_thread(pass_store.insert, "watch/two", "2\n")
    await asyncio.to_thread(pass_store.insert, "watch/one", "1b\n")
    seen: set[str] = set()
    while seen != {"watch/one", "watch/two"}:
        batch = await asyncio.wait_for(anext(changes), 10)
        assert batch is not None
        seen |= batch
    assert watcher.commit == pass_store.commit
    await changes.aclose()


async def test_watcher_outlives_a_store_git_cannot_read(tmp_path: Path) -> None:
    with PassStore.create(tmp_path / "own") as store:
        backend = PassBackend(store.store_dir, store.gnupg_home, environ={"HOME": str(tmp_path)})
        watcher = StoreWatcher(backend, interval=0.05)
        changes = watcher.changes()
        pending = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.2)
        objects = store.store_dir / ".git" / "objects"
        os.rename(objects, objects.with_name("objects-away"))
        await asyncio.sleep(0.3)
        assert not pending.done()
        os.rename(objects.with_name("objects-away"), objects)
        await asyncio.to_thread(store.insert, "after", "x\n")
        assert await asyncio.wait_for(pending, 10) == {"after"}
        await changes.aclose()
