import time
import tracemalloc

import pytest

from tether.render.manifests import ManifestError, ParseLimits, flatten, objects_from_json, objects_from_yaml


def test_yaml_scalars_keep_their_text_like_go_yaml() -> None:
    (obj,) = objects_from_yaml("apiVersion: v1\nkind: ConfigMap\ndata: {a: 12:30, b: 2024-01-01, c: '='}\n")
    assert obj["data"] == {"a": "12:30", "b": "2024-01-01", "c": "="}


def test_empty_documents_are_skipped_and_lists_flattened() -> None:
    text = """
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
apiVersion: v1
kind: ConfigMapList
items: null
"""
    assert [o["metadata"]["name"] for o in objects_from_yaml(text)] == ["a", "b"]


def test_non_manifest_documents_are_errors_naming_the_document() -> None:
    with pytest.raises(ManifestError, match="document 2 is not a Kubernetes object"):
        objects_from_yaml("apiVersion: v1\nkind: ConfigMap\n---\nreplicaCount: 1\n")
    with pytest.raises(ManifestError, match="not a Kubernetes object"):
        objects_from_yaml("- just\n- a list\n")


def test_json_holds_one_object() -> None:
    assert (
        objects_from_json('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}')[0]["kind"]
        == "Namespace"
    )
    with pytest.raises(ManifestError, match="one object"):
        objects_from_json("[]")
    with pytest.raises(ManifestError, match="invalid JSON"):
        objects_from_json("{")


# --- Parsing is bounded (issue 7, section 2) -------------------------------------------------

HEAD = "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: x}\n"
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_billion_laughs_is_refused_at_once_in_little_memory() -> None:
    assert len(BILLION_LAUGHS) < 410
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ManifestError, match=r"document 1: g\[1\]: expands to more than 1000000 nodes"):
            objects_from_yaml(BILLION_LAUGHS)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024


def test_aliases_count_as_expanded_and_many_small_bombs_add_up() -> None:
    limits = ParseLimits(max_nodes=100)
    shared = "s: &s [" + ",".join(["x"] * 20) + "]\n"
    with pytest.raises(ManifestError, match=r"document 1: spec\[4\]: expands to more than 100 nodes"):
        objects_from_yaml(HEAD + shared + "spec: [*s, *s, *s, *s, *s]\n", limits)
    # One document of ~600,000 expanded nodes is allowed; a second one like it breaks the
    # file's budget: aliases may add at most max_nodes nodes to a whole file.
    levels = "".join(f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcde", "bcdef", strict=True))
    document = HEAD + "a: &a [" + ",".join(["lol"] * 9) + "]\n" + levels
    assert len(document) < 400
    assert len(objects_from_yaml(document)) == 1
    with pytest.raises(ManifestError, match=r"^document 2: aliases expand the file to more than 1000000 nodes"):
        objects_from_yaml(document + "---\n" + document)


def test_recursive_aliases_are_refused() -> None:
    with pytest.raises(ManifestError, match=r"document 1: spec\[0\]: a recursive alias"):
        objects_from_yaml(HEAD + "spec: &a [*a]\n")
    with pytest.raises(ManifestError, match=r"document 1: spec\.x\.y: a recursive alias"):
        objects_from_yaml(HEAD + "spec: &a {x: {y: *a}}\n")


def test_depth_is_bounded_in_the_text_and_through_aliases() -> None:
    limits = ParseLimits(max_depth=4)
    assert objects_from_yaml(HEAD + "spec: {a: {b: [1]}}\n", limits)[0]["spec"] == {"a": {"b": [1]}}
    with pytest.raises(ManifestError, match=r"document 1: spec\.a\.b\[0\]: nested more than 4 levels"):
        objects_from_yaml(HEAD + "spec: {a: {b: [[1]]}}\n", limits)
    with pytest.raises(ManifestError, match=r"document 1: spec\.a: nested more than 4 levels"):
        objects_from_yaml(HEAD + "s: &s {b: [[1]]}\nspec: {a: *s}\n", limits)
    deep = HEAD + "spec: " + "[" * 200 + "]" * 200 + "\n"
    with pytest.raises(ManifestError, match=r"document 1: spec\[0\].*: nested more than 128 levels"):
        objects_from_yaml(deep)


def test_scalar_size_and_expanded_characters_are_bounded() -> None:
    big = "x" * 21
    with pytest.raises(ManifestError, match=r"document 1: data\.big: a value longer than 20 characters"):
        objects_from_yaml(HEAD + f"data: {{big: '{big}'}}\n", ParseLimits(max_scalar=20))
    with pytest.raises(ManifestError, match=r"document 1: data: a key longer than 20 characters"):
        objects_from_yaml(HEAD + f"data: {{'{big}': x}}\n", ParseLimits(max_scalar=20))
    text = HEAD + "s: &s [" + ",".join(["0123456789"] * 10) + "]\nspec: [*s, *s, *s]\n"
    with pytest.raises(ManifestError, match=r"expands to more than 250 characters"):
        objects_from_yaml(text, ParseLimits(max_chars=250))


def test_huge_integers_and_deep_json_are_errors_not_tracebacks() -> None:
    with pytest.raises(ManifestError, match=r"document 1: spec\.n: an integer of more than 4300 digits"):
        objects_from_yaml(HEAD + "spec: {n: " + "9" * 5000 + "}\n")
    with pytest.raises(ManifestError, match="an integer has more than 4300 digits"):
        objects_from_json('{"apiVersion": "v1", "kind": "X", "n": ' + "9" * 5000 + "}")
    with pytest.raises(ManifestError, match="nested more than 128 levels"):
        objects_from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match=r"the object: spec\.x\[0\].*: nested more than 128 levels"):
        objects_from_json('{"apiVersion": "v1", "kind": "X", "spec": {"x": ' + "[" * 200 + "]" * 200 + "}}")
    with pytest.raises(ManifestError, match="NaN is not a JSON number"):
        objects_from_json('{"apiVersion": "v1", "kind": "X", "n": NaN}')


def test_normal_manifests_parse_as_before() -> None:
    text = HEAD + "data: {a: '1'}\n---\n" + "x: &x {app: web}\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
    text += "  labels: *x\nspec: {selector: *x, ports: [{port: 80}]}\n"
    assert objects_from_yaml(text)[1] == {
        "x": {"app": "web"},
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


# --- Malformed objects give errors naming the field (issue 7, section 3) ---------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("data: {a: !!binary aGVsbG8=}", r"data\.a: !!binary 'aGVsbG8=' is not JSON data"),
        ("data: !!set {a, b}", r"data: !!set is not JSON data"),
        ("spec: !!omap [{a: 1}]", r"spec: !!omap is not JSON data"),
        ("spec: !!pairs [{a: 1}]", r"spec: !!pairs is not JSON data"),
        ("spec: {t: !!timestamp 2024-01-01}", r"spec\.t: !!timestamp '2024-01-01' is not JSON data"),
        ("spec: {t: !Ref x}", r"spec\.t: !Ref 'x' is not JSON data"),
        ("spec: {f: .nan}", r"spec\.f: '\.nan' is not a finite number"),
        ("spec: {f: -.inf}", r"spec\.f: '-\.inf' is not a finite number"),
        ("spec: {f: 1.0e999}", r"spec\.f: '1\.0e999' is not a finite number"),
        ("spec: {f: !!int twelve}", r"spec\.f: 'twelve' is not a valid int"),
        ("spec: {f: !!bool maybe}", r"spec\.f: 'maybe' is not a valid bool"),
        ("spec: {f: !!float x}", r"spec\.f: 'x' is not a valid float"),
        ("data: {null: x}", r"data: a key must be a string, not null"),
        ("data: {1.5: x}", r"data: a key must be a string, not !!float '1\.5'"),
        ("data: {? [a]: x}", r"data: a key must be a string, not a list"),
        ("data: {? {a: b}: x}", r"data: a key must be a string, not a mapping"),
        ("data: {? !!binary aGk=: x}", r"data: !!binary 'aGk=' is not JSON data"),
    ],
)
def test_yaml_that_is_not_json_data_is_an_error_naming_the_field(body: str, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^document 2: " + message):
        objects_from_yaml(HEAD + "---\n" + HEAD + body + "\n")


def test_integer_and_boolean_keys_become_text_as_in_go() -> None:
    (obj,) = objects_from_yaml(HEAD + "data: {8080: tcp/web, 0x10: hex, true: yes-key, off: no-key}\n")
    assert obj["data"] == {"8080": "tcp/web", "16": "hex", "true": "yes-key", "false": "no-key"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("metadata: hello", "metadata: must be a mapping, not string"),
        ("metadata: [a]", "metadata: must be a mapping, not list"),
        ("metadata: {name: 12}", "metadata.name: must be a string, not int"),
        ("metadata: {name: x, namespace: [a]}", "metadata.namespace: must be a string, not list"),
        ("metadata: {name: x, labels: [a]}", "metadata.labels: must be a mapping, not list"),
        ("metadata: {name: x, labels: {app: 1}}", "metadata.labels.app: must be a string, not int"),
        (
            "metadata: {name: x, annotations: {app.kubernetes.io/x: true}}",
            r'metadata.annotations\["app.kubernetes.io/x"\]: must be a string, not bool',
        ),
        ("metadata: {name: x, annotations: {a: {b: c}}}", "metadata.annotations.a: must be a string, not mapping"),
        ("metadata: {name: x, finalizers: a}", "metadata.finalizers: must be a list, not string"),
        ("metadata: {name: x, finalizers: [1]}", r"metadata.finalizers\[0\]: must be a string, not int"),
        ("metadata: {name: x, ownerReferences: [a]}", r"metadata.ownerReferences\[0\]: must be a mapping, not string"),
        (
            "metadata: {name: x, ownerReferences: [{kind: 1}]}",
            r"metadata.ownerReferences\[0\].kind: must be a string, not int",
        ),
        ("metadata: {name: x}\ndata: [a]", "data: must be a mapping, not list"),
        ("metadata: {name: x}\ndata: {port: 8080}", "data.port: must be a string, not int"),
        ("metadata: {name: x}\nbinaryData: {a: 1.5}", "binaryData.a: must be a string, not number"),
        ("metadata: {name: x}\nspec: [a]", "spec: must be a mapping, not list"),
        ("metadata: {name: x}\nstatus: on", "status: must be a mapping, not bool"),
    ],
)
def test_wrong_types_where_the_engine_reads_are_errors_naming_the_field(body: str, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^document 1: " + message + "$"):
        objects_from_yaml("apiVersion: v1\nkind: ConfigMap\n" + body + "\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: Secret\nstringData: {a: [1]}\n", "stringData.a: must be a string, not list"),
        ("apiVersion: v1\nkind: Secret\ndata: x\n", "data: must be a mapping, not string"),
        ("apiVersion: v1\nkind: Secret\ntype: 1\n", "type: must be a string, not int"),
        (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: {names: {kind: [a]}}\n",
            "spec.names.kind: must be a string, not list",
        ),
        (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: {versions: [{name: 1}]}\n",
            r"spec.versions\[0\].name: must be a string, not int",
        ),
        (
            "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {labels: {a: 1}}}]\n",
            r"items\[0\] \(of the List\): metadata.labels.a: must be a string, not int",
        ),
    ],
)
def test_kinds_the_engine_reads_more_of(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^document 1: " + message + "$"):
        objects_from_yaml(text)


def test_custom_resources_keep_their_own_spec_and_null_label_values_read_as_empty() -> None:
    text = "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t, labels: {a: }}\nspec: [1, 2]\n"
    assert objects_from_yaml(text) == [
        {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "t", "labels": {"a": ""}},
            "spec": [1, 2],
        }
    ]


def test_json_and_jsonnet_values_get_the_same_checks() -> None:
    with pytest.raises(ManifestError, match=r"^the object: metadata.labels.a: must be a string, not int$"):
        objects_from_json('{"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": 1}}}')
    with pytest.raises(ManifestError, match=r"^an output value: spec: a key must be a string, not int$"):
        flatten([{"apiVersion": "v1", "kind": "X", "spec": {1: "a"}}], where="an output value")
    with pytest.raises(ManifestError, match=r"^an output value: spec.b: a bytes is not JSON data$"):
        flatten([{"apiVersion": "v1", "kind": "X", "spec": {"b": b"x"}}], where="an output value")
