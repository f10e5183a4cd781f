#!/usr/bin/python3
"""tasklease-webhook throughput and robustness, side by side with nginx answering a canned review.

1. Throughput: wrk (TLS, kept-alive connections) POSTs a realistic AdmissionReview (a
   three-container Deployment, over 4 KB) to the webhook and, in the same run, to nginx serving
   a canned AdmissionReview response over the same TLS setup. Prints requests/s, p50 and p99 for
   both, the ratios, the webhook's CPU microseconds per review and its peak RSS.
2. Hostile input: 10,000 requests (truncated JSON, wrong types, 10,000-deep nesting, 10 MB
   bodies, slow clients, TLS garbage). Prints how each kind was answered (a 4xx or a closed
   connection), whether the process is still serving, and its RSS before and after.

Figures, not pass/fail on time: nothing here asserts a duration (docs/webhook.md has a run).

    /usr/bin/python3 bench/webhook_bench.py [--build build] [--seconds 5] [--rounds 3] [--hostile 10000]
"""

import argparse
import datetime
import json
import os
import random
import resource
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def make_cert(d):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    crt, kpath = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
    open(crt, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(kpath, "wb").write(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return crt, kpath


def container(name):
    env = [{"name": "LOG_LEVEL", "value": "info"},
           {"name": "CONFIG_PATH", "value": "/etc/app/config.yaml"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "UPSTREAM_URL", "value": "https://api.internal.example.com/v2"},
           {"name": "OTEL_EXPORTER_OTLP_ENDPOINT",
            "value": "http://otel-collector.observability.svc:4317"}]
    env += [{"name": f"FEATURE_{i}", "value": "enabled"} for i in range(4)]
    return {"name": name, "image": f"registry.example.com/team-a/{name}:1.2.3",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}], "env": env,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"cpu": "500m", "memory": "512Mi"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                             {"name": "tmp", "mountPath": "/tmp"}]}


def review():
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"serviceAccountName": "web",
                                       "containers": [container(n) for n in
                                                      ("api", "worker", "sidecar")],
                                       "volumes": [{"name": "config",
                                                    "configMap": {"name": "web-config"}},
                                                   {"name": "tmp", "emptyDir": {}}]}}}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": UID,
                        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "resource": {"group": "apps", "version": "v1",
                                     "resource": "deployments"},
                        "name": "web", "namespace": "team-a", "operation": "CREATE",
                        "userInfo": {"username": "alice", "groups": ["devs"]},
                        "object": deployment, "dryRun": False}}


STATE = """apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {tasklease.io/enforcement: enforce}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: team-a, annotations: {tasklease.io/dedicated-to: Deployment/web}}
"""

CANNED = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "response": {"uid": UID, "allowed": True}})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_nginx(d, crt, key, port):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        return None
    conf = os.path.join(d, "nginx.conf")
    open(conf, "w").write(f"""
worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    # TLS 1.3, as the webhook and kube-apiserver negotiate (nginx 1.22 defaults to TLS 1.2).
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 3m;
    location /validate {{ default_type application/json; return 200 '{CANNED}'; }}
  }}
}}
""")
    p = subprocess.Popen([nginx, "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return p if wait_port(port) else None


def wrk(url, script, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True).stdout

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    return {"rps": float(m.group(1)) if m else 0.0, "requests": int(n.group(1)) if n else 0,
            "p50": latency(50), "p99": latency(99)}


def proc_cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tree_cpu_ticks(pid):
    """CPU ticks of a process and its children (nginx's master and its workers)."""
    total = proc_cpu_ticks(pid)
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += proc_cpu_ticks(int(child))
        except OSError:
            pass
    return total


def proc_mem_kb(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# ---- hostile input ----

def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_request(body, content_length=None):
    length = len(body) if content_length is None else content_length
    return (f"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body


def read_status(sock):
    """The status code of one response, or 'closed'. Reads the whole response."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return "closed", data
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        m = re.search(rb"content-length:\s*(\d+)", head, re.I)
        need = int(m.group(1)) if m else 0
        while len(rest) < need:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(head.split()[1]), rest
    except (OSError, ssl.SSLError):
        return "closed", data


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {}

    def add(self, kind, outcome):
        key = "4xx" if isinstance(outcome, int) and 400 <= outcome < 500 else str(outcome)
        with self.lock:
            self.by_kind.setdefault(kind, {}).setdefault(key, 0)
            self.by_kind[kind][key] += 1


def keepalive_kind(port, kind, bodies, tally):
    sock = None
    for body in bodies:
        if sock is None:
            sock = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", port)))
            sock.settimeout(20)
        try:
            sock.sendall(http_request(body))
            status, _ = read_status(sock)
        except (OSError, ssl.SSLError):
            status = "closed"
        tally.add(kind, status)
        if status == "closed":
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def big_body(port, tally, full):
    size = 10 * 1024 * 1024
    try:
        sock = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", port)))
        sock.settimeout(20)
        payload = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"'
        sock.sendall(http_request(b"", size) + payload)
        if full:
            chunk = b"x" * 65536
            sent = len(payload)
            try:
                while sent < size:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (OSError, ssl.SSLError):
                pass
        status, _ = read_status(sock)
        sock.close()
    except (OSError, ssl.SSLError):
        status = "closed"
    tally.add("10MB body" + (" (sent whole)" if full else ""), status)


def slow_client(port, tally):
    try:
        sock = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", port)))
        sock.settimeout(30)
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Le")
        status, _ = read_status(sock)  # the server's read timeout ends it
        sock.close()
    except (OSError, ssl.SSLError):
        status = "closed"
    tally.add("slow client", status)


def tls_garbage(port, tally, rng):
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 512))))
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        outcome = "closed"
    except OSError:
        outcome = "closed"
    tally.add("TLS garbage", outcome)


def hostile(port, total, pid):
    rng = random.Random(42)
    good = json.dumps(review()).encode()
    n_big, n_slow = 20, 50
    n_deep = total // 20
    n_garbage = total // 5
    n_types = total // 4
    n_trunc = total - n_big - n_slow - n_deep - n_garbage - n_types
    truncated = [good[:rng.randint(0, len(good) - 1)] for _ in range(n_trunc)]
    wrong = []
    for i in range(n_types):
        doc = review()
        r = doc["request"]
        choice = i % 6
        if choice == 0:
            r["uid"] = 12345
        elif choice == 1:
            r["object"] = "not-an-object"
        elif choice == 2:
            r["kind"] = ["Deployment"]
        elif choice == 3:
            doc["apiVersion"] = "admission.k8s.io/v1beta1"
        elif choice == 4:
            r["operation"] = "PATCH"
        else:
            r["userInfo"] = {"groups": "not-a-list"}
        wrong.append(json.dumps(doc).encode())
    deep = b"[" * 10000 + b"]" * 10000
    tally = Tally()
    rss_before = proc_mem_kb(pid, "VmRSS")
    threads = [threading.Thread(target=slow_client, args=(port, tally)) for _ in range(n_slow)]
    threads += [threading.Thread(target=big_body, args=(port, tally, i < 5)) for i in range(n_big)]
    for part in range(4):
        threads.append(threading.Thread(target=keepalive_kind,
                                        args=(port, "truncated JSON", truncated[part::4], tally)))
        threads.append(threading.Thread(target=keepalive_kind,
                                        args=(port, "wrong types", wrong[part::4], tally)))
    threads.append(threading.Thread(target=keepalive_kind,
                                    args=(port, "10,000-deep nesting", [deep] * n_deep, tally)))

    def garbage_batch(count, seed):
        r = random.Random(seed)
        for _ in range(count):
            tls_garbage(port, tally, r)
    for part in range(4):
        threads.append(threading.Thread(target=garbage_batch,
                                        args=(n_garbage // 4 + (1 if part < n_garbage % 4 else 0),
                                              part)))
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, rss_before, time.time() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating runs against nginx and the webhook")
    ap.add_argument("--threads", type=int, default=2,
                    help="the webhook's server threads (nginx runs 2 workers)")
    ap.add_argument("--hostile", type=int, default=10000)
    args = ap.parse_args()
    binary = os.path.join(args.build, "bin", "tasklease-webhook")
    if not os.path.exists(binary) or not shutil.which("wrk"):
        print(f"webhook bench: needs {binary} and wrk")
        return 1
    d = tempfile.mkdtemp(prefix="webhook-bench-")
    crt, key = make_cert(d)
    os.makedirs(os.path.join(d, "state"))
    open(os.path.join(d, "state", "state.yaml"), "w").write(STATE)
    body = json.dumps(review())
    open(os.path.join(d, "review.json"), "w").write(body)
    script = os.path.join(d, "post.lua")
    open(script, "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = '
                            f'"application/json"\nlocal f = io.open("{d}/review.json")\n'
                            'wrk.body = f:read("*a")\nf:close()\n')
    port, metrics, nginx_port = free_port(), free_port(), free_port()
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=2000")
    webhook = subprocess.Popen([binary, "--tls-cert-file", crt, "--tls-private-key-file", key,
                                "--port", str(port), "--metrics-port", str(metrics),
                                "--cluster-state-file", os.path.join(d, "state"),
                                "--evidence-stdout=false", "--log-level", "warn",
                                "--threads", str(args.threads)],
                               env=env, stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(d, "webhook.log"), "w"))
    nginx = start_nginx(d, crt, key, nginx_port)
    # The webhook's own HTTPS server answering the canned review: what TLS, HTTP and the event
    # loop cost by themselves, between nginx and the webhook.
    canned_bin, canned_port = os.path.join(args.build, "bin", "http_canned"), free_port()
    canned = None
    if os.path.exists(canned_bin):
        open(os.path.join(d, "canned.json"), "w").write(CANNED)
        canned = subprocess.Popen([canned_bin, crt, key, str(canned_port), str(args.threads),
                                   os.path.join(d, "canned.json")])
        if not wait_port(canned_port):
            canned.terminate()
            canned = None
    try:
        if not wait_port(port):
            print("webhook bench: the webhook did not start; see", d)
            return 1
        print(f"review: {len(body)} bytes, a Deployment with 3 containers; wrk -t2 -c32 "
              f"-d{args.seconds}s over TLS keep-alive, {args.rounds} rounds")
        tick = os.sysconf("SC_CLK_TCK")

        def measured(url, pid):
            """One wrk run with the server's and wrk's CPU microseconds per request."""
            cpu0, kids0 = tree_cpu_ticks(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
            r = wrk(url, script, args.seconds)
            cpu1, kids1 = tree_cpu_ticks(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
            n = max(1, r["requests"])
            r["cpu_us"] = (cpu1 - cpu0) / tick * 1e6 / n
            r["wrk_us"] = ((kids1.ru_utime + kids1.ru_stime) -
                           (kids0.ru_utime + kids0.ru_stime)) * 1e6 / n
            return r

        # Rounds alternate between the two servers, so that whatever else the machine does
        # during the run weighs on both; the ratios are each round's, and the median is reported.
        rounds = []
        for _ in range(args.rounds):
            ref = measured(f"https://127.0.0.1:{nginx_port}/validate", nginx.pid) if nginx else None
            server = (measured(f"https://127.0.0.1:{canned_port}/validate", canned.pid)
                      if canned else None)
            ours = measured(f"https://127.0.0.1:{port}/validate", webhook.pid)
            rounds.append((ref, ours, server))
        fmt = lambda r: (f"{r['rps']:8.0f} req/s  p50 {r['p50']:.2f} ms  "  # noqa: E731
                         f"p99 {r['p99']:5.2f} ms  CPU/request {r['cpu_us']:4.1f} us "
                         f"(wrk {r['wrk_us']:4.1f} us)")
        for i, (ref, ours, server) in enumerate(rounds, 1):
            print(f"  round {i}")
            if ref:
                print(f"    nginx (canned answer)  {fmt(ref)}")
            if server:
                print(f"    our server (canned)    {fmt(server)}")
            print(f"    tasklease-webhook      {fmt(ours)}")
            if ref and ref["rps"] and ref["p99"]:
                print(f"    ratios: throughput {ours['rps'] / ref['rps']:.2f}, "
                      f"p99 {ours['p99'] / ref['p99']:.2f}")
        print(f"  webhook peak RSS {proc_mem_kb(webhook.pid, 'VmHWM') / 1024:.1f} MiB")
        if all(ref and ref["rps"] and ref["p99"] for ref, _, _ in rounds):
            tput = statistics.median(o["rps"] / r["rps"] for r, o, _ in rounds)
            p99 = statistics.median(o["p99"] / r["p99"] for r, o, _ in rounds)
            cpu = statistics.median(o["cpu_us"] / r["cpu_us"] for r, o, _ in rounds if r["cpu_us"])
            print(f"  ratios, median of {len(rounds)} rounds: throughput {tput:.2f} of nginx "
                  f"(target >= 0.5), p99 {p99:.2f} of nginx (target <= 2); "
                  f"CPU per request {cpu:.1f}x nginx's")
        micro = os.path.join(args.build, "bin", "webhook_review_micro")
        if os.path.exists(micro):
            # The same review without TLS and HTTP, on one thread: where a review's CPU goes.
            out = subprocess.run([micro, os.path.join(d, "review.json"),
                                  os.path.join(d, "state", "state.yaml")],
                                 capture_output=True, text=True, env=env).stdout
            print("  in-process: " + (out.splitlines()[0] if out else "(no output)"))

        if args.hostile > 0:
            tally, rss_before, took = hostile(port, args.hostile, webhook.pid)
            alive = webhook.poll() is None
            sock = None
            try:
                sock = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", port)))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                healthy = read_status(sock)[0] == 200
            except (OSError, ssl.SSLError):
                healthy = False
            finally:
                if sock:
                    sock.close()
            total = sum(sum(v.values()) for v in tally.by_kind.values())
            unexpected = sum(c for v in tally.by_kind.values() for k, c in v.items()
                             if k not in ("4xx", "closed"))
            print(f"hostile: {total} requests in {took:.1f} s")
            for kind, outcomes in sorted(tally.by_kind.items()):
                print(f"  {kind:28s} " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
            print(f"  answered with a 4xx or closed: {total - unexpected} of {total}; "
                  f"process {'alive' if alive else 'DEAD'}, /healthz "
                  f"{'ok' if healthy else 'FAILED'}; RSS {rss_before / 1024:.1f} MiB before, "
                  f"{proc_mem_kb(webhook.pid, 'VmRSS') / 1024:.1f} MiB after, peak "
                  f"{proc_mem_kb(webhook.pid, 'VmHWM') / 1024:.1f} MiB")
    finally:
        webhook.terminate()
        webhook.wait(timeout=30)
        for server in (nginx, canned):
            if server:
                server.terminate()
                server.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
