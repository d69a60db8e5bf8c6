"""A multi-source app end to end with the real parts: two repositories on the git server, a
chart in one and its values (with a ``pass`` placeholder) in the other through ``ref``, plus a
plain source, synced to the devcluster; then a values commit reaches the cluster and a
commit that leaves the values alone is a render-cache hit that changes nothing live.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from pathlib import Path

from tether.cluster import Cluster
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore
from tether.model.source import ApplicationSource
from tether.pipeline import DesiredState, desired_state_of_sources
from tether.render.cache import RenderCache
from tether.secrets import PassBackend
from tether.source import GitCache
from tether.sync import SyncOptions, sync_app

CHART = {
    "web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "web/values.yaml": "color: unset\npassword: unset\n",
    "web/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        "data:\n  color: {{ .Values.color | quote }}\n"
    ),
    "web/templates/secret.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-db\n"
        "stringData:\n  password: {{ .Values.password | quote }}\n"
    ),
}


def values(color: str, entry: str) -> str:
    return f"color: {color}\npassword: <pass:{entry}>\n"


async def test_a_chart_with_values_from_another_repository_reaches_the_cluster(
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    entry, canary = f"e2e/multi-{secrets.token_hex(3)}", f"canary-{secrets.token_hex(8)}"
    pass_store.insert(entry, f"{canary}\n")
    charts = git_server.create_repo(f"ms-charts-{uuid.uuid4().hex[:8]}")
    charts.commit("chart", CHART)
    config = git_server.create_repo(f"ms-config-{uuid.uuid4().hex[:8]}")
    config.commit(
        "values and a plain manifest",
        {
            "envs/prod/web.yaml": values("red", entry),
            "extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  from: config\n",
            "README.md": "config\n",
        },
    )
    sources = [
        ApplicationSource.model_validate(
            {
                "repoURL": charts.url,
                "path": "web",
                "targetRevision": "main",
                "helm": {"valueFiles": ["$config/envs/prod/web.yaml"]},
            }
        ),
        ApplicationSource.model_validate({"repoURL": config.url, "targetRevision": "main", "ref": "config"}),
        ApplicationSource.model_validate({"repoURL": config.url, "path": "extra", "targetRevision": "main"}),
    ]
    backend = PassBackend(pass_store.store_dir, pass_store.gnupg_home, environ={**os.environ, **pass_store.env})
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    async def render_and_sync() -> DesiredState:
        state = await desired_state_of_sources(
            "shop", sources, git=git, cache=cache, secrets_backend=backend, namespace=namespace
        )
        result = await sync_app("shop", state.objects, cluster=kube, options=SyncOptions(namespace=namespace))
        assert result.succeeded, result.message
        assert canary not in str(result.to_dict())
        return state

    first = await render_and_sync()
    assert first.revisions == (charts.head, config.head, config.head) and not first.cache_hit
    settings = await kube.get("v1", "ConfigMap", "shop-settings", namespace)
    assert settings is not None and settings["data"] == {"color": "red"}
    secret = await kube.get("v1", "Secret", "shop-db", namespace)
    assert secret is not None and base64.b64decode(secret["data"]["password"]).decode() == canary
    extra = await kube.get("v1", "ConfigMap", "extra", namespace)
    assert extra is not None and extra["data"] == {"from": "config"}

    config.commit("docs only", {"README.md": "config, again\n"})
    second = await render_and_sync()
    assert second.cache_hit and cache.stats.renders == 2  # the chart and the plain source, once each

    config.commit("blue in prod", {"envs/prod/web.yaml": values("blue", entry)})
    third = await render_and_sync()
    assert not third.cache_hit and third.revisions[1] == config.head
    settings = await kube.get("v1", "ConfigMap", "shop-settings", namespace)
    assert settings is not None and settings["data"] == {"color": "blue"}
    assert cache.stats.renders == 3  # only the chart rendered again; the plain source's path did not change
    for path in (tmp_path / "render").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
