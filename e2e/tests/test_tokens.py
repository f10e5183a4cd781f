"""TokenRequest, TokenReview and authentication with service-account tokens."""

import base64
import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness import sa_token, token_refused, token_review


def claims_of(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def header_of(token):
    h = token.split(".")[0]
    h += "=" * (-len(h) % 4)
    return json.loads(base64.urlsafe_b64decode(h))


@pytest.fixture
def sa_with_secret(cluster, ns):
    v1 = cluster.core()
    v1.create_namespaced_service_account(ns, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="agent")))
    secret = v1.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="agent-cred"), type="Opaque"))
    return secret


def test_token_request_returns_rs256_jwt_with_expiry_audiences_and_jti(cluster, ns, sa_with_secret):
    before = int(time.time())
    out = sa_token(cluster, ns, "agent", seconds=900, audiences=["tasklease"],
                   bound={"kind": "Secret", "apiVersion": "v1", "name": "agent-cred"})
    token = out["status"]["token"]
    assert header_of(token)["alg"] == "RS256"
    c = claims_of(token)
    assert c["sub"] == f"system:serviceaccount:{ns}:agent"
    assert c["aud"] == ["tasklease"]
    assert before + 900 <= c["exp"] <= int(time.time()) + 900
    assert c["jti"]
    assert c["kubernetes.io"]["secret"] == {"name": "agent-cred", "uid": sa_with_secret.metadata.uid}
    # The spec comes back as sent: the bound object's uid is in the claims only.
    assert out["spec"]["boundObjectRef"] == {"kind": "Secret", "apiVersion": "v1",
                                             "name": "agent-cred"}
    unbound = sa_token(cluster, ns, "agent", seconds=900)
    assert unbound["spec"]["boundObjectRef"] is None


def test_token_request_below_ten_minutes_is_refused(cluster, ns, sa_with_secret):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 599}}
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/agent/token", body)
    assert status == 422
    assert out["reason"] == "Invalid"
    assert "may not specify a duration less than 10 minutes" in out["message"]
    assert out["details"]["causes"][0]["field"] == "spec.expirationSeconds"


def test_token_review_accepts_token_until_bound_secret_is_deleted(cluster, ns, sa_with_secret):
    token = sa_token(cluster, ns, "agent", audiences=["tasklease"],
                     bound={"kind": "Secret", "apiVersion": "v1", "name": "agent-cred"})["status"]["token"]
    st = token_review(cluster, token, ["tasklease"])
    assert st["authenticated"] is True
    assert st["user"]["username"] == f"system:serviceaccount:{ns}:agent"
    assert f"system:serviceaccounts:{ns}" in st["user"]["groups"]
    assert st["audiences"] == ["tasklease"]
    # A refused review has no `authenticated` field, as kube-apiserver answers (omitempty).
    assert "authenticated" not in token_review(cluster, token, ["someone-else"])
    cluster.core().delete_namespaced_secret("agent-cred", ns)
    st = token_refused(cluster, token, ["tasklease"])
    assert "invalidated" in st["error"]


def test_token_review_rejects_token_once_service_account_is_deleted(cluster, ns, sa_with_secret):
    token = sa_token(cluster, ns, "agent")["status"]["token"]
    assert token_review(cluster, token)["authenticated"] is True
    cluster.core().delete_namespaced_service_account("agent", ns)
    token_refused(cluster, token)
    # Recreating an account of the same name does not revive the old token (new uid).
    cluster.core().create_namespaced_service_account(ns, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="agent")))
    assert "authenticated" not in token_review(cluster, token)


def test_service_account_token_authenticates_with_exactly_its_rbac_rights(cluster, ns, sa_with_secret):
    cluster.rbac().create_namespaced_role(ns, client.V1Role(
        metadata=client.V1ObjectMeta(name="one-cm"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"],
                                   resource_names=["allowed"], verbs=["get", "update"])]))
    cluster.rbac().create_namespaced_role_binding(ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="one-cm"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="one-cm"),
        subjects=[client.V1Subject(kind="ServiceAccount", name="agent", namespace=ns)]))
    admin = cluster.core()
    for name in ("allowed", "other"):
        admin.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name), data={"k": "v"}))
    token = sa_token(cluster, ns, "agent")["status"]["token"]
    api = client.CoreV1Api(cluster.client_for_token(token))
    assert api.read_namespaced_config_map("allowed", ns).data == {"k": "v"}
    obj = api.read_namespaced_config_map("allowed", ns)
    obj.data = {"k": "changed"}
    api.replace_namespaced_config_map("allowed", ns, obj)
    for call in (lambda: api.read_namespaced_config_map("other", ns),
                 lambda: api.list_namespaced_config_map(ns),
                 lambda: api.patch_namespaced_config_map("allowed", ns, {"data": {"k": "x"}}),
                 lambda: api.delete_namespaced_config_map("allowed", ns),
                 lambda: api.read_namespaced_secret("agent-cred", ns)):
        with pytest.raises(ApiException) as e:
            call()
        assert e.value.status == 403
    status, _, out = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/other", token=token)
    assert status == 403
    assert out["message"] == (f'configmaps "other" is forbidden: User "system:serviceaccount:{ns}:agent" '
                              f'cannot get resource "configmaps" in API group "" in the namespace "{ns}"')


def test_invalid_token_is_401_unauthorized(cluster):
    status, _, out = cluster.request("GET", "/api/v1/namespaces", token="not-a-token")
    assert status == 401
    assert out["reason"] == "Unauthorized"
