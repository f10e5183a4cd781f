"""kubectl-tasklease as a real kubectl plugin (issue 6 acceptance, second half): with the operator
and the webhook running, a task goes its whole way (requested, authorized, issued, a pod admitted
under its ServiceAccount, completed with `kubectl tasklease complete`, revoked), and then
`kubectl tasklease explain` shows every step in order and agrees with the evidence records of
both processes: the same records (file, seq, kind), the same fingerprint, the operator's
revocation latency. The plugin reads kubeconfig as kubectl does ($KUBECONFIG, --kubeconfig,
--context, the context's namespace)."""

import json
import os
import subprocess
import tempfile

import pytest
import yaml

from binaries import BIN_DIR, binary_path
from components import install_crds, start_agenttask_webhook
from harness import kubectl_path
from test_operator import (Operator, add_policy, create_task, secret_data, task_body,
                           wait_phase)

# Secret values this module saw (credential tokens): the secret scan looks for them in every log
# and evidence file of the session (test_zz_secret_scan.py).
OBSERVED_SECRETS = []



@pytest.fixture(scope="module")
def webhook(cluster):
    """The webhook, stamping and validating AgentTasks in namespaces labelled for this module and
    checking workloads where enforcement is on."""
    wh, own, selector = start_agenttask_webhook(cluster, "tasklease.io/cli-e2e", "cli-e2e-")
    yield wh, own, selector
    wh.stop()
    cluster.kubectl("delete", "namespace", own, "--wait=false", check=False)


def plugin(cluster, *args, kubeconfig_env=True):
    """`kubectl tasklease ARGS` through real kubectl, which finds kubectl-tasklease on PATH."""
    binary_path("kubectl-tasklease")  # a clear error when it is not built
    env = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ.get("PATH", ""))
    env.pop("KUBECONFIG", None)
    if kubeconfig_env:
        env["KUBECONFIG"] = cluster.kubeconfig
    return subprocess.run([kubectl_path(), "tasklease", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def records_of(path):
    return [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []


def about(records, ns, name, uid):
    return [r for r in records if r["task"]["namespace"] == ns and r["task"]["name"] == name
            and r["task"]["uid"] in ("", uid)]


def test_explain_shows_every_step_in_order_and_agrees_with_the_evidence(cluster, webhook):
    wh, webhook_ns, selector = webhook
    ns = cluster.namespace("cli", labels={**selector, "tasklease.io/enforcement": "enforce"})
    op = Operator(cluster, cluster.namespace("tlop"), ns,
                  extra=["--delegation-keys-namespace", webhook_ns]).start()
    try:
        add_policy(cluster, ns)
        create_task(cluster, ns, task_body("refactor"))
        task = wait_phase(cluster, ns, "refactor", "Active")
        uid, cred = task["metadata"]["uid"], task["status"]["credential"]
        OBSERVED_SECRETS.append(secret_data(cluster, ns, cred["secretName"])[0]["token"].decode())

        # A pod of the task, under its ServiceAccount: the webhook admits it and records that.
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "agent", "namespace": ns, "labels": {"tasklease.io/task": "refactor"}},
               "spec": {"serviceAccountName": cred["serviceAccountName"],
                        "automountServiceAccountToken": False,
                        "containers": [{"name": "agent", "image": "busybox"}]}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
        cluster.wait_for(lambda: [r for r in about(records_of(wh.evidence_file), ns, "refactor", uid)
                                  if r["kind"] == "admitted"], what="the webhook's admitted record")

        done = plugin(cluster, "complete", "refactor", "-n", ns, "-o", "json")
        assert done.returncode == 0, done
        assert json.loads(done.stdout) == {"namespace": ns, "name": "refactor", "uid": uid,
                                           "completed": True, "changed": True,
                                           "phase": json.loads(done.stdout)["phase"]}
        again = plugin(cluster, "complete", "refactor", "-n", ns)
        assert again.returncode == 0 and "already completed" in again.stdout, again
        task = wait_phase(cluster, ns, "refactor", "Succeeded")
        cluster.wait_for(lambda: [r for r in records_of(op.evidence) if r["kind"] == "revoked"
                                  and r["task"]["uid"] == uid], what="the revoked record")

        files = [op.evidence, wh.evidence_file]
        evidence_args = [a for f in files for a in ("--evidence", f)]
        res = plugin(cluster, "explain", "refactor", "-n", ns, *evidence_args, "-o", "json")
        assert res.returncode == 0, res
        out = json.loads(res.stdout)
        assert out["problems"] == []
        assert out["task"] == {"namespace": ns, "name": "refactor", "uid": uid, "phase": "Succeeded"}
        steps = out["steps"]
        assert [s["step"] for s in steps] == ["requested", "authorized", "issued", "admitted",
                                              "completed", "revoked"]
        times = [s["time"] for s in steps]
        assert times == sorted(times)

        # The same records as the files hold about this task: file, seq and kind, each once.
        records = {(f, r["seq"], r["kind"]): r for f in files
                   for r in about(records_of(f), ns, "refactor", uid)}
        shown = [(e["file"], e["seq"], e["kind"]) for s in steps for e in s["evidence"]]
        assert sorted(shown) == sorted(records) and len(shown) == len(set(shown))
        for s in steps:
            for e in s["evidence"]:
                assert e["hash"] == records[(e["file"], e["seq"], e["kind"])]["hash"]
        kinds_by_step = {s["step"]: {e["kind"] for e in s["evidence"]} for s in steps}
        assert {"issued"} == kinds_by_step["issued"] and {"admitted"} == kinds_by_step["admitted"]
        assert {"completed"} == kinds_by_step["completed"] and {"revoked"} == kinds_by_step["revoked"]
        assert all(f["ok"] for f in out["evidenceFiles"]), out["evidenceFiles"]

        # What each step says agrees with the records and the status.
        by_step = {s["step"]: s for s in steps}
        issued_record = next(r for r in records.values() if r["kind"] == "issued")
        fingerprint = task["status"]["credential"]["fingerprint"]
        assert by_step["issued"]["details"]["fingerprint"] == fingerprint == \
            issued_record["details"]["fingerprint"]
        assert by_step["issued"]["details"]["expiresAt"] == task["status"]["credential"]["expiresAt"]
        assert by_step["issued"]["sources"] == ["task", "event", "evidence"]
        stamp = json.loads(task["metadata"]["annotations"]["tasklease.io/requested-by"])
        assert by_step["requested"]["details"]["username"] == stamp["username"]
        assert by_step["authorized"]["details"]["policy"] == task["status"]["policy"]["name"]
        assert by_step["admitted"]["details"]["object"] == "Pod/agent"
        revoked_record = next(r for r in records.values() if r["kind"] == "revoked")
        assert out["revocation"]["latencyMs"] == revoked_record["details"]["latencyMs"]
        assert out["revocation"]["latencySource"] == "operator"

        # The text form, through $KUBECONFIG's context namespace instead of -n.
        kubeconfig = yaml.safe_load(open(cluster.kubeconfig))
        for c in kubeconfig["contexts"]:
            c["context"]["namespace"] = ns
        scoped = os.path.join(op.workdir, "kubeconfig-in-ns")
        with open(scoped, "w") as f:
            yaml.safe_dump(kubeconfig, f)
        text = plugin(cluster, "explain", "refactor", "--kubeconfig", scoped, "--context",
                      kubeconfig["current-context"], *evidence_args, kubeconfig_env=False)
        assert text.returncode == 0, text
        lines = text.stdout.splitlines()
        order = [next(i for i, line in enumerate(lines) if f"  {step} " in line)
                 for step in ("requested", "authorized", "issued", "admitted", "completed", "revoked")]
        assert order == sorted(order), text.stdout
        assert fingerprint in text.stdout and f"AgentTask {ns}/refactor" in text.stdout
        assert OBSERVED_SECRETS[-1] not in text.stdout + res.stdout
    finally:
        op.stop()


def test_explain_and_complete_of_a_missing_task_name_its_namespace(cluster, webhook):
    _, _, selector = webhook
    ns = cluster.namespace("cli", labels=selector)
    install_crds(cluster)
    for command in ("explain", "complete"):
        res = plugin(cluster, command, "nope", "-n", ns)
        assert res.returncode == 3, res
        assert f'AgentTask "nope" not found in namespace "{ns}"' in res.stderr


def test_explain_names_an_unreadable_evidence_file(cluster, webhook):
    missing = os.path.join(tempfile.mkdtemp(prefix="cli-e2e-"), "gone.jsonl")
    res = plugin(cluster, "explain", "anything", "--evidence", missing)
    assert res.returncode == 2, res
    assert missing in res.stderr
