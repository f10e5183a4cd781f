"""Test harness for the end-to-end suites: a cluster to talk to (a kubesim started for the test,
or the real cluster named by E2E_KUBECONFIG), real kubectl, and the official Python client.

    with Cluster.start() as c:
        c.kubectl("get", "ns")
        v1 = c.core()
"""

import base64
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import yaml

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(E2E_DIR)
TOOLS = os.path.join(ROOT, ".tools", "bin")
PYTHON = "/usr/bin/python3"


def kubectl_path():
    """The kubectl the suite runs, on kubesim and on the real control plane alike: the one built
    with the control plane (`make deps`), of the same release as the real kube-apiserver, so
    that a test that passes on one server and fails on the other differs by the server alone
    (docs/kubesim.md). $E2E_KUBECTL names another."""
    given = os.environ.get("E2E_KUBECTL")
    if given:
        return given
    import realcluster
    p = realcluster.binary("kubectl")
    if not os.access(p, os.X_OK):
        raise RuntimeError(f"{p} does not exist: run `make deps` (it builds kubectl "
                           f"{realcluster.k8s_version()} with the control plane)")
    return p


def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on at host now (the caller binds it soon after)."""
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def token_kubeconfig(cluster, path, token, namespace=None):
    """Writes a kubeconfig for the cluster that authenticates with a bearer token (and no client
    certificate, which the API server would take over the token) and defaults to namespace;
    returns its path."""
    admin = yaml.safe_load(open(cluster.kubeconfig))
    ctx = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == ctx["cluster"])
    context = {"cluster": server["name"], "user": "user"}
    if namespace:
        context["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config", "clusters": [server],
           "users": [{"name": "user", "user": {"token": token}}],
           "contexts": [{"name": "user", "context": context}], "current-context": "user"}
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        yaml.safe_dump(cfg, f)
    return path


class CommandResult:
    def __init__(self, args, proc):
        self.args, self.returncode = args, proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr

    def __repr__(self):
        return (f"<{' '.join(self.args)} -> {self.returncode}\nstdout: {self.stdout}\n"
                f"stderr: {self.stderr}>")


class Cluster:
    """A Kubernetes API to test against. is_kubesim tells tests that need the emulator's own
    features (fault injection, compaction) whether they can run; control_plane is the real
    control plane (realcluster.ControlPlane) when the cluster is one of ours, started by
    `make cluster-up`, `make e2e-real` or start_own(): users can then be declared
    (add_user) and further clusters started."""

    # Every kubesim of this process that has stopped: (its workdir, the secret values it held),
    # so that the session's secret scan (test_zz_secret_scan) also covers the kubesims of
    # modules that ran on one of their own. Kept in memory only.
    stopped = []

    def __init__(self, kubeconfig, workdir, proc=None, url=None, admin_token=None, cert_dir=None,
                 control_plane=None, owns_control_plane=False):
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.proc = proc
        self.url = url
        self.admin_token = admin_token
        self.cert_dir = cert_dir
        self.is_kubesim = proc is not None
        self.control_plane = control_plane
        self.owns_control_plane = owns_control_plane
        self._api_client = None

    # ---- lifecycle ----

    @classmethod
    def start(cls, *extra_args, env=None):
        """Starts kubesim (or binds to E2E_KUBECONFIG's cluster) and waits until it serves."""
        workdir = tempfile.mkdtemp(prefix="e2e-")
        real = os.environ.get("E2E_KUBECONFIG")
        if real:
            import realcluster
            return cls(real, workdir, control_plane=realcluster.ControlPlane.of_kubeconfig(real))
        kubeconfig = os.path.join(workdir, "kubeconfig")
        cert_dir = os.path.join(workdir, "pki")
        token = secrets.token_urlsafe(24)
        log = open(os.path.join(workdir, "kubesim.log"), "wb")
        proc = subprocess.Popen(
            [PYTHON, "-m", "kubesim", "--port", "0", "--kubeconfig-out", kubeconfig,
             "--cert-dir", cert_dir, f"--admin-token={token}", "--log-level", "INFO", *extra_args],
            cwd=E2E_DIR, stdout=subprocess.PIPE, stderr=log, env=env)
        deadline = time.time() + 30
        line = b""
        while time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith(b"ready"):
                break
            if proc.poll() is not None:
                break
        if not line.startswith(b"ready"):
            proc.kill()
            log.close()
            raise RuntimeError("kubesim did not start: " + open(os.path.join(workdir, "kubesim.log")).read())
        url = line.decode().split()[1]
        return cls(kubeconfig, workdir, proc, url, token, cert_dir)

    @classmethod
    def start_own(cls):
        """A cluster for the caller alone (a test whose objects must not reach the session's
        cluster, such as the chart's webhooks for every namespace): a new kubesim, or, when the
        session runs on one of our real control planes, a new control plane of the same build
        (5-7 s; stopped with the cluster). Skips the calling test on any other real cluster."""
        real = os.environ.get("E2E_KUBECONFIG")
        if not real:
            return cls.start()
        import realcluster
        if realcluster.ControlPlane.of_kubeconfig(real) is None or not realcluster.built():
            import pytest
            pytest.skip("needs a cluster of its own: E2E_KUBECONFIG names a cluster that is not "
                        "one of ours (`make e2e-real` runs on one)")
        workdir = tempfile.mkdtemp(prefix="e2e-own-")
        cp = realcluster.ControlPlane.up(os.path.join(workdir, "cluster"), die_with_parent=True)
        return cls(cp.kubeconfig, workdir, control_plane=cp, owns_control_plane=True)

    def secret_values(self):
        """Secret values one can obtain from this cluster: the admin token and every token, key
        and certificate in its Secrets (at least 16 characters)."""
        values = {self.admin_token} if self.admin_token else set()
        status, _, body = self.request("GET", "/api/v1/secrets")
        if status == 200:
            for item in body.get("items", []):
                for key, value in (item.get("data") or {}).items():
                    if key.endswith(("token", ".key", ".crt", "key.pem")):
                        values.add(base64.b64decode(value).decode(errors="replace"))
        return {v for v in values if len(v) >= 16}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                Cluster.stopped.append((self.workdir, self.secret_values()))
            except (OSError, http.client.HTTPException):
                Cluster.stopped.append((self.workdir, {self.admin_token}))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.owns_control_plane and self.control_plane is not None:
            try:
                Cluster.stopped.append((self.workdir, self.secret_values()))
            except (OSError, http.client.HTTPException):
                pass
            self.control_plane.down()
            self.control_plane = None
        if self._api_client is not None:
            self._api_client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        p = os.path.join(self.workdir, "kubesim.log")
        return open(p).read() if os.path.exists(p) else ""

    # ---- kubectl ----

    def kubectl(self, *args, input=None, check=True, timeout=60, kubeconfig=None, token=None):
        if token is not None and kubeconfig is None:
            # --token beside a kubeconfig with a client certificate would send both, and the API
            # server would authenticate the certificate: a kubeconfig with the token alone.
            kubeconfig = token_kubeconfig(self, os.path.join(
                self.workdir, f"token-{hashlib.sha256(token.encode()).hexdigest()[:12]}.kubeconfig"),
                token)
        cmd = [kubectl_path(), f"--kubeconfig={kubeconfig or self.kubeconfig}",
               f"--cache-dir={os.path.join(self.workdir, 'kubectl-cache')}"]
        if token is not None:
            cmd.append(f"--token={token}")
        cmd += list(args)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        res = CommandResult(cmd[3:], proc)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl failed: {res!r}")
        return res

    def kubectl_json(self, *args, **kw):
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def apply(self, manifest, namespace=None):
        text = manifest if isinstance(manifest, str) else yaml.safe_dump_all(
            manifest if isinstance(manifest, list) else [manifest])
        args = ["apply", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, input=text)

    # ---- Python client ----

    def api_client(self):
        if self._api_client is None:
            from kubernetes import client, config
            cfg = client.Configuration()
            config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
            self._api_client = client.ApiClient(cfg)
        return self._api_client

    def core(self):
        from kubernetes import client
        return client.CoreV1Api(self.api_client())

    def custom(self):
        from kubernetes import client
        return client.CustomObjectsApi(self.api_client())

    def rbac(self):
        from kubernetes import client
        return client.RbacAuthorizationV1Api(self.api_client())

    def client_for_token(self, token):
        """A Python ApiClient that authenticates with the given bearer token."""
        from kubernetes import client, config
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        cfg.api_key = {"authorization": "Bearer " + token}
        # A client certificate would authenticate the requests instead of the token.
        cfg.cert_file = cfg.key_file = None
        return client.ApiClient(cfg)

    # ---- raw HTTP (for what clients hide: exact Status bodies, headers) ----

    def _cluster_info(self):
        cfg = yaml.safe_load(open(self.kubeconfig))
        ctx_name = cfg["current-context"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        return cluster, user

    def _client_cert_files(self, user):
        """The kubeconfig user's client certificate and key as files (ssl loads only files), or
        None when it authenticates otherwise."""
        if "client-certificate-data" in user and "client-key-data" in user:
            paths = []
            for field, name in (("client-certificate-data", "client.crt"),
                                ("client-key-data", "client.key")):
                path = os.path.join(self.workdir, name)
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                    f.write(base64.b64decode(user[field]))
                paths.append(path)
            return paths
        if "client-certificate" in user and "client-key" in user:
            return [user["client-certificate"], user["client-key"]]
        return None

    def _connection(self, timeout, as_user):
        """A kept-alive HTTPS connection to the API server (TLS handshakes dominate otherwise).
        as_user: it presents the kubeconfig user's client certificate, when it has one; a
        request that names its own token goes without it (the API server would take the
        certificate's identity over the token's)."""
        cluster, user = self._cluster_info()
        conns = self.__dict__.setdefault("_conns", {})
        if conns.get(as_user) is None:
            ctx = ssl.create_default_context()
            if "certificate-authority-data" in cluster:
                ctx.load_verify_locations(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            elif "certificate-authority" in cluster:
                ctx.load_verify_locations(cluster["certificate-authority"])
            cert_files = self._client_cert_files(user) if as_user else None
            if cert_files:
                ctx.load_cert_chain(*cert_files)
            u = urllib.parse.urlsplit(cluster["server"])
            conns[as_user] = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx,
                                                         timeout=timeout)
        conns[as_user].timeout = timeout
        return conns[as_user]

    def request(self, method, path, body=None, token=None, content_type="application/json",
                headers=None, raw=False, timeout=30):
        """Returns (status, headers, parsed JSON or bytes). As the kubeconfig's user, or with
        token when one is given ("" for an anonymous request)."""
        _, user = self._cluster_info()
        data = body if isinstance(body, (bytes, type(None))) else (
            json.dumps(body).encode() if not isinstance(body, str) else body.encode())
        hdrs = {}
        tok = token if token is not None else user.get("token")
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        if data is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        as_user = token is None
        for attempt in range(2):
            conn = self._connection(timeout, as_user)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                r = conn.getresponse()
                payload = r.read()
                status, rhdrs = r.status, r.headers
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._conns[as_user] = None
                if attempt == 1:
                    raise
        if raw:
            return status, rhdrs, payload
        try:
            return status, rhdrs, json.loads(payload) if payload else None
        except ValueError:
            return status, rhdrs, payload

    # ---- kubesim admin ----

    def _admin(self, method, path, body=None):
        if not self.is_kubesim:
            raise RuntimeError("kubesim admin API is not available on a real cluster")
        status, _, out = self.request(method, path, body, token=self.admin_token)
        if status >= 300:
            raise AssertionError(f"kubesim admin {method} {path}: {status} {out}")
        return out

    def set_faults(self, cfg):
        return self._admin("PUT", "/kubesim/faults", cfg)

    def clear_faults(self):
        return self._admin("DELETE", "/kubesim/faults")

    def compact(self):
        return self._admin("POST", "/kubesim/compact")

    def add_user(self, name, groups=(), token=None):
        """Declares a bearer-token user and returns the token: through kubesim's admin API, or
        on our real control plane through its token webhook (realcluster.py)."""
        token = token or secrets.token_urlsafe(24)
        if self.control_plane is not None:
            return self.control_plane.add_token_user(name, groups, token)
        if not self.is_kubesim:
            import pytest
            pytest.skip("declares a token user: needs kubesim's admin API or the token webhook "
                        "of our control plane, and E2E_KUBECONFIG names another cluster")
        self._admin("POST", "/kubesim/users", {"token": token, "name": name, "groups": list(groups)})
        return token

    def certificate_kubeconfig(self, user, groups=()):
        """A kubeconfig that authenticates as user in groups with a client certificate signed by
        the cluster's CA (kubesim's, or the real control plane's); returns its path."""
        path = os.path.join(self.workdir, f"cert-{user}.kubeconfig")
        if self.control_plane is not None:
            return self.control_plane.user_kubeconfig(user, groups, path=path)
        if not self.cert_dir:
            raise RuntimeError("no CA to sign a client certificate with on this cluster")
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        import realcluster
        from kubesim.certs import issue, pem_cert, pem_key
        ca_pem = open(os.path.join(self.cert_dir, "ca.crt"), "rb").read()
        ca = x509.load_pem_x509_certificate(ca_pem)
        ca_key = serialization.load_pem_private_key(
            open(os.path.join(self.cert_dir, "ca.key"), "rb").read(), None)
        cert, key = issue(ca, ca_key, user, organizations=list(groups), client=True)
        cluster, _ = self._cluster_info()
        return realcluster.write_kubeconfig(path, cluster["server"], ca_pem, pem_cert(cert),
                                            pem_key(key), user)

    # ---- helpers ----

    def namespace(self, prefix="t", labels=None):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            body["metadata"]["labels"] = labels
        self.apply(body)
        return name

    def wait_for(self, fn, timeout=20, interval=0.1, what="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# kube-apiserver caches a successful token authentication for 10 s (tokenSuccessCacheTTL), so on
# a real cluster a token may go on authenticating that long after its Secret or account is gone;
# kubesim forgets at once. Checks that a revoked token is refused wait this long for it.
TOKEN_CACHE_SECONDS = 15


def token_review(cluster, token, audiences=None):
    """The status of a TokenReview of token."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}}
    if audiences:
        body["spec"]["audiences"] = audiences
    status, _, out = cluster.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)
    assert status == 201, out
    return out["status"]


def token_refused(cluster, token, audiences=None):
    """Waits (up to the API server's token cache) until a TokenReview refuses token; its status."""
    def refused():
        st = token_review(cluster, token, audiences)
        # kube-apiserver leaves out `authenticated` when it is false.
        return st if not st.get("authenticated") else None
    return cluster.wait_for(refused, timeout=TOKEN_CACHE_SECONDS, what="the token to be refused")


def request_refused(cluster, path, token):
    """Waits (as token_refused) until GET path with token is answered 401."""
    return cluster.wait_for(lambda: cluster.request("GET", path, token=token)[0] == 401,
                            timeout=TOKEN_CACHE_SECONDS, what=f"GET {path} to be refused")


def sa_token(cluster, namespace, name, seconds=3600, audiences=None, bound=None):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}}
    if audiences:
        body["spec"]["audiences"] = audiences
    if bound:
        body["spec"]["boundObjectRef"] = bound
    status, _, out = cluster.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
    if status != 201:
        raise AssertionError(f"TokenRequest failed: {status} {out}")
    return out


if __name__ == "__main__":
    sys.exit("harness.py is a library for the e2e tests")
