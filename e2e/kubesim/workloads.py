"""Simulated workloads: a Job controller, a scheduler that places every pod on one node, and a
kubelet that "runs" pods. Enough for Jobs to run to completion or failure, with pod creation
going through admission (webhooks included) as the real job controller's does.

A pod's run is steered by annotations on it (or its Job's template):
  kubesim.tasklease.io/run-seconds: "2"   how long its containers run (default 1)
  kubesim.tasklease.io/exit-code: "0"     their exit code (default 0)
Pods whose restartPolicy is Always keep running. A pod that mounts a Secret or ConfigMap that
does not exist stays Pending with a FailedMount event, as with a real kubelet."""

import asyncio
import copy
import logging
import random
import uuid

from .auth import User
from .errors import ApiError
from .tables import now_rfc3339

log = logging.getLogger("kubesim.workloads")

NODE = "kubesim-node"
RUN_SECONDS = "kubesim.tasklease.io/run-seconds"
EXIT_CODE = "kubesim.tasklease.io/exit-code"
# What kube-apiserver sends admission as the user of kube-controller-manager's Job controller with
# --use-service-account-credentials: its own ServiceAccount, in the groups every ServiceAccount
# has. Not system:masters: webhooks that decide by who creates a pod (tasklease's TL008) must
# see what they would see in a real cluster. Its creates skip authorization here (internal).
JOB_CONTROLLER = User("system:serviceaccount:kube-system:job-controller", "job-controller-uid",
                      ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                       "system:authenticated"])
POD_DELETE_DELAY = 0.2


def _suffix():
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


class Workloads:
    def __init__(self, server):
        self.server = server
        self.tasks = set()
        self.retry = {}  # job uid -> next attempt delay
        self.job_locks = {}  # (namespace, name) -> asyncio.Lock, one per Job name ever seen

    @property
    def store(self):
        return self.server.store

    def rt(self, group, plural):
        return self.server.registry.types[(group, plural)]

    def start(self):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
                "status": {"conditions": [{"type": "Ready", "status": "True",
                                           "reason": "KubeletReady",
                                           "message": "kubesim kubelet is posting ready status"}]}}
        if self.store.get(self.rt("", "nodes"), "", NODE) is None:
            self.server.api_create_internal(self.rt("", "nodes"), node)
        self.store.listeners.append(self._listener)

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def stop(self):
        for t in list(self.tasks):
            t.cancel()

    def _listener(self, type_, rt, obj, old):
        if rt.key == ("batch", "jobs") and type_ in ("ADDED", "MODIFIED"):
            if not obj["metadata"].get("deletionTimestamp"):
                self._spawn(self._sync_job(obj["metadata"]["namespace"], obj["metadata"]["name"]))
        elif rt.key == ("", "pods"):
            if type_ == "ADDED":
                self._spawn(self._run_pod(obj["metadata"]["namespace"], obj["metadata"]["name"],
                                          obj["metadata"]["uid"]))
            elif type_ == "MODIFIED" and obj["metadata"].get("deletionTimestamp") and \
                    not (old or {}).get("metadata", {}).get("deletionTimestamp"):
                self._spawn(self._terminate_pod(obj))
            if type_ in ("MODIFIED", "DELETED"):
                for ref in obj["metadata"].get("ownerReferences") or []:
                    if ref.get("kind") == "Job" and ref.get("controller"):
                        self._spawn(self._sync_job(obj["metadata"]["namespace"], ref["name"]))

    # ---- kubelet ----

    async def _run_pod(self, ns, name, uid):
        pods = self.rt("", "pods")
        await asyncio.sleep(0.05)
        pod = self.store.get(pods, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        # Scheduling.
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            pod = self._write(pods, pod, lambda p: p["spec"].__setitem__("nodeName", NODE))
            if pod is None:
                return
            self._event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {NODE}")
        # Volumes must exist before containers start.
        delay = 0.5
        while True:
            missing = self._missing_volume(pod)
            if missing is None:
                break
            self._event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed for volume "
                        f'"{missing[0]}" : {missing[1]} "{missing[2]}" not found')
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
            pod = self.store.get(pods, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
                return
        now = now_rfc3339()
        containers = spec.get("containers") or []

        def running(p):
            p["status"] = dict(p.get("status") or {}, phase="Running", startTime=now, hostIP="10.0.0.1",
                               podIP=f"10.244.0.{random.randint(2, 254)}",
                               conditions=[{"type": t, "status": "True", "lastTransitionTime": now}
                                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                               containerStatuses=[{"name": c.get("name"), "image": c.get("image"),
                                                   "ready": True, "started": True, "restartCount": 0,
                                                   "state": {"running": {"startedAt": now}}}
                                                  for c in containers])
        pod = self._write(pods, pod, running)
        if pod is None:
            return
        self._event(pod, "Normal", "Started", "Started container " + ", ".join(
            c.get("name", "") for c in containers))
        if spec.get("restartPolicy", "Always") == "Always":
            return
        ann = pod["metadata"].get("annotations") or {}
        try:
            seconds = float(ann.get(RUN_SECONDS, "1"))
            code = int(ann.get(EXIT_CODE, "0"))
        except ValueError:
            seconds, code = 1.0, 1
        await asyncio.sleep(max(seconds, 0))
        pod = self.store.get(pods, ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        end = now_rfc3339()

        def finished(p):
            p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            p["status"]["conditions"] = [dict(c, status="False") if c["type"] in ("Ready", "ContainersReady")
                                         else c for c in p["status"].get("conditions") or []]
            for cs in p["status"].get("containerStatuses") or []:
                cs["ready"] = False
                cs["started"] = False
                cs["state"] = {"terminated": {"exitCode": code, "startedAt": now, "finishedAt": end,
                                              "reason": "Completed" if code == 0 else "Error"}}
        self._write(pods, pod, finished)

    async def _terminate_pod(self, pod):
        await asyncio.sleep(POD_DELETE_DELAY)
        pods = self.rt("", "pods")
        md = pod["metadata"]
        cur = self.store.get(pods, md["namespace"], md["name"])
        if cur is None or cur["metadata"]["uid"] != md["uid"]:
            return
        if cur["metadata"].get("finalizers"):
            return
        removed = self.store.remove(pods, cur)
        if removed is not None:
            self.server.controllers.on_removed(pods, removed)

    def _missing_volume(self, pod):
        ns = pod["metadata"]["namespace"]
        for v in (pod.get("spec") or {}).get("volumes") or []:
            sources = []
            if v.get("secret"):
                sources.append(("secret", v["secret"]))
            if v.get("configMap"):
                sources.append(("configmap", v["configMap"]))
            for s in (v.get("projected") or {}).get("sources") or []:
                if s.get("secret"):
                    sources.append(("secret", s["secret"]))
                if s.get("configMap"):
                    sources.append(("configmap", s["configMap"]))
            for kind, src in sources:
                if src.get("optional"):
                    continue
                name = src.get("secretName") or src.get("name")
                plural = "secrets" if kind == "secret" else "configmaps"
                if self.store.get(self.rt("", plural), ns, name) is None:
                    return (v.get("name"), kind, name)
        return None

    # ---- job controller ----

    async def _sync_job(self, ns, name):
        # One sync per Job at a time (the job controller's expectations): two syncs that both
        # saw no active pod while the first pod's creation awaited admission would make two.
        lock = self.job_locks.setdefault((ns, name), asyncio.Lock())
        async with lock:
            await self._sync_job_locked(ns, name)

    async def _sync_job_locked(self, ns, name):
        await asyncio.sleep(0.02)
        jobs, pods = self.rt("batch", "jobs"), self.rt("", "pods")
        job = self.store.get(jobs, ns, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, status = job.get("spec") or {}, job.get("status") or {}
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            return
        uid = job["metadata"]["uid"]
        mine = [p for p in self.store.all(pods, ns)
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]
        succeeded = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in mine if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp")]
        completions = spec.get("completions", 1)
        backoff_limit = spec.get("backoffLimit", 6)
        now = now_rfc3339()
        conds = list(status.get("conditions") or [])
        final = None
        if succeeded >= completions:
            final = [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                      "message": "Reached expected number of succeeded pods",
                      "lastProbeTime": now, "lastTransitionTime": now},
                     {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                      "message": "Reached expected number of succeeded pods",
                      "lastProbeTime": now, "lastTransitionTime": now}]
        elif failed > backoff_limit:
            final = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                      "message": "Job has reached the specified backoff limit",
                      "lastProbeTime": now, "lastTransitionTime": now},
                     {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                      "message": "Job has reached the specified backoff limit",
                      "lastProbeTime": now, "lastTransitionTime": now}]
        new_status = dict(status, active=len(active), succeeded=succeeded, failed=failed,
                          ready=sum(1 for p in active if (p.get("status") or {}).get("phase") == "Running"))
        new_status.setdefault("startTime", now)
        if final:
            new_status["conditions"] = conds + final
            if final[-1]["type"] == "Complete":
                new_status["completionTime"] = now
            for p in active:
                self.server.api.delete_now(pods, p, "Background")
            new_status["active"] = 0
        if new_status != status:
            cur = self.store.get(jobs, ns, name)
            if cur is not None and cur["metadata"]["uid"] == uid:
                new = copy.deepcopy(cur)
                new["status"] = new_status
                self.store.update(jobs, new, cur)
                if final:
                    self._event(new, "Normal" if final[-1]["type"] == "Complete" else "Warning",
                                "Completed" if final[-1]["type"] == "Complete" else "BackoffLimitExceeded",
                                "Job completed" if final[-1]["type"] == "Complete"
                                else "Job has reached the specified backoff limit")
        if final or spec.get("suspend"):
            return
        want = min(spec.get("parallelism", 1), completions - succeeded) - len(active)
        for _ in range(max(want, 0)):
            await self._create_pod(job)

    async def _create_pod(self, job):
        md = job["metadata"]
        tmpl = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        pmd = tmpl.setdefault("metadata", {})
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{md['name']}-{_suffix()}", "namespace": md["namespace"],
                            "labels": pmd.get("labels") or {},
                            "annotations": pmd.get("annotations") or {},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": md["name"], "uid": md["uid"],
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "spec": tmpl.get("spec") or {}}
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        pods = self.rt("", "pods")
        try:
            created = await self.server.api.create(pods, "v1", md["namespace"], pod, JOB_CONTROLLER)
            self.retry.pop(md["uid"], None)
            self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        except ApiError as e:
            # As the real job controller: an event on the Job, then a retry with backoff.
            self._event(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
            delay = self.retry.get(md["uid"], 1.0)
            self.retry[md["uid"]] = min(delay * 2, 30.0)
            await asyncio.sleep(delay)
            self._spawn(self._sync_job(md["namespace"], md["name"]))

    # ---- helpers ----

    def _write(self, rt, obj, mutate):
        cur = self.store.get(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if cur is None or cur["metadata"]["uid"] != obj["metadata"]["uid"]:
            return None
        new = copy.deepcopy(cur)
        mutate(new)
        return self.store.update(rt, new, cur)

    def _event(self, obj, type_, reason, message):
        ev_rt = self.rt("", "events")
        md = obj["metadata"]
        now = now_rfc3339()
        ns = md.get("namespace") or "default"
        try:
            self.server.api_create_internal(ev_rt, {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:16]}", "namespace": ns},
                "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                                   "name": md["name"], "namespace": ns, "uid": md["uid"],
                                   "resourceVersion": md.get("resourceVersion")},
                "reason": reason, "message": message, "type": type_, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": "kubesim-workloads"},
                "reportingComponent": "kubesim-workloads", "reportingInstance": NODE})
        except ApiError:
            log.debug("event for %s/%s not recorded", ns, md["name"])
