"""tether.jsonfast: the hot paths' JSON (plain data)."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest

from tether.jsonfast import canonical, digest, loads


def test_loads_decodes_what_json_does_and_refuses_what_it_refuses() -> None:
    text = '{"kind":"ConfigMap","data":{"a":"ä😀"},"n":[1,2.5,null,true]}'
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)
    with pytest.raises(ValueError):
        loads(b'{"kind": ')


def test_digest_ignores_key_order_and_sees_every_value() -> None:
    one = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 1}}
    same = {"spec": {"replicas": 1}, "metadata": {"labels": {"y": "2", "x": "1"}, "name": "a"}}
    other = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 2}}
    assert digest(one) == digest(same)
    assert digest(one) != digest(other)
    assert digest(one) == hashlib.sha256(canonical(one)).hexdigest()


def test_canonical_is_sorted_compact_utf8_json() -> None:
    value = {"b": [1, ("t", 2)], "a": {"ü": date(2026, 1, 2)}, 3: None}
    assert canonical(value) == '{"3":null,"a":{"ü":"2026-01-02"},"b":[1,["t",2]]}'.encode()


def test_what_orjson_refuses_is_encoded_by_json_instead() -> None:
    big = {"n": 2**70}  # beyond 64 bits: orjson raises, the digest must not
    assert canonical(big) == b'{"n":1180591620717411303424}'
    assert digest(big) != digest({"n": 2**70 + 1})
