"""Argo CD's parameter override files (.argocd-source.yaml, .argocd-source-<app>.yaml), with the real helm and kustomize."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.render.helpers import CORPUS, render_local, symlink, write_tree
from tether.render import RenderError
from tether.render.overrides import merge_patch


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    shutil.copytree(CORPUS / "helm-guestbook", tmp_path / "repo" / "gb")
    return tmp_path / "repo"


def _deployment(objects: list[dict]) -> dict:
    return next(o for o in objects if o["kind"] == "Deployment")


async def test_image_updater_write_back_file_sets_helm_parameters(chart: Path) -> None:
    # What Argo CD Image Updater commits: lower-case "forcestring", as Go's case-blind decoding accepts.
    write_tree(
        chart,
        {
            "gb/.argocd-source-shop.yaml": (
                "helm:\n  parameters:\n  - name: image.tag\n    value: '0123'\n    forcestring: true\n"
                "  - name: image.repository\n    value: registry.example/guestbook\n    forcestring: true\n"
            ),
            "gb/.argocd-source-other.yaml": "helm:\n  parameters:\n  - {name: image.tag, value: other}\n",
        },
    )
    rendered = await render_local(
        chart, "gb", app="shop", helm={"parameters": [{"name": "replicaCount", "value": "3"}]}
    )
    deployment = _deployment(rendered.objects)
    # the file's list replaces the spec's (a merge patch replaces lists): replicaCount is the chart's again
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/guestbook:0123"
    assert rendered.inputs == ("gb",)  # the files are in the app path: a change to them is a new render


async def test_generic_file_first_then_the_apps_own_and_where_stays_the_applications(chart: Path) -> None:
    write_tree(
        chart,
        {
            "gb/.argocd-source.yaml": (
                "path: elsewhere\nrepoURL: https://evil.example/r.git\n"
                "helm:\n  releaseName: generic\n  valuesObject: {replicaCount: 2}\n"
            ),
            "gb/.argocd-source-shop.yaml": "helm:\n  releaseName: own\n",
        },
    )
    rendered = await render_local(chart, "gb", app="shop")
    deployment = _deployment(rendered.objects)
    assert deployment["metadata"]["name"] == "own-helm-guestbook"
    assert deployment["spec"]["replicas"] == 2  # the generic file's values, kept under the app's own file


async def test_null_removes_what_the_spec_set_and_kustomize_images_apply(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "kustomize-guestbook", tmp_path / "kg")
    write_tree(
        tmp_path,
        {
            "kg/.argocd-source.yaml": "kustomize:\n  namePrefix: null\n  images: [gcr.io/google-samples/gb-frontend=web:2]\n"
        },
    )
    rendered = await render_local(
        tmp_path, "kg", kustomize={"namePrefix": "x-", "images": ["gcr.io/google-samples/gb-frontend=web:1"]}
    )
    deployment = _deployment(rendered.objects)
    assert deployment["metadata"]["name"] == "kustomize-guestbook-ui"  # the spec's prefix is gone, the file's stays
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", r"gb/.argocd-source.yaml: must be a YAML mapping"),
        ("helm:\n  parameters: 3\n", r"gb/.argocd-source.yaml: not a valid source spec once merged: helm.parameters"),
        ("helm: {bogus: 1}\n", r"gb/.argocd-source.yaml: not a valid source spec once merged: helm.bogus"),
        ("helm: [unclosed\n", r"gb/.argocd-source.yaml: "),
    ],
)
async def test_a_bad_override_file_names_the_file_and_the_field(chart: Path, text: str, message: str) -> None:
    write_tree(chart, {"gb/.argocd-source.yaml": text})
    with pytest.raises(RenderError, match=message):
        await render_local(chart, "gb", app="shop")


async def test_an_override_file_that_links_out_of_the_repository_is_refused(chart: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("helm: {releaseName: x}\n")
    symlink(chart, "gb/.argocd-source.yaml", tmp_path / "secret.yaml")
    with pytest.raises(RenderError, match=r"gb/.argocd-source.yaml: .* outside the repository"):
        await render_local(chart, "gb", app="shop")


def test_merge_patch_is_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None, "h": "i"}, "l": [3], "n": {"o": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e", "h": "i"}, "l": [3], "n": {}}
    assert merge_patch({"a": 1}, "text") == "text"
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}  # not modified in place


async def test_a_directory_app_reads_its_override_file_as_spec_not_as_a_manifest(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: top}\n",
            "app/sub/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n",
            "app/.argocd-source.yaml": "directory: {recurse: true}\n",
        },
    )
    with capture_logs() as logs:
        rendered = await render_local(tmp_path, "app")
    assert sorted(o["metadata"]["name"] for o in rendered.objects) == ["deep", "top"]
    assert logs == []  # not warned about as a file that is no manifest
