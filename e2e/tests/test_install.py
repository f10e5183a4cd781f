"""tasklease installed from its rendered Helm chart (issue 7): every object of the chart applied
with kubectl, the webhook and the operator running under the chart's own ServiceAccounts (so its
RBAC is all they have), the webhook reached through its Service and its self-managed caBundle.
Then the scenarios that matter to a cluster admin: a static secret refused, a delegated task
issued, its Job admitted and run, everything revoked when it ends, and a delegation beyond the
delegator refused."""

import json
import urllib.request

import pytest

from install import installed_from_chart

pytestmark = pytest.mark.kubesim_only

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
    lease = cluster.kubectl_json("get", "lease", "tasklease-operator", "-n", inst.namespace)
    assert lease["spec"]["holderIdentity"] == "tasklease-operator-local"


def test_a_pod_with_a_static_secret_is_refused_through_the_service(installed):
    cluster, _ = installed
    ns, _ = team(cluster, "carol")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static", "namespace": ns},
           "spec": {"containers": [{"name": "agent", "image": "registry.example.com/agent:1",
                                    "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                                        "name": "keys", "key": "api"}}}]}]}}
    r = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
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
