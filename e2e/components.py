"""The tasklease components as processes for end-to-end tests: the webhook with a serving
certificate made for the test and its registration in the cluster.

    wh = Webhook.start(cluster, workdir)
    wh.register()                       # Validating (pods, workloads, IdentityExceptions)
    ...
    wh.stop()
"""

import base64
import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from binaries import Binary, http_ok
from harness import ROOT, free_port

WORKLOAD_RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]},
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["jobs", "cronjobs"]},
    {"apiGroups": ["tasklease.io"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["identityexceptions"]},
]


def self_signed(workdir, hosts=("localhost",), ips=("127.0.0.1",)):
    """A serving certificate that is its own CA; returns (cert path, key path, PEM bytes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tasklease-webhook")])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cp, kp = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
    with open(cp, "wb") as f:
        f.write(pem)
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cp, kp, pem


def install_crds(cluster):
    cluster.kubectl("apply", "-f", os.path.join(ROOT, "crds"))
    for name in ("agenttasks", "agentpolicies", "identityexceptions"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}.tasklease.io",
                        "--timeout=30s")


def start_agenttask_webhook(cluster, label, workdir_prefix, extra_args=()):
    """The webhook with its signing key in a namespace of its own, stamping and validating
    AgentTasks in namespaces labelled `label`=<this process> and checking workloads where
    enforcement is on. Returns (webhook, its namespace, the label selector)."""
    import tempfile
    install_crds(cluster)
    own = cluster.namespace("tlwh")
    wh = Webhook.start(cluster, tempfile.mkdtemp(prefix=workdir_prefix),
                       extra_args=["--namespace", own, *extra_args])
    selector = {label: str(os.getpid())}
    name = f"{label.split('/')[-1]}-{os.getpid()}"
    wh.register_agenttasks(name, selector)
    wh.register(name=f"{name}-workloads", rules=WORKLOAD_RULES)
    return wh, own, selector


class Webhook:
    def __init__(self, cluster, binary, port, metrics_port, ca_pem, workdir, evidence_file):
        self.cluster, self.binary = cluster, binary
        self.port, self.metrics_port = port, metrics_port
        self.ca_pem, self.workdir, self.evidence_file = ca_pem, workdir, evidence_file
        self.configs = []

    @classmethod
    def start(cls, cluster, workdir, extra_args=()):
        cert, key, pem = self_signed(workdir)
        port, mport = free_port(), free_port()
        evidence = os.path.join(workdir, "webhook-evidence.jsonl")
        b = Binary.start("tasklease-webhook", [
            "--tls-cert-file", cert, "--tls-private-key-file", key, "--port", str(port),
            "--metrics-port", str(mport), "--kubeconfig", cluster.kubeconfig,
            "--evidence-file", evidence, "--evidence-stdout=false", *extra_args],
            ready=lambda: http_ok(f"http://127.0.0.1:{mport}/readyz"), log_dir=workdir)
        return cls(cluster, b, port, mport, pem, workdir, evidence)

    @property
    def ca_bundle(self):
        return base64.b64encode(self.ca_pem).decode()

    def https_context(self):
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def register(self, name="tasklease-test", failure_policy="Fail", rules=None):
        """Registers /validate for workloads in namespaces that carry the enforcement label."""
        hook = {"name": "validate.tasklease.io", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": failure_policy, "timeoutSeconds": 5,
                "clientConfig": {"url": f"https://127.0.0.1:{self.port}/validate",
                                 "caBundle": self.ca_bundle},
                "namespaceSelector": {"matchExpressions": [
                    {"key": "tasklease.io/enforcement", "operator": "Exists"}]},
                "rules": rules or WORKLOAD_RULES}
        self.cluster.apply({"apiVersion": "admissionregistration.k8s.io/v1",
                            "kind": "ValidatingWebhookConfiguration",
                            "metadata": {"name": name}, "webhooks": [hook]})
        self.configs.append(("validatingwebhookconfiguration", name))

    def register_agenttasks(self, name, selector):
        """Registers /mutate (stamping) and /validate for AgentTasks in namespaces matching the
        label selector, as the chart does."""
        rules = [{"apiGroups": ["tasklease.io"], "apiVersions": ["v1alpha1"],
                  "operations": ["CREATE", "UPDATE"], "resources": ["agenttasks"]}]
        for kind, path in (("MutatingWebhookConfiguration", "/mutate"),
                           ("ValidatingWebhookConfiguration", "/validate")):
            hook = {"name": f"{path[1:]}-tasks.tasklease.io", "admissionReviewVersions": ["v1"],
                    "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                    "clientConfig": {"url": f"https://127.0.0.1:{self.port}{path}",
                                     "caBundle": self.ca_bundle},
                    "namespaceSelector": {"matchLabels": selector}, "rules": rules}
            self.cluster.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                "metadata": {"name": name}, "webhooks": [hook]})
            self.configs.append((kind.lower(), name))

    def unregister(self):
        for kind, name in self.configs:
            self.cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)
        self.configs = []

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.unregister()
        return self.binary.stop()
