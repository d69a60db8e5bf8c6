"""Pure rules of tether.source: ls-remote parsing, revision picking, URL redaction and keys."""

from __future__ import annotations

import pytest

from tether.source import Credentials, normalise_url, parse_ls_remote, pick, redact_url, split_userinfo
from tether.source.revisions import NeedsFetch, RevisionNotFound, highest_tag
from tether.source.urls import cache_key, is_ssh_url

A = "a" * 40
B = "b" * 40
C = "c" * 40
D = "d" * 40
T = "e" * 40

LS_REMOTE = f"""ref: refs/heads/main\tHEAD
{A}\tHEAD
{A}\trefs/heads/main
{B}\trefs/heads/feature/x
{T}\trefs/tags/v1.2.0
{C}\trefs/tags/v1.2.0^{{}}
{D}\trefs/tags/1.4.7
{B}\trefs/tags/v1.9.0
{A}\trefs/tags/2.0.0
{A}\trefs/tags/1.10.0-rc.1
{B}\trefs/tags/feature/x
{D}\trefs/tags/not-a-version
"""


@pytest.fixture
def refs():
    return parse_ls_remote(LS_REMOTE)


def test_parse_peels_annotated_tags_and_finds_head(refs) -> None:
    assert refs.head == A and refs.head_ref == "refs/heads/main"
    assert refs.refs["refs/tags/v1.2.0"] == C
    assert "refs/tags/v1.2.0^{}" not in refs.refs


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("", A),
        ("HEAD", A),
        (" main ", A),
        ("refs/heads/feature/x", B),
        ("v1.2.0", C),
        ("refs/tags/v1.2.0", C),
        ("1.4.7", D),
        ("feature/x", B),  # tags before branches, as git does; both point at B here
        (A.upper(), A),
        ("f" * 40, "f" * 40),  # a full id is returned unchecked
        ("c" * 7, C),
        (">=1.2.0 <2", B),  # v1.9.0; 1.10.0-rc.1 is a pre-release, 2.0.0 out of range
        ("~1.4", D),
        ("^1.2", B),
        ("1.x", B),
        ("^2", A),
        (">=1.10.0-rc.0 <2", A),
    ],
)
def test_pick(refs, revision: str, expected: str) -> None:
    assert pick(refs, revision) == expected


def test_unknown_names_and_ranges(refs) -> None:
    with pytest.raises(RevisionNotFound, match="no branch, tag or commit named 'nope'"):
        pick(refs, "nope")
    with pytest.raises(RevisionNotFound, match="no tag matches the version range '>=3'"):
        pick(refs, ">=3")
    with pytest.raises(RevisionNotFound, match="not a valid revision"):
        pick(refs, "main\nx")


def test_abbreviated_id_not_at_a_tip_needs_fetch(refs) -> None:
    with pytest.raises(NeedsFetch) as caught:
        pick(refs, "1234abc")
    assert caught.value.prefix == "1234abc"


def test_abbreviated_id_matching_two_tips_is_ambiguous() -> None:
    refs = parse_ls_remote(f"{'ab' * 20}\trefs/heads/a\n{'ab' * 19 + 'cd'}\trefs/heads/b\n")
    with pytest.raises(RevisionNotFound, match="ambiguous"):
        pick(refs, "abab")


def test_empty_repository_has_no_default_branch() -> None:
    with pytest.raises(RevisionNotFound, match="no default branch"):
        pick(parse_ls_remote(""), "HEAD")


def test_highest_tag_ignores_non_versions() -> None:
    assert highest_tag({"v1.0.0": A, "junk": B, "v1.1.0": C}, "*") == "v1.1.0"
    assert highest_tag({"v1.0.0": A}, "main") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok3n@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://tok3n@github.com/o/r", "https://github.com/o/r"),
        ("fatal: unable to access 'https://u:p%40ss@h/x/': 403", "fatal: unable to access 'https://h/x/': 403"),
        ("https://u:p@ss@host/r", "https://host/r"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git:pw@host:22/r", "ssh://host:22/r"),
        ("no url here", "no url here"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_split_userinfo_moves_credentials_out_of_the_url() -> None:
    assert split_userinfo("https://me:p%40ss@Host/r.git") == ("https://Host/r.git", "me", "p@ss")
    assert split_userinfo("https://tok@host/r") == ("https://host/r", "tok", None)
    assert split_userinfo("git@host:o/r") == ("git@host:o/r", None, None)


def test_normalised_urls_share_a_cache_key() -> None:
    assert normalise_url("HTTPS://u:p@GitHub.com/Org/Repo.git/") == "https://github.com/Org/Repo"
    assert cache_key("https://github.com/Org/Repo") == cache_key("https://x:y@GITHUB.com/Org/Repo.git")
    assert cache_key("https://github.com/Org/Repo") != cache_key("https://github.com/Org/Other")
    assert normalise_url("git@GitHub.com:org/repo.git") == "git@github.com:org/repo"


def test_ssh_detection() -> None:
    assert is_ssh_url("git@github.com:o/r.git")
    assert is_ssh_url("ssh://git@host/r")
    assert not is_ssh_url("https://host/r")
    assert not is_ssh_url("/srv/git/r.git")


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials(username="me", password="hunter22", ssh_private_key="KEYDATA")
    assert "hunter22" not in repr(creds) and "KEYDATA" not in repr(creds)
    assert creds.secret_values() == ["hunter22", "KEYDATA"]
