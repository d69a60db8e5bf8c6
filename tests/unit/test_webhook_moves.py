"""A push that changes no file an app read moves the app to the new revision (WebhookTrigger._decide).

The decision resolves the app's ref across awaits; the app's own reconcile may run meanwhile
and apply (or drop) the move an earlier batch left pending. Plain data and a stand-in for git:
the decision must still leave the app a queued move to the newest revision, never a move that
nothing will apply (W3 once left 19 of 300 apps at an older revision that way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise
from types import SimpleNamespace
from typing import Any, cast

from tether.controller.memory import AppMemory
from tether.controller.webhooks import MOVE, REFRESH, WebhookTrigger, _Match
from tether.server.webhook.events import Push

URL = "http://git.example/fleet.git"
A, B, C = "a" * 40, "b" * 40, "c" * 40


class Git:
    """Resolves the ref to ``tip``; ``meanwhile`` runs while the answer is on its way."""

    def __init__(self, tip: str, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.tip, self.meanwhile = tip, meanwhile

    async def resolve(self, url: str, revision: str, credentials: Any) -> str:
        await asyncio.sleep(0)
        self.meanwhile()
        return self.tip


def trigger(memory: AppMemory, git: Git) -> WebhookTrigger:
    app = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "tether-system", "uid": "u1", "resourceVersion": "1"},
        "spec": {
            "project": "default",
            "source": {"repoURL": URL, "path": "apps/web", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
        },
    }
    controller = SimpleNamespace(
        memory={"web": memory},
        apps=SimpleNamespace(get=lambda name: app if name == "web" else None),
        git=git,
        repo_credentials=SimpleNamespace(lookup=lambda url: None),
        requires_signatures=lambda obj: False,
    )
    return WebhookTrigger(cast(Any, controller))


def memory_at(revision: str) -> AppMemory:
    return AppMemory(revisions=(revision,), desired=[], inputs=(("apps/web",),))


def push(*chain: str) -> list[tuple[_Match, list[Push]]]:
    """The pushes from ``chain[0]`` to ``chain[-1]``, each changing a file the app does not read."""
    moves = [Push("github", (URL,), "refs/heads/main", a, b, ("apps/other/cm.yaml",)) for a, b in pairwise(chain)]
    return [(_Match("web", 0, URL, "main"), moves)]


def reconcile_moves(memory: AppMemory) -> None:
    """What Controller._reconcile does with a "moved" reason."""
    assert memory.moved is not None
    before, after = memory.moved
    memory.moved = None
    if memory.revisions == before:
        memory.revisions = after


async def test_a_push_that_changes_no_input_moves_the_app() -> None:
    memory = memory_at(A)
    assert await trigger(memory, Git(B))._decide("web", push(A, B), {}) == MOVE
    assert memory.moved == ((A,), (B,))


async def test_a_second_push_before_the_move_ran_only_retargets_it() -> None:
    memory = memory_at(A)
    memory.moved = ((A,), (B,))  # an earlier batch's move, its reconcile still queued
    assert await trigger(memory, Git(C))._decide("web", push(A, B, C), {}) is None
    assert memory.moved == ((A,), (C,))
    reconcile_moves(memory)
    assert memory.revisions == (C,)


async def test_a_ref_pushed_back_before_the_move_ran_retargets_the_move_to_it() -> None:
    memory = memory_at(A)
    memory.moved = ((A,), (B,))  # queued, not yet run
    assert await trigger(memory, Git(A))._decide("web", push(A, B, A), {}) is None
    reconcile_moves(memory)
    assert memory.revisions == (A,)  # where the ref is, not where it was


async def test_a_move_applied_while_the_ref_was_resolved_is_followed_by_a_new_one() -> None:
    memory = memory_at(A)
    memory.moved = ((A,), (B,))
    git = Git(C, meanwhile=lambda: reconcile_moves(memory))  # the queued move runs during the await
    assert await trigger(memory, git)._decide("web", push(A, B, C), {}) == MOVE  # so a new one is queued
    assert memory.moved == ((B,), (C,))
    reconcile_moves(memory)
    assert memory.revisions == (C,)


async def test_a_render_while_the_ref_was_resolved_makes_it_a_refresh() -> None:
    memory = memory_at(A)

    def rendered() -> None:
        memory.revisions = ("d" * 40,)

    assert await trigger(memory, Git(C, meanwhile=rendered))._decide("web", push(A, C), {}) == REFRESH
