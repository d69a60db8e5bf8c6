"""The pure parts of routing a push to apps: ref matching, listings after a push, changed inputs."""

from __future__ import annotations

import pytest

from tether.controller.compare import inputs_by_source
from tether.controller.webhooks import _listed, _touches
from tether.model.source import ApplicationSource
from tether.server.webhook.events import Push
from tether.source.revisions import ref_matches

SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40


@pytest.mark.parametrize(
    ("revision", "ref", "default", "expected"),
    [
        ("main", "refs/heads/main", None, True),
        ("main", "refs/heads/dev", None, False),
        ("v1.2.0", "refs/tags/v1.2.0", None, True),
        ("refs/heads/main", "refs/heads/main", None, True),
        ("HEAD", "refs/heads/main", "main", True),
        ("", "refs/heads/trunk", "trunk", True),
        ("HEAD", "refs/heads/dev", "main", False),
        ("HEAD", "refs/heads/main", None, None),  # only the default branch can tell: resolved by the caller
        ("^1.2", "refs/tags/v1.3.0", None, True),
        (">=1.0.0 <2", "refs/tags/2.0.0", None, False),
        ("^1.2", "refs/heads/1.3.0", None, False),  # a branch is not a version
        (SHA_A, "refs/heads/main", "main", False),  # a pinned commit never moves
    ],
)
def test_which_pushed_refs_can_move_a_target_revision(
    revision: str, ref: str, default: str | None, expected: bool | None
) -> None:
    assert ref_matches(revision, ref, default) is expected


def test_ref_inputs_count_for_the_source_whose_repository_holds_them() -> None:
    app = ApplicationSource.model_validate({"repoURL": "https://git.example/app", "path": "chart"})
    values = ApplicationSource.model_validate({"repoURL": "https://git.example/values", "ref": "values"})
    inputs = inputs_by_source([app, values], [("chart", "$values//envs/prod.yaml"), ()])
    assert inputs == (("chart",), ("envs/prod.yaml",))


def test_a_source_that_names_its_commit_is_touched_by_every_push() -> None:
    app = ApplicationSource.model_validate({"repoURL": "https://git.example/app", "path": "chart"})
    values = ApplicationSource.model_validate({"repoURL": "https://git.example/values", "ref": "values"})
    named = ("chart", "//ARGOCD_APP_NAME", "$values//envs/prod.yaml")
    assert inputs_by_source([app, values], [named, ()]) == (("chart",), ("envs/prod.yaml",))
    tagged = ("chart", "//ARGOCD_APP_REVISION_SHORT", "$values//envs/prod.yaml")
    assert inputs_by_source([app, values], [tagged, ()]) == (None, ("envs/prod.yaml",))


@pytest.mark.parametrize(
    ("files", "watched", "expected"),
    [
        ({"apps/a/deploy.yaml"}, ["apps/a"], True),
        ({"apps/ab/deploy.yaml"}, ["apps/a"], False),  # a prefix of the name is not the directory
        ({"base/common.yaml"}, ["apps/a", "base"], True),
        ({"README.md"}, ["apps/a"], False),
        ({"envs/prod.yaml"}, ["envs/prod.yaml"], True),
        ({"anything"}, ["."], True),
        ({"x/../apps/a/k.yaml"}, ["./apps/a/"], False),  # paths from git are clean; watched ones are cleaned
        (set(), ["."], False),
    ],
)
def test_a_changed_file_concerns_an_app_only_under_a_path_it_read(
    files: set[str], watched: list[str], expected: bool
) -> None:
    assert _touches(frozenset(files), watched) is expected


def push(before: str | None, after: str | None, files: tuple[str, ...] | None, *, forced: bool = False) -> Push:
    return Push(
        provider="github",
        repo_urls=("https://git.example/repo",),
        ref="refs/heads/main",
        before=before,
        after=after,
        changed_files=files,
        forced=forced,
    )


def test_payload_file_lists_are_joined_only_along_an_unbroken_chain() -> None:
    first, second = push(SHA_A, SHA_B, ("a.yaml",)), push(SHA_B, SHA_C, ("b.yaml",))
    assert _listed([second, first], SHA_A, SHA_C) == {"a.yaml", "b.yaml"}  # arrival order does not matter
    assert _listed([first], SHA_A, SHA_B) == {"a.yaml"}
    assert _listed([second], SHA_A, SHA_C) is None  # the app was at A: B's push alone does not say A..C
    assert _listed([first, push(SHA_B, SHA_C, None)], SHA_A, SHA_C) is None  # one payload without a list
    assert _listed([push(SHA_A, SHA_B, ("a.yaml",), forced=True)], SHA_A, SHA_B) is None
