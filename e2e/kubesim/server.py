"""The HTTP layer of kubesim: request parsing as kube-apiserver's RequestInfo does it,
authentication, authorization, faults, discovery, the resource verbs, watch streams, and the
admin endpoints under /kubesim/."""

import asyncio
import copy
import json
import logging
import time
import uuid

import yaml
from aiohttp import web
from multidict import CIMultiDict

from . import builtins, openapi, protobuf, tables
from .admission import Admission
from .api import Api
from .auth import Authenticator, TokenAuthority, User
from .controllers import Controllers
from .errors import (ApiError, bad_request, forbidden, internal, method_not_allowed, not_found,
                     success_status, unauthorized)
from .fairness import FairQueue
from .faults import Faults
from .rbac import Attributes, Authorizer, bootstrap_policy
from .resources import Registry
from .selectors import parse_field_selector, parse_label_selector
from .store import Store
from .workloads import Workloads

log = logging.getLogger("kubesim")

MAX_BODY = 3 * 1024 * 1024
VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-kubesim", "gitCommit": "kubesim",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
           "compiler": "gc", "platform": "linux/amd64"}
_NS_SUBRESOURCES = {"status", "finalize"}
_JSON_TYPES = ("application/json", "*/*", "application/*")


class RequestInfo:
    def __init__(self):
        self.is_resource = False
        self.verb = ""
        self.group = ""
        self.version = ""
        self.namespace = ""
        self.resource = ""
        self.subresource = ""
        self.name = ""
        self.path = ""
        self.parts = []


def parse_request(method, path, query):
    info = RequestInfo()
    info.path = path
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "api":
        rest, info.group = parts[1:], ""
        if not rest:
            info.parts = parts
            info.verb = method.lower()
            return info
        info.version, rest = rest[0], rest[1:]
    elif parts and parts[0] == "apis":
        rest = parts[1:]
        if len(rest) < 2:
            info.parts = parts
            info.verb = method.lower()
            return info
        info.group, info.version, rest = rest[0], rest[1], rest[2:]
    else:
        info.verb = method.lower()
        return info
    if not rest:
        info.verb = method.lower()
        info.parts = parts
        return info
    info.is_resource = True
    if rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NS_SUBRESOURCES:
            rest = rest[2:]
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if len(rest) > 3:
        info.subresource = "/".join(rest[2:])
    watch = query.get("watch") in ("1", "true", "True")
    m = method.upper()
    if m == "GET":
        info.verb = "watch" if watch else ("get" if info.name else "list")
    elif m == "POST":
        info.verb = "create"
    elif m == "PUT":
        info.verb = "update"
    elif m == "PATCH":
        info.verb = "patch"
    elif m == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = m.lower()
    return info


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class _EncodeCache:
    """Serialized bytes of stored objects, which are never mutated after they are stored, so
    that an event fanned out to many watches is encoded once."""

    def __init__(self, size=8192):
        self.size = size
        self.entries = {}

    def encode(self, obj):
        hit = self.entries.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        data = _dumps(obj)
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[id(obj)] = (obj, data)
        return data


class Server:
    def __init__(self, pki, static_tokens, admin_token, history=2000, bookmark_interval=10.0,
                 min_request_timeout=1800, seats=1):
        self.pki = pki
        self.registry = Registry()
        self.store = Store(history)
        self.authority = TokenAuthority(pki.sa_key, self.store, self.registry)
        self.admin_token = admin_token
        static_tokens = dict(static_tokens)
        static_tokens[admin_token] = User("kubesim-admin", "kubesim-admin-uid", ["system:masters"])
        self.authn = Authenticator(static_tokens, self.authority)
        self.authz = Authorizer(self.store, self.registry)
        self.admission = Admission(self)
        self.faults = Faults()
        self.api = Api(self)
        self.controllers = Controllers(self)
        self.workloads = Workloads(self)
        self.bookmark_interval = bookmark_interval
        self.min_request_timeout = min_request_timeout
        self.requests = 0
        self.requests_by_agent = {}
        self.started = time.time()
        self.watch_tasks = set()
        self.encoded = _EncodeCache()
        self.fairness = FairQueue(seats)
        self._bootstrap()

    # ---- bootstrap and internal writes ----

    def api_create_internal(self, rt, obj):
        md = obj["metadata"]
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", tables.now_rfc3339())
        if rt.tracks_generation:
            md.setdefault("generation", 1)
        builtins.default_on_create(self, rt, obj)
        stored = self.store.create(rt, obj)
        builtins.after_create(self, rt, stored)
        return stored

    def _bootstrap(self):
        ns_rt = self.registry.types[("", "namespaces")]
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.api_create_internal(ns_rt, {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}})
        for obj in bootstrap_policy():
            rt = self.registry.by_kind(obj["apiVersion"], obj["kind"])
            self.api_create_internal(rt, obj)
        svc_rt = self.registry.types[("", "services")]
        self.api_create_internal(svc_rt, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                     "clusterIP": "10.96.0.1"}})

    def remove_finalizer(self, rt, obj, finalizer):
        new = copy.deepcopy(obj)
        fins = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        new["metadata"]["finalizers"] = fins
        if not fins:
            del new["metadata"]["finalizers"]
        stored = self.store.update(rt, new, obj)
        if stored["metadata"].get("deletionTimestamp") and not fins and \
                not builtins.has_pending_spec_finalizers(rt, stored):
            removed = self.store.remove(rt, stored)
            self.controllers.on_removed(rt, removed)

    # ---- HTTP ----

    def make_app(self):
        app = web.Application(client_max_size=MAX_BODY + 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app):
        self.store.listeners.append(self._listener)
        self.controllers.start()
        self.workloads.start()

    async def _on_shutdown(self, app):
        await self.controllers.stop()
        await self.workloads.stop()
        for rs in self.store.resources.values():
            for w in list(rs.watchers):
                w.close()

    def _listener(self, type_, rt, obj, old):
        if type_ == "ADDED" and obj["metadata"].get("ownerReferences"):
            self.controllers.on_created_with_owners(rt, obj)

    def respond(self, obj, status=200, warnings=None, headers=None):
        h = CIMultiDict({"Content-Type": "application/json",
                         "Cache-Control": "no-cache, private",
                         "Audit-Id": str(uuid.uuid4())})
        for w in warnings or []:
            h.add("Warning", '299 - "' + w.replace('"', '\\"').replace("\n", " ") + '"')
        for k, v in (headers or {}).items():
            h[k] = v
        return web.Response(body=_dumps(obj), status=status, headers=h)

    def error(self, e, warnings=None):
        return self.respond(e.status(), e.code, warnings, e.headers)

    async def handle(self, request):
        self.requests += 1
        # Per client (User-Agent up to its first '/') and method: benchmarks count the calls a
        # component made.
        agent = request.headers.get("User-Agent", "").split("/", 1)[0] or "-"
        per_agent = self.requests_by_agent.setdefault(agent, {})
        per_agent[request.method] = per_agent.get(request.method, 0) + 1
        log.debug("%s %s ct=%s accept=%s", request.method, request.path_qs, request.headers.get("Content-Type"), request.headers.get("Accept"))
        try:
            return await self._handle(request)
        except ApiError as e:
            return self.error(e)
        except web.HTTPRequestEntityTooLarge:
            return self.error(ApiError(413, "RequestEntityTooLarge",
                                       f"Request entity too large: limit is {MAX_BODY}"))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug must answer 500, never kill the server
            log.exception("internal error on %s %s", request.method, request.path)
            return self.error(internal(f"{type(e).__name__}: {e}"))

    async def _handle(self, request):
        peercert = None
        transport = request.transport
        if transport is not None:
            ssl_obj = transport.get_extra_info("ssl_object")
            if ssl_obj is not None:
                peercert = ssl_obj.getpeercert()
        user = self.authn.authenticate(request.headers.get("Authorization"), peercert)
        if user is None:
            return self.error(unauthorized())
        path = request.path
        if path.startswith("/kubesim/"):
            return await self._admin(request, user)
        info = parse_request(request.method, path, request.query)
        if not info.is_resource:
            return await self._nonresource(request, user, info)
        resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
        delay = self.faults.latency_for(info.verb, resource)
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.error_for(info.verb, resource, info.namespace)
        if fault is not None and fault[1] == "before":
            return self.error(fault[0])
        rt = self.registry.lookup(info.group, info.version, info.resource)
        attrs = Attributes(user.name, user.groups, info.verb, info.group, info.resource,
                           info.subresource, info.namespace,
                           info.name if info.verb not in ("create",) or info.subresource else "")
        if info.resource == "namespaces" and info.name and not info.namespace:
            attrs.namespace = info.name
        allowed, _ = self.authz.authorize(attrs)
        if not allowed:
            return self.error(self._forbidden(user, info))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {"causes": [{"reason": "UnexpectedServerResponse",
                                        "message": "404 page not found"}]})
        if info.verb == "watch":
            response = await self._resource(request, user, info, rt)
        else:
            # Executed in fair order between users (fairness.py); the body is read first, so a
            # slow upload holds no seat.
            await self._raw_body(request)
            async with self.fairness.seat(user.name):
                response = await self._resource(request, user, info, rt)
        if fault is not None and fault[1] == "after":
            return self.error(fault[0])
        return response

    def _forbidden(self, user, info):
        group = info.group
        res = info.resource + (f"/{info.subresource}" if info.subresource else "")
        scope = (f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope")
        qual = info.resource + (f".{group}" if group else "")
        msg = (f'User "{user.name}" cannot {info.verb} resource "{res}" in API group "{group}" '
               f"{scope}")
        return forbidden(qual, info.name, msg)

    # ---- non-resource paths ----

    async def _nonresource(self, request, user, info):
        path = request.path.rstrip("/") or "/"
        allowed, _ = self.authz.authorize(Attributes(user.name, user.groups, "get", path=request.path))
        if request.method != "GET":
            raise method_not_allowed()
        if not allowed:
            raise ApiError(403, "Forbidden", f'forbidden: User "{user.name}" cannot get path '
                                             f'"{request.path}"', {})
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return self.respond(VERSION)
        if path == "/openapi/v3":
            return self.respond(openapi.root(self.registry))
        if path.startswith("/openapi/v3/"):
            rest = path[len("/openapi/v3/"):].split("/")
            if rest[0] == "api" and len(rest) == 2:
                return self.respond(openapi.gv_document(self.registry, "", rest[1]))
            if rest[0] == "apis" and len(rest) == 3:
                return self.respond(openapi.gv_document(self.registry, rest[1], rest[2]))
        if path == "/api":
            host = request.host
            return self.respond({"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                 "serverAddress": host}]})
        if path == "/api/v1":
            return self.respond(self.registry.resource_list("", "v1"))
        if path == "/apis":
            return self.respond(self.registry.api_group_list())
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "apis":
            g = self.registry.api_group(parts[1])
            if g is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.respond(g)
        if len(parts) == 3 and parts[0] == "apis":
            rl = self.registry.resource_list(parts[1], parts[2])
            if rl is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.respond(rl)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # ---- resources ----

    @staticmethod
    async def _raw_body(request):
        """The request's bytes (aiohttp keeps them: reading again costs nothing)."""
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raw = None
        if raw is None or len(raw) > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}")
        return raw

    async def _body(self, request, allow_yaml=True):
        raw = await self._raw_body(request)
        ct = (request.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ct == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(raw)
            except protobuf.UnsupportedKindError as e:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: application/json, application/yaml "
                               f"(kubesim decodes protobuf only for: {e})")
            except ValueError as e:
                raise bad_request(f"the object provided is unrecognized: {e}")
        if not raw.strip():
            if request.method == "DELETE":
                return None
            raise bad_request("the object provided is unrecognized: request body is empty")
        try:
            if ct in ("application/yaml", "application/apply-patch+yaml") and allow_yaml:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the object provided is unrecognized: couldn't get version/kind; "
                              f"json parse error: {e}")

    def _list_meta(self, rv, cont, remaining):
        meta = {"resourceVersion": str(rv)}
        if cont:
            meta["continue"] = cont
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        return meta

    def _dry_run(self, request):
        dr = request.query.getall("dryRun", [])
        for v in dr:
            if v != "All":
                raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(dr)

    def _field_validation(self, request):
        fv = request.query.get("fieldValidation", "")
        if fv and fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: '
                              '"Ignore", "Strict", "Warn"')
        return fv or "Warn"

    async def _resource(self, request, user, info, rt):
        verb = info.verb
        if rt.virtual:
            if verb != "create":
                raise method_not_allowed()
            body = await self._body(request)
            out = builtins.review(self, rt, body, user, info.namespace)
            return self.respond(out, 201)
        if info.subresource and info.subresource not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rt.namespaced and info.namespace and info.resource != "namespaces":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and not info.namespace and verb not in ("list", "watch"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns = info.namespace if rt.namespaced else ""
        warnings = []
        if info.subresource == "token":
            if verb != "create":
                raise method_not_allowed()
            body = await self._body(request)
            return self.respond(builtins.token_request(self, ns, info.name, body), 201)
        if verb == "get":
            obj = self.store.get(rt, ns, info.name)
            if obj is None:
                raise not_found(rt, info.name)
            obj = self.api.present(obj, rt, info.version)
            if tables.wants_table(request.headers.get("Accept", "")):
                return self.respond(tables.table(rt, info.version, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                                 request.query.get("includeObject")))
            return self.respond(obj)
        if verb == "list":
            return self._list(request, info, rt, ns)
        if verb == "watch":
            return await self._watch(request, info, rt, ns)
        dry = self._dry_run(request)
        if verb == "create":
            if info.name and not info.subresource:
                raise method_not_allowed()
            body = await self._body(request)
            obj = await self.api.create(rt, info.version, ns, body, user, dry,
                                        self._field_validation(request), warnings)
            return self.respond(self.api.present(obj, rt, info.version), 201, warnings)
        if verb == "update":
            body = await self._body(request)
            obj = await self.api.update(rt, info.version, ns, info.name, body, user,
                                        info.subresource, dry,
                                        self._field_validation(request), warnings)
            return self.respond(self.api.present(obj, rt, info.version), 200, warnings)
        if verb == "patch":
            ct = request.headers.get("Content-Type", "")
            body = await self._body(request)
            obj, created = await self.api.patch(rt, info.version, ns, info.name, ct, body, user,
                                                info.subresource, dry, self._field_validation(request),
                                                warnings, request.query.get("fieldManager"),
                                                request.query.get("force") == "true")
            return self.respond(self.api.present(obj, rt, info.version), 201 if created else 200,
                                warnings)
        if verb == "delete":
            body = await self._body(request)
            opts = body if isinstance(body, dict) else {}
            if request.query.get("propagationPolicy"):
                opts["propagationPolicy"] = request.query["propagationPolicy"]
            pp = opts.get("propagationPolicy")
            if pp and pp not in ("Orphan", "Background", "Foreground"):
                raise bad_request(f'propagationPolicy: Unsupported value: "{pp}": supported values: '
                                  '"Foreground", "Background", "Orphan"')
            if opts.get("orphanDependents") is True and not pp:
                opts["propagationPolicy"] = "Orphan"
            obj, removed = await self.api.delete(rt, info.version, ns, info.name, user, opts, dry,
                                                 warnings)
            if removed and rt.crd is None and rt.key not in (("", "pods"), ("", "namespaces")):
                return self.respond(success_status({"name": info.name, "group": rt.group,
                                                    "kind": rt.plural, "uid": obj["metadata"]["uid"]}),
                                    200, warnings)
            return self.respond(self.api.present(obj, rt, info.version), 200, warnings)
        if verb == "deletecollection":
            label_reqs = parse_label_selector(request.query.get("labelSelector", ""))
            field_reqs = parse_field_selector(request.query.get("fieldSelector", ""), rt)
            items, rv, _, _ = self.store.list(rt, ns, label_reqs, field_reqs)
            body = await self._body(request)
            opts = body if isinstance(body, dict) else {}
            if request.query.get("propagationPolicy"):
                opts["propagationPolicy"] = request.query["propagationPolicy"]
            deleted = []
            for obj in items:
                try:
                    o, _ = await self.api.delete(rt, info.version, obj["metadata"].get("namespace", ""),
                                                 obj["metadata"]["name"], user, opts, dry, warnings)
                    deleted.append(self.api.present(o, rt, info.version))
                except ApiError as e:
                    if e.code != 404:
                        raise
            return self.respond({"kind": rt.list_kind(), "apiVersion": f"{rt.group}/{info.version}"
                                 if rt.group else info.version,
                                 "metadata": {"resourceVersion": str(self.store.rv)},
                                 "items": deleted}, 200, warnings)
        raise method_not_allowed()

    def _list(self, request, info, rt, ns):
        q = request.query
        label_reqs = parse_label_selector(q.get("labelSelector", ""))
        field_reqs = parse_field_selector(q.get("fieldSelector", ""), rt)
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            raise bad_request(f'limit: Invalid value: "{q.get("limit")}": must be an integer')
        rv_param = q.get("resourceVersion", "")
        match = q.get("resourceVersionMatch", "")
        if rv_param and rv_param != "0":
            try:
                want = int(rv_param)
            except ValueError:
                raise bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be an integer')
            if want > self.store.rv:
                raise ApiError(504, "Timeout", f"Too large resource version: {want}, current: "
                               f"{self.store.rv}", {"causes": [{"reason": "ResourceVersionTooLarge",
                                                                "message": "Too large resource version"}],
                                                    "retryAfterSeconds": 1})
            if match == "Exact" and want != self.store.rv:
                from .errors import gone
                raise gone(f"too old resource version: {want} ({self.store.rv})")
        items, rv, cont, remaining = self.store.list(rt, ns, label_reqs, field_reqs, limit,
                                                     q.get("continue") or None)
        if label_reqs or field_reqs:
            remaining = None
        items = [self.api.present(o, rt, info.version) for o in items]
        meta = self._list_meta(rv, cont, remaining)
        if tables.wants_table(request.headers.get("Accept", "")):
            return self.respond(tables.table(rt, info.version, items, meta, q.get("includeObject")))
        gv = f"{rt.group}/{info.version}" if rt.group else info.version
        return self.respond({"kind": rt.list_kind(), "apiVersion": gv, "metadata": meta,
                             "items": items})

    async def _watch(self, request, info, rt, ns):
        q = request.query
        label_reqs = parse_label_selector(q.get("labelSelector", ""))
        field_reqs = parse_field_selector(q.get("fieldSelector", ""), rt)
        rv_param = q.get("resourceVersion", "")
        rv = None
        if rv_param and rv_param != "0":
            try:
                rv = int(rv_param)
            except ValueError:
                raise bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be an integer')
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else \
                self.min_request_timeout * (1 + __import__("random").random())
        except ValueError:
            raise bad_request(f'timeoutSeconds: Invalid value: "{q.get("timeoutSeconds")}"')
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        send_initial = q.get("sendInitialEvents") == "true"
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject")
        resource = info.resource
        expire, drop_secs, drop_events, abrupt = self.faults.watch_plan(resource, rv is not None)

        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private",
                                                       "Transfer-Encoding": "chunked"})
        await resp.prepare(request)
        gv = f"{rt.group}/{info.version}" if rt.group else info.version

        def line(type_, obj):
            if as_table and type_ in ("ADDED", "MODIFIED", "DELETED"):
                obj = tables.table(rt, info.version, [obj],
                                   {"resourceVersion": obj["metadata"]["resourceVersion"]}, include)
                return _dumps({"type": type_, "object": obj}) + b"\n"
            return b'{"type":"' + type_.encode() + b'","object":' + self.encoded.encode(obj) + b"}\n"

        async def send(type_, obj):
            await resp.write(line(type_, obj))

        if expire:
            err = ApiError(410, "Expired", f"too old resource version: {rv} ({self.store.rv})")
            await send("ERROR", err.status())
            return resp
        try:
            watcher = self.store.watch(rt, None if (rv is None or send_initial) else rv, ns,
                                       label_reqs, field_reqs)
        except ApiError as e:
            await send("ERROR", e.status())
            return resp
        if send_initial:
            watcher.queue.put_nowait(("BOOKMARK-INITIAL", None))
        start = time.monotonic()
        deadline = start + timeout
        drop_at = start + drop_secs if drop_secs else None
        next_bookmark = start + self.bookmark_interval
        sent = 0
        task = asyncio.current_task()
        self.watch_tasks.add(task)
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if drop_at and now >= drop_at:
                    self.faults.counts["watchDrops"] += 1
                    if abrupt and request.transport:
                        request.transport.abort()
                        return resp
                    break
                if request.transport is None or request.transport.is_closing():
                    return resp
                wait = min(deadline, drop_at or deadline, next_bookmark if bookmarks else deadline,
                           now + 1.0) - now
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.001))
                except asyncio.TimeoutError:
                    if bookmarks and time.monotonic() >= next_bookmark:
                        await send("BOOKMARK", {"kind": rt.kind, "apiVersion": gv,
                                                "metadata": {"resourceVersion": str(self.store.rv)}})
                        next_bookmark = time.monotonic() + self.bookmark_interval
                    continue
                if item is None:
                    break
                type_, obj = item
                if type_ == "BOOKMARK-INITIAL":
                    await send("BOOKMARK", {"kind": rt.kind, "apiVersion": gv, "metadata": {
                        "resourceVersion": str(self.store.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"}}})
                    continue
                # Send what is queued in one write: fewer syscalls when events come in bursts.
                batch = [line(type_, self.api.present(obj, rt, info.version))]
                sent += 1
                closed = False
                while not watcher.queue.empty() and len(batch) < 256 and \
                        not (drop_events and sent >= drop_events):
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        closed = True
                        break
                    if nxt[0] == "BOOKMARK-INITIAL":
                        watcher.queue.put_nowait(nxt)
                        break
                    batch.append(line(nxt[0], self.api.present(nxt[1], rt, info.version)))
                    sent += 1
                await resp.write(b"".join(batch))
                if closed:
                    break
                if drop_events and sent >= drop_events:
                    self.faults.counts["watchDrops"] += 1
                    if abrupt and request.transport:
                        request.transport.abort()
                        return resp
                    break
        except (ConnectionResetError, ConnectionError):
            return resp
        finally:
            self.store.unwatch(rt, watcher)
            self.watch_tasks.discard(task)
        try:
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    # ---- admin ----

    async def _admin(self, request, user):
        if "system:masters" not in user.groups:
            raise ApiError(403, "Forbidden", f'User "{user.name}" cannot use the kubesim admin API')
        path = request.path
        if path == "/kubesim/faults":
            if request.method == "GET":
                return self.respond(self.faults.describe())
            if request.method in ("PUT", "POST"):
                self.faults.configure(await self._body(request))
                log.info("faults configured: %s", json.dumps(self.faults.config))
                return self.respond(self.faults.describe())
            if request.method == "DELETE":
                self.faults.clear()
                return self.respond(self.faults.describe())
        if path == "/kubesim/compact" and request.method == "POST":
            self.store.compact()
            return self.respond({"compactedResourceVersion": str(self.store.rv)})
        if path == "/kubesim/users" and request.method == "POST":
            body = await self._body(request)
            if not isinstance(body, dict) or not body.get("token") or not body.get("name"):
                raise bad_request("users: body needs token and name (uid and groups optional)")
            groups = body.get("groups") or []
            if not isinstance(groups, list):
                raise bad_request("users: groups must be a list of strings")
            self.authn.static[body["token"]] = User(body["name"], body.get("uid", ""), groups)
            return self.respond({"name": body["name"], "groups": groups}, 201)
        if path == "/kubesim/stats" and request.method == "GET":
            return self.respond({
                "resourceVersion": self.store.rv, "requests": self.requests,
                "requestsByAgent": self.requests_by_agent,
                "watchers": self.store.watcher_count(),
                "fairness": self.fairness.stats(),
                "objects": {f"{g}/{p}" if g else p: len(rs.objects)
                            for (g, p), rs in self.store.resources.items()},
                "uptimeSeconds": round(time.time() - self.started, 1)})
        raise ApiError(404, "NotFound", f"kubesim admin: no {request.method} {path}")
