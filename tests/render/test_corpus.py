"""Every network-free app of argocd-example-apps, rendered from a real commit on the git server,
equals what the tools produce when run by hand on the same files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import _jsonnet
import pytest
import yaml

from tests.render.helpers import CORPUS, object_set
from tests.render.tools import helm_template_by_hand, kustomize_by_hand
from tether.model.source import ApplicationSource, SourceType
from tether.pipeline import desired_state
from tether.source import GitCache

NAMESPACE = "demo"
TLAS = [
    {"name": "name", "value": "tla-guestbook"},
    {"name": "replicas", "value": "2", "code": True},
    {"name": "type", "value": "ClusterIP"},
]


def yaml_files_by_hand(directory: Path) -> list[dict[str, Any]]:
    return [d for f in sorted(directory.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def jsonnet_by_hand(directory: Path, **tla: Any) -> list[dict[str, Any]]:
    (main,) = directory.glob("*.jsonnet")
    out = json.loads(_jsonnet.evaluate_file(str(main), **tla))
    return out if isinstance(out, list) else [out]


CASES: list[tuple[str, dict[str, Any], SourceType, Any]] = [
    ("guestbook", {}, SourceType.DIRECTORY, lambda: yaml_files_by_hand(CORPUS / "guestbook")),
    ("helm-hooks", {}, SourceType.DIRECTORY, lambda: yaml_files_by_hand(CORPUS / "helm-hooks")),
    ("sync-waves", {}, SourceType.DIRECTORY, lambda: yaml_files_by_hand(CORPUS / "sync-waves")),
    ("jsonnet-guestbook", {}, SourceType.DIRECTORY, lambda: jsonnet_by_hand(CORPUS / "jsonnet-guestbook")),
    ("jsonnet-guestbook-tla", {}, SourceType.DIRECTORY, lambda: jsonnet_by_hand(CORPUS / "jsonnet-guestbook-tla")),
    (
        "jsonnet-guestbook-tla",
        {"directory": {"jsonnet": {"tlas": TLAS}}},
        SourceType.DIRECTORY,
        lambda: jsonnet_by_hand(
            CORPUS / "jsonnet-guestbook-tla",
            tla_vars={"name": "tla-guestbook", "type": "ClusterIP"},
            tla_codes={"replicas": "2"},
        ),
    ),
    ("kustomize-guestbook", {}, SourceType.KUSTOMIZE, lambda: kustomize_by_hand(CORPUS / "kustomize-guestbook")),
    ("pre-post-sync", {}, SourceType.KUSTOMIZE, lambda: kustomize_by_hand(CORPUS / "pre-post-sync")),
    ("sock-shop", {}, SourceType.KUSTOMIZE, lambda: kustomize_by_hand(CORPUS / "sock-shop")),
    (
        "helm-guestbook",
        {},
        SourceType.HELM,
        lambda: helm_template_by_hand(CORPUS / "helm-guestbook", "helm-guestbook", "--namespace", NAMESPACE),
    ),
    (
        "helm-guestbook",
        {"helm": {"valueFiles": ["values-production.yaml"]}},
        SourceType.HELM,
        lambda: helm_template_by_hand(
            CORPUS / "helm-guestbook",
            "helm-guestbook",
            "--namespace",
            NAMESPACE,
            "--values",
            str(CORPUS / "helm-guestbook" / "values-production.yaml"),
        ),
    ),
    ("apps", {}, SourceType.HELM, lambda: helm_template_by_hand(CORPUS / "apps", "apps", "--namespace", NAMESPACE)),
]


@pytest.fixture(scope="module")
def corpus_repo(git_server: Any) -> Any:
    return git_server.create_repo(f"corpus-{uuid.uuid4().hex[:8]}", from_dir=CORPUS)


@pytest.fixture(scope="module")
def git_cache(tmp_path_factory: pytest.TempPathFactory) -> GitCache:
    return GitCache(tmp_path_factory.mktemp("gitcache"))


@pytest.mark.parametrize(("app", "spec", "kind", "by_hand"), CASES, ids=[f"{c[0]}{'+' if c[1] else ''}" for c in CASES])
async def test_corpus_app_matches_the_tools(
    corpus_repo: Any, git_cache: GitCache, app: str, spec: dict[str, Any], kind: SourceType, by_hand: Any
) -> None:
    source = ApplicationSource.model_validate(
        {"repoURL": corpus_repo.url, "path": app, "targetRevision": "main", **spec}
    )
    state = await desired_state(app, source, git=git_cache, cache=None, secrets_backend=None, namespace=NAMESPACE)
    expected = by_hand()
    assert state.revision == corpus_repo.head
    assert state.source_type is kind
    assert len(state.objects) == len(expected) > 0
    assert object_set(state.objects) == object_set(expected)


def test_jsonnet_tlas_changed_the_output() -> None:
    default = jsonnet_by_hand(CORPUS / "jsonnet-guestbook-tla")
    with_tlas = CASES[5][3]()
    assert object_set(default) != object_set(with_tlas)
    assert {o["metadata"]["name"] for o in with_tlas} == {"tla-guestbook"}
