"""The render cache: keyed by what the output depends on, bounded, persistent, single flight."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from tether.model.source import ApplicationSource, SourceType
from tether.render import Rendered
from tether.render.cache import CacheScope, RenderCache

SOURCE = ApplicationSource.model_validate({"repoURL": "https://git.example/r", "path": "app"})
TOOLS = {"helm": "v4", "kubectl": "v1", "kustomize": "v5", "jsonnet": "v0"}


class FakeRepo:
    """Object ids per path, and a renderer that counts its calls."""

    def __init__(self) -> None:
        self.ids: dict[str, str | None] = {"app": "t1", "base": "b1"}
        self.renders = 0
        self.tree_id_calls = 0
        self.inputs: tuple[str, ...] = ("app", "base")
        self.payload = "x"

    async def tree_ids(self, paths: Sequence[str]) -> Mapping[str, str | None]:
        self.tree_id_calls += 1
        return {p: self.ids.get(p) for p in paths}

    async def render(self) -> Rendered:
        self.renders += 1
        await asyncio.sleep(0.01)
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"r{self.renders}"},
            "data": {"p": self.payload},
        }
        return Rendered([obj], SourceType.DIRECTORY, self.inputs)


def scope(source: ApplicationSource = SOURCE, app: str = "a", namespace: str | None = None) -> CacheScope:
    return CacheScope.for_app("https://git.example/r", app, source, namespace, TOOLS)


async def test_unchanged_inputs_hit_changed_inputs_miss(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path), FakeRepo()
    first = await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    again = await cache.get_or_render(scope(), "c2", repo.tree_ids, repo.render)  # new commit, same trees
    assert (first.hit, again.hit, repo.renders) == (False, True, 1)
    assert again.objects == first.objects
    repo.ids["base"] = "b2"  # a base elsewhere in the repo changed
    third = await cache.get_or_render(scope(), "c3", repo.tree_ids, repo.render)
    assert (third.hit, repo.renders) == (False, 2)
    repo.ids["unrelated"] = "u2"
    assert (await cache.get_or_render(scope(), "c4", repo.tree_ids, repo.render)).hit
    assert (cache.stats.renders, cache.stats.hits) == (2, 2)


async def test_options_app_namespace_and_tools_are_part_of_the_key(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path), FakeRepo()
    other_options = ApplicationSource.model_validate(
        {"repoURL": "https://git.example/r", "path": "app", "directory": {"recurse": True}}
    )
    other_revision = ApplicationSource.model_validate(
        {"repoURL": "https://git.example/r", "path": "app", "targetRevision": "v2"}
    )
    await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    assert not (await cache.get_or_render(scope(other_options), "c1", repo.tree_ids, repo.render)).hit
    assert not (await cache.get_or_render(scope(app="b"), "c1", repo.tree_ids, repo.render)).hit
    assert not (await cache.get_or_render(scope(namespace="ns"), "c1", repo.tree_ids, repo.render)).hit
    newer_helm = CacheScope.for_app("https://git.example/r", "a", SOURCE, None, {**TOOLS, "helm": "v5"})
    assert not (await cache.get_or_render(newer_helm, "c1", repo.tree_ids, repo.render)).hit
    # targetRevision is not an option: the same trees at another revision are the same render
    assert (await cache.get_or_render(scope(other_revision), "c9", repo.tree_ids, repo.render)).hit


async def test_a_path_appearing_invalidates(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path), FakeRepo()
    repo.inputs = ("app", "app-values/extra.yaml")
    await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    repo.ids["app-values/extra.yaml"] = "blob1"  # was missing (None), now exists
    assert not (await cache.get_or_render(scope(), "c2", repo.tree_ids, repo.render)).hit


async def test_a_refresh_renders_again_and_its_result_replaces_the_entry(tmp_path: Path) -> None:
    """A hard refresh: the cached render is not served, and what the new render made is what a restart reads."""
    cache, repo = RenderCache(tmp_path), FakeRepo()
    first = await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    repo.payload = "y"  # what a fixed renderer (or tool) makes of the same inputs
    fresh = await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render, refresh=True)
    assert (fresh.hit, repo.renders, fresh.key) == (False, 2, first.key)
    assert fresh.objects[0]["data"] == {"p": "y"}
    assert (cache.stats.renders, cache.stats.hits) == (2, 0)
    reopened = await RenderCache(tmp_path).get_or_render(scope(), "c2", repo.tree_ids, repo.render)
    assert reopened.hit and reopened.objects[0]["data"] == {"p": "y"} and repo.renders == 2


async def test_survives_restart_and_serves_without_rendering(tmp_path: Path) -> None:
    repo = FakeRepo()
    await RenderCache(tmp_path).get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    reopened = RenderCache(tmp_path)
    result = await reopened.get_or_render(scope(), "c2", repo.tree_ids, repo.render)
    assert result.hit and repo.renders == 1 and len(reopened) == 1
    assert not list((tmp_path / "entries").glob(".tmp-*"))


async def test_lru_bounds_by_entries_and_bytes(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path, max_entries=2), FakeRepo()
    for app in ("a", "b", "c"):
        await cache.get_or_render(scope(app=app), "c1", repo.tree_ids, repo.render)
    assert len(cache) == 2 and len(list((tmp_path / "entries").iterdir())) == 2
    assert not (await cache.get_or_render(scope(app="a"), "c1", repo.tree_ids, repo.render)).hit  # evicted
    assert (await cache.get_or_render(scope(app="c"), "c1", repo.tree_ids, repo.render)).hit

    small = RenderCache(tmp_path / "small", max_bytes=1500)
    repo.payload = "y" * 600
    for app in ("a", "b", "c"):
        await small.get_or_render(scope(app=app), "c1", repo.tree_ids, repo.render)
    assert small.size_bytes <= 1500 and len(small) < 3
    repo.payload = "z" * 5000  # larger than the whole cache: served, not stored
    big = await small.get_or_render(scope(app="d"), "c1", repo.tree_ids, repo.render)
    assert big.objects[0]["data"]["p"] == repo.payload and small.size_bytes <= 1500


async def test_concurrent_callers_share_one_render_and_get_their_own_copy(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path), FakeRepo()
    results = await asyncio.gather(*(cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render) for _ in range(8)))
    assert repo.renders == 1
    results[0].objects[0]["data"]["p"] = "changed by a caller"
    assert results[1].objects[0]["data"]["p"] == "x"
    on_disk = (tmp_path / "entries" / f"{results[0].key}.json").read_text()
    assert "changed by a caller" not in on_disk


async def test_a_failed_render_is_not_cached_and_reaches_every_caller(tmp_path: Path) -> None:
    cache, repo = RenderCache(tmp_path), FakeRepo()

    async def failing() -> Rendered:
        await asyncio.sleep(0.01)
        raise RuntimeError("boom")

    outcomes = await asyncio.gather(
        *(cache.get_or_render(scope(), "c1", repo.tree_ids, failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes) and len(cache) == 0
    assert not (await cache.get_or_render(scope(), "c1", repo.tree_ids, repo.render)).hit


def test_leftovers_and_unreadable_entries_are_dropped_at_start(tmp_path: Path) -> None:
    (tmp_path / "entries").mkdir(parents=True)
    (tmp_path / "entries" / "junk.json").write_text("not json\n")
    (tmp_path / "entries" / ".tmp-abc").write_text("partial")
    cache = RenderCache(tmp_path)
    assert len(cache) == 0 and list((tmp_path / "entries").iterdir()) == []


def test_cache_dir_is_private(tmp_path: Path) -> None:
    RenderCache(tmp_path / "c")
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "c" / "entries").stat().st_mode & 0o777 == 0o700


async def test_an_entry_a_crash_cut_short_is_rendered_again(tmp_path: Path) -> None:
    repo = FakeRepo()
    first = await RenderCache(tmp_path).get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    entry = tmp_path / "entries" / f"{first.key}.json"
    meta, _, body = entry.read_bytes().partition(b"\n")
    entry.write_bytes(meta + b"\n" + body[: len(body) // 2])  # written without fsync, then the power went
    again = await RenderCache(tmp_path).get_or_render(scope(), "c1", repo.tree_ids, repo.render)
    assert not again.hit and repo.renders == 2 and again.objects[0]["data"] == first.objects[0]["data"]
    assert (await RenderCache(tmp_path).get_or_render(scope(), "c1", repo.tree_ids, repo.render)).hit
