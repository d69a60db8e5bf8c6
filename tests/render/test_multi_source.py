"""Multi-source apps: ``$ref`` value files, merging, and the render cache across repositories.

The pure rules (parsing, validation, merging) are unit tests; everything that claims to work
against git, helm or pass runs against the real ones: the smart-HTTP ``git_server``, the
pinned helm binary and the session ``pass_store``.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.render.helpers import manifest, write_tree
from tether.errors import Reason, TetherError
from tether.model.source import ApplicationSource, SourceType, ref_errors, split_ref
from tether.pipeline import desired_state, desired_state_of_sources, merge_objects
from tether.render import RenderError, render
from tether.render.cache import CacheScope, RenderCache
from tether.render.engine import ref_input, split_ref_input
from tether.secrets import PassBackend
from tether.source import Credentials, GitCache

CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "chart/values.yaml": "color: unset\n",
    "chart/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: {{ .Values.color | quote }}\n"
    ),
}


def spec(**fields: Any) -> ApplicationSource:
    return ApplicationSource.model_validate(fields)


def chart_source(url: str, *value_files: str, **helm: Any) -> ApplicationSource:
    return spec(repoURL=url, path="chart", targetRevision="main", helm={"valueFiles": list(value_files), **helm})


def values_source(url: str, ref: str = "values", **fields: Any) -> ApplicationSource:
    return spec(repoURL=url, targetRevision="main", ref=ref, **fields)


class CountingGitCache(GitCache):
    """A GitCache that counts checkouts per repository URL, to show cache hits check nothing out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checkouts: dict[str, int] = {}

    def checkout(self, url: str, sha: str, credentials: Credentials | None = None) -> AbstractAsyncContextManager[Path]:
        inner = super().checkout(url, sha, credentials)

        @asynccontextmanager
        async def counted() -> AsyncIterator[Path]:
            self.checkouts[url] = self.checkouts.get(url, 0) + 1
            async with inner as tree:
                yield tree

        return counted()


# ------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$values/envs/prod.yaml", ("values", "envs/prod.yaml")),
        ("$my-ref_2/a.yaml", ("my-ref_2", "a.yaml")),
        ("$values//abs.yaml", ("values", "abs.yaml")),  # the rest is relative to the ref's root either way
        ("$values/../escape.yaml", ("values", "../escape.yaml")),  # parsed; the renderer refuses it
        ("$values", ("values", "")),
        ("$values/", ("values", "")),
        ("values.yaml", None),
        ("/envs/prod.yaml", None),
        ("$values.yaml", None),  # not a plain name: an ordinary file name, as before
        ("envs/$values/x.yaml", None),  # only at the beginning, as in Argo CD
        ("$/x.yaml", None),
    ],
)
def test_split_ref(path: str, expected: tuple[str, str] | None) -> None:
    assert split_ref(path) == expected


@pytest.mark.parametrize("ref", ["", "a b", "a/b", "$values", "a.b"])
def test_ref_must_be_a_plain_name(ref: str) -> None:
    with pytest.raises(ValidationError, match="plain name"):
        spec(repoURL="https://example.com/r.git", ref=ref)


def test_a_ref_source_cannot_be_a_chart() -> None:
    with pytest.raises(ValidationError, match="cannot have chart"):
        spec(repoURL="https://charts.example.com", chart="web", ref="values")


def test_ref_and_name_leave_the_render_options_and_so_the_cache_key_alone() -> None:
    plain = spec(repoURL="https://example.com/r.git", path="chart", helm={"valueFiles": ["a.yaml"]})
    named = spec(repoURL="https://example.com/r.git", path="chart", helm={"valueFiles": ["a.yaml"]}, ref="r", name="n")
    assert plain.render_options() == '{"helm":{"valueFiles":["a.yaml"]},"path":"chart"}'  # as before these fields
    assert named.render_options() == plain.render_options()
    scope = CacheScope.for_app("https://example.com/r.git", "web", plain, "ns", {"helm": "v4"})
    assert CacheScope.for_app("https://example.com/r.git", "web", named, "ns", {"helm": "v4"}) == scope
    assert named.name == "n" and named.ref == "r" and named.model_dump(by_alias=True)["ref"] == "r"


def test_ref_only_and_referenced_refs() -> None:
    assert values_source("https://example.com/v.git").ref_only
    assert not values_source("https://example.com/v.git", path="manifests").ref_only  # a ref with a path renders
    assert not spec(repoURL="https://example.com/r.git").ref_only
    source = chart_source("https://example.com/r.git", "$b/x.yaml", "local.yaml", "$a/y.yaml", "$b/z.yaml")
    assert source.referenced_refs() == ("b", "a")


def test_ref_errors_name_every_field() -> None:
    sources = [
        spec(
            repoURL="https://example.com/r.git",
            path="chart",
            helm={
                "valueFiles": ["ok.yaml", "$values/a.yaml", "$nope/b.yaml"],
                "fileParameters": [{"name": "cert", "path": "$values/cert.pem"}],
            },
        ),
        values_source("https://example.com/v.git"),
        values_source("https://example.com/w.git"),
    ]
    assert ref_errors(sources) == [
        "spec.sources[2].ref: 'values' is already the ref of spec.sources[1]",
        "spec.sources[0].helm.valueFiles[2]: '$nope/b.yaml' names $nope, but no source has ref: nope",
        "spec.sources[0].helm.fileParameters[0].path: '$values/cert.pem': a $ref is only supported in helm.valueFiles",
    ]
    assert ref_errors(sources[:2][:1], [""]) == [
        "helm.valueFiles[1]: '$values/a.yaml' names $values, but no source has ref: values",
        "helm.valueFiles[2]: '$nope/b.yaml' names $nope, but no source has ref: nope",
        "helm.fileParameters[0].path: '$values/cert.pem': a $ref is only supported in helm.valueFiles",
    ]
    assert ref_errors(sources[1:2]) == []


def test_ref_inputs_never_collide_with_the_sources_own_paths() -> None:
    assert ref_input("values", "envs/prod.yaml") == "$values//envs/prod.yaml"
    assert split_ref_input("$values//envs/prod.yaml") == ("values", "envs/prod.yaml")
    assert split_ref_input("$values//.") == ("values", ".")
    assert split_ref_input("$values/envs/prod.yaml") == (None, "$values/envs/prod.yaml")  # a directory named $values
    assert split_ref_input("chart") == (None, "chart")
    assert split_ref_input(".") == (None, ".")


def cm(name: str, namespace: str | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_merge_keeps_order_and_the_later_of_repeated_objects() -> None:
    first = [cm("a"), cm("shared", v="first"), cm("x", "other")]
    second = [cm("shared", "shop", v="second"), cm("b"), cm("x", "elsewhere")]
    objects, warnings = merge_objects([first, second], "shop")
    assert [(o["metadata"]["name"], o["data"].get("v")) for o in objects] == [
        ("a", None),
        ("x", None),
        ("shared", "second"),
        ("b", None),
        ("x", None),
    ]
    assert warnings == [
        "RepeatedResourceWarning: ConfigMap shop/shared is produced by spec.sources[0] and spec.sources[1]; "
        "the later one is used"
    ]
    assert merge_objects([first, []], "shop") == (first, [])
    _, after_a_ref_only_source = merge_objects([first, [], second], "shop")
    assert "spec.sources[0] and spec.sources[2]" in after_a_ref_only_source[0]


# ------------------------------------------------------------------- render from local directories


async def test_render_reads_ref_value_files_inside_the_ref_repository_only(tmp_path: Path) -> None:
    chart_repo = write_tree(tmp_path / "a", CHART)
    values_repo = write_tree(tmp_path / "b", {"envs/prod.yaml": "color: red\n", "README.md": "values\n"})
    (tmp_path / "outside.yaml").write_text("color: stolen\n")
    (values_repo / "envs" / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    (values_repo / "envs" / "inside.yaml").symlink_to("prod.yaml")

    async def run(*value_files: str, **helm: Any) -> Any:
        source = chart_source(str(chart_repo), *value_files, **helm)
        return await render("web", source, chart_repo, refs={"values": values_repo}, field_prefix="spec.sources[0].")

    rendered = await run("$values/envs/prod.yaml")
    assert rendered.objects[0]["data"] == {"color": "red"} and rendered.source_type is SourceType.HELM
    assert rendered.inputs == ("chart", "$values//envs/prod.yaml")
    linked = await run("$values/envs/inside.yaml")  # a link inside the ref repository: both paths are inputs
    assert linked.objects[0]["data"] == {"color": "red"}
    assert linked.inputs == ("chart", "$values//envs/inside.yaml", "$values//envs/prod.yaml")

    refused = {
        "$values/../a/chart/values.yaml": "resolves outside the repository",  # into the chart's repository
        "$values/../outside.yaml": "resolves outside the repository",
        "$values/envs/link.yaml": "is a symlink that points outside the repository",
        "$values/envs/missing.yaml": "does not exist in the repository",
        "$values/envs": "is not a file",
        "$values/": "must name a file in the repository of ref source 'values'",
    }
    for value_file, problem in refused.items():
        with pytest.raises(RenderError) as caught:
            await run("$values/envs/prod.yaml", value_file)
        assert str(caught.value) == f"app 'web': spec.sources[0].helm.valueFiles[1]: {value_file!r} {problem}"
        assert str(tmp_path) not in str(caught.value)

    missing_ok = await run("$values/envs/missing.yaml", "$values/envs/prod.yaml", ignoreMissingValueFiles=True)
    assert missing_ok.inputs == ("chart", "$values//envs/missing.yaml", "$values//envs/prod.yaml")
    with pytest.raises(RenderError, match="resolves outside"):  # ignoring missing files never allows escaping
        await run("$values/../outside.yaml", ignoreMissingValueFiles=True)


async def test_helm_names_a_broken_ref_value_file_as_the_spec_does(tmp_path: Path) -> None:
    chart_repo = write_tree(tmp_path / "a", CHART)
    values_repo = write_tree(tmp_path / "b", {"ok.yaml": "color: red\n", "envs/bad.yaml": "color: [\n"})
    source = chart_source(str(chart_repo), "$values/ok.yaml", "$values/envs/bad.yaml")
    with pytest.raises(RenderError) as caught:
        await render("web", source, chart_repo, refs={"values": values_repo})
    assert "failed to parse $values/envs/bad.yaml" in str(caught.value), str(caught.value)
    assert str(tmp_path) not in str(caught.value)


async def test_render_refuses_unknown_refs_and_refs_in_file_parameters(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "a", {**CHART, "chart/cert.pem": "cert\n"})
    with pytest.raises(RenderError) as unknown:
        await render("web", chart_source(str(repo), "$values/x.yaml"), repo)
    assert unknown.value.reason == Reason.INVALID_SPEC and not unknown.value.retryable
    assert (
        str(unknown.value)
        == "app 'web': helm.valueFiles[0]: '$values/x.yaml' names $values, but no source has ref: values"
    )
    parameters = spec(
        repoURL=str(repo), path="chart", helm={"fileParameters": [{"name": "cert", "path": "$values/cert.pem"}]}
    )
    with pytest.raises(RenderError, match=r"helm.fileParameters\[0\].path: .* only supported in helm.valueFiles"):
        await render("web", parameters, repo, refs={"values": repo})


async def test_single_source_pipeline_refuses_a_ref_before_touching_git(tmp_path: Path) -> None:
    source = chart_source("https://git.invalid/none.git", "$values/x.yaml")
    with pytest.raises(TetherError) as caught:
        await desired_state("web", source, git=GitCache(tmp_path / "git"), cache=None, secrets_backend=None)
    assert caught.value.reason == Reason.INVALID_SPEC
    assert (
        str(caught.value)
        == "app 'web': helm.valueFiles[0]: '$values/x.yaml' names $values, but no source has ref: values"
    )
    assert not (tmp_path / "git").exists()  # nothing was asked of git


# ------------------------------------------------------------------ through git, helm and pass


def two_repos(git_server: Any, values: dict[str, str]) -> tuple[Any, Any]:
    charts = git_server.create_repo(f"charts-{uuid.uuid4().hex[:8]}")
    charts.commit("chart", {**CHART, "README.md": "charts\n"})
    settings = git_server.create_repo(f"values-{uuid.uuid4().hex[:8]}")
    settings.commit("values", {**values, "README.md": "values\n"})
    return charts, settings


async def test_values_from_a_ref_source_and_what_re_renders(git_server: Any, tmp_path: Path) -> None:
    charts, settings = two_repos(
        git_server, {"envs/prod/values.yaml": "color: red\n", "envs/dev/values.yaml": "x: 1\n"}
    )
    sources = [chart_source(charts.url, "$values/envs/prod/values.yaml"), values_source(settings.url)]
    git, cache = CountingGitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    async def state() -> Any:
        return await desired_state_of_sources("web", sources, git=git, cache=cache, secrets_backend=None)

    first = await state()
    assert first.objects[0]["data"] == {"color": "red"} and not first.cache_hit
    assert first.revisions == (charts.head, settings.head) and first.revision == charts.head
    assert first.source_types == (SourceType.HELM, None) and first.source_type is SourceType.HELM
    assert first.source_inputs == (("chart", "$values//envs/prod/values.yaml"), ())
    assert first.inputs == first.source_inputs[0] and first.warnings == ()
    assert git.checkouts == {charts.url: 1, settings.url: 1}

    unrelated = settings.commit("dev only", {"envs/dev/values.yaml": "x: 2\n", "README.md": "more\n"})
    second = await state()
    assert second.cache_hit and second.revisions == (charts.head, unrelated)
    assert second.objects == first.objects and (cache.stats.renders, cache.stats.hits) == (1, 1)
    assert git.checkouts == {charts.url: 1, settings.url: 1}  # a hit checks nothing out

    charts.commit("docs in the chart repository", {"README.md": "charts, again\n"})
    assert (await state()).cache_hit

    changed = settings.commit("prod values", {"envs/prod/values.yaml": "color: blue\n"})
    third = await state()
    assert not third.cache_hit and third.objects[0]["data"] == {"color": "blue"}
    assert third.revisions == (charts.head, changed) and (cache.stats.renders, cache.stats.hits) == (2, 2)

    restarted = await desired_state_of_sources(
        "web", sources, git=git, cache=RenderCache(tmp_path / "render"), secrets_backend=None
    )
    assert restarted.cache_hit and restarted.objects[0]["data"] == {"color": "blue"}


async def test_a_missing_ref_value_file_names_the_field_and_a_new_one_re_renders(
    git_server: Any, tmp_path: Path
) -> None:
    charts, settings = two_repos(git_server, {"envs/prod/values.yaml": "color: red\n"})
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")
    strict = [values_source(settings.url), chart_source(charts.url, "$values/envs/prod/extra.yaml")]
    with pytest.raises(RenderError) as caught:
        await desired_state_of_sources("web", strict, git=git, cache=cache, secrets_backend=None)
    assert str(caught.value) == (
        "app 'web': spec.sources[1].helm.valueFiles[0]: '$values/envs/prod/extra.yaml' does not exist in the repository"
    )

    lenient = [
        values_source(settings.url),
        chart_source(
            charts.url, "$values/envs/prod/values.yaml", "$values/envs/prod/extra.yaml", ignoreMissingValueFiles=True
        ),
    ]
    first = await desired_state_of_sources("web", lenient, git=git, cache=cache, secrets_backend=None)
    assert first.objects[0]["data"] == {"color": "red"}
    assert "$values//envs/prod/extra.yaml" in first.source_inputs[1]
    settings.commit("the optional file appears", {"envs/prod/extra.yaml": "color: green\n"})
    second = await desired_state_of_sources("web", lenient, git=git, cache=cache, secrets_backend=None)
    assert not second.cache_hit and second.objects[0]["data"] == {"color": "green"}


async def test_a_ref_value_file_escaping_its_repository_is_refused(git_server: Any, tmp_path: Path) -> None:
    charts, settings = two_repos(git_server, {"envs/prod/values.yaml": "color: red\n"})
    sources = [chart_source(charts.url, "$values/../checkout.yaml"), values_source(settings.url)]
    with pytest.raises(RenderError) as caught:
        await desired_state_of_sources(
            "web", sources, git=GitCache(tmp_path / "git"), cache=RenderCache(tmp_path / "render"), secrets_backend=None
        )
    assert str(caught.value) == (
        "app 'web': spec.sources[0].helm.valueFiles[0]: '$values/../checkout.yaml' resolves outside the repository"
    )


async def test_unknown_and_repeated_refs_are_invalid_specs(git_server: Any, tmp_path: Path) -> None:
    charts, settings = two_repos(git_server, {"v.yaml": "color: red\n"})
    git = GitCache(tmp_path / "git")
    sources = [chart_source(charts.url, "$vals/v.yaml"), values_source(settings.url), values_source(charts.url)]
    with pytest.raises(TetherError) as caught:
        await desired_state_of_sources("web", sources, git=git, cache=None, secrets_backend=None)
    assert caught.value.reason == Reason.INVALID_SPEC
    assert str(caught.value) == (
        "app 'web': spec.sources[2].ref: 'values' is already the ref of spec.sources[1]; "
        "spec.sources[0].helm.valueFiles[0]: '$vals/v.yaml' names $vals, but no source has ref: vals"
    )
    assert git.fetch_count == 0


async def test_plain_sources_merge_in_order_and_a_ref_source_with_a_path_renders(
    git_server: Any, tmp_path: Path
) -> None:
    first = git_server.create_repo(f"first-{uuid.uuid4().hex[:8]}")
    first.commit(
        "apps",
        {
            "app/a.yaml": manifest("ConfigMap", "a"),
            "app/shared.yaml": manifest("ConfigMap", "shared", data={"from": "first"}),
        },
    )
    second = git_server.create_repo(f"second-{uuid.uuid4().hex[:8]}")
    second.commit(
        "overrides",
        {
            "overrides/kustomization.yaml": "resources:\n- shared.yaml\n- b.yaml\n",
            "overrides/shared.yaml": manifest("ConfigMap", "shared", data={"from": "second"}),
            "overrides/b.yaml": manifest("ConfigMap", "b"),
            "values/v.yaml": "color: plum\n",
        },
    )
    sources = [
        spec(repoURL=first.url, path="app", targetRevision="main"),
        values_source(first.url, ref="unused"),  # renders nothing; indices in messages stay the spec's
        values_source(second.url, ref="cfg", path="overrides"),  # a ref source with a path renders too
        chart_source(first.url, "$cfg/values/v.yaml"),
    ]
    first.commit("chart next to the app", CHART)
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")
    state = await desired_state_of_sources("mix", sources, git=git, cache=cache, secrets_backend=None, namespace="shop")
    assert [(o["metadata"]["name"], (o.get("data") or {})) for o in state.objects] == [
        ("a", {}),
        ("b", {}),  # kustomize's own order within source 1
        ("shared", {"from": "second"}),  # the later source's copy, in its place
        ("web", {"color": "plum"}),
    ]
    assert state.source_types == (SourceType.DIRECTORY, None, SourceType.KUSTOMIZE, SourceType.HELM)
    assert state.revisions == (first.head, first.head, second.head, first.head)
    assert state.warnings == (
        "RepeatedResourceWarning: ConfigMap shop/shared is produced by spec.sources[0] and spec.sources[2]; "
        "the later one is used",
    )
    again = await desired_state_of_sources("mix", sources, git=git, cache=cache, secrets_backend=None, namespace="shop")
    assert again.cache_hit and again.objects == state.objects and cache.stats.renders == 3

    broken = [sources[0], spec(repoURL=second.url, path="nowhere", targetRevision="main")]
    with pytest.raises(RenderError) as caught:
        await desired_state_of_sources("mix", broken, git=git, cache=cache, secrets_backend=None)
    assert str(caught.value) == (
        "app 'mix': spec.sources[1]: source.path: 'nowhere' is not a directory in the repository"
    )


async def test_a_pass_placeholder_in_a_ref_values_file_is_resolved_in_memory_only(
    git_server: Any, pass_store: Any, tmp_path: Path
) -> None:
    entry, canary = f"tether-test/{uuid.uuid4().hex[:8]}/db", f"canary-{uuid.uuid4().hex}"
    pass_store.insert(entry, f"{canary}\n")
    charts = git_server.create_repo(f"charts-{uuid.uuid4().hex[:8]}")
    charts.commit(
        "secret chart",
        {
            "db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
            "db/values.yaml": "password: unset\n",
            "db/templates/secret.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
                "stringData:\n  password: {{ .Values.password | quote }}\n"
            ),
        },
    )
    settings = git_server.create_repo(f"values-{uuid.uuid4().hex[:8]}")
    settings.commit("values with a placeholder", {"db.yaml": f"password: <pass:{entry}>\n"})
    sources = [
        spec(repoURL=charts.url, path="db", targetRevision="main", helm={"valueFiles": ["$values/db.yaml"]}),
        values_source(settings.url),
    ]
    backend = PassBackend(pass_store.store_dir, pass_store.gnupg_home, environ={**os.environ, **pass_store.env})
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")
    state = await desired_state_of_sources("db", sources, git=git, cache=cache, secrets_backend=backend)
    (secret,) = state.objects
    assert secret["stringData"]["password"] == canary
    assert entry in state.secret_usage.entries
    assert canary not in repr(state)
    encoded = base64.b64encode(canary.encode())
    for path in (tmp_path / "render").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert canary.encode() not in data and encoded not in data, path
    assert f"<pass:{entry}>".encode() in b"".join(p.read_bytes() for p in (tmp_path / "render").rglob("*.json"))
