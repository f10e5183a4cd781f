"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch for built-ins."""

from .copies import json_copy
from .errors import ApiError


class PatchError(Exception):
    """A patch that cannot be applied; the server answers 422 or 400 with this message."""


# ---- JSON merge patch ----

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return json_copy(patch)
    result = json_copy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---- JSON patch ----

def _unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def _split_pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": must start with "/"')
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc, tokens, path):
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"doc is missing path: \"{path}\": missing value")
            cur = cur[tok]
        elif isinstance(cur, list):
            idx = _index(cur, tok, path, allow_end=False)
            cur = cur[idx]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return cur


def _index(lst, tok, path, allow_end):
    if tok == "-" and allow_end:
        return len(lst)
    try:
        idx = int(tok)
    except ValueError:
        raise PatchError(f"invalid index \"{tok}\" in path \"{path}\"")
    limit = len(lst) if allow_end else len(lst) - 1
    if idx < 0 or idx > limit:
        raise PatchError(f"Unable to access invalid index: {idx}")
    return idx


def _get(doc, path):
    tokens = _split_pointer(path)
    cur = doc
    for tok in tokens:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, path, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return cur


def _add(doc, path, value):
    tokens = _split_pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return doc


def _remove(doc, path):
    tokens = _split_pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"doc is missing path: \"{path}\": missing value")


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = json_copy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"operation {i} has no \"op\"")
        kind = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {i} ({kind}) has no \"path\"")
        if kind == "add":
            if "value" not in op:
                raise PatchError(f"operation {i} (add) has no \"value\"")
            doc = _add(doc, path, json_copy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError(f"operation {i} (replace) has no \"value\"")
            tokens = _split_pointer(path)
            if not tokens:
                doc = json_copy(op["value"])
                continue
            _get(doc, path)
            parent = _parent(doc, tokens, path)
            if isinstance(parent, list):
                parent[_index(parent, tokens[-1], path, allow_end=False)] = json_copy(op["value"])
            else:
                parent[tokens[-1]] = json_copy(op["value"])
        elif kind == "move":
            value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, json_copy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# ---- strategic merge patch (built-in types) ----

# List fields merged by key, by field name (the built-in types use these names consistently).
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "ownerReferences": "uid", "conditions": "type",
    "hostAliases": "ip", "secrets": "name", "readinessGates": "conditionType",
    "topologySpreadConstraints": "topologyKey", "resourceClaims": "name", "webhooks": "name",
}
# Primitive lists merged as sets.
_MERGE_PRIMITIVE = {"finalizers"}


def _ports_key(items):
    for it in items:
        if isinstance(it, dict):
            if "containerPort" in it:
                return "containerPort"
            if "port" in it:
                return "port"
    return None


def strategic_merge(target, patch, field=None):
    if not isinstance(patch, dict):
        return json_copy(patch)
    if patch.get("$patch") == "replace":
        return {k: json_copy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = json_copy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in (v or [])]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list):
            result[k] = _merge_list(result.get(k), v, k)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, k)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = json_copy(v)
    if isinstance(retain, list):
        for k in list(result.keys()):
            if k not in retain and k not in patch:
                result.pop(k)
    return result


def _merge_list(current, patch_items, field):
    current = current if isinstance(current, list) else []
    if field in _MERGE_PRIMITIVE:
        out = list(current)
        for x in patch_items:
            if x not in out:
                out.append(x)
        return out
    key = _MERGE_KEYS.get(field)
    if key is None and field == "ports":
        key = _ports_key(patch_items) or _ports_key(current)
    if key is None:
        return [json_copy(x) for x in patch_items if not (isinstance(x, dict) and x.get("$patch"))]
    out = json_copy(current)
    for item in patch_items:
        if not isinstance(item, dict):
            continue
        directive = item.get("$patch")
        match = next((i for i, cur in enumerate(out) if isinstance(cur, dict) and key in item
                      and cur.get(key) == item.get(key)), None)
        if directive == "delete":
            if match is not None:
                out.pop(match)
            continue
        if directive == "replace":
            return [json_copy(x) for x in patch_items if x.get("$patch") != "replace"]
        if match is None:
            out.append(strategic_merge({}, item, field))
        else:
            out[match] = strategic_merge(out[match], item, field)
    return out


def apply_patch(content_type, current, body, builtin):
    """Applies a PATCH body of the given content type to current. Raises ApiError 415 for an
    unsupported type and PatchError for a patch that does not apply."""
    ct = (content_type or "").split(";")[0].strip()
    if ct == "application/json-patch+json":
        return json_patch(current, body)
    if ct == "application/merge-patch+json":
        if not isinstance(body, dict):
            raise PatchError("a merge patch must be a JSON object")
        return merge_patch(current, body)
    if ct == "application/strategic-merge-patch+json" and builtin:
        if not isinstance(body, dict):
            raise PatchError("a strategic merge patch must be a JSON object")
        return strategic_merge(current, body)
    accepted = ["application/json-patch+json", "application/merge-patch+json",
                "application/apply-patch+yaml"]
    if builtin:
        accepted.insert(2, "application/strategic-merge-patch+json")
    raise ApiError(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types "
                   f"include: {', '.join(accepted)}")
