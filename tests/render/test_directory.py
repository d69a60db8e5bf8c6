import json
from pathlib import Path

import pytest

from tests.render.helpers import manifest, names, render_local, symlink, write_tree
from tether.render import RenderError


@pytest.fixture
def app_tree(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path,
        {
            "app/a.yaml": manifest("ConfigMap", "a") + "---\n" + manifest("ConfigMap", "a2"),
            "app/b.json": manifest("Service", "b"),
            "app/notes.txt": "not a manifest, not read",
            "app/sub/c.yml": manifest("ConfigMap", "c"),
            "app/sub/deeper/d.yaml": manifest("Secret", "d"),
            "app/env-usw2/e.yaml": manifest("ConfigMap", "e"),
        },
    )


async def test_top_level_only_without_recurse(app_tree: Path) -> None:
    rendered = await render_local(app_tree, "app")
    assert names(rendered.objects) == ["ConfigMap/a", "ConfigMap/a2", "Service/b"]
    assert rendered.inputs == ("app",)


async def test_recurse_reads_every_manifest(app_tree: Path) -> None:
    rendered = await render_local(app_tree, "app", directory={"recurse": True})
    assert names(rendered.objects) == [
        "ConfigMap/a",
        "ConfigMap/a2",
        "ConfigMap/c",
        "ConfigMap/e",
        "Secret/d",
        "Service/b",
    ]


async def test_include_and_exclude_globs_with_braces(app_tree: Path) -> None:
    rendered = await render_local(
        app_tree, "app", directory={"recurse": True, "include": "*.{yaml,yml}", "exclude": "{a.yaml,env-usw2/*}"}
    )
    assert names(rendered.objects) == ["ConfigMap/c", "Secret/d"]


async def test_excluded_non_manifest_yaml_is_ignored(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/ok.yaml": manifest("ConfigMap", "ok"), "app/values.yaml": "replicaCount: 2\n"})
    rendered = await render_local(tmp_path, "app", directory={"exclude": "values.yaml"})
    assert names(rendered.objects) == ["ConfigMap/ok"]


async def test_list_kind_is_flattened_and_empty_documents_skipped(tmp_path: Path) -> None:
    items = [json.loads(manifest("ConfigMap", n)) for n in ("x", "y")]
    write_tree(
        tmp_path,
        {
            "list.yaml": "---\n---\n" + json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
            "list.json": json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMapList", "items": [json.loads(manifest("ConfigMap", "z"))]}
            ),
        },
    )
    rendered = await render_local(tmp_path)
    assert names(rendered.objects) == ["ConfigMap/x", "ConfigMap/y", "ConfigMap/z"]


async def test_bad_file_fails_the_whole_render(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {"a.yaml": manifest("ConfigMap", "a"), "b.yaml": "apiVersion: v1\nmetadata: {name: b}\nkind: [\n"}
    )
    with pytest.raises(RenderError, match=r"manifest b.yaml: (document \d+: )?invalid YAML"):
        await render_local(tmp_path)


async def test_jsonnet_with_ext_vars_tlas_and_libs(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "lib/k.libsonnet": "{ cm(name, data):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data } }",
            "app/main.jsonnet": (
                "local k = import 'k.libsonnet';\n"
                "function(replicas, label='x') [k.cm(std.extVar('env') + '-' + label, {n: std.toString(replicas + std.extVar('offset'))})]"
            ),
            "app/single.jsonnet": "{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: importstr 'name.txt' } }",
            "app/name.txt": "ns",
        },
    )
    rendered = await render_local(
        tmp_path,
        "app",
        directory={
            "jsonnet": {
                "libs": ["lib"],
                "extVars": [{"name": "env", "value": "prod"}, {"name": "offset", "value": "1", "code": True}],
                "tlas": [{"name": "replicas", "value": "2", "code": True}, {"name": "label", "value": "web"}],
            }
        },
    )
    assert names(rendered.objects) == ["ConfigMap/prod-web", "Namespace/ns"]
    assert rendered.objects[0]["data"] == {"n": "3"}
    assert rendered.inputs == ("app", "lib")  # the whole library path: a new file there may shadow an import


async def test_jsonnet_errors_name_the_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/broken.jsonnet": "{ a: error 'boom' }"})
    with pytest.raises(RenderError, match=r"jsonnet app/broken.jsonnet: .*boom"):
        await render_local(tmp_path, "app")


async def test_binary_manifest_is_an_error_naming_the_repo_path(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "blob.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RenderError, match=r"manifest app/blob.yaml: is not UTF-8 text"):
        await render_local(tmp_path, "app")


async def test_jsonnet_inputs_cover_every_place_an_import_is_looked_up(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/main.jsonnet": "(import '../shared/x.libsonnet').cm",
            "shared/x.libsonnet": "{ cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: (import 'y.libsonnet') } } }",
            "lib/y.libsonnet": "'from-lib'",
        },
    )
    rendered = await render_local(tmp_path, "app", directory={"jsonnet": {"libs": ["lib"]}})
    assert names(rendered.objects) == ["ConfigMap/from-lib"]
    # shared/ is an input: adding shared/y.libsonnet would change what 'y.libsonnet' resolves to
    assert rendered.inputs == ("app", "lib", "shared")


@pytest.mark.parametrize(
    ("links", "shown"),
    [
        ({"app/a.yaml": "b.yaml", "app/b.yaml": "a.yaml"}, "app/a.yaml"),
        ({"app/self.yaml": "self.yaml"}, "app/self.yaml"),
        ({"app/z.json": "../loop/one.json", "loop/one.json": "two.json", "loop/two.json": "one.json"}, "app/z.json"),
    ],
)
async def test_a_symlink_loop_among_manifests_is_an_error(tmp_path: Path, links: dict[str, str], shown: str) -> None:
    """Not skipped as a broken link would be: the loop names itself, even when excluded."""
    write_tree(tmp_path, {"app/ok.yaml": manifest("ConfigMap", "ok")})
    for link, target in links.items():
        symlink(tmp_path, link, target)
    for directory in ({}, {"exclude": "*"}):
        with pytest.raises(RenderError, match=rf"^app 'app': manifest {shown}: is a symlink loop$"):
            await render_local(tmp_path, "app", directory=directory)


async def test_a_directory_symlink_back_to_its_parent_is_a_loop_when_recursing(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/ok.yaml": manifest("ConfigMap", "ok"), "app/sub/c.yaml": manifest("ConfigMap", "c")})
    symlink(tmp_path, "app/sub/back", "..")
    with pytest.raises(RenderError, match=r"^app 'app': manifest app/sub/back: is a symlink loop$"):
        await render_local(tmp_path, "app", directory={"recurse": True})
    flat = await render_local(tmp_path, "app")  # not walked without recurse: nothing loops
    assert names(flat.objects) == ["ConfigMap/ok"]


async def test_a_broken_symlink_is_still_skipped(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/ok.yaml": manifest("ConfigMap", "ok")})
    symlink(tmp_path, "app/gone.yaml", "missing.yaml")
    assert names((await render_local(tmp_path, "app")).objects) == ["ConfigMap/ok"]
