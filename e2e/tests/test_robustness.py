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


@pytest.mark.parametrize("ip,why", [
    ("127.0.0.1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    ("169.254.1.1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    ("224.0.0.5", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
])
def test_endpoints_refuse_addresses_of_the_api_servers_own_host(cluster, ns, ip, why):
    """An Endpoints address must not lead the API server (which proxies to it, and calls webhooks
    there) to itself or its node: kube-apiserver refuses these ranges, in ready and not-ready
    addresses alike."""
    body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": ip}],
                         "ports": [{"port": 443}]}]}
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/endpoints", body)
    assert status == 422, out
    assert out["details"]["causes"] == [{"reason": "FieldValueInvalid",
                                         "message": f'Invalid value: "{ip}": {why}',
                                         "field": "subsets[0].notReadyAddresses[0].ip"}]
    assert out["message"] == f'Endpoints "e" is invalid: subsets[0].notReadyAddresses[0].ip: ' \
                             f'Invalid value: "{ip}": {why}'
    body["subsets"][0]["notReadyAddresses"] = [{"ip": "192.0.2.11"}]
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/endpoints", body)[0] == 201


def test_bad_label_selector_is_400(cluster, ns):
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=%21%21bad")
    assert status == 400


# kube-apiserver's answer to a field label the kind does not have: kinds with field labels of
# their own say "not supported", in Job's words for Jobs, others name the two every kind has.
OTHER_KINDS = '"{}" is not a known field selector: only "metadata.name", "metadata.namespace"'


@pytest.mark.parametrize("path,field,message", [
    ("/api/v1/namespaces/{ns}/configmaps", "data.a", OTHER_KINDS),
    ("/apis/apps/v1/namespaces/{ns}/replicasets", "status.replicas", OTHER_KINDS),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", "rules", OTHER_KINDS),
    ("/api/v1/namespaces/{ns}/pods", "spec.containers", "field label not supported: {}"),
    ("/api/v1/namespaces/{ns}/secrets", "data", "field label not supported: {}"),
    ("/api/v1/nodes", "metadata.namespace", "field label not supported: {}"),
    ("/api/v1/namespaces", "metadata.namespace", "field label not supported: {}"),
    ("/apis/batch/v1/namespaces/{ns}/jobs", "spec.parallelism",
     'field label "{}" not supported for Job'),
])
def test_unsupported_field_selector_is_400_with_the_kinds_message(cluster, ns, path, field, message):
    status, _, out = cluster.request("GET", path.format(ns=ns) + f"?fieldSelector={field}%3Db")
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message.format(field))


def test_field_labels_of_other_kinds_and_old_names_select(cluster, ns):
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": ns},
                   "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/services?fieldSelector="
                                            "spec.type%3DClusterIP")
    assert status == 200 and [i["metadata"]["name"] for i in out["items"]] == ["s"]
    # spec.host is what old clients call spec.nodeName.
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/pods?fieldSelector="
                                            "spec.host%3Dnowhere")
    assert status == 200 and out["items"] == []


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
