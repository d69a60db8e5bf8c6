"""The pass store fixture is real: entries encrypt with gpg, decrypt with stock `pass`, and commit."""

from __future__ import annotations

import os
import subprocess

from tether.devcluster.passstore import PassStore


def _pass(store: PassStore, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(store.store_dir.parent), **store.env}
    return subprocess.run(["pass", *args], env=env, capture_output=True, text=True, timeout=60)


def test_single_and_multi_line_entries_round_trip(pass_store: PassStore) -> None:
    before = pass_store.commit
    pass_store.insert("fixture/single", "canary-single-7f3a\n")
    pass_store.insert("fixture/multi", "canary-first-line\nusername: app\npassword: canary-multi-9c1d\n")

    assert _pass(pass_store, "show", "fixture/single").stdout == "canary-single-7f3a\n"
    shown = _pass(pass_store, "show", "fixture/multi")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "canary-first-line\nusername: app\npassword: canary-multi-9c1d\n"
    assert pass_store.commit != before
    encrypted = (pass_store.store_dir / "fixture" / "multi.gpg").read_bytes()
    assert b"canary-multi-9c1d" not in encrypted


def test_remove_deletes_and_commits(pass_store: PassStore) -> None:
    pass_store.insert("fixture/gone", "x1234\n")
    before = pass_store.commit
    pass_store.remove("fixture/gone")
    assert pass_store.commit != before
    assert _pass(pass_store, "show", "fixture/gone").returncode != 0
