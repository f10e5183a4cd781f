#!/usr/bin/python3
"""The real Kubernetes control plane of the end-to-end suite, run as local processes
(docs/kubesim.md, "The real control plane"): etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and KWOK keeping one node Ready and running its pods through KWOK's own stages.
`make deps` builds them (scripts/build-controlplane.sh) into .tools/k8s-<release>/ and
.tools/kwok-<version>/; `make cluster-up`, `make cluster-down`, the e2e fixtures and
`make demo-real` all start and stop them through this module.

    cp = ControlPlane.up("/tmp/c")      # returns once the API serves and the node is Ready
    cp.kubeconfig                       # cluster-admin (a client certificate, system:masters)
    cp.user_kubeconfig("alice", ["team-a"])  # any user and groups: a client certificate
    cp.down()                           # stops every process it started

    /usr/bin/python3 e2e/realcluster.py up DIR | down DIR | user DIR NAME [GROUP...] --out FILE
    /usr/bin/python3 e2e/realcluster.py run DIR [--cwd D] -- COMMAND...   # make e2e-real

Everything lives in DIR: pki/ (the cluster's CAs and keys, mode 0600), etcd/ (the data),
logs/<component>.log, run/<component>.pid (pid and executable; each component leads a process
group of its own), kubeconfig, cluster.json (addresses and versions). Admission webhooks are
reached through their Services as on a cluster: kube-apiserver runs with
--enable-aggregator-routing, so it calls the address an Endpoints (mirrored into an
EndpointSlice) names, and that address must be one of this machine's non-loopback addresses
(`host_ip()`): the API server refuses loopback addresses in Endpoints and EndpointSlices.
"""

import argparse
import base64
import datetime
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid

import yaml

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
if E2E_DIR not in sys.path:
    sys.path.insert(0, E2E_DIR)

import tokenwebhook  # noqa: E402
from harness import PYTHON, ROOT, free_port  # noqa: E402
from kubesim.certs import issue, make_ca, pem_cert, pem_key  # noqa: E402

GO_MODULE = os.path.join(E2E_DIR, "controlplane")
TOOLS = os.path.join(ROOT, ".tools")
NODE_NAME = "kwok-node"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"      # the `kubernetes` Service: the first address of SERVICE_CIDR
POD_CIDR = "10.244.0.0/16"    # KWOK's pod addresses (not routed anywhere)
# Start order (they are stopped in stages: down()). The token webhook is ours (tokenwebhook.py).
COMPONENTS = ("etcd", "token-webhook", "kube-apiserver", "kube-controller-manager",
              "kube-scheduler", "kwok")
BINARIES = tuple(n for n in COMPONENTS if n != "token-webhook")
TOKEN_WEBHOOK = os.path.join(E2E_DIR, "tokenwebhook.py")
# Our KWOK stages, beside KWOK's own (docs/kubesim.md): the chart's pods that tasklease runs as
# local processes get the host's address, and Job pods honour kubesim's workload annotations.
OUR_STAGES = os.path.join(GO_MODULE, "kwok", "stages.yaml")


def _required(gomod, module):
    """The version gomod requires of module (read from the file, as the build script does)."""
    with open(gomod) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2 and w[0] == module:
                return w[1]
            if len(w) >= 3 and w[0] == "require" and w[1] == module:
                return w[2]
    raise RuntimeError(f"{gomod} requires no {module}")


def k8s_version():
    return _required(os.path.join(GO_MODULE, "go.mod"), "k8s.io/kubernetes")


def kwok_version():
    return _required(os.path.join(GO_MODULE, "kwok", "go.mod"), "sigs.k8s.io/kwok")


def binary(name):
    """The path of a control-plane binary (it may not exist yet)."""
    if name == "token-webhook":
        return PYTHON
    if name == "kwok":
        return os.path.join(TOOLS, f"kwok-{kwok_version()}", "bin", "kwok")
    return os.path.join(TOOLS, f"k8s-{k8s_version()}", "bin", name)


def kwok_stages():
    return os.path.join(TOOLS, f"kwok-{kwok_version()}", "stages.yaml")


def built():
    """True when every binary of the pinned versions is there (`make deps` builds them)."""
    return all(os.access(binary(n), os.X_OK) for n in BINARIES + ("kubectl",)) and \
        os.path.exists(kwok_stages())


def _usable(ip):
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.version == 4 and not (a.is_loopback or a.is_link_local or a.is_unspecified
                                   or a.is_multicast)


def host_ip():
    """An IPv4 address of this machine that Endpoints accept (not loopback or link-local), for
    processes that serve the cluster through a Service (webhooks): $E2E_HOST_IP, else the
    source address of the default route, else the first global address `ip` lists."""
    given = os.environ.get("E2E_HOST_IP")
    if given:
        if not _usable(given):
            raise RuntimeError(f"E2E_HOST_IP={given}: not an IPv4 address Endpoints accept "
                               "(loopback and link-local addresses are refused)")
        return given
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("203.0.113.1", 9))  # sends nothing: only picks the route's source address
        ip = s.getsockname()[0]
        if _usable(ip):
            return ip
    except OSError:
        pass
    finally:
        s.close()
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        w = line.split()
        if "inet" in w:
            ip = w[w.index("inet") + 1].split("/")[0]
            if _usable(ip):
                return ip
    raise RuntimeError("this machine has no non-loopback IPv4 address; the API server refuses "
                       "loopback addresses in Endpoints, so Service-routed webhooks cannot be "
                       "reached: set E2E_HOST_IP to an address of this machine")


def _write(path, data, mode=0o600):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)
    return path


def write_kubeconfig(path, server, ca_pem, cert_pem, key_pem, user, namespace=None):
    """A kubeconfig for server that authenticates with a client certificate."""
    ctx = {"cluster": "e2e", "user": user}
    if namespace:
        ctx["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "e2e", "cluster": {
               "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
           "users": [{"name": user, "user": {
               "client-certificate-data": base64.b64encode(cert_pem).decode(),
               "client-key-data": base64.b64encode(key_pem).decode()}}],
           "contexts": [{"name": user, "context": ctx}], "current-context": user}
    return _write(path, yaml.safe_dump(cfg))


class Pki:
    """The cluster's certificates, as files in DIR/pki: the cluster CA (it signs the API server's
    serving certificate and every client certificate: users, groups, components), etcd's own CA,
    the front proxy's CA, and the service-account signing key."""

    def __init__(self, directory):
        self.dir = directory

    def path(self, name):
        return os.path.join(self.dir, name)

    def _load(self, name):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        cert = x509.load_pem_x509_certificate(open(self.path(name + ".crt"), "rb").read())
        key = serialization.load_pem_private_key(open(self.path(name + ".key"), "rb").read(), None)
        return cert, key

    def _save(self, name, cert, key):
        _write(self.path(name + ".crt"), pem_cert(cert), 0o644)
        _write(self.path(name + ".key"), pem_key(key))

    def create(self, host):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        ca, ca_key = make_ca("tasklease-e2e-ca")
        self._save("ca", ca, ca_key)
        self._save("apiserver", *issue(
            ca, ca_key, "kube-apiserver", server=True,
            dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"],
            ips=["127.0.0.1", SERVICE_IP, host]))
        etcd_ca, etcd_key = make_ca("tasklease-e2e-etcd-ca")
        self._save("etcd-ca", etcd_ca, etcd_key)
        # etcd's peer listener needs a certificate for both ends of its (single-member) peer TLS.
        self._save("etcd-server", *issue(etcd_ca, etcd_key, "etcd", server=True, client=True,
                                         dns_names=["localhost"], ips=["127.0.0.1"]))
        self._save("apiserver-etcd-client", *issue(etcd_ca, etcd_key, "kube-apiserver-etcd-client",
                                                   client=True))
        fp_ca, fp_key = make_ca("tasklease-e2e-front-proxy-ca")
        self._save("front-proxy-ca", fp_ca, fp_key)
        self._save("front-proxy-client", *issue(fp_ca, fp_key, "front-proxy-client", client=True))
        # The token webhook (tokenwebhook.py) and the client certificate the API server calls it
        # with: the only client it answers.
        self._save("token-webhook", *issue(ca, ca_key, "token-webhook", server=True,
                                           ips=["127.0.0.1"]))
        self._save("apiserver-token-webhook-client", *issue(
            ca, ca_key, tokenwebhook.CLIENT_NAME, client=True))
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(self.path("sa.key"), pem_key(sa))
        _write(self.path("sa.pub"), sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)

    def ca_pem(self):
        return open(self.path("ca.crt"), "rb").read()

    def client_pair(self, user, groups=(), days=7):
        """A client certificate (CN user, O groups) and its key, PEM, signed by the cluster CA."""
        ca, ca_key = self._load("ca")
        now = datetime.datetime.now(datetime.timezone.utc)
        cert, key = issue(ca, ca_key, user, organizations=list(groups), client=True,
                          not_after=now + datetime.timedelta(days=days))
        return pem_cert(cert), pem_key(key)


def _proc_alive(pid, exe):
    """True when pid runs exe (a recycled pid running something else is not ours) and is not a
    zombie."""
    try:
        return _proc_alive_any(pid) and \
            os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(exe)
    except OSError:
        return False


def _proc_alive_any(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _processes_in(directory):
    """{pid: component} of live processes running a control-plane binary with an argument under
    directory (also those whose pid file was never written: an interrupted start)."""
    exes = {os.path.realpath(binary(n)): n for n in BINARIES}
    python = os.path.realpath(PYTHON)
    needles = {os.path.abspath(directory).encode() + b"/",
               os.path.realpath(directory).encode() + b"/"}
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.path.realpath(f"/proc/{entry}/exe")
            if exe not in exes and exe != python:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            if exe == python:
                # Python runs many things (this very module among them): only the token webhook.
                args = cmdline.split(b"\0")
                if len(args) < 2 or os.path.realpath(args[1].decode(errors="replace")) != \
                        os.path.realpath(TOKEN_WEBHOOK):
                    continue
                name = "token-webhook"
            else:
                name = exes[exe]
            if any(n in cmdline for n in needles) and _proc_alive(int(entry), exe):
                found[int(entry)] = name
        except OSError:
            continue
    return found


def _accepts(host, port):
    """True when something accepts TCP connections at host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # not a group leader we may signal: the process alone
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class ControlPlane:
    def __init__(self, directory, die_with_parent=False):
        self.dir = os.path.abspath(directory)
        self.die_with_parent = die_with_parent
        self.pki = Pki(os.path.join(self.dir, "pki"))
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.run_dir = os.path.join(self.dir, "run")
        self.log_dir = os.path.join(self.dir, "logs")
        self.procs = {}
        info = os.path.join(self.dir, "cluster.json")
        self.info = json.load(open(info)) if os.path.exists(info) else {}

    # ---- what a test needs ----

    @property
    def server(self):
        return self.info["server"]

    @property
    def host_ip(self):
        return self.info["hostIP"]

    def user_kubeconfig(self, user, groups=(), path=None, namespace=None):
        """Writes a kubeconfig that authenticates as user in groups (a client certificate signed
        by the cluster CA, valid a week); returns its path."""
        cert, key = self.pki.client_pair(user, groups)
        path = path or os.path.join(self.dir, "users", f"{user}.kubeconfig")
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return write_kubeconfig(path, self.server, self.pki.ca_pem(), cert, key, user, namespace)

    @classmethod
    def of_kubeconfig(cls, kubeconfig):
        """The control plane whose admin kubeconfig this is (the kubeconfig `up` wrote, in its
        directory beside cluster.json), or None for any other cluster's."""
        directory = os.path.dirname(os.path.abspath(kubeconfig))
        if os.path.basename(kubeconfig) != "kubeconfig" or \
                not os.path.exists(os.path.join(directory, "cluster.json")):
            return None
        return cls(directory)

    def add_token_user(self, name, groups=(), token=None, uid=None):
        """Declares a bearer-token user (the token webhook answers for it from now on); returns
        the token. Only the token's hash is written down."""
        token = token or secrets.token_urlsafe(24)
        line = tokenwebhook.user_line(token, name, uid or str(uuid.uuid4()), list(groups))
        fd = os.open(self.pki.path(tokenwebhook.USERS_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return token

    def log_path(self, component):
        return os.path.join(self.log_dir, f"{component}.log")

    def api(self, method, path, body=None, timeout=10):
        """A request as cluster-admin: (status, parsed JSON body or None)."""
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.crt"))
        ctx.load_cert_chain(self.pki.path("admin.crt"), self.pki.path("admin.key"))
        port = int(self.server.rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            payload = r.read()
            try:
                return r.status, json.loads(payload) if payload else None
            except ValueError:
                return r.status, payload.decode(errors="replace")
        finally:
            conn.close()

    # ---- processes ----

    def _pid_file(self, name):
        return os.path.join(self.run_dir, f"{name}.pid")

    def recorded(self):
        """{component: pid} of the components whose pid file names a live process."""
        out = {}
        for name in COMPONENTS:
            try:
                pid, exe = open(self._pid_file(name)).read().split(maxsplit=1)
            except (OSError, ValueError):
                continue
            if _proc_alive(int(pid), exe.strip()):
                out[name] = int(pid)
        return out

    def running(self):
        """{pid: component} of every live process of this cluster (recorded or found by its
        arguments)."""
        found = _processes_in(self.dir)
        found.update({pid: name for name, pid in self.recorded().items()})
        return found

    def _start(self, name, args):
        exe = binary(name)
        if name == "token-webhook":
            args = [TOKEN_WEBHOOK, *args]
        log = open(self.log_path(name), "ab")
        cmd = [exe, *args]
        if self.die_with_parent:
            # The kernel kills the component when the process that started it ends, however it
            # ends (a test session killed with SIGKILL included).
            cmd = ["setpriv", "--pdeathsig", "KILL", "--", *cmd]
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        finally:
            log.close()
        self.procs[name] = p
        _write(self._pid_file(name), f"{p.pid} {exe}\n", 0o644)
        return p

    def _check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = open(self.log_path(name), errors="replace").read()[-3000:]
                raise RuntimeError(f"{name} exited with {p.returncode}; the end of "
                                   f"{self.log_path(name)}:\n{tail}")

    def _wait(self, fn, what, deadline):
        last = None
        while time.time() < deadline:
            self._check_alive()
            try:
                last = fn()
            except (OSError, http.client.HTTPException) as e:
                last = e
            else:
                if last is True:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what} (last: {last!r}); logs in {self.log_dir}")

    # ---- up ----

    @classmethod
    def up(cls, directory, die_with_parent=False, timeout=120):
        """Starts the control plane from scratch in directory (its earlier state is removed) and
        returns once the API serves, the node is Ready and the controllers run. Whatever was
        started is stopped again if that fails or is interrupted."""
        cp = cls(directory, die_with_parent)
        if cp.running():
            raise RuntimeError(f"a control plane already runs from {cp.dir} (pids "
                               f"{sorted(cp.running())}): stop it first (make cluster-down "
                               f"CLUSTER_DIR={directory})")
        if not built():
            raise RuntimeError(f"the control plane {k8s_version()} (kwok {kwok_version()}) is not "
                               f"built: run `make deps`")
        try:
            cp._up(timeout)
        except BaseException:
            cp.down()
            raise
        return cp

    def _up(self, timeout):
        started = time.time()
        deadline = started + timeout
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        for sub in ("pki", "etcd", "run", "logs", "users"):
            shutil.rmtree(os.path.join(self.dir, sub), ignore_errors=True)
        for f in ("kubeconfig", "cluster.json"):
            if os.path.exists(os.path.join(self.dir, f)):
                os.remove(os.path.join(self.dir, f))
        os.makedirs(self.run_dir)
        os.makedirs(self.log_dir)
        host = host_ip()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        token_webhook_port = free_port()
        server = f"https://127.0.0.1:{api_port}"
        self.info = {"server": server, "hostIP": host, "kubernetes": k8s_version(),
                     "kwok": kwok_version(), "node": NODE_NAME, "serviceCIDR": SERVICE_CIDR,
                     "podCIDR": POD_CIDR, "etcd": f"https://127.0.0.1:{etcd_port}"}
        self.pki.create(host)
        p = self.pki.path
        ca = self.pki.ca_pem()
        kubeconfigs = {}
        # The admin is in system:masters (as kind's and kubeadm's super-admin); the controller
        # manager and the scheduler are the users their bootstrap RBAC names; KWOK acts for the
        # node and its pods as kwokctl runs it, with an admin's rights.
        for name, user, groups in (("admin", "kubernetes-admin", ["system:masters"]),
                                   ("kube-controller-manager", "system:kube-controller-manager", []),
                                   ("kube-scheduler", "system:kube-scheduler", []),
                                   ("kwok", "kwok-controller", ["system:masters"])):
            cert, key = self.pki.client_pair(user, groups, days=365)
            if name == "admin":
                _write(p("admin.crt"), cert)
                _write(p("admin.key"), key)
                kubeconfigs[name] = write_kubeconfig(self.kubeconfig, server, ca, cert, key, user)
            else:
                kubeconfigs[name] = write_kubeconfig(p(f"{name}.kubeconfig"), server, ca, cert,
                                                     key, user)

        etcd_tls = [f"--trusted-ca-file={p('etcd-ca.crt')}", f"--cert-file={p('etcd-server.crt')}",
                    f"--key-file={p('etcd-server.key')}", "--client-cert-auth",
                    f"--peer-trusted-ca-file={p('etcd-ca.crt')}",
                    f"--peer-cert-file={p('etcd-server.crt')}",
                    f"--peer-key-file={p('etcd-server.key')}", "--peer-client-cert-auth"]
        self._start("etcd", [
            "--name=e2e", f"--data-dir={os.path.join(self.dir, 'etcd')}",
            f"--listen-client-urls=https://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=https://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=https://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=https://127.0.0.1:{peer_port}",
            f"--initial-cluster=e2e=https://127.0.0.1:{peer_port}",
            # A test cluster is thrown away with its data: no fsync (etcd's own option for this).
            "--unsafe-no-fsync", "--log-level=warn", *etcd_tls])
        # Bearer-token users a test declares at any time (add_token_user): kube-apiserver asks
        # this webhook about a token no other authenticator recognizes.
        self._start("token-webhook", [os.path.join(self.pki.dir, ""), f"--port={token_webhook_port}"])
        token_webhook_config = _write(p("token-webhook.kubeconfig"), yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "token-webhook", "cluster": {
                "server": f"https://127.0.0.1:{token_webhook_port}/authenticate",
                "certificate-authority": p("ca.crt")}}],
            "users": [{"name": "kube-apiserver", "user": {
                "client-certificate": p("apiserver-token-webhook-client.crt"),
                "client-key": p("apiserver-token-webhook-client.key")}}],
            "contexts": [{"name": "webhook", "context": {"cluster": "token-webhook",
                                                         "user": "kube-apiserver"}}],
            "current-context": "webhook"}))

        self._start("kube-apiserver", [
            f"--etcd-servers=https://127.0.0.1:{etcd_port}", f"--etcd-cafile={p('etcd-ca.crt')}",
            f"--etcd-certfile={p('apiserver-etcd-client.crt')}",
            f"--etcd-keyfile={p('apiserver-etcd-client.key')}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}",
            # The `kubernetes` Service's endpoint: Endpoints refuse a loopback address.
            f"--advertise-address={host}",
            f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
            f"--client-ca-file={p('ca.crt')}",
            f"--authentication-token-webhook-config-file={token_webhook_config}",
            "--authentication-token-webhook-version=v1",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer={server}", f"--service-account-key-file={p('sa.pub')}",
            f"--service-account-signing-key-file={p('sa.key')}",
            # Else the discovery document names the advertised address, where nothing listens.
            f"--service-account-jwks-uri={server}/openid/v1/jwks",
            # Webhooks (and aggregated APIs) are called at the address their Service's
            # endpoints name, not at the Service's cluster IP (no kube-proxy here).
            "--enable-aggregator-routing=true",
            f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
            f"--proxy-client-key-file={p('front-proxy-client.key')}",
            "--allow-privileged=true", "--profiling=false"])
        self._wait(lambda: self.api("GET", "/readyz")[0] == 200, "kube-apiserver /readyz",
                   deadline)
        self._wait(lambda: _accepts("127.0.0.1", token_webhook_port), "the token webhook", deadline)

        self._start("kube-controller-manager", [
            f"--kubeconfig={kubeconfigs['kube-controller-manager']}", "--secure-port=0",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p('sa.key')}", f"--root-ca-file={p('ca.crt')}",
            f"--cluster-signing-cert-file={p('ca.crt')}", f"--cluster-signing-key-file={p('ca.key')}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The defaults (20/s, burst 30) pace Jobs and garbage collection on a busy test run.
            "--kube-api-qps=200", "--kube-api-burst=400", "--profiling=false"])
        scheduler_config = _write(os.path.join(self.dir, "pki", "kube-scheduler.yaml"), yaml.safe_dump({
            "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": kubeconfigs["kube-scheduler"], "qps": 200,
                                 "burst": 400}}))
        self._start("kube-scheduler", [f"--config={scheduler_config}", "--secure-port=0",
                                       "--profiling=false"])
        self._start("kwok", [
            f"--kubeconfig={kubeconfigs['kwok']}", f"--config={kwok_stages()}",
            f"--config={OUR_STAGES}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}", f"--node-ip={host}", "--node-lease-duration-seconds=40"])

        node = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": NODE_NAME,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"}}}
        self._wait(lambda: self.api("POST", "/api/v1/nodes", node)[0] in (201, 409),
                   "the node to be created", deadline)

        def node_ready():
            status, n = self.api("GET", f"/api/v1/nodes/{NODE_NAME}")
            conds = (n or {}).get("status", {}).get("conditions", []) if status == 200 else []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
        self._wait(node_ready, f"node {NODE_NAME} to be Ready", deadline)
        for lease in ("kube-controller-manager", "kube-scheduler"):
            self._wait(lambda: self.api("GET", "/apis/coordination.k8s.io/v1/namespaces/"
                                        f"kube-system/leases/{lease}")[0] == 200,
                       f"{lease} to lead (its Lease)", deadline)
        # The controller manager's ServiceAccount controller has run: pods can be created.
        self._wait(lambda: self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0]
                   == 200, "the default ServiceAccount", deadline)
        self.info["startSeconds"] = round(time.time() - started, 1)
        _write(os.path.join(self.dir, "cluster.json"), json.dumps(self.info, indent=2) + "\n",
               0o644)

    # ---- down ----

    def down(self, grace=10):
        """Stops every process of this cluster, clients first, then kube-apiserver, then etcd
        (an API server whose etcd is gone takes tens of seconds to stop; in this order the
        whole takes a second or two): SIGTERM to each process group, SIGKILL to what is left
        of a stage after grace seconds. Returns the pids that were running."""
        before = self.running()
        for stage in (("kwok", "kube-scheduler", "kube-controller-manager"), ("kube-apiserver",),
                      ("etcd", "token-webhook")):
            pids = [pid for pid, name in self.running().items() if name in stage]
            for pid in pids:
                _signal_group(pid, signal.SIGTERM)
            deadline = time.time() + grace
            while time.time() < deadline and any(_proc_alive_any(pid) for pid in pids):
                self._reap()
                time.sleep(0.05)
            for pid in pids:
                if _proc_alive_any(pid):
                    _signal_group(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while time.time() < deadline and self.running():
            for pid in self.running():
                _signal_group(pid, signal.SIGKILL)
            self._reap()
            time.sleep(0.1)
        self._reap()
        left = self.running()
        if left:
            raise RuntimeError(f"processes of {self.dir} survived SIGKILL: {left}")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.procs = {}
        return sorted(before)

    def _reap(self):
        """Collects the exit status of the components this process started (zombies otherwise)."""
        for p in self.procs.values():
            p.poll()


def run_with_cluster(directory, command, cwd=None):
    """`make e2e-real`: the control plane up in directory (as `make cluster-up` starts it), the
    command run with E2E_KUBECONFIG and KUBECONFIG naming its admin kubeconfig, then everything
    stopped, however the command ends. The components die with this process even if it is
    killed (--pdeathsig). Returns the command's exit status."""
    if not command:
        print("run: no command given (realcluster.py run DIR -- COMMAND...)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cp = ControlPlane.up(directory, die_with_parent=True)
    except RuntimeError as e:
        print(f"run: {e}", file=sys.stderr)
        return 1
    try:
        print(f"run: Kubernetes {cp.info['kubernetes']} up in {cp.info['startSeconds']} s at "
              f"{cp.server}; logs in {cp.log_dir}", flush=True)
        env = dict(os.environ, E2E_KUBECONFIG=cp.kubeconfig, KUBECONFIG=cp.kubeconfig)
        return subprocess.run(command, cwd=cwd, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        stopped = cp.down()
        print(f"run: stopped the {len(stopped)} processes of {cp.dir}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the control plane in DIR (in the background)")
    up.add_argument("dir")
    up.add_argument("--timeout", type=float, default=120)
    down = sub.add_parser("down", help="stop every process of the control plane in DIR")
    down.add_argument("dir")
    user = sub.add_parser("user", help="write a kubeconfig for a user (a client certificate)")
    user.add_argument("dir")
    user.add_argument("name")
    user.add_argument("groups", nargs="*")
    user.add_argument("--out", required=True)
    user.add_argument("--namespace")
    run = sub.add_parser("run", help="start the control plane in DIR, run a command with "
                                     "E2E_KUBECONFIG (and KUBECONFIG) naming it, stop it")
    run.add_argument("dir")
    run.add_argument("--cwd", default=None, help="the command's working directory (then -- COMMAND...)")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    if args.cmd == "up":
        # SIGTERM ends the start-up as Ctrl-C does: what was started is stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            cp = ControlPlane.up(args.dir, timeout=args.timeout)
        except RuntimeError as e:
            print(f"cluster-up: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("cluster-up: interrupted; everything it started is stopped", file=sys.stderr)
            return 130
        print(f"cluster-up: Kubernetes {cp.info['kubernetes']} (KWOK {cp.info['kwok']}, node "
              f"{NODE_NAME}) up in {cp.info['startSeconds']} s at {cp.server}\n"
              f"  export KUBECONFIG={cp.kubeconfig}\n"
              f"  logs in {cp.log_dir}; stop it with `make cluster-down CLUSTER_DIR={args.dir}`")
        return 0
    if args.cmd == "run":
        return run_with_cluster(args.dir, command, args.cwd)
    if args.cmd == "down":
        cp = ControlPlane(args.dir)
        try:
            pids = cp.down()
        except RuntimeError as e:
            print(f"cluster-down: {e}", file=sys.stderr)
            return 1
        print(f"cluster-down: stopped {len(pids)} processes of {cp.dir}" if pids else
              f"cluster-down: nothing of {cp.dir} was running")
        return 0
    cp = ControlPlane(args.dir)
    if not cp.info:
        print(f"cluster: no control plane was started in {cp.dir}", file=sys.stderr)
        return 1
    print(cp.user_kubeconfig(args.name, args.groups, args.out, args.namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
