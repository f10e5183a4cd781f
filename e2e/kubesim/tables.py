"""meta.k8s.io/v1 Table output, which `kubectl get` asks for: printer columns of CRDs, and the
familiar columns of the built-in kinds."""

import datetime
import json
import re


def wants_table(accept):
    return bool(accept) and "as=Table" in accept and "g=meta.k8s.io" in accept


def jsonpath(obj, expr):
    """Evaluates the simple JSONPath of printer columns: .a.b, .a['b.c'], .a\\.b, .a[0], .a[*].b."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    tokens = re.findall(r"\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[(\*|-?\d+)\]|\.((?:\\\.|[^.\[])+)", expr)
    cur = [obj]
    for quoted1, quoted2, idx, name in tokens:
        nxt = []
        for c in cur:
            if name or quoted1 or quoted2:
                key = (name.replace("\\.", ".") if name else (quoted1 or quoted2))
                if isinstance(c, dict) and key in c:
                    nxt.append(c[key])
            elif idx == "*":
                if isinstance(c, list):
                    nxt.extend(c)
                elif isinstance(c, dict):
                    nxt.extend(c.values())
            else:
                if isinstance(c, list):
                    i = int(idx)
                    if -len(c) <= i < len(c):
                        nxt.append(c[i])
        cur = nxt
    return cur


def _cell(values, typ):
    if not values:
        return None
    v = values[0] if len(values) == 1 else values
    if typ == "integer":
        return v if isinstance(v, int) else None
    if typ == "number":
        return v if isinstance(v, (int, float)) else None
    if typ == "boolean":
        return v if isinstance(v, bool) else None
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return human_since(v) if typ == "date" else str(v)


_NAME_COL = {"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace. Is required when creating "
                            "resources, although some resources may allow a client to request the "
                            "generation of an appropriate name automatically. Name is primarily "
                            "intended for creation idempotence and configuration definition. "
                            "Cannot be updated. More info: https://kubernetes.io/docs/concepts/"
                            "overview/working-with-objects/names#names"}
_AGE_COL = {"name": "Age", "type": "date", "format": "", "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when "
                           "this object was created."}


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_since(ts):
    """Like ConvertToHumanReadableDateType: '<unknown>' for no time; '<invalid>' for the future."""
    if not ts or not isinstance(ts, str):
        return "<unknown>"
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _age(obj):
    return human_since(obj["metadata"].get("creationTimestamp"))


def _pod_ready(o):
    st = o.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{total}"


def _pod_restarts(o):
    return sum(c.get("restartCount", 0) for c in (o.get("status") or {}).get("containerStatuses") or [])


def _col(name, typ, fn, priority=0, fmt=""):
    return ({"name": name, "type": typ, "format": fmt, "priority": priority, "description": name}, fn)


def _job_completions(o):
    return f"{(o.get('status') or {}).get('succeeded', 0)}/{(o.get('spec') or {}).get('completions', 1)}"


def _job_status(o):
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return c["type"]
    return "Running"


def _ready_replicas(o):
    st = o.get("status") or {}
    return f"{st.get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}"


_BUILTIN_COLUMNS = {
    ("", "pods"): [
        _col("Ready", "string", _pod_ready),
        _col("Status", "string", lambda o: (o.get("status") or {}).get("phase", "Pending")),
        _col("Restarts", "string", lambda o: str(_pod_restarts(o))),
    ],
    ("", "namespaces"): [_col("Status", "string", lambda o: (o.get("status") or {}).get("phase", "Active"))],
    ("", "secrets"): [
        _col("Type", "string", lambda o: o.get("type", "Opaque")),
        _col("Data", "string", lambda o: str(len(o.get("data") or {}))),
    ],
    ("", "configmaps"): [_col("Data", "string", lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {})))],
    ("", "serviceaccounts"): [_col("Secrets", "string", lambda o: str(len(o.get("secrets") or [])))],
    ("", "services"): [
        _col("Type", "string", lambda o: (o.get("spec") or {}).get("type", "ClusterIP")),
        _col("Cluster-IP", "string", lambda o: (o.get("spec") or {}).get("clusterIP", "<none>")),
        _col("Ports", "string", lambda o: ",".join(
            f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in (o.get("spec") or {}).get("ports") or []) or "<none>"),
    ],
    ("", "events"): [
        _col("Type", "string", lambda o: o.get("type", "")),
        _col("Reason", "string", lambda o: o.get("reason", "")),
        _col("Object", "string", lambda o: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                                           f"{(o.get('involvedObject') or {}).get('name', '')}"),
        _col("Message", "string", lambda o: o.get("message", "")),
    ],
    ("batch", "jobs"): [
        _col("Status", "string", _job_status),
        _col("Completions", "string", _job_completions),
    ],
    ("apps", "deployments"): [
        _col("Ready", "string", _ready_replicas),
        _col("Up-to-date", "string", lambda o: str((o.get("status") or {}).get("updatedReplicas", 0))),
        _col("Available", "string", lambda o: str((o.get("status") or {}).get("availableReplicas", 0))),
    ],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        _col("Role", "string", lambda o: f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}"),
    ],
    ("coordination.k8s.io", "leases"): [
        _col("Holder", "string", lambda o: (o.get("spec") or {}).get("holderIdentity", "")),
    ],
}


def columns_for(rt, version):
    """[(columnDefinition, cell function)] including Name; Age where the type has it."""
    name = (_NAME_COL, lambda o: o["metadata"]["name"])
    if rt.crd is not None:
        vdef = next((v for v in rt.crd["spec"].get("versions", []) if v["name"] == version), {})
        cols = vdef.get("additionalPrinterColumns")
        if cols is None:
            return [name, (_AGE_COL, _age)]
        out = [name]
        for c in cols:
            d = {"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                 "description": c.get("description", ""), "priority": c.get("priority", 0)}
            out.append((d, (lambda path, typ: lambda o: _cell(jsonpath(o, path), typ))(c["jsonPath"], d["type"])))
        return out
    return [name] + _BUILTIN_COLUMNS.get(rt.key, []) + [(_AGE_COL, _age)]


def row(obj, cols, include_object):
    r = {"cells": [fn(obj) for (_, fn) in cols]}
    if include_object == "Object":
        r["object"] = obj
    elif include_object != "None":
        r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj["metadata"]}
    return r


def table(rt, version, objs, list_meta, include_object):
    cols = columns_for(rt, version)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": [d for (d, _) in cols],
            "rows": [row(o, cols, include_object) for o in objs]}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
