"""Kustomize apps, built with the pinned ``kubectl kustomize`` and Argo CD's spec overrides.

The build: ``kubectl kustomize <dir> --load-restrictor LoadRestrictionsRootOnly
--enable-helm --helm-command <pinned helm>``, after ``kustomize_refs`` has checked that
nothing the kustomization graph references leaves the repository.

Overrides (``namePrefix``, ``nameSuffix``, ``namespace``, ``commonLabels``,
``commonAnnotations``, ``images``, ``replicas``, ``patches``, ``components``) are applied the
way Argo CD applies them with ``kustomize edit``: by editing the app's own kustomization
file, so a ``namePrefix`` replaces the file's prefix rather than stacking on it, and the
spec's patches and components are appended to the file's own. The checkout is read-only and a
``../base`` must still resolve, so the edit happens in a scratch *mirror* of the
repository: the directories on the way down to the app are real, every other entry is a
symlink into the checkout, and the app directory itself is copied (copied, not linked,
because kustomize's root-only restriction compares real paths of the files it loads with
the real path of the kustomization root). ``../base`` in the mirror is a symlink to the
checkout's ``base`` and loads exactly as it would in place.

kustomize runs helm through a guard (``--helm-command``): a small script that only lets
``helm template`` and ``helm version`` through, so a chart that slipped past the reference
checks can never be pulled (``helm pull`` would also write the chart into the app's
directory). When the scratch directory cannot hold an executable (a ``noexec`` mount),
the pinned helm is used directly; the reference checks and the closed network remain.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tether.model.source import KustomizeSource
from tether.render.errors import RenderError, render_error
from tether.render.kustomize_refs import (
    check_kustomization_tree,
    find_kustomization,
    load_kustomization,
    remote_reason,
)
from tether.render.manifests import ManifestError, Manifests, load_yaml
from tether.render.paths import Checkout
from tether.render.request import RenderRequest
from tether.render.toolenv import private_tool_env, run_tool
from tether.tools import binary

_TAGGED = re.compile(r"^(.*):([a-zA-Z0-9._-]*)$")
_GLOB_MAGIC = re.compile(r"[*?\[]")  # what makes a path segment a glob, for Go's filepath.Glob and Python's

_HELM_GUARD = """#!/bin/sh
case "$1" in
  template|version) exec {helm} "$@" ;;
esac
echo "helm $1 refused: Tether renders never download charts (vendor the chart into the repository)" >&2
exit 1
"""


async def render_kustomize(checkout: Checkout, app_dir: Path, request: RenderRequest) -> Manifests:
    """Objects of the kustomization in ``app_dir``, all or nothing."""
    where = checkout.relative(app_dir)
    kustomization = find_kustomization(app_dir)
    if kustomization is None:
        raise render_error(request.app, f"kustomization {where}", "no kustomization.yaml in the app path")
    spec = request.source.kustomize or KustomizeSource()
    components = find_components(checkout, app_dir, spec)
    check_kustomization_tree(checkout, app_dir, _spec_references(spec, components))
    with private_tool_env() as (env, scratch):
        build_dir = app_dir
        own = load_kustomization(checkout, kustomization)
        if spec.has_overrides():
            edited = apply_overrides(request.app, own, spec, [path for _, path in components])
            build_dir = writable_mirror(checkout.root, app_dir, scratch / "repo")
            (build_dir / kustomization.name).write_text(yaml.safe_dump(edited, sort_keys=False))
        # For the charts kustomize inflates, as Argo CD passes them; the spec's replace the cluster's.
        flags: list[str] = []
        cluster = request.capabilities
        kube_version = spec.kube_version or (cluster.kube_version if cluster else "")
        if kube_version:
            flags += ["--helm-kube-version", kube_version]
        api_versions = spec.api_versions or (cluster.api_versions if cluster else ())
        if api_versions:
            flags += [f"--helm-api-versions={','.join(api_versions)}"]
        file = checkout.relative(kustomization)

        async def build(target: Path) -> Manifests:
            return await run_tool(
                kustomize_argv(target, scratch) + flags,
                env=env,
                cwd=scratch,
                request=request,
                what="kubectl kustomize",
                where=f"kustomization {where}",
                hide=(scratch / "repo", checkout.root),
                file=file,
            )

        if own.get("buildMetadata"):
            # Only the outermost kustomization's buildMetadata counts: a wrapper would drop the app's own (and,
            # with originAnnotations among them, the app wants the annotations kept, as Argo CD applies them).
            return await build(build_dir)
        wrapper = origin_wrapper(scratch, build_dir, own.get("sortOptions"))
        try:
            built = await build(wrapper)
        except RenderError:
            return await build(build_dir)  # the app's own error (or output), without the wrapper's
        roots = (scratch / "repo", checkout.root)
        return Manifests(built.objects, tuple(_origin(obj, wrapper, roots, file) for obj in built.objects))


ORIGIN_METADATA = "originAnnotations"
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


def origin_wrapper(scratch: Path, build_dir: Path, sort_options: Any = None) -> Path:
    """A kustomization in ``scratch`` whose only resource is ``build_dir``, asking kustomize to say where each
    object came from (``buildMetadata: [originAnnotations]``). It adds nothing else, so the objects are the
    app's own plus that annotation, which ``_origin`` takes off again. Only the outermost kustomization's
    ``sortOptions`` and ``buildMetadata`` count: the app's ``sort_options`` are carried up to keep its order,
    and an app with ``buildMetadata`` of its own is built without the wrapper."""
    wrapper = scratch / "origins"
    wrapper.mkdir()
    content: dict[str, Any] = {"resources": [os.path.relpath(build_dir, wrapper)], "buildMetadata": [ORIGIN_METADATA]}
    if sort_options is not None:
        content["sortOptions"] = sort_options
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(content))
    return wrapper


def _origin(obj: dict[str, Any], wrapper: Path, roots: Sequence[Path], default: str) -> str:
    """The repository file kustomize's origin annotation names (removed from ``obj``); ``default`` if none.

    A resource's origin is its ``path``; a generated one's, the kustomization that ``configuredIn`` names;
    both relative to the wrapper, through the scratch mirror or into the checkout (``roots``).
    """
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    text = annotations.pop(ORIGIN_ANNOTATION, None)
    if text is None:
        return default
    if not annotations:
        meta.pop("annotations", None)
    try:
        origin = load_yaml(str(text))
    except ManifestError:
        return default
    named = origin.get("path") or origin.get("configuredIn") if isinstance(origin, dict) else None
    if not isinstance(named, str) or not named:
        return default
    found = Path(os.path.normpath(wrapper / named))
    for root in roots:
        if found.is_relative_to(root):
            return found.relative_to(root).as_posix()
    return default


def kustomize_argv(build_dir: Path, scratch: Path) -> list[str]:
    """The build command: root-only loading, helm enabled but only through the guard in ``scratch``."""
    return [
        str(binary("kubectl")),
        "kustomize",
        str(build_dir),
        "--load-restrictor",
        "LoadRestrictionsRootOnly",
        "--enable-helm",
        "--helm-command",
        str(helm_command(scratch)),
    ]


def helm_command(scratch: Path) -> Path:
    """The helm kustomize may run: a guard that refuses every subcommand but template and version."""
    helm = binary("helm")
    if os.statvfs(scratch).f_flag & os.ST_NOEXEC:
        return helm
    guard = scratch / "helm-guard"
    guard.write_text(_HELM_GUARD.format(helm=shlex.quote(str(helm))))
    guard.chmod(0o700)
    return guard


def writable_mirror(root: Path, app_dir: Path, mirror: Path) -> Path:
    """A scratch view of the repository where only ``app_dir`` is a writable copy; its app dir."""
    mirror.mkdir()
    source, target = root, mirror
    for part in app_dir.relative_to(root).parts:
        for entry in os.scandir(source):
            if entry.name != part:
                (target / entry.name).symlink_to(entry.path, target_is_directory=entry.is_dir())
        source, target = source / part, target / part
        target.mkdir()
    _copy_tree(app_dir, target)
    return target


def _copy_tree(source: Path, target: Path) -> None:
    """Copy files and symlinks (as symlinks) into writable directories; modes are not kept."""
    for current, dirs, files in os.walk(source, followlinks=False):
        destination = target / Path(current).relative_to(source)
        destination.mkdir(exist_ok=True)
        for name in [*dirs, *files]:
            entry = Path(current, name)
            if entry.is_symlink():
                (destination / name).symlink_to(os.readlink(entry))
            elif name in files:
                shutil.copyfile(entry, destination / name)
        dirs[:] = [d for d in dirs if not Path(current, d).is_symlink()]


def find_components(checkout: Checkout, app_dir: Path, spec: KustomizeSource) -> list[tuple[str, str]]:
    """(spec field, path) of every component ``spec`` adds, globs expanded as ``kustomize edit add component`` does.

    A pattern that matches nothing fails the render unless ``ignoreMissingComponents`` is set.
    Remote references, and patterns whose fixed part leaves the repository, are refused before
    anything is looked up; what a glob matches is checked with the rest of the kustomization.
    """
    found: list[tuple[str, str]] = []
    for index, pattern in enumerate(spec.components):
        field = f"kustomize.components[{index}]"
        reason = remote_reason(pattern)
        if reason is not None:
            raise render_error(
                checkout.app,
                field,
                f"{pattern!r} is {reason}: remote components are refused (renders never use the network)",
            )
        parts = PurePosixPath(pattern).parts
        fixed = next((i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part)), len(parts))
        checkout.resolve(app_dir, str(PurePosixPath(*parts[:fixed])) if fixed else ".", what=field, must_exist=False)
        matches = (
            [pattern] if fixed == len(parts) else sorted(glob.glob(pattern, root_dir=app_dir, include_hidden=True))
        )
        matches = [match for match in matches if os.path.lexists(app_dir / match)]
        if not matches and not spec.ignore_missing_components:
            raise render_error(
                checkout.app,
                field,
                f"{pattern!r} matches nothing in the repository (set kustomize.ignoreMissingComponents to skip it)",
            )
        found += [(field, match) for match in matches]
    return found


def _spec_references(spec: KustomizeSource, components: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """(spec field, path, must be a directory) for the paths the spec adds: its patch files and components."""
    patch_files = [(f"kustomize.patches[{i}].path", p.path, False) for i, p in enumerate(spec.patches) if p.path]
    return [*patch_files, *((field, path, True) for field, path in components)]


def apply_overrides(
    app: str, kustomization: dict[str, Any], spec: KustomizeSource, components: Sequence[str] = ()
) -> dict[str, Any]:
    """The kustomization after Argo CD's ``kustomize edit`` calls for ``spec``.

    ``components`` are the spec's components as ``find_components`` expanded them; the spec's
    patches are appended to the file's own, as Argo CD does.
    """
    edited = dict(kustomization)
    if spec.name_prefix:
        edited["namePrefix"] = spec.name_prefix
    if spec.name_suffix:
        edited["nameSuffix"] = spec.name_suffix
    if spec.namespace:
        edited["namespace"] = spec.namespace
    if spec.images:
        edited["images"] = _set_images(app, edited.get("images"), spec.images)
    if spec.replicas:
        replicas = [r for r in edited.get("replicas") or [] if isinstance(r, dict)]
        for replica in spec.replicas:
            replicas = [r for r in replicas if r.get("name") != replica.name]
            replicas.append({"name": replica.name, "count": int(replica.count)})
        edited["replicas"] = replicas
    if spec.common_labels and spec.label_include_templates and not spec.label_without_selector:
        raise render_error(app, "kustomize.labelIncludeTemplates", "needs kustomize.labelWithoutSelector")
    if spec.common_labels and spec.label_without_selector:
        labels = edited.get("labels") or []
        if not isinstance(labels, list):
            raise render_error(app, "kustomize.labelWithoutSelector", "the kustomization's own labels is not a list")
        entry: dict[str, Any] = {"pairs": dict(spec.common_labels)}
        if spec.label_include_templates:
            entry["includeTemplates"] = True
        edited["labels"] = [*labels, entry]  # `kustomize edit add label --without-selector`: one new entry
    for field, values, force in (
        ("commonLabels", {} if spec.label_without_selector else spec.common_labels, spec.force_common_labels),
        ("commonAnnotations", spec.common_annotations, spec.force_common_annotations),
    ):
        if not values:
            continue
        merged = dict(edited.get(field) or {})
        clash = sorted(set(merged) & set(values))
        if clash and not force:
            raise render_error(
                app,
                f"kustomize.{field[0].lower()}{field[1:]}",
                f"{', '.join(clash)} already set in the kustomization; "
                f"set kustomize.force{field[0].upper()}{field[1:]} to override",
            )
        merged.update(values)
        edited[field] = merged
    if spec.patches:
        own = edited.get("patches") or []
        if not isinstance(own, list):
            raise render_error(app, "kustomize.patches", "the kustomization's own patches is not a list to append to")
        added = [patch.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True) for patch in spec.patches]
        edited["patches"] = [*own, *added]
    if components:
        own_components = edited.get("components") or []
        if not isinstance(own_components, list):
            raise render_error(app, "kustomize.components", "the kustomization's own components is not a list")
        edited["components"] = [*own_components, *(c for c in dict.fromkeys(components) if c not in own_components)]
    return edited


def parse_image(app: str, arg: str) -> dict[str, str]:
    """One ``kustomize edit set image`` argument: ``name=new[:tag|@digest]``, ``name:tag``, ``name@digest``."""
    if arg.count("=") == 1:
        name, replacement = arg.split("=")
        new = _split_image(replacement, allow_bare=True)
        if new is not None and name:
            image = {"name": name, "newName": new[0], "newTag": new[1], "digest": new[2]}
            return {k: v for k, v in image.items() if v}
    elif "=" not in arg:
        new = _split_image(arg, allow_bare=False)
        if new is not None:
            image = {"name": new[0], "newTag": new[1], "digest": new[2]}
            return {k: v for k, v in image.items() if v}
    raise render_error(app, "kustomize.images", f"{arg!r} is not name=new-name[:tag|@digest], name:tag or name@digest")


def _split_image(text: str, *, allow_bare: bool) -> tuple[str, str, str] | None:
    if "@" in text:
        name, digest = text.split("@", 1)
        return name, "", digest
    tagged = _TAGGED.match(text)
    if tagged:
        return tagged.group(1), tagged.group(2), ""
    return (text, "", "") if text and allow_bare else None


def _set_images(app: str, current: Any, args: tuple[str, ...]) -> list[dict[str, Any]]:
    """Merge like kustomize: a new tag clears the digest and vice versa; new names are appended."""
    images = [dict(i) for i in current or [] if isinstance(i, dict)]
    for arg in args:
        wanted = parse_image(app, arg)
        for image in images:
            if image.get("name") == wanted["name"]:
                if "newName" in wanted:
                    image["newName"] = wanted["newName"]
                if "newTag" in wanted:
                    image["newTag"] = wanted["newTag"]
                    image.pop("digest", None)
                if "digest" in wanted:
                    image["digest"] = wanted["digest"]
                    image.pop("newTag", None)
                break
        else:
            images.append(wanted)
    return images
