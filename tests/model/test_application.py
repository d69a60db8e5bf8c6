"""Application: Argo CD manifests parse unchanged but for apiVersion; mistakes name the app and the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tether.diff import parse_ignore_differences
from tether.errors import Reason, TetherError
from tether.model import Application, Backoff, RetryStrategy, parse_duration, sync_option


def manifest(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": "tether-system"},
        "spec": {
            "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git", "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
        },
    }
    base["spec"].update(spec)
    return base


def invalid(obj: dict[str, Any]) -> str:
    with pytest.raises(TetherError) as caught:
        Application.from_object(obj)
    assert caught.value.reason == Reason.INVALID_SPEC
    return str(caught.value)


def test_defaults_are_argo_cds() -> None:
    app = Application.from_object(manifest())
    assert app.name == "guestbook" and app.namespace == "tether-system"
    assert app.spec.project == "default"
    assert app.spec.revision_history_limit == 10
    assert app.spec.sync_policy is None and app.spec.automated is None
    assert app.operation is None and app.status == {}
    (source,) = app.spec.sources_list()
    assert source.target_revision == "HEAD" and source.path == "guestbook"
    assert not app.spec.multi_source


def test_a_full_argo_cd_application_parses() -> None:
    app = Application.from_object(
        manifest(
            project="",
            syncPolicy={
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true", "PrunePropagationPolicy=background", "ServerSideApply=true"],
                "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 3, "maxDuration": "2m"}},
                "managedNamespaceMetadata": {"labels": {"team": "a"}, "annotations": {"x": "y"}},
            },
            ignoreDifferences=[
                {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
                {"kind": "ConfigMap", "name": "c", "jqPathExpressions": [".data.x"], "managedFieldsManagers": ["kube"]},
            ],
            revisionHistoryLimit=3,
            info=[{"name": "owner", "value": "team-a"}],
        )
    )
    policy = app.spec.sync_policy
    assert policy is not None and policy.automated is not None
    assert app.spec.project == "default"  # "" means default, as in Argo CD
    assert app.spec.automated is policy.automated and policy.automated.self_heal and policy.automated.enabled
    assert policy.option("PrunePropagationPolicy") == "background" and policy.option("Replace") is None
    assert policy.managed_namespace_metadata is not None and policy.managed_namespace_metadata.labels == {"team": "a"}
    assert app.spec.revision_history_limit == 3
    rules = parse_ignore_differences(app.spec.ignore_differences_dicts())
    assert [(r.group, r.kind, r.name, r.json_pointers) for r in rules] == [
        ("apps", "Deployment", None, ("/spec/replicas",)),
        ("", "ConfigMap", "c", ()),
    ]
    assert rules[1].jq_path_expressions == (".data.x",) and rules[1].managed_fields_managers == ("kube",)


def test_automated_can_be_present_but_disabled() -> None:
    app = Application.from_object(manifest(syncPolicy={"automated": {"enabled": False, "prune": True}}))
    assert app.spec.automated is None


def test_sources_list_keeps_order_and_ref_sources() -> None:
    app = Application.from_object(
        manifest(
            source=None,
            sources=[
                {
                    "repoURL": "https://git.example/charts.git",
                    "path": "web",
                    "helm": {"valueFiles": ["$values/a.yaml"]},
                },
                {"repoURL": "https://git.example/values.git", "ref": "values"},
            ],
        )
    )
    assert app.spec.multi_source
    assert [s.repo_url for s in app.spec.sources_list()] == [
        "https://git.example/charts.git",
        "https://git.example/values.git",
    ]


def test_sources_win_over_source_as_in_argo_cd() -> None:
    """Argo CD ignores ``source`` when ``sources`` is set: not read, not even validated."""
    app = Application.from_object(
        manifest(
            source={"repoURL": "https://git.example/ignored.git", "unknownField": 1},
            sources=[{"repoURL": "https://git.example/used.git", "path": "web"}],
        )
    )
    assert app.spec.multi_source and app.spec.source is None
    assert [s.repo_url for s in app.spec.sources_list()] == ["https://git.example/used.git"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["destination"].update(name="in-cluster"), "spec.destination: set server or name, not both"),
        (lambda s: s["destination"].pop("server"), "spec.destination: set server"),
        (lambda s: s.pop("source"), "spec: set source (one source) or sources"),
        (lambda s: s.update(sourcez=1), "spec.sourcez: unknown field"),
        (lambda s: s["source"].pop("repoURL"), "spec.source.repoURL: required"),
        (lambda s: s.update(ignoreDifferences=[{"group": "apps"}]), "spec.ignoreDifferences[0].kind: required"),
        (
            lambda s: s.update(ignoreDifferences=[{"kind": "Deployment", "jsonPointers": ["spec"]}]),
            "spec.ignoreDifferences[0]: jsonPointers[0]: JSON pointer 'spec' must start with '/'",
        ),
        (
            lambda s: s.update(syncPolicy={"syncOptions": ["CreateNamespace=true", "Frobnicate=true"]}),
            "spec.syncPolicy.syncOptions[1]: unknown sync option 'Frobnicate'",
        ),
        (lambda s: s.update(syncPolicy={"syncOptions": ["CreateNamespace"]}), 'must look like "Key=Value"'),
        (
            lambda s: s.update(syncPolicy={"retry": {"backoff": {"duration": "5 minutes"}}}),
            "spec.syncPolicy.retry.backoff.duration: invalid duration '5 minutes'",
        ),
        (lambda s: s.update(revisionHistoryLimit=-1), "spec.revisionHistoryLimit: Input should be greater than"),
    ],
)
def test_mistakes_name_the_app_and_the_field(change: Any, expected: str) -> None:
    obj = manifest()
    change(obj["spec"])
    message = invalid(obj)
    assert message.startswith("app 'guestbook': ")
    assert expected in message


def test_wrong_group_kind_or_missing_name() -> None:
    obj = manifest()
    obj["apiVersion"] = "argoproj.io/v1alpha1"
    assert "apiVersion: expected tether.dev/v1alpha1, got 'argoproj.io/v1alpha1'" in invalid(obj)
    obj = manifest()
    del obj["metadata"]["name"]
    assert invalid(obj) == "metadata.name: required"


def test_the_whole_object_is_read() -> None:
    obj = manifest()
    obj["metadata"].update(
        {
            "uid": "u-1",
            "generation": 4,
            "resourceVersion": "99",
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            "deletionTimestamp": "2024-05-01T10:00:00Z",
            "annotations": {"argocd.argoproj.io/refresh": "hard", "tether.dev/sync-wave": "2"},
            "managedFields": [{"manager": "kubectl"}],
        }
    )
    obj["status"] = {"sync": {"status": "Synced"}, "history": [{"id": 1}], "anything": {"nested": True}}
    obj["operation"] = {
        "sync": {
            "revision": "abc123",
            "prune": True,
            "syncOptions": ["Replace=true"],
            "resources": [{"kind": "Deployment", "group": "apps", "name": "web"}],
            "syncStrategy": {"apply": {"force": True}},
        },
        "initiatedBy": {"username": "alice"},
        "retry": {"limit": -1},
    }
    app = Application.from_object(obj)
    assert app.metadata.uid == "u-1" and app.metadata.generation == 4
    assert app.deleting and app.cascade_delete
    assert app.annotation("refresh") == "hard" and app.annotation("sync-wave") == "2"
    assert app.status == obj["status"]  # status is plain data, kept whole
    operation = app.operation
    assert operation is not None and operation.sync is not None
    assert operation.sync.revision == "abc123" and operation.sync.prune
    assert operation.sync.sync_strategy is not None and not operation.sync.sync_strategy.runs_hooks
    assert operation.sync.sync_strategy.force
    assert operation.sync.resources is not None and operation.sync.resources[0].name == "web"
    assert operation.initiated_by.username == "alice" and not operation.initiated_by.automated
    assert operation.retry is not None and operation.retry.unlimited and operation.retry.allows(1000)


def test_an_operation_without_sync_is_refused() -> None:
    obj = manifest()
    obj["operation"] = {"initiatedBy": {"username": "alice"}}
    assert "operation: sync is required" in invalid(obj)


def test_tether_annotation_wins_over_argo_cds() -> None:
    obj = manifest()
    obj["metadata"]["annotations"] = {"argocd.argoproj.io/refresh": "normal", "tether.dev/refresh": "hard"}
    assert Application.from_object(obj).annotation("refresh") == "hard"


def test_retry_backoff_follows_argo_cd() -> None:
    default = RetryStrategy(limit=3)
    assert [default.delay(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 180, 180]  # 5s ×2, at most 3m
    assert default.allows(2) and not default.allows(3)
    assert not RetryStrategy().allows(0)  # limit 0: no retries
    custom = RetryStrategy(limit=-1, backoff=Backoff(duration="1m", factor=3, max_duration="1h"))
    assert [custom.delay(n) for n in range(5)] == [60, 180, 540, 1620, 3600]
    # Argo CD takes empty strings as "use the default"
    empty = Application.from_object(manifest(syncPolicy={"retry": {"limit": 1, "backoff": {"duration": ""}}}))
    assert empty.spec.sync_policy is not None and empty.spec.sync_policy.retry is not None
    assert empty.spec.sync_policy.retry.backoff == Backoff()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("3m", 180), ("1h30m", 5400), ("1.5h", 5400), ("300ms", 0.3), ("2h0m10s", 7210), ("10", 10), ("0", 0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 s", "1d", "-5s", "h", "1h-5m", "s5", "1.2.3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_sync_option_last_one_wins() -> None:
    assert sync_option(["Validate=false", "Validate=true"], "Validate") == "true"
    assert sync_option([], "Validate") is None


def test_models_are_frozen() -> None:
    app = Application.from_object(manifest())
    with pytest.raises(Exception, match="frozen"):
        app.spec.project = "other"  # type: ignore[misc]
    assert copy.deepcopy(app) == app
