"""DELETE of a collection (the deletecollection verb) as kube-apiserver does it: only the objects
of that kind in that namespace that the label selector (set-based included) matches; each one
deleted as a single DELETE would (a finalizer keeps it, marked); the answer is the List of them."""

import urllib.parse


def _cm(ns, name, labels=None, finalizers=None):
    meta = {"name": name, "namespace": ns, "labels": labels or {}}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_delete_collection_takes_only_what_a_set_based_selector_matches(cluster, ns):
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for name, labels, finalizers in (("a", {"t": "u1"}, None), ("b", {"t": "u2"}, None),
                                     ("c", {"t": "u3"}, None), ("d", {}, None),
                                     ("held", {"t": "u1"}, ["example.com/hold"])):
        status, _, out = cluster.request("POST", base, _cm(ns, name, labels, finalizers))
        assert status == 201, out
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "labels": {"t": "u1"}}})
    assert status == 201, out

    selector = urllib.parse.quote("t in (u1,u2)")
    status, _, out = cluster.request("DELETE", f"{base}?labelSelector={selector}",
                                     {"apiVersion": "v1", "kind": "DeleteOptions",
                                      "propagationPolicy": "Background"})
    assert status == 200, out
    assert out["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b", "held"]

    status, _, listed = cluster.request("GET", base)
    ours = ("a", "b", "c", "d", "held")  # not the namespace's kube-root-ca.crt
    left = {i["metadata"]["name"]: i for i in listed["items"] if i["metadata"]["name"] in ours}
    assert sorted(left) == ["c", "d", "held"]
    assert left["held"]["metadata"].get("deletionTimestamp")  # kept by its finalizer, marked
    assert "deletionTimestamp" not in left["c"]["metadata"]
    status, _, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets/a")
    assert status == 200  # another kind with the same label is not touched

    # The same selector now lists only what a finalizer holds; releasing it lets it go.
    status, _, listed = cluster.request("GET", f"{base}?labelSelector={selector}")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["held"]
    status, _, out = cluster.request("PATCH", f"{base}/held", {"metadata": {"finalizers": None}},
                                     content_type="application/merge-patch+json")
    assert status == 200, out
    status, _, _ = cluster.request("GET", f"{base}/held")
    assert status == 404


def test_delete_collection_is_authorized_as_its_own_verb(cluster, ns):
    """RBAC: `delete` alone does not allow deleting a collection."""
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "someone", "resourceAttributes": {
                  "namespace": ns, "verb": "deletecollection", "resource": "configmaps"}}}
    status, _, out = cluster.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/"
                                     f"{ns}/roles", {
                                         "apiVersion": "rbac.authorization.k8s.io/v1",
                                         "kind": "Role", "metadata": {"name": "deleter"},
                                         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                    "verbs": ["delete"]}]})
    assert status == 201, out
    status, _, out = cluster.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/"
                                     f"{ns}/rolebindings", {
                                         "apiVersion": "rbac.authorization.k8s.io/v1",
                                         "kind": "RoleBinding", "metadata": {"name": "deleter"},
                                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                     "kind": "Role", "name": "deleter"},
                                         "subjects": [{"kind": "User", "name": "someone"}]})
    assert status == 201, out
    status, _, out = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                     review)
    assert status == 201 and out["status"].get("allowed") is not True, out
    review["spec"]["resourceAttributes"]["verb"] = "delete"
    status, _, out = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                     review)
    assert status == 201 and out["status"]["allowed"] is True, out


def test_label_selected_lists_follow_label_changes_and_deletions(cluster, ns):
    """Selections by equality and `in` (which kubesim answers from a label index) see an
    object's labels as they are now: after a relabel, a label removed and a deletion."""
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for name, labels in (("a", {"t": "u1", "k": "x"}), ("b", {"t": "u2"}), ("c", {"t": "u1"})):
        status, _, out = cluster.request("POST", base, _cm(ns, name, labels))
        assert status == 201, out

    def names(selector):
        status, _, out = cluster.request(
            "GET", f"{base}?labelSelector={urllib.parse.quote(selector)}")
        assert status == 200, out
        return sorted(i["metadata"]["name"] for i in out["items"])

    assert names("t=u1") == ["a", "c"]
    assert names("t in (u1,u2),k=x") == ["a"]
    status, _, out = cluster.request("PATCH", f"{base}/a", {"metadata": {"labels": {"t": "u2"}}},
                                     content_type="application/merge-patch+json")
    assert status == 200, out
    assert names("t=u1") == ["c"]
    assert names("t==u2") == ["a", "b"]
    status, _, out = cluster.request("PATCH", f"{base}/a", {"metadata": {"labels": {"k": None}}},
                                     content_type="application/merge-patch+json")
    assert status == 200, out
    assert names("t in (u1,u2),k=x") == []
    assert names("t in (u1,u2),k!=x") == ["a", "b", "c"]
    status, _, _ = cluster.request("DELETE", f"{base}/c")
    assert status == 200
    assert names("t in (u1,u2)") == ["a", "b"]
    assert names("t in (u3)") == []
