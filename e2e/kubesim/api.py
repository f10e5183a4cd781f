"""The semantics of the resource API: create, update, patch, delete, list and the rules around
them (resourceVersion preconditions, generation, the status subresource, finalizers and
deletionTimestamp, propagation policies, dry run), shared by the HTTP handlers and the
built-in controllers."""

import random
import re
import uuid

from . import builtins, schema
from .admission import AdmissionRequest
from .copies import json_copy
from .errors import (ApiError, already_exists, bad_request, conflict, internal, invalid, not_found,
                     precondition_conflict)
from .patch import PatchError, apply_patch, merge_patch, strategic_merge
from .tables import now_rfc3339

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "selfLink")


def _name_causes(rt, name):
    if rt.name_validation == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return [("FieldValueInvalid", f'Invalid value: "{name}": may not contain \'/\' or \'%\'',
                     "metadata.name")]
        return []
    if rt.name_validation == "label":
        if len(name) > 63 or not _LABEL.match(name):
            return [("FieldValueInvalid",
                     f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                     "case alphanumeric characters or '-', and must start and end with an "
                     "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')", "metadata.name")]
        return []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [("FieldValueInvalid",
                 f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                 "case alphanumeric characters, '-' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                 "metadata.name")]
    return []


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _metadata_causes(md):
    causes = []
    for k, v in (md.get("labels") or {}).items():
        if not isinstance(k, str) or not _QUALIFIED.match(k) or len(k.split("/")[-1]) > 63:
            causes.append(("FieldValueInvalid", f'Invalid value: "{k}": name part must consist of '
                           "alphanumeric characters, '-', '_' or '.', and must start and end with "
                           "an alphanumeric character", "metadata.labels"))
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(("FieldValueInvalid", f'Invalid value: "{v}": a valid label must be an '
                           "empty string or consist of alphanumeric characters, '-', '_' or '.', "
                           "and must start and end with an alphanumeric character",
                           "metadata.labels"))
    for k, v in (md.get("annotations") or {}).items():
        if not isinstance(k, str) or not _QUALIFIED.match(k):
            causes.append(("FieldValueInvalid", f'Invalid value: "{k}": name part must consist of '
                           "alphanumeric characters, '-', '_' or '.'", "metadata.annotations"))
        if not isinstance(v, str):
            causes.append(("FieldValueTypeInvalid", "Invalid value: annotation values must be "
                           "strings", f"metadata.annotations.{k}"))
    for f in md.get("finalizers") or []:
        if not isinstance(f, str) or not _QUALIFIED.match(f):
            causes.append(("FieldValueInvalid", f'Invalid value: "{f}": a finalizer must be a '
                           "qualified name", "metadata.finalizers"))
    return causes


_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "bool", list: "array",
              dict: "object", type(None): "null"}
_META_TYPES = {"name": str, "generateName": str, "namespace": str, "uid": str,
               "resourceVersion": str, "labels": dict, "annotations": dict, "finalizers": list,
               "ownerReferences": list, "generation": int, "creationTimestamp": (str, type(None)),
               "deletionTimestamp": (str, type(None)), "managedFields": list}
_GO_TYPE = {str: "string", dict: "map[string]string", list: "[]string", int: "int64"}


def _unmarshal_error(value, field, want):
    got = _JSON_TYPE.get(type(value), "value")
    go = _GO_TYPE.get(want if isinstance(want, type) else want[0], "string")
    return bad_request(f"json: cannot unmarshal {got} into Go struct field ObjectMeta.{field} of "
                       f"type {go}")


def _check_metadata_types(md):
    """Type errors in metadata are 400s, as the apiserver's JSON decoder reports them."""
    if not isinstance(md, dict):
        raise _unmarshal_error(md, "metadata", dict)
    for key, want in _META_TYPES.items():
        if key in md and md[key] is not None and not isinstance(md[key], want):
            raise _unmarshal_error(md[key], f"metadata.{key}", want)
    for key in ("labels", "annotations"):
        for k, v in (md.get(key) or {}).items():
            if not isinstance(v, str):
                raise _unmarshal_error(v, f"metadata.{key}", str)
    for f in md.get("finalizers") or []:
        if not isinstance(f, str):
            raise _unmarshal_error(f, "metadata.finalizers", str)
    for ref in md.get("ownerReferences") or []:
        if not isinstance(ref, dict) or not all(isinstance(ref.get(k, ""), str)
                                                for k in ("apiVersion", "kind", "name", "uid")):
            raise bad_request("json: cannot unmarshal into Go struct field ObjectMeta.metadata."
                              "ownerReferences of type v1.OwnerReference")


def _spec_part(obj):
    """Everything generation tracks: the object less metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api:
    def __init__(self, server):
        self.server = server
        self.store = server.store
        self.registry = server.registry

    # ---- helpers ----

    def rt(self, group, plural):
        return self.registry.types[(group, plural)]

    def present(self, obj, rt, version):
        """The object as served at version (CRDs serve stored objects at every version)."""
        if rt.crd is not None and version != rt.version:
            out = dict(obj)
            out["apiVersion"] = f"{rt.group}/{version}"
            return out
        return obj

    def _check_namespace_writable(self, rt, ns, name):
        """NamespaceLifecycle: no content in a namespace that is missing or terminating."""
        if not rt.namespaced:
            return
        nso = self.store.get(self.rt("", "namespaces"), "", ns)
        if nso is None:
            raise not_found(self.rt("", "namespaces"), ns)
        if nso["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden",
                           f'{rt.plural} "{name}" is forbidden: unable to create new content in '
                           f"namespace {ns} because it is being terminated",
                           {"name": name, "kind": rt.plural,
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {ns} is being terminated",
                                        "field": "metadata.namespace"}]})

    def _decode_kind(self, rt, body, version):
        if not isinstance(body, dict):
            raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind}): "
                              "couldn't get version/kind; json parse error: expected an object")
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        for field, value in (("kind", kind), ("apiVersion", api_version)):
            if value is not None and not isinstance(value, str):
                raise bad_request(f"json: cannot unmarshal {_JSON_TYPE.get(type(value), 'value')} "
                                  f"into Go struct field TypeMeta.{field} of type string")
        want_av = f"{rt.group}/{version}" if rt.group else version
        if kind is not None and kind != rt.kind:
            raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind}): "
                              f'kind "{kind}" does not match the request')
        if api_version is not None and api_version != want_av:
            group = api_version.rpartition("/")[0]
            if group != rt.group:
                raise bad_request(f"the API version in the data ({api_version}) does not match the "
                                  f"expected API version ({want_av})")
        body["kind"] = rt.kind
        body["apiVersion"] = f"{rt.group}/{rt.version}" if rt.group else rt.version
        body.setdefault("metadata", {})
        _check_metadata_types(body["metadata"])
        return body

    # ---- schema / validation ----

    def _custom_schema(self, rt):
        vdef = self.registry.crd_version_def(rt, rt.version) or {}
        return (vdef.get("schema") or {}).get("openAPIV3Schema")

    def _prepare_custom(self, rt, obj, old, field_validation, warnings):
        sch = self._custom_schema(rt)
        if sch is None:
            return
        unknown = schema.prune(sch, obj)
        if unknown:
            if field_validation == "Strict":
                raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                                  f"{rt.kind}: strict decoding error: " + ", ".join(
                                      f'unknown field "{u}"' for u in unknown))
            if field_validation == "Warn":
                warnings.extend(f'unknown field "{u}"' for u in unknown)
        schema.apply_defaults(sch, obj)

    def _validate(self, rt, obj, old, user, warnings=None):
        causes = _name_causes(rt, obj["metadata"]["name"]) if old is None else []
        causes += _metadata_causes(obj["metadata"])
        if rt.crd is not None:
            sch = self._custom_schema(rt)
            if sch is not None:
                ratchet = None
                if old is not None:
                    ratchet = schema.Ratchet(old["metadata"]["uid"] not in self._invalid_stored(rt, sch))
                causes += schema.validate(sch, obj, "", old, old is not None, ratchet=ratchet)
                if ratchet is not None and warnings is not None:
                    warnings.extend(ratchet.warnings)
        else:
            causes += builtins.validate(self.server, rt, obj, old)
        if causes:
            raise invalid(rt, obj["metadata"]["name"], causes)
        builtins.check_escalation(self.server, rt, obj, user)

    def _invalid_stored(self, rt, sch):
        """The uids of this custom resource's stored objects that fail its schema (only possible
        for objects stored before the CRD last changed), worked out once per CRD revision and
        kept as objects are written: validation ratcheting trusts the others."""
        if rt.invalid_stored is None:
            rt.invalid_stored = {o["metadata"]["uid"] for o in self.store.all(rt)
                                 if schema.validate(sch, o)}
        return rt.invalid_stored

    # ---- create ----

    async def create(self, rt, version, namespace, body, user, dry_run=False, field_validation="",
                     warnings=None, subresource="", skip_admission=False):
        warnings = warnings if warnings is not None else []
        obj = self._decode_kind(rt, body, version)
        md = obj["metadata"]
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + "".join(random.choice(_GEN_CHARS) for _ in range(5))
            else:
                raise invalid(rt, "", [("FieldValueRequired",
                                        "Required value: name or generateName is required",
                                        "metadata.name")])
        self._check_namespace_writable(rt, namespace, md["name"])
        for k in _SERVER_META:
            md.pop(k, None)
        md.pop("resourceVersion", None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        if rt.tracks_generation:
            md["generation"] = 1
        if rt.has_status and rt.crd is not None:
            obj.pop("status", None)
        if rt.crd is not None:
            self._prepare_custom(rt, obj, None, field_validation, warnings)
        builtins.default_on_create(self.server, rt, obj)
        builtins.admit_builtin(self.server, rt, obj, None, "CREATE")
        req = AdmissionRequest(rt, version, "CREATE", md["name"], namespace if rt.namespaced else "",
                               user, self.present(obj, rt, version), None, subresource, dry_run,
                               {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"})
        if not skip_admission:
            obj = await self.server.admission.mutate(req, warnings)
            obj = self._decode_kind(rt, obj, version)
        self._validate(rt, obj, None, user)
        if not skip_admission:
            req.obj = self.present(obj, rt, version)
            await self.server.admission.validate(req, warnings)
        if self.store.get(rt, namespace if rt.namespaced else "", obj["metadata"]["name"]) is not None:
            raise already_exists(rt, obj["metadata"]["name"])
        self._check_namespace_writable(rt, namespace, obj["metadata"]["name"])
        if dry_run:
            return obj
        stored = self.store.create(rt, obj)
        builtins.after_create(self.server, rt, stored)
        return stored

    # ---- update / patch ----

    def _merge_update(self, rt, current, new, subresource):
        """Builds the object to store from the current one and the client's, applying the
        status-subresource split and the server-owned metadata."""
        if subresource == "ephemeralcontainers":
            out = json_copy(current)
            eph = (new.get("spec") or {}).get("ephemeralContainers")
            if eph is None:
                out.get("spec", {}).pop("ephemeralContainers", None)
            else:
                out.setdefault("spec", {})["ephemeralContainers"] = eph
            return out
        if subresource == "status":
            # Everything but status comes from the stored object, metadata included.
            out = json_copy(current)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            return out
        out = json_copy(new)
        if rt.has_status:
            if "status" in current:
                out["status"] = json_copy(current["status"])
            else:
                out.pop("status", None)
        md, cmd = out.setdefault("metadata", {}), current["metadata"]
        for k in _SERVER_META:
            if k in cmd:
                md[k] = cmd[k]
            else:
                md.pop(k, None)
        md["name"] = cmd["name"]
        if "namespace" in cmd:
            md["namespace"] = cmd["namespace"]
        return out

    async def update(self, rt, version, namespace, name, body, user, subresource="", dry_run=False,
                     field_validation="", warnings=None, is_patch=False, skip_admission=False):
        warnings = warnings if warnings is not None else []
        ns = namespace if rt.namespaced else ""
        current = self.store.get(rt, ns, name)
        if current is None:
            raise not_found(rt, name)
        obj = self._decode_kind(rt, body, version)
        md = obj["metadata"]
        if md.get("name") and md["name"] != name:
            raise bad_request(f"the name of the object ({md['name']}) does not match the name on "
                              f"the URL ({name})")
        if rt.namespaced and md.get("namespace") and md["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        want_rv = md.get("resourceVersion")
        if want_rv and want_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        new = self._merge_update(rt, current, obj, subresource)
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if rt.crd is not None and subresource != "status":
            self._prepare_custom(rt, new, current, field_validation, warnings)
        builtins.default_on_update(self.server, rt, new, current, subresource)
        cmd = current["metadata"]
        if cmd.get("deletionTimestamp"):
            added = [f for f in new["metadata"].get("finalizers") or []
                     if f not in (cmd.get("finalizers") or [])]
            if added:
                raise invalid(rt, name, [("FieldValueForbidden",
                                          "Forbidden: no new finalizers can be added if the object "
                                          f"is being deleted, found new finalizers {added!r}".replace(
                                              "'", '"'), "metadata.finalizers")])
        builtins.admit_builtin(self.server, rt, new, current, "UPDATE", subresource)
        req = AdmissionRequest(rt, version, "UPDATE", name, ns, user, self.present(new, rt, version),
                               self.present(current, rt, version), subresource, dry_run,
                               {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"})
        if not skip_admission:
            new = await self.server.admission.mutate(req, warnings)
            new = self._decode_kind(rt, new, version)
            # Webhooks may not change server-owned metadata.
            new = self._merge_update(rt, current, new, subresource) if subresource == "" else new
        self._validate(rt, new, current, user, warnings)
        if not skip_admission:
            req.obj = self.present(new, rt, version)
            await self.server.admission.validate(req, warnings)
        latest = self.store.get(rt, ns, name)
        if latest is None:
            raise not_found(rt, name)
        if latest["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            if want_rv or is_patch:
                # A patch is re-applied by kube-apiserver on conflict; our caller retries it.
                raise conflict(rt, name)
            return await self.update(rt, version, namespace, name, body, user, subresource,
                                     dry_run, field_validation, warnings, is_patch, skip_admission)
        if rt.tracks_generation and _spec_part(new) != _spec_part(current):
            new["metadata"]["generation"] = cmd.get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = cmd["resourceVersion"]
        if new == current:
            return current  # no-op writes do not move the resourceVersion
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and not builtins.has_pending_spec_finalizers(rt, new):
            stored = self.store.update(rt, new, current)
            self.store.remove(rt, stored)
            self.server.controllers.on_removed(rt, stored)
            return stored
        stored = self.store.update(rt, new, current)
        if rt.invalid_stored:
            rt.invalid_stored.discard(cmd["uid"])  # validated above
        builtins.after_update(self.server, rt, stored, current)
        return stored

    async def patch(self, rt, version, namespace, name, content_type, body, user, subresource="",
                    dry_run=False, field_validation="", warnings=None, field_manager=None,
                    force=False):
        ns = namespace if rt.namespaced else ""
        ct = (content_type or "").split(";")[0].strip()
        for attempt in range(5):
            current = self.store.get(rt, ns, name)
            if ct == "application/apply-patch+yaml":
                if not field_manager:
                    raise bad_request("PATCH request must specify fieldManager: fieldManager: "
                                      "Required value: is required for apply patch")
                if not isinstance(body, dict):
                    raise bad_request("apply patch body must be an object")
                if current is None:
                    if subresource:
                        raise not_found(rt, name)
                    body.setdefault("metadata", {})["name"] = name
                    return await self.create(rt, version, namespace, body, user, dry_run,
                                             field_validation, warnings), True
                base = self.present(current, rt, version)
                patched = strategic_merge(base, body) if rt.crd is None else merge_patch(base, body)
            else:
                if current is None:
                    raise not_found(rt, name)
                try:
                    patched = apply_patch(ct, self.present(current, rt, version), body, rt.crd is None)
                except PatchError as e:
                    raise ApiError(422, "Invalid", str(e)) if ct == "application/json-patch+json" \
                        else bad_request(str(e))
            if not isinstance(patched, dict):
                raise bad_request("the patch produced something that is not an object")
            try:
                return await self.update(rt, version, namespace, name, patched, user, subresource,
                                         dry_run, field_validation, warnings, is_patch=True), False
            except ApiError as e:
                # kube-apiserver retries a patch that raced with another write, unless the patch
                # itself carried a resourceVersion precondition.
                body_rv = isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion")
                if e.reason == "Conflict" and not body_rv and attempt < 4:
                    continue
                raise
        raise internal("patch kept conflicting")

    # ---- delete ----

    async def delete(self, rt, version, namespace, name, user, options=None, dry_run=False,
                     warnings=None, skip_admission=False):
        options = options or {}
        warnings = warnings if warnings is not None else []
        ns = namespace if rt.namespaced else ""
        current = self.store.get(rt, ns, name)
        if current is None:
            raise not_found(rt, name)
        pre = options.get("preconditions") or {}
        cmd = current["metadata"]
        if pre.get("uid") and pre["uid"] != cmd["uid"]:
            raise precondition_conflict(
                rt, name, f"the UID in the precondition ({pre['uid']}) does not match the UID in "
                          f"record ({cmd['uid']}). The object might have been deleted and then "
                          "recreated")
        if pre.get("resourceVersion") and pre["resourceVersion"] != cmd["resourceVersion"]:
            raise precondition_conflict(
                rt, name, f"the ResourceVersion in the precondition ({pre['resourceVersion']}) "
                          f"does not match the ResourceVersion in record "
                          f"({cmd['resourceVersion']}). The object might have been modified")
        if not skip_admission:
            req = AdmissionRequest(rt, version, "DELETE", name, ns, user, None,
                                   self.present(current, rt, version), "", dry_run,
                                   dict(options, kind="DeleteOptions", apiVersion="meta.k8s.io/v1"))
            await self.server.admission.validate(req, warnings)
        if dry_run:
            return current, False
        return self.delete_now(rt, current, options.get("propagationPolicy"),
                               options.get("gracePeriodSeconds"))

    def delete_now(self, rt, current, propagation=None, grace=None):
        """Deletes without admission (the path controllers take). Returns (object, removed)."""
        current = self.store.get(rt, current["metadata"].get("namespace") or "",
                                 current["metadata"]["name"]) or current
        cmd = current["metadata"]
        policy = propagation or builtins.default_propagation(rt)
        finalizers = list(cmd.get("finalizers") or [])
        if policy == "Orphan":
            self.server.controllers.orphan_dependents(cmd["uid"])
        if policy == "Foreground" and self.store.dependents_of(cmd["uid"]):
            if "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
        if cmd.get("deletionTimestamp"):
            if finalizers != list(cmd.get("finalizers") or []):
                new = json_copy(current)
                new["metadata"]["finalizers"] = finalizers
                return self.store.update(rt, new, current), False
            return current, False
        graceful = builtins.graceful_deletion_seconds(rt, current, grace)
        if finalizers or graceful or builtins.has_pending_spec_finalizers(rt, current):
            new = json_copy(current)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = graceful
            if finalizers:
                new["metadata"]["finalizers"] = finalizers
            if rt.tracks_generation:
                new["metadata"]["generation"] = cmd.get("generation", 1) + 1
            builtins.on_deletion_started(self.server, rt, new)
            stored = self.store.update(rt, new, current)
            self.server.controllers.on_deleting(rt, stored)
            return stored, False
        removed = self.store.remove(rt, current)
        self.server.controllers.on_removed(rt, removed)
        return removed, True
