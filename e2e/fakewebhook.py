"""A scriptable admission webhook for testing kubesim's admission path: an HTTPS server in a
background thread whose answers per path are set by the test, and which records every review."""

import asyncio
import base64
import json
import os
import ssl
import tempfile
import threading

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from kubesim.certs import issue, make_ca


def _pem(cert, key):
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class FakeWebhook:
    """Handlers map a path to f(request_dict) -> response_dict (allowed, status, patch, ...)."""

    def __init__(self, dns_names=("localhost",), host="127.0.0.1"):
        """host: the address to listen on (a real API server reaches a webhook registered through
        a Service only at a non-loopback address: realcluster.host_ip())."""
        self.host = host
        self.ca_cert, self.ca_key = make_ca("fake-webhook-ca")
        cert, key = issue(self.ca_cert, self.ca_key, "fake-webhook", dns_names=list(dns_names),
                          ips=sorted({"127.0.0.1", host}), server=True)
        self.cert_pem, self.key_pem = _pem(cert, key)
        self.ca_pem = self.ca_cert.public_bytes(serialization.Encoding.PEM)
        self.handlers = {}
        self.reviews = []
        self.port = None
        self._loop = None
        self._thread = None
        self._runner = None

    @property
    def ca_bundle(self):
        return base64.b64encode(self.ca_pem).decode()

    def url(self, path):
        return f"https://{self.host}:{self.port}{path}"

    def start(self):
        d = tempfile.mkdtemp(prefix="fakewebhook-")
        cp, kp = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        open(cp, "wb").write(self.cert_pem)
        open(kp, "wb").write(self.key_pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cp, kp)
        ready = threading.Event()

        async def handle(request):
            review = await request.json()
            req = review["request"]
            self.reviews.append((request.path, req))
            fn = self.handlers.get(request.path)
            if fn is None:
                return web.Response(status=404, text="no handler")
            resp = fn(req)
            if isinstance(resp, web.Response):
                return resp
            if asyncio.iscoroutine(resp):
                resp = await resp
            resp = dict(resp)
            resp.setdefault("uid", req["uid"])
            if "patch" in resp and isinstance(resp["patch"], list):
                resp["patch"] = base64.b64encode(json.dumps(resp["patch"]).encode()).decode()
                resp["patchType"] = "JSONPatch"
            return web.json_response({"apiVersion": "admission.k8s.io/v1",
                                      "kind": "AdmissionReview", "response": resp})

        async def main():
            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, 0, ssl_context=ctx)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(main())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self):
        if self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def allow(warnings=None):
    return lambda req: {"allowed": True, **({"warnings": warnings} if warnings else {})}


def deny(message, code=403):
    return lambda req: {"allowed": False, "status": {"code": code, "message": message,
                                                     "reason": "Forbidden"}}
