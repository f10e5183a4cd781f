"""Command line: /usr/bin/python3 -m kubesim --port N --kubeconfig-out FILE (run from e2e/)."""

import argparse
import asyncio
import base64
import gc
import logging
import os
import secrets
import signal
import ssl
import sys
import tempfile

import uvloop
import yaml
from aiohttp import web

from .auth import load_token_file
from .certs import ClusterPKI
from .server import Server


def write_kubeconfig(path, server_url, ca_pem, token, namespace="default"):
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "kubesim", "cluster": {
            "server": server_url,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "kubesim-admin", "user": {"token": token}}],
        "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim-admin",
                                                     "namespace": namespace}}],
        "current-context": "kubesim",
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="kubesim", description="A local Kubernetes API emulator.")
    p.add_argument("--port", type=int, default=6443, help="port to serve on; 0 picks a free one")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--kubeconfig-out", required=True, help="where to write the admin kubeconfig")
    p.add_argument("--cert-dir", help="where to write ca.crt, ca.key, the serving pair and the "
                                      "service-account key (default: a new temporary directory)")
    p.add_argument("--token-file", help="static tokens, CSV: token,user,uid,\"group1,group2\"")
    p.add_argument("--admin-token", help="the admin user's bearer token (default: random)")
    p.add_argument("--watch-history", type=int, default=2000,
                   help="events kept per resource for watch resumption (older: 410 Expired)")
    p.add_argument("--bookmark-interval", type=float, default=10.0,
                   help="seconds between BOOKMARK events on watches that allow them")
    p.add_argument("--seats", type=int, default=1,
                   help="requests executed at once, taken in turn between users (fairness.py)")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--profile", metavar="FILE",
                   help="profile the server with cProfile and write the statistics (pstats) to "
                        "FILE when it stops (for benchmarks: where does its one core go?)")
    args = p.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.watch_history < 1:
        p.error("--watch-history must be at least 1")
    if args.seats < 1:
        p.error("--seats must be at least 1")

    cert_dir = args.cert_dir or tempfile.mkdtemp(prefix="kubesim-")
    try:
        static = load_token_file(args.token_file) if args.token_file else {}
    except (OSError, ValueError) as e:
        p.error(f"--token-file: {e}")
    pki = ClusterPKI(cert_dir, hosts=("localhost",), ips=(args.host if args.host != "0.0.0.0"
                                                             else "127.0.0.1",))
    admin_token = args.admin_token or secrets.token_urlsafe(32)
    server = Server(pki, static, admin_token, history=args.watch_history,
                    bookmark_interval=args.bookmark_interval, seats=args.seats)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.path("apiserver.crt"), pki.path("apiserver.key"))
    ctx.load_verify_locations(pki.path("ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])

    async def freeze_survivors(interval=1.0):
        """Python's full collections scan every object alive, and kubesim keeps every stored
        object as a tree of dicts and lists: on a store of a few thousand objects one took 0.2 s
        and more, stalling every request meanwhile (a burst's latency doubled when one fell in
        it). Stored objects hold no reference cycles and are freed by reference counting, so
        every `interval` seconds what survives a young collection is moved out of the
        collector's sight (gc.freeze). The cost: a reference cycle that forms among objects
        frozen alive is never reclaimed; kubesim's stored objects form none."""
        while True:
            await asyncio.sleep(interval)
            gc.collect(1)
            gc.freeze()

    async def run():
        app = server.make_app()
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, ssl_context=ctx, backlog=1024,
                           shutdown_timeout=1.0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        url = f"https://{args.host}:{port}"
        write_kubeconfig(args.kubeconfig_out, url, pki.ca_pem(), admin_token)
        print(f"ready {url}", flush=True)
        freezer = asyncio.create_task(freeze_survivors())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        freezer.cancel()
        for t in list(server.watch_tasks):
            t.cancel()
        await runner.cleanup()

    uvloop.install()  # a faster event loop and TLS transport than asyncio's own
    if not args.profile:
        asyncio.run(run())
        return
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(run())
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
