"""The real control plane itself (e2e/realcluster.py, `make cluster-up`): the pinned release
serves, KWOK's node runs pods and Jobs, ServiceAccount tokens and OIDC discovery work, RBAC
refuses a minted user what it was not granted, a webhook is called through its Service, and
stopping it (or interrupting its start) leaves no process behind. Runs when `make deps` has
built the control plane."""

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

import realcluster
from fakewebhook import FakeWebhook, deny
from harness import PYTHON, Cluster, sa_token, token_refused, token_review
from realcluster import ControlPlane

pytestmark = pytest.mark.skipif(
    not realcluster.built(),
    reason=f"the control plane {realcluster.k8s_version()} is not built (`make deps` builds it)")


@pytest.fixture(scope="module")
def cp(tmp_path_factory):
    c = ControlPlane.up(str(tmp_path_factory.mktemp("realcp")), die_with_parent=True)
    print(f"control plane up in {c.info['startSeconds']} s")
    yield c
    c.down()


@pytest.fixture(scope="module")
def real(cp):
    return Cluster(cp.kubeconfig, tempfile.mkdtemp(prefix="e2e-real-"))


@pytest.fixture
def rns(real):
    """A namespace whose default ServiceAccount exists (pods can be created in it)."""
    name = real.namespace("real")
    real.wait_for(lambda: real.request(
        "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
        what="the namespace's default ServiceAccount")
    yield name
    real.kubectl("delete", "namespace", name, "--wait=false", check=False)


def kubectl(*args, kubeconfig, check=True):
    """The kubectl built with the control plane (the release's own client)."""
    p = subprocess.run([realcluster.binary("kubectl"), f"--kubeconfig={kubeconfig}", *args],
                       capture_output=True, text=True, timeout=60, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def test_version_is_the_pinned_release(cp, real):
    version = realcluster.k8s_version()
    status, _, v = real.request("GET", "/version")
    assert status == 200
    major, minor = version[1:].split(".")[:2]
    assert (v["gitVersion"], v["major"], v["minor"], v["gitTreeState"]) == (
        version, major, minor, "clean")
    assert v["buildDate"] != "1970-01-01T00:00:00Z"
    client = json.loads(kubectl("version", "-o", "json", kubeconfig=cp.kubeconfig).stdout)
    assert client["clientVersion"]["gitVersion"] == version
    assert client["serverVersion"]["gitVersion"] == version


def test_pod_is_scheduled_on_the_kwok_node_and_becomes_ready(real, rns):
    real.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": rns},
                "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]}})

    def ready():
        pod = real.kubectl_json("get", "pod", "web", "-n", rns)
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        return pod if pod["status"].get("phase") == "Running" and conds.get("Ready") == "True" \
            else None
    pod = real.wait_for(ready, timeout=30, what="the pod to be Running and Ready")
    assert pod["spec"]["nodeName"] == realcluster.NODE_NAME
    assert pod["status"]["podIP"].startswith("10.244.")
    # The ServiceAccount admission plugin gave it the projected token volume, as on any cluster.
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])


def test_job_pod_runs_on_the_kwok_node_and_succeeds(real, rns):
    real.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": rns},
                "spec": {"backoffLimit": 0, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "task", "image": "registry.example.com/task:1"}]}}}})

    def complete():
        job = real.kubectl_json("get", "job", "once", "-n", rns)
        conds = {c["type"]: c["status"] for c in job["status"].get("conditions", [])}
        return job if conds.get("Complete") == "True" else None
    job = real.wait_for(complete, timeout=60, what="the Job to complete")
    assert job["status"]["succeeded"] == 1
    pods = real.kubectl_json("get", "pods", "-n", rns, "-l", "job-name=once")["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["nodeName"] == realcluster.NODE_NAME
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    # Deleting the Job with background propagation: the garbage collector removes its pod.
    real.kubectl("delete", "job", "once", "-n", rns, "--cascade=background")
    real.wait_for(lambda: not real.kubectl_json("get", "pods", "-n", rns, "-l",
                                                "job-name=once")["items"],
                  timeout=30, what="the garbage collector to delete the Job's pod")


def test_service_endpoints_follow_pods_and_a_namespace_is_deleted(real):
    """The endpoint controllers and the namespace controller run."""
    ns = real.namespace("real")
    real.wait_for(lambda: real.request(
        "GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200,
        what="the namespace's default ServiceAccount")
    real.apply([{"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "api", "namespace": ns, "labels": {"app": "api"}},
                 "spec": {"containers": [{"name": "api", "image": "registry.example.com/api:1",
                                          "ports": [{"containerPort": 8080}]}]}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
                 "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}}])

    def endpoint():
        slices = real.kubectl_json("get", "endpointslices", "-n", ns, "-l",
                                   "kubernetes.io/service-name=api")["items"]
        eps = [e for s in slices for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready")]
        return eps[0] if eps else None
    ep = real.wait_for(endpoint, timeout=30, what="a ready endpoint for the Service")
    pod = real.kubectl_json("get", "pod", "api", "-n", ns)
    assert ep["addresses"] == [pod["status"]["podIP"]]
    assert ep["targetRef"]["name"] == "api"
    assert real.kubectl_json("get", "endpoints", "api", "-n", ns)["subsets"][0]["addresses"][0][
        "ip"] == pod["status"]["podIP"]
    real.kubectl("delete", "namespace", ns, "--wait=false")
    real.wait_for(lambda: real.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404, timeout=60,
                  what="the namespace to be deleted with its pod and Service")


def test_token_request_then_token_review(real, rns):
    real.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "bot", "namespace": rns}})
    token = sa_token(real, rns, "bot", seconds=600)["status"]["token"]
    st = token_review(real, token)
    assert st["authenticated"] is True
    assert st["user"]["username"] == f"system:serviceaccount:{rns}:bot"
    assert f"system:serviceaccounts:{rns}" in st["user"]["groups"]
    scoped = sa_token(real, rns, "bot", seconds=600, audiences=["tasklease"])["status"]["token"]
    assert token_review(real, scoped, audiences=["tasklease"])["audiences"] == ["tasklease"]
    # Not for the API server; kube-apiserver leaves `authenticated: false` out of the status.
    assert "authenticated" not in token_review(real, scoped)
    # The token dies with its account (after the API server's authentication cache).
    real.kubectl("delete", "serviceaccount", "bot", "-n", rns)
    assert "error" in token_refused(real, token)


def test_oidc_discovery_and_jwks_verify_service_account_tokens(cp, real, rns):
    status, _, disco = real.request("GET", "/.well-known/openid-configuration")
    assert status == 200
    assert disco["issuer"] == cp.server
    assert disco["jwks_uri"] == f"{cp.server}/openid/v1/jwks"
    status, _, jwks = real.request("GET", "/openid/v1/jwks")
    assert status == 200
    real.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "reader", "namespace": rns}})
    # Every ServiceAccount may read the discovery documents (system:service-account-issuer-discovery).
    api_token = sa_token(real, rns, "reader", seconds=600)["status"]["token"]
    assert real.request("GET", "/openid/v1/jwks", token=api_token)[0] == 200
    # A token for another audience is verified by that audience with the published keys.
    token = sa_token(real, rns, "reader", seconds=600, audiences=["vault"])["status"]["token"]
    assert real.request("GET", "/openid/v1/jwks", token=token)[0] == 401
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience="vault",
                        issuer=cp.server)
    assert claims["sub"] == f"system:serviceaccount:{rns}:reader"
    # The key served is the cluster's signing key.
    served = jwt.PyJWK(key).key.public_numbers()
    pub = serialization.load_pem_public_key(open(cp.pki.path("sa.pub"), "rb").read())
    assert served == pub.public_numbers()


def test_minted_user_is_refused_what_rbac_does_not_grant(cp, real, rns):
    kc = cp.user_kubeconfig("alice", ["team-a"], namespace=rns)
    who = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=kc).stdout)
    assert who["status"]["userInfo"]["username"] == "alice"
    assert who["status"]["userInfo"]["groups"] == ["team-a", "system:authenticated"]
    refused = kubectl("get", "configmaps", kubeconfig=kc, check=False)
    assert refused.returncode != 0
    assert f'User "alice" cannot list resource "configmaps" in API group "" in the namespace "{rns}"' \
        in refused.stderr
    real.apply([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "read-configmaps", "namespace": rns},
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                            "verbs": ["get", "list"]}]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "team-a-reads", "namespace": rns},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "read-configmaps"},
                 "subjects": [{"kind": "Group", "name": "team-a",
                               "apiGroup": "rbac.authorization.k8s.io"}]}])
    real.wait_for(lambda: kubectl("get", "configmaps", kubeconfig=kc, check=False).returncode == 0,
                  what="the RoleBinding to take effect")
    create = kubectl("create", "configmap", "x", kubeconfig=kc, check=False)
    assert create.returncode != 0 and 'cannot create resource "configmaps"' in create.stderr
    other = kubectl("get", "secrets", kubeconfig=kc, check=False)
    assert other.returncode != 0 and 'cannot list resource "secrets"' in other.stderr
    # A certificate from another CA is no identity at all.
    stranger = realcluster.Pki(tempfile.mkdtemp(prefix="e2e-other-pki-"))
    stranger.create(cp.host_ip)
    cert, key = stranger.client_pair("alice", ["system:masters"])
    forged = realcluster.write_kubeconfig(os.path.join(real.workdir, "forged.kubeconfig"),
                                          cp.server, cp.pki.ca_pem(), cert, key, "alice")
    res = kubectl("get", "configmaps", "-n", rns, kubeconfig=forged, check=False)
    assert res.returncode != 0 and "Unauthorized" in res.stderr


def test_webhook_is_called_through_its_service(cp, real, rns):
    """The API server reaches a webhook registered by service: at the address its Endpoints name
    (--enable-aggregator-routing), verifying the certificate for <service>.<namespace>.svc."""
    wh = FakeWebhook(dns_names=[f"guard.{rns}.svc"], host=cp.host_ip).start()
    name = f"guard-{rns}"
    try:
        wh.handlers["/validate"] = deny("no configmaps here")
        # A loopback address is refused: why the webhook listens on the machine's address.
        status, _, out = real.request("POST", f"/api/v1/namespaces/{rns}/endpoints", {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "loopback"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 443}]}]})
        assert status == 422 and "loopback" in out["message"]
        real.apply([{"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "guard", "namespace": rns},
                     "spec": {"ports": [{"name": "https", "port": 443, "targetPort": wh.port}]}},
                    {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": "guard", "namespace": rns},
                     "subsets": [{"addresses": [{"ip": cp.host_ip}],
                                  "ports": [{"name": "https", "port": wh.port}]}]}])
        real.kubectl("label", "namespace", rns, f"e2e-guard={rns}")
        real.apply({"apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingWebhookConfiguration", "metadata": {"name": name},
                    "webhooks": [{"name": "guard.e2e.tasklease.io",
                                  "admissionReviewVersions": ["v1"], "sideEffects": "None",
                                  "failurePolicy": "Fail", "timeoutSeconds": 5,
                                  "clientConfig": {"caBundle": wh.ca_bundle, "service": {
                                      "namespace": rns, "name": "guard", "port": 443,
                                      "path": "/validate"}},
                                  "namespaceSelector": {"matchLabels": {"e2e-guard": rns}},
                                  "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                             "operations": ["CREATE"],
                                             "resources": ["configmaps"]}]}]})

        def refused():
            res = real.kubectl("create", "configmap", f"c-{uuid.uuid4().hex[:6]}", "-n", rns,
                               check=False)
            return res.stderr if res.returncode != 0 else None
        err = real.wait_for(refused, timeout=20, what="the webhook to refuse a ConfigMap")
        assert 'admission webhook "guard.e2e.tasklease.io" denied the request: no configmaps here' \
            in err
        path, req = wh.reviews[-1]
        assert path == "/validate" and req["kind"]["kind"] == "ConfigMap"
        assert req["namespace"] == rns
    finally:
        real.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found",
                     check=False)
        wh.stop()


def test_token_users_are_declared_at_any_time_and_only_the_api_server_may_ask(cp, real, rns):
    """The token webhook (tokenwebhook.py) answers kube-apiserver for tokens a test declares
    (add_token_user, which writes only the token's hash), and nobody else: it wants the API
    server's client certificate."""
    token = cp.add_token_user("zoe", ["auditors"])
    st = token_review(real, token)
    assert st["authenticated"] is True
    assert (st["user"]["username"], st["user"]["groups"]) == (
        "zoe", ["auditors", "system:authenticated"])
    assert token not in open(cp.pki.path("token-users")).read()
    assert oct(os.stat(cp.pki.path("token-users")).st_mode & 0o777) == "0o600"
    assert "authenticated" not in token_review(real, token + "x")
    import http.client
    import ssl
    port = int(yaml.safe_load(open(cp.pki.path("token-webhook.kubeconfig")))[
        "clusters"][0]["cluster"]["server"].rsplit(":", 1)[1].split("/")[0])
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                       "spec": {"token": token}})
    # A user of the cluster (a certificate of the same CA) is refused...
    cert, key = cp.pki.client_pair("mallory", ["system:masters"])
    d = tempfile.mkdtemp(prefix="e2e-mallory-")
    for name, data in (("tls.crt", cert), ("tls.key", key)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    ctx = ssl.create_default_context(cafile=cp.pki.path("ca.crt"))
    ctx.load_cert_chain(os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("POST", "/authenticate", body=body)
    r = conn.getresponse()
    assert r.status == 403 and b"zoe" not in r.read()
    conn.close()
    # ...and a client without a certificate does not get past the handshake.
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ssl.create_default_context(cafile=cp.pki.path("ca.crt")),
        timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        conn.request("POST", "/authenticate", body=body)
        conn.getresponse()
    conn.close()


def _processes_naming(directory):
    """Pids of every process whose command line names directory (whatever its executable)."""
    needle = os.path.realpath(directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_cluster_up_and_down_leave_nothing_running(tmp_path):
    """`make cluster-up`/`cluster-down` as the shell runs them: an interrupted start stops what
    it started; a finished one runs in the background until cluster-down stops it all."""
    d = str(tmp_path / "cluster")
    script = os.path.join(realcluster.E2E_DIR, "realcluster.py")
    try:
        up = subprocess.Popen([PYTHON, script, "up", d], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        pid_file = os.path.join(d, "run", "kube-apiserver.pid")
        deadline = time.time() + 30
        while time.time() < deadline and not os.path.exists(pid_file) and up.poll() is None:
            time.sleep(0.05)
        assert os.path.exists(pid_file), up.communicate()
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
        assert up.returncode == 130, (out, err)
        assert _processes_naming(d) == []

        up = subprocess.run([PYTHON, script, "up", d], capture_output=True, text=True,
                            timeout=180, check=False)
        assert up.returncode == 0, up.stderr
        running = ControlPlane(d).recorded()
        assert sorted(running) == sorted(realcluster.COMPONENTS)
        nodes = kubectl("get", "nodes", "-o", "json", kubeconfig=os.path.join(d, "kubeconfig"))
        assert [n["metadata"]["name"] for n in json.loads(nodes.stdout)["items"]] == \
            [realcluster.NODE_NAME]
        again = subprocess.run([PYTHON, script, "up", d], capture_output=True, text=True,
                               timeout=60, check=False)
        assert again.returncode == 1 and "already runs" in again.stderr

        down = subprocess.run([PYTHON, script, "down", d], capture_output=True, text=True,
                              timeout=60, check=False)
        assert down.returncode == 0, down.stderr
        assert f"stopped {len(realcluster.COMPONENTS)} processes" in down.stdout
        assert _processes_naming(d) == []
        for pid in running.values():
            assert not os.path.exists(f"/proc/{pid}") or \
                open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        ControlPlane(d).down()


def test_minted_kubeconfig_from_the_command_line(cp, tmp_path):
    out = tmp_path / "bob.kubeconfig"
    res = subprocess.run([PYTHON, os.path.join(realcluster.E2E_DIR, "realcluster.py"), "user",
                          cp.dir, "bob", "auditors", "--out", str(out)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    who = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=str(out)).stdout)
    assert who["status"]["userInfo"]["groups"] == ["auditors", "system:authenticated"]
    cfg = out.read_text()
    assert base64.b64encode(cp.pki.ca_pem()).decode() in cfg
