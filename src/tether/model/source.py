"""Where an application's manifests come from: the Argo CD ``spec.source`` shape.

Field names are Argo CD's (``repoURL``, ``targetRevision``, ``valueFiles`` …) so an
Application written for Argo CD parses unchanged; Python code uses snake_case attributes.
Unknown fields are refused, so a typo is an error naming the field, not a silent no-op.
Which of ``helm`` / ``kustomize`` / ``directory`` is present is the explicit source type,
exactly as in Argo CD.

Several sources (Argo CD's ``spec.sources[]``) may name one of them with ``ref: values``; a
Helm value file written ``$values/envs/prod.yaml`` is then read from that source's
repository, relative to its root. ``split_ref`` and ``ref_errors`` are the pure rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

REF_NAME = re.compile(r"[A-Za-z0-9_-]+")
"""What ``ref`` may be: a plain name, so ``$<ref>/`` at the start of a value file is unambiguous."""

_NOT_RENDER_OPTIONS = ("repoURL", "targetRevision", "ref", "name")


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SourceType(str, Enum):
    """The four ways to turn a directory into manifests."""

    DIRECTORY = "directory"
    HELM = "helm"
    KUSTOMIZE = "kustomize"
    PLUGIN = "plugin"


class JsonnetVar(_Spec):
    """One ext var or top-level argument; ``code`` means the value is Jsonnet code, not a string."""

    name: str = Field(min_length=1)
    value: str
    code: bool = False


class JsonnetSource(_Spec):
    ext_vars: tuple[JsonnetVar, ...] = ()
    tlas: tuple[JsonnetVar, ...] = ()
    libs: tuple[str, ...] = ()  # library paths, relative to the repository root


class DirectorySource(_Spec):
    recurse: bool = False
    include: str = ""  # glob over the path relative to the app path, e.g. "{a.yaml,b/*}"
    exclude: str = ""
    jsonnet: JsonnetSource = JsonnetSource()


class HelmParameter(_Spec):
    """A Helm parameter: ``--set name=value`` (typed), or ``--set-string`` with ``forceString: true``.

    Argo CD's rule, so a repository written for it renders the same: ``5`` reaches the chart
    as a number and ``true`` as a boolean unless ``forceString: true`` keeps them strings.
    (Tether once defaulted to ``--set-string``; see docs/sources-and-rendering.md.)
    """

    name: str = Field(min_length=1)
    value: str
    force_string: bool = False

    @property
    def set_flag(self) -> str:
        return "--set-string" if self.force_string else "--set"

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return value


class HelmFileParameter(_Spec):
    """``--set-file name=path``; the path is relative to the chart and must stay in the repository."""

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)


class HelmSource(_Spec):
    release_name: str | None = None  # default: the application's name
    namespace: str | None = None  # default: the destination namespace
    value_files: tuple[str, ...] = ()  # relative to the chart; "/x" is relative to the repository root
    ignore_missing_value_files: bool = False
    values: str | dict[str, Any] | None = None  # inline values; ``valuesObject`` wins if both
    values_object: dict[str, Any] | None = None
    parameters: tuple[HelmParameter, ...] = ()
    file_parameters: tuple[HelmFileParameter, ...] = ()
    skip_crds: bool = False
    skip_schema_validation: bool = False
    skip_tests: bool = False
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    pass_credentials: bool = False  # accepted for compatibility; charts are never fetched
    version: str | None = None  # Argo CD's helm "v2"/"v3" switch; accepted and ignored

    def inline_values(self) -> dict[str, Any] | str | None:
        """The inline values that apply: ``valuesObject`` if set, else ``values``."""
        if self.values_object is not None:
            return self.values_object
        return self.values


class KustomizeReplica(_Spec):
    name: str = Field(min_length=1)
    count: int | str

    @field_validator("count")
    @classmethod
    def _count_is_number(cls, count: int | str) -> int | str:
        if isinstance(count, str) and not count.strip().isdigit():
            raise ValueError(f"replica count must be a whole number, not {count!r}")
        return count


class KustomizeSelector(_Spec):
    """Which objects a patch applies to: kustomize's ``target`` (group/version/kind/name/namespace, selectors)."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    annotation_selector: str | None = None


class KustomizePatch(_Spec):
    """One entry of kustomize's ``patches``: a file (``path``) or inline text (``patch``), with its target."""

    path: str | None = None  # relative to the app path; must stay in the repository
    patch: str | None = None  # strategic merge or JSON 6902, as YAML or JSON text
    target: KustomizeSelector | None = None
    options: dict[str, bool] = {}  # allowNameChange, allowKindChange

    @model_validator(mode="after")
    def _path_or_patch(self) -> KustomizePatch:
        if bool(self.path) == bool(self.patch):
            raise ValueError("a kustomize patch needs exactly one of path and patch")
        return self


class KustomizeSource(_Spec):
    name_prefix: str | None = None
    name_suffix: str | None = None
    namespace: str | None = None
    common_labels: dict[str, str] = {}
    common_annotations: dict[str, str] = {}
    force_common_labels: bool = False
    force_common_annotations: bool = False
    common_annotations_envsubst: bool = False  # expand build variables ($ARGOCD_APP_NAME …) in the values
    label_without_selector: bool = False  # commonLabels as a ``labels`` entry: selectors (and templates) untouched
    label_include_templates: bool = False  # with labelWithoutSelector: label the pod templates too
    images: tuple[str, ...] = ()  # kustomize edit set image syntax: name=new:tag, name:tag, name@digest
    replicas: tuple[KustomizeReplica, ...] = ()
    patches: tuple[KustomizePatch, ...] = ()  # appended to the kustomization's own ``patches``
    components: tuple[Annotated[str, Field(min_length=1)], ...] = ()  # paths or globs relative to the app path
    ignore_missing_components: bool = False  # skip components that do not exist instead of failing
    kube_version: str | None = None  # for the charts kustomize inflates: replaces the destination's
    api_versions: tuple[str, ...] = ()  # likewise, all of them: the destination's are not added
    version: str | None = None  # Argo CD's kustomize version switch; accepted and ignored

    def has_overrides(self) -> bool:
        """Whether the kustomization must be edited before building."""
        return bool(
            self.name_prefix
            or self.name_suffix
            or self.namespace
            or self.common_labels
            or self.common_annotations
            or self.images
            or self.replicas
            or self.patches
            or self.components
        )


def is_oci(repo_url: str) -> bool:
    """An OCI registry (Argo CD 3.1's ``oci://`` sources): no git repository, and not read by Tether."""
    return repo_url.strip().lower().startswith("oci://")


class ApplicationSource(_Spec):
    """An application's source: a path in a repository at a revision, and how to render it."""

    repo_url: str = Field(alias="repoURL", min_length=1)
    path: str = ""
    target_revision: str = "HEAD"
    chart: str | None = None  # Helm repository charts: refused (``unsupported``), before any git call
    helm: HelmSource | None = None
    kustomize: KustomizeSource | None = None
    directory: DirectorySource | None = None
    plugin: dict[str, Any] | None = None  # config management plugins: refused at render time
    ref: str | None = None  # multi-source: other sources' value files may read "$<ref>/..." from this repository
    name: str | None = None  # Argo CD 2.14+ source name; a label only

    @field_validator("ref")
    @classmethod
    def _ref_is_a_plain_name(cls, ref: str | None) -> str | None:
        if ref is not None and not REF_NAME.fullmatch(ref):
            raise ValueError(f"ref {ref!r} must be a plain name of letters, digits, '_' and '-'")
        return ref

    @model_validator(mode="after")
    def _ref_is_not_a_chart(self) -> ApplicationSource:
        if self.ref is not None and self.chart is not None:
            raise ValueError("a source with ref cannot have chart (Argo CD's rule: value files come from git)")
        return self

    def unsupported(self) -> tuple[str, str] | None:
        """The field naming what Tether cannot read (a Helm or OCI repository) and why; None when it can.

        Refused before any git call, so the error says this instead of what git makes of such a URL.
        """
        if self.chart:
            return "chart", "Helm repository charts are not supported: vendor the chart into git"
        if is_oci(self.repo_url):
            return "repoURL", "OCI repositories are not supported: Tether reads manifests and charts from git"
        return None

    @property
    def ref_only(self) -> bool:
        """A ``ref`` source without a ``path``: it supplies files to other sources and renders nothing."""
        return self.ref is not None and not self.path.strip()

    def referenced_refs(self) -> tuple[str, ...]:
        """The ref names this source's Helm value files read from, in order of first use."""
        names: dict[str, None] = {}
        for value_file in self.helm.value_files if self.helm else ():
            found = split_ref(value_file)
            if found is not None:
                names.setdefault(found[0], None)
        return tuple(names)

    @field_validator("target_revision", mode="before")
    @classmethod
    def _empty_revision_is_head(cls, revision: Any) -> Any:
        return "HEAD" if revision in ("", None) else revision

    @field_validator("path", mode="before")
    @classmethod
    def _none_path_is_root(cls, path: Any) -> Any:
        return "" if path is None else path

    def explicit_type(self) -> SourceType | None:
        """The type the spec names by carrying its section, or None to detect it from the files."""
        named = [
            kind
            for kind, section in (
                (SourceType.KUSTOMIZE, self.kustomize),
                (SourceType.HELM, self.helm),
                (SourceType.DIRECTORY, self.directory),
                (SourceType.PLUGIN, self.plugin),
            )
            if section is not None
        ]
        if len(named) > 1:
            raise ValueError("source names more than one type: " + ", ".join(kind.value for kind in named))
        return named[0] if named else None

    def render_options(self) -> str:
        """Canonical JSON of everything but where and when: the render-relevant part of the spec."""
        spec = self.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        for where_or_label in _NOT_RENDER_OPTIONS:  # ``ref`` and ``name`` do not change this source's output
            spec.pop(where_or_label, None)
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def split_ref(path: str) -> tuple[str, str] | None:
    """``("values", "envs/prod.yaml")`` for ``$values/envs/prod.yaml``; None for a path without a ``$ref``.

    Only a first segment ``$<name>`` with a plain name counts (Argo CD: "only at the beginning");
    ``$values.yaml`` stays an ordinary file name. The rest is relative to the ref source's root
    (leading slashes dropped); it may be empty, which the renderer refuses as not a file.
    """
    head, _, rest = path.partition("/")
    if not head.startswith("$") or not REF_NAME.fullmatch(head[1:]):
        return None
    return head[1:], rest.lstrip("/")


def ref_errors(sources: Sequence[ApplicationSource], prefixes: Sequence[str] | None = None) -> list[str]:
    """What is wrong with the refs of ``sources``, each message naming its field; empty when all is well.

    ``prefixes[i]`` starts the field names of source ``i`` (default ``spec.sources[i].``; ``""``
    for a single ``spec.source``). A ref name used twice, a ``$ref`` no source defines, and a
    ``$ref`` in ``helm.fileParameters`` (Argo CD reads refs only in ``helm.valueFiles``) are errors.
    """
    fields = list(prefixes) if prefixes is not None else [f"spec.sources[{i}]." for i in range(len(sources))]
    errors: list[str] = []
    defined: dict[str, int] = {}
    for index, source in enumerate(sources):
        if source.ref is None:
            continue
        if source.ref in defined:
            first = fields[defined[source.ref]].rstrip(".") or "spec.source"
            errors.append(f"{fields[index]}ref: {source.ref!r} is already the ref of {first}")
        else:
            defined[source.ref] = index
    for index, source in enumerate(sources):
        helm = source.helm
        if helm is None:
            continue
        for position, value_file in enumerate(helm.value_files):
            found = split_ref(value_file)
            if found is not None and found[0] not in defined:
                where = f"{fields[index]}helm.valueFiles[{position}]"
                errors.append(f"{where}: {value_file!r} names ${found[0]}, but no source has ref: {found[0]}")
        for position, parameter in enumerate(helm.file_parameters):
            if split_ref(parameter.path) is not None:
                where = f"{fields[index]}helm.fileParameters[{position}].path"
                errors.append(f"{where}: {parameter.path!r}: a $ref is only supported in helm.valueFiles")
    return errors
