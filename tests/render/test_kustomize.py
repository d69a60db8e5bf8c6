import shutil
from pathlib import Path

import pytest
import yaml

from tests.render.helpers import CORPUS, names, object_set, render_local, write_tree
from tests.render.tools import kustomize_by_hand
from tether.render import RenderError


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    for app in ("kustomize-guestbook", "pre-post-sync"):
        shutil.copytree(CORPUS / app, copy / app)
    return copy


async def test_plain_build_and_bases_elsewhere_in_the_repo(corpus_copy: Path) -> None:
    rendered = await render_local(corpus_copy, "pre-post-sync")
    assert object_set(rendered.objects) == object_set(kustomize_by_hand(corpus_copy / "pre-post-sync"))
    assert rendered.inputs == ("kustomize-guestbook", "pre-post-sync")


async def test_overrides_edit_the_app_kustomization_like_argocd(corpus_copy: Path) -> None:
    spec = {
        "namePrefix": "staging-",
        "nameSuffix": "-v2",
        "namespace": "shop",
        "commonLabels": {"team": "web"},
        "commonAnnotations": {"owner": "ops"},
        "images": ["gcr.io/google-samples/gb-frontend=registry.example/guestbook:0.3"],
        "replicas": [{"name": "kustomize-guestbook-ui", "count": 3}],
    }
    rendered = await render_local(corpus_copy, "pre-post-sync", kustomize=spec)

    # The same edits by hand, as `kustomize edit` would make them, then a plain build.
    kfile = corpus_copy / "pre-post-sync" / "kustomization.yaml"
    edited = yaml.safe_load(kfile.read_text())
    edited.update(
        namePrefix="staging-",
        nameSuffix="-v2",
        namespace="shop",
        commonLabels={"team": "web"},
        commonAnnotations={"owner": "ops"},
        images=[
            {"name": "gcr.io/google-samples/gb-frontend", "newName": "registry.example/guestbook", "newTag": "0.3"}
        ],
        replicas=[{"name": "kustomize-guestbook-ui", "count": 3}],
    )
    kfile.write_text(yaml.safe_dump(edited))
    assert object_set(rendered.objects) == object_set(kustomize_by_hand(corpus_copy / "pre-post-sync"))
    # namePrefix replaced the app's own prefix; the base keeps its own
    assert "Deployment/staging-kustomize-guestbook-ui-v2" in names(rendered.objects)
    deployment = next(o for o in rendered.objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/guestbook:0.3"
    assert deployment["metadata"]["namespace"] == "shop"
    assert deployment["metadata"]["labels"]["team"] == "web"


async def test_name_prefix_replaces_the_file_prefix(corpus_copy: Path) -> None:
    rendered = await render_local(corpus_copy, "kustomize-guestbook", kustomize={"namePrefix": "x-"})
    assert names(rendered.objects) == ["Deployment/x-guestbook-ui", "Service/x-guestbook-ui"]


async def test_common_label_clash_needs_force(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/kustomization.yaml": "commonLabels: {team: a}\nresources: [cm.yaml]\n",
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
        },
    )
    with pytest.raises(RenderError, match=r"kustomize.commonLabels: team already set .*forceCommonLabels"):
        await render_local(tmp_path, "app", kustomize={"commonLabels": {"team": "b"}})
    rendered = await render_local(tmp_path, "app", kustomize={"commonLabels": {"team": "b"}, "forceCommonLabels": True})
    assert rendered.objects[0]["metadata"]["labels"] == {"team": "b"}


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("nginx=registry/nginx:1.2", "registry/nginx:1.2"),
        ("nginx:1.3", "nginx:1.3"),
        ("nginx@sha256:" + "a" * 64, "nginx@sha256:" + "a" * 64),
        ("nginx=registry:5000/nginx", "registry:5000/nginx:1.0"),
    ],
)
async def test_image_overrides(tmp_path: Path, arg: str, expected: str) -> None:
    write_tree(
        tmp_path,
        {
            "kustomization.yaml": "resources: [pod.yaml]\n",
            "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: 'nginx:1.0'}]}\n",
        },
    )
    rendered = await render_local(tmp_path, kustomize={"images": [arg]})
    assert rendered.objects[0]["spec"]["containers"][0]["image"] == expected


async def test_bad_image_override_names_the_field(tmp_path: Path) -> None:
    write_tree(tmp_path, {"kustomization.yaml": "resources: []\n"})
    with pytest.raises(RenderError, match=r"kustomize.images: 'a=b=c'"):
        await render_local(tmp_path, kustomize={"images": ["a=b=c"]})


async def test_helm_charts_inflated_with_the_pinned_helm(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "helm-guestbook", tmp_path / "app" / "charts" / "helm-guestbook")
    write_tree(
        tmp_path,
        {
            "app/kustomization.yaml": "helmCharts:\n- name: helm-guestbook\n  releaseName: rel\n  valuesFile: prod.yaml\n",
            "app/prod.yaml": "service:\n  type: LoadBalancer\n",
        },
    )
    rendered = await render_local(tmp_path, "app")
    service = next(o for o in rendered.objects if o["kind"] == "Service")
    assert service["metadata"]["name"] == "rel-helm-guestbook" and service["spec"]["type"] == "LoadBalancer"


async def test_kustomize_failure_names_app_path_and_stderr(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(
        RenderError, match=r"(?s)app 'app': kustomization app: kubectl kustomize failed \(exit 1\): .*missing.yaml"
    ):
        await render_local(tmp_path, "app")
    assert str(tmp_path) not in str(await _error(tmp_path))


async def _error(root: Path) -> RenderError:
    try:
        await render_local(root, "app")
    except RenderError as exc:
        return exc
    raise AssertionError("expected a render error")
