"""Local SOURCE inside a git work tree: the work tree's root is the repository root, as a checkout has it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.render.helpers import CORPUS, object_set
from tests.render.tools import kustomize_by_hand
from tether.cli import main
from tether.cli.common import build_source
from tether.pipeline import local_repository


@pytest.fixture
def work_tree(tmp_path: Path) -> Path:
    """The corpus's pre-post-sync app and its ../kustomize-guestbook base, committed to a fresh git repository."""
    repo = tmp_path / "example-apps"
    for app in ("pre-post-sync", "kustomize-guestbook"):
        shutil.copytree(CORPUS / app, repo / app)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "apps"], check=True)
    return repo


def render(*args: str) -> object:
    return CliRunner().invoke(main, ["render", *args], catch_exceptions=False)


def test_an_app_directory_inside_a_work_tree_renders_with_its_parent_base(work_tree: Path) -> None:
    result = render(str(work_tree / "pre-post-sync"), "-o", "json")
    assert result.exit_code == 0, result.stderr
    objects = json.loads(result.stdout)
    assert object_set(objects) == object_set(kustomize_by_hand(work_tree / "pre-post-sync"))
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects) == [
        "Deployment/pre-post-sync-kustomize-guestbook-ui",
        "Job/pre-post-sync-after",
        "Job/pre-post-sync-before",
        "Service/pre-post-sync-kustomize-guestbook-ui",
    ]


def test_the_same_from_a_subdirectory_and_from_the_root_with_path(work_tree: Path) -> None:
    from_app = render(str(work_tree / "pre-post-sync"), "-o", "json")
    from_root = render(str(work_tree), "--path", "pre-post-sync", "-o", "json")
    assert from_app.exit_code == from_root.exit_code == 0, from_app.stderr + from_root.stderr
    assert json.loads(from_app.stdout) == json.loads(from_root.stdout)


def test_diff_and_sync_get_the_same_source_spec(work_tree: Path) -> None:
    # diff and sync build their source with build_source, as render does.
    spec = build_source(str(work_tree / "pre-post-sync"), None, "")
    assert (spec.repo_url, spec.path) == (str(work_tree.resolve()), "pre-post-sync")
    nested = build_source(str(work_tree), None, "kustomize-guestbook")
    assert (nested.repo_url, nested.path) == (str(work_tree.resolve()), "kustomize-guestbook")
    assert local_repository(work_tree / "kustomize-guestbook") == (work_tree.resolve(), "kustomize-guestbook")


def test_outside_any_work_tree_the_directory_is_its_own_root(tmp_path: Path) -> None:
    for app in ("pre-post-sync", "kustomize-guestbook"):
        shutil.copytree(CORPUS / app, tmp_path / app)
    assert local_repository(tmp_path / "pre-post-sync") == ((tmp_path / "pre-post-sync").resolve(), "")
    result = render(str(tmp_path / "pre-post-sync"))
    assert result.exit_code == 2 and result.stdout == ""
    assert "outside the repository" in result.stderr
