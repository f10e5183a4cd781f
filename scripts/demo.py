#!/usr/bin/python3
"""`make demo`: tasklease end to end against kubesim, told as a story in the terminal.

Starts kubesim, installs the Helm chart with helm (e2e/install.py), runs the webhook and the
operator under the chart's ServiceAccounts, then: a pod carrying a static secret is
refused (TL001); a policy and an AgentTask are created by a team member; the task's credential is
issued; the agent's Job is admitted and runs; the task completes when the Job does and everything
issued for it is revoked; `kubectl get agenttasks` and `kubectl tasklease explain` show what
happened. Everything it started is stopped at the end, also on failure or Ctrl-C.

`--up` (make demo-up) installs the same control plane, prints how to point kubectl at it and
keeps it running until Ctrl-C.

`--real` (make demo-real) tells the same story on the real control plane (kube-apiserver, etcd,
the controller manager and the scheduler built by `make deps`, with KWOK as the node:
e2e/realcluster.py), with its own kubectl: the chart's pods are scheduled on KWOK's node, the
webhook's process serves them and is reached through the chart's Service, the agent's Job runs
on that node.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))

TEAM = "team-a"
TASK = "refactor-billing"
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


def say(text):
    print(f"\n{BOLD}{textwrap.fill(text, 96)}{RESET}", flush=True)


def yaml_of(obj):
    import yaml
    return yaml.safe_dump(obj, sort_keys=False)


class Story:
    def __init__(self, cluster, inst, env, workdir):
        self.cluster, self.inst, self.env, self.workdir = cluster, inst, env, workdir

    def run(self, *args, user=None, input=None, expect_fail=False, show=True):
        """Runs a command as the user would type it and shows it with its output."""
        shown = " ".join(args)
        if user:
            shown += f"   {DIM}# as {user}{RESET}"
        if show:
            print(f"{GREEN}$ {shown}{RESET}", flush=True)
        env = dict(self.env)
        if user:
            env["KUBECONFIG"] = os.path.join(self.workdir, f"{user}.kubeconfig")
        p = subprocess.run(args, input=input, capture_output=True, text=True, env=env,
                           timeout=120, check=False)
        out = (p.stdout + p.stderr).rstrip()
        if show and out:
            print(textwrap.indent(out, "  "), flush=True)
        if expect_fail and p.returncode == 0:
            raise SystemExit(f"{RED}demo: `{shown}` should have been refused{RESET}")
        if not expect_fail and p.returncode != 0:
            raise SystemExit(f"{RED}demo: `{shown}` failed ({p.returncode}){RESET}")
        return p.stdout

    def apply(self, obj, user=None, expect_fail=False, show_manifest=True):
        if show_manifest:
            print(textwrap.indent(yaml_of(obj).rstrip(), f"  {DIM}|{RESET} "))
        return self.run("kubectl", "apply", "-f", "-", user=user, input=json.dumps(obj),
                        expect_fail=expect_fail)

    def wait(self, fn, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if fn():
                return
            time.sleep(0.3)
        raise SystemExit(f"{RED}demo: timed out waiting for {what}{RESET}")

    def task(self):
        return json.loads(self.run("kubectl", "get", "agenttask", TASK, "-n", TEAM, "-o", "json",
                                   show=False))

    def tell(self):
        from install import token_kubeconfig  # after main() has chosen the build directory
        c = self.cluster
        say("1. A team namespace where tasklease enforces its rules.")
        self.apply({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": TEAM, "labels": {"tasklease.io/enforcement": "enforce"}}})
        alice = c.add_user("alice", groups=["team-a-devs"])
        token_kubeconfig(c, os.path.join(self.workdir, "alice.kubeconfig"), alice, TEAM)
        self.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "agent-operators", "namespace": TEAM},
                    "rules": [{"apiGroups": ["tasklease.io"], "resources": ["agenttasks"],
                               "verbs": ["get", "list", "watch", "create", "patch"]},
                              {"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["get", "update"]},
                              {"apiGroups": ["batch"], "resources": ["jobs"],
                               "verbs": ["create"]}]}, show_manifest=False)
        self.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "alice-agent-operators", "namespace": TEAM},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "agent-operators"},
                    "subjects": [{"kind": "User", "name": "alice",
                                  "apiGroup": "rbac.authorization.k8s.io"}]},
                   show_manifest=False)

        say("2. An agent pod that reads an API key from a static Secret is refused: the key would "
            "outlive the task and nobody could tell which agent used it.")
        self.apply({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "agent-with-static-key", "namespace": TEAM},
                    "spec": {"serviceAccountName": "default", "containers": [{
                        "name": "agent", "image": "registry.example.com/agent:1.0",
                        "env": [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {
                            "name": "shared-keys", "key": "openai"}}}]}]}},
                   expect_fail=True)

        say("3. The platform team allows refactoring agents, in this namespace, to read and update "
            "one ConfigMap for at most an hour, and to run as a Job whose pod meets the "
            "restricted Pod Security Standard.")
        self.apply({"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentPolicy",
                    "metadata": {"name": "refactoring-agents"},
                    "spec": {"match": {"namespaces": [TEAM], "agents": ["refactor-*"]},
                             "allow": {"maxTTL": "1h", "credentialTypes": ["ServiceAccountToken"],
                                       "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                  "resourceNames": ["billing-config"],
                                                  "verbs": ["get", "update"]}],
                                       "workload": {"podSecurity": "restricted"}}}})

        say("4. Alice asks for an agent task: what the agent may do, for how long, and the Job "
            "that runs it. She holds these permissions herself, and may create Jobs, so she may "
            "delegate them.")
        self.apply({"apiVersion": "tasklease.io/v1alpha1", "kind": "AgentTask",
                    "metadata": {"name": TASK, "namespace": TEAM},
                    "spec": {"agent": "refactor-bot", "purpose": "move billing config to v2",
                             "context": {"tool": "git", "environment": "staging",
                                         "dataSensitivity": "internal"},
                             "ttl": "30m",
                             "scope": {"rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                  "resourceNames": ["billing-config"],
                                                  "verbs": ["get", "update"]}]},
                             "credential": {"type": "ServiceAccountToken"},
                             "workload": {"template": {
                                 "metadata": {"annotations": {
                                     "kubesim.tasklease.io/run-seconds": "4"}},
                                 "spec": {
                                     "securityContext": {
                                         "runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                                     "containers": [{
                                         "name": "agent",
                                         "image": "registry.example.com/refactor-bot:2.1",
                                         "args": ["--repo", "billing"],
                                         "securityContext": {
                                             "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}]}}}}},
                   user="alice")
        self.run("kubectl", "get", "agenttask", TASK, "-n", TEAM, "-o",
                 "jsonpath={.metadata.annotations.tasklease\\.io/requested-by}{\"\\n\"}")

        say("5. The operator checks the policy and issues a credential for this task alone: its "
            "own ServiceAccount, Role and RoleBinding, and a token bound to a Secret that expires "
            "with the task.")
        self.wait(lambda: (self.task().get("status") or {}).get("phase") in
                  ("Active", "Succeeded"), "the task to become Active")
        self.run("kubectl", "get", "agenttasks", "-n", TEAM)
        self.run("kubectl", "get", "serviceaccounts,roles,rolebindings,secrets", "-n", TEAM,
                 "-l", f"tasklease.io/task={TASK}")

        say("6. The agent's Job runs under the task's ServiceAccount with the credential mounted; "
            "the webhook admits its pod because it belongs to an Active task.")
        self.wait(lambda: self.run("kubectl", "get", "pods", "-n", TEAM, "-l",
                                   f"tasklease.io/task={TASK}", "-o", "name", show=False).strip(),
                  "the agent's pod")
        self.run("kubectl", "get", "jobs,pods", "-n", TEAM, "-l", f"tasklease.io/task={TASK}")

        say("7. The Job finishes, so the task is complete: the operator revokes everything it "
            "issued, reads back that each object is gone, and only then records the revocation.")
        self.wait(lambda: ((self.task().get("status") or {}).get("credential") or {})
                  .get("revokedAt"), "the revocation", timeout=90)
        self.run("kubectl", "get", "agenttasks", "-n", TEAM)
        self.run("kubectl", "get", "serviceaccounts,roles,rolebindings,secrets", "-n", TEAM,
                 "-l", f"tasklease.io/task={TASK}")

        say("8. What happened, who asked for it and under which policy, from the task, its Events "
            "and the hash-chained evidence of both components:")
        self.run("kubectl", "tasklease", "explain", TASK, "-n", TEAM, "--evidence",
                 self.inst.operator_evidence, "--evidence", self.inst.webhook_evidence)
        self.run("kubectl", "tasklease", "evidence", "verify", self.inst.operator_evidence)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--up", action="store_true", help="keep the control plane running")
    ap.add_argument("--real", action="store_true",
                    help="on the real control plane (make deps builds it) instead of kubesim")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    os.environ["TASKLEASE_BUILD_DIR"] = os.path.abspath(args.build)
    from harness import Cluster
    from install import Installation
    import realcluster

    workdir = args.workdir or tempfile.mkdtemp(prefix="tasklease-demo-")
    os.makedirs(workdir, exist_ok=True)
    started = time.time()
    cluster = inst = None
    # Ctrl-C and SIGTERM end the demo through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        plugin_dir = os.path.join(os.path.abspath(args.build), "bin")
        tools = [os.path.join(ROOT, ".tools", "bin")]
        if args.real:
            say("Starting a real Kubernetes control plane (kube-apiserver, etcd, controller "
                "manager, scheduler; KWOK as its node) and installing tasklease with `helm "
                "install`: its pods are scheduled on the node, and the webhook and the operator "
                "run as local processes for them, under the chart's ServiceAccounts.")
            if not realcluster.built():
                raise SystemExit(f"{RED}demo: the control plane is not built: run `make deps`"
                                 f"{RESET}")
            cp = realcluster.ControlPlane.up(os.path.join(workdir, "cluster"),
                                             die_with_parent=True)
            cluster = Cluster(cp.kubeconfig, workdir, control_plane=cp, owns_control_plane=True)
            # The kubectl of the control plane's own release.
            tools.insert(0, os.path.dirname(realcluster.binary("kubectl")))
            where = f"Kubernetes {cp.info['kubernetes']} at {cp.server}"
        else:
            say("Starting kubesim (the local Kubernetes API) and installing tasklease from its "
                "Helm chart: CRDs, RBAC, webhook configurations, Services; the webhook and the "
                "operator run as local processes under the chart's ServiceAccounts.")
            cluster = Cluster.start()
            where = f"kubesim at {cluster.url}"
        inst = Installation(cluster, workdir).install()
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([plugin_dir, *tools, env.get("PATH", "")])
        env["KUBECONFIG"] = cluster.kubeconfig
        print(f"  {where}; webhook on :{inst.webhook_port}, operator metrics on "
              f":{inst.operator_port}; logs and evidence in {workdir}")
        if args.up:
            print(f"\n{BOLD}The control plane is up. In another terminal:{RESET}\n"
                  f"  export KUBECONFIG={cluster.kubeconfig}\n"
                  f"  export PATH={os.pathsep.join([plugin_dir, *tools])}:$PATH\n"
                  f"  kubectl get crds; kubectl tasklease --help\n"
                  f"Press Ctrl-C to stop it.", flush=True)
            while True:
                time.sleep(3600)
        Story(cluster, inst, env, workdir).tell()
        say(f"Done in {time.time() - started:.0f} s. Everything the demo started is stopped; "
            f"its logs and evidence stay in {workdir}.")
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        if inst is not None:
            inst.stop()
        if cluster is not None:
            cluster.stop()
        # The workdir keeps the logs and the evidence the story refers to, but not the webhook's
        # private key, nor the real control plane's keys and data.
        for d in (("pod", "run"), ("cluster", "pki"), ("cluster", "etcd"), ("cluster", "users")):
            shutil.rmtree(os.path.join(workdir, *d), ignore_errors=True)


if __name__ == "__main__":
    main()
