"""Real kubectl v1.33 against the cluster: CRDs with printer columns, patch, delete, wait,
and `auth can-i` for a ServiceAccount token."""

import json
import threading
import time
import uuid

import pytest

from harness import sa_token


def widget_crd(group):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                ],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"}}},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}},
            }],
        },
    }


@pytest.fixture
def crd_group(cluster):
    group = f"k{uuid.uuid4().hex[:6]}.example.com"
    cluster.apply(widget_crd(group))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=20s")
    yield group
    cluster.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def widget(group, name, size=3, **spec):
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": dict(size=size, **spec)}


def test_get_shows_crd_printer_columns(cluster, ns, crd_group):
    cluster.apply(widget(crd_group, "w1", 3), namespace=ns)
    out = cluster.kubectl("get", f"widgets.{crd_group}", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "PHASE"]
    assert out[1].split() == ["w1", "3"]
    wide = cluster.kubectl("get", f"widgets.{crd_group}", "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "SIZE", "PHASE", "COLOR"]
    assert wide[1].split() == ["w1", "3", "red"]  # defaulted from the schema


def test_schema_violations_are_refused_with_field_causes(cluster, ns, crd_group):
    res = cluster.kubectl("apply", "-n", ns, "-f", "-", check=False,
                          input=json.dumps(widget(crd_group, "bad", 0, color="green")))
    assert res.returncode != 0
    assert "spec.size" in res.stderr and "greater than or equal to 1" in res.stderr
    assert 'Unsupported value: "green"' in res.stderr
    res = cluster.kubectl("apply", "-n", ns, "-f", "-", check=False,
                          input=json.dumps(widget(crd_group, "bad2", 2, extra=True)))
    assert res.returncode != 0
    assert 'unknown field "spec.extra"' in res.stderr


def test_patch_merge_updates_spec_and_bumps_generation(cluster, ns, crd_group):
    cluster.apply(widget(crd_group, "w1", 3), namespace=ns)
    cluster.kubectl("patch", f"widgets.{crd_group}", "w1", "-n", ns, "--type=merge",
                    "-p", '{"spec":{"size":7}}')
    obj = cluster.kubectl_json("get", f"widgets.{crd_group}", "w1", "-n", ns)
    assert obj["spec"]["size"] == 7
    assert obj["metadata"]["generation"] == 2


def test_delete_returns_once_object_is_gone(cluster, ns, crd_group):
    cluster.apply(widget(crd_group, "w1"), namespace=ns)
    cluster.kubectl("patch", f"widgets.{crd_group}", "w1", "-n", ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')

    release_started = threading.Event()

    def release():
        # While the finalizer holds it, the object stays, marked for deletion; kubectl delete
        # must keep waiting through that.
        cluster.wait_for(lambda: cluster.kubectl_json(
            "get", f"widgets.{crd_group}", "w1", "-n", ns)["metadata"].get("deletionTimestamp"),
            what="the deletion to be pending")
        time.sleep(1.5)
        release_started.set()
        cluster.kubectl("patch", f"widgets.{crd_group}", "w1", "-n", ns, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}')
    t = threading.Thread(target=release)
    t.start()
    cluster.kubectl("delete", f"widgets.{crd_group}", "w1", "-n", ns, "--timeout=20s")
    # The finalizer cannot have been removed before its removal started; the patch's own
    # process may still be exiting when delete returns, so that is not waited for.
    returned_after_release_began = release_started.is_set()
    t.join()
    assert returned_after_release_began, \
        "kubectl delete returned while the finalizer still held the object"
    res = cluster.kubectl("get", f"widgets.{crd_group}", "w1", "-n", ns, check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr


def test_wait_for_jsonpath_returns_when_status_is_set(cluster, ns, crd_group):
    cluster.apply(widget(crd_group, "w1"), namespace=ns)

    def set_status():
        time.sleep(1)
        cluster.kubectl("patch", f"widgets.{crd_group}", "w1", "-n", ns, "--subresource=status",
                        "--type=merge", "-p", '{"status":{"phase":"Ready"}}')
    t = threading.Thread(target=set_status)
    t.start()
    res = cluster.kubectl("wait", f"widgets.{crd_group}/w1", "-n", ns,
                          "--for=jsonpath={.status.phase}=Ready", "--timeout=20s")
    t.join()
    assert "condition met" in res.stdout


def test_auth_can_i_answers_per_rbac_for_service_account_token(cluster, ns):
    cluster.kubectl("create", "serviceaccount", "reader", "-n", ns)
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "cm-reader", "namespace": ns},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                              "verbs": ["get", "list"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "reader", "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "cm-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    token = sa_token(cluster, ns, "reader")["status"]["token"]

    def can_i(*args):
        res = cluster.kubectl("auth", "can-i", *args, "-n", ns, token=token, check=False)
        return res.stdout.strip()
    assert can_i("get", "configmaps") == "yes"
    assert can_i("list", "configmaps") == "yes"
    assert can_i("delete", "configmaps") == "no"
    assert can_i("get", "secrets") == "no"
    res = cluster.kubectl("auth", "can-i", "get", "configmaps", "-n", "default", token=token,
                          check=False)
    assert res.stdout.strip() == "no"
