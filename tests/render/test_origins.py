"""Where each rendered object came from: the file an error about it names, kept through the render cache."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.render.helpers import manifest, render_local, write_tree
from tether.model.source import ApplicationSource
from tether.pipeline import desired_state, desired_state_of_sources
from tether.render.cache import RenderCache
from tether.render.helm import template_files
from tether.render.manifests import source_comments
from tether.resource import NO_ORIGINS, Origins, ResourceKey
from tether.source import GitCache

CHART = {
    "web/Chart.yaml": "apiVersion: v2\nname: web-chart\nversion: 0.1.0\n",
    "web/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n",
    "web/templates/svc.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-svc\nspec:\n  ports:\n  - port: 80\n"
    ),
    "web/templates/empty.yaml": "{{- if false }}\nkind: Nothing\n{{- end }}\n",
    "web/charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
    "web/charts/db/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db-cm\n",
}


def files_by_name(objects: list[dict[str, Any]], files: tuple[str, ...]) -> dict[str, str]:
    return {f"{o['kind']}/{o['metadata']['name']}": file for o, file in zip(objects, files, strict=True)}


def test_helm_source_comments_are_numbered_as_yaml_numbers_documents() -> None:
    text = (
        "# a comment before any document\n"
        "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n"
        "---\n# Source: c/templates/empty.yaml\n"
        "---\n# Source: c/templates/b.yaml\n# Source: not/this.yaml\nkind: ConfigMap\n"
    )
    assert source_comments(text) == ["c/templates/a.yaml", "c/templates/empty.yaml", "c/templates/b.yaml"]
    # content before the first marker is a document of its own
    assert source_comments("kind: A\n---\n# Source: c/x.yaml\nkind: B\n") == ["", "c/x.yaml"]
    # markers counting by lines could get wrong: no answer rather than a wrong one
    assert source_comments("kind: A\n...\n---\nkind: B\n") is None
    assert source_comments("%YAML 1.2\n---\nkind: A\n") is None
    # Helm names the chart, the repository path takes its place
    assert template_files("apps/web", "---\n# Source: web-chart/charts/db/templates/cm.yaml\nkind: A\n") == [
        "apps/web/charts/db/templates/cm.yaml"
    ]
    assert template_files(".", "---\n# Source: web-chart/templates/cm.yaml\nkind: A\n") == ["templates/cm.yaml"]


async def test_each_object_names_its_file_for_every_source_type(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            **CHART,
            "plain/a.yaml": manifest("ConfigMap", "a") + "---\n" + manifest("ConfigMap", "a2"),
            "plain/list.json": json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": [json.loads(manifest("ConfigMap", "in-list"))]}
            ),
            "plain/sub/deep.yaml": manifest("ConfigMap", "deep"),
            "plain/gen.jsonnet": '{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "from-jsonnet"}}\n',
            "base/kustomization.yaml": "resources:\n- a.yaml\n",
            "base/a.yaml": manifest("ConfigMap", "a") + "---\n" + manifest("ConfigMap", "a2"),
            "kz/kustomization.yaml": (
                "resources:\n- ../base\nnamePrefix: k-\nconfigMapGenerator:\n- name: generated\n  literals: [a=b]\n"
            ),
            "own/kustomization.yaml": "resources:\n- ../base\nbuildMetadata: [originAnnotations, managedByLabel]\n",
            "labelled/kustomization.yaml": "resources:\n- ../base\nbuildMetadata: [managedByLabel]\n",
            "fifo/kustomization.yaml": "resources:\n- r.yaml\nsortOptions: {order: fifo}\n",
            "fifo/r.yaml": manifest("Service", "first") + "---\n" + manifest("Namespace", "second"),
        },
    )
    plain = await render_local(root, "plain", directory={"recurse": True})
    assert files_by_name(plain.objects, plain.files) == {
        "ConfigMap/a": "plain/a.yaml",
        "ConfigMap/a2": "plain/a.yaml",
        "ConfigMap/in-list": "plain/list.json",
        "ConfigMap/deep": "plain/sub/deep.yaml",
        "ConfigMap/from-jsonnet": "plain/gen.jsonnet",
    }
    chart = await render_local(root, "web", app="rel")
    assert files_by_name(chart.objects, chart.files) == {
        "ConfigMap/rel-cm": "web/templates/cm.yaml",
        "Service/rel-svc": "web/templates/svc.yaml",
        "ConfigMap/db-cm": "web/charts/db/templates/cm.yaml",
    }
    built = await render_local(root, "kz")
    # kustomize says where each object came from; a generated one comes from the kustomization
    by_name = files_by_name(built.objects, built.files)
    generated = next(name for name in by_name if name.startswith("ConfigMap/k-generated-"))
    assert by_name == {
        "ConfigMap/k-a": "base/a.yaml",
        "ConfigMap/k-a2": "base/a.yaml",
        generated: "kz/kustomization.yaml",
    }
    assert all("annotations" not in o["metadata"] for o in built.objects), built.objects  # asked for by Tether only
    # the same through the scratch mirror an override builds in
    overridden = await render_local(root, "kz", kustomize={"namePrefix": "o-"})
    assert files_by_name(overridden.objects, overridden.files)["ConfigMap/o-a"] == "base/a.yaml"
    # an app with buildMetadata of its own keeps what it asks for (only the outermost kustomization's counts)
    own = await render_local(root, "own")
    assert all("config.kubernetes.io/origin" in o["metadata"]["annotations"] for o in own.objects)
    assert all("app.kubernetes.io/managed-by" in o["metadata"]["labels"] for o in own.objects)
    assert set(own.files) == {"own/kustomization.yaml"}
    labelled = await render_local(root, "labelled")
    assert all("app.kubernetes.io/managed-by" in o["metadata"]["labels"] for o in labelled.objects)
    # the app's own sortOptions still decide the order (only the outermost kustomization's count)
    fifo = await render_local(root, "fifo")
    assert [o["kind"] for o in fifo.objects] == ["Service", "Namespace"] and set(fifo.files) == {"fifo/r.yaml"}


def test_origins_find_an_object_wherever_its_namespace_was_filled_in() -> None:
    written = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "other"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}},
    ]
    origins = Origins.of(written, ["a.yaml", "b.yaml", ""])
    assert origins.named(ResourceKey("", "ConfigMap", "dest", "x")) == "ConfigMap dest/x (a.yaml)"
    assert origins.named(ResourceKey("", "ConfigMap", "other", "y")) == "ConfigMap other/y (b.yaml)"
    assert origins.file(ResourceKey("", "ConfigMap", "dest", "y")) == ""  # named its own namespace: only there
    assert origins.named(ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "r")) == (
        "ClusterRole.rbac.authorization.k8s.io r"  # no file known: the key alone
    )
    later = origins | Origins.of(written[:1], ["c.yaml"])
    assert later.file(ResourceKey("", "ConfigMap", "", "x")) == "c.yaml"
    assert NO_ORIGINS.named(ResourceKey("", "ConfigMap", "dest", "x")) == "ConfigMap dest/x"


async def test_the_files_survive_the_render_cache_and_name_the_source_of_several(
    git_server: Any, tmp_path: Path
) -> None:
    repo = git_server.create_repo(f"origins-{uuid.uuid4().hex[:8]}")
    repo.commit("apps", {**CHART, "plain/a.yaml": manifest("ConfigMap", "a")})
    spec = ApplicationSource.model_validate({"repoURL": repo.url, "path": "web", "targetRevision": "main"})
    git = GitCache(tmp_path / "git")
    first = await desired_state("rel", spec, git=git, cache=RenderCache(tmp_path / "render"), secrets_backend=None)
    restarted = RenderCache(tmp_path / "render")  # a new process: the entry is read from disk
    again = await desired_state("rel", spec, git=git, cache=restarted, secrets_backend=None)
    assert again.cache_hit and restarted.stats.renders == 0
    key = ResourceKey("", "Service", "", "rel-svc")
    assert first.origins.file(key) == again.origins.file(key) == "web/templates/svc.yaml"

    plain = ApplicationSource.model_validate({"repoURL": repo.url, "path": "plain", "targetRevision": "main"})
    both = await desired_state_of_sources("rel", [spec, plain], git=git, cache=restarted, secrets_backend=None)
    assert (
        both.origins.named(ResourceKey("", "ConfigMap", "ns", "a"))
        == "ConfigMap ns/a (plain/a.yaml of spec.sources[1])"
    )
    assert both.origins.file(key) == "web/templates/svc.yaml of spec.sources[0]"
