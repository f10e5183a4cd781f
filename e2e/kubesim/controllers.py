"""The controllers a cluster runs that our tests observe: garbage collection by ownerReferences
(background, foreground, orphan), namespace termination, and CRD instance cleanup."""

import asyncio
import logging

from .copies import json_copy

log = logging.getLogger("kubesim.controllers")

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


class Controllers:
    def __init__(self, server):
        self.server = server
        self.pending = set()  # (rt_key, ns, name) to look at
        self.wakeup = asyncio.Event()
        self.task = None

    @property
    def store(self):
        return self.server.store

    def start(self):
        self.task = asyncio.ensure_future(self._run())

    async def stop(self):
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    def _kick(self, item):
        self.pending.add(item)
        self.wakeup.set()

    # ---- hooks from the API layer ----

    def on_created_with_owners(self, rt, obj):
        """A dependent whose owners are all absent is collected, as the real GC does."""
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and all(self.store.get_by_uid(r.get("uid")) is None for r in refs):
            self._kick(("gc", rt.key, obj["metadata"].get("namespace") or "", obj["metadata"]["name"]))

    def on_removed(self, rt, obj):
        uid = obj["metadata"]["uid"]
        for dep in self.store.dependents_of(uid):
            self._kick(("gc",) + dep)
        if rt.key == CRDS:
            self.server.registry.remove_crd(obj)
            spec = obj["spec"]
            crt = self.server.registry.types.get((spec["group"], spec["names"]["plural"]))
            if crt is None:
                from .resources import ResourceType
                crt = ResourceType(spec["group"], "", spec["names"]["kind"], spec["names"]["plural"], True)
            self.store.drop_resource(crt)
        if rt.crd is not None:
            self._kick(("crd", CRDS, "", rt.crd["metadata"]["name"]))
        # A deletion may complete a namespace's or a foreground owner's termination.
        ns = obj["metadata"].get("namespace")
        if ns:
            self._kick(("ns", NAMESPACES, "", ns))
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._kick(("owner", ref.get("uid")))

    def on_deleting(self, rt, obj):
        md = obj["metadata"]
        if rt.key == NAMESPACES:
            self._kick(("ns", NAMESPACES, "", md["name"]))
        if rt.key == CRDS:
            self._kick(("crd", CRDS, "", md["name"]))
        if "foregroundDeletion" in (md.get("finalizers") or []):
            self._kick(("owner", md["uid"]))

    def orphan_dependents(self, uid):
        for (key, ns, name) in self.store.dependents_of(uid):
            rt = self.server.registry.types.get(key)
            obj = self.store.get(rt, ns, name) if rt else None
            if obj is None:
                continue
            new = json_copy(obj)
            new["metadata"]["ownerReferences"] = [r for r in obj["metadata"].get("ownerReferences") or []
                                                  if r.get("uid") != uid]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self.store.update(rt, new, obj)

    # ---- the loop ----

    def _resync(self):
        """A periodic look at everything in termination, in case an event was missed."""
        for ns in self.store.all(self.server.registry.types[NAMESPACES]):
            if ns["metadata"].get("deletionTimestamp"):
                self.pending.add(("ns", NAMESPACES, "", ns["metadata"]["name"]))
        for crd in self.store.all(self.server.registry.types[CRDS]):
            if crd["metadata"].get("deletionTimestamp"):
                self.pending.add(("crd", CRDS, "", crd["metadata"]["name"]))

    async def _run(self):
        while True:
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=2.0)
            except asyncio.TimeoutError:
                self._resync()
            self.wakeup.clear()
            # Let the request that triggered this finish first, like an asynchronous controller.
            await asyncio.sleep(0.01)
            items, self.pending = self.pending, set()
            for item in items:
                try:
                    self._process(item)
                except Exception:  # a controller bug must not stop the loop
                    log.exception("controller failed on %s", item)

    def _process(self, item):
        kind = item[0]
        if kind == "gc":
            self._collect(item[1], item[2], item[3])
        elif kind == "ns":
            self._namespace(item[3])
        elif kind == "crd":
            self._crd(item[3])
        elif kind == "owner":
            self._foreground(item[1])

    def _collect(self, key, ns, name):
        rt = self.server.registry.types.get(key)
        if rt is None:
            return
        obj = self.store.get(rt, ns, name)
        if obj is None:
            return
        refs = obj["metadata"].get("ownerReferences") or []
        live = [r for r in refs if self.store.get_by_uid(r.get("uid")) is not None]
        if refs and not live:
            # Every owner is gone: delete. A foreground owner passes its policy on.
            self.server.api.delete_now(rt, obj, "Background")
        elif len(live) != len(refs):
            new = json_copy(obj)
            new["metadata"]["ownerReferences"] = live
            self.store.update(rt, new, obj)

    def _foreground(self, owner_uid):
        owner = self.store.get_by_uid(owner_uid)
        if owner is None:
            return
        md = owner["metadata"]
        if not md.get("deletionTimestamp") or "foregroundDeletion" not in (md.get("finalizers") or []):
            return
        deps = self.store.dependents_of(owner_uid)
        for (key, ns, name) in deps:
            rt = self.server.registry.types.get(key)
            dep = self.store.get(rt, ns, name) if rt else None
            if dep is not None and not dep["metadata"].get("deletionTimestamp"):
                self.server.api.delete_now(rt, dep, "Foreground")
        if not self.store.dependents_of(owner_uid):
            key = self.store.by_uid[owner_uid][0]
            rt = self.server.registry.types[key]
            self.server.remove_finalizer(rt, owner, "foregroundDeletion")

    def _namespace(self, name):
        ns_rt = self.server.registry.types[NAMESPACES]
        ns = self.store.get(ns_rt, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for rt in list(self.server.registry.types.values()):
            if not rt.namespaced or rt.virtual:
                continue
            for obj in self.store.all(rt, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self.server.api.delete_now(rt, obj, "Background")
        left = sum(len(self.store.all(rt, name)) for rt in self.server.registry.types.values()
                   if rt.namespaced and not rt.virtual)
        if left == 0:
            new = json_copy(ns)
            new["spec"]["finalizers"] = []
            if not new["metadata"].get("finalizers"):
                stored = self.store.update(ns_rt, new, ns)
                removed = self.store.remove(ns_rt, stored)
                self.on_removed(ns_rt, removed)
            else:
                self.store.update(ns_rt, new, ns)
        elif remaining:
            log.debug("namespace %s waits for %d objects", name, left)

    def _crd(self, name):
        crd_rt = self.server.registry.types[CRDS]
        crd = self.store.get(crd_rt, "", name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        spec = crd["spec"]
        rt = self.server.registry.types.get((spec["group"], spec["names"]["plural"]))
        if rt is not None:
            for obj in self.store.all(rt):
                if not obj["metadata"].get("deletionTimestamp"):
                    self.server.api.delete_now(rt, obj, "Background")
            if self.store.all(rt):
                return
        self.server.remove_finalizer(crd_rt, crd, "customresourcecleanup.apiextensions.k8s.io")
