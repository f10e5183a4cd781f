"""Malformed or invalid requests get 400/415/422 with a Status that says what is wrong; the
server keeps serving."""

import pytest


def test_malformed_json_is_400_bad_request(cluster, ns):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", "{not json")
    assert status == 400
    assert out["kind"] == "Status" and out["reason"] == "BadRequest"


def test_non_object_body_is_400(cluster, ns):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", "[1,2,3]")
    assert status == 400 and out["reason"] == "BadRequest"


def test_missing_name_is_422_with_cause(cluster, ns):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert status == 422
    assert out["reason"] == "Invalid"
    assert out["details"]["causes"][0] == {"reason": "FieldValueRequired",
                                           "message": "Required value: name or generateName is required",
                                           "field": "metadata.name"}


def test_invalid_name_is_422(cluster, ns):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                     {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "Not_Valid"}})
    assert status == 422 and "RFC 1123" in out["message"]


def test_namespace_mismatch_is_400(cluster, ns):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                     {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "x", "namespace": "elsewhere"}})
    assert status == 400
    assert out["message"] == ("the namespace of the provided object does not match the namespace "
                              "sent on the request")


def test_create_in_missing_namespace_is_404(cluster):
    status, _, out = cluster.request("POST", "/api/v1/namespaces/no-such-ns/configmaps",
                                     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert status == 404 and out["message"] == 'namespaces "no-such-ns" not found'


def test_duplicate_create_is_409_already_exists(cluster, ns):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}}
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)[0] == 201
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    assert status == 409
    assert out == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": 'configmaps "dup" already exists', "reason": "AlreadyExists",
                   "details": {"name": "dup", "kind": "configmaps"}, "code": 409}


def test_get_missing_is_404_with_exact_status(cluster, ns):
    status, _, out = cluster.request("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/nope")
    assert status == 404
    assert out["message"] == 'roles.rbac.authorization.k8s.io "nope" not found'
    assert out["details"] == {"name": "nope", "group": "rbac.authorization.k8s.io", "kind": "roles"}


def test_unsupported_patch_type_is_415(cluster, ns):
    cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}})
    status, _, out = cluster.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/p", "{}",
                                     content_type="text/plain")
    assert status == 415 and out["reason"] == "UnsupportedMediaType"


def test_bad_json_patch_is_rejected_and_object_unchanged(cluster, ns):
    cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "jp"},
                     "data": {"a": "1"}})
    status, _, out = cluster.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/jp",
                                     [{"op": "remove", "path": "/data/missing"}],
                                     content_type="application/json-patch+json")
    assert status == 422, out
    _, _, obj = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/jp")
    assert obj["data"] == {"a": "1"}


def test_oversized_body_is_413(cluster, ns):
    big = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"' + \
        "x" * (3 * 1024 * 1024 + 10) + '"}}'
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", big)
    assert status == 413


def test_bad_label_selector_is_400(cluster, ns):
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=%21%21bad")
    assert status == 400


def test_unsupported_field_selector_is_400(cluster, ns):
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps?fieldSelector=data.a%3Db")
    assert status == 400 and out["message"] == "field label not supported: data.a"


@pytest.mark.parametrize("body", ["", "null", '"string"', "123", '{"metadata": 5}',
                                  '{"metadata": {"name": 5}}', '{"metadata": {"labels": "x"}}',
                                  '{"metadata": {"name": "ok", "labels": {"a": 1}}}'])
def test_garbage_never_crashes_the_server(cluster, ns, body):
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    assert 400 <= status < 500, (status, out)
    assert cluster.request("GET", "/version")[0] == 200


def _random_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-5, 10**6)
    if kind == 3:
        return rng.choice(["", "x", "default", "a/b", "Not_Valid", "*", "\u00e9", "1m", "-"])
    if kind == 4:
        return rng.random()
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["metadata", "spec", "status", "name", "labels", "rules", "verbs", "data", "kind",
            "apiVersion", "containers", "webhooks", "subjects", "roleRef", "finalizers",
            "ownerReferences", "template", "selector", "items", "token", "resourceAttributes"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_random_bodies_on_every_verb_never_get_a_server_error(cluster, ns):
    import json
    import random
    rng = random.Random(1234)
    paths = [f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/pods",
             f"/api/v1/namespaces/{ns}/secrets", f"/api/v1/namespaces/{ns}/serviceaccounts",
             f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
             f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
             f"/apis/apps/v1/namespaces/{ns}/deployments", f"/apis/batch/v1/namespaces/{ns}/cronjobs",
             "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
             "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             "/apis/authorization.k8s.io/v1/subjectaccessreviews",
             "/apis/authentication.k8s.io/v1/tokenreviews",
             f"/api/v1/namespaces/{ns}/serviceaccounts/default/token"]
    # One object of each kind to update, patch and delete.
    cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"}})
    failures = []
    for i in range(300):
        path = rng.choice(paths)
        body = _random_value(rng)
        if isinstance(body, dict) and rng.random() < 0.5:
            body.setdefault("metadata", {"name": f"r{i}"})
        method = rng.choice(["POST", "PUT", "PATCH", "DELETE"])
        target = path if method == "POST" else (f"/api/v1/namespaces/{ns}/configmaps/target"
                                                 if rng.random() < 0.5 else path + "/target")
        ct = rng.choice(["application/json", "application/merge-patch+json",
                         "application/json-patch+json", "application/strategic-merge-patch+json",
                         "application/apply-patch+yaml"]) if method == "PATCH" else "application/json"
        suffix = "?fieldManager=fuzz" if method == "PATCH" else ""
        status, _, out = cluster.request(method, target + suffix, json.dumps(body), content_type=ct)
        if status >= 500:
            failures.append((method, target, ct, body, out))
    assert not failures, failures[:3]
    assert cluster.request("GET", "/version")[0] == 200
