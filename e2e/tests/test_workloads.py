"""Simulated workloads: Jobs create pods through admission, pods run and finish, Jobs complete
or fail, and a pod waits for the Secret it mounts."""

import json

import pytest

pytestmark = pytest.mark.kubesim_only


def job(name, run_seconds="0.5", exit_code="0", backoff=0, secret=None):
    spec = {"restartPolicy": "Never", "containers": [{"name": "agent", "image": "busybox"}]}
    if secret:
        spec["volumes"] = [{"name": "cred", "secret": {"secretName": secret}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "cred", "mountPath": "/cred"}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff, "template": {
                "metadata": {"annotations": {"kubesim.tasklease.io/run-seconds": run_seconds,
                                             "kubesim.tasklease.io/exit-code": exit_code}},
                "spec": spec}}}


def job_condition(cluster, ns, name):
    obj = cluster.kubectl_json("get", "job", name, "-n", ns)
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return c["type"]
    return None


def test_job_runs_a_pod_to_completion(cluster, ns):
    cluster.apply(job("ok"), namespace=ns)
    cluster.kubectl("wait", "--for=condition=Complete", "job/ok", "-n", ns, "--timeout=30s")
    pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=ok")["items"]
    assert len(pods) == 1
    p = pods[0]
    assert p["status"]["phase"] == "Succeeded"
    assert p["spec"]["nodeName"] == "kubesim-node"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
    obj = cluster.kubectl_json("get", "job", "ok", "-n", ns)
    assert obj["status"]["succeeded"] == 1


def test_job_fails_after_backoff_limit(cluster, ns):
    cluster.apply(job("bad", exit_code="3", backoff=1), namespace=ns)
    cluster.kubectl("wait", "--for=condition=Failed", "job/bad", "-n", ns, "--timeout=30s")
    obj = cluster.kubectl_json("get", "job", "bad", "-n", ns)
    assert obj["status"]["failed"] == 2


def test_pod_waits_for_the_secret_it_mounts(cluster, ns):
    cluster.apply(job("needs", secret="late-secret"), namespace=ns)
    cluster.wait_for(lambda: any(e["reason"] == "FailedMount" for e in cluster.kubectl_json(
        "get", "events", "-n", ns)["items"]), what="a FailedMount event")
    assert job_condition(cluster, ns, "needs") is None
    cluster.kubectl("create", "secret", "generic", "late-secret", "-n", ns, "--from-literal=k=v")
    cluster.kubectl("wait", "--for=condition=Complete", "job/needs", "-n", ns, "--timeout=30s")


def test_job_pod_creation_goes_through_admission(cluster, ns):
    # A pod under a ServiceAccount that does not exist is refused by the ServiceAccount
    # admission plugin; the Job records FailedCreate and makes no pod.
    body = job("nosa")
    body["spec"]["template"]["spec"]["serviceAccountName"] = "missing"
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body))
    cluster.wait_for(lambda: any(e["reason"] == "FailedCreate" and "missing" in e["message"]
                                 for e in cluster.kubectl_json("get", "events", "-n", ns)["items"]),
                     what="a FailedCreate event")
    assert cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=nosa")["items"] == []


def test_running_pod_deletion_is_graceful_then_complete(cluster, ns):
    cluster.kubectl("run", "srv", "-n", ns, "--image=nginx")
    cluster.wait_for(lambda: cluster.kubectl_json("get", "pod", "srv", "-n", ns)["status"]["phase"]
                     == "Running", what="pod running")
    cluster.kubectl("delete", "pod", "srv", "-n", ns, "--timeout=20s")
    res = cluster.kubectl("get", "pod", "srv", "-n", ns, check=False)
    assert "NotFound" in res.stderr
