"""Identities the API server accepts besides the admin's: client certificates signed by the
cluster CA, token users, anonymous requests (on kubesim and the real control plane alike); and
kubesim's own token file and token cache."""

import pytest

from harness import Cluster


def whoami(cluster, **kw):
    out = cluster.kubectl_json("auth", "whoami", **kw)
    return out["status"]["userInfo"]


@pytest.mark.kubesim_only(reason="kubesim's --token-file at start (test_a_declared_token_user... "
                                  "runs token users on both)")
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


def test_client_certificate_authenticates_as_cn_with_o_groups(cluster):
    kc = cluster.certificate_kubeconfig("carol", ["team-a", "auditors"])
    info = whoami(cluster, kubeconfig=kc)
    assert info["username"] == "carol"
    assert info["groups"] == ["team-a", "auditors", "system:authenticated"]


def test_a_declared_token_user_has_its_groups_and_only_what_rbac_grants(cluster, ns):
    token = cluster.add_user("dana", groups=["dev", "ops"])
    info = whoami(cluster, token=token)
    assert info["username"] == "dana"
    assert info["groups"] == ["dev", "ops", "system:authenticated"]
    res = cluster.kubectl("get", "pods", "-n", ns, token=token, check=False)
    assert res.returncode != 0
    assert f'User "dana" cannot list resource "pods" in API group "" in the namespace "{ns}"' \
        in res.stderr
    res = cluster.kubectl("get", "pods", "-n", ns, token="not-a-token-anyone-declared",
                          check=False)
    assert res.returncode != 0 and "Unauthorized" in res.stderr


def test_anonymous_requests_are_system_anonymous(cluster):
    status, _, out = cluster.request("GET", "/api/v1/namespaces", token="")
    assert status == 403
    assert 'User "system:anonymous" cannot list resource "namespaces"' in out["message"]
    assert cluster.request("GET", "/version", token="")[0] == 200


@pytest.mark.kubesim_only(reason="a unit test of kubesim's token cache (kubesim.auth), no cluster")
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
