"""Fault injection, switched at runtime: each kind is observed by a client."""

import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kubesim_only(reason="kubesim's fault injection and its admin API")


def cm(name):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": "v"})


def test_error_rate_per_verb_and_resource_returns_chosen_code(private_cluster):
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    c.set_faults({"seed": 7, "errors": [{"verbs": ["create"], "resources": ["configmaps"],
                                         "rate": 1.0, "code": 503}]})
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map(ns, cm("x"))
    assert e.value.status == 503
    # Other verbs and resources are untouched.
    v1.list_namespaced_config_map(ns)
    v1.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s")))
    c.clear_faults()
    v1.create_namespaced_config_map(ns, cm("x"))


def test_partial_error_rate_is_seeded_and_repeats(private_cluster):
    c = private_cluster
    ns = c.namespace()

    def run():
        c.set_faults({"seed": 42, "errors": [{"verbs": ["get"], "resources": ["namespaces"],
                                              "rate": 0.3, "code": 500}]})
        out = [c.request("GET", f"/api/v1/namespaces/{ns}")[0] for _ in range(40)]
        c.clear_faults()
        return out
    first, second = run(), run()
    assert first == second
    assert 0 < first.count(500) < 40
    assert set(first) == {200, 500}


def test_too_many_requests_carries_retry_after(private_cluster):
    c = private_cluster
    c.set_faults({"errors": [{"verbs": ["list"], "resources": ["pods"], "rate": 1.0, "code": 429,
                              "retryAfterSeconds": 3}]})
    status, headers, body = c.request("GET", "/api/v1/namespaces/default/pods")
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3


def test_error_after_the_write_leaves_the_write_done(private_cluster):
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    c.set_faults({"errors": [{"verbs": ["create"], "resources": ["configmaps"], "rate": 1.0,
                              "code": 500, "when": "after"}]})
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map(ns, cm("ambiguous"))
    assert e.value.status == 500
    c.clear_faults()
    assert v1.read_namespaced_config_map("ambiguous", ns).data == {"k": "v"}


def test_added_latency_slows_matching_requests(private_cluster):
    c = private_cluster
    c.set_faults({"latency": [{"verbs": ["get"], "resources": ["namespaces"], "ms": 400}]})
    t0 = time.monotonic()
    c.request("GET", "/api/v1/namespaces/default")
    slow = time.monotonic() - t0
    c.clear_faults()
    # Observed by the client as a delay at least as long as the one injected (no upper bound).
    assert slow >= 0.4
    assert c.set_faults({})["injected"]["latency"] == 0


def test_watch_streams_are_dropped(private_cluster):
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    c.set_faults({"watchDrop": {"resources": ["configmaps"], "afterSeconds": 1}})
    t0 = time.monotonic()
    events = list(watch.Watch().stream(v1.list_namespaced_config_map, ns, timeout_seconds=30))
    elapsed = time.monotonic() - t0
    c.clear_faults()
    assert elapsed < 25, "the stream should have been cut by the fault, not the 30 s timeout"
    assert [e["object"].metadata.name for e in events] == ["kube-root-ca.crt"]


def test_watch_resume_is_forced_to_410(private_cluster):
    c = private_cluster
    v1 = c.core()
    ns = c.namespace()
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    c.set_faults({"watchExpire": {"resources": ["configmaps"], "rate": 1.0}})
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                                      timeout_seconds=5):
            pass
    assert e.value.status == 410
    # A watch without a resourceVersion (a fresh list+watch) is not affected.
    events = list(watch.Watch().stream(v1.list_namespaced_config_map, ns, timeout_seconds=1))
    assert events
    c.clear_faults()


def test_bad_fault_configuration_is_refused_naming_the_field(private_cluster):
    c = private_cluster
    status, _, out = c.request("PUT", "/kubesim/faults", {"errors": [{"rate": 2}]},
                               token=c.admin_token)
    assert status == 400 and "errors[0].rate" in out["message"]
    status, _, out = c.request("PUT", "/kubesim/faults", {"errors": [{"verbs": ["fetch"]}]},
                               token=c.admin_token)
    assert status == 400 and "errors[0].verbs" in out["message"]


def test_admin_api_requires_system_masters(private_cluster):
    c = private_cluster
    token = c.add_user("mallory")
    status, _, _ = c.request("PUT", "/kubesim/faults", {}, token=token)
    assert status == 403
