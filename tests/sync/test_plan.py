"""The sync plan on plain data: phases, waves, kind order, names, hooks, prune and options."""

from __future__ import annotations

from typing import Any

import pytest

from tether.errors import TetherError
from tether.hooks import DeletePolicy, Phase, delete_policies, hook_phases, hook_types, is_hook, is_skipped, wave
from tether.resource import ResourceKey, mark
from tether.sync.options import Selector, SyncOptions
from tether.sync.plan import Action, kind_rank, plan

NS = "shop"


def obj(kind: str, name: str, *, api: str = "v1", namespace: str | None = NS, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = {k.replace("__", "/").replace("_", "-"): v for k, v in annotations.items()}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def argo(**annotations: str) -> dict[str, str]:
    return {f"argocd.argoproj.io__{k}": v for k, v in annotations.items()}


def order(sync_plan) -> list[tuple[str, int, str, str]]:
    return [(str(t.phase), t.wave, t.key.kind, t.key.name) for t in sync_plan.tasks]


def test_kind_order_then_name_within_a_wave() -> None:
    desired = [
        obj("Deployment", "b", api="apps/v1"),
        obj("Service", "z"),
        obj("Deployment", "a", api="apps/v1"),
        obj("Widget", "w", api="example.com/v1"),
        obj("ConfigMap", "cfg"),
        obj("Namespace", NS, namespace=None),
        obj("ServiceAccount", "sa"),
        obj("ClusterRole", "cr", api="rbac.authorization.k8s.io/v1", namespace=None),
        obj("Secret", "s"),
        obj("Ingress", "in", api="networking.k8s.io/v1"),
    ]
    assert [key[2:] for key in order(plan(desired, [], SyncOptions()))] == [
        ("Namespace", NS),
        ("ServiceAccount", "sa"),
        ("Secret", "s"),
        ("ConfigMap", "cfg"),
        ("ClusterRole", "cr"),
        ("Service", "z"),
        ("Deployment", "a"),
        ("Deployment", "b"),
        ("Ingress", "in"),
        ("Widget", "w"),
    ]


def test_kind_rank_puts_unknown_kinds_last() -> None:
    assert (
        kind_rank("Namespace")
        < kind_rank("CustomResourceDefinition")
        < kind_rank("Deployment")
        < kind_rank("Widget")
        == 0
    )


def test_phase_before_wave_before_kind() -> None:
    desired = [
        obj("ConfigMap", "late", **argo(sync_wave="5")),
        obj("Deployment", "early", api="apps/v1", **argo(sync_wave="-3")),
        obj("Job", "post", api="batch/v1", **argo(hook="PostSync", sync_wave="-10")),
        obj("Job", "pre", api="batch/v1", **argo(hook="PreSync", sync_wave="10")),
        obj("ConfigMap", "zero"),
    ]
    assert order(plan(desired, [], SyncOptions())) == [
        ("PreSync", 10, "Job", "pre"),
        ("Sync", -3, "Deployment", "early"),
        ("Sync", 0, "ConfigMap", "zero"),
        ("Sync", 5, "ConfigMap", "late"),
        ("PostSync", -10, "Job", "post"),
    ]


def test_steps_group_phase_and_wave() -> None:
    desired = [obj("ConfigMap", "a"), obj("Secret", "b"), obj("ConfigMap", "c", **argo(sync_wave="1"))]
    steps = plan(desired, [], SyncOptions()).steps()
    assert [(str(s.phase), s.wave, [t.key.name for t in s.tasks]) for s in steps] == [
        ("Sync", 0, ["b", "a"]),
        ("Sync", 1, ["c"]),
    ]


def test_tether_prefix_wins_and_bad_wave_is_zero() -> None:
    both = obj("ConfigMap", "x", **{"tether.dev__sync_wave": "2", "argocd.argoproj.io__sync_wave": "7"})
    assert wave(both) == 2
    assert wave(obj("ConfigMap", "y", **argo(sync_wave="soon"))) == 0


def test_hooks_get_their_phases_and_generated_names() -> None:
    job = obj("Job", "", api="batch/v1", **argo(hook="PreSync,PostSync"))
    job["metadata"]["generateName"] = "migrate-"
    del job["metadata"]["name"]
    result = plan([job], [], SyncOptions(), run_id="abc123")
    assert [(str(t.phase), t.key.name, t.action) for t in result.tasks] == [
        ("PreSync", "migrate-presync-abc123", Action.HOOK),
        ("PostSync", "migrate-postsync-abc123", Action.HOOK),
    ]
    assert all("generateName" not in t.obj["metadata"] for t in result.tasks)
    assert job["metadata"]["generateName"] == "migrate-"  # the input is not changed


def test_the_apply_strategy_plans_no_hook() -> None:
    desired = [obj("Job", "migrate", api="batch/v1", **argo(hook="PreSync")), obj("ConfigMap", "a")]
    assert [t.action for t in plan(desired, [], SyncOptions()).tasks] == [Action.HOOK, Action.APPLY]
    result = plan(desired, [], SyncOptions(hooks=False))
    assert [(t.key.name, t.action) for t in result.tasks] == [("a", Action.APPLY)]
    assert not result.sync_fail


def test_sync_fail_hooks_are_kept_apart() -> None:
    desired = [obj("Job", "cleanup", api="batch/v1", **argo(hook="SyncFail")), obj("ConfigMap", "a")]
    result = plan(desired, [], SyncOptions())
    assert [t.key.name for t in result.tasks] == ["a"]
    assert [(str(t.phase), t.key.name) for t in result.sync_fail] == [("SyncFail", "cleanup")]


def test_skip_hook_is_never_applied_nor_pruned() -> None:
    skipped = obj("ConfigMap", "manual", **argo(hook="Skip"))
    live = mark(obj("ConfigMap", "manual", **argo(hook="Skip")), "app")
    result = plan([skipped], [live], SyncOptions(prune=True), app="app")
    assert result.tasks == ()
    assert result.skipped == (ResourceKey("", "ConfigMap", NS, "manual"),)
    assert is_skipped(skipped) and not is_hook(skipped)


def test_helm_hooks_map_to_argo_phases_weights_and_policies() -> None:
    pre = obj(
        "Job", "pre", api="batch/v1", **{"helm.sh__hook": "pre-install,pre-upgrade", "helm.sh__hook_weight": "-2"}
    )
    post = obj(
        "Job",
        "post",
        api="batch/v1",
        **{
            "helm.sh__hook": "post-install",
            "helm.sh__hook_delete_policy": "hook-succeeded,before-hook-creation",
        },
    )
    test_hook = obj("Pod", "t", **{"helm.sh__hook": "test"})
    assert hook_phases(pre) == [Phase.PRE_SYNC] and wave(pre) == -2
    assert hook_phases(post) == [Phase.POST_SYNC]
    assert delete_policies(post) == {DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.BEFORE_HOOK_CREATION}
    assert delete_policies(pre) == {DeletePolicy.BEFORE_HOOK_CREATION}
    assert is_hook(test_hook) and hook_phases(test_hook) == []  # a hook that runs in no sync, as in Argo CD
    # an Argo CD hook annotation wins over Helm's
    both = obj("Job", "b", api="batch/v1", **{"helm.sh__hook": "post-install", "argocd.argoproj.io__hook": "Sync"})
    assert hook_phases(both) == [Phase.SYNC]


def test_namespace_and_crd_are_hoisted_before_their_users() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "annotations": {"argocd.argoproj.io/sync-wave": "3"}},
        "spec": {"group": "example.com", "names": {"kind": "Widget"}},
    }
    ns = obj("Namespace", "other", namespace=None, **argo(sync_wave="2"))
    widget = obj("Widget", "w", api="example.com/v1", namespace="other", **argo(sync_wave="-1"))
    hook = obj("Job", "pre", api="batch/v1", namespace="other", **argo(hook="PreSync"))
    assert order(plan([crd, ns, widget, hook], [], SyncOptions())) == [
        ("PreSync", 0, "Namespace", "other"),
        ("PreSync", 0, "Job", "pre"),
        ("Sync", -1, "CustomResourceDefinition", "widgets.example.com"),
        ("Sync", -1, "Widget", "w"),
    ]


def test_prune_reverses_waves_and_prune_last_goes_after_the_sync_waves() -> None:
    live = [
        mark(obj("ConfigMap", "first", **argo(sync_wave="-1")), "app"),
        mark(obj("ConfigMap", "middle"), "app"),
        mark(obj("ConfigMap", "last", **argo(sync_wave="4")), "app"),
        mark(obj("Secret", "final", **{"argocd.argoproj.io__sync_options": "PruneLast=true"}), "app"),
    ]
    desired = [obj("ConfigMap", "keep", **argo(sync_wave="2"))]
    result = plan(desired, live, SyncOptions(prune=True), app="app")
    assert [(t.action, t.wave, t.key.name) for t in result.tasks] == [
        (Action.PRUNE, -1, "last"),
        (Action.PRUNE, 0, "middle"),
        (Action.APPLY, 2, "keep"),
        (Action.PRUNE, 4, "first"),
        (Action.PRUNE, 5, "final"),  # after every other Sync wave, pruned ones included
    ]
    everything_last = plan(desired, live, SyncOptions(prune=True, prune_last=True), app="app")
    assert {t.wave for t in everything_last.tasks if t.action is Action.PRUNE} == {5}


def test_prune_only_considers_this_apps_objects_and_never_hooks() -> None:
    mine = mark(obj("ConfigMap", "old"), "app")
    theirs = mark(obj("ConfigMap", "other"), "someone-else")
    copied = mark(obj("ConfigMap", "x"), "app")
    copied["metadata"]["name"] = "renamed"  # a tracking id copied onto another object names no owner
    old_hook = mark(obj("Job", "migrate", api="batch/v1", **argo(hook="PreSync")), "app")
    result = plan([obj("ConfigMap", "keep")], [mine, theirs, copied, old_hook], SyncOptions(prune=True), app="app")
    assert [(t.action, t.key.name) for t in result.tasks] == [(Action.APPLY, "keep"), (Action.PRUNE, "old")]


def test_empty_desired_state_refuses_to_prune_unless_allowed() -> None:
    live = [mark(obj("ConfigMap", "a"), "app")]
    refused = plan([], live, SyncOptions(prune=True), app="app")
    assert refused.refusal is not None and "allowEmpty" in refused.refusal and "app app" in refused.refusal
    assert plan([], live, SyncOptions(prune=True, allow_empty=True), app="app").refusal is None
    assert plan([], live, SyncOptions(prune=False), app="app").refusal is None  # nothing would be deleted
    keep = mark(obj("ConfigMap", "a", **argo(sync_options="Prune=false")), "app")
    assert plan([], [keep], SyncOptions(prune=True), app="app").refusal is None


def test_selective_sync_skips_hooks_and_other_objects() -> None:
    desired = [obj("ConfigMap", "a"), obj("ConfigMap", "b"), obj("Job", "h", api="batch/v1", **argo(hook="PreSync"))]
    live = [mark(obj("ConfigMap", "gone"), "app"), mark(obj("ConfigMap", "gone2"), "app")]
    options = SyncOptions(
        prune=True, resources=(Selector.parse(":ConfigMap:a"), Selector.parse(f":ConfigMap:{NS}/gone"))
    )
    result = plan(desired, live, options, app="app")
    assert [(t.action, t.key.name) for t in result.tasks] == [(Action.APPLY, "a"), (Action.PRUNE, "gone")]


def test_create_namespace_adds_a_presync_namespace_task_unless_git_has_it() -> None:
    desired = [obj("ConfigMap", "a", **argo(hook="PreSync", sync_wave="-5"))]
    result = plan(desired, [], SyncOptions(namespace=NS, create_namespace=True))
    assert [(t.action, str(t.phase), t.wave, t.key.name) for t in result.tasks] == [
        (Action.NAMESPACE, "PreSync", -5, NS),
        (Action.HOOK, "PreSync", -5, "a"),
    ]
    own = plan([obj("Namespace", NS, namespace=None)], [], SyncOptions(namespace=NS, create_namespace=True))
    assert [t.action for t in own.tasks] == [Action.APPLY]


def test_object_sync_options_override_the_app() -> None:
    replace_me = obj("ConfigMap", "a", **argo(sync_options="Replace=true,Validate=false"))
    task = plan([replace_me], [], SyncOptions()).tasks[0]
    assert task.options.replace and not task.options.validate
    assert (
        SyncOptions(replace=True).for_object(obj("ConfigMap", "b", **argo(sync_options="Replace=false"))).replace
        is False
    )


def test_sync_option_strings() -> None:
    options = SyncOptions.from_strings(
        ["CreateNamespace=true", "PrunePropagationPolicy=background", "ServerSideApply=false", "PruneLast=true"],
        prune=True,
    )
    assert options.create_namespace and options.prune and options.prune_last and not options.server_side_apply
    assert options.propagation == "Background"
    with pytest.raises(TetherError, match="unknown sync option"):
        SyncOptions.from_strings(["Nope=true"])
    with pytest.raises(TetherError, match="PrunePropagationPolicy"):
        SyncOptions(prune_propagation_policy="sideways")


def test_duplicates_and_generate_name_on_resources_are_errors() -> None:
    with pytest.raises(TetherError, match="appears twice"):
        plan([obj("ConfigMap", "a"), obj("ConfigMap", "a")], [], SyncOptions(), app="app")
    generated = obj("ConfigMap", "")
    generated["metadata"]["generateName"] = "x-"
    with pytest.raises(TetherError, match="only hooks may use generateName"):
        plan([generated], [], SyncOptions(), app="app")


def test_selector_parsing() -> None:
    assert Selector.parse("apps:Deployment:web").matches(ResourceKey("apps", "Deployment", "any", "web"))
    assert not Selector.parse("apps:Deployment:ns/web").matches(ResourceKey("apps", "Deployment", "other", "web"))
    with pytest.raises(TetherError):
        Selector.parse("Deployment/web")


@pytest.mark.parametrize(
    ("annotations", "hook", "phases"),
    [
        ({"helm.sh__hook": "test"}, True, []),
        ({"helm.sh__hook": "test-success"}, True, []),
        ({"helm.sh__hook": "pre-delete"}, True, []),
        ({"helm.sh__hook": "post-delete"}, True, []),
        ({"helm.sh__hook": "pre-install,test"}, True, [Phase.PRE_SYNC]),
        ({"helm.sh__hook": "crd-install"}, False, []),
        ({"argocd.argoproj.io__hook": "PostDelete"}, True, []),
        ({"argocd.argoproj.io__hook": "NotAType"}, True, []),
        ({"tether.dev__hook": "PostSync"}, True, [Phase.POST_SYNC]),
        ({"argocd.argoproj.io__hook": "Skip"}, False, []),
    ],
)
def test_one_hook_definition_as_argo_cd(annotations: dict[str, str], hook: bool, phases: list[Phase]) -> None:
    """Every ``helm.sh/hook`` but crd-install, and any hook annotation but Skip alone, makes a hook."""
    thing = obj("Pod", "p", **annotations)
    assert is_hook(thing) is hook
    assert hook_phases(thing) == phases


@pytest.mark.parametrize(
    ("annotations", "types"),
    [
        ({"argocd.argoproj.io__hook": "PreDelete"}, ["PreDelete"]),
        ({"argocd.argoproj.io__hook": "PreSync,PostDelete"}, ["PreSync", "PostDelete"]),
        ({"helm.sh__hook": "pre-delete"}, ["PreDelete"]),
        ({"helm.sh__hook": "post-delete,pre-install"}, ["PreSync", "PostDelete"]),
        ({"helm.sh__hook": "pre-delete", "argocd.argoproj.io__hook": "PostSync"}, ["PostSync"]),
        ({"helm.sh__hook": "test"}, []),
    ],
)
def test_deletion_hook_types_as_argo_cd_reads_them(annotations: dict[str, str], types: list[str]) -> None:
    """Argo CD 3.3 reads Helm's pre-delete and post-delete as its PreDelete and PostDelete; its own annotation wins."""
    assert hook_types(obj("Job", "j", api="batch/v1", **annotations)) == types


def test_hooks_that_run_in_no_sync_phase_are_neither_applied_nor_run() -> None:
    helm_test = obj("Pod", "helm-test", **{"helm.sh__hook": "test"})
    post_delete = obj("Job", "cleanup", api="batch/v1", **argo(hook="PostDelete"))
    crd = obj(
        "CustomResourceDefinition",
        "widgets.example.com",
        api="apiextensions.k8s.io/v1",
        namespace=None,
        **{"helm.sh__hook": "crd-install"},
    )
    app = obj("ConfigMap", "app")
    names = {t.key.name for t in plan([helm_test, post_delete, crd, app], [], SyncOptions(), app="a").tasks}
    assert names == {"widgets.example.com", "app"}
