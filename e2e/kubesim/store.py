"""Object storage with one resourceVersion counter (like etcd's revision), a bounded watch
history per resource (like the apiserver's watch cache), watch fan-out, and consistent
paginated lists."""

import asyncio
import base64
import json
from collections import OrderedDict, defaultdict, deque

from .errors import gone
from .selectors import fields_match, labels_match

WATCHER_QUEUE_LIMIT = 100_000


class Event:
    __slots__ = ("rv", "type", "obj", "old")

    def __init__(self, rv, type_, obj, old):
        self.rv, self.type, self.obj, self.old = rv, type_, obj, old


class Watcher:
    """One watch stream: filters events for its namespace and selectors into a queue."""

    def __init__(self, namespace, label_reqs, field_reqs):
        self.namespace = namespace
        self.label_reqs = label_reqs
        self.field_reqs = field_reqs
        self.queue = asyncio.Queue()
        self.closed = False
        self.overflowed = False

    def matches(self, obj):
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return labels_match(self.label_reqs, obj) and fields_match(self.field_reqs, obj)

    def translate(self, ev):
        """The event this watcher sees: a change across its selector boundary becomes ADDED or
        DELETED, as kube-apiserver does for filtered watches."""
        new_ok = self.matches(ev.obj)
        old_ok = self.matches(ev.old) if ev.old is not None else False
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if new_ok else None
        if new_ok and old_ok:
            return ("MODIFIED", ev.obj)
        if new_ok:
            return ("ADDED", ev.obj)
        if old_ok:
            return ("DELETED", ev.obj)
        return None

    def offer(self, ev):
        if self.closed:
            return
        out = self.translate(ev)
        if out is None:
            return
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            # A consumer this far behind is cut off, as the apiserver does with slow watchers.
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(out)

    def close(self):
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class ResourceStore:
    def __init__(self, capacity, start_rv):
        self.objects = {}
        # (label key, value) -> keys of the objects carrying it: a selector with an equality or
        # `in` requirement (the operator's revocation: a task-uid in a batch of uids) looks at
        # the objects that can match instead of every object of the kind.
        self.by_label = defaultdict(set)
        self.history = deque()
        self.capacity = capacity
        # A watch may start from any rv >= oldest_rv; older ones were compacted away.
        self.oldest_rv = start_rv
        self.watchers = set()


def object_key(obj):
    md = obj["metadata"]
    return (md.get("namespace") or "", md["name"])


class Store:
    def __init__(self, history_capacity=2000):
        self.rv = 1
        self.capacity = history_capacity
        self.resources = {}
        self.by_uid = {}                    # uid -> (rt_key, ns, name)
        self.dependents = defaultdict(set)  # owner uid -> {(rt_key, ns, name)}
        self.snapshots = OrderedDict()      # continue id -> (rv, rt_key, [objects])
        self.snapshot_seq = 0
        self.compacted_rv = 0               # watches from an rv below this get 410
        self.listeners = []                 # f(event_type, rt, obj, old) after each commit

    def res(self, rt):
        rs = self.resources.get(rt.key)
        if rs is None:
            # Nothing of this resource was ever dropped except by a global compaction.
            rs = ResourceStore(self.capacity, self.compacted_rv)
            self.resources[rt.key] = rs
        return rs

    def get(self, rt, ns, name):
        return self.res(rt).objects.get((ns or "", name))

    def get_by_uid(self, uid):
        loc = self.by_uid.get(uid)
        if loc is None:
            return None
        rs = self.resources.get(loc[0])
        return rs.objects.get((loc[1], loc[2])) if rs else None

    def all(self, rt, ns=None):
        objs = self.res(rt).objects
        if ns:
            return [o for (n, _), o in objs.items() if n == ns]
        return list(objs.values())

    def next_rv(self):
        self.rv += 1
        return self.rv

    # ---- commits: synchronous, so each is atomic under asyncio ----

    def _record(self, rt, type_, obj, old):
        rs = self.res(rt)
        ev = Event(int(obj["metadata"]["resourceVersion"]), type_, obj, old)
        rs.history.append(ev)
        while len(rs.history) > rs.capacity:
            dropped = rs.history.popleft()
            rs.oldest_rv = dropped.rv
        for w in list(rs.watchers):
            w.offer(ev)
        for listener in self.listeners:
            listener(type_, rt, obj, old)

    def _index(self, rt, obj, old):
        key = object_key(obj)
        if old is not None:
            for ref in old["metadata"].get("ownerReferences") or []:
                self.dependents[ref.get("uid")].discard((rt.key,) + key)
        for ref in obj["metadata"].get("ownerReferences") or []:
            self.dependents[ref.get("uid")].add((rt.key,) + key)
        self.by_uid[obj["metadata"]["uid"]] = (rt.key,) + key

    @staticmethod
    def _index_labels(rs, key, obj, old):
        new_labels = obj["metadata"].get("labels") or {} if obj is not None else {}
        old_labels = old["metadata"].get("labels") or {} if old is not None else {}
        if new_labels == old_labels:
            return
        for kv in old_labels.items():
            if new_labels.get(kv[0]) != kv[1]:
                keys = rs.by_label.get(kv)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del rs.by_label[kv]
        for kv in new_labels.items():
            if old_labels.get(kv[0]) != kv[1]:
                rs.by_label[kv].add(key)

    def create(self, rt, obj):
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        rs = self.res(rt)
        key = object_key(obj)
        self._index_labels(rs, key, obj, rs.objects.get(key))
        rs.objects[key] = obj
        self._index(rt, obj, None)
        self._record(rt, "ADDED", obj, None)
        return obj

    def update(self, rt, obj, old):
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        rs = self.res(rt)
        key = object_key(obj)
        # Indexed against what was stored, whatever the caller read before.
        self._index_labels(rs, key, obj, rs.objects.get(key))
        rs.objects[key] = obj
        self._index(rt, obj, old)
        self._record(rt, "MODIFIED", obj, old)
        return obj

    def remove(self, rt, obj):
        key = object_key(obj)
        rs = self.res(rt)
        old = rs.objects.pop(key, None)
        if old is None:
            return None
        self._index_labels(rs, key, None, old)
        final = dict(old)
        final["metadata"] = dict(old["metadata"], resourceVersion=str(self.next_rv()))
        self.by_uid.pop(old["metadata"]["uid"], None)
        for ref in old["metadata"].get("ownerReferences") or []:
            self.dependents[ref.get("uid")].discard((rt.key,) + key)
        self._record(rt, "DELETED", final, old)
        return final

    def drop_resource(self, rt):
        """Forgets a resource type entirely (its CRD was deleted); its watchers end."""
        rs = self.resources.pop(rt.key, None)
        if rs:
            for w in list(rs.watchers):
                w.close()

    def dependents_of(self, uid):
        return list(self.dependents.get(uid, ()))

    def compact(self):
        """Forgets every event so far: any watch from an earlier rv now gets 410."""
        self.compacted_rv = self.rv
        for rs in self.resources.values():
            rs.history.clear()
            rs.oldest_rv = self.rv
        self.snapshots.clear()

    # ---- watch ----

    def watch(self, rt, rv, namespace, label_reqs, field_reqs):
        """Registers a watcher. rv None means 'current state then changes' (synthetic ADDED
        for every object); an rv replays history after it, or raises 410 if compacted."""
        rs = self.res(rt)
        w = Watcher(namespace, label_reqs, field_reqs)
        if rv is None:
            for obj in sorted(rs.objects.values(), key=object_key):
                if w.matches(obj):
                    w.queue.put_nowait(("ADDED", obj))
        else:
            if rv < rs.oldest_rv:
                raise gone(f"too old resource version: {rv} ({rs.oldest_rv + 1})")
            for ev in rs.history:
                if ev.rv > rv:
                    out = w.translate(ev)
                    if out is not None:
                        w.queue.put_nowait(out)
        rs.watchers.add(w)
        return w

    def unwatch(self, rt, w):
        self.res(rt).watchers.discard(w)
        w.closed = True

    def watcher_count(self):
        return sum(len(rs.watchers) for rs in self.resources.values())

    @staticmethod
    def _candidates(rs, namespace, label_reqs):
        """The objects a selection can match: those carrying a value of the most selective
        equality or `in` requirement, else all of the namespace (or of the kind)."""
        best = None
        for r in label_reqs:
            if r.op in ("=", "==", "in"):
                keys = set().union(*(rs.by_label.get((r.key, v), ()) for v in r.value_set))
                if best is None or len(keys) < len(best):
                    best = keys
        if best is not None:
            return [rs.objects[k] for k in best if not namespace or k[0] == namespace]
        if not namespace:
            return rs.objects.values()
        return [o for (n, _), o in rs.objects.items() if n == namespace]

    # ---- list with consistent pagination ----

    def list(self, rt, namespace, label_reqs, field_reqs, limit=0, cont=None):
        """Returns (items, rv, continue_token, remaining). A paginated list is served from a
        snapshot taken at the first page, so its pages are consistent, like etcd's."""
        if cont:
            try:
                tok = json.loads(base64.b64decode(cont.encode()).decode())
                sid, rv, start = tok["id"], int(tok["rv"]), int(tok["start"])
            except (ValueError, KeyError, TypeError):
                from .errors import bad_request
                raise bad_request("continue key is not valid: illegal base64 data at input byte 0")
            snap = self.snapshots.get(sid)
            if snap is None or snap[1] != rt.key:
                raise gone("The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue "
                           "parameter, or use the continue token in this response to retrieve "
                           "the remainder of the results. Continuing with the provided token "
                           "results in an inconsistent list - objects that were created, "
                           "modified, or deleted between the time the first chunk was returned "
                           "and now may show up in the list.")
            self.snapshots.move_to_end(sid)
            items = snap[2]
        else:
            items = sorted((o for o in self._candidates(self.res(rt), namespace, label_reqs)
                            if labels_match(label_reqs, o) and fields_match(field_reqs, o)),
                           key=object_key)
            rv, start, sid = self.rv, 0, None
        if not limit or start + limit >= len(items):
            if sid is not None:
                self.snapshots.pop(sid, None)
            return items[start:], rv, None, None
        if sid is None:
            self.snapshot_seq += 1
            sid = self.snapshot_seq
            self.snapshots[sid] = (rv, rt.key, items)
            while len(self.snapshots) > 256:
                self.snapshots.popitem(last=False)
        end = start + limit
        token = base64.b64encode(json.dumps({"id": sid, "rv": rv, "start": end}).encode()).decode()
        return items[start:end], rv, token, len(items) - end
