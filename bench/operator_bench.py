#!/usr/bin/python3
"""tasklease-operator under load, beside the floor, in the same run against the same kubesim.

Two scenarios, each run first by the operator and then by the floor:

- burst: 1,000 AgentTasks created at once; once all are Active, all 1,000 completed at once.
- paced: 200 tasks created at 20/s; once all are Active, completed at 20/s. This is the latency a
  task sees when the control plane is not saturated, which is what the 1 s revocation target is
  about (a burst of 1,000 revocations is bounded by the API server's throughput instead).

For each: p50/p99 from creation to Active (the task's create call returned -> the watch delivers
phase Active), p50/p99 from `completed` to fully revoked (the patch returned -> the watch
delivers the terminal phase with revokedAt, which the operator writes only after every deletion
was read back as gone), tasks per second, and the API calls the operator made per task (counted
by kubesim per User-Agent). The operator's peak RSS and CPU time are printed at the end.

The floor is a minimal client making the same API calls as the operator, against the same
kubesim, with the operator's number of workers. Issuance, per task: finalizer, status, SA, Role,
RoleBinding, Secret, TokenRequest, token into the Secret, status, two Events. Revocation as the
operator does it: the task's status goes to Revoking first (as the operator's does the moment it
sees the ending), then, batched: one coroutine takes every completed task not yet revoked as a batch and, per
64 task uids, for RoleBindings, Secrets, ServiceAccounts and Roles in that order, makes one DELETE
of the collection selected by the tasks' uid label and one LIST with the same selector (which must
come back empty); then the workers write each task's status and its two Events. It has no
informer, no work queue, no policy, no evidence, and writes its Events inline (the operator
queues them to a thread of their own, so some of its Events are counted in a later phase): what
is left of the operator's time above it is the operator's own.

The operator runs as its chart's ServiceAccount under the chart's RBAC (a token of that account,
as in its pod); the driver that creates and completes the tasks is the admin, and the floor a
user of its own. kubesim executes one request at a time and takes them in turn between users
(kubesim/fairness.py), standing in for a multi-core kube-apiserver on which the driver's 64
requests in flight do not delay the operator's.

Figures only: nothing here asserts a duration.

    /usr/bin/python3 bench/operator_bench.py [--build build] [--tasks 1000] [--workers 16]
"""

import argparse
import asyncio
import json
import os
import secrets
import ssl
import sys
import tempfile
import time
import urllib.parse

import aiohttp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))

GROUP, VERSION = "tasklease.io", "v1alpha1"
# Task uids in one label selector, as the operator's revoker (RevokerOptions::maxBatch).
REVOKE_SELECTOR_UIDS = 64
RULES = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["billing-config"],
          "verbs": ["get", "update"]}]


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def rfc3339_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def task_body(name):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentTask",
            "metadata": {"name": name},
            "spec": {"agent": "bench-agent", "purpose": "operator benchmark",
                     "context": {"tool": "bench", "dataSensitivity": "internal",
                                 "environment": "staging"},
                     "ttl": "30m", "scope": {"rules": RULES},
                     "credential": {"type": "ServiceAccountToken"}}}


class Api:
    """A small asyncio client for kubesim: kept-alive connections, JSON in and out."""

    def __init__(self, url, token, ca_file, agent, connections=32):
        ctx = ssl.create_default_context(cafile=ca_file)
        self.url, self.agent = url, agent
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": f"{agent}/bench"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=connections),
            timeout=aiohttp.ClientTimeout(total=120))

    async def call(self, method, path, body=None, content_type="application/json", ok=(200, 201)):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = content_type
        for attempt in range(20):
            async with self.session.request(method, self.url + path, data=data,
                                            headers=headers) as r:
                payload = await r.read()
                if r.status in (429, 500, 503, 504) and attempt < 19:
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                if r.status not in ok:
                    raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
                return r.status, json.loads(payload) if payload else None
        raise RuntimeError(f"{method} {path}: retries exhausted")

    async def close(self):
        await self.session.close()


def tasks_path(ns, name=""):
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/agenttasks" + (f"/{name}" if name else "")


class PhaseWatch:
    """Watches a namespace's AgentTasks and records when each first reached Active and when it
    first showed a terminal phase with revokedAt."""

    def __init__(self, api, ns):
        self.api, self.ns = api, ns
        self.active, self.revoked = {}, {}
        self.changed = asyncio.Event()
        self.task = None

    async def start(self):
        _, listing = await self.api.call("GET", tasks_path(self.ns))
        self.task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    async def _run(self, rv):
        while True:
            path = tasks_path(self.ns) + f"?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
            try:
                async with self.api.session.get(self.api.url + path, headers=self.api.headers,
                                                timeout=aiohttp.ClientTimeout(total=None)) as r:
                    async for line in r.content:
                        if not line.strip():
                            continue
                        now = time.monotonic()
                        ev = json.loads(line)
                        obj = ev["object"]
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if ev["type"] in ("ADDED", "MODIFIED"):
                            self._see(obj, now)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(0.1)

    def _see(self, obj, now):
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        phase = status.get("phase")
        if phase == "Active" and name not in self.active:
            self.active[name] = now
            self.changed.set()
        revoked_at = (status.get("credential") or {}).get("revokedAt")
        if phase in ("Succeeded", "Failed") and revoked_at and name not in self.revoked:
            self.revoked[name] = now
            self.changed.set()

    async def wait(self, table, names, timeout):
        deadline = time.monotonic() + timeout
        while not all(n in table for n in names):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [n for n in names if n not in table]
                raise RuntimeError(f"{len(missing)} tasks not there after {timeout}s, "
                                   f"e.g. {missing[:3]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


async def paced(items, rate, fn, concurrency):
    """Calls fn(item) for each item: all at once (rate 0, at most `concurrency` in flight) or
    `rate` per second."""
    sem = asyncio.Semaphore(concurrency)

    async def one(item, start_at):
        if start_at:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        async with sem:
            await fn(item)

    t0 = time.monotonic()
    await asyncio.gather(*(one(it, t0 + i / rate if rate else 0) for i, it in enumerate(items)))


def summary(label, starts, ends):
    lat = [ends[n] - starts[n] for n in starts]
    span = max(ends.values()) - min(starts.values())
    return {"label": label, "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat),
            "rate": len(lat) / span if span > 0 else float("inf"), "n": len(lat)}


async def stats(api):
    _, s = await api.call("GET", "/kubesim/stats")
    return s


def calls_of(before, after, agent):
    """{method: calls} made by one client between two stats snapshots."""
    a = after["requestsByAgent"].get(agent, {})
    b = before["requestsByAgent"].get(agent, {})
    return {m: a.get(m, 0) - b.get(m, 0) for m in a if a.get(m, 0) - b.get(m, 0)}


def per_task(calls, n):
    total = sum(calls.values()) / n
    detail = " ".join(f"{m} {c / n:.1f}" for m, c in sorted(calls.items()))
    return f"{total:.1f} ({detail})"


async def operator_scenario(driver, ns, names, rate, admin_token, agent):
    """Creates the tasks (watched by the operator), waits for Active, completes them, waits for
    revocation. Returns (issue summary, revoke summary, calls per task)."""
    watch = PhaseWatch(driver, ns)
    await watch.start()
    created, completed = {}, {}
    s0 = await stats(driver)

    async def create(name):
        await driver.call("POST", tasks_path(ns), task_body(name))
        created[name] = time.monotonic()

    async def complete(name):
        await driver.call("PATCH", tasks_path(ns, name), {"spec": {"completed": True}},
                          content_type="application/merge-patch+json")
        completed[name] = time.monotonic()

    await paced(names, rate, create, 64)
    await watch.wait(watch.active, names, timeout=600)
    s1 = await stats(driver)
    await paced(names, rate, complete, 64)
    await watch.wait(watch.revoked, names, timeout=600)
    s2 = await stats(driver)
    await watch.stop()
    return (summary("creation -> Active", created, watch.active),
            summary("completed -> revoked", completed, watch.revoked),
            per_task(calls_of(s0, s1, agent), len(names)),
            per_task(calls_of(s1, s2, agent), len(names)))


async def floor_scenario(driver, floor, ns, names, rate, workers):
    """The same API calls as the operator makes per task, by a minimal client with `workers`
    workers taking tasks in order; latency from the create to the last status write."""
    created, active, completed, revoked = {}, {}, {}, {}
    uids = {}
    queue = asyncio.Queue()
    base = tasks_path(ns)

    def obj_path(kind, name):
        group = "/apis/rbac.authorization.k8s.io/v1" if kind in ("roles", "rolebindings") else "/api/v1"
        return f"{group}/namespaces/{ns}/{kind}" + (f"/{name}" if name else "")

    async def issue(name):
        _, task = await floor.call("GET", base + f"/{name}")
        task["metadata"]["finalizers"] = ["tasklease.io/revoke"]
        _, task = await floor.call("PUT", base + f"/{name}", task)
        cred = f"tl-{name}"
        await floor.call("PATCH", base + f"/{name}/status",
                         {"status": {"phase": "Pending",
                                     "credential": {"type": "ServiceAccountToken",
                                                    "serviceAccountName": cred,
                                                    "secretName": cred}}},
                         content_type="application/merge-patch+json")
        uids[name] = task["metadata"]["uid"]
        labels = {"app.kubernetes.io/managed-by": "tasklease-floor", "tasklease.io/task": name,
                  "tasklease.io/task-uid": uids[name]}
        meta = {"name": cred, "labels": labels}
        await floor.call("POST", obj_path("serviceaccounts", ""),
                         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
                          "automountServiceAccountToken": False})
        await floor.call("POST", obj_path("roles", ""),
                         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                          "metadata": meta, "rules": RULES})
        await floor.call("POST", obj_path("rolebindings", ""),
                         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                          "metadata": meta,
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": cred},
                          "subjects": [{"kind": "ServiceAccount", "name": cred, "namespace": ns}]})
        _, secret = await floor.call("POST", obj_path("secrets", ""),
                                     {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                                      "type": "Opaque"})
        _, tr = await floor.call(
            "POST", obj_path("serviceaccounts", cred) + "/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 1800,
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": cred,
                                         "uid": secret["metadata"]["uid"]}}})
        secret["stringData"] = {"token": tr["status"]["token"]}
        await floor.call("PUT", obj_path("secrets", cred), secret)
        await floor.call("PATCH", base + f"/{name}/status", {"status": {"phase": "Active"}},
                         content_type="application/merge-patch+json")
        active[name] = time.monotonic()
        # The operator's Events (Authorized, CredentialIssued) are written off the reconcile
        # path; the floor writes its two after the status too.
        await event(task, "Authorized")
        await event(task, "CredentialIssued")

    async def event(task, reason):
        await floor.call("POST", f"/api/v1/namespaces/{ns}/events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{task['metadata']['name']}.{reason.lower()}"},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentTask",
                               "namespace": ns, "name": task["metadata"]["name"],
                               "uid": task["metadata"]["uid"]},
            "reason": reason, "message": reason, "type": "Normal",
            "firstTimestamp": rfc3339_now(), "lastTimestamp": rfc3339_now(), "count": 1,
            "source": {"component": "tasklease-floor"}})

    async def revoke_batch(batch):
        """What the operator's revocation thread does for a batch: per kind, in order, one
        DELETE of the collection selected by the tasks' uids and one LIST to verify it."""
        for start in range(0, len(batch), REVOKE_SELECTOR_UIDS):
            chunk = batch[start:start + REVOKE_SELECTOR_UIDS]
            selector = urllib.parse.quote(
                "app.kubernetes.io/managed-by=tasklease-floor,tasklease.io/task-uid in (" +
                ",".join(sorted(uids[n] for n in chunk)) + ")")
            for kind in ("rolebindings", "secrets", "serviceaccounts", "roles"):
                await floor.call("DELETE", obj_path(kind, "") + f"?labelSelector={selector}",
                                 {"apiVersion": "v1", "kind": "DeleteOptions",
                                  "propagationPolicy": "Background"})
                _, left = await floor.call("GET", obj_path(kind, "") + f"?labelSelector={selector}")
                if left["items"]:
                    raise RuntimeError(f"floor: {len(left['items'])} {kind} left after deletion")

    async def revoke(name):
        # The status write (a PUT from its cache for the operator, a patch here: one call
        # either way) and the two Events, per task, as the operator's workers do.
        _, task = await floor.call("PATCH", base + f"/{name}/status",
                                   {"status": {"phase": "Succeeded",
                                               "credential": {"revokedAt": rfc3339_now()}}},
                                   content_type="application/merge-patch+json")
        revoked[name] = time.monotonic()
        await event(task, "Completed")
        await event(task, "CredentialRevoked")

    async def worker(step):
        while True:
            name = await queue.get()
            try:
                await step(name)
            finally:
                queue.task_done()

    async def run(step, starts, action, ws):
        async def enqueue(name):
            await action(name)
            starts[name] = time.monotonic()
            queue.put_nowait(name)
        await paced(names, rate, enqueue, 64)
        await queue.join()
        for w in ws:
            w.cancel()
        await asyncio.gather(*ws, return_exceptions=True)

    async def create(name):
        await driver.call("POST", base, task_body(name))

    async def complete(name):
        await driver.call("PATCH", base + f"/{name}", {"spec": {"completed": True}},
                          content_type="application/merge-patch+json")

    async def batcher():
        """Takes every completed task not yet revoked, revokes them as one batch, hands them to
        the workers; again while more come."""
        while True:
            batch = [await pending.get()]
            while not pending.empty():
                batch.append(pending.get_nowait())
            await revoke_batch(batch)
            for name in batch:
                queue.put_nowait(name)
                pending.task_done()

    async def mark_revoking(name):
        # The operator's first write on seeing the ending: the task leaves Active at once.
        await floor.call("PATCH", base + f"/{name}/status", {"status": {"phase": "Revoking"}},
                         content_type="application/merge-patch+json")
        pending.put_nowait(name)

    marking = []

    async def complete_and_queue(name):
        await complete(name)
        completed[name] = time.monotonic()
        marking.append(asyncio.create_task(mark_revoking(name)))

    pending = asyncio.Queue()
    s0 = await stats(driver)
    await run(issue, created, create, [asyncio.create_task(worker(issue)) for _ in range(workers)])
    s1 = await stats(driver)
    ws = [asyncio.create_task(worker(revoke)) for _ in range(workers)]
    ws.append(asyncio.create_task(batcher()))
    await paced(names, rate, complete_and_queue, 64)
    await asyncio.gather(*marking)
    await pending.join()
    await queue.join()
    for w in ws:
        w.cancel()
    await asyncio.gather(*ws, return_exceptions=True)
    s2 = await stats(driver)
    return (summary("creation -> Active", created, active),
            summary("completed -> revoked", completed, revoked),
            per_task(calls_of(s0, s1, "tasklease-floor"), len(names)),
            per_task(calls_of(s1, s2, "tasklease-floor"), len(names)))


def proc_figures(pid):
    rss_kb = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss_kb = int(line.split()[1])
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return rss_kb / 1024.0, cpu


def print_pair(title, op, fl, calls_op, calls_fl):
    print(f"  {title}")
    print(f"    {'':22} {'operator':>10} {'floor':>10} {'ratio':>7}")
    for key, fmt, unit in (("p50", "{:10.3f}", "s"), ("p99", "{:10.3f}", "s"),
                           ("max", "{:10.3f}", "s"), ("rate", "{:10.1f}", "tasks/s")):
        ratio = op[key] / fl[key] if fl[key] else float("nan")
        print(f"    {key + ' (' + unit + ')':22} {fmt.format(op[key])} {fmt.format(fl[key])} "
              f"{ratio:7.2f}")
    print(f"    API calls per task: operator {calls_op}")
    print(f"                        floor    {calls_fl}")


async def main_async(args):
    from binaries import Binary, http_ok
    from components import install_crds
    from install import apply_operator_rbac
    from harness import Cluster, free_port

    cluster = Cluster.start(*(["--profile", os.path.abspath(args.profile_kubesim)]
                              if args.profile_kubesim else []))
    op = None
    try:
        install_crds(cluster)
        ca_file = os.path.join(cluster.cert_dir, "ca.crt")
        driver = Api(cluster.url, cluster.admin_token, ca_file, "tasklease-bench", 64)
        # The floor is a user of its own, as the operator is: kubesim orders execution fairly
        # between users (kubesim/fairness.py), as a multi-core kube-apiserver serves them.
        floor_token = secrets.token_urlsafe(32)
        await driver.call("POST", "/kubesim/users", {"token": floor_token, "name": "tasklease-floor",
                                                     "groups": ["system:masters"]}, ok=(201,))
        floor = Api(cluster.url, floor_token, ca_file, "tasklease-floor", args.workers)
        for ns in ("tasklease-system", "bench-op", "bench-floor"):
            await driver.call("POST", "/api/v1/namespaces",
                              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        workdir = tempfile.mkdtemp(prefix="operator-bench-")
        operator_kubeconfig, _ = apply_operator_rbac(cluster, workdir)
        await driver.call("POST", f"/apis/{GROUP}/{VERSION}/agentpolicies", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentPolicy",
            "metadata": {"name": "bench"},
            "spec": {"match": {"namespaces": ["bench-op"]}, "requireVerifiedDelegation": False,
                     "allow": {"maxTTL": "1h", "credentialTypes": ["ServiceAccountToken"],
                               "rules": RULES}}})
        port = free_port()
        op = Binary.start("tasklease-operator", [
            "--kubeconfig", operator_kubeconfig, "--namespace", "tasklease-system",
            "--watch-namespace", "bench-op", "--metrics-port", str(port),
            "--evidence-file", os.path.join(workdir, "evidence.jsonl"),
            "--evidence-stdout=false", "--workers", str(args.workers),
            "--kube-api-qps", "5000", "--kube-api-burst", "5000", "--log-level", "warn"],
            log_dir=workdir, ready=lambda: http_ok(f"http://127.0.0.1:{port}/readyz"))
        print(f"tasklease-operator --workers {args.workers} --kube-api-qps 5000, as its chart's "
              f"ServiceAccount and RBAC, against kubesim (one Python process) on "
              f"{os.cpu_count()} cores; the floor uses {args.workers} workers")
        for label, n, rate in (("burst", args.tasks, 0), ("paced", args.paced, args.rate)):
            names_op = [f"{label}-{i:04d}" for i in range(n)]
            started = time.monotonic()
            op_issue, op_revoke, op_calls_i, op_calls_r = await operator_scenario(
                driver, "bench-op", names_op, rate, cluster.admin_token, "tasklease-operator")
            fl_issue, fl_revoke, fl_calls_i, fl_calls_r = await floor_scenario(
                driver, floor, "bench-floor", names_op, rate, args.workers)
            what = f"{n} tasks at once" if not rate else f"{n} tasks at {rate:g}/s"
            print(f"\n{label}: {what} ({time.monotonic() - started:.0f} s for both)")
            print_pair("creation -> Active", op_issue, fl_issue, op_calls_i, fl_calls_i)
            print_pair("completed -> fully revoked", op_revoke, fl_revoke, op_calls_r, fl_calls_r)
        rss, cpu = proc_figures(op.proc.pid)
        print(f"\noperator: peak RSS {rss:.1f} MiB, CPU {cpu:.1f} s over the whole run")
        await driver.close()
        await floor.close()
    finally:
        if op is not None:
            op.stop()
        cluster.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--paced", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--profile-kubesim", metavar="FILE",
                    help="profile kubesim with cProfile, statistics to FILE (python3 -m pstats)")
    args = ap.parse_args()
    os.environ["TASKLEASE_BUILD_DIR"] = os.path.abspath(args.build)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
