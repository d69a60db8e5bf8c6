"""Tracking ids and dual-prefix annotations, on plain data."""

from tether.resource import (
    APP_LABEL,
    TRACKING_ANNOTATION,
    ResourceKey,
    annotation,
    annotation_options,
    mark,
    owner_app,
    parse_tracking_id,
    tracking_id,
)

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}


def test_tracking_id_round_trips() -> None:
    key = ResourceKey.of(DEPLOY)
    value = tracking_id("guestbook", key)
    assert value == "guestbook:apps/Deployment:shop/web"
    assert parse_tracking_id(value) == ("guestbook", key)


def test_core_and_cluster_scoped_ids() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    assert tracking_id("a", ResourceKey.of(ns)) == "a:/Namespace:/shop"
    assert parse_tracking_id("a:/Namespace:/shop") == ("a", ResourceKey("", "Namespace", "", "shop"))


def test_garbage_ids_are_not_ours() -> None:
    for value in ("", "app", "app:Deployment", "app:apps/Deployment:web", ":apps/Deployment:ns/web"):
        assert parse_tracking_id(value) is None


def test_mark_adds_annotation_and_label_without_touching_input() -> None:
    marked = mark(DEPLOY, "guestbook")
    assert marked["metadata"]["annotations"][TRACKING_ANNOTATION] == "guestbook:apps/Deployment:shop/web"
    assert marked["metadata"]["labels"][APP_LABEL] == "guestbook"
    assert "annotations" not in DEPLOY["metadata"]
    assert owner_app(marked) == "guestbook"


def test_a_copied_tracking_id_names_no_owner() -> None:
    marked = mark(DEPLOY, "guestbook")
    copy = {**marked, "metadata": {**marked["metadata"], "name": "other"}}
    assert owner_app(copy) is None


def test_annotations_read_under_both_prefixes_tether_first() -> None:
    obj = {"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "-1"}}}
    assert annotation(obj, "sync-wave") == "-1"
    obj["metadata"]["annotations"]["tether.dev/sync-wave"] = "3"
    assert annotation(obj, "sync-wave") == "3"
    assert annotation(obj, "hook") is None


def test_sync_options_merge_both_prefixes() -> None:
    obj = {
        "metadata": {
            "annotations": {
                "argocd.argoproj.io/sync-options": "Prune=false,ServerSideApply=true",
                "tether.dev/sync-options": "Prune=true , Replace=true",
            }
        }
    }
    assert annotation_options(obj, "sync-options") == {"Prune": "true", "ServerSideApply": "true", "Replace": "true"}
