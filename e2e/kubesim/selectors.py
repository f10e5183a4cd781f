"""Label and field selectors: the string syntax of ?labelSelector= and ?fieldSelector=, and
metav1.LabelSelector objects (matchLabels / matchExpressions) used by webhooks and RBAC."""

import re

from .errors import bad_request

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class Requirement:
    def __init__(self, key, op, values):
        self.key, self.op, self.values = key, op, values
        self.value_set = frozenset(values)  # `in`/`notin` over many values (a batch of uids)

    def matches(self, labels):
        has = self.key in labels
        val = labels.get(self.key)
        if self.op in ("=", "=="):
            return has and val == self.values[0]
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "in":
            return has and val in self.value_set
        if self.op == "notin":
            return not has or val not in self.value_set
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            try:
                n = int(val)
            except (TypeError, ValueError):
                return False
            return n > int(self.values[0]) if self.op == "gt" else n < int(self.values[0])
        return False


def _split_top(s):
    """Splits on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """Parses 'a=b,c!=d,e in (f,g),!h,i' into requirements. Raises 400 on bad syntax."""
    reqs = []
    if not text:
        return reqs
    for part in _split_top(text):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op, vals = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            _check_key(key, text)
            reqs.append(Requirement(key, op, [v for v in vals if v != ""] or [""]))
            continue
        m = re.match(r"^(\S+?)\s*(==|!=|=)\s*(\S*)$", part)
        if m:
            _check_key(m.group(1), text)
            reqs.append(Requirement(m.group(1), m.group(2), [m.group(3)]))
            continue
        m = re.match(r"^(\S+?)\s*(>|<)\s*(-?\d+)$", part)
        if m:
            _check_key(m.group(1), text)
            reqs.append(Requirement(m.group(1), "gt" if m.group(2) == ">" else "lt", [m.group(3)]))
            continue
        if part.startswith("!"):
            _check_key(part[1:].strip(), text)
            reqs.append(Requirement(part[1:].strip(), "!", []))
            continue
        _check_key(part, text)
        reqs.append(Requirement(part, "exists", []))
    return reqs


def _check_key(key, text):
    if not _LABEL_KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}": name part '
                          f"must consist of alphanumeric characters, '-', '_' or '.', and must "
                          f"start and end with an alphanumeric character (selector: {text!r})")


def labels_match(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def label_selector_matches(selector, labels):
    """metav1.LabelSelector semantics. None matches nothing; {} matches everything."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        vals = expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ---- field selectors ----

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}


def _not_supported(field):
    return f"field label not supported: {field}"


# The field labels each kind accepts and kube-apiserver's message for another, as its field label
# conversion functions (pkg/apis/*/v1/conversion.go) define them. A kind with none of its own
# takes metadata.name and metadata.namespace only (runtime.DefaultMetaV1FieldSelectorConversion).
_FIELD_LABELS = {
    "pods": ({"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
              "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
              "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
              "spec.host"}, _not_supported),
    "nodes": ({"metadata.name", "spec.unschedulable"}, _not_supported),
    "replicationcontrollers": ({"metadata.name", "metadata.namespace", "status.replicas"},
                               _not_supported),
    "events": ({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"},
               _not_supported),
    "namespaces": ({"status.phase", "metadata.name"}, _not_supported),
    "secrets": ({"type", "metadata.namespace", "metadata.name"}, _not_supported),
    "services": ({"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"},
                 _not_supported),
    "jobs": ({"metadata.name", "metadata.namespace", "status.successful"},
             lambda f: f'field label "{f}" not supported for Job'),
}
_DEFAULT_FIELD_LABELS = (_COMMON_FIELDS, lambda f: f'"{f}" is not a known field selector: only '
                                                   '"metadata.name", "metadata.namespace"')
# Old clients' names for a field label.
_FIELD_ALIASES = {("pods", "spec.host"): "spec.nodeName"}


def parse_field_selector(text, rt):
    """Parses 'metadata.name=x,status.phase!=Running' for a resource type; 400 on a field label
    the kind does not have, with kube-apiserver's message for that kind."""
    reqs = []
    if not text:
        return reqs
    if rt.crd is not None:
        allowed, message = _COMMON_FIELDS, _not_supported
    else:
        allowed, message = _FIELD_LABELS.get(rt.plural, _DEFAULT_FIELD_LABELS)
    for part in _split_top(text):
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{part}\'')
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in allowed:
            raise bad_request(message(field))
        reqs.append((_FIELD_ALIASES.get((rt.plural, field), field), op, value))
    return reqs


def _field_value(obj, path):
    if path == "status.podIPs":
        return ""  # accepted, but not among a pod's selectable fields: always empty there too
    if path == "source":
        return ((obj.get("source") or {}).get("component")) or ""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs, obj):
    for field, op, value in reqs:
        actual = _field_value(obj, field)
        if op in ("=", "==") and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
    return True
