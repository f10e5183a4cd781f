"""CRD validation ratcheting (Kubernetes 1.33, KEP-4008): after a CRD's schema tightens, objects
stored under the old schema can still be updated as long as the update leaves the now-invalid
values unchanged; a failed CEL rule on an unchanged value comes back as a warning; transition
rules (oldSelf) are enforced on every update; a changed value is validated in full."""

import copy
import uuid

import pytest

GROUP = "ratchet.tasklease.test"


def crd(plural, name_pattern, max_items):
    spec_schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": name_pattern},
            "tags": {"type": "array", "items": {"type": "string"},
                     "x-kubernetes-validations": [
                         {"rule": f"self.size() <= {max_items}", "message": "too many tags"}]},
            "owner": {"type": "string",
                      "x-kubernetes-validations": [
                          {"rule": "self == oldSelf", "message": "owner is immutable"}]},
            "size": {"type": "integer", "minimum": 1},
            "counter": {"type": "integer",
                        "x-kubernetes-validations": [
                            {"rule": "self > oldSelf", "message": "counter must grow"}]},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": plural.capitalize()[:-1],
                           "listKind": plural.capitalize()[:-1] + "List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "properties": {
                                       "spec": spec_schema,
                                       "status": {"type": "object",
                                                  "properties": {"note": {"type": "string"}}}}}}}]}}


@pytest.fixture
def kind(cluster):
    plural = "w" + uuid.uuid4().hex[:8] + "s"
    loose = crd(plural, "^[a-z]+$", 5)
    cluster.apply(loose)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=30s")
    yield plural, loose
    cluster.kubectl("delete", "crd", f"{plural}.{GROUP}", "--wait=false", check=False)


def path(ns, plural, name="", sub=""):
    return (f"/apis/{GROUP}/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")
            + (f"/{sub}" if sub else ""))


def tighten(cluster, plural):
    """The CRD now wants names of at most 3 letters and at most 1 tag."""
    url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{GROUP}"
    status, _, current = cluster.request("GET", url)
    assert status == 200, current
    tight = copy.deepcopy(current)
    tight["spec"] = crd(plural, "^[a-z]{1,3}$", 1)["spec"]
    status, _, out = cluster.request("PUT", url, tight)
    assert status == 200, out


def merge(cluster, url, patch):
    return cluster.request("PATCH", url, patch, content_type="application/merge-patch+json")


def warnings_of(headers):
    return headers.get_all("Warning") or []


def test_unchanged_invalid_values_do_not_block_an_update(cluster, ns, kind):
    plural, loose = kind
    obj = {"apiVersion": f"{GROUP}/v1", "kind": loose["spec"]["names"]["kind"],
           "metadata": {"name": "w1"},
           "spec": {"name": "abcdef", "tags": ["a", "b", "c"], "owner": "team-a", "size": 1}}
    status, _, out = cluster.request("POST", path(ns, plural), obj)
    assert status == 201, out
    tighten(cluster, plural)

    # A new object with the same values is refused: the schema did change.
    fresh = dict(obj, metadata={"name": "w2"})
    status, _, out = cluster.request("POST", path(ns, plural), fresh)
    assert status == 422, out
    assert "spec.name" in out["message"] and "too many tags" in out["message"]

    # Changing another field leaves name and tags as they were: accepted, and the failed rule
    # on the unchanged tags comes back as a warning.
    status, headers, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"size": 2}})
    assert status == 200, out
    assert out["spec"]["size"] == 2
    assert any("spec.tags" in w and "too many tags" in w for w in warnings_of(headers)), \
        warnings_of(headers)

    # A status write through the subresource is ratcheted the same way.
    status, _, out = merge(cluster, path(ns, plural, "w1", "status"), {"status": {"note": "ok"}})
    assert status == 200, out

    # A changed value is validated in full, even when it was invalid before too.
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"name": "ghijkl"}})
    assert status == 422, out
    assert "spec.name" in out["message"]
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"tags": ["a", "b"]}})
    assert status == 422 and "too many tags" in out["message"], out

    # The changed field itself must be valid: size below its minimum is refused.
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"size": 0}})
    assert status == 422 and "spec.size" in out["message"], out


def test_transition_rules_hold_whatever_else_is_unchanged(cluster, ns, kind):
    plural, loose = kind
    obj = {"apiVersion": f"{GROUP}/v1", "kind": loose["spec"]["names"]["kind"],
           "metadata": {"name": "w1"}, "spec": {"name": "abc", "owner": "team-a", "size": 1}}
    status, _, out = cluster.request("POST", path(ns, plural), obj)
    assert status == 201, out
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"owner": "team-b"}})
    assert status == 422 and "owner is immutable" in out["message"], out
    # An update that changes nothing else still passes the transition rule on the owner.
    status, headers, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"size": 3}})
    assert status == 200, out
    assert warnings_of(headers) == []
    # A transition rule runs on an unchanged value too: this one fails when counter stays.
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"counter": 1}})
    assert status == 200, out
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"size": 4}})
    assert status == 422 and "counter must grow" in out["message"], out
    status, _, out = merge(cluster, path(ns, plural, "w1"), {"spec": {"size": 4, "counter": 2}})
    assert status == 200, out


def test_a_value_typed_differently_is_a_change(cluster, ns, kind):
    """true and 1 compare equal in Python but are different JSON values: true where an integer
    is declared is refused although the stored value is 1."""
    plural, loose = kind
    obj = {"apiVersion": f"{GROUP}/v1", "kind": loose["spec"]["names"]["kind"],
           "metadata": {"name": "w1"}, "spec": {"name": "abc", "size": 1}}
    status, _, out = cluster.request("POST", path(ns, plural), obj)
    assert status == 201, out
    status, _, out = cluster.request(
        "PATCH", path(ns, plural, "w1"), b'{"spec":{"size":true}}',
        content_type="application/merge-patch+json")
    assert status == 422 and "spec.size" in out["message"], out
