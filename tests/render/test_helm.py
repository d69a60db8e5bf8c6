from pathlib import Path

import pytest
import yaml

from tests.render.helpers import given, names, render_local, write_tree
from tether.capabilities import Capabilities
from tether.model.source import ApplicationSource, HelmSource, KustomizeSource
from tether.render import RenderError, render
from tether.render.toolenv import private_tool_env
from tether.secrets import REDACTOR

CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "chart/values.yaml": "color: red\nsize: s\ncount: 1\n",
    "chart/values-prod.yaml": "color: blue\n",
    "chart/templates/cm.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
  namespace: {{ .Release.Namespace }}
data:
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  countKind: {{ kindOf .Values.count | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  hasExample: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}
""",
    "chart/crds/crd.yaml": """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
""",
    "shared/common-values.yaml": "size: xl\n",
}


def config_map(objects: list[dict]) -> dict:
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap"]
    return cm


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path, CHART)


async def test_defaults_release_name_is_app_and_crds_included(repo: Path) -> None:
    rendered = await render_local(repo, "chart", app="web", namespace="shop")
    assert names(rendered.objects) == ["ConfigMap/web-cm", "CustomResourceDefinition/widgets.example.com"]
    cm = config_map(rendered.objects)
    assert cm["metadata"]["namespace"] == "shop"
    assert cm["data"]["color"] == "red" and cm["data"]["hasExample"] == "false"
    assert rendered.inputs == ("chart",)


async def test_value_files_inline_values_and_parameters(repo: Path) -> None:
    rendered = await render_local(
        repo,
        "chart",
        helm={
            "releaseName": "rel",
            "namespace": "other",
            "valueFiles": ["values-prod.yaml", "../shared/common-values.yaml"],
            "values": "color: green\n",
            "parameters": [{"name": "count", "value": "5"}],
            "skipCrds": True,
            "kubeVersion": "1.29.0",
            "apiVersions": ["example.com/v1"],
        },
        namespace="ignored-because-helm-namespace-wins",
    )
    cm = config_map(rendered.objects)
    assert names(rendered.objects) == ["ConfigMap/rel-cm"]
    assert cm["metadata"]["namespace"] == "other"
    assert cm["data"] == {
        "color": "green",  # inline values come after value files
        "size": "xl",  # a value file elsewhere in the repository
        "countKind": "int64",  # parameters are --set (typed) by default, as in Argo CD
        "kube": "v1.29.0",
        "hasExample": "true",
    }
    assert rendered.inputs == ("chart", "shared/common-values.yaml")


async def test_values_object_wins_over_values_and_force_string(repo: Path) -> None:
    rendered = await render_local(
        repo,
        "chart",
        helm={
            "values": {"color": "green"},
            "valuesObject": {"color": "black"},
            "parameters": [{"name": "count", "value": "5", "forceString": True}],
        },
    )
    cm = config_map(rendered.objects)
    assert cm["data"]["color"] == "black" and cm["data"]["countKind"] == "string"


# An Argo CD Application's helm source, parameters as Argo CD users write them.
ARGO_PARAMETERS = """
parameters:
  - name: count
    value: "5"
  - name: size
    value: "true"
  - name: color
    value: "0123"
    forceString: true
"""


async def test_parameters_are_typed_unless_force_string_as_in_argo_cd(repo: Path) -> None:
    write_tree(
        repo,
        {
            "chart/templates/kinds.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: kinds
data:
  size: {{ kindOf .Values.size | quote }}
  color: {{ kindOf .Values.color | quote }}
  colorValue: {{ .Values.color | quote }}
"""
        },
    )
    rendered = await render_local(repo, "chart", helm=yaml.safe_load(ARGO_PARAMETERS))
    by_name = {o["metadata"]["name"]: o["data"] for o in rendered.objects if o["kind"] == "ConfigMap"}
    assert by_name["app-cm"]["countKind"] == "int64"  # --set count=5
    assert by_name["kinds"] == {"size": "bool", "color": "string", "colorValue": "0123"}  # --set-string keeps 0123
    explicit = await render_local(
        repo, "chart", helm={"parameters": [{"name": "count", "value": "5", "forceString": False}]}
    )
    assert config_map([o for o in explicit.objects if o["metadata"]["name"] != "kinds"])["data"]["countKind"] == "int64"


async def test_comma_in_parameter_is_one_value(repo: Path) -> None:
    rendered = await render_local(repo, "chart", helm={"parameters": [{"name": "color", "value": "red,green"}]})
    assert config_map(rendered.objects)["data"]["color"] == "red,green"


async def test_missing_value_file_is_an_error_unless_ignored(repo: Path) -> None:
    with pytest.raises(RenderError, match=r"helm.valueFiles\[0\]: 'nope.yaml' does not exist"):
        await render_local(repo, "chart", helm={"valueFiles": ["nope.yaml"]})
    rendered = await render_local(repo, "chart", helm={"valueFiles": ["nope.yaml"], "ignoreMissingValueFiles": True})
    assert config_map(rendered.objects)["data"]["color"] == "red"
    assert "chart" in rendered.inputs  # chart/nope.yaml is covered: adding it changes the chart's tree id


# Argo CD's layout for per-environment values: valueFiles written from the repository root.
ARGO_ABSOLUTE_VALUE_FILES = """
valueFiles:
  - /envs/prod/values.yaml
  - /envs/prod/missing.yaml
ignoreMissingValueFiles: true
fileParameters:
  - name: size
    path: /envs/prod/size.txt
"""


async def test_absolute_value_files_are_relative_to_the_repository_root(repo: Path) -> None:
    write_tree(repo, {"envs/prod/values.yaml": "color: prod-blue\n", "envs/prod/size.txt": "huge"})
    rendered = await render_local(repo, "chart", helm=yaml.safe_load(ARGO_ABSOLUTE_VALUE_FILES))
    cm = config_map(rendered.objects)
    assert cm["data"]["color"] == "prod-blue" and cm["data"]["size"] == "huge"
    assert rendered.inputs == ("chart", "envs/prod/missing.yaml", "envs/prod/size.txt", "envs/prod/values.yaml")


async def test_a_missing_absolute_value_file_is_an_error_unless_ignored(repo: Path) -> None:
    with pytest.raises(RenderError, match=r"helm.valueFiles\[0\]: '/envs/none.yaml' does not exist in the repository"):
        await render_local(repo, "chart", helm={"valueFiles": ["/envs/none.yaml"]})
    rendered = await render_local(
        repo, "chart", helm={"valueFiles": ["/envs/none.yaml"], "ignoreMissingValueFiles": True}
    )
    assert config_map(rendered.objects)["data"]["color"] == "red"


async def test_vendored_dependencies_render_without_network(repo: Path) -> None:
    write_tree(
        repo,
        {
            "chart/Chart.yaml": CHART["chart/Chart.yaml"]
            + "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: https://charts.example.invalid\n",
            "chart/charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            "chart/charts/sub/templates/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-sub\n",
        },
    )
    rendered = await render_local(repo, "chart", app="web", helm={"skipCrds": True})
    assert names(rendered.objects) == ["ConfigMap/web-cm", "Service/web-sub"]


async def test_dependencies_not_vendored_are_a_clear_error(repo: Path) -> None:
    write_tree(
        repo,
        {
            "chart/Chart.yaml": CHART["chart/Chart.yaml"]
            + "dependencies:\n- name: redis\n  version: 1.2.3\n  repository: https://charts.example.invalid\n"
        },
    )
    with pytest.raises(
        RenderError, match=r"dependencies not vendored under charts/.*redis 1.2.3 from https://charts.example.invalid"
    ):
        await render_local(repo, "chart")


async def test_helm_failure_names_app_chart_and_stderr(repo: Path) -> None:
    write_tree(repo, {"chart/templates/bad.yaml": "{{ .Values.nope.deeper }}\n"})
    with pytest.raises(
        RenderError, match=r"(?s)app .app.: helm chart chart: helm template failed \(exit 1\): .*bad.yaml.*nil pointer"
    ):
        await render_local(repo, "chart")


async def test_corpus_chart_with_missing_dependency(tmp_path: Path) -> None:
    from tests.render.helpers import CORPUS

    with pytest.raises(RenderError, match="wordpress 9.0.3 from https://charts.helm.sh/stable"):
        await render_local(CORPUS, "helm-dependency")


async def test_tool_errors_mask_secrets_and_url_credentials(repo: Path) -> None:
    canary = "canary-render-err-51f0"
    REDACTOR.add(canary)
    write_tree(
        repo,
        {
            "chart/templates/bad.yaml": '{{ fail "token canary-render-err-51f0 for https://me:hunter2x@git.example/r" }}\n'
        },
    )
    with pytest.raises(RenderError) as caught:
        await render_local(repo, "chart")
    message = str(caught.value)
    assert "helm template failed" in message and "https://git.example/r" in message
    assert canary not in message and "hunter2x" not in message and "********" in message


def test_each_render_gets_private_throwaway_helm_homes() -> None:
    with private_tool_env() as (first, scratch):
        homes = [Path(first[name]) for name in ("HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")]
        assert all(home.is_dir() and home.is_relative_to(scratch) for home in homes)
        assert not Path(first["KUBECONFIG"]).exists()
        with private_tool_env() as (second, _):
            assert second["HELM_CONFIG_HOME"] != first["HELM_CONFIG_HOME"]
    assert not scratch.exists()


CAPABLE_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: capable\nversion: 0.1.0\n",
    "values.yaml": "{}\n",
    "templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: versions}\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        '  monitored: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}\n'
    ),
}


async def test_the_destinations_capabilities_reach_the_chart_unless_the_spec_sets_its_own(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"chart/{name}": text for name, text in CAPABLE_CHART.items()})
    cluster = Capabilities.of("v1.29.3+k3s1", ["v1", "v1/ConfigMap", "monitoring.coreos.com/v1/ServiceMonitor"])
    source = ApplicationSource.model_validate({"repoURL": str(tmp_path), "path": "chart"})

    with_cluster = await render("app", source, tmp_path, capabilities=given(cluster))
    assert with_cluster.objects[0]["data"] == {"kube": "v1.29.3", "monitored": "true"}
    assert with_cluster.inputs == ("chart", "//capabilities")  # the cache keys the render on them

    defaults = await render("app", source, tmp_path)
    assert defaults.objects[0]["data"]["monitored"] == "false" and defaults.inputs == ("chart",)

    own = source.model_copy(
        update={"helm": HelmSource(kube_version="1.31.0", api_versions=("apps/v1",))}
    )  # the spec's replace the cluster's, as in Argo CD
    overridden = await render("app", own, tmp_path, capabilities=given(cluster))
    assert overridden.objects[0]["data"] == {"kube": "v1.31.0", "monitored": "false"}


async def test_kustomize_inflates_charts_with_the_destinations_capabilities(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"app/charts/capable/{name}": text for name, text in CAPABLE_CHART.items()})
    write_tree(tmp_path, {"app/kustomization.yaml": "helmCharts:\n- name: capable\n  releaseName: rel\n"})
    cluster = Capabilities.of("v1.30.2", ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"])
    source = ApplicationSource.model_validate({"repoURL": str(tmp_path), "path": "app"})
    rendered = await render("app", source, tmp_path, capabilities=given(cluster))
    assert rendered.objects[0]["data"] == {"kube": "v1.30.2", "monitored": "true"}

    own = source.model_copy(update={"kustomize": KustomizeSource(kube_version="1.32.1", api_versions=("apps/v1",))})
    overridden = await render("app", own, tmp_path, capabilities=given(cluster))  # the spec's replace the cluster's
    assert overridden.objects[0]["data"] == {"kube": "v1.32.1", "monitored": "false"}
    without_cluster = await render("app", own, tmp_path)
    assert without_cluster.objects[0]["data"] == {"kube": "v1.32.1", "monitored": "false"}


def test_capabilities_from_the_api_servers_answers() -> None:
    found = Capabilities.of("v1.34.1+k3s1", ["apps/v1", "v1", "apps/v1", "v1/Pod"])
    assert found.kube_version == "1.34.1" and found.api_versions == ("apps/v1", "v1", "v1/Pod")
    assert Capabilities.of("v1.28", []).kube_version == "1.28.0"
    assert Capabilities.of("unknown", []).kube_version == ""
    assert found.digest == Capabilities.of("v1.34.1", ["v1", "v1/Pod", "apps/v1"]).digest
    assert found.digest != Capabilities.of("v1.34.1", ["v1", "v1/Pod"]).digest
