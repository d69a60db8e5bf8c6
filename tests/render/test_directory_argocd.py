"""Directory apps read as Argo CD's findManifests reads them: other YAML skipped, the skip marker, broken manifests refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from tests.render.helpers import names, render_local, write_tree
from tether.render import RenderError

CONFIG_MAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
"""

# Files that sit beside manifests in real repositories and that Argo CD skips.
HELM_VALUES = """# values for the chart next door
replicaCount: 2
image:
  repository: nginx
  tag: "1.27"
"""
CI_CONFIG = """stages: [build, test]
build:
  script:
    - make
"""
NOT_YAML = "key: [unclosed\n  other: {\n"
TOP_LEVEL_LIST = "- one\n- two\n"

# A manifest gone wrong: it looks like one, so Argo CD fails the render.
BROKEN_MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
data: [unclosed
"""
HALF_VALID = CONFIG_MAP.replace("settings", "first") + "---\nreplicaCount: 2\n"

SKIPPED_MANIFEST = """# +argocd:skip-file-rendering
apiVersion: v1
kind: ConfigMap
metadata:
  name: example
data:
  not-actually: a-manifest
"""
SKIPPED_TEMPLATE = """{{- /* +argocd:skip-file-rendering */ -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.name }}
"""
SKIPPED_JSONNET = "// +argocd:skip-file-rendering\nthis is not jsonnet at all\n"


async def test_yaml_that_is_not_a_kubernetes_object_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/settings.yaml": CONFIG_MAP,
            "app/values.yaml": HELM_VALUES,
            "app/.gitlab-ci.yml": CI_CONFIG,
            "app/notes.yaml": NOT_YAML,
            "app/list.yaml": TOP_LEVEL_LIST,
        },
    )
    with structlog.testing.capture_logs() as logs:
        rendered = await render_local(tmp_path, "app")
    assert names(rendered.objects) == ["ConfigMap/settings"]
    skipped = sorted(e["file"] for e in logs if e["event"] == "skipped a file that is not a Kubernetes manifest")
    assert skipped == ["app/.gitlab-ci.yml", "app/list.yaml", "app/notes.yaml", "app/values.yaml"]
    assert all(e["log_level"] == "warning" and e["app"] == "app" for e in logs if "file" in e)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BROKEN_MANIFEST, r"manifest app/broken.yaml: invalid YAML in document 1"),
        (HALF_VALID, r"manifest app/broken.yaml: document 2 is not a Kubernetes object"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: [x]\n", r"manifest app/broken.yaml: .*metadata"),
        ("kind: ConfigMap\nmetadata:\n  name: x\napiVersion: 7\n", r"manifest app/broken.yaml: document 1 is not"),
    ],
    ids=["syntax", "second-document", "bad-field", "non-string-apiVersion"],
)
async def test_a_file_that_looks_like_a_manifest_but_does_not_parse_is_an_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    write_tree(tmp_path, {"app/settings.yaml": CONFIG_MAP, "app/broken.yaml": text})
    with pytest.raises(RenderError, match=rf"app 'app': {message}"):
        await render_local(tmp_path, "app")


async def test_json_files_must_still_hold_one_object(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/settings.yaml": CONFIG_MAP, "app/package.json": '{"name": "web", "version": "1.0.0"}'})
    with pytest.raises(RenderError, match=r"manifest app/package.json: .*not a Kubernetes object"):
        await render_local(tmp_path, "app")


async def test_the_skip_file_rendering_marker_is_honoured_in_yaml_templates_and_jsonnet(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/settings.yaml": CONFIG_MAP,
            "app/example.yaml": SKIPPED_MANIFEST,
            "app/template.yaml": SKIPPED_TEMPLATE,
            "app/broken.yaml": BROKEN_MANIFEST.replace("data:", "# +argocd:skip-file-rendering\ndata:"),
            "app/lib.jsonnet": SKIPPED_JSONNET,
        },
    )
    with structlog.testing.capture_logs() as logs:
        rendered = await render_local(tmp_path, "app")
    assert names(rendered.objects) == ["ConfigMap/settings"]
    assert not [e for e in logs if e["log_level"] == "warning"]  # skipped on purpose: nothing to warn about


async def test_the_loaders_limits_stay_errors_in_any_file(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    write_tree(tmp_path, {"app/settings.yaml": CONFIG_MAP, "app/values.yaml": bomb})
    with pytest.raises(RenderError, match=r"manifest app/values.yaml: document 1: .*aliases expanded"):
        await render_local(tmp_path, "app")
