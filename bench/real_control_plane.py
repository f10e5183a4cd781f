"""The real control plane (e2e/realcluster.py) as the benches on it use it: one started for the
bench and stopped after it, kube-apiserver's own metrics (GET /metrics, the Prometheus text
format) read before and after a measured phase, and the CPU time of processes.

    with started("pod-create-bench-") as (cp, cluster, workdir):
        before = Metrics(await api.text("/metrics"))
        ...
        after = Metrics(await api.text("/metrics"))
        after.minus(before, "apiserver_request_duration_seconds_sum", verb="POST", resource="pods")

Only the metric families named by PREFIXES are kept (the whole page is several megabytes).
"""

import contextlib
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.join(ROOT, "e2e") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "e2e"))

PREFIXES = ("apiserver_admission_", "apiserver_request_duration_seconds_",
            "apiserver_request_total", "apiserver_flowcontrol_dispatched_requests_total",
            "apiserver_flowcontrol_request_execution_seconds_",
            "apiserver_flowcontrol_request_wait_duration_seconds_",
            "etcd_request_duration_seconds_count")
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    def __init__(self, text, prefixes=PREFIXES):
        self.samples = {}
        for line in text.splitlines():
            if not line.startswith(prefixes):
                continue
            m = _SAMPLE.match(line)
            if not m or m.group(1).endswith("_bucket"):
                continue
            labels = dict(_LABEL.findall(m.group(2) or ""))
            self.samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))

    def total(self, name, /, **labels):
        """The sum of every sample of name whose labels include the given ones."""
        return sum(v for have, v in self.samples.get(name, ())
                   if all(have.get(k) == want for k, want in labels.items()))

    def minus(self, before, name, /, **labels):
        return self.total(name, **labels) - before.total(name, **labels)


def cpu_seconds(pid):
    """User and system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def started(prefix):
    """A control plane of the bench's own (killed with the bench if it dies); yields (the
    ControlPlane, a harness Cluster on it as its admin, a work directory) and stops it."""
    import realcluster
    from harness import Cluster

    cp = realcluster.ControlPlane.up(tempfile.mkdtemp(prefix=prefix + "cp-"), die_with_parent=True)
    try:
        workdir = tempfile.mkdtemp(prefix=prefix)
        yield cp, Cluster(cp.kubeconfig, workdir, control_plane=cp), workdir
    finally:
        cp.down()
