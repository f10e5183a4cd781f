"""Delegation that cannot exceed the delegator (issue 6 acceptance, first half), with the real
tasklease-webhook registered as mutating and validating webhook for AgentTasks and real kubectl:
a task asking for more than its requester holds is refused naming each missing permission;
granted it, the task is admitted and stamped with the requester; the stamp and the spec cannot
be rewritten; a workload its requester could not run (no Jobs, objects they cannot read, a
template breaking the pod rules) is refused in any namespace (issue 14); the operator marks the
stamped delegation verified, pods the delegator makes under the task's ServiceAccount leave
`admitted` records in the webhook's evidence, and anyone else's are refused; where no webhook is
in the path, a forged stamp is not verified and a policy requiring verification denies the
task."""

import contextlib
import json
import os
import uuid

import pytest

from components import start_agenttask_webhook
from test_operator import GROUP, VERSION, Operator, get_task, wait_phase

REQUESTED_BY = "tasklease.io/requested-by"
SIGNATURE = "tasklease.io/requested-by-signature"
UPDATE_CONFIGMAPS = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"]}]


def start_webhook(cluster):
    return start_agenttask_webhook(cluster, "tasklease.io/delegation-e2e", "delegation-e2e-")


@pytest.fixture(scope="module")
def delegation(cluster):
    wh, own, selector = start_webhook(cluster)
    yield wh, own, selector
    wh.stop()
    cluster.kubectl("delete", "namespace", own, "--wait=false", check=False)


def team_namespace(cluster, selector):
    return cluster.namespace("deleg", labels={**selector, "tasklease.io/enforcement": "enforce"})


def developer(cluster, ns):
    """A user who may create AgentTasks in ns and only `get` configmaps; returns (name, token)."""
    user = f"dev-{uuid.uuid4().hex[:6]}"
    token = cluster.add_user(user, groups=["e2e-developers"])
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "task-author", "namespace": ns},
         "rules": [{"apiGroups": [GROUP], "resources": ["agenttasks"],
                    "verbs": ["get", "list", "create", "update", "patch"]},
                   {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "task-author", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "task-author"},
         "subjects": [{"kind": "User", "name": user}]}])
    return user, token


def grant_update_configmaps(cluster, ns, user):
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "configmap-editor", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "configmap-editor", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-editor"},
         "subjects": [{"kind": "User", "name": user}]}])


def task_manifest(name, rules=UPDATE_CONFIGMAPS, annotations=None, ttl="30m"):
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentTask", "metadata": {"name": name},
            "spec": {"agent": "refactor-bot", "purpose": "e2e: " + name,
                     "context": {"tool": "git", "dataSensitivity": "internal", "environment": "staging"},
                     "ttl": ttl, "scope": {"rules": rules},
                     "credential": {"type": "ServiceAccountToken"}}}
    if annotations:
        body["metadata"]["annotations"] = annotations
    return json.dumps(body)


@contextlib.contextmanager
def strict_operator(cluster, ns, keys_ns):
    """An AgentPolicy for ns that keeps the default requireVerifiedDelegation: true, and an
    operator reconciling ns that verifies stamps with the webhook's published keys."""
    policy = f"p-{ns}"
    cluster.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentPolicy", "metadata": {"name": policy},
                   "spec": {"match": {"namespaces": [ns], "agents": ["refactor-*"]},
                            "allow": {"maxTTL": "1h", "credentialTypes": ["ServiceAccountToken"],
                                      "rules": UPDATE_CONFIGMAPS}}})
    op = Operator(cluster, cluster.namespace("tlop"), ns,
                  ["--delegation-keys-namespace", keys_ns]).start()
    try:
        yield op, policy
    finally:
        op.stop()
        cluster.kubectl("delete", "agentpolicy", policy, check=False)
        cluster.kubectl("delete", "namespace", op.namespace, "--wait=false", check=False)


def grant(cluster, ns, user, name, rules):
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": ns}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "User", "name": user}]}])


def workload_manifest(name, template, rules=UPDATE_CONFIGMAPS):
    body = json.loads(task_manifest(name, rules))
    body["spec"]["workload"] = {"template": template}
    return json.dumps(body)


def create_as(cluster, ns, token, body):
    return cluster.kubectl("create", "-n", ns, "-f", "-", input=body, token=token, check=False)


def evidence(wh):
    if not os.path.exists(wh.evidence_file):
        return []
    return [json.loads(line) for line in open(wh.evidence_file) if line.strip()]


def test_a_delegation_never_exceeds_the_delegator_and_its_stamp_cannot_be_rewritten(cluster, delegation):
    wh, _, selector = delegation
    ns = team_namespace(cluster, selector)
    user, token = developer(cluster, ns)

    # Asking for update on configmaps while holding only get: refused, naming what is missing.
    res = create_as(cluster, ns, token, task_manifest("refactor"))
    assert res.returncode != 0, res
    assert "update on configmaps" in res.stderr, res.stderr
    assert "get on configmaps" not in res.stderr, res.stderr
    assert user in res.stderr
    assert get_task(cluster, ns, "refactor") is None
    rejected = [r for r in evidence(wh) if r["kind"] == "rejected" and r["task"]["namespace"] == ns]
    assert rejected and rejected[-1]["actor"] == user
    assert rejected[-1]["details"]["reason"] == "permissions"

    # Wildcards and privilege verbs are refused whatever the requester holds (the CRD's CEL rules
    # say so before the webhook is asked; the webhook refuses them too, for clusters without them).
    res = create_as(cluster, ns, token, task_manifest(
        "greedy", rules=[{"apiGroups": [""], "resources": ["*"], "verbs": ["get", "escalate"]}]))
    assert res.returncode != 0 and "wildcard" in res.stderr and "escalate" in res.stderr, res
    res = create_as(cluster, ns, token, task_manifest("short", ttl="5m"))
    assert res.returncode != 0 and "10m" in res.stderr, res

    # A stamp brought by the client is refused: only the webhook writes it.
    forged = {REQUESTED_BY: json.dumps({"username": "admin", "uid": "", "groups": ["system:masters"]})}
    res = create_as(cluster, ns, token, task_manifest("forged", annotations=forged))
    assert res.returncode != 0 and REQUESTED_BY in res.stderr

    # Granted the permission, the same task is admitted and the stamp names its requester.
    grant_update_configmaps(cluster, ns, user)
    res = create_as(cluster, ns, token, task_manifest("refactor"))
    assert res.returncode == 0, res
    task = get_task(cluster, ns, "refactor")
    stamp = json.loads(task["metadata"]["annotations"][REQUESTED_BY])
    assert stamp["username"] == user
    assert "e2e-developers" in stamp["groups"]
    assert json.loads(task["metadata"]["annotations"][SIGNATURE])["keyId"]
    delegated = [r for r in evidence(wh) if r["kind"] == "delegated" and r["task"]["name"] == "refactor"]
    assert delegated and delegated[-1]["actor"] == user

    # Rewriting the stamp is refused, for the requester and for a cluster admin alike.
    for as_token in (token, None):
        res = cluster.kubectl("annotate", "-n", ns, "agenttask", "refactor", "--overwrite",
                              f'{REQUESTED_BY}={{"username":"someone-else"}}', token=as_token, check=False)
        assert res.returncode != 0 and "can never be added, changed or removed" in res.stderr, res
    res = cluster.kubectl("annotate", "-n", ns, "agenttask", "refactor", f"{REQUESTED_BY}-", check=False)
    assert res.returncode != 0, res

    # The spec cannot change, but for completing the task.
    res = cluster.kubectl("patch", "-n", ns, "agenttask", "refactor", "--type=merge",
                          "-p", '{"spec":{"ttl":"2h"}}', token=token, check=False)
    assert res.returncode != 0 and ("spec.ttl" in res.stderr or "immutable" in res.stderr), res
    res = cluster.kubectl("patch", "-n", ns, "agenttask", "refactor", "--type=merge",
                          "-p", '{"spec":{"completed":true}}', token=token, check=False)
    assert res.returncode == 0, res
    assert get_task(cluster, ns, "refactor")["metadata"]["annotations"][REQUESTED_BY] == \
        task["metadata"]["annotations"][REQUESTED_BY]


def test_the_operator_verifies_the_stamp_and_pods_under_the_task_are_recorded(cluster, delegation):
    wh, keys_ns, selector = delegation
    ns = team_namespace(cluster, selector)
    user, token = developer(cluster, ns)
    grant_update_configmaps(cluster, ns, user)
    with strict_operator(cluster, ns, keys_ns) as (op, policy):
        assert create_as(cluster, ns, token, task_manifest("verified")).returncode == 0
        task = wait_phase(cluster, ns, "verified", ("Active", "Denied"))
        assert task["status"]["phase"] == "Active", task["status"]
        assert task["status"]["delegation"]["verified"] is True
        assert task["status"]["delegation"]["username"] == user
        assert task["status"]["policy"]["name"] == policy
        records = [r for r in op.evidence_records() if r["kind"] == "delegated"]
        assert records and records[-1]["details"]["verified"] is True and records[-1]["actor"] == user

        # A pod its delegator creates under the task's ServiceAccount is admitted and recorded
        # with the task.
        grant(cluster, ns, user, "pod-author", [{"apiGroups": [""], "resources": ["pods"],
                                                 "verbs": ["create"]}])
        sa = task["status"]["credential"]["serviceAccountName"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "agent", "labels": {"tasklease.io/task": "verified"}},
               "spec": {"serviceAccountName": sa, "automountServiceAccountToken": False,
                        "containers": [{"name": "agent", "image": "busybox"}],
                        "volumes": [{"name": "credential", "secret": {
                            "secretName": task["status"]["credential"]["secretName"]}}]}}
        res = create_as(cluster, ns, token, json.dumps(pod))
        assert res.returncode == 0, res
        admitted = [r for r in evidence(wh) if r["kind"] == "admitted" and r["task"]["namespace"] == ns]
        assert admitted, evidence(wh)[-3:]
        assert admitted[-1]["task"]["name"] == "verified"
        assert admitted[-1]["task"]["uid"] == task["metadata"]["uid"]
        assert admitted[-1]["details"]["object"] == "Pod/agent"

        # Anyone else who may create pods there, a cluster admin included, cannot borrow the
        # task's credential: refused, however the pod is labelled.
        pod["metadata"]["name"] = "borrowed"
        res = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(pod), check=False)
        assert res.returncode != 0, res
        assert "[TL008] spec.serviceAccountName" in res.stderr, res.stderr
        assert f'delegated by "{user}"' in res.stderr, res.stderr
        assert "[TL003] spec.volumes[0]" in res.stderr, res.stderr
        assert cluster.kubectl("get", "pod", "borrowed", "-n", ns, check=False).returncode != 0


def test_a_task_cannot_run_a_workload_its_requester_could_not(cluster, delegation):
    """A user who may create AgentTasks but not Jobs got a privileged pod in the host's
    namespaces with the node's / mounted, and, where no enforcement is on, pods reading Secrets
    and ConfigMaps they could not read: the operator ran the workload with its own rights. The
    workload is now checked as the scope is, in every namespace, whatever its mode."""
    wh, _, selector = delegation
    ns = cluster.namespace("deleg-open", labels=selector)  # no tasklease.io/enforcement label
    user = f"dev-{uuid.uuid4().hex[:6]}"
    token = cluster.add_user(user, groups=["e2e-developers"])
    billing = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["billing-config"],
                "verbs": ["get", "update"]}]
    grant(cluster, ns, user, "task-author",
          [{"apiGroups": [GROUP], "resources": ["agenttasks"], "verbs": ["get", "create"]}, *billing])
    agent = {"name": "agent", "image": "registry.example.com/agent:1"}

    hostile = {"spec": {"hostPID": True, "hostNetwork": True,
                        "containers": [{**agent, "securityContext": {"privileged": True},
                                        "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
                        "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}}
    res = create_as(cluster, ns, token, workload_manifest("hostile", hostile, billing))
    assert res.returncode != 0, res
    assert 'create on jobs (apiGroup "batch") (the Job that runs spec.workload)' in res.stderr, res.stderr
    assert get_task(cluster, ns, "hostile") is None
    rejected = [r for r in evidence(wh) if r["kind"] == "rejected" and r["task"]["namespace"] == ns]
    assert rejected and rejected[-1]["details"]["reason"] == "permissions"

    # Even one who may create Jobs lends a task nothing they cannot read themselves.
    grant(cluster, ns, user, "job-author", [{"apiGroups": ["batch"], "resources": ["jobs"],
                                              "verbs": ["create"]}])
    reads = {"spec": {"containers": [{**agent, "envFrom": [{"configMapRef": {"name": "payroll"}}]}]}}
    res = create_as(cluster, ns, token, workload_manifest("reads", reads, billing))
    assert res.returncode != 0, res
    assert ('get on configmaps (apiGroup "", resourceName "payroll") '
            "(read by spec.workload.template.spec.containers[0].envFrom[0])") in res.stderr, res.stderr

    # A static secret in the template is refused though this namespace enforces nothing.
    static = {"spec": {"containers": [{**agent, "env": [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}],
        "volumes": [{"name": "creds", "secret": {"secretName": "db"}}]}}
    res = create_as(cluster, ns, token, workload_manifest("static", static, billing))
    assert res.returncode != 0, res
    assert "whatever the namespace's enforcement mode" in res.stderr, res.stderr
    assert "[TL001] spec.workload.template.spec.containers[0].env[0]" in res.stderr, res.stderr
    assert "[TL003] spec.workload.template.spec.volumes[0]" in res.stderr, res.stderr

    # What the requester holds, the task may run; the record says what was checked for it.
    clean = {"spec": {"containers": [{**agent, "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
                      "volumes": [{"name": "cfg", "configMap": {"name": "billing-config"}}]}}
    res = create_as(cluster, ns, token, workload_manifest("clean", clean, billing))
    assert res.returncode == 0, res
    delegated = [r for r in evidence(wh) if r["kind"] == "delegated" and r["task"]["namespace"] == ns]
    assert delegated, evidence(wh)[-3:]
    checked = delegated[-1]["details"]["workload"]
    assert checked["rules"] == ["TL001", "TL002", "TL003", "TL004", "TL007"]
    assert [p["permission"] for p in checked["permissions"]] == [
        'create on jobs (apiGroup "batch")',
        'get on configmaps (apiGroup "", resourceName "billing-config")']


def test_without_the_webhook_a_forged_stamp_is_not_verified_and_a_strict_policy_denies(cluster, delegation):
    _, keys_ns, _ = delegation
    ns = cluster.namespace("unguarded")  # not labelled: no webhook in the path
    with strict_operator(cluster, ns, keys_ns):
        forged = {REQUESTED_BY: json.dumps({"groups": ["system:masters"], "uid": "", "username": "admin"}),
                  SIGNATURE: json.dumps({"issuedAt": "2026-01-01T00:00:00.000Z", "keyId": "0123456789abcdef",
                                         "name": "forged", "signature": "AAAA", "v": 1})}
        cluster.kubectl("create", "-n", ns, "-f", "-", input=task_manifest("forged", annotations=forged))
        task = wait_phase(cluster, ns, "forged", ("Active", "Denied"))
        assert task["status"]["phase"] == "Denied", task["status"]
        assert task["status"]["delegation"] == {"username": "admin", "uid": "", "groups": ["system:masters"],
                                                "verified": False}
        reason = task["status"]["policy"]["reason"]
        assert "is not verified" in reason and "unknown-key" in reason, reason
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_unanswered_access_reviews_refuse_the_task(private_cluster):
    """Fail closed: when the API server cannot answer the SubjectAccessReviews, the task is
    refused, never admitted on a guess."""
    wh, _, selector = start_webhook(private_cluster)
    try:
        ns = team_namespace(private_cluster, selector)
        user, token = developer(private_cluster, ns)
        grant_update_configmaps(private_cluster, ns, user)
        private_cluster.set_faults({"seed": 1, "errors": [
            {"verbs": ["create"], "resources": ["subjectaccessreviews"], "rate": 1.0, "code": 500}]})
        res = create_as(private_cluster, ns, token, task_manifest("refactor"))
        assert res.returncode != 0, res
        assert "SubjectAccessReviews unanswered" in res.stderr, res.stderr
        assert get_task(private_cluster, ns, "refactor") is None
        private_cluster.clear_faults()
        assert create_as(private_cluster, ns, token, task_manifest("refactor")).returncode == 0
    finally:
        wh.stop()
