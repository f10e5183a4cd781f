#!/usr/bin/python3
"""What tasklease adds to a pod CREATE on kube-apiserver: the same pods created through the real
control plane (e2e/realcluster.py) with no webhook registered and with tasklease registered, in
alternating rounds, side by side in the same run.

tasklease is installed from its chart (CRDs, RBAC, both webhook configurations); the webhook runs
as a local process under its chart's ServiceAccount with the chart's arguments, so it keeps its
own CA, serving certificate and caBundle (--manage-certs), and kube-apiserver calls it through
its Service (docs/kubesim.md, "The real control plane": the Service's Endpoints name this
machine's address). The pods go into a namespace with tasklease.io/enforcement=enforce; each is
the three-container pod of bench/webhook_bench.py's Deployment (env, probes, resources, volumes),
controlled by that Deployment (paused, 0 replicas: no controller acts on the pods) and running
under a ServiceAccount dedicated to it, so the webhook evaluates every rule and admits it.

The pods name a scheduler that does not exist, so they stay Pending: the figure is the CREATE,
and a scheduled pod would have the scheduler bind it and KWOK write its status right after its
CREATE, work that costs the API server and etcd the same with and without the webhook and would
only add noise to the rounds.

"No webhook" rounds delete both of tasklease's webhook configurations (the Validating one with
propagationPolicy Orphan: it owns the webhook's certificate Secret), "tasklease" rounds create
them again as they were; each switch is confirmed by a pod that breaks TL001 (admitted without,
refused with). Each measurement is made with 1 CREATE in flight (the latency one CREATE sees)
and with 16 (a ReplicaSet scaling up creates its pods in concurrent batches; the API server's
CPU is then the limit, and what the webhook costs it shows). Rounds alternate (none, tasklease, tasklease, none, ...) so whatever else the
shared machine does weighs on both. For each mode: p50/p90/p99 of the client's CREATE latency,
the ratio, and from kube-apiserver's own /metrics (read before and after each round): the mean
of the request (apiserver_request_duration_seconds, POST pods), of its admission (every
admission step: apiserver_admission_step_admission_duration_seconds) and of the call to the
webhook (apiserver_admission_webhook_admission_duration_seconds), hence the webhook's share of
admission; and the CPU per CREATE of kube-apiserver, etcd and the webhook.

Figures only: nothing here asserts a duration. Without the control plane (`make deps` builds
it) it says so and does nothing.

    /usr/bin/python3 bench/pod_create_bench.py [--build build] [--pods 2000] [--rounds 4]
        [--concurrency 1 16] [--warmup 100]
"""

import argparse
import asyncio
import copy
import json
import os
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e"))

import realcluster  # noqa: E402
from real_control_plane import Metrics, cpu_seconds, started  # noqa: E402
from operator_bench import Api, pct  # noqa: E402
from webhook_bench import container  # noqa: E402

NAMESPACE = "bench-pods"
# No scheduler answers to this name: the pods stay Pending (see the module's docstring).
SCHEDULER = "tasklease-bench-none"
WEBHOOK = "validate.tasklease.io"
MODES = ("none", "tasklease")
ADMISSIONREG = "/apis/admissionregistration.k8s.io/v1"
CONFIG_KINDS = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")


def pod(name, owner_uid, bad=False):
    """The Deployment's pod, controlled by it; bad: one env read from a Secret (TL001)."""
    containers = [container(n) for n in ("api", "worker", "sidecar")]
    if bad:
        containers[0]["env"].append({"name": "DB_PASSWORD", "valueFrom": {
            "secretKeyRef": {"name": "db", "key": "password"}}})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": owner_uid,
                                              "controller": True}]},
            "spec": {"serviceAccountName": "web", "schedulerName": SCHEDULER,
                     "containers": containers,
                     "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                                 {"name": "tmp", "emptyDir": {}}]}}


def pods_path(name=""):
    return f"/api/v1/namespaces/{NAMESPACE}/pods" + (f"/{name}" if name else "")


class Registration:
    """tasklease's two webhook configurations, removed and put back as they were."""

    def __init__(self, api, names, owner_uid):
        self.api, self.names, self.owner_uid = api, names, owner_uid
        self.saved = {}
        self.mode = None  # not confirmed yet; the chart registered both

    async def save(self):
        for kind in CONFIG_KINDS:
            _, live = await self.api.call("GET", f"{ADMISSIONREG}/{kind}/{self.names[kind]}")
            meta = {k: live["metadata"][k] for k in ("name", "labels", "annotations")
                    if k in live["metadata"]}
            self.saved[kind] = {"apiVersion": live["apiVersion"], "kind": live["kind"],
                                "metadata": meta, "webhooks": live["webhooks"]}

    async def set(self, mode):
        if mode == self.mode:
            return
        if mode == "none":
            for kind in CONFIG_KINDS:
                await self.api.call("DELETE", f"{ADMISSIONREG}/{kind}/{self.names[kind]}",
                                    {"apiVersion": "v1", "kind": "DeleteOptions",
                                     "propagationPolicy": "Orphan"})
        elif self.mode == "none":
            for kind in CONFIG_KINDS:
                # The Orphan deletion ends once the garbage collector has let go of the Secret.
                for _ in range(300):
                    status, _ = await self.api.call("POST", f"{ADMISSIONREG}/{kind}",
                                                    copy.deepcopy(self.saved[kind]),
                                                    ok=(201, 409))
                    if status == 201:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"{kind} {self.names[kind]}: still being deleted after 30 s")
        # The API server takes up a change from its informer: confirmed by a pod that only the
        # webhook refuses.
        deadline = time.monotonic() + 30
        while True:
            name = f"probe-{uuid.uuid4().hex[:8]}"
            status, out = await self.api.call("POST", pods_path(), pod(name, self.owner_uid, True),
                                              ok=(201, 403))
            if status == 201:
                await self.api.call("DELETE", pods_path(name))
            if (status == 403) == (mode == "tasklease"):
                if status == 403 and "TL001" not in out.get("message", ""):
                    raise RuntimeError(f"the probe pod was refused, but not by TL001: {out}")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not take up mode {mode} in 30 s")
            await asyncio.sleep(0.05)
        self.mode = mode


async def create_pods(api, names, owner_uid, concurrency):
    """Creates the pods, `concurrency` in flight; returns each CREATE's latency in seconds."""
    bodies = [pod(n, owner_uid) for n in names]
    latencies = []
    it = iter(bodies)

    async def worker():
        for body in it:
            t0 = time.perf_counter()
            await api.call("POST", pods_path(), body, ok=(201,))
            latencies.append(time.perf_counter() - t0)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def delete_pods(api):
    await api.call("DELETE", pods_path(), {"apiVersion": "v1", "kind": "DeleteOptions"})
    for _ in range(600):
        _, listing = await api.call("GET", pods_path() + "?limit=1")
        if not listing["items"]:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("pods still there 60 s after their deletion")


class Tally:
    """One mode's rounds: latencies and the differences of the API server's metrics and of the
    processes' CPU."""

    def __init__(self):
        self.rounds = []          # each round's latencies
        self.elapsed = 0.0
        self.metrics = {}         # name -> summed difference
        self.cpu = {}             # process -> seconds

    def add(self, latencies, elapsed, m0, m1, c0, c1):
        self.rounds.append(latencies)
        self.elapsed += elapsed
        for key, (name, labels) in METRICS.items():
            self.metrics[key] = self.metrics.get(key, 0.0) + m1.minus(m0, name, **labels)
        for proc in c0:
            self.cpu[proc] = self.cpu.get(proc, 0.0) + c1[proc] - c0[proc]

    def all(self):
        return [x for r in self.rounds for x in r]

    def mean(self, what):
        n = self.metrics[what + "_count"]
        return self.metrics[what + "_sum"] / n if n else float("nan")


def _pair(prefix, **labels):
    return {f"{prefix}_sum": (f"{prefix}_sum", labels),
            f"{prefix}_count": (f"{prefix}_count", labels)}


METRICS = {
    **{k.replace("apiserver_request_duration_seconds", "request"): v for k, v in _pair(
        "apiserver_request_duration_seconds", verb="POST", resource="pods", subresource="").items()},
    **{k.replace("apiserver_admission_step_admission_duration_seconds", "admit"): v
       for k, v in _pair("apiserver_admission_step_admission_duration_seconds",
                         operation="CREATE", type="admit", rejected="false").items()},
    **{k.replace("apiserver_admission_step_admission_duration_seconds", "validate"): v
       for k, v in _pair("apiserver_admission_step_admission_duration_seconds",
                         operation="CREATE", type="validate", rejected="false").items()},
    **{k.replace("apiserver_admission_webhook_admission_duration_seconds", "webhook"): v
       for k, v in _pair("apiserver_admission_webhook_admission_duration_seconds", name=WEBHOOK,
                         operation="CREATE", rejected="false").items()},
}


async def run(args):
    from install import Installation

    with started("pod-create-bench-") as (cp, cluster, workdir):
        inst = api = None
        try:
            # `helm install`: the webhook's pod runs on KWOK's node as a local process that
            # its Service leads to (e2e/install.py), as in the e2e suite.
            inst = Installation(cluster, workdir).install()
            api = Api.admin_of(cp, "tasklease-bench", max(args.concurrency))
            await measure_all(args, cp, inst, api)
        finally:
            if api is not None:
                await api.close()
            if inst is not None:
                inst.stop()


async def measure_all(args, cp, inst, api):
    """Sets the cluster up for the pods, then each measurement."""
    await api.call("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"tasklease.io/enforcement": "enforce"}}})
    await api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "web",
                     "annotations": {"tasklease.io/dedicated-to": "Deployment/web"}}})
    template = pod("template", "0")
    _, deployment = await api.call("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 0, "paused": True, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": template["spec"]}}})
    owner = deployment["metadata"]["uid"]
    names = {kind: next(o["metadata"]["name"] for o in inst.objects
                        if o["kind"].lower() + "s" == kind) for kind in CONFIG_KINDS}
    reg = Registration(api, names, owner)
    await reg.save()
    await reg.set("tasklease")  # the webhook answers through its Service: ready to measure

    per_round = args.pods // args.rounds
    body_size = len(json.dumps(pod("web-00000", owner)))
    print(f"kube-apiserver {realcluster.k8s_version()} with etcd, its controllers and KWOK "
          f"on {os.cpu_count()} cores; {per_round * args.rounds} pods per mode in "
          f"{args.rounds} alternating rounds of {per_round}, after {args.warmup} each to "
          f"warm up; a 3-container Deployment pod ({body_size} bytes of JSON), left "
          f"unscheduled, namespace enforced")
    procs = {name: pid for name, pid in cp.recorded().items()
             if name in ("kube-apiserver", "etcd")}
    procs["webhook"] = inst.webhook.proc.pid
    for concurrency in args.concurrency:
        tallies = await measure(api, reg, owner, procs, concurrency, per_round, args)
        print(f"\n{concurrency} CREATE{'s' if concurrency > 1 else ''} in flight")
        report(tallies)
    await reg.set("tasklease")


async def measure(api, reg, owner, procs, concurrency, per_round, args):
    """Warm-up, then the alternating rounds; returns {mode: Tally}."""
    for mode in MODES:
        await reg.set(mode)
        await create_pods(api, [f"warm-{mode}-{i:05d}" for i in range(args.warmup)], owner,
                          concurrency)
        await delete_pods(api)
    tallies = {m: Tally() for m in MODES}
    for r in range(args.rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            await reg.set(mode)
            m0 = Metrics(await api.text("/metrics"))
            c0 = {p: cpu_seconds(pid) for p, pid in procs.items()}
            t0 = time.monotonic()
            lat = await create_pods(api, [f"c{concurrency}-r{r}-{mode}-{i:05d}"
                                          for i in range(per_round)], owner, concurrency)
            elapsed = time.monotonic() - t0
            c1 = {p: cpu_seconds(pid) for p, pid in procs.items()}
            m1 = Metrics(await api.text("/metrics"))
            tallies[mode].add(lat, elapsed, m0, m1, c0, c1)
            await delete_pods(api)
    return tallies


def report(tallies):
    none, tl = tallies["none"], tallies["tasklease"]
    ms = lambda s: s * 1000.0  # noqa: E731
    print(f"  {'client CREATE latency':34} {'no webhook':>11} {'tasklease':>11} {'ratio':>7}")
    for p in (50, 90, 99):
        a, b = pct(none.all(), p), pct(tl.all(), p)
        print(f"    p{p} (ms){'':26} {ms(a):11.2f} {ms(b):11.2f} {b / a:7.2f}")
    a, b = statistics.mean(none.all()), statistics.mean(tl.all())
    print(f"    mean (ms){'':25} {ms(a):11.2f} {ms(b):11.2f} {b / a:7.2f}")
    for i, (ra, rb) in enumerate(zip(none.rounds, tl.rounds), 1):
        print(f"    round {i}: p50 {ms(pct(ra, 50)):.2f} / {ms(pct(rb, 50)):.2f} ms "
              f"({pct(rb, 50) / pct(ra, 50):.2f}), p99 {ms(pct(ra, 99)):.2f} / "
              f"{ms(pct(rb, 99)):.2f} ms ({pct(rb, 99) / pct(ra, 99):.2f})")
    p50s = [pct(rb, 50) / pct(ra, 50) for ra, rb in zip(none.rounds, tl.rounds)]
    p99s = [pct(rb, 99) / pct(ra, 99) for ra, rb in zip(none.rounds, tl.rounds)]
    print(f"    ratios, median of the rounds': p50 {statistics.median(p50s):.2f}, "
          f"p99 {statistics.median(p99s):.2f}")
    ra, rb = len(none.all()) / none.elapsed, len(tl.all()) / tl.elapsed
    print(f"    pods/s{'':28} {ra:11.0f} {rb:11.0f} {rb / ra:7.2f}")
    print(f"  {'kube-apiserver /metrics, mean per CREATE':34} {'no webhook':>11} "
          f"{'tasklease':>11}")
    for label, what in (("request (POST pods) (ms)", "request"),
                        ("mutating admission (ms)", "admit"),
                        ("validating admission (ms)", "validate")):
        print(f"    {label:32} {ms(none.mean(what)):11.3f} {ms(tl.mean(what)):11.3f}")
    hook = tl.mean("webhook")
    admission = tl.mean("admit") + tl.mean("validate")
    print(f"    {'call to ' + WEBHOOK + ' (ms)':32} {'':11} {ms(hook):11.3f}")
    print(f"    the webhook's share: {100 * hook / admission:.0f} % of admission "
          f"({ms(admission):.3f} ms), {100 * hook / tl.mean('request'):.0f} % of the request; "
          f"{tl.metrics['webhook_count']:.0f} calls for {len(tl.all())} pods")
    n_none, n_tl = len(none.all()), len(tl.all())
    print(f"  {'CPU per CREATE (µs)':34} {'no webhook':>11} {'tasklease':>11}")
    for proc in ("kube-apiserver", "etcd", "webhook"):
        a, b = none.cpu.get(proc, 0) * 1e6 / n_none, tl.cpu.get(proc, 0) * 1e6 / n_tl
        print(f"    {proc:32} {a:11.0f} {b:11.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--pods", type=int, default=2000, help="pods per mode")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per mode (alternating)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16],
                    help="CREATEs in flight: one measurement for each")
    ap.add_argument("--warmup", type=int, default=100, help="pods per mode before measuring")
    args = ap.parse_args()
    if not realcluster.built():
        print(f"pod CREATE bench: skipped, the control plane {realcluster.k8s_version()} (KWOK "
              f"{realcluster.kwok_version()}) is not built: `make deps` builds it")
        return 0
    binary = os.path.join(os.path.abspath(args.build), "bin", "tasklease-webhook")
    if not os.path.exists(binary):
        print(f"pod CREATE bench: needs {binary} (`make build`)")
        return 1
    os.environ["TASKLEASE_BUILD_DIR"] = os.path.abspath(args.build)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
