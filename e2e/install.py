"""tasklease installed from its Helm chart into kubesim, with the webhook and the operator running
as local processes: what `make demo` shows and what test_install.py checks.

The chart is rendered with the real helm (`helm template`, so nothing is generated at template
time) and every object is applied with the real kubectl. kubesim runs no Deployments, so the two
Deployments' containers are started here instead, with the arguments and environment the chart
gives them, each under its own ServiceAccount's token (so the chart's RBAC is what they get).
Only what a pod would get from its surroundings is replaced: the kubeconfig (in-cluster config
in a pod), the ports and the writable paths. The webhook Service's Endpoints point at the local
webhook, so kubesim calls it through the Service exactly as kube-apiserver would. On the real
control plane (bench/pod_create_bench.py) they name the machine's address (`endpoint_ip`), and
the Service has no selector, so that the endpoints controller leaves them alone.

    inst = Installation(cluster, workdir).install()   # render, apply, start, wait until serving
    ...
    inst.stop()
"""

import contextlib
import os
import re
import subprocess
import tempfile
import time

import yaml

from binaries import Binary, http_ok
from harness import ROOT, Cluster, free_port, kubectl_path, token_kubeconfig

CHART = os.path.join(ROOT, "helm", "tasklease")
NAMESPACE = "tasklease-system"
RELEASE = "tasklease"


def helm_path():
    p = os.path.join(ROOT, ".tools", "bin", "helm")
    if not os.path.exists(p):
        raise RuntimeError(f"{p} does not exist: run `make deps` first")
    return p


def render(values=(), namespace=NAMESPACE, release=RELEASE, only=None):
    """`helm template` of the chart; returns the objects (CRDs included, unless only names the
    one template wanted, e.g. "templates/operator-rbac.yaml")."""
    args = [helm_path(), "template", release, CHART, "--namespace", namespace]
    args += ["--show-only", only] if only else ["--include-crds"]
    for v in values:
        args += ["--set", v]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"helm template failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def service_account_kubeconfig(cluster, namespace, service_account, path):
    """Writes a kubeconfig with a day-long token of the ServiceAccount (what its pod would
    have); returns its path."""
    status, _, out = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 24 * 3600}})
    if status != 201:
        raise AssertionError(f"TokenRequest for {service_account}: {status} {out}")
    return token_kubeconfig(cluster, path, out["status"]["token"], namespace)


def apply_operator_rbac(cluster, workdir, namespace=NAMESPACE):
    """The operator's ServiceAccount and RBAC exactly as the chart renders them, applied (the
    chart's RBAC is the operator's documented permission set: docs/operator.md); returns (a
    kubeconfig with a token of that ServiceAccount, what the operator's pod would have; the
    objects applied)."""
    objects = render(namespace=namespace, only="templates/operator-rbac.yaml")
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    cluster.apply(objects)
    sa = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
    return service_account_kubeconfig(cluster, namespace, sa,
                                      os.path.join(workdir, "operator.kubeconfig")), objects


def _override(args, replace):
    """The container's args with the flags in `replace` set to new values (a None value drops
    the flag). Both `--flag=value` and `--flag value` forms are understood."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if name in replace:
            if "=" not in a and i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
            i += 1
            continue
        out.append(a)
        i += 1
    for name, value in replace.items():
        if value is not None:
            out.append(f"{name}={value}")
    return out


class Installation:
    def __init__(self, cluster, workdir, values=(), namespace=NAMESPACE, release=RELEASE,
                 endpoint_ip="127.0.0.1"):
        """endpoint_ip: the address the webhook Service's Endpoints name (the local webhook
        listens on every address). kube-apiserver refuses loopback addresses in Endpoints: on
        the real control plane pass realcluster.host_ip()."""
        self.cluster, self.workdir = cluster, workdir
        self.endpoint_ip = endpoint_ip
        self.values, self.namespace, self.release = list(values), namespace, release
        self.objects = []
        self.webhook = self.operator = None
        self.operator_starts = 0
        self.webhook_port = self.webhook_metrics_port = self.operator_port = None
        self.webhook_evidence = os.path.join(workdir, "webhook-evidence.jsonl")
        self.operator_evidence = os.path.join(workdir, "operator-evidence.jsonl")

    # ---- the chart ----

    def of_kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def deployment(self, component):
        for d in self.of_kind("Deployment"):
            labels = d["metadata"].get("labels", {})
            if labels.get("app.kubernetes.io/component") == component:
                return d
        raise AssertionError(f"the chart renders no Deployment for component {component!r}")

    def apply_chart(self):
        self.objects = render(self.values, self.namespace, self.release)
        if not self.cluster.is_kubesim:
            # A real cluster's endpoints controller rewrites the Endpoints of a Service that has
            # a selector from the pods it selects; the webhook runs here as a local process, not
            # a pod, so its Service selects nothing and _point_service_at names the process.
            for svc in self._webhook_services():
                svc["spec"].pop("selector", None)
        crds = [o for o in self.objects if o["kind"] == "CustomResourceDefinition"]
        rest = [o for o in self.objects if o["kind"] != "CustomResourceDefinition"]
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": self.namespace}})
        self._kubectl_apply(crds)
        for crd in crds:
            self.cluster.kubectl("wait", "--for=condition=Established",
                                 f"crd/{crd['metadata']['name']}", "--timeout=30s")
        self._kubectl_apply(rest)
        return self

    def _kubectl_apply(self, objects):
        if not objects:
            return
        path = os.path.join(self.workdir, f"apply-{time.time_ns()}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(objects, f)
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", path)

    # ---- the processes ----

    def _kubeconfig_for(self, service_account):
        """A kubeconfig with a token of the chart's ServiceAccount (a pod's in-cluster config)."""
        return service_account_kubeconfig(
            self.cluster, self.namespace, service_account,
            os.path.join(self.workdir, f"{service_account}.kubeconfig"))

    def _container(self, component):
        dep = self.deployment(component)
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[e["name"]] = self.namespace
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = f"{dep['metadata']['name']}-local"
        # The kubelet expands $(VAR) in args from the container's environment.
        args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
                for a in container.get("args", [])]
        return pod.get("serviceAccountName", "default"), args, env

    def _point_service_at(self, port, metrics_port):
        """The webhook Service's Endpoints name the local process (kubesim has no kubelet): its
        `metrics` port the process's metrics port, every other port its HTTPS port."""
        services = self._webhook_services()
        if not services:
            raise AssertionError("the chart renders no webhook Service")
        svc = services[0]
        ports = [{"name": p.get("name", "https"),
                  "port": metrics_port if p.get("name") == "metrics" else port, "protocol": "TCP"}
                 for p in svc["spec"]["ports"]]
        self.cluster.apply({"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": svc["metadata"]["name"],
                                         "namespace": self.namespace},
                            "subsets": [{"addresses": [{"ip": self.endpoint_ip}], "ports": ports}]})

    def _webhook_services(self):
        return [s for s in self.of_kind("Service")
                if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "webhook"]

    def _local_paths(self, args):
        """Paths inside the pod (its emptyDir volumes) moved under the workdir; directories are
        made, as the kubelet makes volumes."""
        out = []
        for a in args:
            flag, sep, value = a.partition("=")
            if sep and value.startswith("/"):
                local = os.path.join(self.workdir, "pod" + value)
                os.makedirs(local if flag.endswith("-dir") else os.path.dirname(local),
                            exist_ok=True)
                a = f"{flag}={local}"
            out.append(a)
        return out

    def start_webhook(self):
        sa, args, env = self._container("webhook")
        self.webhook_port, self.webhook_metrics_port = free_port(), free_port()
        self._point_service_at(self.webhook_port, self.webhook_metrics_port)
        args = _override(self._local_paths(args), {"--kubeconfig": self._kubeconfig_for(sa),
                                "--port": self.webhook_port,
                                "--metrics-port": self.webhook_metrics_port,
                                "--evidence-file": self.webhook_evidence,
                                "--evidence-stdout": "false"})
        self.webhook = Binary.start(
            "tasklease-webhook", args, env=env, log_dir=self.workdir,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.webhook_metrics_port}/readyz"))
        self.cluster.wait_for(self._ca_bundles_set, timeout=30,
                              what="the webhook's caBundle in its configurations")
        return self

    def _ca_bundles_set(self):
        for kind, plural in (("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
                             ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations")):
            for cfg in self.of_kind(kind):
                status, _, live = self.cluster.request(
                    "GET", f"/apis/admissionregistration.k8s.io/v1/{plural}/{cfg['metadata']['name']}")
                if status != 200 or not all(w.get("clientConfig", {}).get("caBundle")
                                            for w in live.get("webhooks", [])):
                    return False
        return True

    def start_operator(self, extra_args=()):
        """Starts the operator Deployment's container; `extra_args` are appended to the chart's
        arguments (as the chart's operator.extraArgs would). Each start after the first writes a
        new evidence file (operator_evidence names the current one); the chain head lives in the
        chart's ConfigMap, so the chain goes on from one file to the next."""
        sa, args, env = self._container("operator")
        self.operator_port = free_port()
        self.operator_starts += 1
        if self.operator_starts > 1:
            self.operator_evidence = os.path.join(
                self.workdir, f"operator-evidence-{self.operator_starts}.jsonl")
        args = _override(self._local_paths(args), {"--kubeconfig": self._kubeconfig_for(sa),
                                "--metrics-port": self.operator_port,
                                "--evidence-file": self.operator_evidence,
                                "--evidence-stdout": "false"}) + list(extra_args)
        self.operator = Binary.start(
            "tasklease-operator", args, env=env, log_dir=self.workdir,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.operator_port}/readyz"), timeout=60)
        return self

    def restart_operator(self, extra_args=()):
        """Stops the operator (it gives up its Lease) and starts it again with `extra_args`."""
        if self.operator is not None:
            self.operator.stop()
        return self.start_operator(extra_args)

    def install(self):
        return self.apply_chart().start_webhook().start_operator()

    def stop(self):
        for b in (self.operator, self.webhook):
            if b is not None:
                b.stop()
        self.operator = self.webhook = None

    def logs(self):
        return {b.name: b.log_path for b in (self.webhook, self.operator) if b is not None}


@contextlib.contextmanager
def installed_from_chart(values=(), prefix="tasklease-chart-"):
    """For a test: a kubesim of its own with tasklease installed from the chart (the chart's
    webhook configurations apply to every namespace, so they stay out of the shared cluster);
    yields (cluster, installation) and stops both, also when the installation fails half-way.
    Skips the test against a real cluster (E2E_KUBECONFIG), where the components would have to
    run from the image instead of as local processes."""
    if os.environ.get("E2E_KUBECONFIG"):
        import pytest
        pytest.skip("runs the components as local processes behind kubesim's Endpoints")
    cluster = Cluster.start()
    try:
        inst = Installation(cluster, tempfile.mkdtemp(prefix=prefix), values)
        try:
            inst.install()
            yield cluster, inst
        finally:
            inst.stop()
    finally:
        cluster.stop()


if __name__ == "__main__":
    raise SystemExit(f"install.py is a library (kubectl at {kubectl_path()})")
