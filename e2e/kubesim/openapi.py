"""A minimal OpenAPI v3 discovery: /openapi/v3 and one document per group-version.

kubectl decides from these documents whether the server validates fields itself
(fieldValidation on PATCH operations); when it does, kubectl sends fieldValidation=Strict and
skips its own schema download. The documents describe paths, the group-version-kind of each
operation and that parameter; they carry no schemas, so clients that need full schemas
(kubectl explain) are not served."""

import hashlib
import json


def _gv_path(group, version):
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def root(registry):
    paths = {}
    gvs = {("", "v1")}
    for rt in registry.types.values():
        for v in rt.served_versions:
            gvs.add((rt.group, v))
    for group, version in sorted(gvs):
        doc = gv_document(registry, group, version)
        h = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()
        p = _gv_path(group, version)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"}
    return {"paths": paths}


def gv_document(registry, group, version):
    paths = {}
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string",
                        "uniqueItems": True}, "description": "fieldValidation instructs the server "
                        "on how to handle objects in the request containing unknown or duplicate "
                        "fields."}
    for rt in sorted(registry.types.values(), key=lambda r: r.plural):
        if rt.group != group or version not in rt.served_versions or rt.virtual:
            continue
        gvk = {"group": group, "version": version, "kind": rt.kind}
        prefix = "/" + _gv_path(group, version)
        base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
        op = lambda verb: {"x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk,
                           "parameters": [field_validation], "responses": {}}
        paths[base] = {"post": op("post"), "get": {"x-kubernetes-action": "list",
                                                   "x-kubernetes-group-version-kind": gvk,
                                                   "responses": {}}}
        paths[base + "/{name}"] = {"put": op("put"), "patch": op("patch"),
                                   "get": {"x-kubernetes-action": "get",
                                           "x-kubernetes-group-version-kind": gvk, "responses": {}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0-kubesim"},
            "paths": paths, "components": {}}
