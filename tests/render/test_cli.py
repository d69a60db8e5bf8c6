"""`tether render` through click's CliRunner, against local directories, the git server and pass."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.render.helpers import CORPUS, manifest, names, object_set
from tests.render.tools import helm_template_by_hand
from tether.cli import main


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["render", *args], env=env, catch_exceptions=False)


def test_local_helm_chart_with_options_as_yaml() -> None:
    result = invoke(
        str(CORPUS),
        "--path",
        "helm-guestbook",
        "--app",
        "gb",
        "-n",
        "web",
        "--helm-set",
        "replicaCount=3",
        "--values",
        "values-production.yaml",
    )
    assert result.exit_code == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    expected = helm_template_by_hand(
        CORPUS / "helm-guestbook",
        "gb",
        "--namespace",
        "web",
        "--set",
        "replicaCount=3",
        "--values",
        str(CORPUS / "helm-guestbook" / "values-production.yaml"),
    )
    assert object_set(objects) == object_set(expected)
    assert next(o for o in objects if o["kind"] == "Service")["spec"]["type"] == "LoadBalancer"


def test_git_source_at_a_tag_as_json(git_server: Any, tmp_path: Path) -> None:
    repo = git_server.create_repo(f"cli-{uuid.uuid4().hex[:8]}")
    repo.commit("v1", {"app/cm.yaml": manifest("ConfigMap", "one")})
    repo.tag("v1.0.0")
    repo.commit("v2", {"app/cm.yaml": manifest("ConfigMap", "two")})
    result = invoke(repo.url, "--revision", "^1.0", "--path", "app", "-o", "json", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert names(json.loads(result.stdout)) == ["ConfigMap/one"]


def test_secrets_are_masked_unless_asked(git_server: Any, pass_store: Any, tmp_path: Path) -> None:
    entry = f"tether-test/{uuid.uuid4().hex[:8]}/api"
    canary = f"canary-{uuid.uuid4().hex}"
    pass_store.insert(entry, canary + "\n")
    repo = git_server.create_repo(f"cli-secret-{uuid.uuid4().hex[:8]}")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "api"},
        "stringData": {"token": f"<pass:{entry}>"},
    }
    repo.commit("secret", {"app/secret.yaml": yaml.safe_dump(secret)})
    args = [repo.url, "--path", "app", "-o", "json", "--cache-dir", str(tmp_path)]
    env = dict(pass_store.env)

    masked = invoke(*args, env=env)
    assert masked.exit_code == 0, masked.stderr
    assert canary not in masked.stdout and json.loads(masked.stdout)[0]["stringData"]["token"] != f"<pass:{entry}>"

    shown = invoke(*args, "--show-secrets", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["stringData"]["token"] == canary


def test_resolved_values_outside_secrets_are_masked_too(git_server: Any, pass_store: Any, tmp_path: Path) -> None:
    entry = f"tether-test/{uuid.uuid4().hex[:8]}/dsn"
    canary = f"canary-{uuid.uuid4().hex}"
    pass_store.insert(entry, canary + "\n")
    repo = git_server.create_repo(f"cli-cm-{uuid.uuid4().hex[:8]}")
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app"},
        "data": {"dsn": f"pg://app:<pass:{entry}>@db/app", "plain": "visible"},
    }
    repo.commit("configmap", {"app/cm.yaml": yaml.safe_dump(config)})
    args = [repo.url, "--path", "app", "--cache-dir", str(tmp_path)]

    masked = invoke(*args, env=dict(pass_store.env))
    assert masked.exit_code == 0, masked.stderr
    (shown_cm,) = [d for d in yaml.safe_load_all(masked.stdout) if d]
    assert canary not in masked.stdout and shown_cm["data"] == {"dsn": "********", "plain": "visible"}

    shown = invoke(*args, "--show-secrets", env=dict(pass_store.env))
    assert shown.exit_code == 0, shown.stderr
    assert f"pg://app:{canary}@db/app" in shown.stdout


def test_explicit_type_wins_over_detection(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: p-\nresources: [cm.yaml]\n"
    )
    (tmp_path / "cm.yaml").write_text(manifest("ConfigMap", "x"))
    detected = invoke(str(tmp_path), "-o", "json")
    assert detected.exit_code == 0, detected.stderr
    assert names(json.loads(detected.stdout)) == ["ConfigMap/p-x"]
    as_directory = invoke(str(tmp_path), "--type", "directory", "-o", "json")
    assert as_directory.exit_code == 0, as_directory.stderr
    assert sorted(o["kind"] for o in json.loads(as_directory.stdout)) == ["ConfigMap", "Kustomization"]


def test_failure_exits_2_with_the_error_and_nothing_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "good.yaml").write_text(manifest("ConfigMap", "good"))
    (tmp_path / "app" / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\nx: 1\n")
    result = invoke(str(tmp_path), "--path", "app")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "app 'app': manifest app/broken.yaml: document 2 is not a Kubernetes object" in result.stderr


def test_a_yaml_file_that_is_no_manifest_is_skipped_with_a_warning_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "good.yaml").write_text(manifest("ConfigMap", "good"))
    (tmp_path / "app" / "values.yaml").write_text("replicaCount: 1\n")
    result = invoke(str(tmp_path), "--path", "app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert names(json.loads(result.stdout)) == ["ConfigMap/good"]
    assert "skipped a file that is not a Kubernetes manifest" in result.stderr and "app/values.yaml" in result.stderr


def test_explicit_type_and_option_errors(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(manifest("ConfigMap", "x"))
    helm = invoke(str(tmp_path), "--type", "helm")
    assert helm.exit_code == 2 and "no Chart.yaml in the app path" in helm.stderr
    mixed = invoke(str(tmp_path), "--type", "kustomize", "--helm-set", "a=b")
    assert mixed.exit_code == 2 and "--helm-set and --values need a Helm source" in mixed.stderr
    local_revision = invoke(str(tmp_path), "--revision", "main")
    assert local_revision.exit_code == 2 and "--revision needs a git URL" in local_revision.stderr
    bad_set = invoke(str(tmp_path), "--helm-set", "novalue")
    assert bad_set.exit_code == 2 and "expected KEY=VALUE" in bad_set.stderr


def test_unreachable_git_url_is_an_error_without_credentials_in_it(tmp_path: Path) -> None:
    result = invoke("http://user:hunter2@127.0.0.1:9/none.git", "--cache-dir", str(tmp_path))
    assert result.exit_code == 2 and result.stdout == ""
    assert "hunter2" not in result.stderr and "error:" in result.stderr
