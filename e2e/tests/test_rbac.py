"""SubjectAccessReview answered by RBAC for users, groups and service accounts, with
resourceNames and wildcards; escalation prevention on role and binding writes."""

import pytest

RBAC = "rbac.authorization.k8s.io/v1"


def sar(cluster, user=None, groups=None, **attrs):
    spec = {"resourceAttributes": attrs}
    if user:
        spec["user"] = user
    if groups:
        spec["groups"] = groups
    status, _, out = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                     {"apiVersion": "authorization.k8s.io/v1",
                                      "kind": "SubjectAccessReview", "spec": spec})
    assert status == 201, out
    return out["status"]["allowed"]


@pytest.fixture
def policy(cluster, ns):
    cluster.apply([
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "named", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"],
                    "verbs": ["get", "update"]}]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "alice-named", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "named"},
         "subjects": [{"kind": "User", "name": "alice"}]},
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "all-apps", "namespace": ns},
         "rules": [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "ops-apps", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "all-apps"},
         "subjects": [{"kind": "Group", "name": "ops"}]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "bot-view", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": ns}]},
    ])
    return ns


def test_user_rights_honour_resource_names(cluster, policy):
    ns = policy
    assert sar(cluster, "alice", namespace=ns, verb="get", resource="configmaps", name="cfg")
    assert sar(cluster, "alice", namespace=ns, verb="update", resource="configmaps", name="cfg")
    assert not sar(cluster, "alice", namespace=ns, verb="get", resource="configmaps", name="other")
    assert not sar(cluster, "alice", namespace=ns, verb="list", resource="configmaps")
    assert not sar(cluster, "alice", namespace=ns, verb="delete", resource="configmaps", name="cfg")
    assert not sar(cluster, "alice", namespace="default", verb="get", resource="configmaps", name="cfg")


def test_group_rights_honour_wildcards(cluster, policy):
    ns = policy
    assert sar(cluster, "carol", ["ops"], namespace=ns, verb="delete", group="apps", resource="deployments")
    assert sar(cluster, "carol", ["ops"], namespace=ns, verb="patch", group="apps",
               resource="deployments", subresource="scale")
    assert not sar(cluster, "carol", ["ops"], namespace=ns, verb="get", group="", resource="pods")
    assert not sar(cluster, "carol", ["devs"], namespace=ns, verb="get", group="apps", resource="deployments")


def test_service_account_rights_come_from_aggregated_cluster_role(cluster, policy):
    ns = policy
    bot = f"system:serviceaccount:{ns}:bot"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    assert sar(cluster, bot, groups, namespace=ns, verb="list", resource="pods")
    assert not sar(cluster, bot, groups, namespace=ns, verb="get", resource="secrets")
    assert not sar(cluster, bot, groups, namespace=ns, verb="create", resource="pods")


def test_cluster_admin_group_may_do_anything(cluster, ns):
    assert sar(cluster, "root", ["system:masters"], namespace=ns, verb="delete", resource="secrets")


def test_role_granting_unheld_permissions_is_forbidden(cluster, ns):
    cluster.apply([
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "role-writer", "namespace": ns},
         "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                    "verbs": ["create"]},
                   {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "dave", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-writer"},
         "subjects": [{"kind": "User", "name": "dave"}]}])
    token = cluster.add_user("dave")
    role = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "x", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"]}]}
    status, _, out = cluster.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
                                     role, token=token)
    assert status == 403
    assert "attempting to grant RBAC permissions not currently held" in out["message"]
    assert 'Verbs:["update"]' in out["message"]
    role["rules"][0]["verbs"] = ["get"]
    status, _, out = cluster.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
                                     role, token=token)
    assert status == 201, out
