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
    """A kubesim of the test's own, for tests that change its global state."""
    if os.environ.get("E2E_KUBECONFIG"):
        pytest.skip("needs kubesim's admin API (faults, compaction); not on a real cluster")
    c = Cluster.start("--watch-history", "200", "--bookmark-interval", "1")
    yield c
    c.stop()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("E2E_KUBECONFIG"):
        skip = pytest.mark.skip(reason="tests kubesim itself; E2E_KUBECONFIG points at a real cluster")
        for item in items:
            if "kubesim_only" in item.keywords:
                item.add_marker(skip)
