"""A malformed kubeconfig is one clear error naming the file and the field: exit 2, never a traceback."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import tether
from tether.cluster import Cluster
from tether.cluster.kubeconfig import KubeconfigError, check_kubeconfig
from tether.devcluster.cluster import ClusterState

GOOD = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "dev",
    "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:9", "certificate-authority-data": "Zm9v"}}],
    "users": [{"name": "dev", "user": {"token": "t"}}],
    "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
}


def _with(change: Callable[[dict[str, Any]], object]) -> str:
    """GOOD as YAML, after ``change`` mutated a copy of it."""
    config = copy.deepcopy(GOOD)
    change(config)
    return yaml.safe_dump(config)


def _cluster(config: dict[str, Any]) -> dict[str, Any]:
    return config["clusters"][0]["cluster"]


def _alias_bomb() -> str:
    """A few hundred bytes that expand to 9**9 nodes: refused while parsing, never built."""
    text = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    return text


_ALIAS_BOMB = _alias_bomb()

# (case id, file text, what the one-line error must name)
CASES = [
    ("not-yaml", "clusters: [unclosed\n  - {", "invalid YAML in document 1"),
    ("alias-bomb", _ALIAS_BOMB, "aliases expanded"),
    ("empty", "", "the file is empty"),
    ("not-a-mapping", "- just\n- a list\n", "must be a mapping"),
    ("a-scalar", "hello\n", "must be a mapping"),
    ("clusters-not-a-list", _with(lambda c: c.update(clusters={"dev": {}})), "clusters must be a list"),
    ("cluster-entry-not-a-mapping", _with(lambda c: c.update(clusters=["dev"])), "clusters[0] must be a mapping"),
    (
        "cluster-body-a-string",
        _with(lambda c: c["clusters"][0].update(cluster="https://x")),
        "clusters[0] (name 'dev').cluster must be a mapping",
    ),
    (
        "server-missing",
        _with(lambda c: _cluster(c).pop("server")),
        "clusters[0] (name 'dev').cluster.server is missing",
    ),
    ("server-a-number", _with(lambda c: _cluster(c).update(server=443)), "cluster.server must be a string"),
    (
        "bad-base64-ca",
        _with(lambda c: _cluster(c).update({"certificate-authority-data": "not base64!!"})),
        "cluster.certificate-authority-data is not valid base64",
    ),
    (
        "unknown-current-context",
        _with(lambda c: c.update({"current-context": "prod"})),
        "context 'prod' (current-context) is not in contexts",
    ),
    (
        "context-names-unknown-cluster",
        _with(lambda c: c["contexts"][0]["context"].update(cluster="gone")),
        "names 'gone', which is not in clusters",
    ),
    ("users-a-mapping", _with(lambda c: c.update(users={"dev": {}})), "users must be a list"),
    ("token-a-list", _with(lambda c: c["users"][0]["user"].update(token=["a"])), "user.token must be a string"),
    (
        "ca-file-missing",
        _with(lambda c: _cluster(c).update({"certificate-authority": "/nonexistent/ca.crt"})),
        "certificate-authority: no such file",
    ),
]
CLI_CASES = {
    "not-yaml",
    "not-a-mapping",
    "clusters-not-a-list",
    "server-missing",
    "bad-base64-ca",
    "unknown-current-context",
}


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c for c, _, _ in CASES])
def test_check_kubeconfig_names_the_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(KubeconfigError) as raised:
        check_kubeconfig(config)
    message = str(raised.value)
    assert expected in message and str(config) in message
    assert "\n" not in message


def test_a_good_kubeconfig_passes_and_context_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text(yaml.safe_dump(GOOD))
    check_kubeconfig(config)
    with pytest.raises(KubeconfigError, match="context 'other' \\(--context\\) is not in contexts \\(known: dev\\)"):
        check_kubeconfig(config, "other")


async def test_connect_refuses_a_bad_kubeconfig_with_the_same_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(_with(lambda c: c.update(clusters={"dev": {}})))
    with pytest.raises(KubeconfigError, match="clusters must be a list"):
        await Cluster.connect(config)


async def test_kubeconfig_variable_is_read_when_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$KUBECONFIG as it is now, not as it was when the client library was imported (a forked process)."""
    for port in (9, 10):
        config = copy.deepcopy(GOOD)
        _cluster(config).update({"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True})
        del _cluster(config)["certificate-authority-data"]  # not a certificate: the SSL context would refuse it
        path = tmp_path / f"{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing.yaml"), str(path)]))
        cluster = await Cluster.connect(None)
        try:
            assert cluster.server == f"https://127.0.0.1:{port}"
        finally:
            await cluster.close()


def _source(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "cm.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
    )
    return app


@pytest.mark.parametrize("command", ["diff", "sync"])
@pytest.mark.parametrize(
    ("case", "text", "expected"),
    [c for c in CASES if c[0] in CLI_CASES],
    ids=[c[0] for c in CASES if c[0] in CLI_CASES],
)
def test_cli_gives_exit_2_and_one_line_for_a_malformed_kubeconfig(
    tmp_path: Path, command: str, case: str, text: str, expected: str
) -> None:
    config = tmp_path / f"{case}.yaml"
    config.write_text(text)
    result = tether(
        command,
        str(_source(tmp_path)),
        "--app",
        "a",
        "--dest-namespace",
        "default",
        "--kubeconfig",
        str(config),
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0] and str(config) in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


async def test_proxy_variables_are_read_once_at_connect(
    devcluster: ClusterState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp would read ~/.netrc and the proxy variables on every request; Tether reads them once."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = await Cluster.connect(devcluster.kubeconfig)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    direct = await Cluster.connect(devcluster.kubeconfig)
    try:
        for cluster in (proxied, direct):
            assert cluster._api.rest_client.pool_manager.trust_env is False
        assert str(proxied._api.rest_client.proxy) == "http://proxy.invalid:3128"
        assert direct._api.rest_client.proxy is None
        assert await direct.get("v1", "Namespace", "default") is not None  # and it still talks
    finally:
        await proxied.close()
        await direct.close()
