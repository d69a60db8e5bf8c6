"""Every way out of the repository that Argo CD / Flux advisories describe is refused."""

from pathlib import Path

import pytest

from tests.render.helpers import CORPUS, manifest, render_local, symlink, write_tree
from tether.model.source import ApplicationSource
from tether.pipeline import desired_state
from tether.render import RenderError, RenderLimits

CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  v: {{ .Values.v | quote }}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """``repo/`` to render, next to ``outside/`` that no render may read."""
    write_tree(
        tmp_path / "outside",
        {
            "values.yaml": "v: stolen\n",
            "secret.yaml": manifest("Secret", "stolen"),
            "kustomization.yaml": "resources: [secret.yaml]\n",
            "evil.libsonnet": "{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'stolen' } }",
        },
    )
    return write_tree(tmp_path / "repo", CHART)


@pytest.mark.parametrize(
    "ref",
    [
        "../../outside/values.yaml",
        "../../../../../../etc/passwd",
        "/../outside/values.yaml",
        "/../../../etc/passwd",
        "~/x",
    ],
)
async def test_value_files_outside_or_absolute(repo: Path, ref: str) -> None:
    with pytest.raises(
        RenderError, match=r"app 'app': helm.valueFiles\[0\]: .* (outside the repository|relative path)"
    ):
        await render_local(repo, "chart", helm={"valueFiles": [ref]})


async def test_an_absolute_value_file_is_looked_up_in_the_repository_never_on_the_host(repo: Path) -> None:
    # As in Argo CD, "/etc/passwd" means <repository>/etc/passwd.
    with pytest.raises(RenderError, match=r"helm.valueFiles\[0\]: '/etc/passwd' does not exist in the repository"):
        await render_local(repo, "chart", helm={"valueFiles": ["/etc/passwd"]})
    for field in ("valueFiles", "fileParameters"):
        spec = (
            {field: ["/../outside/values.yaml"]}
            if field == "valueFiles"
            else {field: [{"name": "v", "path": "/../outside/values.yaml"}]}
        )
        with pytest.raises(RenderError, match=r"outside the repository"):
            await render_local(repo, "chart", helm=spec)


async def test_symlinked_value_file_pointing_out(repo: Path) -> None:
    symlink(repo, "shared/values-prod.yaml", repo.parent / "outside" / "values.yaml")
    with pytest.raises(
        RenderError, match=r"helm.valueFiles\[0\]: '../shared/values-prod.yaml' is a symlink that points outside"
    ):
        await render_local(repo, "chart", helm={"valueFiles": ["../shared/values-prod.yaml"]})


async def test_file_parameter_outside(repo: Path) -> None:
    with pytest.raises(RenderError, match=r"helm.fileParameters\[0\].path: .* outside the repository"):
        await render_local(repo, "chart", helm={"fileParameters": [{"name": "v", "path": "../../outside/values.yaml"}]})


async def test_helm_chart_containing_a_symlink_out(repo: Path) -> None:
    symlink(repo, "chart/templates/stolen.yaml", repo.parent / "outside" / "secret.yaml")
    with pytest.raises(
        RenderError, match=r"helm chart chart: chart/templates/stolen.yaml is a symlink that points outside"
    ):
        await render_local(repo, "chart")


@pytest.mark.parametrize("directory", [{}, {"exclude": "stolen.yaml"}])
async def test_symlinked_manifest_in_directory_app(repo: Path, directory: dict[str, str]) -> None:
    """Refused even when excluded, as Argo CD does: the link itself is the attack."""
    write_tree(repo, {"plain/ok.yaml": manifest("ConfigMap", "ok")})
    symlink(repo, "plain/stolen.yaml", repo.parent / "outside" / "secret.yaml")
    with pytest.raises(RenderError, match=r"manifest plain/stolen.yaml: is a symlink that points outside"):
        await render_local(repo, "plain", directory=directory)


async def test_symlink_inside_the_repo_is_fine_and_an_input(repo: Path) -> None:
    write_tree(
        repo, {"plain/ok.yaml": manifest("ConfigMap", "ok"), "shared/extra.yaml": manifest("ConfigMap", "extra")}
    )
    symlink(repo, "plain/extra.yaml", "../shared/extra.yaml")
    rendered = await render_local(repo, "plain")
    assert len(rendered.objects) == 2 and rendered.inputs == ("plain", "shared/extra.yaml")


@pytest.mark.parametrize("ref", ["../../outside", "/OUTSIDE"])
async def test_kustomize_base_outside_the_repo(repo: Path, ref: str) -> None:
    ref = ref.replace("/OUTSIDE", str(repo.parent / "outside"))
    write_tree(repo, {"app/kustomization.yaml": f"resources:\n- {ref}\n"})
    with pytest.raises(
        RenderError, match=r"app/kustomization.yaml resources\[0\]: .* (outside the repository|relative path)"
    ):
        await render_local(repo, "app")


async def test_kustomize_base_symlinked_out(repo: Path) -> None:
    write_tree(repo, {"app/kustomization.yaml": "bases:\n- ../base\n"})
    symlink(repo, "base", repo.parent / "outside")
    with pytest.raises(RenderError, match=r"bases\[0\]: '../base' is a symlink that points outside"):
        await render_local(repo, "app")


async def test_kustomize_nested_base_reaching_out(repo: Path) -> None:
    """The first hop is inside the repo; the base it loads is what leaves it."""
    write_tree(
        repo,
        {
            "app/kustomization.yaml": "resources:\n- ../base\n",
            "base/kustomization.yaml": "resources:\n- ../../outside\n",
        },
    )
    with pytest.raises(RenderError, match=r"base/kustomization.yaml resources\[0\]: '../../outside' resolves outside"):
        await render_local(repo, "app")


@pytest.mark.parametrize(
    ("kustomization", "field"),
    [
        (
            "configMapGenerator:\n- name: c\n  files: [k=../../outside/values.yaml]\n",
            r"configMapGenerator\[0\].files\[0\]",
        ),
        ("patches:\n- path: ../../outside/secret.yaml\n", r"patches\[0\].path"),
        ("components:\n- ../../outside\n", r"components\[0\]"),
    ],
)
async def test_kustomize_other_fields_outside(repo: Path, kustomization: str, field: str) -> None:
    write_tree(repo, {"app/kustomization.yaml": kustomization})
    with pytest.raises(RenderError, match=field + ": .* outside the repository"):
        await render_local(repo, "app")


async def test_kustomize_remote_resource(repo: Path) -> None:
    write_tree(repo, {"app/kustomization.yaml": "resources:\n- https://github.com/example/repo//base?ref=main\n"})
    with pytest.raises(RenderError, match=r"app/kustomization.yaml resources\[0\]: .* remote references are refused"):
        await render_local(repo, "app")


@pytest.mark.parametrize("path", ["../outside", "chart/../../outside", "a/../chart", "/etc"])
async def test_app_path_with_dotdot_or_absolute(repo: Path, path: str) -> None:
    with pytest.raises(RenderError, match=r"app 'app': source.path: .* must be a relative path without '..'"):
        await render_local(repo, path)


async def test_app_path_symlinked_out(repo: Path) -> None:
    symlink(repo, "escape", repo.parent / "outside")
    with pytest.raises(RenderError, match=r"source.path: 'escape' resolves outside the repository"):
        await render_local(repo, "escape")


@pytest.mark.parametrize(
    "source",
    [
        "import '../../outside/evil.libsonnet'",
        "import '/OUTSIDE/evil.libsonnet'",
        "importstr '/etc/passwd'",
    ],
)
async def test_jsonnet_imports_outside(repo: Path, source: str) -> None:
    write_tree(repo, {"app/main.jsonnet": source.replace("/OUTSIDE", str(repo.parent / "outside"))})
    with pytest.raises(RenderError, match=r"jsonnet app/main.jsonnet: .*resolves outside the repository"):
        await render_local(repo, "app")


async def test_jsonnet_library_path_outside(repo: Path) -> None:
    write_tree(repo, {"app/main.jsonnet": "import 'evil.libsonnet'"})
    with pytest.raises(RenderError, match=r"directory.jsonnet.libs\[0\]: '../outside' resolves outside"):
        await render_local(repo, "app", directory={"jsonnet": {"libs": ["../outside"]}})


async def test_errors_do_not_leak_the_outside_content(repo: Path) -> None:
    symlink(repo, "shared/values-prod.yaml", repo.parent / "outside" / "values.yaml")
    with pytest.raises(RenderError) as caught:
        await render_local(repo, "chart", helm={"valueFiles": ["../shared/values-prod.yaml"]})
    assert "stolen" not in str(caught.value)


async def test_helm_chart_containing_a_symlink_loop(repo: Path) -> None:
    symlink(repo, "chart/templates/again", "..")
    with pytest.raises(RenderError, match=r"^app 'app': helm chart chart: chart/templates/again is a symlink loop$"):
        await render_local(repo, "chart")


async def test_kustomization_containing_a_symlink_loop(repo: Path) -> None:
    write_tree(repo, {"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": manifest("ConfigMap", "c")})
    symlink(repo, "app/a.yaml", "b.yaml")
    symlink(repo, "app/b.yaml", "a.yaml")
    with pytest.raises(RenderError, match=r"^app 'app': kustomization app: app/a.yaml is a symlink loop$"):
        await render_local(repo, "app")


async def local_state(root: Path, limit: int) -> None:
    source = ApplicationSource.model_validate({"repoURL": str(root), "path": "app"})
    await desired_state(
        "app", source, git=None, cache=None, secrets_backend=None, limits=RenderLimits(max_checkout_bytes=limit)
    )


async def test_local_directory_above_the_size_limit_is_refused(tmp_path: Path) -> None:
    """As a git checkout above the git cache's limit is: counted over the whole root, not only the app path."""
    write_tree(tmp_path, {"app/cm.yaml": manifest("ConfigMap", "c"), "elsewhere/blob.bin": "x" * 5000})
    with pytest.raises(RenderError, match=r"^app 'app': source: local directory .* above the limit of 4096 bytes$"):
        await local_state(tmp_path, 4096)
    await local_state(tmp_path, 8192)


async def test_local_size_limit_ignores_git_metadata_and_symlink_targets(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/cm.yaml": manifest("ConfigMap", "c"), ".git/objects/pack/big.pack": "x" * 50_000})
    symlink(tmp_path, "app/big", tmp_path / ".git" / "objects" / "pack" / "big.pack")
    await local_state(tmp_path, 4096)


def test_corpus_is_present() -> None:
    assert (CORPUS / "guestbook").is_dir(), "tests need ../shared/corpora/argocd-example-apps"
