"""The tasklease CRDs (crds/) are accepted by the cluster and their schemas and CEL rules hold:
required fields, enums, patterns, bounds, defaults, spec immutability, printer columns."""

import json
import os

import pytest

from harness import ROOT


@pytest.fixture(scope="module")
def crds(cluster):
    cluster.kubectl("apply", "-f", os.path.join(ROOT, "crds"))
    for name in ("agenttasks", "agentpolicies", "identityexceptions"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}.tasklease.io",
                        "--timeout=30s")
    return cluster


def task(name="t1", **spec):
    base = {"agent": "refactor-bot", "purpose": "Refactor billing",
            "context": {"tool": "git", "dataSensitivity": "internal", "environment": "staging"},
            "ttl": "30m",
            "scope": {"rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                 "resourceNames": ["billing-config"], "verbs": ["get", "update"]}]}}
    base.update(spec)
    return {"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentTask",
            "metadata": {"name": name}, "spec": base}


def create(cluster, ns, obj):
    return cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def test_valid_task_is_accepted_with_defaults(crds, ns):
    res = create(crds, ns, task())
    assert res.returncode == 0, res
    obj = crds.kubectl_json("get", "agenttask", "t1", "-n", ns)
    assert obj["spec"]["credential"] == {"type": "ServiceAccountToken"}
    assert obj["spec"]["completed"] is False


def test_short_name_category_and_printer_columns(crds, ns):
    create(crds, ns, task())
    head = crds.kubectl("get", "at", "-n", ns).stdout.splitlines()[0].split()
    assert head == ["NAME", "PHASE", "AGENT", "TOOL", "EXPIRES", "REVOKED", "AGE"]
    wide = crds.kubectl("get", "tasklease", "-n", ns, "-o", "wide").stdout
    assert "DELEGATED-BY" in wide and "POLICY" in wide


@pytest.mark.parametrize("spec,field,text", [
    ({"ttl": None}, "spec.ttl", "Required value"),
    ({"agent": "Bad_Agent"}, "spec.agent", "should match"),
    ({"purpose": "x" * 1025}, "spec.purpose", "Too long"),
    ({"context": {"tool": "git", "dataSensitivity": "secret", "environment": "dev"}},
     "spec.context.dataSensitivity", "Unsupported value"),
    ({"ttl": "5m"}, "spec.ttl", "at least 10m"),
    ({"ttl": "48h"}, "spec.ttl", "between 1m and 24h"),
    ({"ttl": "soon"}, "spec.ttl", "should match"),
    ({"scope": {"rules": [{"resources": ["pods"], "verbs": ["*"]}]}}, "spec.scope.rules[0]",
     "may not include '*'"),
    ({"scope": {"rules": [{"resources": ["roles"], "verbs": ["escalate"]}]}}, "spec.scope.rules[0]",
     "escalate"),
    ({"scope": {"rules": [{"resources": ["*"], "verbs": ["get"]}]}}, "spec.scope.rules[0]",
     "wildcard"),
    ({"credential": {"type": "Password"}}, "spec.credential.type", "Unsupported value"),
])
def test_invalid_tasks_are_refused_naming_the_field(crds, ns, spec, field, text):
    body = task()
    for k, v in spec.items():
        if v is None:
            body["spec"].pop(k)
        else:
            body["spec"][k] = v
    res = create(crds, ns, body)
    assert res.returncode != 0
    assert field in res.stderr and text in res.stderr, res.stderr


def test_short_ttl_is_allowed_for_x509_svid(crds, ns):
    res = create(crds, ns, task(ttl="5m", credential={"type": "X509SVID"}))
    assert res.returncode == 0, res


def test_spec_is_immutable_except_completed_false_to_true(crds, ns):
    create(crds, ns, task())
    res = crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--type=merge",
                       "-p", '{"spec":{"purpose":"something else"}}', check=False)
    assert res.returncode != 0 and "spec is immutable except for spec.completed" in res.stderr
    res = crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--type=merge",
                       "-p", '{"spec":{"ttl":"1h"}}', check=False)
    assert res.returncode != 0
    crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--type=merge", "-p", '{"spec":{"completed":true}}')
    res = crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--type=merge",
                       "-p", '{"spec":{"completed":false}}', check=False)
    assert res.returncode != 0 and "can only change from false to true" in res.stderr


def test_status_is_written_through_the_subresource(crds, ns):
    create(crds, ns, task())
    crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--subresource=status", "--type=merge",
                 "-p", '{"status":{"phase":"Active","expiresAt":"2030-01-01T00:00:00Z"}}')
    row = crds.kubectl("get", "at", "t1", "-n", ns, "--no-headers").stdout.split()
    assert row[:5] == ["t1", "Active", "refactor-bot", "git", "2030-01-01T00:00:00Z"]
    res = crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--subresource=status", "--type=merge",
                       "-p", '{"status":{"phase":"Finished"}}', check=False)
    assert res.returncode != 0 and "Unsupported value" in res.stderr


def test_revoking_and_what_holds_it_are_kept_in_status(crds, ns):
    create(crds, ns, task())
    held = {"kind": "RoleBinding", "name": "tl-t1-1a2b3c4d", "finalizers": ["example.com/hold"]}
    revocation = {"outcome": "Succeeded", "reason": "Completed", "message": "spec.completed is true",
                  "startedAt": "2030-01-01T00:00:00.125Z", "held": [held]}
    crds.kubectl("patch", "agenttask", "t1", "-n", ns, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"phase": "Revoking", "revocation": revocation}}))
    row = crds.kubectl("get", "at", "t1", "-n", ns, "--no-headers").stdout.split()
    assert row[:2] == ["t1", "Revoking"]
    stored = crds.kubectl_json("get", "agenttask", "t1", "-n", ns)["status"]["revocation"]
    assert stored == revocation  # nothing pruned


def test_agent_policy_workload_bound_defaults_to_restricted_and_checks_capabilities(crds):
    name = f"pol-wl-{os.getpid()}"
    body = {"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentPolicy", "metadata": {"name": name},
            "spec": {"match": {}, "allow": {"maxTTL": "1h", "workload": {}}}}
    crds.kubectl("create", "-f", "-", input=json.dumps(body))
    stored = crds.kubectl_json("get", "agentpolicy", name)["spec"]["allow"]["workload"]
    assert stored == {"podSecurity": "restricted"}
    crds.kubectl("delete", "agentpolicy", name)
    for workload, says in (({"podSecurity": "privileged"}, "Unsupported value"),
                           ({"podSecurity": "restricted", "allowedCapabilities": ["CHOWN"]},
                            "a container may add only NET_BIND_SERVICE"),
                           ({"allowedCapabilities": ["SYS_ADMIN"]}, "Unsupported value")):
        body["spec"]["allow"]["workload"] = workload
        res = crds.kubectl("create", "-f", "-", input=json.dumps(body), check=False)
        assert res.returncode != 0 and says in res.stderr, (workload, res.stderr)
    body["spec"]["allow"]["workload"] = {"podSecurity": "baseline", "allowedCapabilities": ["CHOWN"]}
    assert crds.kubectl("create", "-f", "-", input=json.dumps(body), check=False).returncode == 0
    crds.kubectl("delete", "agentpolicy", name)


def test_agent_policy_defaults_to_verified_delegation(crds):
    name = f"pol-{os.getpid()}"
    crds.apply({"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentPolicy",
                "metadata": {"name": name},
                "spec": {"match": {"agents": ["refactor-*"], "namespaces": ["team-a"]},
                         "allow": {"maxTTL": "1h", "credentialTypes": ["ServiceAccountToken"],
                                   "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                              "verbs": ["get"]}]}}})
    obj = crds.kubectl_json("get", "agentpolicy", name)
    assert obj["spec"]["requireVerifiedDelegation"] is True
    crds.kubectl("delete", "agentpolicy", name)


def test_identity_exception_needs_a_selector_and_known_rules(crds, ns):
    base = {"apiVersion": "tasklease.io/v1alpha1", "kind": "IdentityException",
            "metadata": {"name": "legacy"},
            "spec": {"reason": "legacy job", "approvedBy": "security@example.com",
                     "expiresAt": "2030-01-01T00:00:00Z", "rules": ["TL001"]}}
    res = create(crds, ns, base)
    assert res.returncode != 0 and "name the workloads it covers" in res.stderr, res.stderr
    base["spec"]["rules"] = ["TL999"]
    base["spec"]["serviceAccountNames"] = ["legacy"]
    res = create(crds, ns, base)
    assert res.returncode != 0 and "spec.rules[0]" in res.stderr
    base["spec"]["rules"] = ["TL001", "TL006"]
    assert create(crds, ns, base).returncode == 0


@pytest.mark.parametrize("selector,accepted", [
    ({"podSelector": {"matchExpressions": [{"key": "no-such-label", "operator": "DoesNotExist"}]}}, False),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]},
                                           {"key": "app", "operator": "Exists"}]}}, False),
    ({"podSelector": {}}, False),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}}, False),
    ({"serviceAccountNames": ["default"]}, False),
    ({"serviceAccountNames": ["default"], "podSelector": {"matchLabels": {"app": "billing"}}}, True),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["billing"]},
                                           {"key": "canary", "operator": "DoesNotExist"}]}}, True),
    ({"serviceAccountNames": ["billing"], "podSelector": {"matchExpressions": [
        {"key": "canary", "operator": "DoesNotExist"}]}}, True),
])
def test_identity_exception_must_name_the_workloads_it_covers(crds, ns, selector, accepted):
    """A selector that only says what pods lack (DoesNotExist on a label nobody sets) covered the
    whole namespace: the CRD's CEL rule refuses it before any webhook is asked (docs/rules.md)."""
    body = {"apiVersion": "tasklease.io/v1alpha1", "kind": "IdentityException",
            "metadata": {"name": "legacy"},
            "spec": {"reason": "legacy job", "approvedBy": "security@example.com",
                     "expiresAt": "2030-01-01T00:00:00Z", "rules": ["TL001"], **selector}}
    res = create(crds, ns, body)
    if accepted:
        assert res.returncode == 0, res.stderr
    else:
        assert res.returncode != 0 and "name the workloads it covers" in res.stderr, res.stderr


def test_identity_exception_service_account_names_are_names_not_patterns(crds, ns):
    body = {"apiVersion": "tasklease.io/v1alpha1", "kind": "IdentityException",
            "metadata": {"name": "legacy"},
            "spec": {"reason": "legacy job", "approvedBy": "security@example.com",
                     "expiresAt": "2030-01-01T00:00:00Z", "rules": ["TL001"],
                     "serviceAccountNames": ["billing", "team-*"]}}
    res = create(crds, ns, body)
    assert res.returncode != 0 and "spec.serviceAccountNames[1]" in res.stderr, res.stderr


def test_task_names_must_fit_in_a_label_value(crds, ns):
    res = create(crds, ns, task(name="t" * 64))
    assert res.returncode != 0 and "at most 63 characters" in res.stderr, res.stderr
    assert create(crds, ns, task(name="t" * 63)).returncode == 0


def test_agent_policy_max_ttl_is_bounded(crds):
    name = f"pol-ttl-{os.getpid()}"
    body = {"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentPolicy", "metadata": {"name": name},
            "spec": {"match": {}, "allow": {"maxTTL": "48h"}}}
    res = crds.kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    assert res.returncode != 0 and "maxTTL must be between 1m and 24h" in res.stderr, res.stderr
    body["spec"]["allow"]["maxTTL"] = "2h"
    assert crds.kubectl("create", "-f", "-", input=json.dumps(body), check=False).returncode == 0
    crds.kubectl("delete", "agentpolicy", name)
