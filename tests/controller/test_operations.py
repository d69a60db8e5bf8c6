"""Manual operations, rollback, projects and secret rotation through the running controller."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import API, application, eventually, project, running_controller, settings_for
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.controller.status import in_motion, parse_time
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore


def terminated(state: dict[str, Any]) -> bool:
    """Argo CD's end of a terminated operation: phase Failed, saying it was terminated."""
    return state.get("phase") == "Failed" and "terminated" in (state.get("message") or "")


async def test_rollback_runs_with_auto_sync_off_and_is_refused_with_it_on(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    first = repo.commit("v1", files={"app/a.yaml": configmap("a", "v1")})
    await kube.apply(application("roll", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "roll"), synced_healthy)
    second = repo.commit("v2", files={"app/a.yaml": configmap("a", "v2")})
    status = await eventually(
        lambda: app_status(kube, namespace, "roll"),
        lambda s: (s.get("sync") or {}).get("revision") == second and synced_healthy(s),
        timeout=30,
    )
    assert [h["revision"] for h in status["history"]] == [first, second]
    rollback = {
        "sync": {"revision": first},
        "initiatedBy": {"username": "alice"},
        "info": [{"name": "Rollback", "value": "0"}],
    }
    # auto-sync on: refused with Argo CD's message, nothing changes
    await kube.patch(API, "Application", "roll", namespace, {"operation": rollback})
    status = await eventually(
        lambda: app_status(kube, namespace, "roll"),
        lambda s: (
            "rollback cannot be initiated when auto-sync is enabled"
            in (s.get("operationState") or {}).get("message", "")
        ),
        timeout=20,
    )
    assert status["operationState"]["phase"] == "Failed"
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "v2"
    # the field is cleared after the refusal is recorded (a restart in between refuses it again)
    await eventually(
        lambda: kube.get(API, "Application", "roll", namespace), lambda o: o.get("operation") is None, timeout=10
    )
    # auto-sync off: the rollback syncs the first revision
    await kube.patch(
        API,
        "Application",
        "roll",
        namespace,
        [{"op": "remove", "path": "/spec/syncPolicy/automated"}],
        patch_type="json",
    )
    await kube.patch(API, "Application", "roll", namespace, {"operation": rollback})

    async def value() -> str:
        return ((await kube.get("v1", "ConfigMap", "a", namespace)) or {}).get("data", {}).get("value", "")

    await eventually(value, lambda v: v == "v1", timeout=30)
    status = await eventually(
        lambda: app_status(kube, namespace, "roll"),
        lambda s: (
            (s.get("operationState") or {}).get("phase") == "Succeeded"
            and (s.get("operationState") or {}).get("syncResult", {}).get("revision") == first
        ),
        timeout=20,
    )
    assert status["history"][-1]["revision"] == first
    assert status["history"][-1]["initiatedBy"]["username"] == "alice"
    entries = await controller.audit.entries(f"{namespace}/roll") if controller.audit else []
    assert [e.kind for e in entries][:1] == ["rollback"]
    assert entries[0].initiated_by == "alice" and entries[0].phase == "Succeeded"


async def test_project_forbids_destination_and_cluster_kind_and_nothing_is_applied(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    role = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
        f"  name: {namespace}-forbidden\nrules: []\n"
    )
    stray = configmap("stray").replace("metadata:\n", "metadata:\n  namespace: kube-public\n")
    repo.commit("v1", files={"app/a.yaml": configmap("a"), "cluster/role.yaml": role, "stray/b.yaml": stray})
    await kube.apply(
        project(
            "narrow",
            namespace,
            sourceRepos=[repo.url],
            destinations=[{"server": "https://kubernetes.default.svc", "namespace": f"{namespace}*"}],
        )
    )
    await kube.apply(
        application("far", namespace, repo.url, "app", "elsewhere", project="narrow", syncPolicy={"automated": {}})
    )
    # CreateNamespace=true makes a Namespace, which this project does not permit (as in Argo CD) when it is
    # missing; an existing one is not written, so the same option on the test's namespace is fine
    create = {"automated": {}, "syncOptions": ["CreateNamespace=true"]}
    await kube.apply(
        application("maker", namespace, repo.url, "app", f"{namespace}-made", project="narrow", syncPolicy=create)
    )
    await kube.apply(
        application("existing", namespace, repo.url, "app", namespace, project="narrow", syncPolicy=create)
    )
    # an object that names its own namespace goes there: the project must permit that one too
    await kube.apply(
        application("stray", namespace, repo.url, "stray", namespace, project="narrow", syncPolicy={"automated": {}})
    )
    await kube.apply(
        application("role", namespace, repo.url, "cluster", namespace, project="narrow", syncPolicy={"automated": {}})
    )

    def invalid(s: dict) -> bool:
        return any(c.get("type") == "InvalidSpecError" for c in s.get("conditions") or [])

    far = await eventually(lambda: app_status(kube, namespace, "far"), invalid, timeout=30)
    message = next(c["message"] for c in far["conditions"] if c["type"] == "InvalidSpecError")
    assert "elsewhere" in message and "narrow" in message
    role_status = await eventually(lambda: app_status(kube, namespace, "role"), invalid, timeout=30)
    assert "ClusterRole" in next(c["message"] for c in role_status["conditions"] if c["type"] == "InvalidSpecError")
    assert await kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", f"{namespace}-forbidden") is None
    assert await kube.get("v1", "ConfigMap", "a", "elsewhere") is None
    maker = await eventually(lambda: app_status(kube, namespace, "maker"), invalid, timeout=30)
    assert next(c["message"] for c in maker["conditions"] if c["type"] == "InvalidSpecError") == (
        f"resource :Namespace is not permitted in project 'narrow' "
        f"(CreateNamespace=true would create Namespace '{namespace}-made')"
    )
    await eventually(lambda: app_status(kube, namespace, "existing"), synced_healthy, timeout=30)
    assert await kube.get("v1", "Namespace", f"{namespace}-made") is None
    strayed = await eventually(lambda: app_status(kube, namespace, "stray"), invalid, timeout=30)
    assert next(c["message"] for c in strayed["conditions"] if c["type"] == "InvalidSpecError") == (
        "namespace 'kube-public' is not permitted in project 'narrow'"
    )
    assert await kube.get("v1", "ConfigMap", "stray", "kube-public") is None


async def test_an_operation_may_not_sync_what_the_project_forbids_at_another_revision_or_source(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """The comparison checks the app's own render; an operation checks what it is about to sync (a pinned
    revision, its own sources), as Argo CD validates every object a sync writes."""
    repo = git_server.create_repo(unique_repo_name)
    other = git_server.create_repo(unique_repo_name + "-other")
    role = (
        f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {namespace}-old\nrules: []\n"
    )
    old = repo.commit("old: a ClusterRole", files={"app/a.yaml": configmap("a", "v1"), "app/role.yaml": role})
    repo.commit("new: without it", files={"app/a.yaml": configmap("a", "v2"), "app/role.yaml": None})
    other.commit("v1", files={"app/a.yaml": configmap("a", "other")})
    await kube.apply(
        project(
            "tight",
            namespace,
            sourceRepos=[repo.url],
            destinations=[{"server": "https://kubernetes.default.svc", "namespace": namespace}],
        )
    )
    await kube.apply(application("kept", namespace, repo.url, "app", namespace, project="tight"))
    await eventually(
        lambda: app_status(kube, namespace, "kept"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )

    async def refused(operation: dict[str, Any]) -> str:
        await kube.patch(
            API, "Application", "kept", namespace, {"operation": {**operation, "initiatedBy": {"username": "eve"}}}
        )
        status = await eventually(
            lambda: app_status(kube, namespace, "kept"),
            lambda s: (s.get("operationState") or {}).get("phase") == "Error",
            timeout=30,
        )
        await eventually(
            lambda: kube.get(API, "Application", "kept", namespace), lambda o: o.get("operation") is None, timeout=10
        )
        await kube.patch(
            API, "Application", "kept", namespace, {"status": {"operationState": None}}, subresource="status"
        )
        return str(status["operationState"]["message"])

    message = await refused({"sync": {"revision": old}})
    assert message == "app kept: resource rbac.authorization.k8s.io:ClusterRole is not permitted in project 'tight'"
    source = {"repoURL": other.url, "path": "app", "targetRevision": "HEAD"}
    message = await refused({"sync": {"source": source}})
    assert message == f"app kept: application repo {other.url} is not permitted in project 'tight'"
    assert await kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", f"{namespace}-old") is None
    assert await kube.get("v1", "ConfigMap", "a", namespace) is None


async def test_a_changed_pass_entry_resyncs_exactly_the_app_that_uses_it(
    controller: Controller,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    capfd: pytest.CaptureFixture[str],
) -> None:
    entry = f"ctl/db-{secrets.token_hex(3)}"
    first, second = f"canary-{secrets.token_hex(8)}", f"canary-{secrets.token_hex(8)}"
    pass_store.insert(entry, f"{first}\n")
    secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: <pass:{entry}>\n"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"uses/secret.yaml": secret, "other/a.yaml": configmap("plain")})
    await kube.apply(
        application("uses", namespace, repo.url, "uses", namespace, syncPolicy={"automated": {"selfHeal": True}})
    )
    await kube.apply(application("other", namespace, repo.url, "other", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "uses"), synced_healthy)
    await eventually(lambda: app_status(kube, namespace, "other"), synced_healthy)
    other_ops = (await app_status(kube, namespace, "other"))["operationState"]["startedAt"]
    pass_store.insert(entry, f"{second}\n")

    async def password() -> str:
        import base64

        live = await kube.get("v1", "Secret", "db", namespace) or {}
        return base64.b64decode((live.get("data") or {}).get("password", "")).decode()

    await eventually(password, lambda v: v == second, timeout=30)
    status = await eventually(  # a full sync, not a self-heal: it adds a history entry
        lambda: app_status(kube, namespace, "uses"), lambda s: len(s.get("history") or []) == 2, timeout=15
    )
    assert (await app_status(kube, namespace, "other"))["operationState"]["startedAt"] == other_ops
    # the canary never reaches status, events or the state directory
    events, _ = await kube.list("v1", "Event", namespace)
    for text in (str(status), str(events)):
        assert first not in text and second not in text
    logged = capfd.readouterr()
    for text in (logged.out, logged.err):  # the controller's logs (the audit log is in the state directory)
        assert first not in text and second not in text
    for path in controller.settings.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert first.encode() not in data and second.encode() not in data, path


async def test_a_deny_sync_window_stops_automated_sync_with_a_condition(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("windowed")})
    await kube.apply(
        {
            "apiVersion": API,
            "kind": "Project",
            "metadata": {"name": "frozen", "namespace": namespace},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}],
            },
        }
    )
    await kube.apply(
        application("held", namespace, repo.url, "app", namespace, project="frozen", syncPolicy={"automated": {}})
    )

    def blocked(s: dict) -> bool:
        ready = next((c for c in s.get("conditions") or [] if c.get("type") == "Ready"), {})
        return ready.get("reason") == "SyncWindowClosed"

    status = await eventually(lambda: app_status(kube, namespace, "held"), blocked, timeout=30)
    assert status["sync"]["status"] == "OutOfSync"
    assert "sync window" in next(c["message"] for c in status["conditions"] if c["type"] == "Ready")
    assert await kube.get("v1", "ConfigMap", "windowed", namespace) is None
    assert "operationState" not in status


async def test_a_deny_window_holds_a_manual_sync_until_manual_sync_is_allowed_or_it_is_terminated(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Argo CD: a manual sync in a deny window stays Running, saying so, and applies nothing; with the window's
    ``manualSync: true`` it goes ahead; terminated while held, it ends without syncing."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("gated")})
    deny = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}

    async def project(manual_sync: bool) -> None:
        window = {**deny, "manualSync": manual_sync}
        spec = {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}], "syncWindows": [window]}
        await kube.apply(
            {"apiVersion": API, "kind": "Project", "metadata": {"name": "gate", "namespace": namespace}, "spec": spec}
        )

    await project(False)
    for name in ("gated", "dropped"):
        await kube.apply(application(name, namespace, repo.url, "app", namespace, project="gate"))
        await eventually(
            lambda n=name: app_status(kube, namespace, n), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
        )
        await kube.patch(
            API, "Application", name, namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "fay"}}}
        )

    def held(s: dict) -> bool:
        state = s.get("operationState") or {}
        return state.get("phase") == "Running" and "blocked by sync window" in state.get("message", "")

    await eventually(lambda: app_status(kube, namespace, "gated"), held, timeout=30)
    await eventually(lambda: app_status(kube, namespace, "dropped"), held, timeout=30)
    await asyncio.sleep(2)
    assert await kube.get("v1", "ConfigMap", "gated", namespace) is None  # held: nothing applied

    await kube.patch(
        API,
        "Application",
        "dropped",
        namespace,
        {"status": {"operationState": {"phase": "Terminating"}}},
        subresource="status",
    )
    state = (
        await eventually(
            lambda: app_status(kube, namespace, "dropped"),
            lambda s: terminated(s.get("operationState") or {}),
            timeout=30,
        )
    )["operationState"]
    assert state["operation"]["initiatedBy"]["username"] == "fay"
    assert await kube.get("v1", "ConfigMap", "gated", namespace) is None

    await project(True)  # the deny window now lets manual syncs through: the held one goes ahead at once
    await eventually(
        lambda: app_status(kube, namespace, "gated"),
        lambda s: (s.get("operationState") or {}).get("phase") == "Succeeded",
        timeout=20,
    )
    assert (await kube.get("v1", "ConfigMap", "gated", namespace))["data"]["value"] == "one"


async def test_managed_namespace_metadata_lands_on_the_created_namespace(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    target = f"{namespace}-meta"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("inside")})
    policy = {
        "automated": {},
        "syncOptions": ["CreateNamespace=true"],
        "managedNamespaceMetadata": {"labels": {"team": "blue"}, "annotations": {"owner": "platform"}},
    }
    await kube.apply(application("meta", namespace, repo.url, "app", target, syncPolicy=policy))
    try:
        await eventually(lambda: app_status(kube, namespace, "meta"), synced_healthy)
        live = await kube.get("v1", "Namespace", target)
        assert live is not None
        assert live["metadata"]["labels"]["team"] == "blue"
        assert live["metadata"]["annotations"]["owner"] == "platform"
        assert await kube.get("v1", "ConfigMap", "inside", target) is not None
    finally:
        await kube.delete("v1", "Namespace", target, propagation="Background")


async def test_orphaned_resources_warn_when_the_project_opts_in_and_repeated_objects_warn(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"one/a.yaml": configmap("shared", "first"), "two/a.yaml": configmap("shared", "second")})
    await kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray", "namespace": namespace}})
    await kube.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored-stray", "namespace": namespace}}
    )
    await kube.apply(
        {
            "apiVersion": API,
            "kind": "Project",
            "metadata": {"name": "tidy", "namespace": namespace},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "orphanedResources": {"warn": True, "ignore": [{"kind": "ConfigMap", "name": "ignored-*"}]},
            },
        }
    )
    app = application("tidy", namespace, repo.url, "one", namespace, project="tidy", syncPolicy={"automated": {}})
    del app["spec"]["source"]
    app["spec"]["sources"] = [
        {"repoURL": repo.url, "path": "one", "targetRevision": "HEAD"},
        {"repoURL": repo.url, "path": "two", "targetRevision": "HEAD"},
    ]
    await kube.apply(app)

    def warned(s: dict) -> bool:
        types = {c.get("type") for c in s.get("conditions") or []}
        return synced_healthy(s) and {"OrphanedResourceWarning", "RepeatedResourceWarning"} <= types

    status = await eventually(lambda: app_status(kube, namespace, "tidy"), warned, timeout=30)
    orphaned = next(c["message"] for c in status["conditions"] if c["type"] == "OrphanedResourceWarning")
    assert "ConfigMap/stray" in orphaned and "ignored-stray" not in orphaned and "shared" not in orphaned
    repeated = next(c["message"] for c in status["conditions"] if c["type"] == "RepeatedResourceWarning")
    assert "shared" in repeated
    assert (await kube.get("v1", "ConfigMap", "shared", namespace))["data"][
        "value"
    ] == "second"  # the later source wins


async def test_a_manual_sync_shows_what_it_waits_for_and_can_be_terminated(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    claim = (
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: waits\n"
        "spec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
    later = configmap("later").replace(
        "metadata:\n", "metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"
    )
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/claim.yaml": claim, "app/later.yaml": later})
    await kube.apply(application("manual", namespace, repo.url, "app", namespace))
    await eventually(
        lambda: app_status(kube, namespace, "manual"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )
    await kube.patch(
        API, "Application", "manual", namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "bob"}}}
    )
    # wave 0 never becomes healthy (no volume provisioner): the operation waits there
    await eventually(
        lambda: app_status(kube, namespace, "manual"),
        lambda s: (
            (s.get("operationState") or {}).get("phase") == "Running"
            and ((s.get("operationState") or {}).get("syncState") or {}).get("wave") == 0
            and any(
                t.get("name") == "waits" and t.get("status") == "Running"
                for t in s["operationState"]["syncState"]["tasks"]
            )
        ),
        timeout=30,
    )
    assert await kube.get("v1", "PersistentVolumeClaim", "waits", namespace) is not None
    # While it waits, the status says what for, what was applied, and the app's resources as they are
    # now (compared during the sync), not as they were before it: as in Argo CD.
    status = await eventually(
        lambda: app_status(kube, namespace, "manual"),
        lambda s: any(
            r.get("name") == "waits"
            and r.get("status") == "Synced"
            and (r.get("health") or {}).get("status") == "Progressing"
            for r in s.get("resources") or []
        ),
        timeout=20,
    )
    running = status["operationState"]
    assert running["phase"] == "Running"
    assert running["message"] == f"waiting for healthy state of PersistentVolumeClaim {namespace}/waits"
    assert [(r["kind"], r["name"], r["status"]) for r in running["syncResult"]["resources"]] == [
        ("PersistentVolumeClaim", "waits", "Synced")
    ]
    assert [(r["name"], r["status"]) for r in status["resources"] if r["name"] == "later"] == [("later", "OutOfSync")]
    await kube.patch(
        API,
        "Application",
        "manual",
        namespace,
        {"status": {"operationState": {"phase": "Terminating"}}},
        subresource="status",
    )
    status = await eventually(
        lambda: app_status(kube, namespace, "manual"),
        lambda s: terminated(s.get("operationState") or {}),
        timeout=30,
    )
    assert status["operationState"]["operation"]["initiatedBy"]["username"] == "bob"
    assert await kube.get("v1", "ConfigMap", "later", namespace) is None  # wave 1 never ran
    await eventually(
        lambda: kube.get(API, "Application", "manual", namespace), lambda o: o.get("operation") is None, timeout=10
    )
    assert status.get("history") in (None, [])  # a terminated sync adds no history


async def test_the_operations_sync_strategy_apply_runs_no_hook_and_force_recreates(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Argo CD's ``syncStrategy``: ``apply`` syncs the objects without hooks; ``force`` (either strategy)
    deletes and re-creates an object whose immutable field changed, as the ``Force=true`` option does."""
    frozen = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  value: {}\n"
    hook = configmap("posthook").replace(
        "metadata:\n", "metadata:\n  annotations:\n    argocd.argoproj.io/hook: PostSync\n"
    )
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/frozen.yaml": frozen.format("v1"), "app/hook.yaml": hook})
    await kube.apply(application("strategy", namespace, repo.url, "app", namespace))
    await eventually(
        lambda: app_status(kube, namespace, "strategy"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )

    async def sync(strategy: dict[str, object], count: int) -> dict[str, object]:
        operation = {"sync": {"syncStrategy": strategy}, "initiatedBy": {"username": "carol"}}
        await kube.patch(API, "Application", "strategy", namespace, {"operation": operation})
        return await eventually(
            lambda: app_status(kube, namespace, "strategy"),
            lambda s: len(s.get("history") or []) == count and not in_motion(s),
            timeout=30,
        )

    async def value(name: str) -> str | None:
        return ((await kube.get("v1", "ConfigMap", name, namespace)) or {}).get("data", {}).get("value")

    status = await sync({"apply": {}}, 1)
    assert status["operationState"]["phase"] == "Succeeded"
    assert await value("frozen") == "v1"
    assert await kube.get("v1", "ConfigMap", "posthook", namespace) is None  # the apply strategy ran no hook
    assert not any(r.get("hookPhase") for r in status["operationState"]["syncResult"]["resources"])

    repo.commit("v2", files={"app/frozen.yaml": frozen.format("v2")})
    await kube.patch(
        API, "Application", "strategy", namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "carol"}}}
    )
    refused = await eventually(
        lambda: app_status(kube, namespace, "strategy"),
        lambda s: (s.get("operationState") or {}).get("phase") in ("Failed", "Error"),
        timeout=30,
    )
    assert "immutable" in refused["operationState"]["message"]  # without force the change cannot be applied
    status = await sync({"hook": {"force": True}}, 2)
    assert status["operationState"]["phase"] == "Succeeded"
    assert await value("frozen") == "v2"  # deleted and re-created
    assert await value("posthook") == "one"  # the hook strategy ran the hook


async def test_a_manual_sync_goes_to_the_newest_commit_not_the_last_compared_one(
    unpolled: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """As in Argo CD, a manual sync without a revision resolves ``targetRevision`` when it runs: with
    polling an hour apart and no webhook, the controller has not seen the newest commit, yet syncs it."""
    repo = git_server.create_repo(unique_repo_name)
    first = repo.commit("v1", files={"app/a.yaml": configmap("a", "v1")})
    await kube.apply(application("fresh", namespace, repo.url, "app", namespace))
    await eventually(
        lambda: app_status(kube, namespace, "fresh"),
        lambda s: (s.get("sync") or {}).get("revision") == first and (s.get("sync") or {}).get("status") == "OutOfSync",
    )
    second = repo.commit("v2", files={"app/a.yaml": configmap("a", "v2")})
    await kube.patch(
        API, "Application", "fresh", namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "dan"}}}
    )
    status = await eventually(
        lambda: app_status(kube, namespace, "fresh"),
        lambda s: (s.get("operationState") or {}).get("phase") == "Succeeded",
        timeout=30,
    )
    assert status["operationState"]["syncResult"]["revision"] == second
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "v2"


async def test_an_operation_asked_of_an_app_that_fails_to_compare_runs_and_says_why(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """A manual sync of an app whose newest commit does not render ends in Error with the reason (field cleared,
    audited), not unanswered until the error goes; a rollback to a good revision still syncs; and an app its
    project forbids refuses the operation."""
    repo = git_server.create_repo(unique_repo_name)
    good = repo.commit("v1", files={"app/a.yaml": configmap("a", "v1")})
    await kube.apply(application("broken", namespace, repo.url, "app", namespace))
    await eventually(
        lambda: app_status(kube, namespace, "broken"), lambda s: (s.get("sync") or {}).get("revision") == good
    )
    repo.commit(
        "bad", files={"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels: [x]\n"}
    )

    async def operate(operation: dict[str, object]) -> dict[str, object]:
        await kube.patch(API, "Application", "broken", namespace, {"operation": operation})
        await eventually(
            lambda: kube.get(API, "Application", "broken", namespace), lambda o: o.get("operation") is None, timeout=30
        )
        return (await app_status(kube, namespace, "broken"))["operationState"]

    await eventually(
        lambda: app_status(kube, namespace, "broken"),
        lambda s: any(c.get("type") == "ComparisonError" for c in s.get("conditions") or []),
    )
    state = await operate({"sync": {}, "initiatedBy": {"username": "erin"}})
    assert state["phase"] == "Error" and "app/bad.yaml" in state["message"], state
    assert await kube.get("v1", "ConfigMap", "a", namespace) is None  # nothing was applied
    entries = await controller.audit.entries(f"{namespace}/broken") if controller.audit else []
    assert [(e.phase, e.initiated_by) for e in entries] == [("Error", "erin")]

    state = await operate({"sync": {"revision": good}, "initiatedBy": {"username": "erin"}})
    assert state["phase"] == "Succeeded", state
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "v1"

    await kube.patch(API, "Application", "broken", namespace, {"spec": {"destination": {"namespace": "kube-system"}}})
    forbidding = {
        "apiVersion": API,
        "kind": "Project",
        "metadata": {"name": "narrow", "namespace": namespace},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": namespace}]},
    }
    await kube.apply(forbidding)
    await kube.patch(API, "Application", "broken", namespace, {"spec": {"project": "narrow"}})
    await eventually(
        lambda: app_status(kube, namespace, "broken"),
        lambda s: any(c.get("type") == "InvalidSpecError" for c in s.get("conditions") or []),
    )
    state = await operate({"sync": {"revision": good}, "initiatedBy": {"username": "erin"}})
    assert state["phase"] == "Failed" and "kube-system" in state["message"], state


async def test_a_retry_with_refresh_syncs_the_fix_pushed_after_the_failure_and_one_without_does_not(
    unpolled: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Argo CD 3.1's ``retry.refresh``: the retry resolves ``targetRevision`` again (polling is an hour apart
    here, so nothing else could have seen the fix); without it, every retry syncs the revision that failed."""
    bad_port = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {}\nspec:\n  ports:\n    - port: {}\n"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "bad",
        files={"fresh/s.yaml": bad_port.format("fresh", 99999), "stale/s.yaml": bad_port.format("stale", 99999)},
    )
    for name, refresh in (("fresh", True), ("stale", False)):
        retry = {"limit": 2, "refresh": refresh, "backoff": {"duration": "5s", "factor": 1}}
        await kube.apply(
            application(name, namespace, repo.url, name, namespace, syncPolicy={"automated": {}, "retry": retry})
        )

    def retrying(s: dict[str, Any]) -> bool:
        return "Retrying attempt #1" in ((s.get("operationState") or {}).get("message") or "")

    for name in ("fresh", "stale"):
        await eventually(lambda n=name: app_status(kube, namespace, n), retrying, timeout=30)
    fixed = repo.commit(
        "fix", files={"fresh/s.yaml": bad_port.format("fresh", 80), "stale/s.yaml": bad_port.format("stale", 80)}
    )

    def ended(s: dict[str, Any]) -> bool:
        return (s.get("operationState") or {}).get("phase") in ("Succeeded", "Failed", "Error")

    fresh = (await eventually(lambda: app_status(kube, namespace, "fresh"), ended, timeout=40))["operationState"]
    assert fresh["phase"] == "Succeeded" and fresh["syncResult"]["revision"] == fixed, fresh
    stale = (await eventually(lambda: app_status(kube, namespace, "stale"), ended, timeout=40))["operationState"]
    assert stale["phase"] == "Failed" and stale["syncResult"]["revision"] != fixed, stale
    assert await kube.get("v1", "Service", "stale", namespace) is None


async def test_a_retry_backoff_cut_by_a_restart_is_waited_out_by_the_next_controller(
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    """As Argo CD: a retry waits until the failed attempt's ``finishedAt`` plus its delay, restart or not;
    the message says when, in Argo CD's words."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "bad",
        files={
            "app/s.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 99999\n"
        },
    )
    retry = {"limit": 2, "backoff": {"duration": "15s", "factor": 1}}
    await kube.apply(
        application("backedoff", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}, "retry": retry})
    )

    def state_of(s: dict[str, Any]) -> dict[str, Any]:
        return s.get("operationState") or {}

    async with running_controller(kube, namespace, tmp_path, pass_store):
        first = state_of(
            await eventually(
                lambda: app_status(kube, namespace, "backedoff"),
                lambda s: "Retrying attempt #1 at " in (state_of(s).get("message") or ""),
                timeout=30,
            )
        )
    assert first["phase"] == "Running" and first["retryCount"] == 1 and first.get("finishedAt"), first
    assert re.search(r"99999.*\. Retrying attempt #1 at ([1-9]|1[0-2]):[0-5][0-9](AM|PM)\.$", first["message"]), first
    ends_at = parse_time(first["finishedAt"]).timestamp() + 15  # type: ignore[union-attr]
    async with running_controller(kube, namespace, tmp_path, pass_store):
        # the new controller waits out the backoff: no second attempt before it ends
        while time.time() < ends_at - 3:
            now = state_of(await app_status(kube, namespace, "backedoff"))
            assert now.get("retryCount") == 1 and now.get("finishedAt") == first["finishedAt"], now
            await asyncio.sleep(0.5)
        second = state_of(
            await eventually(
                lambda: app_status(kube, namespace, "backedoff"),
                lambda s: "Retrying attempt #2 at " in (state_of(s).get("message") or ""),
                timeout=30,
            )
        )
    assert parse_time(second["finishedAt"]).timestamp() >= ends_at - 1, (first, second)  # type: ignore[union-attr]


@pytest.mark.parametrize("sources", [1, 2], ids=["one-source", "two-sources"])
async def test_a_stopped_controller_saves_a_manual_sync_and_the_next_one_resumes_it(
    sources: int,
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    claim = (
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  storageClassName: ''\n"
        f"  volumeName: {namespace}-pv\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
    later = configmap("after-restart").replace(
        "metadata:\n", "metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"
    )
    repo = git_server.create_repo(unique_repo_name)
    wave_1 = "metadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"
    extra = configmap("extra").replace("metadata:\n", wave_1)
    started_at = repo.commit("v1", files={"app/claim.yaml": claim, "app/later.yaml": later, "extra/cm.yaml": extra})
    settings = settings_for(namespace, tmp_path / "state", pass_store)
    spec: dict[str, Any] = {}
    if sources == 2:  # each source's commit is saved and resumed
        spec["sources"] = [{"repoURL": repo.url, "path": path, "targetRevision": "HEAD"} for path in ("app", "extra")]
    first = Controller(settings, kube)
    await first.start()
    try:
        await kube.apply(application("resumed", namespace, repo.url, "app", namespace, **spec))
        await eventually(
            lambda: app_status(kube, namespace, "resumed"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
        )
        await kube.patch(
            API, "Application", "resumed", namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "eve"}}}
        )
        waiting = await eventually(
            lambda: app_status(kube, namespace, "resumed"),
            lambda s: any(
                t.get("name") == "data" and t.get("status") == "Running"
                for t in ((s.get("operationState") or {}).get("syncState") or {}).get("tasks") or []
            ),
            timeout=30,
        )
    finally:
        await first.stop()  # what SIGTERM does: the operation stops where it can be resumed
    run_id = waiting["operationState"]["syncState"]["runId"]
    saved = await app_status(kube, namespace, "resumed")
    assert saved["operationState"]["phase"] == "Running"
    assert await kube.get("v1", "ConfigMap", "after-restart", namespace) is None
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-pv"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "hostPath": {"path": "/tmp/unused"},
            "claimRef": {"namespace": namespace, "name": "data"},
        },
    }
    await kube.apply(volume)
    repo.commit(
        "v2 while down",
        files={
            "app/later.yaml": later.replace("value: one", "value: two"),
            "extra/cm.yaml": extra.replace("value: one", "value: two"),
        },
    )
    second = Controller(settings, kube)
    await second.start()
    try:
        done = await eventually(
            lambda: app_status(kube, namespace, "resumed"),
            lambda s: (s.get("operationState") or {}).get("phase") == "Succeeded",
            timeout=60,
        )
        # it went on at the commit it started at, not the one pushed while the controller was down
        assert (await kube.get("v1", "ConfigMap", "after-restart", namespace))["data"]["value"] == "one"
        if sources == 2:
            assert (await kube.get("v1", "ConfigMap", "extra", namespace))["data"]["value"] == "one"
            assert done["operationState"]["syncResult"]["revisions"] == [started_at, started_at]
        else:
            assert done["operationState"]["syncResult"]["revision"] == started_at
        assert done["history"][-1]["initiatedBy"]["username"] == "eve"
        await eventually(
            lambda: kube.get(API, "Application", "resumed", namespace), lambda o: o.get("operation") is None, timeout=10
        )
        entries = await second.audit.entries(f"{namespace}/resumed") if second.audit else []
        assert len(entries) == 1 and entries[0].phase == "Succeeded"  # one record for the resumed operation
    finally:
        await second.stop()
        await kube.delete("v1", "PersistentVolume", f"{namespace}-pv", propagation="Background")
    assert run_id  # the same run continued: its id was saved before the stop


def rolling_deployment(name: str) -> str:
    """A Deployment whose app shows Progressing after its sync, until kwok's pods have been ready for 3 s
    (``minReadySeconds``: the window stays open on a loaded machine, where the comparison after a sync
    may come later than kwok's pods)."""
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n"
        "  minReadySeconds: 3\n"
        f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n"
        f"    spec:\n      containers:\n      - {{name: web, image: nginx}}\n"
    )


async def test_events_wait_while_a_burst_of_syncs_runs_and_settles_and_none_is_lost(
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    """Held from the first queued sync until the last operation has ended and every app it synced
    left Progressing: the apps' Deployments still roll out after their syncs end."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={f"app{i}/a.yaml": rolling_deployment(f"d{i}") for i in range(4)})
    controller = Controller(settings_for(namespace, tmp_path / "state", pass_store, max_syncs=1), kube)
    await controller.start()
    names = [f"q{i}" for i in range(4)]
    samples: list[tuple[bool, int, int]] = []  # (Events held, operations queued or running, apps in motion)

    async def watch_the_hold() -> None:
        while True:
            running = sum(memory.operating for memory in controller.memory.values())
            moving = sum(in_motion(controller.statuses.get(name) or {}) for name in names)
            samples.append((controller.events.held, running, moving))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_the_hold())
    try:
        for i, name in enumerate(names):
            await kube.apply(application(name, namespace, repo.url, f"app{i}", namespace, syncPolicy={"automated": {}}))
        for name in names:
            await eventually(lambda name=name: app_status(kube, namespace, name), synced_healthy)
        await eventually(lambda: _released(controller), bool, timeout=10)
        await controller.events.drain()
    finally:
        watcher.cancel()
        await controller.stop()
    held = [h for h, _, _ in samples]
    assert any(held), "four syncs on one slot: their Events were never held"
    burst = samples[held.index(True) :]
    ended = next(i for i, (_, running, _) in enumerate(burst) if running == 0)
    assert all(h for h, _, _ in burst[:ended]), "the hold ended while the burst's last syncs still ran"
    assert any(moving for _, running, moving in burst[ended:]), "no app was still rolling out after its sync"
    released = next(i for i, (h, _, _) in enumerate(burst) if not h)
    assert all(moving == 0 for _, _, moving in burst[released:]), "the hold ended while an app still rolled out"
    assert controller.events.dropped == 0
    items, _ = await kube.list("v1", "Event", namespace)
    completed = {e["involvedObject"]["name"] for e in items if e["reason"] == "OperationCompleted"}
    assert completed == set(names)


async def _released(controller: Controller) -> bool:
    return not controller.events.held and not controller.operations.active


BAD_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
      - {name: main, image: busybox, imagePullPolicy: Sometimes}
"""


async def test_a_rejected_object_names_its_chart_template_and_the_field(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """The operation says which template of the chart in git made the object the API server refused."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "chart",
        files={
            "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
            "charts/web/templates/cm.yaml": configmap("fine"),
            "charts/web/templates/deploy.yaml": BAD_DEPLOYMENT,
        },
    )
    await kube.apply(
        application("rejected-chart", namespace, repo.url, "charts/web", namespace, syncPolicy={"automated": {}})
    )
    status = await eventually(
        lambda: app_status(kube, namespace, "rejected-chart"),
        lambda s: (s.get("operationState") or {}).get("phase") == "Failed",
    )
    message = status["operationState"]["message"]
    named = f"Deployment.apps {namespace}/bad (charts/web/templates/deploy.yaml): "
    assert named in message and "imagePullPolicy" in message, message
    assert message.count(f"{namespace}/bad") == 1, message  # the object is named once, not by every layer
    (row,) = [r for r in status["operationState"]["syncResult"]["resources"] if r["kind"] == "Deployment"]
    assert row["message"].startswith(named) and row["status"] == "SyncFailed", row
    assert await kube.get("v1", "ConfigMap", "fine", namespace) is None
