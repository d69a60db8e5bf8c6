"""repository_identity: one string per repository, whichever way a URL spells it."""

from __future__ import annotations

import pytest

from tether.source.urls import normalise_url, repository_identity

SAME_REPOSITORY = [
    "https://Git.Example.com/Org/Repo",
    "https://git.example.com:443/org/repo.git",
    "http://user:tok@git.example.com/org/repo/",
    "ssh://git@git.example.com:22/org/repo.git",
    "git@git.example.com:org/repo.git",
    "git@git.example.com:org/repo",
    "git://git.example.com/org/repo.git",
    "git+ssh://git@git.example.com/org/repo.git",
    "https://git.example.com/org/repo.git/",
    "https://git.example.com/org/repo?ref=main#readme",
    "  https://git.example.com/org/repo  ",
]


@pytest.mark.parametrize("url", SAME_REPOSITORY)
def test_every_spelling_of_one_repository_gives_one_identity(url: str) -> None:
    assert repository_identity(url) == "git.example.com/org/repo"


def test_other_repositories_and_hosts_stay_apart() -> None:
    base = repository_identity("https://git.example.com/org/repo")
    for other in (
        "https://git.example.com/org/repo2",
        "https://git.example.com/other/repo",
        "https://git.example.org/org/repo",
        "https://git.example.com/org/repo/sub",
        "git@git.example.com:org/repo-two.git",
    ):
        assert repository_identity(other) != base, other


def test_the_corpora_providers_urls_of_one_repository_agree() -> None:
    # GitLab's web, http clone and ssh clone URLs (git-provider-webhook-payloads/gitlab/push-event.json)
    gitlab = {
        "http://example.com/mike/diaspora",
        "http://example.com/mike/diaspora.git",
        "git@example.com:mike/diaspora.git",
    }
    assert {repository_identity(u) for u in gitlab} == {"example.com/mike/diaspora"}
    # Gogs' ssh URL carries a user and a port (gogs/push-event.json)
    gogs = {"http://localhost:3000/unknwon/webhooks", "ssh://unknwon@localhost:2222/unknwon/webhooks.git"}
    assert {repository_identity(u) for u in gogs} == {"localhost/unknwon/webhooks"}
    # Bitbucket Server's ssh clone on port 7999
    assert (
        repository_identity("ssh://git@bitbucket.example.com:7999/proj/repo.git") == "bitbucket.example.com/proj/repo"
    )


def test_azure_devops_https_urls_lose_the_organisation_user() -> None:
    assert repository_identity("https://fabrikam@dev.azure.com/fabrikam/Proj/_git/Repo") == repository_identity(
        "https://dev.azure.com/fabrikam/Proj/_git/Repo"
    )
    assert (
        repository_identity("https://dev.azure.com/org/My%20Project/_git/repo")
        == "dev.azure.com/org/my project/_git/repo"
    )


def test_ipv6_hosts_keep_their_brackets_and_lose_the_port() -> None:
    assert repository_identity("http://[::1]:8080/org/repo.git") == "[::1]/org/repo"
    assert repository_identity("http://[::1]/org/repo") == "[::1]/org/repo"


def test_scp_like_paths_with_a_leading_slash_or_tilde() -> None:
    assert repository_identity("git@host.example:/srv/git/repo.git") == "host.example/srv/git/repo"
    assert repository_identity("host.example:~alice/repo.git") == "host.example/~alice/repo"


def test_local_paths_and_file_urls_are_normalised_the_same_way() -> None:
    assert repository_identity("/srv/Git/Repo/") == "/srv/git/repo"
    assert repository_identity("/srv/git/repo.git") == "/srv/git/repo"
    assert repository_identity("file:///srv/git/repo.git") == "/srv/git/repo"
    assert repository_identity("./Repo/") == "./repo"
    assert repository_identity("/") == "/"


@pytest.mark.parametrize("url", ["", "://", "http://", "http://[::1", "git@:x", "-x", "\x00", "@@@", "a" * 5000])
def test_it_never_raises(url: str) -> None:
    assert isinstance(repository_identity(url), str)


def test_normalise_url_is_unchanged_by_it() -> None:
    # the cache key keeps its own, stricter normalisation (scheme and user matter for fetching)
    assert normalise_url("https://Git.Example.com/Org/Repo.git") == "https://git.example.com/Org/Repo"
    assert normalise_url("git@git.example.com:org/repo.git") == "git@git.example.com:org/repo"
