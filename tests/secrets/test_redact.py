"""The redactor masks registered values (and their base64) in text, structures and structlog output."""

from __future__ import annotations

import base64
import io
import threading

import structlog

from tether.secrets import MASK, REDACTOR, SECRET_MASK, Redactor, mask_secret_objects, redact_processor


def test_masks_values_and_their_base64_forms() -> None:
    redactor = Redactor()
    redactor.add("canary-abc-123")
    encoded = base64.b64encode(b"canary-abc-123").decode()
    text = f"value=canary-abc-123 b64={encoded} again canary-abc-123"
    assert redactor.redact(text) == f"value={MASK} b64={MASK} again {MASK}"


def test_longest_value_wins_when_values_overlap() -> None:
    redactor = Redactor()
    redactor.add_all(["abcd", "abcdefgh"])
    assert redactor.redact("xabcdefghx") == f"x{MASK}x"


def test_longest_value_wins_across_values_added_before_and_after_a_redact() -> None:
    """Values added after the pattern was built are matched in a second pattern; the longest still wins."""
    for first, then in ((["abcd"], ["abcdefgh"]), (["abcdefgh"], ["abcd"])):
        redactor = Redactor()
        redactor.add_all([*first, *(f"filler-{i:03d}" for i in range(100))])
        assert redactor.redact("filler-001") == MASK  # builds the pattern for everything so far
        redactor.add_all(then)
        assert redactor.redact("xabcdefghx") == f"x{MASK}x"
        assert redactor.redact("xabcdx filler-042") == f"x{MASK}x {MASK}"
        redactor.add_all(f"later-{i:03d}" for i in range(200))  # enough to merge both patterns into one
        assert redactor.redact("xabcdefghx later-199 abcd") == f"x{MASK}x {MASK} {MASK}"


def test_short_values_are_masked_only_as_whole_strings() -> None:
    redactor = Redactor()
    redactor.add("on")
    assert redactor.redact("on") == MASK
    assert redactor.redact("connection") == "connection"


def test_redact_any_walks_structures() -> None:
    redactor = Redactor()
    redactor.add("canary-struct-9")
    out = redactor.redact_any(
        {"a": ["x canary-struct-9", ("canary-struct-9", 3)], "b": None, "c": ValueError("boom canary-struct-9")}
    )
    assert out == {"a": [f"x {MASK}", (MASK, 3)], "b": None, "c": f"boom {MASK}"}


def test_thread_safe_adds_and_redacts() -> None:
    redactor = Redactor()
    values = [f"canary-thread-{i:04d}" for i in range(400)]

    def add(chunk: list[str]) -> None:
        for value in chunk:
            redactor.add(value)
            assert value not in redactor.redact(f"[{value}]")

    threads = [threading.Thread(target=add, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(redactor.redact(v) == MASK for v in values)


def test_structlog_processor_masks_events_and_tracebacks() -> None:
    REDACTOR.add("canary-log-7f7f7f")
    out = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.format_exc_info, redact_processor, structlog.processors.JSONRenderer()],
    )
    log.info("connecting with canary-log-7f7f7f", dsn="pg://u:canary-log-7f7f7f@h", extra={"k": ["canary-log-7f7f7f"]})
    try:
        raise RuntimeError("failed: canary-log-7f7f7f")
    except RuntimeError:
        log.exception("boom")
    text = out.getvalue()
    assert "canary-log-7f7f7f" not in text
    assert base64.b64encode(b"canary-log-7f7f7f").decode() not in text
    assert text.count(MASK) >= 4


def test_mask_secret_objects_for_display() -> None:
    objects = [
        {
            "kind": "Secret",
            "metadata": {
                "name": "s",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"pw":"c2VjcmV0"}}',
                    "team": "a",
                },
            },
            "data": {"pw": "c2VjcmV0"},
            "stringData": {"token": "secret"},
        },
        {"kind": "ConfigMap", "data": {"pw": "visible"}},
    ]
    masked = mask_secret_objects(objects)
    assert masked[0]["data"] == {"pw": SECRET_MASK}
    assert masked[0]["stringData"] == {"token": SECRET_MASK}
    assert masked[0]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": SECRET_MASK,
        "team": "a",
    }
    assert masked[1] == objects[1]
    assert objects[0]["data"] == {"pw": "c2VjcmV0"}
