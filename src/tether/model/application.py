"""The Application custom resource (``tether.dev/v1alpha1``), field-compatible with Argo CD's.

An Argo CD Application manifest becomes a Tether one by changing its ``apiVersion``: every
spec field keeps Argo CD's name and meaning. Unknown spec fields are refused, so a typo is
an error naming the field instead of a silent no-op. ``Application.from_object`` reads a
whole custom resource (metadata, spec, operation, status) and turns any mistake into one
``TetherError`` with reason ``InvalidSpec`` that names the app and the field path.

Status is not modelled: the controller writes it as plain dicts in Argo CD's
``ApplicationStatus`` shape, and the CRD keeps whatever it writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from tether.controller.backoff import retry_allowed, retry_delay
from tether.errors import Reason, TetherError
from tether.model.source import ApplicationSource

GROUP = "tether.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
APPLICATION_KIND = "Application"
RESOURCES_FINALIZER = "resources-finalizer.tether.dev"
ARGOCD_RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
DEFAULT_PROJECT_NAME = "default"
DEFAULT_REVISION_HISTORY_LIMIT = 10
SKIP_RECONCILE_ANNOTATIONS = (f"{GROUP}/skip-reconcile", "argocd.argoproj.io/skip-reconcile")
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool, as Argo CD reads it
M = TypeVar("M", bound=BaseModel)


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


# --------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a Go duration (``"5s"``, ``"3m"``, ``"1h30m"``, ``"1.5h"``); a bare number is seconds.

    Go's ``time.ParseDuration`` grammar (units ns, us, ms, s, m, h; no days), plus Argo CD's
    retry backoff rule that a plain integer string means seconds. Negative durations are refused.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = text.strip()
        if not raw:
            raise ValueError("invalid duration '': empty")
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            value = float(raw)
        else:
            body = raw.removeprefix("+")
            if body.startswith("-"):
                raise ValueError(f"invalid duration {text!r}: must not be negative")
            position, value = 0, 0.0
            for match in _DURATION_PART.finditer(body):
                if match.start() != position:
                    break
                value += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                position = match.end()
            if position != len(body) or not body:
                raise ValueError(f'invalid duration {text!r}: use a number with a unit, like "30s", "5m" or "1h30m"')
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"invalid duration {text!r}: must be a finite, non-negative length")
    return value


# --------------------------------------------------------------------- spec parts


class Destination(_Spec):
    """Where the manifests go: a cluster by ``server`` URL or by ``name`` (not both), and a namespace."""

    server: str = ""
    name: str = ""
    namespace: str = ""

    @model_validator(mode="after")
    def _one_cluster(self) -> Self:
        if self.server and self.name:
            raise ValueError("set server or name, not both")
        if not self.server and not self.name:
            raise ValueError("set server (a cluster URL) or name (a cluster name such as in-cluster)")
        return self


class Automated(_Spec):
    """Automated sync; present means on unless ``enabled: false`` (Argo CD ≥ 3.0 spelling)."""

    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    enabled: bool = True


class Backoff(_Spec):
    """How long to wait between sync retries: ``duration × factor^n``, at most ``maxDuration``."""

    duration: str = "5s"
    factor: int = Field(default=2, ge=1)
    max_duration: str = "3m"

    @field_validator("duration", "max_duration", mode="before")
    @classmethod
    def _valid_duration(cls, value: Any) -> Any:
        if value in (None, ""):
            return None  # replaced by the default below
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        parse_duration(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _defaults_for_empty(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value not in (None, "")}
        return data

    @property
    def duration_seconds(self) -> float:
        return parse_duration(self.duration)

    @property
    def max_duration_seconds(self) -> float:
        return parse_duration(self.max_duration)


class RetryStrategy(_Spec):
    """Retries of a failed sync: ``limit`` attempts after the first (below 0: unlimited), with ``backoff``.

    ``refresh`` (Argo CD 3.1): each retry syncs what ``targetRevision`` names then, not the revision the
    first attempt synced, so a fix pushed meanwhile is picked up by the next retry.
    """

    limit: int = 0
    backoff: Backoff | None = None
    refresh: bool = False

    @property
    def unlimited(self) -> bool:
        return self.limit < 0

    def allows(self, retries_done: int) -> bool:
        """Whether another retry may follow ``retries_done`` retries."""
        return retry_allowed(self.limit, retries_done)

    def delay(self, retries_done: int) -> float:
        """Seconds before retry number ``retries_done + 1``: Argo CD's ``duration × factor^n``, capped."""
        backoff = self.backoff or Backoff()
        return retry_delay(
            backoff.duration_seconds, float(backoff.factor), backoff.max_duration_seconds, max(retries_done, 0)
        )


class ManagedNamespaceMetadata(_Spec):
    """Labels and annotations put on the namespace ``CreateNamespace=true`` makes."""

    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


def check_sync_option(option: str) -> str:
    """``option`` if it is a ``Key=Value`` sync option Tether knows, else ``ValueError`` saying why."""
    from tether.sync.options import SyncOptions  # lazily: the sync package imports the render stack

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*=\S.*", option.strip()):
        raise ValueError(f'sync option {option!r} must look like "Key=Value", e.g. "CreateNamespace=true"')
    try:
        SyncOptions.from_strings([option])
    except TetherError as exc:
        raise ValueError(exc.detail.removeprefix("syncOptions: ")) from None
    return option


SyncOptionText = Annotated[str, AfterValidator(check_sync_option)]


class SyncPolicy(_Spec):
    """When and how to sync: automation, options (``Key=Value``), retry and the managed namespace's metadata."""

    automated: Automated | None = None
    sync_options: tuple[SyncOptionText, ...] = ()
    retry: RetryStrategy | None = None
    managed_namespace_metadata: ManagedNamespaceMetadata | None = None

    @property
    def automated_enabled(self) -> bool:
        return self.automated is not None and self.automated.enabled

    def option(self, name: str) -> str | None:
        """The value of sync option ``name`` (``"true"`` for ``CreateNamespace=true``), or None."""
        return sync_option(self.sync_options, name)


def sync_option(options: Iterable[str], name: str) -> str | None:
    """The value of ``name`` in a ``Key=Value`` list; the last one wins, as in Argo CD."""
    found = None
    for option in options:
        key, _, value = option.partition("=")
        if key.strip() == name:
            found = value.strip()
    return found


class IgnoreDifference(_Spec):
    """One ``ignoreDifferences`` entry: objects by group/kind (globs), name and namespace; fields three ways."""

    group: str = ""
    kind: str = Field(min_length=1)
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()

    @field_validator("group", "name", "namespace", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @model_validator(mode="after")
    def _parses(self) -> Self:
        from tether.diff.ignore import IgnoreRule  # lazily: tether.diff imports the render stack, which imports us

        try:
            IgnoreRule.from_spec(self.as_dict(), where="entry")
        except TetherError as exc:
            raise ValueError(exc.detail.removeprefix("entry.").removeprefix("entry")) from None
        return self

    def as_dict(self) -> dict[str, Any]:
        """The entry in Argo CD's JSON shape, as ``tether.diff.parse_ignore_differences`` takes it."""
        return self.model_dump(by_alias=True, exclude_defaults=True, mode="json") | {
            "group": self.group,
            "kind": self.kind,
        }


class Info(_Spec):
    """A free-form name/value line shown with the app."""

    name: str
    value: str


class ApplicationSpec(_Spec):
    """What to deploy (``source`` or ``sources``), where, under which project, and how to sync it."""

    source: ApplicationSource | None = None
    sources: tuple[ApplicationSource, ...] | None = None
    destination: Destination
    project: str = DEFAULT_PROJECT_NAME
    sync_policy: SyncPolicy | None = None
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    revision_history_limit: int = Field(default=DEFAULT_REVISION_HISTORY_LIMIT, ge=0)
    info: tuple[Info, ...] = ()

    @field_validator("project", mode="before")
    @classmethod
    def _empty_project_is_default(cls, value: Any) -> Any:
        return DEFAULT_PROJECT_NAME if value in (None, "") else value

    @field_validator("revision_history_limit", mode="before")
    @classmethod
    def _none_limit_is_default(cls, value: Any) -> Any:
        return DEFAULT_REVISION_HISTORY_LIMIT if value is None else value

    @field_validator("ignore_differences", "info", mode="before")
    @classmethod
    def _none_list_is_empty(cls, value: Any) -> Any:
        return () if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _sources_win(cls, data: Any) -> Any:
        """Argo CD's rule: with ``sources`` given, ``source`` is ignored (not read, not validated)."""
        if isinstance(data, dict) and data.get("sources") and data.get("source") is not None:
            return {k: v for k, v in data.items() if k != "source"}
        return data

    @model_validator(mode="after")
    def _one_source_field(self) -> Self:
        if self.source is None and not self.sources:
            raise ValueError("set source (one source) or sources (a non-empty list)")
        return self

    def sources_list(self) -> tuple[ApplicationSource, ...]:
        """Every source, in order: ``sources`` when given, else ``(source,)``."""
        if self.sources:
            return self.sources
        assert self.source is not None  # the validator guarantees one of the two
        return (self.source,)

    @property
    def multi_source(self) -> bool:
        return bool(self.sources)

    def ignore_differences_dicts(self) -> list[dict[str, Any]]:
        """``ignoreDifferences`` as plain dicts, the input of ``tether.diff.parse_ignore_differences``."""
        return [entry.as_dict() for entry in self.ignore_differences]

    @property
    def automated(self) -> Automated | None:
        """The automated policy when it is on, else None."""
        policy = self.sync_policy
        return policy.automated if policy is not None and policy.automated_enabled else None

    @property
    def sync_options(self) -> tuple[str, ...]:
        return self.sync_policy.sync_options if self.sync_policy else ()


# --------------------------------------------------------------------- operation


class SyncOperationResource(_Spec):
    """One object of a selective sync; an empty namespace matches any."""

    group: str = ""
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str = ""


class SyncStrategyApply(_Spec):
    force: bool = False


class SyncStrategy(_Spec):
    """Argo CD's ``apply`` (no hooks) or ``hook`` (the default: hooks run) strategy, each with ``force``."""

    apply: SyncStrategyApply | None = None
    hook: SyncStrategyApply | None = None

    @property
    def runs_hooks(self) -> bool:
        return self.apply is None

    @property
    def force(self) -> bool:
        chosen = self.apply or self.hook
        return chosen.force if chosen is not None else False


class SyncOperation(_Spec):
    """A requested sync: to which revision(s), with prune / dry run / options, of all or some objects."""

    revision: str = ""
    revisions: tuple[str, ...] = ()
    prune: bool = False
    dry_run: bool = False
    sync_options: tuple[SyncOptionText, ...] = ()
    resources: tuple[SyncOperationResource, ...] | None = None
    sync_strategy: SyncStrategy | None = None
    source: ApplicationSource | None = None  # a rollback syncs the source recorded in history
    sources: tuple[ApplicationSource, ...] | None = None


class OperationInitiator(_Spec):
    """Who asked: a user name, or the controller itself (``automated``)."""

    username: str = ""
    automated: bool = False


class Operation(_Spec):
    """The top-level ``operation`` field: a sync requested by a user, the API or ``kubectl``."""

    sync: SyncOperation | None = None
    initiated_by: OperationInitiator = OperationInitiator()
    info: tuple[Info, ...] = ()
    retry: RetryStrategy | None = None

    @model_validator(mode="after")
    def _has_sync(self) -> Self:
        if self.sync is None:
            raise ValueError("sync is required (the only operation is a sync)")
        return self


# --------------------------------------------------------------------- the resource


class ObjectMeta(BaseModel):
    """The metadata the controller reads; other fields the API server sets are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: str | None = None
    creation_timestamp: str | None = None

    @field_validator("labels", "annotations", "finalizers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return () if info.field_name == "finalizers" else {}
        return value

    @field_validator("deletion_timestamp", "creation_timestamp", mode="before")
    @classmethod
    def _timestamp_text(cls, value: Any) -> Any:
        return value.isoformat() if hasattr(value, "isoformat") else value


class Application(BaseModel):
    """A whole Application custom resource; build it with ``from_object`` to get errors that name the field."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = APPLICATION_KIND
    metadata: ObjectMeta
    spec: ApplicationSpec
    operation: Operation | None = None
    status: dict[str, Any] = {}

    @field_validator("status", mode="before")
    @classmethod
    def _none_status_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Application:
        """Validate a custom resource as read from the API server (or a file).

        Raises ``TetherError`` (reason ``InvalidSpec``) naming the app and each bad field, e.g.
        ``app 'guestbook': spec.destination: set server or name, not both``.
        """
        return validate_resource(cls, obj, API_VERSION, APPLICATION_KIND)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def deleting(self) -> bool:
        return self.metadata.deletion_timestamp is not None

    @property
    def cascade_delete(self) -> bool:
        """Whether deleting the app deletes its resources (Tether's or Argo CD's resources finalizer)."""
        return any(f in (RESOURCES_FINALIZER, ARGOCD_RESOURCES_FINALIZER) for f in self.metadata.finalizers)

    def annotation(self, name: str) -> str | None:
        """An annotation under ``tether.dev/`` or, failing that, ``argocd.argoproj.io/`` (e.g. ``refresh``)."""
        annotations = self.metadata.annotations
        return annotations.get(f"{GROUP}/{name}", annotations.get(f"argocd.argoproj.io/{name}"))


def skips_reconcile(obj: Mapping[str, Any]) -> bool:
    """Argo CD's ``skip-reconcile: "true"`` (also under ``tether.dev/``, which wins): the app is left alone.

    For moving apps between controllers one at a time (a migration from Argo CD, a third-party
    tool driving rollouts): while it is set, nothing about the app is compared, synced, deleted or
    written, as in Argo CD; a running operation is not stopped, and can still be terminated.
    """
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = next((annotations[a] for a in SKIP_RECONCILE_ANNOTATIONS if a in annotations), None)
    return value in _GO_TRUE


# --------------------------------------------------------------------- errors


def validate_resource(model: type[M], obj: Mapping[str, Any], api_version: str, kind: str) -> M:
    """``model`` from a custom resource ``obj``, or one ``InvalidSpec`` error naming the object and fields."""
    noun = "app" if kind == APPLICATION_KIND else kind.lower()
    if not isinstance(obj, Mapping):
        raise TetherError(f"{noun}: expected an object, got {type(obj).__name__}", reason=Reason.INVALID_SPEC)
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) and isinstance(meta.get("name"), str) else None
    problems: list[str] = []
    if obj.get("apiVersion") != api_version:
        problems.append(f"apiVersion: expected {api_version}, got {obj.get('apiVersion')!r}")
    if obj.get("kind") != kind:
        problems.append(f"kind: expected {kind}, got {obj.get('kind')!r}")
    if not problems:
        try:
            return model.model_validate(dict(obj))
        except ValidationError as exc:
            problems.extend(describe_errors(exc))
    error = TetherError("; ".join(problems), reason=Reason.INVALID_SPEC)
    if noun == "app":
        raise error.for_app(name)
    if name:
        error.args = (f"{noun} {name!r}: {error.detail}",)
    raise error


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
}


def describe_errors(exc: ValidationError, limit: int = 5) -> list[str]:
    """One ``field.path[0].sub: why`` line per pydantic error, in Kubernetes' field notation."""
    by_path: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = ""
        for step in error["loc"]:
            if isinstance(step, int):
                path += f"[{step}]"
            elif isinstance(step, str) and not _is_union_tag(step):
                path += f".{step}" if path else step
        message = _MESSAGES.get(error["type"], error["msg"])
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        by_path.setdefault(path, []).append(message.removeprefix("Input should be ") if by_path.get(path) else message)
    lines = [
        f"{path}: {' or '.join(messages)}" if path else " or ".join(messages) for path, messages in by_path.items()
    ]
    more = len(lines) - limit
    lines = lines[:limit]
    if more > 0:
        lines.append(f"and {more} more")
    return lines


def _is_union_tag(step: str) -> bool:
    """pydantic names the union member it tried (``str``, ``dict[str,any]``, ``function-after[…]``)."""
    return step in ("str", "int", "float", "bool") or "[" in step or step.startswith(("function-", "tagged-"))
