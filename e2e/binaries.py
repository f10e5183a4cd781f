"""Starting the project's own binaries (build/bin/) from end-to-end tests: each runs as a real
process with its log captured to a file, waits for readiness, and can be stopped gracefully or
killed with SIGKILL (crash-safety tests).

    op = Binary.start("tasklease-operator", ["--kubeconfig", c.kubeconfig, ...],
                      ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"))
    ...
    op.kill()            # SIGKILL
    op.stop()            # SIGTERM, then SIGKILL after a grace period
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import ROOT

BUILD_DIR = os.environ.get("TASKLEASE_BUILD_DIR", os.path.join(ROOT, "build"))
BIN_DIR = os.path.join(BUILD_DIR, "bin")


def binary_path(name):
    p = os.path.join(BIN_DIR, name)
    if not os.path.exists(p):
        raise RuntimeError(f"{p} does not exist: run `make build` first")
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_ok(url, timeout=1.0, context=None):
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Binary:
    def __init__(self, name, args, proc, log_path):
        self.name, self.args, self.proc, self.log_path = name, args, proc, log_path

    @classmethod
    def start(cls, name, args, ready=None, timeout=30, env=None, log_dir=None):
        log_dir = log_dir or tempfile.mkdtemp(prefix=f"{name}-")
        log_path = os.path.join(log_dir, f"{name}-{int(time.time() * 1000)}.log")
        log = open(log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen([binary_path(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                env=full_env)
        b = cls(name, args, proc, log_path)
        if ready is not None:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{b.log_text()}")
                if ready():
                    return b
                time.sleep(0.1)
            b.kill()
            raise RuntimeError(f"{name} not ready after {timeout}s:\n{b.log_text()}")
        return b

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL: no cleanup, as in a crash."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace=10):
        """SIGTERM, then SIGKILL if it has not exited within grace seconds. Returns the exit code."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""
