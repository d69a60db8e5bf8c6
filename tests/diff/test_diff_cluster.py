"""diff_app against the real devcluster: server-side diff, drift, masking, ignore rules, fallbacks, extraneous."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tether.cluster import Cluster, LiveCache
from tether.diff import EXTRANEOUS, MISSING, OUT_OF_SYNC, SYNCED, AppDiff, JqTimeout, diff_app
from tether.resource import ResourceKey, mark

APP = "shop"


def deployment(namespace: str, replicas: int = 2, image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def config_map(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def secret(namespace: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": namespace},
        "type": "Opaque",
        "data": {"token": base64.b64encode(token.encode()).decode(), "user": "YWRtaW4="},
    }


async def synced(kube: Cluster, cache: LiveCache, *objects: dict[str, Any], app: str = APP) -> None:
    """Apply as Tether's sync does (marked, server-side, forced) and wait until the cache has the writes."""
    await cache.ensure(objects)
    for obj in objects:
        written = await kube.apply(mark(obj, app), force=True)
        await seen(cache, written)


async def seen(cache: LiveCache, written: dict[str, Any]) -> None:
    rv = int(written["metadata"]["resourceVersion"])
    await cache.wait_for(
        ResourceKey.of(written), lambda o: o is not None and int(o["metadata"]["resourceVersion"]) >= rv, timeout=20
    )


async def diff(kube: Cluster, cache: LiveCache, desired: list[dict[str, Any]], **kwargs: Any) -> AppDiff:
    return await diff_app(APP, desired, cluster=kube, cache=cache, **kwargs)


def only(report: AppDiff, kind: str) -> Any:
    found = [r for r in report.resources if r.key.kind == kind]
    assert len(found) == 1, report.resources
    return found[0]


async def test_applied_objects_are_in_sync_and_server_defaults_are_not_drift(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    desired = [deployment(namespace), config_map(namespace, "cfg", a="1")]
    await synced(kube, cache, *desired)
    live = cache.get(ResourceKey("apps", "Deployment", namespace, "web"))
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted by the server, absent from git
    assert live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"

    report = await diff(kube, cache, desired)
    assert report.in_sync, report.text()
    assert [r.status for r in report.resources] == [SYNCED, SYNCED]
    assert report.text() == ""


async def test_replicas_drift_from_a_direct_patch_shows_in_paths_and_text(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    desired = [deployment(namespace, replicas=2)]
    await synced(kube, cache, *desired)
    await seen(cache, await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 5}}))

    report = await diff(kube, cache, desired)
    web = only(report, "Deployment")
    assert not report.in_sync
    assert web.status == OUT_OF_SYNC and web.comparison == "server-side"
    assert web.changed == ["/spec/replicas"]
    assert web.live["spec"]["replicas"] == 5 and web.predicted["spec"]["replicas"] == 2
    text = report.text()
    assert f"===== Deployment.apps {namespace}/web (OutOfSync) =====" in text
    assert "-  replicas: 5" in text and "+  replicas: 2" in text


async def test_changed_secret_value_is_masked_everywhere(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    old, new = "canary-old-7f3a9c", "canary-new-91b2e4"
    await synced(kube, cache, secret(namespace, old))

    report = await diff(kube, cache, [secret(namespace, new)])
    creds = only(report, "Secret")
    assert creds.status == OUT_OF_SYNC and creds.changed == ["/data/token"]
    assert creds.predicted["data"] == {"token": "++++++++ (changed)", "user": "++++++++"}
    assert creds.live["data"] == {"token": "++++++++", "user": "++++++++"}
    text = report.text()
    assert "-  token: ++++++++" in text and "+  token: ++++++++ (changed)" in text
    exposed = "\n".join([text, repr(report), repr(report.resources), json.dumps(report.to_dict())])
    for value in (old, new, "admin"):
        assert value not in exposed
        assert base64.b64encode(value.encode()).decode() not in exposed


async def test_string_data_secret_in_sync_when_values_match(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    desired = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "plain", "namespace": namespace},
        "stringData": {"password": "hunter2-canary"},
    }
    await synced(kube, cache, desired)
    report = await diff(kube, cache, [desired])
    assert report.in_sync, report.text()


@pytest.mark.parametrize(
    "rule",
    [
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
        {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.replicas"]},
    ],
    ids=["jsonPointers", "jqPathExpressions"],
)
async def test_ignore_differences_suppress_replica_drift(
    kube: Cluster, namespace: str, cache: LiveCache, rule: dict
) -> None:
    desired = [deployment(namespace, replicas=2)]
    await synced(kube, cache, *desired)
    await seen(cache, await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 4}}))
    assert not (await diff(kube, cache, desired)).in_sync
    report = await diff(kube, cache, desired, ignore_differences=[rule])
    assert report.in_sync, report.text()


async def test_jq_select_ignores_one_container_image(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    desired = [deployment(namespace, image="nginx:1.27")]
    await synced(kube, cache, *desired)
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"}]
    await seen(cache, await kube.patch("apps/v1", "Deployment", "web", namespace, patch, patch_type="json"))
    assert only(await diff(kube, cache, desired), "Deployment").changed == ["/spec/template/spec/containers/0/image"]
    rule = {
        "group": "apps",
        "kind": "Deployment",
        "name": "web",
        "jqPathExpressions": ['.spec.template.spec.containers[] | select(.name == "web") | .image'],
    }
    assert (await diff(kube, cache, desired, ignore_differences=[rule])).in_sync


async def test_managed_fields_managers_ignore_what_another_manager_owns(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    desired = [deployment(namespace, replicas=2)]
    await synced(kube, cache, *desired)
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": 7},
    }
    await seen(cache, await kube.apply(scale, field_manager="autoscaler", force=True))
    assert only(await diff(kube, cache, desired), "Deployment").changed == ["/spec/replicas"]
    rule = {"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["autoscaler"]}
    assert (await diff(kube, cache, desired, ignore_differences=[rule])).in_sync


async def test_runaway_jq_expression_times_out_with_a_clear_error(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    desired = [config_map(namespace, "cfg", a="1")]
    await synced(kube, cache, *desired)
    for expr in ("def f: f; f", "[range(1e9)] | .[0]"):
        rule = {"group": "", "kind": "ConfigMap", "jqPathExpressions": [expr]}
        started = time.monotonic()
        with pytest.raises(JqTimeout) as caught:
            await diff(kube, cache, desired, ignore_differences=[rule], jq_timeout=1.0)
        assert time.monotonic() - started < 15
        message = str(caught.value)
        assert f"app 'shop': ConfigMap {namespace}/cfg: jq expression {expr!r}" in message
        assert "did not finish within 1s" in message or "memory cap" in message


async def test_custom_resource_without_its_crd_is_missing_through_the_fallback(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    widget = {"apiVersion": "nocrd.tether.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    report = await diff_app(APP, [widget], cluster=kube, cache=cache, namespace=namespace)
    w = only(report, "Widget")
    assert w.status == MISSING and w.comparison == "client-side"
    assert "CRD" in (w.note or "")
    assert w.key == ResourceKey("nocrd.tether.dev", "Widget", namespace, "w")  # placed in the destination namespace
    assert w.predicted["spec"] == {"size": 3} and w.live is None
    assert not report.in_sync
    assert "+  size: 3" in report.text()


async def test_object_in_a_missing_namespace_is_missing_through_the_fallback(kube: Cluster, cache: LiveCache) -> None:
    report = await diff_app(APP, [config_map("t-nowhere-at-all", "cfg", a="1")], cluster=kube, cache=cache)
    cfg = only(report, "ConfigMap")
    assert cfg.status == MISSING and cfg.comparison == "client-side" and "does not exist" in cfg.note


async def test_missing_object_is_predicted_by_the_server_with_defaults(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    report = await diff(kube, cache, [deployment(namespace)])
    web = only(report, "Deployment")
    assert web.status == MISSING and web.comparison == "server-side"
    assert web.predicted["spec"]["strategy"]["type"] == "RollingUpdate"
    assert web.predicted["metadata"]["labels"] == {"tether.dev/app": APP}
    assert "tether.dev/tracking-id" not in str(web.predicted)


async def test_extraneous_owned_object_and_ignore_extraneous(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    keep = config_map(namespace, "keep", a="1")
    leftover = config_map(namespace, "leftover", a="1")
    await synced(kube, cache, keep, leftover)
    await synced(kube, cache, config_map(namespace, "not-ours", a="1"), app="blog")

    report = await diff(kube, cache, [keep])
    assert [(r.key.name, r.status) for r in report.resources] == [("keep", SYNCED), ("leftover", EXTRANEOUS)]
    assert not report.in_sync
    assert "-  a: '1'" in report.text() or '-  a: "1"' in report.text()

    leftover["metadata"]["annotations"] = {"argocd.argoproj.io/compare-options": "IgnoreExtraneous"}
    await synced(kube, cache, leftover)
    report = await diff(kube, cache, [keep])
    extraneous = next(r for r in report.resources if r.key.name == "leftover")
    assert extraneous.status == EXTRANEOUS and extraneous.ignore_extraneous
    assert report.in_sync


async def test_live_object_of_another_app_is_reported_as_shared(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    desired = config_map(namespace, "common", a="1")
    await synced(kube, cache, desired, app="blog")
    cfg = only(await diff(kube, cache, [desired]), "ConfigMap")
    assert cfg.owner == "blog" and cfg.shared_with == "blog"
    assert cfg.status == OUT_OF_SYNC and cfg.changed == ["/metadata/labels/tether.dev~1app"]


async def test_pre_existing_unmanaged_object_is_seen(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    await kube.apply(config_map(namespace, "legacy", a="old"), field_manager="kubectl")
    cfg = only(await diff(kube, cache, [config_map(namespace, "legacy", a="new")]), "ConfigMap")
    assert cfg.status == OUT_OF_SYNC and cfg.owner is None
    assert cfg.changed == ["/data/a", "/metadata/labels"]


async def test_hooks_take_no_part(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    hook = config_map(namespace, "migrate", a="1")
    hook["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "PreSync"}
    report = await diff(kube, cache, [hook])
    assert report.resources == [] and report.in_sync
