"""The sync plan: which object is applied, run as a hook or pruned, in which phase and wave.

Pure: desired objects and the app's live objects in, an ordered ``SyncPlan`` out, so the
ordering rules are tested without a cluster. The order is Argo CD's: phase (PreSync, Sync,
PostSync), then wave, then kind (Namespace first … custom resources last), then name; then
a Namespace is hoisted before the first object in it and a CRD before the first of its
custom resources, taking that object's phase and wave. Prune tasks take the reverse of
their waves (what was created first is deleted last); ``PruneLast`` puts them in one wave
after every other wave of the Sync phase. SyncFail hooks are kept apart: they only run
when the sync fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from tether.errors import TetherError
from tether.hooks import Phase, hook_phases, is_hook, is_skipped, wave
from tether.resource import ResourceKey, json_copy, owner_app
from tether.sync.options import SyncOptions

# Argo CD's kindOrder (from Helm's kind sorter): listed kinds come first in this order;
# every other kind (custom resources) sorts after them.
KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
)
_KIND_RANK = {kind: index - len(KIND_ORDER) for index, kind in enumerate(KIND_ORDER)}


def kind_rank(kind: str) -> int:
    """Negative for the listed kinds (earlier is smaller), 0 for every other kind."""
    return _KIND_RANK.get(kind, 0)


class Action(str, Enum):
    """What a task does to the cluster."""

    APPLY = "apply"  # a desired resource: server-side apply (or replace)
    HOOK = "hook"  # a hook: created, then waited for until it completes
    PRUNE = "prune"  # an owned live object git no longer has: deleted
    NAMESPACE = "namespace"  # CreateNamespace: created when missing, never tracked or pruned

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, eq=False)
class Task:
    """One step on one object. ``obj`` is the desired object, or the live one for a prune.

    Compared by identity: the same object can appear in two tasks (a hook in two phases).
    """

    action: Action
    phase: Phase
    wave: int
    key: ResourceKey
    api_version: str
    obj: Mapping[str, Any]
    options: SyncOptions

    @property
    def is_hook(self) -> bool:
        return self.action is Action.HOOK

    def __str__(self) -> str:
        return f"{self.phase}/{self.wave} {self.action} {self.key}"


@dataclass(frozen=True)
class Step:
    """The tasks of one phase and wave, run together; the next step starts when these are done."""

    phase: Phase
    wave: int
    tasks: tuple[Task, ...]

    @property
    def has_hooks(self) -> bool:
        return any(task.is_hook for task in self.tasks)


@dataclass(frozen=True)
class SyncPlan:
    """The ordered tasks of a sync. ``refusal`` set means: write nothing, fail with that message."""

    tasks: tuple[Task, ...]
    sync_fail: tuple[Task, ...] = ()
    skipped: tuple[ResourceKey, ...] = ()
    refusal: str | None = None

    def steps(self) -> list[Step]:
        return _group(self.tasks)

    def sync_fail_steps(self) -> list[Step]:
        return _group(self.sync_fail)


def _group(tasks: Sequence[Task]) -> list[Step]:
    steps: list[Step] = []
    for task in tasks:
        if steps and (steps[-1].phase, steps[-1].wave) == (task.phase, task.wave):
            steps[-1] = Step(task.phase, task.wave, steps[-1].tasks + (task,))
        else:
            steps.append(Step(task.phase, task.wave, (task,)))
    return steps


def hook_name(obj: Mapping[str, Any], phase: Phase, run_id: str) -> str:
    """The name of a hook made from ``generateName``: prefix, phase and this sync's run id."""
    meta = obj.get("metadata") or {}
    if meta.get("name"):
        return str(meta["name"])
    suffix = f"{phase.value}-{run_id}" if run_id else phase.value
    return f"{meta.get('generateName', '')}{suffix}".lower()


def _named(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    named = copy.deepcopy(dict(obj))
    meta = named.setdefault("metadata", {})
    meta["name"] = name
    meta.pop("generateName", None)
    return named


def _is_namespace(key: ResourceKey) -> bool:
    return key.group == "" and key.kind == "Namespace"


def _crd_target(obj: Mapping[str, Any]) -> str | None:
    """``group/Kind`` a CustomResourceDefinition serves, for hoisting it before its resources."""
    if obj.get("kind") != "CustomResourceDefinition" or not str(obj.get("apiVersion", "")).startswith(
        "apiextensions.k8s.io/"
    ):
        return None
    spec = obj.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    return f"{group}/{kind}" if group and kind else None


def _sort_key(task: Task) -> tuple[int, int, int, str, str]:
    return (task.phase.order, task.wave, kind_rank(task.key.kind), task.key.name, task.key.namespace)


def _hoist(
    tasks: list[Task],
    dependency: Callable[[Task], str | None],
    reference: Callable[[Task], str | None],
) -> list[Task]:
    """Move each dependency (Namespace, CRD) before the first task that needs it, into its phase and wave."""
    result = list(tasks)
    first_use: dict[str, int] = {}
    for index in range(len(result)):
        task = result[index]
        if task.action is Action.PRUNE:
            continue
        dep = dependency(task)
        if dep is not None:
            anchor_index = first_use.get(dep)
            if anchor_index is not None:
                anchor = result[anchor_index]
                del result[index]
                result.insert(anchor_index, replace(task, phase=anchor.phase, wave=anchor.wave))
                first_use = {k: v + 1 if v >= anchor_index else v for k, v in first_use.items()}
            continue
        ref = reference(task)
        if ref is not None:
            first_use.setdefault(ref, index)
    return result


def plan(
    desired: Iterable[Mapping[str, Any]],
    live_owned: Iterable[Mapping[str, Any]],
    options: SyncOptions,
    *,
    app: str = "",
    run_id: str = "",
) -> SyncPlan:
    """Order a sync of ``desired`` against the app's ``live_owned`` objects.

    ``desired`` must already carry namespaces (namespaced kinds only). ``live_owned`` is what
    the cluster holds with this app's tracking id; with ``app`` given, anything else in it is
    ignored, so prune can never pick up a stranger. ``run_id`` names hooks made from
    ``generateName``.
    """
    desired = list(desired)
    tasks: list[Task] = []
    skipped: list[ResourceKey] = []
    seen: dict[ResourceKey, Mapping[str, Any]] = {}
    resource_count = 0

    for obj in desired:
        key = ResourceKey.of(obj)
        api_version = str(obj.get("apiVersion", ""))
        if not key.kind or not api_version:
            raise TetherError(f"app {app or '?'}: {key}: apiVersion and kind are required")
        if is_skipped(obj):
            skipped.append(key)
            seen.setdefault(key, obj)
            continue
        if is_hook(obj):
            seen.setdefault(key, obj)
            if options.resources is not None or not options.hooks:
                continue  # a selective sync, or the apply strategy, runs no hooks (as Argo CD)
            for phase in hook_phases(obj):
                name = hook_name(obj, phase, run_id)
                if not name:
                    raise TetherError(f"app {app or '?'}: hook {key}: needs metadata.name or metadata.generateName")
                named = _named(obj, name)
                hook_key = ResourceKey.of(named)
                tasks.append(Task(Action.HOOK, phase, wave(obj), hook_key, api_version, named, options.for_object(obj)))
            continue
        if not key.name:
            raise TetherError(f"app {app or '?'}: {key.kind} with generateName: only hooks may use generateName")
        if key in seen and not is_hook(seen[key]):
            raise TetherError(f"app {app or '?'}: {key} appears twice in the desired state")
        seen[key] = obj
        resource_count += 1
        if options.selects(key):
            tasks.append(Task(Action.APPLY, Phase.SYNC, wave(obj), key, api_version, obj, options.for_object(obj)))

    prunes: list[Task] = []
    for live in live_owned:
        key = ResourceKey.of(live)
        if app and owner_app(live) != app:
            continue
        if key in seen or is_hook(live) or is_skipped(live) or not options.selects(key):
            continue
        api_version = str(live.get("apiVersion", ""))
        prunes.append(
            Task(Action.PRUNE, Phase.SYNC, wave(live), key, api_version, json_copy(live), options.for_object(live))
        )

    refusal = None
    deletable = [t for t in prunes if t.options.prune_allowed]
    if options.prune and resource_count == 0 and deletable and not options.allow_empty:
        refusal = (
            f"app {app or '?'}: refusing to sync: the desired state has no resources, so prune would delete"
            f" all {len(deletable)} live object(s) of the app; set allowEmpty to allow this"
        )

    # Reverse the waves of prune tasks: the wave created first is pruned last.
    prune_waves = sorted({t.wave for t in prunes})
    mirrored = dict(zip(prune_waves, reversed(prune_waves), strict=True))
    prunes = [replace(t, wave=mirrored[t.wave]) for t in prunes]
    sync_waves = [t.wave for t in tasks + prunes if t.phase is Phase.SYNC]
    last_wave = max([0, *sync_waves]) + 1
    prunes = [replace(t, wave=last_wave) if t.options.prune_last else t for t in prunes]
    tasks.extend(prunes)

    if options.create_namespace and options.namespace:
        ns_key = ResourceKey("", "Namespace", "", options.namespace)
        if ns_key not in seen:
            meta: dict[str, Any] = {"name": options.namespace}
            if options.namespace_labels:
                meta["labels"] = dict(options.namespace_labels)
            if options.namespace_annotations:
                meta["annotations"] = dict(options.namespace_annotations)
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
            tasks.append(Task(Action.NAMESPACE, Phase.PRE_SYNC, 0, ns_key, "v1", namespace, options))

    tasks.sort(key=_sort_key)
    tasks = _hoist(
        tasks,
        lambda t: t.key.name if _is_namespace(t.key) else None,
        lambda t: t.key.namespace or None,
    )
    crd_kinds = {target for t in tasks if (target := _crd_target(t.obj))}
    tasks = _hoist(
        tasks,
        lambda t: _crd_target(t.obj),
        lambda t: f"{t.key.group}/{t.key.kind}" if f"{t.key.group}/{t.key.kind}" in crd_kinds else None,
    )
    regular = tuple(t for t in tasks if t.phase is not Phase.SYNC_FAIL)
    sync_fail = tuple(t for t in tasks if t.phase is Phase.SYNC_FAIL)
    return SyncPlan(regular, sync_fail, tuple(skipped), refusal)


def crds_in(objs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """CRDs among ``objs`` by the ``group/Kind`` they serve (their resources skip the dry run while unknown)."""
    return {target: obj for obj in objs if (target := _crd_target(obj))}
