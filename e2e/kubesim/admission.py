"""Admission through registered Mutating- and ValidatingWebhookConfigurations, called over
HTTPS as kube-apiserver calls them: rules, scope, namespace and object selectors, failure
policy, timeouts, caBundle, `service` references resolved through Endpoints (the certificate is
checked for <service>.<namespace>.svc), JSON patches and warnings."""

import asyncio
import base64
import json
import logging
import socket
import ssl
import uuid

import aiohttp

from .errors import ApiError, internal
from .patch import PatchError, json_patch
from .selectors import label_selector_matches

log = logging.getLogger("kubesim.admission")
ADM = "admissionregistration.k8s.io"


class StaticResolver(aiohttp.abc.AbstractResolver):
    """Resolves one service DNS name to the address its Endpoints give."""

    def __init__(self, host, ip):
        self.host, self.ip = host, ip

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if host != self.host:
            raise OSError(f"lookup {host}: no such host")
        fam = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        return [{"hostname": host, "host": self.ip, "port": port, "family": fam, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        pass


def _rule_matches(rule, op, group, version, resource, subresource, namespaced):
    ops = rule.get("operations") or []
    if "*" not in ops and op not in ops:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and namespaced:
        return False
    if scope == "Namespaced" and not namespaced:
        return False
    for r in rule.get("resources") or []:
        if r == "*/*":
            return True
        if "/" in r:
            res, sub = r.split("/", 1)
            if (res == "*" or res == resource) and (sub == "*" or sub == subresource):
                return True
        elif (r == "*" or r == resource) and not subresource:
            return True
    return False


class AdmissionRequest:
    def __init__(self, rt, version, op, name, namespace, user, obj, old, subresource="",
                 dry_run=False, options=None, request_version=None):
        self.rt, self.version, self.op = rt, version, op
        self.name, self.namespace, self.user = name, namespace, user
        self.obj, self.old, self.subresource = obj, old, subresource
        self.dry_run, self.options = dry_run, options
        self.request_version = request_version or version

    def review(self, uid):
        rt = self.rt
        kind_obj = self.obj if self.obj is not None else self.old
        if self.subresource in ("status", "ephemeralcontainers", ""):
            kind = {"group": rt.group, "version": self.version, "kind": rt.kind}
        else:
            kind = {"group": rt.group, "version": self.version,
                    "kind": (kind_obj or {}).get("kind", rt.kind)}
        resource = {"group": rt.group, "version": self.version, "resource": rt.plural}
        req = {
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": self.name or "",
            "operation": self.op,
            "userInfo": self.user.info(),
            "object": self.obj,
            "oldObject": self.old,
            "dryRun": self.dry_run,
            "options": self.options,
        }
        if self.namespace:
            req["namespace"] = self.namespace
        if self.subresource:
            req["subResource"] = self.subresource
            req["requestSubResource"] = self.subresource
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


class WebhookCallError(Exception):
    pass


class Admission:
    def __init__(self, server):
        self.server = server

    def _configs(self, plural):
        rt = self.server.registry.types[(ADM, plural)]
        return sorted(self.server.store.all(rt), key=lambda o: o["metadata"]["name"])

    def _namespace_labels(self, name):
        ns_rt = self.server.registry.types[("", "namespaces")]
        ns = self.server.store.get(ns_rt, "", name)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    def _applies(self, hook, req):
        if req.rt.group == ADM and req.rt.plural.endswith("webhookconfigurations"):
            return False  # never called on webhook configurations, as in kube-apiserver
        if not any(_rule_matches(r, req.op, req.rt.group, req.version, req.rt.plural,
                                 req.subresource, req.rt.namespaced) for r in hook.get("rules") or []):
            return False
        ns_sel = hook.get("namespaceSelector")
        if ns_sel is None:
            ns_sel = {}
        if req.rt.group == "" and req.rt.plural == "namespaces":
            labels = ((req.obj or req.old or {}).get("metadata") or {}).get("labels") or {}
            if not label_selector_matches(ns_sel, labels):
                return False
        elif req.rt.namespaced and req.namespace:
            if not label_selector_matches(ns_sel, self._namespace_labels(req.namespace)):
                return False
        obj_sel = hook.get("objectSelector")
        if obj_sel is None:
            obj_sel = {}
        if obj_sel:
            new_labels = ((req.obj or {}).get("metadata") or {}).get("labels") or {}
            old_labels = ((req.old or {}).get("metadata") or {}).get("labels") or {}
            if not (label_selector_matches(obj_sel, new_labels) or
                    (req.old is not None and label_selector_matches(obj_sel, old_labels))):
                return False
        return True

    async def mutate(self, req, warnings):
        """Runs every matching mutating webhook in order; returns the (patched) object."""
        for cfg in self._configs("mutatingwebhookconfigurations"):
            for hook in cfg.get("webhooks") or []:
                if not self._applies(hook, req):
                    continue
                async with self.server.fairness.away():
                    resp = await self._call_with_policy(hook, req)
                if resp is None:
                    continue
                warnings.extend(resp.get("warnings") or [])
                if not resp.get("allowed"):
                    raise self._denied(hook, resp)
                patch = resp.get("patch")
                if patch:
                    if resp.get("patchType") != "JSONPatch":
                        raise internal(f'received invalid webhook response: patchType '
                                       f'"{resp.get("patchType")}" is not supported')
                    try:
                        ops = json.loads(base64.b64decode(patch))
                        req.obj = json_patch(req.obj, ops)
                    except (ValueError, PatchError) as e:
                        raise internal(f'failed calling webhook "{hook["name"]}": '
                                       f"failed to apply patch: {e}")
        return req.obj

    async def validate(self, req, warnings):
        hooks = [h for cfg in self._configs("validatingwebhookconfigurations")
                 for h in cfg.get("webhooks") or [] if self._applies(h, req)]
        if not hooks:
            return
        # kube-apiserver calls validating webhooks in parallel and reports the first denial.
        async with self.server.fairness.away():
            results = await asyncio.gather(*(self._call_with_policy(h, req) for h in hooks),
                                           return_exceptions=True)
        for hook, resp in zip(hooks, results):
            if isinstance(resp, ApiError):
                raise resp
            if isinstance(resp, BaseException):
                raise resp
            if resp is None:
                continue
            warnings.extend(resp.get("warnings") or [])
        for hook, resp in zip(hooks, results):
            if resp is not None and not resp.get("allowed"):
                raise self._denied(hook, resp)

    @staticmethod
    def _denied(hook, resp):
        st = resp.get("status") or {}
        code = st.get("code") or 400
        if code < 400:
            code = 400
        denied_by = f'admission webhook "{hook["name"]}" denied the request'
        if st.get("message"):
            msg = f"{denied_by}: {st['message']}"
        elif st.get("reason"):
            msg = f"{denied_by}: {st['reason']}"
        else:
            msg = f"{denied_by} without explanation"
        return ApiError(code, st.get("reason") or "", msg, st.get("details"))

    async def _call_with_policy(self, hook, req):
        try:
            return await self._call(hook, req)
        except WebhookCallError as e:
            if (hook.get("failurePolicy") or "Fail") == "Ignore":
                log.warning("webhook %s failed, failurePolicy Ignore: %s", hook.get("name"), e)
                return None
            raise internal(f'failed calling webhook "{hook["name"]}": {e}')

    async def _call(self, hook, req):
        cc = hook.get("clientConfig") or {}
        timeout = hook.get("timeoutSeconds") or 10
        ctx = ssl.create_default_context()
        if cc.get("caBundle"):
            try:
                ctx = ssl.create_default_context(cadata=base64.b64decode(cc["caBundle"]).decode())
            except (ValueError, ssl.SSLError) as e:
                raise WebhookCallError(f"could not load caBundle: {e}")
        resolver = None
        if cc.get("url"):
            url = cc["url"]
        elif cc.get("service"):
            svc = cc["service"]
            host = f"{svc['name']}.{svc['namespace']}.svc"
            port = svc.get("port") or 443
            ip, target_port = self._resolve_service(svc["namespace"], svc["name"], port)
            resolver = StaticResolver(host, ip)
            url = f"https://{host}:{target_port}{svc.get('path') or '/'}"
            # Dial the endpoint's port; the certificate is verified for the service's DNS name.
        else:
            raise WebhookCallError("webhook has neither url nor service in clientConfig")
        call_url = f"{url}{'&' if '?' in url else '?'}timeout={timeout}s"
        uid = str(uuid.uuid4())
        body = req.review(uid)
        connector = aiohttp.TCPConnector(ssl=ctx, resolver=resolver, force_close=True)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(call_url, json=body,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                    if r.status != 200:
                        text = (await r.text())[:300]
                        raise WebhookCallError(f"failed to call webhook: the server responded "
                                               f"with the status code {r.status}: {text}")
                    data = await r.json(content_type=None)
        except asyncio.TimeoutError:
            raise WebhookCallError(f'failed to call webhook: Post "{call_url}": context deadline exceeded')
        except aiohttp.ClientConnectorCertificateError as e:
            raise WebhookCallError(f'failed to call webhook: Post "{call_url}": tls: failed to verify '
                                   f"certificate: {e.certificate_error}")
        except aiohttp.ClientError as e:
            raise WebhookCallError(f'failed to call webhook: Post "{call_url}": {e}')
        except ValueError as e:
            raise WebhookCallError(f"received invalid webhook response: {e}")
        if not isinstance(data, dict) or data.get("kind") != "AdmissionReview":
            raise WebhookCallError("received invalid webhook response: expected kind AdmissionReview")
        resp = data.get("response")
        if not isinstance(resp, dict):
            raise WebhookCallError("received invalid webhook response: response is missing")
        if resp.get("uid") != uid:
            raise WebhookCallError(f'received invalid webhook response: expected response.uid="{uid}", '
                                   f'got "{resp.get("uid")}"')
        return resp

    def _resolve_service(self, namespace, name, port):
        store, reg = self.server.store, self.server.registry
        svc = store.get(reg.types[("", "services")], namespace, name)
        if svc is None:
            raise WebhookCallError(f'failed to call webhook: service "{name}" not found')
        # As kube-apiserver's service resolver: the Service port that matches, then the
        # Endpoints port that carries that Service port's name (unnamed when the Service has a
        # single unnamed port).
        svc_port = next((p for p in (svc.get("spec") or {}).get("ports") or []
                         if p.get("port") == port), None)
        if svc_port is None:
            raise WebhookCallError(f'failed to call webhook: service "{name}" has no port {port}')
        port_name = svc_port.get("name", "")
        eps = store.get(reg.types[("", "endpoints")], namespace, name)
        for subset in (eps or {}).get("subsets") or []:
            addrs = subset.get("addresses") or []
            if not addrs:
                continue
            match = next((p for p in subset.get("ports") or [] if p.get("name", "") == port_name),
                         None)
            if match is None:
                continue
            return addrs[0]["ip"], match["port"]
        raise WebhookCallError(f'failed to call webhook: no endpoints available for service "{name}"')
