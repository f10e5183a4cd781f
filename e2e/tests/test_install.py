"""tasklease installed from its Helm chart with `helm install` (issue 7; on the real control
plane as well as on kubesim, issue 15): every object of the chart in the cluster, the webhook and
the operator running under the chart's own ServiceAccounts (so its RBAC is all they have), the
webhook reached through its Service and its self-managed caBundle, the operator's replicas
electing a leader on the chart's Lease. Then the scenarios that matter to a cluster admin: a
static secret refused, a delegated task issued, its Job admitted and run, everything revoked when
it ends, and a delegation beyond the delegator refused; and last `helm upgrade` and
`helm uninstall`."""

import json
import urllib.request

import pytest

from install import installed_from_chart
from realcluster import host_ip

RULES = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["billing-config"],
          "verbs": ["get", "update"]}]


@pytest.fixture(scope="module")
def installed():
    with installed_from_chart(prefix="tasklease-install-") as (cluster, inst):
        yield cluster, inst


def team(cluster, user, verbs=("get", "update")):
    """An enforced namespace and a user who may create AgentTasks there, holds `verbs` on
    configmaps and may create Jobs (a task's workload runs as one); returns (namespace, the user's
    token)."""
    ns = cluster.namespace("team", labels={"tasklease.io/enforcement": "enforce"})
    token = cluster.add_user(user, groups=["devs"])
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "tasks", "namespace": ns},
                   "rules": [{"apiGroups": ["tasklease.io"], "resources": ["agenttasks"],
                              "verbs": ["get", "list", "watch", "create", "patch"]},
                             {"apiGroups": [""], "resources": ["configmaps"],
                              "verbs": list(verbs)},
                             {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "tasks", "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "tasks"},
                   "subjects": [{"kind": "User", "name": user,
                                 "apiGroup": "rbac.authorization.k8s.io"}]})
    cluster.apply({"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentPolicy",
                   "metadata": {"name": f"policy-{ns}"},
                   "spec": {"match": {"namespaces": [ns], "agents": ["refactor-*"]},
                            "allow": {"maxTTL": "1h", "credentialTypes": ["ServiceAccountToken"],
                                      "rules": RULES, "workload": {"podSecurity": "baseline"}}}})
    return ns, token


def task(name, workload=True):
    spec = {"agent": "refactor-bot", "purpose": "install e2e",
            "context": {"tool": "git", "environment": "staging", "dataSensitivity": "internal"},
            "ttl": "30m", "scope": {"rules": RULES}, "credential": {"type": "ServiceAccountToken"}}
    if workload:
        spec["workload"] = {"template": {
            "metadata": {"annotations": {"kubesim.tasklease.io/run-seconds": "2"}},
            "spec": {"containers": [{"name": "agent", "image": "registry.example.com/agent:1"}]}}}
    return {"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentTask",
            "metadata": {"name": name}, "spec": spec}


def get_task(cluster, ns, name):
    return cluster.kubectl_json("get", "agenttask", name, "-n", ns, "-o", "json")


def test_every_rendered_object_is_in_the_cluster(installed):
    cluster, inst = installed
    for obj in inst.objects:
        kind, meta = obj["kind"], obj["metadata"]
        args = ["get", kind, meta["name"], "-o", "name"]
        if kind not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            args += ["-n", meta.get("namespace", inst.namespace)]
        assert cluster.kubectl(*args).stdout.strip(), f"{kind} {meta['name']} missing"


def test_the_webhook_manages_its_certificate_and_the_operator_leads(installed):
    cluster, inst = installed
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        hooks = cluster.kubectl_json("get", kind, "tasklease")["webhooks"]
        assert hooks and all(h["clientConfig"].get("caBundle") for h in hooks)
    secret = cluster.kubectl_json("get", "secret", "tasklease-webhook-tls", "-n", inst.namespace)
    # Removed with the chart: owned by the webhook configuration it serves.
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "ValidatingWebhookConfiguration"
    # The certificate's state is on /metrics (docs/operations.md alerts on it).
    with urllib.request.urlopen(
            f"http://127.0.0.1:{inst.webhook_metrics_port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert "tasklease_webhook_certificate_" in metrics, metrics[:2000]



def test_the_webhook_is_reached_through_its_service_at_its_pods_address(installed):
    """On the real control plane the endpoint controllers name the webhook pod's address (our
    KWOK stage gives it this machine's) and its container port, where the process listens; on
    kubesim the installation writes the same Endpoints."""
    cluster, inst = installed
    eps = cluster.kubectl_json("get", "endpoints", "tasklease-webhook", "-n", inst.namespace)
    subset = eps["subsets"][0]
    assert [a["ip"] for a in subset["addresses"]] == [host_ip()]
    assert {p["name"]: p["port"] for p in subset["ports"]} == {
        "https": inst.webhook_port, "metrics": inst.webhook_metrics_port}
    if inst.has_pods:
        pods = cluster.kubectl_json("get", "pods", "-n", inst.namespace, "-l",
                                    "app.kubernetes.io/component=webhook")["items"]
        assert [p["status"]["podIP"] for p in pods] == [host_ip()]
        assert [a["targetRef"]["name"] for a in subset["addresses"]] == \
            [p["metadata"]["name"] for p in pods]
        assert pods[0]["spec"]["nodeName"] == cluster.control_plane.info["node"]


def operator_leader(cluster, inst):
    """The operator pod the chart's Lease names, once one of the installation's operators
    holds it."""
    names = {b.pod for b in inst.of_component("operator")}
    return cluster.wait_for(lambda: (lambda h: h if h in names else None)(
        ((inst.lease() or {}).get("spec") or {}).get("holderIdentity")),
        timeout=60, what="an operator replica to hold the chart's Lease")


def test_the_operator_replicas_elect_one_leader_on_the_charts_lease(installed):
    cluster, inst = installed
    replicas = inst.deployment("operator")["spec"]["replicas"]
    operators = inst.of_component("operator")
    assert replicas == 2 and len(operators) == replicas
    leader = operator_leader(cluster, inst)
    for op in operators:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.port}/metrics", timeout=5) as r:
            leading = [line for line in r.read().decode().splitlines()
                       if line.startswith("tasklease_operator_leader ")]
        # The standby has not led yet: the gauge has no sample there, or 0.
        assert leading == ["tasklease_operator_leader 1"] if op.pod == leader else \
            leading in ([], ["tasklease_operator_leader 0"]), (op.pod, leading)
    # The leader is killed without a chance to give the Lease up: the standby takes it over when
    # the Lease expires, and reconciles; the killed one comes back (as the kubelet restarts a
    # container) as the standby.
    inst.operator.kill()
    new = cluster.wait_for(lambda: (lambda h: h if h not in (None, leader) else None)(
        ((inst.lease() or {}).get("spec") or {}).get("holderIdentity")),
        timeout=90, what="the standby to take the Lease over")
    assert new in {op.pod for op in operators}
    ns, token = team(cluster, "erin")
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(task("after-failover", False)),
                        token=token)
    assert r.returncode == 0, r.stderr
    cluster.wait_for(lambda: (get_task(cluster, ns, "after-failover").get("status") or {}).get(
        "phase") == "Active", timeout=60, what="the new leader to issue the task")
    inst.sync()
    assert all(op.running() for op in inst.of_component("operator"))
    assert operator_leader(cluster, inst) == new


def secret_pod(ns):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static", "namespace": ns},
            "spec": {"containers": [{"name": "agent", "image": "registry.example.com/agent:1",
                                     "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                                         "name": "keys", "key": "api"}}}]}]}}


def test_a_pod_with_a_static_secret_is_refused_through_the_service(installed):
    cluster, _ = installed
    ns, _ = team(cluster, "carol")
    r = cluster.kubectl("apply", "-f", "-", input=json.dumps(secret_pod(ns)), check=False)
    assert r.returncode != 0
    assert "TL001" in r.stderr and "spec.containers[0].env[0]" in r.stderr, r.stderr


def test_a_delegated_task_is_issued_its_job_runs_and_everything_is_revoked(installed):
    cluster, inst = installed
    ns, token = team(cluster, "alice")
    body = task("refactor-one")
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), token=token)
    assert r.returncode == 0, r.stderr
    t = get_task(cluster, ns, "refactor-one")
    requested_by = json.loads(t["metadata"]["annotations"]["tasklease.io/requested-by"])
    assert requested_by["username"] == "alice"

    cluster.wait_for(lambda: cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "tasklease.io/task=refactor-one", "-o", "name").stdout,
        timeout=60, what="the task's Job to get a pod past admission")
    done = cluster.wait_for(
        lambda: (lambda s: s if s.get("credential", {}).get("revokedAt") else None)(
            get_task(cluster, ns, "refactor-one").get("status") or {}),
        timeout=90, what="revocation after the Job finished")
    assert done["phase"] == "Succeeded"
    assert done["delegation"]["verified"] is True
    # The Job ran on the node (KWOK's on the real control plane) under the task's identity.
    job_pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l",
                                    "tasklease.io/task=refactor-one")["items"]
    assert job_pods and all(p["status"]["phase"] == "Succeeded" and p["spec"]["nodeName"]
                            for p in job_pods)
    assert {p["spec"]["serviceAccountName"] for p in job_pods} == \
        {done["credential"]["serviceAccountName"]}
    left = cluster.kubectl("get", "serviceaccounts,roles,rolebindings,secrets", "-n", ns, "-l",
                           "tasklease.io/task=refactor-one", "-o", "name").stdout.strip()
    assert left == ""
    # The chart's RBAC sufficed: neither component was refused anything.
    for name, path in inst.logs().items():
        text = open(path, errors="replace").read()
        assert "forbidden" not in text.lower(), f"{name} was refused something:\n{text[-3000:]}"


def test_a_task_beyond_the_delegators_permissions_is_refused(installed):
    cluster, _ = installed
    ns, token = team(cluster, "dave", verbs=("get",))
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(task("too-much", False)),
                        token=token, check=False)
    assert r.returncode != 0
    assert "update" in r.stderr and "configmaps" in r.stderr, r.stderr


# ---- last: the chart upgraded, then uninstalled ----

def ca_bundles(cluster):
    return {kind: [h["clientConfig"].get("caBundle") for h in
                   cluster.kubectl_json("get", kind, "tasklease")["webhooks"]]
            for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")}


def test_helm_upgrade_rolls_the_webhook_and_keeps_its_ca_bundle(installed):
    cluster, inst = installed
    before = ca_bundles(cluster)
    old_pods = {b.pod for b in inst.of_component("webhook")}
    # A new argument rolls the webhook's Deployment (a new pod, a new process under it); the
    # timeout changes the webhook configurations, whose caBundle the webhook wrote, not helm.
    inst.upgrade("webhook.logLevel=debug", "webhook.timeoutSeconds=7")
    assert helm_status(inst)["info"]["status"] == "deployed"
    assert ca_bundles(cluster) == before
    hooks = cluster.kubectl_json("get", "validatingwebhookconfiguration", "tasklease")["webhooks"]
    assert 7 in [h["timeoutSeconds"] for h in hooks]
    if inst.has_pods:
        assert {b.pod for b in inst.of_component("webhook")}.isdisjoint(old_pods)
    assert "--log-level=debug" in inst.webhook.args
    ns, _ = team(cluster, "frank")
    r = cluster.kubectl("apply", "-f", "-", input=json.dumps(secret_pod(ns)), check=False)
    assert r.returncode != 0 and "TL001" in r.stderr, r.stderr


def helm_status(inst):
    return json.loads(inst.helm("status", inst.release, "-o", "json").stdout)


def test_helm_uninstall_removes_the_chart_and_its_processes(installed):
    cluster, inst = installed
    ns, _ = team(cluster, "grace")
    inst.uninstall()
    assert inst.processes == {}
    assert inst.helm("status", inst.release, check=False).returncode != 0
    for kind, name in (("validatingwebhookconfiguration", "tasklease"),
                       ("mutatingwebhookconfiguration", "tasklease"),
                       ("clusterrole", "tasklease-operator"),
                       ("deployment", "tasklease-webhook"), ("service", "tasklease-webhook")):
        args = ["get", kind, name, "--ignore-not-found", "-o", "name"]
        if kind in ("deployment", "service"):
            args += ["-n", inst.namespace]
        assert cluster.kubectl(*args).stdout.strip() == "", f"{kind} {name} left behind"
    # The webhook's certificate Secret was owned by its configuration: garbage-collected.
    cluster.wait_for(lambda: cluster.kubectl(
        "get", "secret", "tasklease-webhook-tls", "-n", inst.namespace, "--ignore-not-found",
        "-o", "name").stdout.strip() == "", timeout=60, what="the webhook's Secret to be collected")
    # helm keeps the CRDs of crds/ (and so the AgentTasks in them).
    assert cluster.kubectl("get", "crd", "agenttasks.tasklease.io", "-o", "name").stdout.strip()
    # Nothing checks pods any more.
    r = cluster.kubectl("apply", "-f", "-", input=json.dumps(secret_pod(ns)))
    assert r.returncode == 0
