"""Simulated workloads: Jobs create pods through admission, pods run and finish, Jobs complete
or fail, and a pod waits for the Secret it mounts. kubesim simulates the node itself; on the real
control plane KWOK is the node, and our KWOK stage ends pods as kubesim's annotations say
(e2e/controlplane/kwok/stages.yaml), so the same tests run on both but the one on volumes."""

import json

import pytest


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
    assert p["spec"]["nodeName"] == (cluster.control_plane.info["node"] if cluster.control_plane
                                     else "kubesim-node")
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
    obj = cluster.kubectl_json("get", "job", "ok", "-n", ns)
    assert obj["status"]["succeeded"] == 1


def test_job_fails_after_backoff_limit(cluster, ns):
    cluster.apply(job("bad", exit_code="3", backoff=1), namespace=ns)
    cluster.kubectl("wait", "--for=condition=Failed", "job/bad", "-n", ns, "--timeout=30s")
    obj = cluster.kubectl_json("get", "job", "bad", "-n", ns)
    assert obj["status"]["failed"] == 2


@pytest.mark.kubesim_only(reason="kubesim's simulated kubelet mounts volumes (FailedMount); "
                                  "KWOK mounts none")
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


POD_SPEC = {
    "serviceAccountName": "default",
    "containers": [{"name": "c", "image": "busybox:1", "ports": [{"containerPort": 80}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "R", "valueFrom": {"resourceFieldRef": {
                                "resource": "limits.cpu"}}}]}],
    "volumes": [{"name": "s", "secret": {"secretName": "x"}},
                {"name": "m", "configMap": {"name": "y"}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                                                        {"configMap": {"name": "y"}}]}},
                {"name": "d", "downwardAPI": {"items": [
                    {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/tmp"}}]}
# What kube-apiserver v1.37 stores for POD_SPEC in a pod template (a Job's), found by creating it
# there: SetDefaults_PodSpec and its peers.
TEMPLATE_DEFAULTS = {
    "serviceAccountName": "default", "serviceAccount": "default", "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler", "securityContext": {},
    "terminationGracePeriodSeconds": 30,
    "containers": [{"name": "c", "image": "busybox:1", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {
                                "apiVersion": "v1", "fieldPath": "metadata.name"}}},
                            {"name": "R", "valueFrom": {"resourceFieldRef": {
                                "resource": "limits.cpu", "divisor": "0"}}}],
                    "resources": {}, "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}],
    "volumes": [{"name": "s", "secret": {"secretName": "x", "defaultMode": 420}},
                {"name": "m", "configMap": {"name": "y", "defaultMode": 420}},
                {"name": "p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}},
                    {"configMap": {"name": "y"}}]}},
                {"name": "d", "downwardAPI": {"defaultMode": 420, "items": [
                    {"path": "n", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}},
                {"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/tmp", "type": ""}}]}


def test_pods_and_templates_are_defaulted_as_kube_apiserver_defaults_them(cluster, ns):
    """The defaults tasklease's webhook rules see and its operator reads back (a credential
    volume's mode, a projected token's lifetime); a pod also gets what the Priority and
    DefaultTolerationSeconds admission plugins add, before any webhook sees it."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "defaults"},
           "spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="Never")}}}
    stored = cluster.kubectl_json("create", "-n", ns, "-f", "-", "--dry-run=server",
                                  input=json.dumps(job))
    assert stored["spec"]["template"]["spec"] == dict(TEMPLATE_DEFAULTS, restartPolicy="Never")
    assert {k: v for k, v in stored["spec"].items() if k not in ("template", "selector")} == {
        "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1,
        "manualSelector": False, "parallelism": 1, "podReplacementPolicy": "TerminatingOrFailed",
        "suspend": False}

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "defaults"}, "spec": POD_SPEC}
    spec = cluster.kubectl_json("create", "-n", ns, "-f", "-", "--dry-run=server",
                                input=json.dumps(pod))["spec"]
    # The ServiceAccount admission plugin's token volume, checked elsewhere (test_admission).
    token_volume = spec["volumes"].pop()
    assert token_volume["name"].startswith("kube-api-access-")
    for c in spec["containers"]:
        c.pop("volumeMounts")
    expected = dict(TEMPLATE_DEFAULTS, restartPolicy="Always", enableServiceLinks=True,
                    priority=0, preemptionPolicy="PreemptLowerPriority",
                    tolerations=[{"key": key, "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 300}
                                 for key in ("node.kubernetes.io/not-ready",
                                             "node.kubernetes.io/unreachable")])
    assert spec == expected
