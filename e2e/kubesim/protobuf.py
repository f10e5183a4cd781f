"""Decoder for Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

kubectl's typed clients (``auth can-i``, ``auth whoami``, ``create token``,
``create namespace|configmap|secret|serviceaccount|role|...``) send built-in
objects as protobuf.  kubesim answers in JSON, but has to read these bodies.

A body is the 4-byte magic ``k8s\\x00`` followed by a ``runtime.Unknown``::

    message Unknown { TypeMeta typeMeta = 1; bytes raw = 2;
                      string contentEncoding = 3; string contentType = 4; }
    message TypeMeta { string apiVersion = 1; string kind = 2; }

``raw`` is the object itself, encoded with the go-to-protobuf generated schema
(``staging/src/k8s.io/api/<group>/<version>/generated.proto``).  :func:`decode`
turns it into the dict the JSON API would carry: exact JSON field names, unset
and zero-valued optional fields omitted, maps as dicts, ``bytes`` as base64
strings, ``meta/v1 Time`` as RFC 3339.

The decoder is a generic wire-format reader driven by per-message schema
tables ``{field_number: (json_name, type, sub, repeated[, keep_zero])}``:

* ``type`` is a scalar type name (``string``, ``bytes``, ``bool``, ``int32``,
  ``int64``, ``uint32``, ``uint64``, ``sint32``, ``sint64``, ``fixed32``,
  ``fixed64``, ``sfixed32``, ``sfixed64``, ``float``, ``double``), ``message``
  (``sub`` is the nested :class:`Schema`), ``time`` (meta/v1 Time), ``strings``
  (a wrapper message whose field 1 is ``repeated string``, e.g. ExtraValue,
  rendered as a plain list) or ``map`` (``sub`` is ``(key_type, value_type,
  value_sub)``; proto2 map entries are messages with key=1, value=2).
* go-to-protobuf always writes non-pointer scalars, even when empty, so zero
  scalars are dropped like JSON ``omitempty`` would -- unless ``keep_zero`` is
  set: for Go pointer fields (``*bool``, ``*int64``, ...), where presence on the
  wire means "set" (``automountServiceAccountToken: false``,
  ``gracePeriodSeconds: 0``), and for fields whose JSON tag has no
  ``omitempty`` (``roleRef.apiGroup``, ``status.allowed``, ...).
* Elements of repeated fields and map values are never dropped
  (``apiGroups: [""]`` matters).
* Unknown fields (including ``managedFields``) are skipped.

Field numbers come from the upstream generated.proto files and are checked
against the descriptors compiled into kubectl by tests/test_protobuf_decode.py.
"""

import base64
import datetime
import struct

__all__ = ["decode", "decode_message", "unwrap", "iter_fields", "Schema", "KINDS",
           "SUPPORTED_KINDS", "UnsupportedKindError", "MAGIC", "CONTENT_TYPE"]

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# wire types
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5

MAX_DEPTH = 64


class UnsupportedKindError(ValueError):
    """The body is a well-formed envelope, but for a kind this decoder does not know."""

    def __init__(self, api_version, kind):
        self.api_version = api_version
        self.kind = kind
        super().__init__(
            f"protobuf decoding of {kind} ({api_version or 'no apiVersion'}) is not supported; "
            f"supported kinds: {supported_kinds_text()}; send application/json instead")


class Schema(dict):
    """A message schema: ``{field_number: (json_name, type, sub, repeated[, keep_zero])}``."""

    def __init__(self, name, fields):
        super().__init__(fields)
        self.name = name
        # JSON key order: declaration order (= Go struct order), not field-number order
        self.order = {spec[0]: i for i, spec in enumerate(fields.values())}

    def __repr__(self):
        return f"Schema({self.name!r})"


# ---------------------------------------------------------------------------
# wire format
# ---------------------------------------------------------------------------

class _Malformed(Exception):
    pass


def _varint(buf, pos, end):
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise _Malformed("varint overflows 64 bits")
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("varint too long")


def _skip_group(buf, pos, end, field_number, depth):
    while True:
        if pos >= end:
            raise _Malformed(f"unterminated group (field {field_number})")
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if wt == EGROUP:
            if num != field_number:
                raise _Malformed(f"mismatched end group {num} for group {field_number}")
            return pos
        pos = _skip_value(buf, pos, end, num, wt, depth + 1)


def _skip_value(buf, pos, end, num, wt, depth):
    if depth > MAX_DEPTH:
        raise _Malformed("groups nested too deeply")
    if wt == VARINT:
        return _varint(buf, pos, end)[1]
    if wt == I64:
        if pos + 8 > end:
            raise _Malformed("truncated 64-bit field")
        return pos + 8
    if wt == I32:
        if pos + 4 > end:
            raise _Malformed("truncated 32-bit field")
        return pos + 4
    if wt == LEN:
        n, pos = _varint(buf, pos, end)
        if n > end - pos:
            raise _Malformed("length-delimited field runs past end of message")
        return pos + n
    if wt == SGROUP:
        return _skip_group(buf, pos, end, num, depth)
    raise _Malformed(f"invalid wire type {wt} (field {num})")


def iter_fields(buf, start=0, end=None):
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    ``value`` is an int for VARINT/I64/I32 (raw, unsigned) and a ``bytes`` for
    LEN.  Groups (deprecated) are skipped.
    """
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise _Malformed("field number 0")
        if wt == VARINT:
            v, pos = _varint(buf, pos, end)
        elif wt == I64:
            if pos + 8 > end:
                raise _Malformed("truncated 64-bit field")
            v = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == I32:
            if pos + 4 > end:
                raise _Malformed("truncated 32-bit field")
            v = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        elif wt == LEN:
            n, pos = _varint(buf, pos, end)
            if n > end - pos:
                raise _Malformed("length-delimited field runs past end of message")
            v = bytes(buf[pos:pos + n])
            pos += n
        elif wt == SGROUP:
            pos = _skip_group(buf, pos, end, num, 0)
            continue
        else:
            raise _Malformed(f"invalid wire type {wt} (field {num})")
        yield num, wt, v


# ---------------------------------------------------------------------------
# scalar conversion
# ---------------------------------------------------------------------------

_WIRE_OF = {
    "int32": VARINT, "int64": VARINT, "uint32": VARINT, "uint64": VARINT,
    "sint32": VARINT, "sint64": VARINT, "bool": VARINT, "enum": VARINT,
    "fixed64": I64, "sfixed64": I64, "double": I64,
    "fixed32": I32, "sfixed32": I32, "float": I32,
    "string": LEN, "bytes": LEN,
}
_ZERO = {"string": "", "bytes": "", "bool": False, "float": 0.0, "double": 0.0}


def _signed(v, bits):
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _scalar(typ, wt, v):
    if typ == "string":
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("string field is not valid UTF-8") from None
    if typ == "bytes":
        return base64.b64encode(v).decode("ascii")
    if typ == "bool":
        return v != 0
    if typ in ("int64", "sfixed64"):
        return _signed(v, 64)
    if typ in ("int32", "enum"):
        # int32 negatives are sign-extended to 64 bits on the wire
        return _signed(v & 0xFFFFFFFF, 32)
    if typ == "sfixed32":
        return _signed(v, 32)
    if typ in ("uint64", "fixed64"):
        return v
    if typ in ("uint32", "fixed32"):
        return v & 0xFFFFFFFF
    if typ in ("sint32", "sint64"):
        return (v >> 1) ^ -(v & 1)
    if typ == "double":
        return struct.unpack("<d", v.to_bytes(8, "little"))[0]
    if typ == "float":
        return struct.unpack("<f", v.to_bytes(4, "little"))[0]
    raise _Malformed(f"schema error: unknown scalar type {typ!r}")


def _packed(typ, data):
    """Decode a packed repeated scalar field."""
    out = []
    wt = _WIRE_OF[typ]
    pos, end = 0, len(data)
    while pos < end:
        if wt == VARINT:
            v, pos = _varint(data, pos, end)
        else:
            size = 8 if wt == I64 else 4
            if pos + size > end:
                raise _Malformed("truncated packed field")
            v = int.from_bytes(data[pos:pos + size], "little")
            pos += size
        out.append(_scalar(typ, wt, v))
    return out


def _format_time(data):
    """meta/v1 Time {seconds=1, nanos=2} -> RFC 3339 (seconds precision, like JSON)."""
    if not data:
        return None          # zero time.Time marshals to an empty message (JSON null)
    seconds = 0
    for num, wt, v in iter_fields(data):
        if num == 1:
            if wt != VARINT:
                raise _Malformed("Time.seconds has wrong wire type")
            seconds = _signed(v, 64)
        # nanos (2) is dropped: the JSON form of metav1.Time has second precision
    try:
        t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise _Malformed(f"Time.seconds {seconds} out of range") from None
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


# ---------------------------------------------------------------------------
# schema-driven decoding
# ---------------------------------------------------------------------------

def _is_zero(value):
    if value is None or value == "":
        return True
    return isinstance(value, (int, float)) and value == 0    # bool is an int


def _value(typ, sub, wt, v, path, depth):
    """Decode one (non-packed) occurrence of a field."""
    if typ in ("message", "time", "strings", "map"):
        if wt != LEN:
            raise _Malformed(f"{path}: expected length-delimited {typ}, got wire type {wt}")
        if typ == "message":
            return _decode(sub, v, path, depth + 1)
        if typ == "time":
            return _format_time(v)
        if typ == "strings":
            return _strings(v, path)
        return _map_entry(sub, v, path, depth)
    if wt != _WIRE_OF[typ]:
        raise _Malformed(f"{path}: expected {typ}, got wire type {wt}")
    return _scalar(typ, wt, v)


def _strings(data, path):
    """A wrapper message ``{repeated string items = 1}`` (ExtraValue) -> list."""
    items = []
    for num, wt, v in iter_fields(data):
        if num != 1:
            continue
        if wt != LEN:
            raise _Malformed(f"{path}: items has wrong wire type {wt}")
        items.append(_scalar("string", LEN, v))
    return items


def _zero_of(typ):
    if typ == "message":
        return {}
    if typ == "strings":
        return []
    if typ == "time":
        return None
    return _ZERO.get(typ, 0)


def _map_entry(sub, data, path, depth):
    key_type, value_type, value_sub = sub
    key, value = None, None
    value_chunks = []
    for num, wt, v in iter_fields(data):
        if num == 1:
            key = _value(key_type, None, wt, v, path + ".key", depth)
        elif num == 2:
            if value_type in ("message", "time", "strings"):
                if wt != LEN:
                    raise _Malformed(f"{path}: map value has wrong wire type {wt}")
                value_chunks.append(v)
            else:
                value = _value(value_type, value_sub, wt, v, path, depth)
    if key is None:
        key = _zero_of(key_type)
    if value_chunks:
        value = _value(value_type, value_sub, LEN, b"".join(value_chunks), f"{path}[{key!r}]", depth)
    elif value is None:
        value = _zero_of(value_type)
    return str(key) if not isinstance(key, str) else key, value


def _decode(schema, data, path="", depth=0):
    """Decode message bytes ``data`` with ``schema`` into a JSON-shaped dict."""
    if depth > MAX_DEPTH:
        raise _Malformed(f"{path or schema.name}: messages nested too deeply")
    try:
        return _decode_fields(schema, data, path, depth)
    except _Malformed as e:
        if path and not str(e).startswith(path):
            raise _Malformed(f"{path}: {e}") from None
        raise


def _decode_fields(schema, data, path, depth):
    out = {}
    merged = {}     # non-repeated message fields: protobuf merges repeated occurrences
    for num, wt, v in iter_fields(data):
        spec = schema.get(num)
        if spec is None:
            continue  # unknown field: skipped
        name, typ, sub, repeated = spec[:4]
        fpath = f"{path}.{name}" if path else name
        if typ == "map":
            k, val = _value("map", sub, wt, v, fpath, depth)
            out.setdefault(name, {})[k] = val
        elif repeated:
            lst = out.setdefault(name, [])
            if wt == LEN and typ in _WIRE_OF and _WIRE_OF[typ] != LEN:
                lst.extend(_packed(typ, v))
            else:
                lst.append(_value(typ, sub, wt, v, f"{fpath}[{len(lst)}]", depth))
        elif typ in ("message", "time", "strings"):
            if wt != LEN:
                raise _Malformed(f"{fpath}: expected length-delimited {typ}, got wire type {wt}")
            merged.setdefault(num, []).append(v)
        else:
            out[name] = _value(typ, sub, wt, v, fpath, depth)
    for num, chunks in merged.items():
        name, typ, sub = schema[num][:3]
        fpath = f"{path}.{name}" if path else name
        out[name] = _value(typ, sub, LEN, b"".join(chunks), fpath, depth)
    # drop zero values the way JSON omitempty would (see module docstring)
    for num, spec in schema.items():
        name, typ = spec[0], spec[1]
        keep_zero = len(spec) > 4 and spec[4]
        if name not in out:
            continue
        val = out[name]
        if val is None or (not keep_zero and typ not in ("message", "map")
                           and not spec[3] and _is_zero(val)):
            del out[name]
    return dict(sorted(out.items(), key=lambda kv: schema.order[kv[0]]))


# ---------------------------------------------------------------------------
# schemas (field numbers from kubernetes/kubernetes staging/src/k8s.io/...)
# ---------------------------------------------------------------------------

KEEP = True   # 5th tuple element: keep zero values (Go pointer / non-omitempty JSON field)

STRING_MAP = ("string", "string", None)
BYTES_MAP = ("string", "bytes", None)

# k8s.io/apimachinery/pkg/apis/meta/v1
OWNER_REFERENCE = Schema("OwnerReference", {
    5: ("apiVersion", "string", None, False, KEEP),
    1: ("kind", "string", None, False, KEEP),
    3: ("name", "string", None, False, KEEP),
    4: ("uid", "string", None, False, KEEP),
    6: ("controller", "bool", None, False, KEEP),
    7: ("blockOwnerDeletion", "bool", None, False, KEEP),
})

OBJECT_META = Schema("ObjectMeta", {
    1: ("name", "string", None, False),
    2: ("generateName", "string", None, False),
    3: ("namespace", "string", None, False),
    4: ("selfLink", "string", None, False),
    5: ("uid", "string", None, False),
    6: ("resourceVersion", "string", None, False),
    7: ("generation", "int64", None, False),
    8: ("creationTimestamp", "time", None, False),
    9: ("deletionTimestamp", "time", None, False),
    10: ("deletionGracePeriodSeconds", "int64", None, False, KEEP),
    11: ("labels", "map", STRING_MAP, False),
    12: ("annotations", "map", STRING_MAP, False),
    13: ("ownerReferences", "message", OWNER_REFERENCE, True),
    14: ("finalizers", "string", None, True),
    # 17: managedFields -- deliberately skipped
})

LABEL_SELECTOR_REQUIREMENT = Schema("LabelSelectorRequirement", {
    1: ("key", "string", None, False, KEEP),
    2: ("operator", "string", None, False, KEEP),
    3: ("values", "string", None, True),
})

LABEL_SELECTOR = Schema("LabelSelector", {
    1: ("matchLabels", "map", STRING_MAP, False),
    2: ("matchExpressions", "message", LABEL_SELECTOR_REQUIREMENT, True),
})

PRECONDITIONS = Schema("Preconditions", {
    1: ("uid", "string", None, False, KEEP),
    2: ("resourceVersion", "string", None, False, KEEP),
})

DELETE_OPTIONS = Schema("DeleteOptions", {
    1: ("gracePeriodSeconds", "int64", None, False, KEEP),
    2: ("preconditions", "message", PRECONDITIONS, False),
    3: ("orphanDependents", "bool", None, False, KEEP),
    4: ("propagationPolicy", "string", None, False, KEEP),
    5: ("dryRun", "string", None, True),
    6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool", None, False, KEEP),
})

# k8s.io/api/authorization/v1
FIELD_SELECTOR_REQUIREMENT = Schema("FieldSelectorRequirement", {
    1: ("key", "string", None, False, KEEP),
    2: ("operator", "string", None, False, KEEP),
    3: ("values", "string", None, True),
})

FIELD_SELECTOR_ATTRIBUTES = Schema("FieldSelectorAttributes", {
    1: ("rawSelector", "string", None, False),
    2: ("requirements", "message", FIELD_SELECTOR_REQUIREMENT, True),
})

LABEL_SELECTOR_ATTRIBUTES = Schema("LabelSelectorAttributes", {
    1: ("rawSelector", "string", None, False),
    2: ("requirements", "message", LABEL_SELECTOR_REQUIREMENT, True),
})

RESOURCE_ATTRIBUTES = Schema("ResourceAttributes", {
    1: ("namespace", "string", None, False),
    2: ("verb", "string", None, False),
    3: ("group", "string", None, False),
    4: ("version", "string", None, False),
    5: ("resource", "string", None, False),
    6: ("subresource", "string", None, False),
    7: ("name", "string", None, False),
    8: ("fieldSelector", "message", FIELD_SELECTOR_ATTRIBUTES, False),
    9: ("labelSelector", "message", LABEL_SELECTOR_ATTRIBUTES, False),
})

NON_RESOURCE_ATTRIBUTES = Schema("NonResourceAttributes", {
    1: ("path", "string", None, False),
    2: ("verb", "string", None, False),
})

SELF_SUBJECT_ACCESS_REVIEW_SPEC = Schema("SelfSubjectAccessReviewSpec", {
    1: ("resourceAttributes", "message", RESOURCE_ATTRIBUTES, False),
    2: ("nonResourceAttributes", "message", NON_RESOURCE_ATTRIBUTES, False),
})

SUBJECT_ACCESS_REVIEW_SPEC = Schema("SubjectAccessReviewSpec", {
    1: ("resourceAttributes", "message", RESOURCE_ATTRIBUTES, False),
    2: ("nonResourceAttributes", "message", NON_RESOURCE_ATTRIBUTES, False),
    3: ("user", "string", None, False),
    4: ("groups", "string", None, True),
    5: ("extra", "map", ("string", "strings", None), False),
    6: ("uid", "string", None, False),
})

SUBJECT_ACCESS_REVIEW_STATUS = Schema("SubjectAccessReviewStatus", {
    1: ("allowed", "bool", None, False, KEEP),
    4: ("denied", "bool", None, False),
    2: ("reason", "string", None, False),
    3: ("evaluationError", "string", None, False),
})

SELF_SUBJECT_RULES_REVIEW_SPEC = Schema("SelfSubjectRulesReviewSpec", {
    1: ("namespace", "string", None, False),
})

RESOURCE_RULE = Schema("ResourceRule", {
    1: ("verbs", "string", None, True),
    2: ("apiGroups", "string", None, True),
    3: ("resources", "string", None, True),
    4: ("resourceNames", "string", None, True),
})

NON_RESOURCE_RULE = Schema("NonResourceRule", {
    1: ("verbs", "string", None, True),
    2: ("nonResourceURLs", "string", None, True),
})

SUBJECT_RULES_REVIEW_STATUS = Schema("SubjectRulesReviewStatus", {
    1: ("resourceRules", "message", RESOURCE_RULE, True),
    2: ("nonResourceRules", "message", NON_RESOURCE_RULE, True),
    3: ("incomplete", "bool", None, False, KEEP),
    4: ("evaluationError", "string", None, False),
})


def _review(name, spec, status):
    return Schema(name, {
        1: ("metadata", "message", OBJECT_META, False),
        2: ("spec", "message", spec, False),
        3: ("status", "message", status, False),
    })


SELF_SUBJECT_ACCESS_REVIEW = _review("SelfSubjectAccessReview", SELF_SUBJECT_ACCESS_REVIEW_SPEC,
                                     SUBJECT_ACCESS_REVIEW_STATUS)
SUBJECT_ACCESS_REVIEW = _review("SubjectAccessReview", SUBJECT_ACCESS_REVIEW_SPEC,
                                SUBJECT_ACCESS_REVIEW_STATUS)
LOCAL_SUBJECT_ACCESS_REVIEW = _review("LocalSubjectAccessReview", SUBJECT_ACCESS_REVIEW_SPEC,
                                      SUBJECT_ACCESS_REVIEW_STATUS)
SELF_SUBJECT_RULES_REVIEW = _review("SelfSubjectRulesReview", SELF_SUBJECT_RULES_REVIEW_SPEC,
                                    SUBJECT_RULES_REVIEW_STATUS)

# k8s.io/api/authentication/v1
BOUND_OBJECT_REFERENCE = Schema("BoundObjectReference", {
    1: ("kind", "string", None, False),
    2: ("apiVersion", "string", None, False),
    3: ("name", "string", None, False),
    4: ("uid", "string", None, False),      # proto field name "uID"
})

TOKEN_REQUEST_SPEC = Schema("TokenRequestSpec", {
    1: ("audiences", "string", None, True),
    4: ("expirationSeconds", "int64", None, False, KEEP),
    3: ("boundObjectRef", "message", BOUND_OBJECT_REFERENCE, False),
})

TOKEN_REQUEST_STATUS = Schema("TokenRequestStatus", {
    1: ("token", "string", None, False, KEEP),
    2: ("expirationTimestamp", "time", None, False),
})

TOKEN_REQUEST = _review("TokenRequest", TOKEN_REQUEST_SPEC, TOKEN_REQUEST_STATUS)

USER_INFO = Schema("UserInfo", {
    1: ("username", "string", None, False),
    2: ("uid", "string", None, False),
    3: ("groups", "string", None, True),
    4: ("extra", "map", ("string", "strings", None), False),
})

TOKEN_REVIEW_SPEC = Schema("TokenReviewSpec", {
    1: ("token", "string", None, False),
    2: ("audiences", "string", None, True),
})

TOKEN_REVIEW_STATUS = Schema("TokenReviewStatus", {
    1: ("authenticated", "bool", None, False),
    2: ("user", "message", USER_INFO, False),
    4: ("audiences", "string", None, True),
    3: ("error", "string", None, False),
})

TOKEN_REVIEW = _review("TokenReview", TOKEN_REVIEW_SPEC, TOKEN_REVIEW_STATUS)

SELF_SUBJECT_REVIEW_STATUS = Schema("SelfSubjectReviewStatus", {
    1: ("userInfo", "message", USER_INFO, False),
})

SELF_SUBJECT_REVIEW = Schema("SelfSubjectReview", {
    1: ("metadata", "message", OBJECT_META, False),
    2: ("status", "message", SELF_SUBJECT_REVIEW_STATUS, False),
})

# k8s.io/api/core/v1
NAMESPACE_SPEC = Schema("NamespaceSpec", {
    1: ("finalizers", "string", None, True),
})

NAMESPACE_CONDITION = Schema("NamespaceCondition", {
    1: ("type", "string", None, False, KEEP),
    2: ("status", "string", None, False, KEEP),
    4: ("lastTransitionTime", "time", None, False),
    5: ("reason", "string", None, False),
    6: ("message", "string", None, False),
})

NAMESPACE_STATUS = Schema("NamespaceStatus", {
    1: ("phase", "string", None, False),
    2: ("conditions", "message", NAMESPACE_CONDITION, True),
})

NAMESPACE = _review("Namespace", NAMESPACE_SPEC, NAMESPACE_STATUS)

CONFIG_MAP = Schema("ConfigMap", {
    1: ("metadata", "message", OBJECT_META, False),
    4: ("immutable", "bool", None, False, KEEP),
    2: ("data", "map", STRING_MAP, False),
    3: ("binaryData", "map", BYTES_MAP, False),
})

SECRET = Schema("Secret", {
    1: ("metadata", "message", OBJECT_META, False),
    5: ("immutable", "bool", None, False, KEEP),
    2: ("data", "map", BYTES_MAP, False),
    4: ("stringData", "map", STRING_MAP, False),
    3: ("type", "string", None, False),
})

OBJECT_REFERENCE = Schema("ObjectReference", {
    1: ("kind", "string", None, False),
    2: ("namespace", "string", None, False),
    3: ("name", "string", None, False),
    4: ("uid", "string", None, False),
    5: ("apiVersion", "string", None, False),
    6: ("resourceVersion", "string", None, False),
    7: ("fieldPath", "string", None, False),
})

LOCAL_OBJECT_REFERENCE = Schema("LocalObjectReference", {
    1: ("name", "string", None, False),
})

SERVICE_ACCOUNT = Schema("ServiceAccount", {
    1: ("metadata", "message", OBJECT_META, False),
    2: ("secrets", "message", OBJECT_REFERENCE, True),
    3: ("imagePullSecrets", "message", LOCAL_OBJECT_REFERENCE, True),
    4: ("automountServiceAccountToken", "bool", None, False, KEEP),
})

# k8s.io/api/rbac/v1
POLICY_RULE = Schema("PolicyRule", {
    1: ("verbs", "string", None, True),
    2: ("apiGroups", "string", None, True),
    3: ("resources", "string", None, True),
    4: ("resourceNames", "string", None, True),
    5: ("nonResourceURLs", "string", None, True),
})

AGGREGATION_RULE = Schema("AggregationRule", {
    1: ("clusterRoleSelectors", "message", LABEL_SELECTOR, True),
})

ROLE = Schema("Role", {
    1: ("metadata", "message", OBJECT_META, False),
    2: ("rules", "message", POLICY_RULE, True),
})

CLUSTER_ROLE = Schema("ClusterRole", {
    1: ("metadata", "message", OBJECT_META, False),
    2: ("rules", "message", POLICY_RULE, True),
    3: ("aggregationRule", "message", AGGREGATION_RULE, False),
})

SUBJECT = Schema("Subject", {
    1: ("kind", "string", None, False, KEEP),
    2: ("apiGroup", "string", None, False),
    3: ("name", "string", None, False, KEEP),
    4: ("namespace", "string", None, False),
})

ROLE_REF = Schema("RoleRef", {
    1: ("apiGroup", "string", None, False, KEEP),
    2: ("kind", "string", None, False, KEEP),
    3: ("name", "string", None, False, KEEP),
})


def _binding(name):
    return Schema(name, {
        1: ("metadata", "message", OBJECT_META, False),
        2: ("subjects", "message", SUBJECT, True),
        3: ("roleRef", "message", ROLE_REF, False),
    })


ROLE_BINDING = _binding("RoleBinding")
CLUSTER_ROLE_BINDING = _binding("ClusterRoleBinding")

# (apiVersion, kind) -> top-level schema
KINDS = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SELF_SUBJECT_RULES_REVIEW,
    ("authorization.k8s.io/v1", "SubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): LOCAL_SUBJECT_ACCESS_REVIEW,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
    ("authentication.k8s.io/v1", "TokenRequest"): TOKEN_REQUEST,
    ("authentication.k8s.io/v1", "TokenReview"): TOKEN_REVIEW,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): CLUSTER_ROLE_BINDING,
    ("meta.k8s.io/v1", "DeleteOptions"): DELETE_OPTIONS,
    ("v1", "DeleteOptions"): DELETE_OPTIONS,
}

SUPPORTED_KINDS = frozenset(KINDS)


def supported_kinds_text():
    """Human-readable list of the supported kinds, for error messages."""
    return ", ".join(f"{kind} ({av})" for av, kind in sorted(SUPPORTED_KINDS, key=lambda k: (k[1], k[0])))


# ---------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------

def decode_message(schema, raw):
    """Decode a bare protobuf message (no envelope) with ``schema``."""
    try:
        return _decode(schema, raw)
    except _Malformed as e:
        raise ValueError(f"malformed protobuf {schema.name}: {e}") from None


def unwrap(body):
    """Split a body into ``(apiVersion, kind, raw)``; raises ValueError if malformed."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ValueError("protobuf body must be bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ValueError("malformed protobuf body: missing the k8s\\x00 magic prefix "
                         "(not a Kubernetes protobuf envelope)")
    api_version = kind = ""
    raw = b""
    encoding = content_type = ""
    try:
        for num, wt, v in iter_fields(body, len(MAGIC)):
            if num == 1 and wt == LEN:
                for tnum, twt, tv in iter_fields(v):
                    if tnum == 1 and twt == LEN:
                        api_version = _scalar("string", LEN, tv)
                    elif tnum == 2 and twt == LEN:
                        kind = _scalar("string", LEN, tv)
            elif num == 2 and wt == LEN:
                raw = v
            elif num == 3 and wt == LEN:
                encoding = _scalar("string", LEN, v)
            elif num == 4 and wt == LEN:
                content_type = _scalar("string", LEN, v)
    except _Malformed as e:
        what = f" {kind} ({api_version})" if kind else ""
        raise ValueError(f"malformed protobuf body{what}: bad runtime.Unknown envelope: {e}") from None
    if not kind:
        raise ValueError("malformed protobuf body: the runtime.Unknown envelope has no typeMeta.kind")
    if encoding:
        raise ValueError(f"protobuf {kind} ({api_version}): unsupported contentEncoding {encoding!r}")
    if content_type and content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise ValueError(f"protobuf {kind} ({api_version}): unsupported inner contentType {content_type!r}")
    return api_version, kind, raw


def decode(body):
    """Decode a full Kubernetes protobuf request body into the JSON-shaped dict.

    Raises :class:`UnsupportedKindError` (a ValueError) for kinds not in
    :data:`SUPPORTED_KINDS` and ValueError for malformed bodies.
    """
    api_version, kind, raw = unwrap(body)
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise UnsupportedKindError(api_version, kind)
    try:
        obj = _decode(schema, raw)
    except _Malformed as e:
        raise ValueError(f"malformed protobuf {kind} ({api_version}): {e}") from None
    out = {"apiVersion": api_version, "kind": kind}
    out.update(obj)
    return out
