"""JSON on the hot paths, through orjson: decoding what the API server sends, and content digests.

Every watch event and every response is decoded here, and every live object is digested to tell
drift from a status change: at a cold start of many apps, doing this with the standard library's
``json`` took about 5 % of the controller's event loop, and orjson does it several times faster.

Where orjson differs from ``json``, it matters only outside these uses, which is why request
bodies are still encoded by ``json``:
- it decodes an integer beyond 64 bits as a float; the API server's objects hold no such integer
  (Go decodes JSON numbers into int64 or float64);
- it encodes NaN as null, where ``json`` writes ``NaN``, which no JSON parser accepts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def loads(data: bytes | str) -> Any:
    """Decode one JSON document; invalid JSON raises ``ValueError`` as ``json.loads`` does."""
    return orjson.loads(data)


def digest(value: Any) -> str:
    """The SHA-256 hex digest of ``value`` as ``canonical`` JSON: equal content, equal digest."""
    return hashlib.sha256(canonical(value)).hexdigest()


def canonical(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON with sorted keys, for comparing content.

    What JSON has no type for is written as its ``str``. A value orjson refuses (an integer beyond
    64 bits) is encoded by ``json`` instead.
    """
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
            "utf-8", "surrogatepass"
        )
