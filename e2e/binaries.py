"""Starting the project's own binaries (build/bin/) from end-to-end tests: each runs as a real
process with its log captured to a file, waits for readiness, and can be stopped gracefully or
killed with SIGKILL (crash-safety tests). Logs, and links to the evidence files the binaries
write, are collected under ARTIFACTS_DIR for the whole session.

    op = Binary.start("tasklease-operator", ["--kubeconfig", c.kubeconfig, ...],
                      ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"))
    ...
    op.kill()            # SIGKILL
    op.stop()            # SIGTERM, then SIGKILL after a grace period
"""

import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import ROOT

BUILD_DIR = os.environ.get("TASKLEASE_BUILD_DIR", os.path.join(ROOT, "build"))
BIN_DIR = os.path.join(BUILD_DIR, "bin")


def _artifacts_dir():
    """One directory per test session (or $TASKLEASE_E2E_ARTIFACTS) that holds every binary's log
    and a link to each evidence file it writes, so that they can be examined together
    (tests/test_zz_secret_scan.py)."""
    given = os.environ.get("TASKLEASE_E2E_ARTIFACTS")
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    parent = os.path.join(BUILD_DIR, "e2e-artifacts")
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent)


ARTIFACTS_DIR = _artifacts_dir()


def _evidence_files(args):
    """The --evidence-file paths among a binary's arguments."""
    out = []
    for i, a in enumerate(args):
        if a == "--evidence-file" and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith("--evidence-file="):
            out.append(a.split("=", 1)[1])
    return out


def binary_path(name):
    p = os.path.join(BIN_DIR, name)
    if not os.path.exists(p):
        raise RuntimeError(f"{p} does not exist: run `make build` first")
    return p


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
        """The log is written under ARTIFACTS_DIR, next to links to the evidence files named
        by --evidence-file; log_dir, when given, gets a link to the log."""
        run_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=ARTIFACTS_DIR)
        log_path = os.path.join(run_dir, f"{name}.log")
        log = open(log_path, "wb")
        if log_dir:
            os.symlink(log_path, os.path.join(log_dir, f"{name}-{int(time.time() * 1000)}.log"))
        for i, evidence in enumerate(_evidence_files(args)):
            os.symlink(os.path.abspath(evidence), os.path.join(run_dir, f"evidence-{i}.jsonl"))
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
