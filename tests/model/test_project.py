"""Project enforcement: Argo CD's rules for repositories, destinations and kinds, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tether.errors import Reason, TetherError
from tether.model import DEFAULT_PROJECT, Application, Project
from tether.model.project import normalize_repo_url

SERVER = "https://kubernetes.default.svc"


def project(**spec: Any) -> Project:
    return Project.from_object(
        {"apiVersion": "tether.dev/v1alpha1", "kind": "Project", "metadata": {"name": "team"}, "spec": spec}
    )


def test_default_project_allows_everything() -> None:
    assert DEFAULT_PROJECT.name == "default"
    assert DEFAULT_PROJECT.source_violations(["https://anything/x.git", "git@host:org/repo"]) == []
    assert DEFAULT_PROJECT.destination_violations("https://other:6443", "other", "kube-system") == []
    assert DEFAULT_PROJECT.destination_violations("", "by-name-only", "x") == []
    assert DEFAULT_PROJECT.resource_violations([("rbac.authorization.k8s.io", "ClusterRole", False)]) == []
    assert DEFAULT_PROJECT.windows.verdict("a", "b", "c", datetime.now(UTC), manual=False).allowed


def test_an_empty_project_allows_nothing() -> None:
    empty = project()
    assert empty.source_violations(["https://x/y"]) == [
        "application repo https://x/y is not permitted in project 'team'"
    ]
    assert empty.destination_violations(SERVER, "in-cluster", "default") != []
    assert empty.resource_violations([("", "Namespace", False)]) == [
        "resource :Namespace is not permitted in project 'team'"
    ]
    assert empty.resource_violations([("apps", "Deployment", True)]) == []  # namespaced: allowed unless listed


def test_source_repos_globs_negation_and_normalisation() -> None:
    team = project(
        sourceRepos=["https://GitHub.com/acme/*", "!https://github.com/acme/secrets", "git@git.acme.io:ops/*"]
    )
    allowed = [
        "https://github.com/acme/web",
        "https://github.com/acme/web.git",
        "https://github.com/acme/web/",
        "https://GITHUB.COM/acme/web",
        "git@git.acme.io:ops/deploy.git",
        "ssh://git@git.acme.io/ops/deploy",
    ]
    assert team.source_violations(allowed) == []
    refused = [
        "https://github.com/acme/secrets.git",
        "https://github.com/acme/team/web",
        "https://github.com/other/web",
    ]
    assert team.source_violations(refused + refused) == [
        f"application repo {url} is not permitted in project 'team'" for url in refused
    ]
    # the path stays case-sensitive: only scheme and host are folded
    assert team.source_violations(["https://github.com/ACME/web"]) != []


def test_a_negated_repo_alone_permits_nothing() -> None:
    assert project(sourceRepos=["!https://github.com/acme/secrets"]).source_violations(["https://github.com/acme/web"])


def test_normalize_repo_url() -> None:
    assert normalize_repo_url("git@github.com:Org/Repo.git") == "ssh://git@github.com/Org/Repo"
    assert normalize_repo_url("HTTPS://GitHub.com/Org/Repo.git/") == "https://github.com/Org/Repo"
    assert normalize_repo_url("https://github.com/org/*") == "https://github.com/org/*"


def test_destinations_match_server_or_name_and_namespace() -> None:
    team = project(
        destinations=[{"server": SERVER, "namespace": "team-*"}, {"name": "staging", "namespace": "*"}],
    )
    assert team.destination_violations(SERVER, "in-cluster", "team-a") == []
    assert team.destination_violations("https://staging:6443", "staging", "anything") == []
    assert team.destination_violations(SERVER, "in-cluster", "kube-system") == [
        f"application destination server '{SERVER}' and namespace 'kube-system' do not match any of the allowed "
        "destinations in project 'team'"
    ]
    assert team.destination_violations("", "prod", "team-a")[0].startswith("application destination name 'prod'")


def test_a_negated_destination_refuses_what_another_entry_allows() -> None:
    team = project(
        destinations=[
            {"server": "*", "namespace": "*"},
            {"server": "*", "namespace": "!kube-system"},
            {"server": "!https://prod-*", "namespace": "*"},
        ]
    )
    assert team.destination_violations(SERVER, "in-cluster", "web") == []
    assert team.destination_violations(SERVER, "in-cluster", "kube-system") != []
    assert team.destination_violations("https://prod-eu:6443", "prod-eu", "web") != []


def test_kinds_follow_argo_cd_lists() -> None:
    team = project(
        clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}, {"group": "*.acme.io", "kind": "*"}],
        clusterResourceBlacklist=[{"group": "crd.acme.io", "kind": "*"}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}],
    )
    objects = [
        ("", "Namespace", False),
        ("rbac.authorization.k8s.io", "ClusterRole", False),
        ("x.acme.io", "Gadget", False),
        ("crd.acme.io", "Gadget", False),
        ("", "ResourceQuota", True),
        ("apps", "Deployment", True),
        ("rbac.authorization.k8s.io", "ClusterRole", False),
    ]
    assert team.resource_violations(objects) == [
        "resource rbac.authorization.k8s.io:ClusterRole is not permitted in project 'team'",
        "resource crd.acme.io:Gadget is not permitted in project 'team'",
        "resource :ResourceQuota is not permitted in project 'team'",
    ]
    only_apps = project(namespaceResourceWhitelist=[{"group": "apps", "kind": "*"}])
    assert only_apps.resource_violations([("apps", "Deployment", True), ("", "ConfigMap", True)]) == [
        "resource :ConfigMap is not permitted in project 'team'"
    ]


def test_app_violations_check_every_source_and_the_destination() -> None:
    team = project(sourceRepos=["https://github.com/acme/*"], destinations=[{"server": "*", "namespace": "web"}])
    app = Application.from_object(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web"},
            "spec": {
                "project": "team",
                "sources": [{"repoURL": "https://github.com/acme/web"}, {"repoURL": "https://elsewhere/x", "ref": "v"}],
                "destination": {"server": SERVER, "namespace": "db"},
            },
        }
    )
    violations = team.app_violations(app.spec, SERVER, "in-cluster")
    assert len(violations) == 2
    assert "https://elsewhere/x" in violations[0] and "namespace 'db'" in violations[1]


def test_argo_cd_project_fields_are_accepted() -> None:
    team = project(
        description="Team A",
        sourceNamespaces=["team-a"],
        signatureKeys=[{"keyID": "4AEE18F83AFDEB23"}],
        roles=[{"name": "ci", "policies": ["p, proj:team:ci, applications, sync, team/*, allow"], "groups": ["ci"]}],
        orphanedResources={"ignore": [{"kind": "ConfigMap", "name": "kube-root-ca.crt"}]},
        syncWindows=[{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "namespaces": ["*"]}],
    )
    assert team.warns_orphans  # Argo CD: warn defaults to true once orphanedResources is set
    assert team.spec.roles[0]["name"] == "ci"
    assert not project().warns_orphans
    assert len(team.windows.windows) == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"sourceRepo": ["*"]}, "spec.sourceRepo: unknown field"),
        ({"clusterResourceWhitelist": [{"group": "*"}]}, "spec.clusterResourceWhitelist[0].kind: required"),
        ({"syncWindows": [{"kind": "deny", "schedule": "x", "duration": "1h", "applications": ["*"]}]}, "5-field"),
    ],
)
def test_project_mistakes_name_the_project_and_field(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(TetherError) as caught:
        project(**spec)
    assert caught.value.reason == Reason.INVALID_SPEC
    assert str(caught.value).startswith("project 'team': ") and expected in str(caught.value)
