"""Structural OpenAPI v3 schemas of CustomResourceDefinitions: pruning of unknown fields,
defaulting, validation with kube-apiserver's messages, and x-kubernetes-validations (CEL)."""

import datetime
import marshal
import re

from . import cel
from .copies import json_copy

_META_FIELDS = {"name", "generateName", "namespace", "uid", "resourceVersion", "generation",
                "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                "annotations", "ownerReferences", "finalizers", "managedFields", "selfLink"}


_COMPILED = {}


def _path(parent, key):
    return f"{parent}.{key}" if parent else key


def _item_path(parent, i):
    return f"{parent}[{i}]" if parent else f"[{i}]"


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _fmt(v):
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return f'"{_type_name(v)}"'
    return str(v)


# ---- pruning ----

def prune(schema, value, path="", root=True, unknown=None):
    """Removes fields the schema does not declare, recording their paths in unknown."""
    if unknown is None:
        unknown = []
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        if isinstance(value, dict) and isinstance(schema, dict) and schema.get("properties"):
            for k, sub in schema["properties"].items():
                if k in value:
                    prune(sub, value[k], _path(path, k), False, unknown)
        return unknown
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource") or root
        for k in list(value.keys()):
            if embedded and k in ("apiVersion", "kind"):
                continue
            if embedded and k == "metadata":
                if root and isinstance(value[k], dict):
                    for mk in list(value[k].keys()):
                        if mk not in _META_FIELDS:
                            unknown.append(_path(_path(path, "metadata"), mk))
                            del value[k][mk]
                continue
            if props is not None and k in props:
                prune(props[k], value[k], _path(path, k), False, unknown)
            elif isinstance(addl, dict):
                prune(addl, value[k], _path(path, k), False, unknown)
            elif addl is True:
                continue
            else:
                unknown.append(_path(path, k))
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            prune(schema["items"], item, f"{path}[{i}]", False, unknown)
    return unknown


# ---- defaulting ----

def apply_defaults(schema, value):
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and isinstance(sub, dict) and "default" in sub:
                value[k] = json_copy(sub["default"])
            if k in value:
                apply_defaults(sub, value[k])
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for k in value:
                if k not in (schema.get("properties") or {}):
                    apply_defaults(addl, value[k])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


# ---- validation ----

def _check_format(fmt, v):
    if fmt == "date-time":
        try:
            datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
            return "T" in v or " " in v
        except ValueError:
            return False
    if fmt == "date":
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None
    if fmt == "uri":
        return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", v) is not None
    if fmt == "byte":
        return re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", v) is not None
    return True


class Ratchet:
    """CRD validation ratcheting for one update (KEP-4008, GA in Kubernetes 1.33): an error found
    in a value that the update left unchanged does not fail the update. kube-apiserver drops
    such an OpenAPI error and returns such a failed x-kubernetes-validations rule as a warning;
    transition rules (those using oldSelf) are never ratcheted.

    old_valid says the stored object is known to pass this schema. Then an unchanged value
    cannot fail anything but a transition rule, so a subtree without transition rules is not
    walked at all (what makes a status write cheap) with the same outcome, warnings included.
    """

    def __init__(self, old_valid):
        self.old_valid = old_valid
        self.warnings = []


_TRANSITIONS_BELOW = {}  # id(schema node) -> (node, whether it or a descendant has oldSelf)


def _transitions_below(schema):
    hit = _TRANSITIONS_BELOW.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = any(_compiled(r)[1] for r in schema.get("x-kubernetes-validations") or [])
    subs = list((schema.get("properties") or {}).values())
    subs += [schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)]
    found = any([found] + [_transitions_below(sub) for sub in subs if isinstance(sub, dict)])
    _TRANSITIONS_BELOW[id(schema)] = (schema, found)
    return found


def _same(a, b):
    """Equal as JSON values (Go's DeepEqual on decoded JSON), where Python's == is not: 1, 1.0
    and true all differ. marshal's format (version 2: no back-references) encodes each value's
    type; it also encodes key order, so equal dicts in another order count as changed, which
    only means validating them."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        return a == b and marshal.dumps(a, 2) == marshal.dumps(b, 2)
    return a == b


def validate(schema, value, path="", old=None, has_old=False, causes=None, ratchet=None,
             unchanged=False):
    """Returns a list of (reason, message, field) causes. On an update, ratchet (a Ratchet)
    applies CRD validation ratcheting; unchanged is set below a value equal to its old one."""
    if causes is None:
        causes = []
    if not isinstance(schema, dict):
        return causes
    if ratchet is not None and (unchanged or (has_old and _same(value, old))):
        # An item of an unchanged list has no old value of its own: no transition rule runs.
        if ratchet.old_valid and (not has_old or not _transitions_below(schema)):
            return causes
        unchanged = True
    if unchanged:
        _validate_unchanged(schema, value, path, old, has_old, causes, ratchet)
        return causes
    field = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            causes.append(("FieldValueRequired", "Required value", field))
        return causes
    t = schema.get("type")
    int_or_string = schema.get("x-kubernetes-int-or-string")
    actual = _type_name(value)
    if int_or_string:
        if actual not in ("integer", "string"):
            causes.append(("FieldValueTypeInvalid",
                           f'Invalid value: {_fmt(value)}: {field} in body must be of type '
                           f'integer or string: "{actual}"', field))
            return causes
    elif t and not (t == actual or (t == "number" and actual == "integer")):
        causes.append(("FieldValueTypeInvalid",
                       f'Invalid value: "{actual}": {field} in body must be of type {t}: "{actual}"',
                       field))
        return causes
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        causes.append(("FieldValueNotSupported",
                       f"Unsupported value: {_fmt(value)}: supported values: "
                       + ", ".join(_fmt(e) for e in enum), field))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(("FieldValueTooLong",
                           f"Too long: may not be more than {schema['maxLength']} bytes", field))
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(("FieldValueInvalid",
                           f'Invalid value: {_fmt(value)}: {field} in body should be at least '
                           f'{schema["minLength"]} chars long', field))
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            causes.append(("FieldValueInvalid",
                           f"Invalid value: {_fmt(value)}: {field} in body should match "
                           f"'{schema['pattern']}'", field))
        if "format" in schema and not _check_format(schema["format"], value):
            causes.append(("FieldValueInvalid",
                           f"Invalid value: {_fmt(value)}: {field} in body must be of type "
                           f"{schema['format']}: {_fmt(value)}", field))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            lo = schema["minimum"]
            if value < lo or (schema.get("exclusiveMinimum") and value == lo):
                word = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
                causes.append(("FieldValueInvalid",
                               f"Invalid value: {value}: {field} in body should be {word} {lo}", field))
        if "maximum" in schema:
            hi = schema["maximum"]
            if value > hi or (schema.get("exclusiveMaximum") and value == hi):
                word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
                causes.append(("FieldValueInvalid",
                               f"Invalid value: {value}: {field} in body should be {word} {hi}", field))
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(("FieldValueTooMany",
                           f"Too many: {len(value)}: must have at most {schema['maxItems']} items", field))
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(("FieldValueInvalid",
                           f"Invalid value: {len(value)}: {field} in body should have at least "
                           f"{schema['minItems']} items", field))
        lt = schema.get("x-kubernetes-list-type")
        if lt == "set":
            seen = []
            for i, it in enumerate(value):
                if it in seen:
                    causes.append(("FieldValueDuplicate", f"Duplicate value: {_fmt(it)}", f"{field}[{i}]"))
                seen.append(it)
        elif lt == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen = []
            for i, it in enumerate(value):
                k = tuple((it or {}).get(x) for x in keys) if isinstance(it, dict) else None
                if k in seen:
                    causes.append(("FieldValueDuplicate", "Duplicate value: map[" + ",".join(
                        f"{a}:{b}" for a, b in zip(keys, k)) + "]", f"{field}[{i}]"))
                seen.append(k)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, it in enumerate(value):
                validate(items, it, _item_path(path, i), causes=causes, ratchet=ratchet)
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                causes.append(("FieldValueRequired", "Required value", _path(path, req)))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(("FieldValueTooMany",
                           f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                           field))
        _validate_properties(schema, value, path, old, has_old, causes, ratchet, False)
    _run_cel(schema, value, path, old, has_old, causes)
    return causes


def _validate_properties(schema, value, path, old, has_old, causes, ratchet, unchanged):
    props = schema.get("properties") or {}
    for k, v in value.items():
        sub = props.get(k)
        if sub is None and isinstance(schema.get("additionalProperties"), dict):
            sub = schema["additionalProperties"]
        if sub is None or (not path and k in ("apiVersion", "kind", "metadata")):
            continue
        sub_old = old.get(k) if has_old and isinstance(old, dict) else None
        sub_has_old = has_old and isinstance(old, dict) and k in old
        validate(sub, v, _path(path, k), sub_old, sub_has_old, causes, ratchet, unchanged)


def _validate_unchanged(schema, value, path, old, has_old, causes, ratchet):
    """A value equal to its old one: its OpenAPI errors are dropped, so only its rules run,
    transition rules failing it and the others warning (they cannot fail on a stored object
    known to be valid; then subtrees without transition rules are skipped above)."""
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, it in enumerate(value):
            validate(schema["items"], it, _item_path(path, i), causes=causes, ratchet=ratchet,
                     unchanged=True)
    elif isinstance(value, dict):
        _validate_properties(schema, value, path, old, has_old, causes, ratchet, True)
    failed = []
    _run_cel(schema, value, path, old, has_old, failed, with_transition=True)
    for (reason, message, field), transition in failed:
        if transition:
            causes.append((reason, message, field))
        else:
            ratchet.warnings.append(f"{field}: {message}")


def _compiled(rule):
    compiled = _COMPILED.get(rule["rule"])
    if compiled is None:
        tree = cel.compile_rule(rule["rule"])
        compiled = _COMPILED[rule["rule"]] = (tree, cel.references_old_self(tree))
    return compiled


def _run_cel(schema, value, path, old, has_old, causes, with_transition=False):
    """Appends each failed rule's cause, or with_transition (cause, whether the rule is a
    transition rule)."""
    for rule in schema.get("x-kubernetes-validations") or []:
        tree, transition = _compiled(rule)
        if transition and not has_old and not rule.get("optionalOldSelf"):
            continue
        field = path or "<root>"
        if rule.get("fieldPath"):
            fp = rule["fieldPath"]
            field = (path + fp) if fp.startswith(".") else _path(path, fp)
        try:
            ok = cel.run_rule(tree, value, old, has_old)
            why = None
        except cel.CelError as e:
            ok, why = False, str(e)
        if not ok:
            msg = rule.get("message") or f"failed rule: {rule['rule']}"
            if why:
                msg = f"{msg}: {why}" if rule.get("message") else f"{msg}: {why}"
            reason = rule.get("reason") or "FieldValueInvalid"
            cause = (reason, f"Invalid value: {_fmt(value)}: {msg}", field)
            causes.append((cause, transition) if with_transition else cause)


def compile_schema_rules(schema, path="", errors=None):
    """Compiles every CEL rule in a schema; returns a list of (path, message) errors."""
    if errors is None:
        errors = []
    if not isinstance(schema, dict):
        return errors
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        try:
            cel.compile_rule(rule.get("rule", ""))
        except cel.CelError as e:
            errors.append((f"{path}.x-kubernetes-validations[{i}].rule" if path else
                           f"x-kubernetes-validations[{i}].rule", f"compilation failed: {e}"))
    for k, sub in (schema.get("properties") or {}).items():
        compile_schema_rules(sub, _path(path, f"properties[{k}]"), errors)
    if isinstance(schema.get("items"), dict):
        compile_schema_rules(schema["items"], _path(path, "items"), errors)
    if isinstance(schema.get("additionalProperties"), dict):
        compile_schema_rules(schema["additionalProperties"], _path(path, "additionalProperties"), errors)
    return errors
