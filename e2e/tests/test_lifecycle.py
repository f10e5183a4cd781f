"""Deletion semantics: finalizers hold deletion, ownerReferences cascade (background,
foreground, orphan), and namespaces terminate with their content."""

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def cm(name, owner=None, finalizers=None):
    md = client.V1ObjectMeta(name=name, finalizers=finalizers)
    if owner is not None:
        md.owner_references = [client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid,
            block_owner_deletion=True)]
    return client.V1ConfigMap(metadata=md, data={"k": "v"})


def gone(v1, name, ns):
    try:
        v1.read_namespaced_config_map(name, ns)
        return False
    except ApiException as e:
        return e.status == 404


def test_finalizer_holds_deletion_until_removed(cluster, ns):
    v1 = cluster.core()
    v1.create_namespaced_config_map(ns, cm("held", finalizers=["example.com/hold"]))
    v1.delete_namespaced_config_map("held", ns)
    obj = v1.read_namespaced_config_map("held", ns)
    assert obj.metadata.deletion_timestamp is not None
    assert obj.metadata.finalizers == ["example.com/hold"]
    # Deleting again changes nothing and still answers.
    v1.delete_namespaced_config_map("held", ns)
    # No new finalizers on an object being deleted.
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": ["example.com/hold",
                                                                                "example.com/more"]}})
    assert e.value.status == 422
    v1.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    cluster.wait_for(lambda: gone(v1, "held", ns), what="held to disappear")


def test_deleting_owner_removes_dependents_in_background(cluster, ns):
    v1 = cluster.core()
    owner = v1.create_namespaced_config_map(ns, cm("owner"))
    for i in range(3):
        v1.create_namespaced_config_map(ns, cm(f"dep{i}", owner=owner))
    v1.delete_namespaced_config_map("owner", ns)
    cluster.wait_for(lambda: all(gone(v1, f"dep{i}", ns) for i in range(3)),
                     what="dependents to be collected")


def test_foreground_deletion_removes_dependents_before_owner(cluster, ns):
    v1 = cluster.core()
    owner = v1.create_namespaced_config_map(ns, cm("owner"))
    v1.create_namespaced_config_map(ns, cm("dep", owner=owner, finalizers=["example.com/slow"]))
    v1.delete_namespaced_config_map("owner", ns, propagation_policy="Foreground")
    held = v1.read_namespaced_config_map("owner", ns)
    assert "foregroundDeletion" in held.metadata.finalizers
    cluster.wait_for(lambda: v1.read_namespaced_config_map("dep", ns).metadata.deletion_timestamp,
                     what="dependent to start deleting")
    assert not gone(v1, "owner", ns)
    v1.patch_namespaced_config_map("dep", ns, {"metadata": {"finalizers": None}})
    cluster.wait_for(lambda: gone(v1, "owner", ns), what="owner to go after its dependent")


def test_orphan_deletion_keeps_dependents_without_owner_reference(cluster, ns):
    v1 = cluster.core()
    owner = v1.create_namespaced_config_map(ns, cm("owner"))
    v1.create_namespaced_config_map(ns, cm("dep", owner=owner))
    v1.delete_namespaced_config_map("owner", ns, propagation_policy="Orphan")
    cluster.wait_for(lambda: gone(v1, "owner", ns), what="owner to go")
    dep = v1.read_namespaced_config_map("dep", ns)
    assert not dep.metadata.owner_references


def test_dependent_created_for_missing_owner_is_collected(cluster, ns):
    v1 = cluster.core()
    ghost = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ghost", uid="00000000-0000-0000-0000-000000000000"))
    v1.create_namespaced_config_map(ns, cm("orphaned", owner=ghost))
    cluster.wait_for(lambda: gone(v1, "orphaned", ns), what="dangling dependent to be collected")


def test_delete_preconditions_are_enforced(cluster, ns):
    v1 = cluster.core()
    obj = v1.create_namespaced_config_map(ns, cm("pre"))
    # kube-apiserver's words, which name the kind (not the resource as other conflicts do).
    for pre, why in (
            (client.V1Preconditions(uid="not-the-uid"),
             f"the UID in the precondition (not-the-uid) does not match the UID in record "
             f"({obj.metadata.uid}). The object might have been deleted and then recreated"),
            (client.V1Preconditions(resource_version="1"),
             f"the ResourceVersion in the precondition (1) does not match the ResourceVersion in "
             f"record ({obj.metadata.resource_version}). The object might have been modified")):
        with pytest.raises(ApiException) as e:
            v1.delete_namespaced_config_map("pre", ns,
                                            body=client.V1DeleteOptions(preconditions=pre))
        status = json.loads(e.value.body)
        assert (e.value.status, status["reason"], status["details"]) == (
            409, "Conflict", {"name": "pre", "kind": "ConfigMap"})
        assert status["message"] == f'Operation cannot be fulfilled on ConfigMap "pre": {why}'
    v1.delete_namespaced_config_map("pre", ns, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=obj.metadata.uid)))
    assert gone(v1, "pre", ns)


def test_namespace_deletion_removes_content_then_namespace(cluster):
    v1 = cluster.core()
    ns = cluster.namespace()
    v1.create_namespaced_config_map(ns, cm("a"))
    v1.create_namespaced_config_map(ns, cm("held", finalizers=["example.com/hold"]))
    v1.delete_namespace(ns)
    assert v1.read_namespace(ns).status.phase == "Terminating"
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map(ns, cm("late"))
    assert e.value.status == 403 and "being terminated" in e.value.body
    cluster.wait_for(lambda: gone(v1, "a", ns), what="content to be deleted")
    assert v1.read_namespace(ns).status.phase == "Terminating"  # held by the finalizer
    v1.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})

    def ns_gone():
        try:
            v1.read_namespace(ns)
            return False
        except ApiException as e:
            return e.status == 404
    cluster.wait_for(ns_gone, what="namespace to be removed")
