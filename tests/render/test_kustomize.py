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


def _tree_with_components(root: Path) -> Path:
    return write_tree(
        root,
        {
            "base/kustomization.yaml": "resources: [deploy.yaml]\n",
            "base/deploy.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
                "spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}},"
                " spec: {containers: [{name: web, image: 'web:1'}]}}}\n"
            ),
            "app/kustomization.yaml": (
                "resources: [../base]\n"
                "patches:\n- target: {kind: Deployment}\n"
                "  patch: |\n    - op: add\n      path: /metadata/annotations\n      value: {own: patch}\n"
            ),
            "app/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 4}\n",
            "components/monitoring/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources: [cm.yaml]\nlabels: [{pairs: {monitored: 'yes'}}]\n"
            ),
            "components/monitoring/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: scrape}\n",
            "components/tls/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [secret.yaml]\n"
            ),
            "components/tls/secret.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tls-settings}\n",
        },
    )


async def test_spec_patches_and_components_are_appended_like_argocd(tmp_path: Path) -> None:
    root = _tree_with_components(tmp_path / "repo")
    spec = {
        "patches": [
            {
                "patch": "- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: web:2\n",
                "target": {"kind": "Deployment", "name": "web"},
            },
            {"path": "replicas.yaml"},
        ],
        "components": ["../components/*", "../components/monitoring"],
    }
    rendered = await render_local(root, "app", kustomize=spec)

    # Argo CD's edits by hand: the patches appended to the file's own, the glob expanded and the
    # component already added once not added again; then a plain build.
    kfile = root / "app" / "kustomization.yaml"
    edited = yaml.safe_load(kfile.read_text())
    edited["patches"].append(spec["patches"][0])
    edited["patches"].append({"path": "replicas.yaml"})
    edited["components"] = ["../components/monitoring", "../components/tls"]
    kfile.write_text(yaml.safe_dump(edited))
    assert object_set(rendered.objects) == object_set(kustomize_by_hand(root / "app"))

    assert names(rendered.objects) == ["ConfigMap/scrape", "ConfigMap/tls-settings", "Deployment/web"]
    deployment = next(o for o in rendered.objects if o["kind"] == "Deployment")
    assert deployment["metadata"]["annotations"] == {"own": "patch"}  # the file's own patch still applies
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
    assert deployment["metadata"]["labels"] == {"monitored": "yes"}
    # The components (and the directory the glob lists) are render inputs: a change there is a new render.
    assert rendered.inputs == ("app", "base", "components")


async def test_missing_component_fails_unless_ignored(tmp_path: Path) -> None:
    root = _tree_with_components(tmp_path / "repo")
    spec: dict[str, object] = {"components": ["../components/monitoring", "../components/absent", "../nothing/*"]}
    with pytest.raises(
        RenderError, match=r"kustomize.components\[1\]: '../components/absent' matches nothing in the repository"
    ):
        await render_local(root, "app", kustomize=spec)
    rendered = await render_local(root, "app", kustomize={**spec, "ignoreMissingComponents": True})
    assert names(rendered.objects) == ["ConfigMap/scrape", "Deployment/web"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"components": ["../../outside"]}, r"kustomize.components\[0\]: '../../outside' resolves outside"),
        ({"components": ["../../*"]}, r"kustomize.components\[0\]: '../..' resolves outside"),
        ({"components": ["/etc/*"]}, r"kustomize.components\[0\]: '/etc' must be a relative path"),
        ({"components": ["link"]}, r"kustomize.components\[0\]: 'link' is a symlink that points outside"),
        ({"components": ["../components/tls/secret.yaml"]}, r"kustomize.components\[0\]: .*is not a directory"),
        (
            {"components": ["https://github.com/org/repo//components/x?ref=v1"]},
            r"kustomize.components\[0\]: .* remote components are refused",
        ),
        ({"patches": [{"path": "../../outside.yaml"}]}, r"kustomize.patches\[0\].path: '../../outside.yaml' resolves"),
    ],
)
async def test_spec_components_and_patch_files_stay_in_the_repository(
    tmp_path: Path, spec: dict[str, object], message: str
) -> None:
    root = _tree_with_components(tmp_path / "repo")
    (tmp_path / "outside").mkdir()
    if spec.get("components") == ["link"]:
        (root / "app" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(RenderError, match=message):
        await render_local(root, "app", kustomize=spec)


def test_a_spec_patch_needs_exactly_one_of_path_and_patch() -> None:
    from pydantic import ValidationError

    from tether.model.source import KustomizePatch

    for bad in ({}, {"path": "a.yaml", "patch": "x: y"}):
        with pytest.raises(ValidationError, match="exactly one of path and patch"):
            KustomizePatch.model_validate(bad)
    assert KustomizePatch.model_validate({"patch": "x: y", "target": {"labelSelector": "a=b"}}).target is not None


@pytest.mark.parametrize("templates", [False, True])
async def test_label_without_selector_leaves_selectors_alone(tmp_path: Path, templates: bool) -> None:
    root = _tree_with_components(tmp_path / "repo")
    spec = {"commonLabels": {"team": "web"}, "labelWithoutSelector": True, "labelIncludeTemplates": templates}
    rendered = await render_local(root, "app", kustomize=spec)
    deployment = next(o for o in rendered.objects if o["kind"] == "Deployment")
    assert deployment["metadata"]["labels"] == {"team": "web"}
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    expected = {"app": "web", "team": "web"} if templates else {"app": "web"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == expected


async def test_label_include_templates_needs_label_without_selector(tmp_path: Path) -> None:
    root = _tree_with_components(tmp_path / "repo")
    with pytest.raises(RenderError, match=r"kustomize.labelIncludeTemplates: needs kustomize.labelWithoutSelector"):
        await render_local(root, "app", kustomize={"commonLabels": {"a": "b"}, "labelIncludeTemplates": True})
