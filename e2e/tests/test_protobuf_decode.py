"""kubesim.protobuf: decoding of the Kubernetes protobuf request bodies kubectl sends.

No cluster and no network: bodies are built with the small encoder below, or are real kubectl
v1.33 captures (tests/fixtures/protobuf/*.bin, recorded from a throwaway local HTTP server that
answered discovery). The schema tables are also checked against the protobuf descriptors compiled
into the kubectl binary, when it is there.
"""

import base64
import os
import random
import re
import zlib

import pytest

from kubesim import protobuf
from kubesim.protobuf import Schema, UnsupportedKindError, decode, decode_message

pytestmark = pytest.mark.kubesim_only(reason="unit tests of kubesim's protobuf decoder, no cluster")

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "protobuf")


# ---------------------------------------------------------------------------
# a minimal protobuf encoder
# ---------------------------------------------------------------------------

def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wire_type):
    return varint(num << 3 | wire_type)


def s(num, value):
    """Length-delimited field: string, bytes or an already-encoded message."""
    if isinstance(value, str):
        value = value.encode()
    return key(num, 2) + varint(len(value)) + value


def u(num, n):
    return key(num, 0) + varint(n)


def m(num, *parts):
    return s(num, b"".join(parts))


def entry(num, k, v):
    """A map<string, string|bytes> entry."""
    return m(num, s(1, k), s(2, v))


def fixed64(num, n):
    return key(num, 1) + (n % (1 << 64)).to_bytes(8, "little")


def fixed32(num, n):
    return key(num, 5) + (n % (1 << 32)).to_bytes(4, "little")


def group(num, *parts):
    return key(num, 3) + b"".join(parts) + key(num, 4)


def envelope(api_version, kind, raw, encoding=None, content_type=None):
    body = m(1, s(1, api_version), s(2, kind)) + s(2, raw)
    if encoding is not None:
        body += s(3, encoding)
    if content_type is not None:
        body += s(4, content_type)
    return b"k8s\x00" + body


def meta(*parts):
    return m(1, *parts)


def t(num, seconds, nanos=0):
    return m(num, u(1, seconds), u(2, nanos))


def b64(data):
    return base64.b64encode(data).decode()


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".bin"), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------
# real kubectl v1.33 captures
# ---------------------------------------------------------------------------

SSAR = ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
RBAC = "rbac.authorization.k8s.io/v1"
AUTHN = "authentication.k8s.io/v1"

CAPTURES = {
    # kubectl auth can-i get pods -n x
    "ssar": {"apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
             "spec": {"resourceAttributes": {"namespace": "x", "verb": "get", "resource": "pods"}},
             "status": {"allowed": False}},
    # kubectl auth can-i get pods/mypod --subresource=log -n x
    "ssar_subresource_name": {
        "apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "x", "verb": "get", "resource": "pods",
                                        "subresource": "log", "name": "mypod"}},
        "status": {"allowed": False}},
    # kubectl auth can-i list deployments.apps -A
    "ssar_group_allns": {
        "apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
        "spec": {"resourceAttributes": {"verb": "list", "group": "apps", "resource": "deployments"}},
        "status": {"allowed": False}},
    # kubectl auth can-i '*' '*' --all-namespaces
    "ssar_all": {"apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
                 "spec": {"resourceAttributes": {"verb": "*", "resource": "*"}},
                 "status": {"allowed": False}},
    # kubectl auth can-i get /logs
    "ssar_nonresource": {"apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
                         "spec": {"nonResourceAttributes": {"path": "/logs", "verb": "get"}},
                         "status": {"allowed": False}},
    # kubectl auth can-i --list            (namespace from the kubeconfig context: default)
    "rulesreview": {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                    "metadata": {}, "spec": {"namespace": "default"}, "status": {"incomplete": False}},
    # kubectl auth can-i --list -n x
    "rulesreview_ns": {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                       "metadata": {}, "spec": {"namespace": "x"}, "status": {"incomplete": False}},
    # kubectl auth whoami
    "whoami": {"apiVersion": AUTHN, "kind": "SelfSubjectReview", "metadata": {},
               "status": {"userInfo": {}}},
    # kubectl create token default
    "token_default": {"apiVersion": AUTHN, "kind": "TokenRequest", "metadata": {}, "spec": {},
                      "status": {"token": ""}},
    # kubectl create token builder -n x --audience=a1 --audience=a2 --duration=10m
    #   --bound-object-kind=Pod --bound-object-name=p1 --bound-object-uid=u-1
    "token_full": {"apiVersion": AUTHN, "kind": "TokenRequest", "metadata": {},
                   "spec": {"audiences": ["a1", "a2"], "expirationSeconds": 600,
                            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1",
                                               "uid": "u-1"}},
                   "status": {"token": ""}},
    # kubectl create ns foo
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"},
                  "spec": {}, "status": {}},
    # kubectl create configmap c --from-literal=a=b
    "configmap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                  "data": {"a": "b"}},
    # kubectl create configmap c2 -n x --from-file=bin=<00 01 02 ff fe 80>
    #   --from-file=text=<hello\nworld\n> --from-literal=empty=
    "configmap_files": {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c2", "namespace": "x"},
                        "data": {"empty": "", "text": "hello\nworld\n"},
                        "binaryData": {"bin": b64(bytes([0, 1, 2, 0xFF, 0xFE, 0x80]))}},
    # kubectl create secret generic s --from-literal=k=v
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "data": {"k": b64(b"v")}},
    # kubectl create secret generic s2 --type=example.com/t --from-literal=k=v --from-file=bin=...
    "secret_typed": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"},
                     "data": {"bin": b64(bytes([0, 1, 2, 0xFF, 0xFE, 0x80])), "k": b64(b"v")},
                     "type": "example.com/t"},
    # kubectl create secret docker-registry reg --docker-server=r.example --docker-username=u
    #   --docker-password=p
    "secret_dockercfg": {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reg"},
        "data": {".dockerconfigjson": b64(b'{"auths":{"r.example":{"username":"u","password":"p",'
                                          b'"auth":"dTpw"}}}')},
        "type": "kubernetes.io/dockerconfigjson"},
    # kubectl create sa s
    "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "s"}},
    # kubectl create role r --verb=get --resource=pods
    "role": {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "r"},
             "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
    # kubectl create role r2 --verb=get,list --resource=pods,deployments.apps
    #   --resource-name=a --resource-name=b
    "role_multi": {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "r2"},
                   "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
                              "resourceNames": ["a", "b"]},
                             {"verbs": ["get", "list"], "apiGroups": ["apps"],
                              "resources": ["deployments"], "resourceNames": ["a", "b"]}]},
    # kubectl create rolebinding rb --role=r --user=u
    "rolebinding": {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "rb"},
                    "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                                  "name": "u"}],
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "r"}},
    # kubectl create rolebinding rb2 --clusterrole=view --serviceaccount=default:s --group=g --user=u1
    "rolebinding_multi": {
        "apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "rb2"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u1"},
                     {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g"},
                     {"kind": "ServiceAccount", "name": "s", "namespace": "default"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}},
    # kubectl create clusterrole cr --verb=get --resource=pods
    "clusterrole": {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "cr"},
                    "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
    # kubectl create clusterrole cr2 --verb=get --non-resource-url=/logs/*
    "clusterrole_nonresource": {"apiVersion": RBAC, "kind": "ClusterRole",
                                "metadata": {"name": "cr2"},
                                "rules": [{"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]},
    # kubectl create clusterrole agg --aggregation-rule=rbac.example.com/aggregate-to-monitoring=true
    "clusterrole_aggregation": {
        "apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "agg"},
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]}},
    # kubectl create clusterrolebinding crb --clusterrole=cr --group=g
    "clusterrolebinding": {"apiVersion": RBAC, "kind": "ClusterRoleBinding",
                           "metadata": {"name": "crb"},
                           "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                         "name": "g"}],
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                       "kind": "ClusterRole", "name": "cr"}},
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_kubectl_capture(name):
    assert decode(fixture(name)) == CAPTURES[name]


def test_every_fixture_is_checked():
    on_disk = {f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".bin")}
    assert on_disk == set(CAPTURES) | {"deployment_unsupported"}


def test_capture_key_order_follows_the_go_structs():
    assert list(decode(fixture("configmap_files"))) == ["apiVersion", "kind", "metadata", "data",
                                                        "binaryData"]
    assert list(decode(fixture("rolebinding"))["roleRef"]) == ["apiGroup", "kind", "name"]


def test_captures_hold_no_field_the_schema_does_not_know():
    """kubectl sends nothing the decoder silently drops (managedFields aside)."""
    for name in CAPTURES:
        av, kind, raw = protobuf.unwrap(fixture(name))
        assert _unknown_fields(protobuf.KINDS[(av, kind)], raw) == [], name


def _unknown_fields(schema, data, path=""):
    found = []
    for num, wt, v in protobuf.iter_fields(data):
        spec = schema.get(num)
        if spec is None:
            found.append(f"{path}#{num}")
        elif spec[1] == "message":
            found += _unknown_fields(spec[2], v, f"{path}.{spec[0]}")
    return found


def test_kubectl_gogo_zero_values_are_omitted_like_json_omitempty():
    # kubectl's ObjectMeta carries every string empty, generation 0 and an empty creationTimestamp
    av, kind, raw = protobuf.unwrap(fixture("namespace"))
    metadata = next(v for n, _, v in protobuf.iter_fields(raw) if n == 1)
    assert [n for n, _, _ in protobuf.iter_fields(metadata)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert decode(fixture("namespace"))["metadata"] == {"name": "foo"}


def test_unsupported_kind_from_real_kubectl():
    # kubectl create deployment d --image=nginx
    with pytest.raises(UnsupportedKindError) as e:
        decode(fixture("deployment_unsupported"))
    assert (e.value.api_version, e.value.kind) == ("apps/v1", "Deployment")
    assert "Deployment (apps/v1)" in str(e.value)
    assert "ConfigMap (v1)" in str(e.value)     # says what is supported


# ---------------------------------------------------------------------------
# synthetic bodies, one per kind
# ---------------------------------------------------------------------------

def test_object_meta_all_fields_and_unknown_fields_skipped():
    raw = meta(
        s(1, "n"), s(2, "gen-"), s(3, "ns"), s(4, "/self"), s(5, "uid-1"), s(6, "42"), u(7, 3),
        t(8, 1767323045, 123456789),                    # 2026-01-02T03:04:05Z, nanos dropped
        t(9, 1767326645),
        u(10, 0),                                        # *int64 set to 0: kept
        entry(11, "app", "web"), entry(11, "tier", ""),
        entry(12, "note", "x"),
        m(13, s(5, "apps/v1"), s(1, "ReplicaSet"), s(3, "rs"), s(4, "rs-uid"), u(6, 1), u(7, 0)),
        s(14, "example.com/f"), s(14, ""),
        m(17, s(1, "kubectl"), s(2, "Update")),          # managedFields: skipped
        u(99, 5), s(98, b"\xff\x00"), fixed64(97, 1), fixed32(96, 2),
        group(95, u(1, 1), s(2, "x"), group(3, u(1, 2))),  # deprecated groups: skipped
        s(1, "name-wins"),                               # a repeated scalar: last one wins
    )
    obj = decode(envelope("v1", "ConfigMap", raw))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "name-wins", "generateName": "gen-", "namespace": "ns", "selfLink": "/self",
        "uid": "uid-1", "resourceVersion": "42", "generation": 3,
        "creationTimestamp": "2026-01-02T03:04:05Z", "deletionTimestamp": "2026-01-02T04:04:05Z",
        "deletionGracePeriodSeconds": 0,
        "labels": {"app": "web", "tier": ""}, "annotations": {"note": "x"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                             "uid": "rs-uid", "controller": True, "blockOwnerDeletion": False}],
        "finalizers": ["example.com/f", ""]}}


def test_self_subject_access_review_with_selectors():
    raw = meta() + m(2, m(1,
        s(1, "x"), s(2, "list"), s(3, "apps"), s(4, "v1"), s(5, "deployments"), s(6, "scale"),
        s(7, "d"),
        m(8, s(1, "spec.nodeName=n1"),
          m(2, s(1, "spec.nodeName"), s(2, "In"), s(3, "n1"), s(3, "n2"))),
        m(9, m(2, s(1, "app"), s(2, "Exists"))),
    )) + m(3, u(1, 0))
    assert decode(envelope(*SSAR, raw)) == {
        "apiVersion": SSAR[0], "kind": SSAR[1], "metadata": {},
        "spec": {"resourceAttributes": {
            "namespace": "x", "verb": "list", "group": "apps", "version": "v1",
            "resource": "deployments", "subresource": "scale", "name": "d",
            "fieldSelector": {"rawSelector": "spec.nodeName=n1", "requirements": [
                {"key": "spec.nodeName", "operator": "In", "values": ["n1", "n2"]}]},
            "labelSelector": {"requirements": [{"key": "app", "operator": "Exists"}]}}},
        "status": {"allowed": False}}


def test_subject_access_review_with_extra():
    spec = m(2,
             m(2, s(1, "/healthz"), s(2, "get")),
             s(3, "alice"), s(4, "dev"), s(4, "system:authenticated"),
             m(5, s(1, "scopes"), m(2, s(1, "a"), s(1, "b"))),
             m(5, s(1, "empty"), m(2)),
             m(5, s(1, "novalue")),
             s(6, "uid-a"))
    obj = decode(envelope("authorization.k8s.io/v1", "SubjectAccessReview", spec))
    assert obj == {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                   "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                            "user": "alice", "groups": ["dev", "system:authenticated"],
                            "extra": {"scopes": ["a", "b"], "empty": [], "novalue": []},
                            "uid": "uid-a"}}


def test_local_subject_access_review():
    raw = meta(s(3, "team")) + m(2, m(1, s(1, "team"), s(2, "get"), s(5, "pods")), s(3, "bob"))
    assert decode(envelope("authorization.k8s.io/v1", "LocalSubjectAccessReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": "team"},
        "spec": {"resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"},
                 "user": "bob"}}


def test_self_subject_rules_review_with_status():
    raw = m(2, s(1, "x")) + m(3, m(1, s(1, "get"), s(2, ""), s(3, "pods")),
                              m(2, s(1, "get"), s(2, "/api")), u(3, 1), s(4, "boom"))
    assert decode(envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "x"},
        "status": {"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
                   "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api"]}],
                   "incomplete": True, "evaluationError": "boom"}}


def test_self_subject_review_with_user_info():
    raw = meta() + m(2, m(1, s(1, "alice"), s(2, "u1"), s(3, "g1"),
                          m(4, s(1, "k"), m(2, s(1, "v")))))
    assert decode(envelope(AUTHN, "SelfSubjectReview", raw)) == {
        "apiVersion": AUTHN, "kind": "SelfSubjectReview", "metadata": {},
        "status": {"userInfo": {"username": "alice", "uid": "u1", "groups": ["g1"],
                                "extra": {"k": ["v"]}}}}


def test_token_request():
    raw = meta(s(1, "sa"), s(3, "ns")) + m(2,
        s(1, "https://kubernetes.default.svc"), u(4, 3600),
        m(3, s(1, "Secret"), s(2, "v1"), s(3, "sec"), s(4, "sec-uid"))) + m(3, s(1, "tok"),
                                                                            t(2, 0))
    assert decode(envelope(AUTHN, "TokenRequest", raw)) == {
        "apiVersion": AUTHN, "kind": "TokenRequest", "metadata": {"name": "sa", "namespace": "ns"},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "sec",
                                    "uid": "sec-uid"}},
        "status": {"token": "tok", "expirationTimestamp": "1970-01-01T00:00:00Z"}}


def test_token_review():
    raw = m(2, s(1, "abc"), s(2, "aud")) + m(3, u(1, 1), m(2, s(1, "system:serviceaccount:a:b")),
                                             s(4, "aud"), s(3, ""))
    assert decode(envelope(AUTHN, "TokenReview", raw)) == {
        "apiVersion": AUTHN, "kind": "TokenReview",
        "spec": {"token": "abc", "audiences": ["aud"]},
        "status": {"authenticated": True, "user": {"username": "system:serviceaccount:a:b"},
                   "audiences": ["aud"]}}


def test_namespace():
    raw = meta(s(1, "team"), entry(11, "env", "prod")) + m(2, s(1, "kubernetes")) + m(3,
        s(1, "Terminating"),
        m(2, s(1, "NamespaceDeletionContentFailure"), s(2, "False"), t(4, 1767323045),
          s(5, "ContentDeleted"), s(6, "done")))
    assert decode(envelope("v1", "Namespace", raw)) == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team", "labels": {"env": "prod"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating", "conditions": [
            {"type": "NamespaceDeletionContentFailure", "status": "False",
             "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "ContentDeleted",
             "message": "done"}]}}


def test_config_map_binary_data_and_immutable_false():
    raw = meta(s(1, "c")) + u(4, 0) + entry(2, "a", "b") + entry(3, "bin", b"\x00\xff") + \
        m(3, s(1, "nobytes"))
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": False,
        "data": {"a": "b"}, "binaryData": {"bin": "AP8=", "nobytes": ""}}


def test_secret():
    raw = meta(s(1, "s")) + u(5, 1) + entry(2, "k", b"\x01\x02\x03") + entry(4, "plain", "text") + \
        s(3, "Opaque")
    assert decode(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "immutable": True,
        "data": {"k": "AQID"}, "stringData": {"plain": "text"}, "type": "Opaque"}


def test_service_account():
    raw = meta(s(1, "sa")) + m(2, s(1, "Secret"), s(2, "ns"), s(3, "tok"), s(4, "u"), s(5, "v1"),
                               s(6, "7"), s(7, "data")) + m(2, s(3, "other")) + \
        m(3, s(1, "pull")) + m(3, s(1, "")) + u(4, 0)
    assert decode(envelope("v1", "ServiceAccount", raw)) == {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"},
        "secrets": [{"kind": "Secret", "namespace": "ns", "name": "tok", "uid": "u",
                     "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "data"},
                    {"name": "other"}],
        "imagePullSecrets": [{"name": "pull"}, {}],
        "automountServiceAccountToken": False}


def test_role_and_cluster_role_with_aggregation_expressions():
    rule = m(2, s(1, "get"), s(1, "watch"), s(2, ""), s(2, "apps"), s(3, "pods"), s(4, "p1"))
    assert decode(envelope(RBAC, "Role", meta(s(1, "r"), s(3, "ns")) + rule)) == {
        "apiVersion": RBAC, "kind": "Role", "metadata": {"name": "r", "namespace": "ns"},
        "rules": [{"verbs": ["get", "watch"], "apiGroups": ["", "apps"], "resources": ["pods"],
                   "resourceNames": ["p1"]}]}
    raw = meta(s(1, "cr")) + m(2, s(1, "get"), s(5, "/metrics")) + m(3, m(1,
        entry(1, "a", "b"), m(2, s(1, "tier"), s(2, "In"), s(3, "x"), s(3, "y"))))
    assert decode(envelope(RBAC, "ClusterRole", raw)) == {
        "apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "cr"},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}],
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"a": "b"},
             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]}]}]}}


def test_role_binding_and_cluster_role_binding():
    raw = meta(s(1, "b")) + m(2, s(1, "ServiceAccount"), s(2, ""), s(3, "sa"), s(4, "ns")) + \
        m(3, s(1, ""), s(2, "ClusterRole"), s(3, "view"))
    expected = {"metadata": {"name": "b"},
                "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
                "roleRef": {"apiGroup": "", "kind": "ClusterRole", "name": "view"}}
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        assert decode(envelope(RBAC, kind, raw)) == {"apiVersion": RBAC, "kind": kind, **expected}


@pytest.mark.parametrize("api_version", ["meta.k8s.io/v1", "v1"])
def test_delete_options(api_version):
    raw = u(1, 0) + m(2, s(1, "uid-1"), s(2, "")) + u(3, 0) + s(4, "Foreground") + s(5, "All") + \
        u(6, 1)
    assert decode(envelope(api_version, "DeleteOptions", raw)) == {
        "apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1", "resourceVersion": ""}, "orphanDependents": False,
        "propagationPolicy": "Foreground", "dryRun": ["All"],
        "ignoreStoreReadErrorWithClusterBreakingPotential": True}


def test_supported_kinds():
    assert SSAR in protobuf.SUPPORTED_KINDS
    assert ("v1", "Secret") in protobuf.SUPPORTED_KINDS
    assert ("meta.k8s.io/v1", "DeleteOptions") in protobuf.SUPPORTED_KINDS
    assert len(protobuf.SUPPORTED_KINDS) == 17


# ---------------------------------------------------------------------------
# wire-format details
# ---------------------------------------------------------------------------

NUMBERS = Schema("Numbers", {
    1: ("i32", "int32", None, False, True),
    2: ("i64", "int64", None, False, True),
    3: ("u64", "uint64", None, False),
    4: ("s64", "sint64", None, False),
    5: ("f64", "fixed64", None, False),
    6: ("sf32", "sfixed32", None, False),
    7: ("dbl", "double", None, False),
    8: ("flt", "float", None, False),
    9: ("list", "int32", None, True),
    10: ("t", "time", None, False),
})


def test_numeric_types_negative_values_and_packed_repeated():
    raw = (u(1, -5) + u(2, -(1 << 63)) + u(3, (1 << 64) - 1) + u(4, 7)
           + fixed64(5, 1 << 40) + fixed32(6, -2)
           + key(7, 1) + (0x3FF8000000000000).to_bytes(8, "little")     # 1.5
           + key(8, 5) + (0x40200000).to_bytes(4, "little")             # 2.5
           + u(9, 1) + s(9, varint(2) + varint(-3)) + u(9, 4)            # unpacked + packed
           + t(10, -1))
    assert decode_message(NUMBERS, raw) == {
        "i32": -5, "i64": -(1 << 63), "u64": (1 << 64) - 1, "s64": -4, "f64": 1 << 40,
        "sf32": -2, "dbl": 1.5, "flt": 2.5, "list": [1, 2, -3, 4],
        "t": "1969-12-31T23:59:59Z"}


def test_zero_scalars_dropped_unless_kept():
    assert decode_message(NUMBERS, u(1, 0) + u(2, 0) + u(3, 0) + m(10)) == {"i32": 0, "i64": 0}


def test_time_extremes():
    assert decode_message(NUMBERS, t(10, -62135596800)) == {"t": "0001-01-01T00:00:00Z"}
    assert decode_message(NUMBERS, t(10, 253402300799)) == {"t": "9999-12-31T23:59:59Z"}
    with pytest.raises(ValueError, match="out of range"):
        decode_message(NUMBERS, t(10, 1 << 62))


def test_split_message_fields_are_merged():
    raw = meta(s(1, "a"), entry(11, "x", "1")) + m(2, m(1, s(2, "get"))) + \
        meta(s(3, "ns"), entry(11, "y", "2")) + m(2, m(1, s(5, "pods")))
    assert decode(envelope(*SSAR, raw)) == {
        "apiVersion": SSAR[0], "kind": SSAR[1],
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1", "y": "2"}},
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}


def test_map_entry_defaults_and_duplicate_keys():
    raw = meta(m(11, s(2, "nokey")), m(11, s(1, "novalue")), entry(11, "d", "1"),
               entry(11, "d", "2"), m(11, s(2, "v"), s(1, "reordered")))
    assert decode(envelope("v1", "ConfigMap", raw))["metadata"]["labels"] == {
        "": "nokey", "novalue": "", "d": "2", "reordered": "v"}


def test_envelope_inner_content_type_and_empty_raw():
    assert decode(envelope("v1", "Namespace", b"", content_type="application/vnd.kubernetes.protobuf")) \
        == {"apiVersion": "v1", "kind": "Namespace"}
    body = b"k8s\x00" + m(1, s(1, "v1"), s(2, "Namespace"))            # no raw at all
    assert decode(body) == {"apiVersion": "v1", "kind": "Namespace"}


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"", "magic"),
    (b'{"kind": "Namespace"}', "magic"),
    (b"k8s\x00", "no typeMeta.kind"),
    (b"k8s\x00" + m(1, s(1, "v1")), "no typeMeta.kind"),
    (b"k8s\x00\x0a\x80", "envelope"),                                  # truncated varint
    (b"k8s\x00\x0a\x05\x0a\x01", "envelope"),                           # length past the end
    (b"k8s\x00" + key(1, 7), "envelope"),                               # invalid wire type
])
def test_malformed_envelope(body, message):
    with pytest.raises(ValueError, match=message):
        decode(body)


@pytest.mark.parametrize("raw, message", [
    (meta(u(1, 5)), r"metadata\.name: expected string"),               # wrong wire type
    (meta(s(1, b"\xff\xfe")), "UTF-8"),
    (meta(s(11, b"\x0a\x05ab")), "past end"),                           # bad map entry
    (s(2, b"\x0a\x80"), "truncated varint"),                            # in a map entry
    (meta() + key(3, 6), "invalid wire type 6"),
    (key(5, 3) + u(1, 1), "unterminated group"),
    (key(5, 3) + key(6, 4), "mismatched end group"),
    (m(1, u(8, 5)), r"metadata\.creationTimestamp: expected length-delimited"),
    (key(99, 0) + b"\xff" * 10 + b"\x01", "varint"),
])
def test_malformed_object(raw, message):
    with pytest.raises(ValueError, match=message) as e:
        decode(envelope("v1", "ConfigMap", raw))
    assert "ConfigMap" in str(e.value)


def test_nesting_limit_is_a_value_error_not_a_recursion_error():
    raw = b"".join(key(5, 3) for _ in range(2000)) + b"".join(key(5, 4) for _ in range(2000))
    with pytest.raises(ValueError, match="nested too deeply"):
        decode(envelope("v1", "ConfigMap", raw))


def test_unsupported_kind_and_version():
    for av, kind in [("apps/v1", "Deployment"), ("authorization.k8s.io/v1beta1", SSAR[1]),
                     ("", "Secret")]:
        with pytest.raises(UnsupportedKindError) as e:
            decode(envelope(av, kind, b""))
        assert isinstance(e.value, ValueError)
        assert kind in str(e.value) and "supported kinds" in str(e.value)


def test_unsupported_content_encoding_and_type():
    with pytest.raises(ValueError, match="contentEncoding 'gzip'") as e:
        decode(envelope("v1", "Secret", b"", encoding="gzip"))
    assert "Secret" in str(e.value)
    with pytest.raises(ValueError, match="contentType 'application/json'"):
        decode(envelope("v1", "Secret", b"{}", content_type="application/json"))


def test_non_bytes_input():
    with pytest.raises(ValueError):
        decode("k8s\x00")


def test_corrupted_captures_only_ever_raise_value_error():
    rng = random.Random(1234)
    bodies = [fixture(n) for n in sorted(CAPTURES)]
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        op = rng.randrange(3)
        if op == 0:
            del body[rng.randrange(4, len(body)):]
        elif op == 1:
            body[rng.randrange(4, len(body))] = rng.randrange(256)
        else:
            i = rng.randrange(4, len(body))
            body[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        try:
            decode(bytes(body))
        except ValueError:
            pass


# ---------------------------------------------------------------------------
# the schema tables against the descriptors compiled into kubectl
# ---------------------------------------------------------------------------

PROTO_TYPES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
               7: "fixed32", 8: "bool", 9: "string", 11: "message", 12: "bytes", 13: "uint32",
               14: "enum", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64"}
WANTED_FILES = {"k8s.io/api/authentication/v1/generated.proto",
                "k8s.io/api/authorization/v1/generated.proto",
                "k8s.io/api/core/v1/generated.proto",
                "k8s.io/api/rbac/v1/generated.proto",
                "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
                "k8s.io/apimachinery/pkg/runtime/generated.proto"}
ROOTS = {
    ("v1", "Namespace"): "k8s.io.api.core.v1.Namespace",
    ("v1", "ConfigMap"): "k8s.io.api.core.v1.ConfigMap",
    ("v1", "Secret"): "k8s.io.api.core.v1.Secret",
    ("v1", "ServiceAccount"): "k8s.io.api.core.v1.ServiceAccount",
    ("meta.k8s.io/v1", "DeleteOptions"): "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    ("v1", "DeleteOptions"): "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
}
# fields the decoder leaves out on purpose
SKIPPED = {("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", 17)}    # managedFields


def _parse_descriptor(data, package, messages, prefix):
    name, fields, nested, map_entry = "", {}, [], False
    for num, wt, v in protobuf.iter_fields(data):
        if num == 1:
            name = v.decode()
        elif num == 2:
            f = {"number": 0, "label": 1, "type": 0, "type_name": ""}
            for fnum, fwt, fv in protobuf.iter_fields(v):
                if fnum == 1:
                    f["name"] = fv.decode()
                elif fnum == 3:
                    f["number"] = fv
                elif fnum == 4:
                    f["label"] = fv
                elif fnum == 5:
                    f["type"] = fv
                elif fnum == 6:
                    f["type_name"] = fv.decode().lstrip(".")
            fields[f["number"]] = f
        elif num == 3:
            nested.append(v)
        elif num == 7:
            map_entry = any(onum == 7 and ov for onum, _, ov in protobuf.iter_fields(v))
    full = f"{prefix}.{name}"
    messages[full] = {"fields": fields, "map_entry": map_entry}
    for n in nested:
        _parse_descriptor(n, package, messages, full)


@pytest.fixture(scope="module")
def kubectl_messages():
    # kubectl v1.33 from npm (make deps), whose captures are the fixtures: the Kubernetes
    # libraries stopped registering these descriptors later (the v1.37 kubectl the suite runs
    # has none).
    from harness import TOOLS
    path = os.path.join(TOOLS, "kubectl")
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist: `make deps` unpacks it")
    with open(path, "rb") as f:
        data = f.read()
    messages, files = {}, set()
    # go-to-protobuf registers each generated.proto as a gzipped FileDescriptorProto
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            fd = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[match.start():
                                                                         match.start() + (1 << 21)])
        except zlib.error:
            continue
        try:
            top = list(protobuf.iter_fields(fd))
        except Exception:
            continue
        name = next((v for n, _, v in top if n == 1), b"").decode(errors="replace")
        if name not in WANTED_FILES or name in files:
            continue
        files.add(name)
        package = next(v for n, _, v in top if n == 2).decode()
        for n, _, v in top:
            if n == 4:
                _parse_descriptor(v, package, messages, package)
    if files != WANTED_FILES:
        pytest.skip(f"descriptors not found in {path}: {sorted(WANTED_FILES - files)}")
    return messages


def _check(schema, full, messages, problems, seen):
    if (id(schema), full) in seen:
        return
    seen.add((id(schema), full))
    msg = messages.get(full)
    if msg is None:
        problems.append(f"{schema.name}: no message {full} in kubectl")
        return
    if schema.name != full.rsplit(".", 1)[1]:
        problems.append(f"schema {schema.name} used for {full}")
    for num, spec in schema.items():
        jname, typ, sub, repeated = spec[:4]
        f = msg["fields"].get(num)
        where = f"{full}#{num} ({jname})"
        if f is None:
            problems.append(f"{where}: not in kubectl's descriptor")
            continue
        if f["name"].lower() != jname.lower():
            problems.append(f"{where}: proto name is {f['name']}")
        if (f["label"] == 3) != (repeated or typ == "map"):
            problems.append(f"{where}: repeated mismatch")
        ptype = PROTO_TYPES.get(f["type"])
        if typ == "map":
            entry_msg = messages.get(f["type_name"], {})
            if not entry_msg.get("map_entry"):
                problems.append(f"{where}: not a map in kubectl")
                continue
            kf, vf = entry_msg["fields"][1], entry_msg["fields"][2]
            ktype, vtype, vsub = sub
            if PROTO_TYPES[kf["type"]] != ktype:
                problems.append(f"{where}: map key type {PROTO_TYPES[kf['type']]}")
            _check_type(where + " value", vtype, vsub, PROTO_TYPES[vf["type"]], vf["type_name"],
                        messages, problems, seen)
        else:
            _check_type(where, typ, sub, ptype, f["type_name"], messages, problems, seen)
    for num, f in msg["fields"].items():
        if num not in schema and (full, num) not in SKIPPED:
            problems.append(f"{full}#{num} ({f['name']}): in kubectl but missing from the schema")


def _check_type(where, typ, sub, ptype, type_name, messages, problems, seen):
    if typ == "message":
        if ptype != "message":
            problems.append(f"{where}: kubectl has {ptype}")
        else:
            _check(sub, type_name, messages, problems, seen)
    elif typ == "time":
        if type_name != "k8s.io.apimachinery.pkg.apis.meta.v1.Time":
            problems.append(f"{where}: kubectl has {ptype} {type_name}")
    elif typ == "strings":
        f1 = messages.get(type_name, {}).get("fields", {})
        if list(f1) != [1] or f1[1]["label"] != 3 or f1[1]["type"] != 9:
            problems.append(f"{where}: {type_name} is not a repeated-string wrapper")
    elif typ != ptype:
        problems.append(f"{where}: kubectl has {ptype}, schema {typ}")


def test_schemas_match_kubectl_descriptors(kubectl_messages):
    problems, seen = [], set()
    for (av, kind), schema in protobuf.KINDS.items():
        group = av.rsplit("/", 1)[0].split(".")[0] if "/" in av else "core"
        full = ROOTS.get((av, kind), f"k8s.io.api.{group}.v1.{kind}")
        _check(schema, full, kubectl_messages, problems, seen)
    assert problems == []


def test_envelope_matches_kubectl_descriptor(kubectl_messages):
    unknown = kubectl_messages["k8s.io.apimachinery.pkg.runtime.Unknown"]["fields"]
    assert {n: f["name"] for n, f in unknown.items()} == {
        1: "typeMeta", 2: "raw", 3: "contentEncoding", 4: "contentType"}
    type_meta = kubectl_messages["k8s.io.apimachinery.pkg.runtime.TypeMeta"]["fields"]
    assert {n: f["name"] for n, f in type_meta.items()} == {1: "apiVersion", 2: "kind"}
    time_fields = kubectl_messages["k8s.io.apimachinery.pkg.apis.meta.v1.Time"]["fields"]
    assert {n: (f["name"], PROTO_TYPES[f["type"]]) for n, f in time_fields.items()} == {
        1: ("seconds", "int64"), 2: ("nanos", "int32")}
