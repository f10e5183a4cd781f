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
    """A small asyncio client for kubesim or kube-apiserver: kept-alive connections, JSON in and
    out; authenticated by a bearer token or a client certificate (cert: (cert file, key file))."""

    def __init__(self, url, token, ca_file, agent, connections=32, cert=None, real=None):
        """real: the RealServer this talks to (None: kubesim)."""
        ctx = ssl.create_default_context(cafile=ca_file)
        if cert:
            ctx.load_cert_chain(*cert)
        self.url, self.agent, self.real = url, agent, real
        self.headers = {"User-Agent": f"{agent}/bench"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
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

    @classmethod
    def admin_of(cls, cp, agent, connections, real=None):
        """The cluster-admin of a real control plane (e2e/realcluster.py: a client certificate
        in system:masters)."""
        return cls(cp.server, None, cp.pki.path("ca.crt"), agent, connections,
                   cert=(cp.pki.path("admin.crt"), cp.pki.path("admin.key")), real=real)

    async def text(self, path):
        async with self.session.get(self.url + path, headers=self.headers) as r:
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status}")
            return await r.text()

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
    """What the server has counted so far: kubesim's requests per User-Agent (/kubesim/stats),
    or on kube-apiserver a RealServer snapshot (its metrics and the processes' CPU)."""
    if api.real is not None:
        return await api.real.snapshot()
    _, s = await api.call("GET", "/kubesim/stats")
    return s


def calls_of(before, after, agent):
    """{method (kubesim) or verb (kube-apiserver): calls} made by one client between two stats
    snapshots."""
    if isinstance(after, RealSnapshot):
        return after.calls(before, agent)
    a = after["requestsByAgent"].get(agent, {})
    b = before["requestsByAgent"].get(agent, {})
    return {m: a.get(m, 0) - b.get(m, 0) for m in a if a.get(m, 0) - b.get(m, 0)}


def per_task(calls, n):
    total = sum(calls.values()) / n
    detail = " ".join(f"{m} {c / n:.1f}" for m, c in sorted(calls.items()))
    return f"{total:.1f} ({detail})"


def profile_of(before, after, agent, n):
    """On kube-apiserver: how long the server spent on one client's calls, and the CPU the
    control plane's processes spent per task, between two snapshots ("" on kubesim)."""
    if not isinstance(after, RealSnapshot):
        return ""
    return "\n" + " " * 24 + after.profile(before, agent, n)


# kube-apiserver counts requests per FlowSchema (API Priority and Fairness), not per client: the
# bench gives each of its clients one FlowSchema per verb, so the counts are the client's calls.
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
EXECUTION = "apiserver_flowcontrol_request_execution_seconds"
WAIT = "apiserver_flowcontrol_request_wait_duration_seconds"


def flow_schema(agent, verb):
    return f"tlbench-{agent}-{verb}"


class RealSnapshot:
    def __init__(self, metrics, cpu, detail=False):
        self.metrics, self.cpu, self.detail = metrics, cpu, detail

    def calls(self, before, agent):
        out = {}
        for verb in VERBS + ("other",):
            n = self.metrics.minus(before.metrics, DISPATCHED, flow_schema=flow_schema(agent, verb))
            if n:
                out[verb] = int(n)
        return out

    def _sum(self, before, family, agent, verb=None):
        return sum(self.metrics.minus(before.metrics, family, flow_schema=flow_schema(agent, v))
                   for v in VERBS + ("other",) if v != "watch" and (verb is None or v == verb))

    def profile(self, before, agent, n):
        """Mean execution and queueing per call (watches left out: their execution is their
        start), and CPU per task of each process."""
        count = self._sum(before, EXECUTION + "_count", agent)
        exe = self._sum(before, EXECUTION + "_sum", agent)
        wait = self._sum(before, WAIT + "_sum", agent)
        per_verb = []
        for verb in ("create", "update", "patch", "deletecollection", "list", "get"):
            c = self._sum(before, EXECUTION + "_count", agent, verb)
            if c:
                per_verb.append(f"{verb} {self._sum(before, EXECUTION + '_sum', agent, verb) / c * 1000:.1f}")
        cpu = " ".join(f"{p} {(self.cpu[p] - before.cpu.get(p, 0.0)) / n * 1000:.1f}"
                       for p in self.cpu)
        out = (f"kube-apiserver: {exe / count * 1000 if count else 0:.2f} ms executing per call "
               f"({', '.join(per_verb)}), {wait / count * 1000 if count else 0:.2f} ms queued; "
               f"CPU ms per task: {cpu}")
        if self.detail:
            out += "\n" + " " * 24 + "every client's requests per task: " + self.requests(before, n)
            out += "\n" + " " * 24 + "kube-apiserver's etcd operations per task: " + \
                self.storage(before, n)
        return out

    def storage(self, before, n):
        """The API server's requests to etcd in the phase by operation and resource, per task (a
        deletecollection is one request to the API server and a get and a delete per object)."""
        totals = {}
        for m, sign in ((self.metrics, 1), (before.metrics, -1)):
            for labels, v in m.samples.get("etcd_request_duration_seconds_count", ()):
                key = f"{labels.get('operation')} {labels.get('resource')}"
                totals[key] = totals.get(key, 0.0) + sign * v
        rows = sorted(((c, k) for k, c in totals.items()), reverse=True)
        return ", ".join(f"{k} {c / n:.2f}" for c, k in rows if c / n >= 0.05)

    def requests(self, before, n):
        """Every client's requests in the phase by verb, resource and code, per task (the driver's
        and the controllers' included: kube-apiserver counts them so)."""
        def by_kind(m):
            out = {}
            for labels, v in m.samples.get("apiserver_request_total", ()):
                res = labels.get("resource", "") + (f"/{labels['subresource']}"
                                                    if labels.get("subresource") else "")
                key = f"{labels.get('verb')} {res} {labels.get('code')}"
                out[key] = out.get(key, 0.0) + v
            return out
        now, then = by_kind(self.metrics), by_kind(before.metrics)
        rows = sorted(((now[k] - then.get(k, 0.0), k) for k in now), reverse=True)
        return ", ".join(f"{k} {c / n:.2f}" for c, k in rows if c / n >= 0.05)


class RealServer:
    """kube-apiserver (e2e/realcluster.py) as the bench sees it: snapshots of its metrics and of
    the CPU time of its processes (and the operator's, once it runs)."""

    def __init__(self, cp, detail=False):
        self.cp, self.detail = cp, detail
        self.pids = {name: pid for name, pid in cp.recorded().items()}
        self.api = None

    async def snapshot(self):
        from real_control_plane import Metrics, cpu_seconds
        return RealSnapshot(Metrics(await self.api.text("/metrics")),
                            {name: cpu_seconds(pid) for name, pid in self.pids.items()}, self.detail)

    async def count_per_client(self, clients):
        """One FlowSchema per client (agent name -> FlowSchema subject) and verb, in the
        priority level the operator's ServiceAccount gets by default (workload-low)."""
        for agent, subject in clients.items():
            for verb in VERBS + ("other",):
                rule = {"subjects": [subject]}
                if verb == "other":
                    rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
                else:
                    rule["resourceRules"] = [{"verbs": [verb], "apiGroups": ["*"],
                                              "resources": ["*"], "namespaces": ["*"],
                                              "clusterScope": True}]
                await self.api.call("POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", {
                    "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                    "metadata": {"name": flow_schema(agent, verb)},
                    "spec": {"priorityLevelConfiguration": {"name": "workload-low"},
                             "matchingPrecedence": 500, "distinguisherMethod": {"type": "ByUser"},
                             "rules": [rule]}})


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
            per_task(calls_of(s0, s1, agent), len(names)) + profile_of(s0, s1, agent, len(names)),
            per_task(calls_of(s1, s2, agent), len(names)) + profile_of(s1, s2, agent, len(names)))


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
            per_task(calls_of(s0, s1, "tasklease-floor"), len(names)) +
            profile_of(s0, s1, "tasklease-floor", len(names)),
            per_task(calls_of(s1, s2, "tasklease-floor"), len(names)) +
            profile_of(s1, s2, "tasklease-floor", len(names)))


def proc_figures(pid):
    from real_control_plane import cpu_seconds
    rss_kb = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss_kb = int(line.split()[1])
    return rss_kb / 1024.0, cpu_seconds(pid)


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


async def run_scenarios(args, server, driver, floor, operator_kubeconfig, workdir):
    """Both scenarios, each by the operator and then by the floor; returns their figures."""
    from binaries import Binary, http_ok
    from harness import free_port

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
    results = []
    try:
        if driver.real is not None:
            driver.real.pids["operator"] = op.proc.pid
        print(f"tasklease-operator --workers {args.workers} --kube-api-qps 5000, as its chart's "
              f"ServiceAccount and RBAC, against {server} on {os.cpu_count()} cores; the floor "
              f"uses {args.workers} workers")
        for label, n, rate in (("burst", args.tasks, 0), ("paced", args.paced, args.rate)):
            names_op = [f"{label}-{i:04d}" for i in range(n)]
            started = time.monotonic()
            op_issue, op_revoke, op_calls_i, op_calls_r = await operator_scenario(
                driver, "bench-op", names_op, rate, None, "tasklease-operator")
            fl_issue, fl_revoke, fl_calls_i, fl_calls_r = await floor_scenario(
                driver, floor, "bench-floor", names_op, rate, args.workers)
            what = f"{n} tasks at once" if not rate else f"{n} tasks at {rate:g}/s"
            print(f"\n{label}: {what} ({time.monotonic() - started:.0f} s for both)")
            print_pair("creation -> Active", op_issue, fl_issue, op_calls_i, fl_calls_i)
            print_pair("completed -> fully revoked", op_revoke, fl_revoke, op_calls_r, fl_calls_r)
            results.append((server, what, op_issue, op_revoke, fl_issue, fl_revoke))
        rss, cpu = proc_figures(op.proc.pid)
        print(f"\noperator: peak RSS {rss:.1f} MiB, CPU {cpu:.1f} s over the whole run")
    finally:
        op.stop()
    return results


async def on_kubesim(args):
    from components import install_crds
    from install import apply_operator_rbac
    from harness import Cluster

    cluster = Cluster.start(*(["--profile", os.path.abspath(args.profile_kubesim)]
                              if args.profile_kubesim else []))
    driver = floor = None
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
        return await run_scenarios(args, "kubesim (one Python process)", driver, floor,
                                   operator_kubeconfig, workdir)
    finally:
        for api in (driver, floor):
            if api is not None:
                await api.close()
        cluster.stop()


async def on_real(args):
    """The same against kube-apiserver (e2e/realcluster.py). The driver is the cluster's admin
    (system:masters: exempt from API Priority and Fairness, as kubesim's fairness leaves a
    client's burst to itself); the floor a user of its own (a client certificate) bound to
    cluster-admin; the operator its chart's ServiceAccount."""
    import realcluster
    from components import install_crds
    from install import apply_operator_rbac
    from real_control_plane import started

    with started("operator-bench-") as (cp, cluster, workdir):
        driver = floor = None
        try:
            install_crds(cluster)
            server = RealServer(cp, args.detail)
            driver = Api.admin_of(cp, "tasklease-bench", 64, real=server)
            server.api = driver
            cert_pem, key_pem = cp.pki.client_pair("tasklease-floor")
            floor_cert = (os.path.join(workdir, "floor.crt"), os.path.join(workdir, "floor.key"))
            for path, pem in zip(floor_cert, (cert_pem, key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(pem)
            await driver.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "tasklease-floor"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": "tasklease-floor"}]})
            floor = Api(cp.server, None, cp.pki.path("ca.crt"), "tasklease-floor", args.workers,
                        cert=floor_cert, real=server)
            for ns in ("tasklease-system", "bench-op", "bench-floor"):
                await driver.call("POST", "/api/v1/namespaces", {
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            operator_kubeconfig, objects = apply_operator_rbac(cluster, workdir)
            sa = next(o["metadata"] for o in objects if o["kind"] == "ServiceAccount")
            await server.count_per_client({
                "tasklease-operator": {"kind": "ServiceAccount", "serviceAccount": {
                    "namespace": sa.get("namespace", "tasklease-system"), "name": sa["name"]}},
                "tasklease-floor": {"kind": "User", "user": {"name": "tasklease-floor"}}})
            return await run_scenarios(
                args, f"kube-apiserver {realcluster.k8s_version()} (etcd, controllers, KWOK)",
                driver, floor, operator_kubeconfig, workdir)
        finally:
            for api in (driver, floor):
                if api is not None:
                    await api.close()


def print_summary(results):
    print("\nside by side (p50 / p99, seconds):")
    print(f"  {'server':16} {'scenario':22} {'op: -> Active':>15} {'op: -> revoked':>15} "
          f"{'floor: -> Active':>17} {'floor: -> revoked':>18}")
    for server, what, op_i, op_r, fl_i, fl_r in results:
        cells = [f"{x['p50']:.3f} / {x['p99']:.3f}" for x in (op_i, op_r, fl_i, fl_r)]
        print(f"  {server.split()[0]:16} {what:22} {cells[0]:>15} {cells[1]:>15} "
              f"{cells[2]:>17} {cells[3]:>18}")


async def main_async(args):
    import realcluster

    results = []
    if args.server in ("kubesim", "both"):
        results += await on_kubesim(args)
    if args.server in ("real", "both"):
        if realcluster.built():
            print()
            results += await on_real(args)
        else:
            print(f"\nkube-apiserver: skipped, the control plane {realcluster.k8s_version()} "
                  f"(KWOK {realcluster.kwok_version()}) is not built: `make deps` builds it")
    print_summary(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--paced", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--server", choices=("kubesim", "real", "both"), default="both",
                    help="kubesim, the real control plane (when built), or both in turn")
    ap.add_argument("--detail", action="store_true",
                    help="on kube-apiserver: every request of each phase by verb, resource, code")
    ap.add_argument("--profile-kubesim", metavar="FILE",
                    help="profile kubesim with cProfile, statistics to FILE (python3 -m pstats)")
    args = ap.parse_args()
    os.environ["TASKLEASE_BUILD_DIR"] = os.path.abspath(args.build)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
