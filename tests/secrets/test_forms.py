"""Every shape a secret value can come back in is known to the redactor, and fields are masked by structure.

The expected Go forms are what Go's ``strconv.Quote`` / ``%q`` prints (checked against the Go
documentation's rules: printable non-ASCII kept, control characters escaped); the API server
quotes invalid values that way (``Invalid value: "..."``).
"""

from __future__ import annotations

import base64
import json

from tether.resource import ResourceKey
from tether.secrets import MASK, SECRET_MASK, Redactor, mask_secret_objects
from tether.secrets.fields import SecretFields, mask_field, pointer, tokens
from tether.secrets.forms import escaped_forms, go_json, go_quote, line_forms

# Quotes, a backslash, non-ASCII (Ä, an emoji), a tab, a control character and a newline.
CANARY = 'canary-"q"\\b-Ä-😀\t\x01-line1\nline2-canary-tail'


def test_go_quote_follows_strconv_quote() -> None:
    assert go_quote('a"b\\c') == 'a\\"b\\\\c'
    assert go_quote("Ä😀") == "Ä😀"  # printable non-ASCII stays as it is
    assert go_quote("Ä😀", ascii_only=True) == "\\u00c4\\U0001f600"
    assert go_quote("\n\t\r\a\x01\x7f") == "\\n\\t\\r\\a\\x01\\x7f"
    assert go_quote("\u200b\u00a0") == "\\u200b\\u00a0"  # not printable in Go either
    assert go_quote("\udcff") == "\\xff"  # an undecodable byte


def test_go_json_escapes_html_characters() -> None:
    assert go_json('<a&b>"\u2028') == '\\u003ca\\u0026b\\u003e\\"\\u2028'


def test_escaped_forms_cover_json_and_go_and_both_at_once() -> None:
    forms = escaped_forms(CANARY)
    assert json.dumps(CANARY)[1:-1] in forms
    assert json.dumps(CANARY, ensure_ascii=False)[1:-1] in forms
    assert go_quote(CANARY) in forms
    # A Go-quoted API server message inside Tether's JSON output (sync -o json):
    assert json.dumps(go_quote(CANARY))[1:-1] in forms


def test_line_forms_only_for_multi_line_values() -> None:
    assert line_forms("single") == set()
    assert {"line2-canary-tail", 'canary-"q"\\b-Ä-😀\t\x01-line1'} <= line_forms(CANARY)


def test_redactor_masks_every_form_in_foreign_text() -> None:
    redactor = Redactor()
    redactor.add(CANARY)
    texts = [
        f"plain {CANARY} end",
        f'Secret "x" is invalid: metadata.labels: Invalid value: "{go_quote(CANARY)}": must be 63 characters',
        json.dumps({"message": f"x {CANARY} y"}),
        json.dumps({"message": f"x {CANARY} y"}, ensure_ascii=False),
        json.dumps({"message": f'Invalid value: "{go_quote(CANARY)}"'}),
        json.dumps({"message": f'Invalid value: "{go_quote(CANARY)}"'}, ensure_ascii=False),
        f"helm: error at line 3: {CANARY.split(chr(10))[1]}",
        base64.b64encode(CANARY.encode()).decode(),
    ]
    for text in texts:
        masked = redactor.redact(text)
        assert MASK in masked, text
        for part in ("canary-", "line2-canary-tail", "Ä-😀", "\\u00c4", base64.b64encode(CANARY.encode()).decode()):
            assert part not in masked, (text, masked)


def test_escaped_forms_of_short_values_are_whole_string_only() -> None:
    redactor = Redactor()
    redactor.add('Ä"')
    assert redactor.redact('\\u00c4\\"') == MASK
    assert redactor.redact('caf\\u00c4\\" elsewhere') == 'caf\\u00c4\\" elsewhere'


def test_pointers_round_trip_and_mask_fields() -> None:
    path = pointer(["spec", "template", "a/b~c", 0, "value"])
    assert path == "/spec/template/a~1b~0c/0/value"
    assert tokens(path) == ["spec", "template", "a/b~c", "0", "value"]
    obj = {"spec": {"template": {"a/b~c": [{"value": "v"}]}}}
    assert mask_field(obj, path, SECRET_MASK) and obj["spec"]["template"]["a/b~c"][0]["value"] == SECRET_MASK
    assert not mask_field(obj, "/spec/missing/0", SECRET_MASK)
    assert not mask_field(obj, "/spec/template/a~1b~0c/3/value", SECRET_MASK)


def test_secret_fields_match_across_namespace_assignment() -> None:
    fields = SecretFields()
    fields.add(ResourceKey("apps", "Deployment", "", "web"), ["/spec/a"])
    fields.add(ResourceKey("apps", "Deployment", "prod", "web"), ["/spec/b"])
    fields.add(ResourceKey("", "Namespace", "ignored", "ns"), ["/metadata/labels/x"])
    assert fields.of(ResourceKey("apps", "Deployment", "prod", "web")) == {"/spec/a", "/spec/b"}
    assert fields.of(ResourceKey("apps", "Deployment", "dev", "web")) == {"/spec/a"}
    assert fields.of(ResourceKey("", "Namespace", "", "ns")) == {"/metadata/labels/x"}
    assert fields.of(ResourceKey("apps", "Deployment", "prod", "other")) == frozenset()


def test_mask_secret_objects_masks_placeholder_fields_of_any_kind() -> None:
    redactor = Redactor()
    redactor.fields.add(ResourceKey("", "ConfigMap", "", "c"), ["/data/url", "/metadata/annotations/k"])
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"k": "ab"}},
            "data": {"url": "https://u:ab@h", "plain": "x"},
        }
    ]
    masked = mask_secret_objects(objects, redactor)
    assert masked[0]["data"] == {"url": MASK, "plain": "x"}
    assert masked[0]["metadata"]["annotations"] == {"k": MASK}
    assert objects[0]["data"]["url"] == "https://u:ab@h"


def test_text_around_values_is_not_split_into_secret_lines() -> None:
    redactor = Redactor()
    redactor.add("listen 80;\npassword canary-x1y2;\n", lines=False)
    assert redactor.redact("listen 80;") == "listen 80;"
    redactor.add("listen 80;\npassword canary-x1y2;\n")
    assert redactor.redact("listen 80;") == MASK
