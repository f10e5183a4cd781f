"""Shared fixtures: one kubesim (or E2E_KUBECONFIG's cluster) for the whole session, and a fresh
namespace per test. Tests that change kubesim's global state (faults, compaction) start their
own with the `private_cluster` fixture."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Cluster  # noqa: E402


@pytest.fixture(scope="session")
def shared_cluster():
    c = Cluster.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def cluster(shared_cluster):
    """The session's cluster. Modules that run their tests both against processes started by the
    test and against tasklease installed from its chart (in a kubesim of its own) override this
    fixture and take the session's from `shared_cluster`."""
    return shared_cluster


@pytest.fixture
def ns(cluster):
    name = cluster.namespace()
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def private_cluster():
    """A kubesim of the test's own, for tests that change its global state (faults,
    compaction). A test that only needs a cluster of its own takes Cluster.start_own()."""
    if os.environ.get("E2E_KUBECONFIG"):
        pytest.skip("needs kubesim's admin API (fault injection, compaction on demand), which "
                    "no real API server has")
    c = Cluster.start("--watch-history", "200", "--bookmark-interval", "1")
    yield c
    c.stop()


def pytest_collection_modifyitems(config, items):
    """On a real cluster (E2E_KUBECONFIG), skips the tests marked kubesim_only(reason=...), the
    reason naming the kubesim feature they need (docs/kubesim.md lists them)."""
    if os.environ.get("E2E_KUBECONFIG"):
        for item in items:
            marker = item.get_closest_marker("kubesim_only")
            if marker is not None:
                why = marker.kwargs.get("reason") or "tests kubesim itself"
                item.add_marker(pytest.mark.skip(reason=f"kubesim only: {why}"))
