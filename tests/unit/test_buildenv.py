"""Argo CD's build variables: Go's os.Expand with Argo CD's mapping, and the spec fields it reaches."""

from __future__ import annotations

import pytest

from tether.model.source import ApplicationSource
from tether.render.buildenv import BuildEnv, expand, expand_source

VARIABLES = {"ARGOCD_APP_NAME": "shop", "ARGOCD_APP_REVISION": "0123456789abcdef"}


def _lookup(name: str) -> str:
    return "$" if name == "$" else VARIABLES.get(name, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$ARGOCD_APP_NAME", "shop"),
        ("${ARGOCD_APP_NAME}-web", "shop-web"),
        ("$ARGOCD_APP_NAME-web", "shop-web"),  # a name is [A-Za-z0-9_]*
        ("img:$ARGOCD_APP_REVISION", "img:0123456789abcdef"),
        ("$$ARGOCD_APP_NAME", "$ARGOCD_APP_NAME"),  # $$ is a literal dollar
        ("pa$$word", "pa$word"),
        ("pa$word", "pa"),  # not a build variable: empty, as in Argo CD
        ("$1 and ${2}", " and "),  # one-character shell names
        ("100$ off", "100$ off"),  # a dollar not followed by a name stays
        ("ends with $", "ends with $"),
        ("${}x", "x"),  # bad syntax is eaten, as Go does
        ("${unclosed", "unclosed"),
        ("no dollar", "no dollar"),
        ("${ARGOCD_APP_NAME}${ARGOCD_APP_NAME}", "shopshop"),
    ],
)
def test_expand_is_gos_os_expand(text: str, expected: str) -> None:
    assert expand(text, _lookup) == expected


def test_the_variables_argo_cd_sets() -> None:
    env = BuildEnv(
        app="shop",
        namespace="web",
        project="team",
        revision="0123456789abcdef",
        repo_url="https://git.example/shop.git",
        path="deploy",
        target_revision="main",
    )
    assert env.variables() == {
        "ARGOCD_APP_NAME": "shop",
        "ARGOCD_APP_NAMESPACE": "web",
        "ARGOCD_APP_PROJECT_NAME": "team",
        "ARGOCD_APP_REVISION": "0123456789abcdef",
        "ARGOCD_APP_REVISION_SHORT": "0123456",
        "ARGOCD_APP_REVISION_SHORT_8": "01234567",
        "ARGOCD_APP_SOURCE_REPO_URL": "https://git.example/shop.git",
        "ARGOCD_APP_SOURCE_PATH": "deploy",
        "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
    }


def test_expanded_fields_and_the_rest_untouched() -> None:
    helm = ApplicationSource.model_validate(
        {
            "repoURL": "https://git.example/shop.git",
            "path": "chart-$ARGOCD_APP_NAME",  # not expanded: Argo CD does not either
            "helm": {
                "releaseName": "$ARGOCD_APP_NAME",  # nor this
                "parameters": [
                    {"name": "image.tag", "value": "$ARGOCD_APP_REVISION_SHORT"},
                    {"name": "ns", "value": "${ARGOCD_APP_NAMESPACE}", "forceString": True},
                ],
                "valueFiles": ["envs/$ARGOCD_APP_NAME.yaml", "$values/teams/$ARGOCD_APP_PROJECT_NAME.yaml"],
                "fileParameters": [{"name": "cfg", "path": "files/$ARGOCD_APP_NAME.conf"}],
                "values": "name: $ARGOCD_APP_NAME\n",  # inline values: never expanded
            },
        }
    )
    env = BuildEnv(app="shop", namespace="web", project="team", revision="0123456789abcdef")
    expanded, used = expand_source(helm, env)
    assert expanded.helm is not None
    assert [p.value for p in expanded.helm.parameters] == ["0123456", "web"]
    assert expanded.helm.value_files == ("envs/shop.yaml", "$values/teams/team.yaml")
    assert expanded.helm.file_parameters[0].path == "files/shop.conf"
    assert expanded.helm.release_name == "$ARGOCD_APP_NAME" and expanded.path == "chart-$ARGOCD_APP_NAME"
    assert expanded.helm.values == "name: $ARGOCD_APP_NAME\n"
    assert used == {"ARGOCD_APP_REVISION_SHORT", "ARGOCD_APP_NAMESPACE", "ARGOCD_APP_NAME", "ARGOCD_APP_PROJECT_NAME"}

    jsonnet = ApplicationSource.model_validate(
        {
            "repoURL": "x",
            "directory": {
                "jsonnet": {
                    "extVars": [{"name": "app", "value": "$ARGOCD_APP_NAME"}],
                    "tlas": [{"name": "ns", "value": "'${ARGOCD_APP_NAMESPACE}'", "code": True}],
                }
            },
        }
    )
    expanded, _ = expand_source(jsonnet, env)
    assert expanded.directory is not None
    assert expanded.directory.jsonnet.ext_vars[0].value == "shop"
    assert expanded.directory.jsonnet.tlas[0].value == "'web'"

    kustomize = {"images": ["web=registry/web:$ARGOCD_APP_REVISION"], "commonAnnotations": {"by": "$ARGOCD_APP_NAME"}}
    plain, _ = expand_source(ApplicationSource.model_validate({"repoURL": "x", "kustomize": kustomize}), env)
    assert plain.kustomize is not None
    assert plain.kustomize.images == ("web=registry/web:0123456789abcdef",)
    assert plain.kustomize.common_annotations == {"by": "$ARGOCD_APP_NAME"}  # only with commonAnnotationsEnvsubst
    kustomize["commonAnnotationsEnvsubst"] = True
    substituted, _ = expand_source(ApplicationSource.model_validate({"repoURL": "x", "kustomize": kustomize}), env)
    assert substituted.kustomize is not None and substituted.kustomize.common_annotations == {"by": "shop"}
