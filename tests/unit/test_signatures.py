"""GnuPG's status lines as ``git verify-commit --raw`` prints them, read into a verdict, on plain data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import TetherError
from tether.source.signatures import BAD, GOOD, UNKNOWN_KEY, UNSIGNED, Keyring, Verdict, long_key_id, parse_status

SUBKEY = "1111222233334444555566667777888899990000"
PRIMARY = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333"
SHA = "0123456789abcdef0123456789abcdef01234567"

GOOD_LINES = f"""[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {PRIMARY} 0
[GNUPG:] SIG_ID abc 2026-12-03 1764740000
[GNUPG:] GOODSIG 7777888899990000 Signer <s@example.com>
[GNUPG:] VALIDSIG {SUBKEY} 2026-12-03 1764740000 0 4 0 22 10 00 {PRIMARY}
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""


def test_a_good_signature_names_the_signing_key_and_its_primary() -> None:
    verdict = parse_status(GOOD_LINES)
    assert verdict.state == GOOD
    assert verdict.key_ids == {"7777888899990000", "FFFF0000111122223333"[-16:]}
    assert verdict.refusal(SHA, ["0x7777888899990000"]) is None  # the signing subkey
    assert verdict.refusal(SHA, [PRIMARY]) is None  # the primary key, as a fingerprint
    refused = verdict.refusal(SHA, ["DEADBEEFDEADBEEF"])
    assert refused is not None and "not one of the project's signatureKeys" in refused and SHA[:12] in refused


@pytest.mark.parametrize(
    ("lines", "state", "says"),
    [
        ("", UNSIGNED, "is not signed"),
        ("error: no signature found\n", UNSIGNED, "is not signed"),
        (
            "[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 7777888899990000 22 10 00 1764740000 9 -\n"
            "[GNUPG:] NO_PUBKEY 7777888899990000\n",
            UNKNOWN_KEY,
            "whose public key is not in ConfigMap tether-gpg-keys",
        ),
        ("[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 7777888899990000 Signer <s@example.com>\n", BAD, "bad signature"),
        ("[GNUPG:] EXPKEYSIG 7777888899990000 Signer\n", "expired-key", "an expired key"),
        ("[GNUPG:] REVKEYSIG 7777888899990000 Signer\n", "revoked-key", "a revoked key"),
    ],
)
def test_every_other_verdict_refuses_the_commit_saying_why(lines: str, state: str, says: str) -> None:
    verdict = parse_status(lines)
    assert verdict.state == state
    refused = verdict.refusal(SHA, ["7777888899990000"])
    assert refused is not None and says in refused, refused


def test_key_ids_are_compared_as_long_ids_whatever_their_spelling() -> None:
    assert long_key_id("0x7777 8888 9999 0000") == "7777888899990000"
    assert long_key_id(PRIMARY.lower()) == PRIMARY[-16:]
    assert Verdict(GOOD, frozenset({"7777888899990000"})).refusal(SHA, ["7777888899990000".lower()]) is None


async def test_a_configmap_entry_that_is_not_a_public_key_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TetherError) as caught:
        await Keyring.build(
            tmp_path / "deep" / ("d" * 80), [("release-key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot a key\n")]
        )
    assert "tether-gpg-keys key 'release-key'" in str(caught.value)
    assert not any((tmp_path / "deep" / ("d" * 80)).iterdir())  # the half-made keyring is gone
