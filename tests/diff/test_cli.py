"""`tether diff` as a person runs it: a local directory compared with the devcluster, in a subprocess."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from tests.cli import tether_async
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.resource import mark

CANARY = "canary-cli-5d1e0b"


def manifests(token: str = CANARY) -> list[dict]:
    labels = {"app": "web"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"token": token}},
    ]


def write(directory: Path, objects: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        (directory / f"{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    return directory


async def apply_all(kube: Cluster, namespace: str, objects: list[dict], app: str = "cli-app") -> None:
    for obj in objects:
        placed = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        await kube.apply(mark(placed, app), force=True)


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for value in (CANARY, "changed-" + CANARY):
            assert value not in text and base64.b64encode(value.encode()).decode() not in text


async def test_cli_exit_codes_follow_the_drift(
    kube: Cluster, devcluster: ClusterState, namespace: str, tmp_path: Path
) -> None:
    source = write(tmp_path / "app", manifests())
    common = ["--app", "cli-app", "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]

    code, out, err = await tether_async("diff", str(source), *common)
    assert code == 1, err
    assert f"===== Deployment.apps {namespace}/web (Missing) =====" in out
    assert "OutOfSync (2 of 2 object(s) differ: 2 Missing)" in out
    assert_no_canary(out, err)

    await apply_all(kube, namespace, manifests())
    code, out, err = await tether_async("diff", str(source), *common)
    assert code == 0, out + err
    assert out.strip() == "App cli-app: Synced (2 object(s))"

    await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 5}})
    write(source, manifests(token="changed-" + CANARY))
    await kube.apply(
        mark(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "leftover", "namespace": namespace},
                "data": {"a": "1"},
            },
            "cli-app",
        )
    )
    code, out, err = await tether_async("diff", str(source), *common, "-o", "json")
    assert code == 1, err
    report = json.loads(out)
    assert not report["inSync"]
    by_name = {r["name"]: r for r in report["resources"]}
    assert by_name["web"]["changed"] == ["/spec/replicas"]
    assert by_name["creds"]["changed"] == ["/data/token"]
    assert by_name["creds"]["predicted"]["data"]["token"] == "++++++++ (changed)"
    assert by_name["leftover"]["status"] == "Extraneous"
    assert_no_canary(out, err)

    rules = tmp_path / "ignore.yaml"
    rules.write_text(yaml.safe_dump([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]))
    code, out, err = await tether_async("diff", str(source), *common, "--ignore-differences", str(rules))
    assert code == 1
    assert "Deployment" not in out and "+  token: ++++++++ (changed)" in out and "Extraneous" in out
    assert_no_canary(out, err)


async def test_cli_errors_exit_2_and_name_the_app(devcluster: ClusterState, tmp_path: Path) -> None:
    source = write(tmp_path / "app", manifests())
    code, out, err = await tether_async(
        "diff",
        str(source),
        "--app",
        "cli-app",
        "--dest-namespace",
        "default",
        "--kubeconfig",
        str(tmp_path / "nope.yaml"),
    )
    assert code == 2 and out == ""
    # (kubernetes_asyncio prints its own "Config not found" line first)
    assert any(line.startswith("error: app 'cli-app': ") and "nope.yaml" in line for line in err.splitlines()), err

    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text(yaml.safe_dump([{"kind": "Deployment", "jsonPointers": ["spec/replicas"]}]))
    code, out, err = await tether_async(
        "diff",
        str(source),
        "--app",
        "cli-app",
        "--dest-namespace",
        "default",
        "--kubeconfig",
        devcluster.kubeconfig,
        "--ignore-differences",
        str(bad_rules),
    )
    assert code == 2 and "ignoreDifferences[0].jsonPointers[0]" in err
