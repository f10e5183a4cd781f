#!/usr/bin/python3
"""kubesim throughput, side by side with nginx serving a canned answer over the same TLS setup.

Prints requests per second for GETs (wrk, kept-alive connections), creates and full lists
(aiohttp client, 16 concurrent), and watch fan-out (writes per second while N watches each
receive every event), then the ratios. Figures, not pass/fail: nothing here asserts a time.

    /usr/bin/python3 bench/kubesim_bench.py [--objects 2000] [--watches 50] [--seconds 5]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from harness import Cluster  # noqa: E402


def wrk(url, token, seconds, conns=16):
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "-H",
                          f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else None


def start_nginx(cert, key, body):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        return None, None
    d = tempfile.mkdtemp(prefix="bench-nginx-")
    open(os.path.join(d, "canned.json"), "w").write(body)
    conf = os.path.join(d, "nginx.conf")
    open(conf, "w").write(f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:0 ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ default_type application/json; alias {d}/canned.json; }}
  }}
}}""")
    # nginx cannot listen on port 0 and report it; pick a free port first.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    text = open(conf).read().replace("127.0.0.1:0", f"127.0.0.1:{port}")
    open(conf, "w").write(text)
    proc = subprocess.Popen([nginx, "-p", d, "-c", conf], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"https://127.0.0.1:{port}/"


async def creates_and_lists(url, token, ca, n, ns):
    ctx = ssl.create_default_context(cafile=ca)
    hdr = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=hdr, connector=aiohttp.TCPConnector(ssl=ctx, limit=16)) as s:
        sem = asyncio.Semaphore(16)

        async def create(i):
            async with sem:
                async with s.post(f"{url}/api/v1/namespaces/{ns}/configmaps",
                                  json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": f"c{i:05d}", "labels": {"bench": "y"}},
                                        "data": {"k": "v" * 64}}) as r:
                    assert r.status == 201, await r.text()
        t0 = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(n)))
        create_rate = n / (time.monotonic() - t0)
        t0 = time.monotonic()
        lists = 0
        while time.monotonic() - t0 < 3:
            async with s.get(f"{url}/api/v1/namespaces/{ns}/configmaps") as r:
                body = await r.json()
                assert len(body["items"]) >= n
            lists += 1
        list_rate = lists / (time.monotonic() - t0)
        return create_rate, list_rate


async def watch_fanout(url, token, ca, ns, watches, writes):
    ctx = ssl.create_default_context(cafile=ca)
    hdr = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=hdr, connector=aiohttp.TCPConnector(ssl=ctx, limit=0)) as s:
        async with s.get(f"{url}/api/v1/namespaces/{ns}/configmaps?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        counts = [0] * watches
        done = asyncio.Event()

        async def watcher(i):
            async with s.get(f"{url}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}"
                             f"&labelSelector=fan%3Dout&timeoutSeconds=120") as r:
                async for line in r.content:
                    if json.loads(line)["type"] in ("ADDED", "MODIFIED"):
                        counts[i] += 1
                        if counts[i] == writes:
                            return
        tasks = [asyncio.ensure_future(watcher(i)) for i in range(watches)]
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        sem = asyncio.Semaphore(8)

        async def write(i):
            async with sem:
                async with s.post(f"{url}/api/v1/namespaces/{ns}/configmaps",
                                  json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": f"f{i:05d}", "labels": {"fan": "out"}}}) as r:
                    assert r.status == 201
        await asyncio.gather(*(write(i) for i in range(writes)))
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        elapsed = time.monotonic() - t0
        done.set()
        assert all(c == writes for c in counts), counts
        return writes / elapsed, writes * watches / elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=2000)
    p.add_argument("--watches", type=int, default=50)
    p.add_argument("--writes", type=int, default=500)
    p.add_argument("--seconds", type=int, default=5)
    args = p.parse_args()
    c = Cluster.start()
    try:
        ns = c.namespace("bench")
        ca = os.path.join(c.cert_dir, "ca.crt")
        token = c.admin_token
        c.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"},
                   "data": {"k": "v"}})
        _, _, one = c.request("GET", f"/api/v1/namespaces/{ns}/configmaps/one", raw=True)
        get_rate = wrk(f"{c.url}/api/v1/namespaces/{ns}/configmaps/one", token, args.seconds)
        nginx, nginx_url = start_nginx(os.path.join(c.cert_dir, "apiserver.crt"),
                                       os.path.join(c.cert_dir, "apiserver.key"), one.decode())
        nginx_rate = None
        if nginx:
            try:
                nginx_rate = wrk(nginx_url, token, args.seconds)
            finally:
                nginx.terminate()
                nginx.wait()
        create_rate, list_rate = asyncio.run(creates_and_lists(c.url, token, ca, args.objects, ns))
        fan_ns = c.namespace("fan")
        write_rate, delivered = asyncio.run(watch_fanout(c.url, token, ca, fan_ns, args.watches,
                                                         args.writes))
    finally:
        c.stop()

    def fmt(x):
        return "n/a" if x is None else f"{x:,.0f}"
    print("kubesim benchmark (2 cores; both servers on loopback, same certificate)")
    print(f"  GET one object, kept-alive (wrk -c16):   kubesim {fmt(get_rate)} req/s | "
          f"nginx canned answer {fmt(nginx_rate)} req/s"
          + (f" | kubesim/nginx = {get_rate / nginx_rate:.3f}" if get_rate and nginx_rate else ""))
    print(f"  create ConfigMap (16 concurrent):        {fmt(create_rate)} req/s "
          f"({args.objects} objects)")
    print(f"  list all {args.objects} ConfigMaps:            {list_rate:,.1f} lists/s "
          f"({list_rate * args.objects:,.0f} objects/s)")
    print(f"  watch fan-out, {args.watches} watches:           {fmt(write_rate)} writes/s, "
          f"{fmt(delivered)} events delivered/s, every watch saw all {args.writes} events")


if __name__ == "__main__":
    main()
