"""The official Python client against the cluster: watch order and resumption, 410 Expired,
409 Conflict, the status subresource and generation, and pagination."""

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def cm(name, data=None, labels=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels),
                              data=data or {"k": "v"})


def test_watch_from_resource_version_sees_every_change_in_order(cluster, ns):
    v1 = cluster.core()
    start_rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    expected = []
    for i in range(5):
        v1.create_namespaced_config_map(ns, cm(f"c{i}"))
        expected.append(("ADDED", f"c{i}"))
    for i in range(5):
        v1.patch_namespaced_config_map(f"c{i}", ns, {"data": {"k": f"v{i}"}})
        expected.append(("MODIFIED", f"c{i}"))
    for i in range(0, 5, 2):
        v1.delete_namespaced_config_map(f"c{i}", ns)
        expected.append(("DELETED", f"c{i}"))
    seen, rvs = [], []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=start_rv,
                       timeout_seconds=10):
        if ev["object"].metadata.name == "kube-root-ca.crt":
            continue
        seen.append((ev["type"], ev["object"].metadata.name))
        rvs.append(int(ev["object"].metadata.resource_version))
        if len(seen) == len(expected):
            w.stop()
    assert seen == expected
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


def test_watch_with_label_selector_reports_objects_leaving_it_as_deleted(cluster, ns):
    v1 = cluster.core()
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, cm("sel", labels={"team": "a"}))
    v1.patch_namespaced_config_map("sel", ns, {"metadata": {"labels": {"team": "b"}}})
    seen = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns, label_selector="team=a",
                       resource_version=rv, timeout_seconds=5):
        seen.append(ev["type"])
        if len(seen) == 2:
            w.stop()
    assert seen == ["ADDED", "DELETED"]


@pytest.mark.kubesim_only(reason="compaction on demand (kubesim's admin API)")
def test_watch_from_compacted_resource_version_gets_410_expired(private_cluster):
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    old_rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, cm("a"))
    c.compact()
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=old_rv,
                                      timeout_seconds=5):
            pass
    assert e.value.status == 410


@pytest.mark.kubesim_only(reason="kubesim's bounded watch history (--watch-history)")
def test_bounded_history_expires_old_resource_versions_without_compaction(private_cluster):
    # private_cluster keeps 200 events per resource.
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    old_rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, cm("churn"))
    for i in range(210):
        v1.patch_namespaced_config_map("churn", ns, {"data": {"i": str(i)}})
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=old_rv,
                                      timeout_seconds=5):
            pass
    assert e.value.status == 410


def test_stale_update_gets_409_conflict(cluster, ns):
    v1 = cluster.core()
    first = v1.create_namespaced_config_map(ns, cm("c"))
    v1.patch_namespaced_config_map("c", ns, {"data": {"k": "newer"}})
    first.data = {"k": "stale"}
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_config_map("c", ns, first)
    assert e.value.status == 409
    assert "the object has been modified" in e.value.body
    assert '"reason":"Conflict"' in e.value.body


def _crd(cluster, group):
    cluster.apply({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    cluster.kubectl("wait", "--for=condition=Established", f"crd/gadgets.{group}")


def test_status_and_spec_updates_ignore_each_other_and_generation_tracks_spec(cluster, ns):
    group = "pyclient.example.com"
    _crd(cluster, group)
    api = cluster.custom()
    args = (group, "v1", ns, "gadgets")
    obj = api.create_namespaced_custom_object(*args, {
        "apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"},
        "spec": {"n": 1}, "status": {"ignored": True}})
    assert "status" not in obj  # status is not set on create when the subresource exists
    assert obj["metadata"]["generation"] == 1

    # A status update that also tries to change spec: only status changes.
    obj["spec"] = {"n": 99}
    obj["status"] = {"phase": "Ready"}
    after = api.replace_namespaced_custom_object_status(*args, "g", obj)
    assert after["spec"] == {"n": 1}
    assert after["status"] == {"phase": "Ready"}
    assert after["metadata"]["generation"] == 1

    # A spec update that also tries to change status: only spec changes, generation moves.
    after["spec"] = {"n": 2}
    after["status"] = {"phase": "Hacked"}
    after2 = api.replace_namespaced_custom_object(*args, "g", after)
    assert after2["spec"] == {"n": 2}
    assert after2["status"] == {"phase": "Ready"}
    assert after2["metadata"]["generation"] == 2

    # Metadata-only changes do not move generation.
    after3 = api.patch_namespaced_custom_object(*args, "g", {"metadata": {"labels": {"x": "y"}}})
    assert after3["metadata"]["generation"] == 2
    assert int(after3["metadata"]["resourceVersion"]) > int(after2["metadata"]["resourceVersion"])


def test_pagination_with_limit_and_continue_lists_every_object_once(cluster, ns):
    v1 = cluster.core()
    names = {f"p{i:03d}" for i in range(300)}
    for n in sorted(names):
        v1.create_namespaced_config_map(ns, cm(n, labels={"bulk": "yes"}))
    seen, token, pages = [], None, 0
    while True:
        page = v1.list_namespaced_config_map(ns, label_selector="bulk=yes", limit=70,
                                             _continue=token)
        pages += 1
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if pages == 1:
            # A write between pages does not change the snapshot being paged.
            v1.create_namespaced_config_map(ns, cm("zz-late", labels={"bulk": "yes"}))
        if not token:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 300
    assert set(seen) == names


def test_pagination_reports_remaining_item_count(cluster, ns):
    v1 = cluster.core()
    for i in range(25):
        v1.create_namespaced_config_map(ns, cm(f"r{i:02d}"))
    page = v1.list_namespaced_config_map(ns, limit=10)
    # 25 created plus kube-root-ca.crt.
    assert page.metadata.remaining_item_count == 16
