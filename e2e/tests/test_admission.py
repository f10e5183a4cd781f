"""Admission webhooks registered in the cluster are called as kube-apiserver calls them."""

import json
import time
import uuid

import pytest

from fakewebhook import FakeWebhook, allow, deny
from realcluster import host_ip

ADM = "admissionregistration.k8s.io/v1"


@pytest.fixture(scope="module")
def hook():
    h = FakeWebhook().start()
    yield h
    h.stop()


@pytest.fixture
def scope(cluster):
    """A namespace with a unique label that the test's webhook configurations select, so that
    they never touch other tests; configurations are deleted afterwards."""
    key = f"t{uuid.uuid4().hex[:8]}"
    ns = cluster.namespace(labels={"admission-test": key})
    created = []

    def register(kind, name, webhooks):
        cluster.apply({"apiVersion": ADM, "kind": kind, "metadata": {"name": name},
                       "webhooks": webhooks})
        created.append((kind, name))
    yield ns, key, register
    for kind, name in created:
        cluster.kubectl("delete", kind.lower(), name, check=False)
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def webhook(name, key, client_config, failure="Fail", rules=None, object_selector=None, timeout=5):
    w = {"name": name, "clientConfig": client_config, "sideEffects": "None",
         "admissionReviewVersions": ["v1"], "failurePolicy": failure, "timeoutSeconds": timeout,
         "namespaceSelector": {"matchLabels": {"admission-test": key}},
         "rules": rules or [{"apiGroups": [""], "apiVersions": ["v1"],
                             "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]}
    if object_selector is not None:
        w["objectSelector"] = object_selector
    return w


def create_cm(cluster, ns, name, labels=None):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}
    if labels:
        body["metadata"]["labels"] = labels
    return cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body), check=False)


def test_url_webhook_denial_reaches_kubectl(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/deny"] = deny("no configmaps here")
    register("ValidatingWebhookConfiguration", f"deny-{key}",
             [webhook("deny.tasklease.test", key, {"url": hook.url("/deny"), "caBundle": hook.ca_bundle})])
    res = create_cm(cluster, ns, "c1")
    assert res.returncode != 0
    assert 'admission webhook "deny.tasklease.test" denied the request: no configmaps here' in res.stderr
    path, req = hook.reviews[-1]
    assert req["operation"] == "CREATE" and req["namespace"] == ns
    assert req["object"]["metadata"]["name"] == "c1"
    assert req["userInfo"]["username"]
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}


def test_warnings_reach_kubectl(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/warn"] = allow(["this configmap is watched"])
    register("ValidatingWebhookConfiguration", f"warn-{key}",
             [webhook("warn.tasklease.test", key, {"url": hook.url("/warn"), "caBundle": hook.ca_bundle})])
    res = create_cm(cluster, ns, "c1")
    assert res.returncode == 0, res
    assert "Warning: this configmap is watched" in res.stderr


def test_service_webhook_is_resolved_through_endpoints_and_certificate_checked(cluster, scope):
    ns, key, register = scope
    # Endpoints name a non-loopback address of this machine: the API server refuses loopback.
    good = FakeWebhook(dns_names=[f"hook.{ns}.svc"], host=host_ip()).start()
    wrong_name = FakeWebhook(dns_names=["somebody-else.svc"], host=host_ip()).start()
    try:
        good.handlers["/v"] = deny("seen through the service")
        wrong_name.handlers["/v"] = deny("should never be reached")
        for svc, h in (("hook", good), ("wrongname", wrong_name)):
            cluster.apply([
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns},
                 "spec": {"ports": [{"port": 443, "targetPort": "https", "name": "https"}]}},
                {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": svc, "namespace": ns},
                 "subsets": [{"addresses": [{"ip": host_ip()}],
                              "ports": [{"name": "https", "port": h.port}]}]}])
        register("ValidatingWebhookConfiguration", f"svc-{key}", [webhook(
            "svc.tasklease.test", key,
            {"service": {"name": "hook", "namespace": ns, "path": "/v", "port": 443},
             "caBundle": good.ca_bundle})])
        res = create_cm(cluster, ns, "c1")
        assert 'admission webhook "svc.tasklease.test" denied the request: seen through the service' \
            in res.stderr
        # A certificate not issued for wrongname.<ns>.svc fails verification: Fail rejects.
        register("ValidatingWebhookConfiguration", f"svc-{key}", [webhook(
            "svc.tasklease.test", key,
            {"service": {"name": "wrongname", "namespace": ns, "path": "/v", "port": 443},
             "caBundle": wrong_name.ca_bundle})])
        res = create_cm(cluster, ns, "c2")
        assert res.returncode != 0
        assert 'failed calling webhook "svc.tasklease.test"' in res.stderr
        assert not any(p == "/v" for p, _ in wrong_name.reviews)
    finally:
        good.stop()
        wrong_name.stop()


def test_service_port_is_found_in_endpoints_by_the_service_ports_name(cluster, scope):
    """kube-apiserver takes the Endpoints port named like the Service port (not like its
    targetPort); the port number there is what it dials."""
    ns, key, register = scope
    hook = FakeWebhook(dns_names=[f"named.{ns}.svc"], host=host_ip()).start()
    try:
        hook.handlers["/v"] = deny("reached by the service port's name")
        cluster.apply([
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named", "namespace": ns},
             "spec": {"ports": [{"port": 443, "targetPort": "container-port", "name": "web"}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "named", "namespace": ns},
             "subsets": [{"addresses": [{"ip": host_ip()}],
                          "ports": [{"name": "other", "port": 1},
                                    {"name": "web", "port": hook.port}]}]}])
        register("ValidatingWebhookConfiguration", f"named-{key}", [webhook(
            "named.tasklease.test", key,
            {"service": {"name": "named", "namespace": ns, "path": "/v", "port": 443},
             "caBundle": hook.ca_bundle})])
        res = create_cm(cluster, ns, "c1")
        assert "reached by the service port's name" in res.stderr
    finally:
        hook.stop()


def test_failure_policy_fail_rejects_and_ignore_admits_when_webhook_is_down(cluster, scope):
    ns, key, register = scope
    dead = "https://127.0.0.1:1/never"
    register("ValidatingWebhookConfiguration", f"down-{key}",
             [webhook("down.tasklease.test", key, {"url": dead, "caBundle": FakeWebhook().ca_bundle},
                      failure="Fail")])
    res = create_cm(cluster, ns, "c1")
    assert res.returncode != 0
    assert 'failed calling webhook "down.tasklease.test"' in res.stderr
    register("ValidatingWebhookConfiguration", f"down-{key}",
             [webhook("down.tasklease.test", key, {"url": dead}, failure="Ignore")])
    res = create_cm(cluster, ns, "c2")
    assert res.returncode == 0, res


def test_unverifiable_certificate_follows_failure_policy(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/allow"] = allow()
    other_ca = FakeWebhook().ca_bundle  # not the CA that signed hook's certificate
    register("ValidatingWebhookConfiguration", f"ca-{key}",
             [webhook("ca.tasklease.test", key, {"url": hook.url("/allow"), "caBundle": other_ca})])
    res = create_cm(cluster, ns, "c1")
    assert res.returncode != 0
    assert "failed calling webhook" in res.stderr
    register("ValidatingWebhookConfiguration", f"ca-{key}",
             [webhook("ca.tasklease.test", key, {"url": hook.url("/allow"), "caBundle": other_ca},
                      failure="Ignore")])
    assert create_cm(cluster, ns, "c2").returncode == 0


def test_namespace_and_object_selectors_exclude(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/deny-sel"] = deny("selected")
    register("ValidatingWebhookConfiguration", f"sel-{key}", [webhook(
        "sel.tasklease.test", key, {"url": hook.url("/deny-sel"), "caBundle": hook.ca_bundle},
        object_selector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]})])
    assert create_cm(cluster, ns, "c1").returncode != 0
    assert create_cm(cluster, ns, "c2", labels={"skip": "yes"}).returncode == 0
    other = cluster.namespace()  # not labelled: the namespaceSelector excludes it
    try:
        assert create_cm(cluster, other, "c3").returncode == 0
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_mutating_patch_is_applied_before_validation(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/mutate"] = lambda req: {"allowed": True, "patch": [
        {"op": "add", "path": "/metadata/labels", "value": {"stamped": "yes"}}]}
    hook.handlers["/require-stamp"] = lambda req: (
        {"allowed": True} if (req["object"]["metadata"].get("labels") or {}).get("stamped") == "yes"
        else {"allowed": False, "status": {"code": 403, "message": "not stamped"}})
    register("MutatingWebhookConfiguration", f"mut-{key}",
             [webhook("mut.tasklease.test", key, {"url": hook.url("/mutate"), "caBundle": hook.ca_bundle})])
    register("ValidatingWebhookConfiguration", f"val-{key}",
             [webhook("val.tasklease.test", key, {"url": hook.url("/require-stamp"),
                                                  "caBundle": hook.ca_bundle})])
    res = create_cm(cluster, ns, "c1")
    assert res.returncode == 0, res
    obj = cluster.kubectl_json("get", "configmap", "c1", "-n", ns)
    assert obj["metadata"]["labels"] == {"stamped": "yes"}


def test_webhook_sees_ephemeral_container_updates_as_pod_subresource(cluster, hook, scope):
    ns, key, register = scope
    hook.handlers["/eph"] = deny("no debugging here")
    register("ValidatingWebhookConfiguration", f"eph-{key}", [webhook(
        "eph.tasklease.test", key, {"url": hook.url("/eph"), "caBundle": hook.ca_bundle},
        rules=[{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                "resources": ["pods/ephemeralcontainers"]}])])
    cluster.kubectl("run", "p", "-n", ns, "--image=busybox", "--restart=Never")
    pod = cluster.kubectl_json("get", "pod", "p", "-n", ns)
    pod["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox"}]
    # The kubelet may write the pod's status between our GET and this PUT; pods allow an
    # unconditional update, so send none rather than race it (CI saw a 409 here).
    del pod["metadata"]["resourceVersion"]
    status, _, out = cluster.request("PUT", f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers", pod)
    assert status == 403, out
    assert out["message"] == 'admission webhook "eph.tasklease.test" denied the request: no debugging here'
    _, req = hook.reviews[-1]
    assert req["subResource"] == "ephemeralcontainers" and req["kind"]["kind"] == "Pod"


def test_a_job_makes_one_pod_while_its_first_pod_waits_for_admission(cluster, hook, scope):
    """The job controller must not create a second pod because the Job changed while the first
    pod's creation was still in admission (kube's job controller tracks expectations)."""
    ns, key, register = scope
    slow = allow()

    def slow_allow(request):
        time.sleep(0.6)
        return slow(request)

    hook.handlers["/slow"] = slow_allow
    register("ValidatingWebhookConfiguration", f"slow-{key}", [webhook(
        "slow.tasklease.test", key, {"url": hook.url("/slow"), "caBundle": hook.ca_bundle},
        rules=[{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["pods"]}])])
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "one", "namespace": ns},
           "spec": {"backoffLimit": 0, "template": {
               "metadata": {"annotations": {"kubesim.tasklease.io/run-seconds": "30"}},
               "spec": {"restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}]}}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(job))
    for i in range(3):  # each change makes the job controller sync the Job again
        cluster.kubectl("label", "job", "one", "-n", ns, f"touch={i}", "--overwrite")
    cluster.wait_for(lambda: cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=one")
                     ["items"], what="the Job's pod")
    time.sleep(2)  # room for a wrongly started second creation to finish
    assert len(cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=one")["items"]) == 1
