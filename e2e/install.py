"""tasklease installed from its Helm chart with the real helm (`helm install`, `helm upgrade`,
`helm uninstall`), with the webhook and the operator running as local processes: what
`make demo` and `make demo-real` show and what test_install.py checks.

The Deployments' containers are the project's binaries started here with the arguments and
environment the chart gives them, each under its own ServiceAccount's token (so the chart's RBAC
is what they get). Only what a pod would get from its surroundings is replaced: the kubeconfig
(in-cluster config in a pod), the writable paths, and the ports' owner.

- On the real control plane the chart's pods exist: the scheduler puts them on KWOK's node and
  one process runs per Running pod, as that pod (its name, a token bound to it, as the kubelet
  mounts one); `sync()` follows the pods through upgrades and uninstalls. The webhook's pod
  carries the label HOST_PROCESS_LABEL (through the chart's podLabels value), for which our KWOK
  stage (e2e/controlplane/kwok/stages.yaml) reports this machine's address as the pod IP; the
  chart's container ports are set (values) to ports free here, on which the webhook process
  listens. The endpoint controllers then point the chart's Service at it, and kube-apiserver
  calls the webhook through its Service, as on a cluster.
- kubesim runs no Deployments: one process per replica runs under a made-up pod name, and the
  webhook Service's Endpoints are written here, naming this machine's address.

    inst = Installation(cluster, workdir).install()   # helm install, start, wait until serving
    ...
    inst.upgrade("--set", "webhook.logLevel=debug")   # helm upgrade, follow the rolled pods
    inst.uninstall()                                   # helm uninstall, stop the processes
"""

import contextlib
import os
import re
import subprocess
import tempfile

import yaml

from binaries import Binary, http_ok
from harness import ROOT, Cluster, free_port, kubectl_path, token_kubeconfig
from realcluster import host_ip

CHART = os.path.join(ROOT, "helm", "tasklease")
NAMESPACE = "tasklease-system"
RELEASE = "tasklease"


def helm_path():
    p = os.path.join(ROOT, ".tools", "bin", "helm")
    if not os.path.exists(p):
        raise RuntimeError(f"{p} does not exist: run `make deps` first")
    return p


def render(values=(), namespace=NAMESPACE, release=RELEASE, only=None, helm_args=()):
    """`helm template` of the chart with values (--set) and further helm_args; returns the
    objects (CRDs included, unless only names the one template wanted, e.g.
    "templates/operator-rbac.yaml")."""
    args = [helm_path(), "template", release, CHART, "--namespace", namespace, *helm_args]
    args += ["--show-only", only] if only else ["--include-crds"]
    for v in values:
        args += ["--set", v]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"helm template failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def service_account_kubeconfig(cluster, namespace, service_account, path, bound=None):
    """Writes a kubeconfig with a day-long token of the ServiceAccount (what its pod would
    have), bound to `bound` (a boundObjectRef: the pod) when given; returns its path."""
    spec = {"expirationSeconds": 24 * 3600}
    if bound:
        spec["boundObjectRef"] = bound
    status, _, out = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
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


HOST_PROCESS_LABEL = "e2e.tasklease.io/host-process"
COMPONENTS = ("webhook", "operator")


class Installation:
    def __init__(self, cluster, workdir, values=(), namespace=NAMESPACE, release=RELEASE):
        """values: the chart's values to set (`key=value`, as helm --set takes them)."""
        self.cluster, self.workdir = cluster, workdir
        self.values, self.namespace, self.release = list(values), namespace, release
        # The chart's pods run (on KWOK's node) on the real control plane; not on kubesim.
        self.has_pods = cluster.control_plane is not None
        self.objects = []
        # (component, pod name) -> Binary
        self.processes = {}
        self.operator_args = []
        self.operator_starts = 0
        # The webhook listens on these ports of this machine, which the chart's container ports
        # name, so the Service's endpoints lead to it.
        self.webhook_port, self.webhook_metrics_port = free_port("0.0.0.0"), free_port("0.0.0.0")
        self.webhook_evidence = os.path.join(workdir, "webhook-evidence.jsonl")

    # ---- the chart ----

    def values_args(self):
        """The values of every helm command: the installation's own (ports, one webhook replica:
        one process can own the webhook's port here; the host-process pod label), then the
        test's."""
        label = HOST_PROCESS_LABEL.replace(".", "\\.")
        own = [f"webhook.port={self.webhook_port}",
               f"webhook.metricsPort={self.webhook_metrics_port}", "webhook.replicas=1"]
        return [a for v in own + self.values for a in ("--set", v)] + \
            ["--set-string", f"webhook.podLabels.{label}=true"]

    def helm(self, *args, check=True):
        cmd = [helm_path(), *args, "--kubeconfig", self.cluster.kubeconfig, "--namespace",
               self.namespace]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args[:2])} failed ({out.returncode}):\n"
                                 f"{out.stdout}{out.stderr}")
        return out

    def of_kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def deployment(self, component):
        for d in self.of_kind("Deployment"):
            labels = d["metadata"].get("labels", {})
            if labels.get("app.kubernetes.io/component") == component:
                return d
        raise AssertionError(f"the chart renders no Deployment for component {component!r}")

    def install(self):
        """`helm install` (CRDs from the chart's crds/ first, as helm does), then the components
        started and serving."""
        self.objects = render((), self.namespace, self.release, helm_args=self.values_args())
        self.helm("install", self.release, CHART, "--create-namespace", *self.values_args())
        for crd in self.of_kind("CustomResourceDefinition"):
            self.cluster.kubectl("wait", "--for=condition=Established",
                                 f"crd/{crd['metadata']['name']}", "--timeout=30s")
        self.sync()
        return self

    def upgrade(self, *values):
        """`helm upgrade` with the installation's values and these added (`key=value`); then the
        processes follow the pods the Deployments rolled."""
        self.values += list(values)
        self.objects = render((), self.namespace, self.release, helm_args=self.values_args())
        self.helm("upgrade", self.release, CHART, *self.values_args())
        self.sync()
        return self

    def uninstall(self):
        """`helm uninstall`; the processes stop with their pods."""
        self.helm("uninstall", self.release, "--wait", "--timeout=60s")
        self.objects = []
        self.sync()
        return self

    # ---- the processes ----

    def _pods(self, component):
        """The pods of a component a process must run for: on the real control plane its
        Deployment's Running pods, as (name, uid); on kubesim one made-up pod per replica."""
        if not self.objects:
            return []
        dep = self.deployment(component)
        if not self.has_pods:
            replicas = dep["spec"].get("replicas", 1)
            base = f"{dep['metadata']['name']}-local"
            return [(base if replicas == 1 else f"{base}-{i}", None) for i in range(replicas)]
        selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
        pods = self.cluster.kubectl_json("get", "pods", "-n", self.namespace, "-l", selector)
        return sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods["items"]
                      if p["status"].get("phase") == "Running"
                      and not p["metadata"].get("deletionTimestamp"))

    def _wait_for_rollout(self):
        """Until every Deployment of the chart has exactly its replicas Running, all of its
        current template (old pods of a rolling update gone)."""
        for dep in self.of_kind("Deployment"):
            name = dep["metadata"]["name"]
            self.cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", self.namespace,
                                 "--timeout=90s", timeout=120)
            want = dep["spec"].get("replicas", 1)
            component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
            self.cluster.wait_for(lambda: len(self._pods(component)) == want and all(
                not p["metadata"].get("deletionTimestamp") for p in self.cluster.kubectl_json(
                    "get", "pods", "-n", self.namespace, "-l", ",".join(
                        f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
                )["items"]), timeout=60, what=f"the pods of deployment {name}")

    def sync(self):
        """Runs one process per pod of each component, no more: starts those of new pods (and
        again those that died), stops those of pods that are gone (an upgrade rolled them, or the
        chart is uninstalled), and waits until the webhook serves with its caBundle in place."""
        if self.has_pods and self.objects:
            self._wait_for_rollout()
        for component in COMPONENTS:
            pods = self._pods(component)
            names = {name for name, _ in pods}
            for key in [k for k in self.processes if k[0] == component and k[1] not in names]:
                self.processes.pop(key).stop()
            # A process that died is started again, as the kubelet restarts a container; one
            # started from another pod template too (kubesim has no pods to roll).
            template = self.deployment(component)["spec"]["template"] if self.objects else None
            for key in [k for k in self.processes if k[0] == component and (
                    not self.processes[k].running() or self.processes[k].template != template)]:
                self.processes.pop(key).stop()
            for name, uid in pods:
                if (component, name) not in self.processes:
                    self._start(component, name, uid)
        if self.webhook is not None:
            self.cluster.wait_for(self._ca_bundles_set, timeout=30,
                                  what="the webhook's caBundle in its configurations")
        return self

    def _kubeconfig_for(self, service_account, pod, uid):
        """A kubeconfig with a token of the chart's ServiceAccount, what a pod's in-cluster
        config holds: on the real control plane bound to the pod (it dies with the pod, as the
        kubelet's does)."""
        path = os.path.join(self.workdir, f"{pod}.kubeconfig")
        bound = {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": uid} if uid else None
        return service_account_kubeconfig(self.cluster, self.namespace, service_account, path,
                                          bound)

    def _container(self, component, pod):
        dep = self.deployment(component)
        spec = dep["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[e["name"]] = self.namespace
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = pod
        # The kubelet expands $(VAR) in args from the container's environment.
        args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
                for a in container.get("args", [])]
        return spec.get("serviceAccountName", "default"), args, env

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

    def _start(self, component, pod, uid):
        sa, args, env = self._container(component, pod)
        replace = {"--kubeconfig": self._kubeconfig_for(sa, pod, uid),
                   "--evidence-stdout": "false"}
        if component == "webhook":
            replace["--evidence-file"] = self.webhook_evidence
            if not self.has_pods:
                self._point_service_at(self.webhook_port, self.webhook_metrics_port)
            ready = f"http://127.0.0.1:{self.webhook_metrics_port}/readyz"
            extra = []
            evidence = self.webhook_evidence
        else:
            # Each operator process writes a file of its own; the chain head lives in the
            # chart's ConfigMap, so the chain goes on from one file to the next.
            self.operator_starts += 1
            evidence = os.path.join(self.workdir, "operator-evidence.jsonl" if
                                    self.operator_starts == 1 else
                                    f"operator-evidence-{self.operator_starts}.jsonl")
            port = free_port()
            replace.update({"--metrics-port": port, "--evidence-file": evidence})
            ready = f"http://127.0.0.1:{port}/readyz"
            extra = self.operator_args
        args = _override(self._local_paths(args), replace) + list(extra)
        proc = Binary.start(f"tasklease-{component}", args, env=env, log_dir=self.workdir,
                            ready=lambda: http_ok(ready), timeout=60)
        proc.pod, proc.evidence = pod, evidence
        proc.template = self.deployment(component)["spec"]["template"]
        proc.port = int(ready.rsplit(":", 1)[1].split("/")[0])
        self.processes[(component, pod)] = proc
        return proc

    def _point_service_at(self, port, metrics_port):
        """kubesim has no endpoint controllers: the webhook Service's Endpoints written here,
        naming this machine's address (not loopback: the API server refuses it) and the ports the
        process listens on."""
        services = [s for s in self.of_kind("Service")
                    if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "webhook"]
        if not services:
            raise AssertionError("the chart renders no webhook Service")
        svc = services[0]
        ports = [{"name": p.get("name", "https"),
                  "port": metrics_port if p.get("name") == "metrics" else port, "protocol": "TCP"}
                 for p in svc["spec"]["ports"]]
        self.cluster.apply({"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": svc["metadata"]["name"],
                                         "namespace": self.namespace},
                            "subsets": [{"addresses": [{"ip": host_ip()}], "ports": ports}]})

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

    def of_component(self, component):
        return [b for (c, _), b in sorted(self.processes.items()) if c == component]

    @property
    def webhook(self):
        found = self.of_component("webhook")
        return found[0] if found else None

    def lease(self):
        """The operator's Lease (the name the chart passes by --leader-elect-lease), or None."""
        args = self.deployment("operator")["spec"]["template"]["spec"]["containers"][0]["args"]
        name = next(a.split("=", 1)[1] for a in args if a.startswith("--leader-elect-lease="))
        status, _, lease = self.cluster.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{name}")
        return lease if status == 200 else None

    @property
    def operator(self):
        """The operator process that leads (the Lease names its pod), else the first."""
        found = self.of_component("operator")
        if len(found) > 1:
            holder = ((self.lease() or {}).get("spec") or {}).get("holderIdentity")
            found = [b for b in found if b.pod == holder] + found
        return found[0] if found else None

    @property
    def operator_port(self):
        return self.operator.port if self.operator else None

    @property
    def operator_evidence(self):
        """The evidence file of the operator that leads (it writes the tasks' records)."""
        return self.operator.evidence if self.operator else None

    def restart_operator(self, extra_args=()):
        """Stops the operator processes (the leader gives up its Lease) and starts them again
        with `extra_args` appended to the chart's arguments (as the chart's operator.extraArgs
        would), each writing a new evidence file."""
        for key in [k for k in self.processes if k[0] == "operator"]:
            self.processes.pop(key).stop()
        self.operator_args = list(extra_args)
        return self.sync()

    def stop(self):
        for key in sorted(self.processes, reverse=True):  # the operators, then the webhook
            self.processes.pop(key).stop()

    def logs(self):
        return {f"{c}/{pod}": b.log_path for (c, pod), b in self.processes.items()}


@contextlib.contextmanager
def installed_from_chart(values=(), prefix="tasklease-chart-"):
    """For a test: a cluster of its own (a kubesim, or on the real control plane another control
    plane: Cluster.start_own) with tasklease installed from the chart (its webhook
    configurations apply to every namespace, so they stay out of the shared cluster); yields
    (cluster, installation) and stops both, also when the installation fails half-way."""
    cluster = Cluster.start_own()
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
