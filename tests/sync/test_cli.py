"""`tether sync` as a person runs it: a local directory synced into the devcluster in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli import tether_async
from tests.sync.helpers import configmap, deployment, job
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState

pytestmark = pytest.mark.cluster


def write(directory: Path, *objects: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        obj["metadata"].pop("namespace", None)  # the CLI gives them the destination namespace
        (directory / f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
    return directory


async def test_cli_syncs_wave_by_wave_and_reports_result_and_health(
    kube: Cluster, devcluster: ClusterState, namespace: str, app: str, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "app", deployment("web", namespace, replicas=2, wave=0), configmap("cfg", namespace, wave=1)
    )
    common = ["--app", app, "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig, "--timeout", "60"]

    code, out, err = await tether_async("sync", str(source), *common, "--dry-run")
    assert code == 0, err
    assert "Succeeded (dry run)" in out and "would be created" in out
    assert await kube.get("apps/v1", "Deployment", "web", namespace) is None

    code, out, err = await tether_async("sync", str(source), *common)
    assert code == 0, err + out
    assert "» Sync wave 0" in err and "» Sync wave 1" in err and "waiting for healthy state of Deployment" in err
    header = out.splitlines()[0].split()
    assert header[:8] == ["PHASE", "WAVE", "KIND", "NAMESPACE", "NAME", "ACTION", "STATUS", "HEALTH"]
    assert any(
        line.split()[:6] == ["Sync", "0", "Deployment", namespace, "web", "created"] for line in out.splitlines()
    )
    assert "Sync:   Succeeded" in out and "Health: Healthy" in out
    assert (await kube.get("v1", "ConfigMap", "cfg", namespace)) is not None


async def test_cli_exits_non_zero_when_the_sync_fails(
    devcluster: ClusterState, namespace: str, app: str, tmp_path: Path
) -> None:
    source = write(tmp_path / "app", job("boom", namespace, fail=True, wave=0), configmap("cfg", namespace, wave=1))
    code, out, err = await tether_async(
        "sync",
        str(source),
        "--app",
        app,
        "--dest-namespace",
        namespace,
        "--kubeconfig",
        devcluster.kubeconfig,
        "--timeout",
        "60",
    )
    assert code == 1, err + out
    assert "Sync:   Failed" in out and "boom" in out
    assert f"sync failed: Job.batch {namespace}/boom (job-boom.yaml): Degraded" in out, out


async def test_cli_reports_an_unusable_source_with_exit_2(devcluster: ClusterState, tmp_path: Path) -> None:
    code, _, err = await tether_async(
        "sync",
        str(tmp_path / "missing"),
        "--app",
        "x",
        "--dest-namespace",
        "default",
        "--kubeconfig",
        devcluster.kubeconfig,
    )
    assert code == 2 and err.startswith("error:")


async def test_cli_shows_an_object_that_failed_to_apply_as_failed(
    devcluster: ClusterState, namespace: str, app: str, tmp_path: Path
) -> None:
    # The Widget skips the dry run (its kind is not served), so the real apply is what fails.
    widget = {
        "apiVersion": "example.invalid/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "annotations": {
                "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
                "argocd.argoproj.io/sync-wave": "1",
            },
        },
    }
    source = write(tmp_path / "app", configmap("cfg", namespace, wave=0), widget)
    code, out, err = await tether_async(
        "sync", str(source), "--app", app, "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig
    )
    assert code == 1, err + out
    rows = {tuple(line.split()[2:6]) for line in out.splitlines()}
    assert ("Widget", namespace, "w", "failed") in rows, out
    assert ("ConfigMap", namespace, "cfg", "created") in rows, out
    assert "Sync:   Failed" in out


async def test_a_rejected_object_is_named_once_with_its_file_and_the_field(
    devcluster: ClusterState, kube: Cluster, namespace: str, app: str, tmp_path: Path
) -> None:
    """The server's refusal names the field; Tether adds the object and the file it came from, each once."""
    bad = deployment("bad", namespace)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    source = write(tmp_path / "app", configmap("cfg", namespace), bad)
    common = ["--app", app, "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]
    code, out, err = await tether_async("sync", str(source), *common, "--timeout", "60")
    assert code == 1, err + out
    failure = f"Deployment.apps {namespace}/bad (deployment-bad.yaml): "
    assert failure in out, out
    reason = out[out.index(failure) :].splitlines()[0]
    assert "imagePullPolicy" in reason and "Sometimes" in reason, reason
    assert reason.count(f"{namespace}/bad") == 1 and "dry-run apply" not in reason, reason
    assert await kube.get("v1", "ConfigMap", "cfg", namespace) is None  # the dry run stopped it all

    code, out, err = await tether_async("diff", str(source), *common)
    assert code == 1, err + out
    shown = out + err
    assert f'Deployment.apps {namespace}/bad (deployment-bad.yaml): Deployment.apps "bad" is invalid' in shown, shown
