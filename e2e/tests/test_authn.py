"""Identities kubesim accepts besides the admin token: static token-file users and groups,
client certificates signed by the cluster CA, and anonymous requests."""

import base64
import os

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness import Cluster
from kubesim.certs import issue

pytestmark = pytest.mark.kubesim_only


def whoami(cluster, **kw):
    out = cluster.kubectl_json("auth", "whoami", **kw)
    return out["status"]["userInfo"]


def test_token_file_declares_users_and_groups(tmp_path):
    tf = tmp_path / "tokens.csv"
    tf.write_text('tok-alice,alice,uid-1,"dev,ops"\ntok-bob,bob,uid-2\n')
    with Cluster.start("--token-file", str(tf)) as c:
        alice = whoami(c, token="tok-alice")
        assert alice["username"] == "alice" and alice["uid"] == "uid-1"
        assert alice["groups"] == ["dev", "ops", "system:authenticated"]
        assert whoami(c, token="tok-bob")["groups"] == ["system:authenticated"]
        res = c.kubectl("get", "pods", token="tok-bob", check=False)
        assert res.returncode != 0 and "forbidden" in res.stderr


def test_client_certificate_authenticates_as_cn_with_o_groups(cluster, tmp_path):
    ca_cert = x509.load_pem_x509_certificate(open(os.path.join(cluster.cert_dir, "ca.crt"), "rb").read())
    ca_key = serialization.load_pem_private_key(open(os.path.join(cluster.cert_dir, "ca.key"), "rb").read(), None)
    cert, key = issue(ca_cert, ca_key, "carol", organizations=["team-a", "auditors"], client=True)
    cfg = yaml.safe_load(open(cluster.kubeconfig))
    cfg["users"] = [{"name": "carol", "user": {
        "client-certificate-data": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
        "client-key-data": base64.b64encode(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())).decode()}}]
    cfg["contexts"][0]["context"]["user"] = "carol"
    kc = tmp_path / "carol.kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    info = whoami(cluster, kubeconfig=str(kc))
    assert info["username"] == "carol"
    assert info["groups"] == ["team-a", "auditors", "system:authenticated"]


def test_anonymous_requests_are_system_anonymous(cluster):
    status, _, out = cluster.request("GET", "/api/v1/namespaces", token="")
    assert status == 403
    assert 'User "system:anonymous" cannot list resource "namespaces"' in out["message"]
    assert cluster.request("GET", "/version", token="")[0] == 200


def test_a_token_verified_once_still_expires_and_still_dies_with_its_account(monkeypatch):
    """kubesim verifies a token's signature once (a cache); expiry and the account behind the
    token are still checked on every use."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kubesim import auth
    from kubesim.resources import Registry
    from kubesim.store import Store

    registry, store = Registry(), Store()
    sa_rt = registry.types[("", "serviceaccounts")]
    sa = store.create(sa_rt, {"apiVersion": "v1", "kind": "ServiceAccount",
                              "metadata": {"name": "bot", "namespace": "ns", "uid": "u-1"}})
    authority = auth.TokenAuthority(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                    store, registry)
    token, _ = authority.mint(sa, None, 600)
    user, _ = authority.validate(token)
    assert user.name == "system:serviceaccount:ns:bot"
    assert authority.validate(token)[0].name == user.name  # from the cache

    real = auth.time.time
    monkeypatch.setattr(auth.time, "time", lambda: real() + 601)
    with pytest.raises(ValueError, match="expired"):
        authority.validate(token)
    monkeypatch.setattr(auth.time, "time", real)

    store.remove(sa_rt, sa)
    with pytest.raises(ValueError, match="invalidated"):
        authority.validate(token)
