"""tasklease-operator as a process against the cluster (issue 5 acceptance): a task allowed by
policy gets a credential that works exactly as granted and stops working when the task ends;
X509SVIDs verify against the operator's CA and land on its CRL; tasks expire at their deadline
with nobody touching them; denied tasks get nothing; deleting a task revokes before it goes.
Each of those runs twice: against an operator process started by the test in the session's
cluster, and against tasklease installed from its Helm chart (in a cluster of its own: the
chart's operator under the chart's ServiceAccount and RBAC, with the chart's webhook stamping
and validating the tasks), on kubesim and on the real control plane alike.

The helpers here (Operator, policies, tasks, reviews, the evidence check) serve
test_operator_resilience.py too."""

import base64
import datetime
import hashlib
import json
import os
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from binaries import Binary, http_ok
from components import install_crds
from harness import free_port, request_refused, token_refused, token_review
from install import apply_operator_rbac, installed_from_chart

GROUP, VERSION = "tasklease.io", "v1alpha1"
CREDENTIAL_KINDS = ("serviceaccounts", "secrets", "roles", "rolebindings")
TRUST_DOMAIN = "e2e.tasklease.test"
RULES = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["billing-config"],
          "verbs": ["get", "update"]}]

# ---- the operator process ----

class Operator:
    """One tasklease-operator process (restartable), reconciling one namespace's tasks."""

    # No webhook stamps the tasks it sees, so no `delegated` record comes before a decision.
    stamped = False

    def lifecycle(self, *kinds):
        """The evidence kinds one task leaves with this operator: `kinds`, after the
        `delegated` record when the chart's webhook stamped the task."""
        return (["delegated"] if self.stamped else []) + list(kinds)

    def __init__(self, cluster, namespace, watch_namespace, extra=(), kubeconfig=None):
        self.cluster, self.namespace, self.watch_namespace = cluster, namespace, watch_namespace
        self.extra, self.kubeconfig = list(extra), kubeconfig or cluster.kubeconfig
        self.workdir = tempfile.mkdtemp(prefix="tasklease-operator-")
        self.evidence = os.path.join(self.workdir, "evidence.jsonl")
        self.port = free_port()
        self.proc = None
        self.logs = []

    def args(self):
        return ["--kubeconfig", self.kubeconfig, "--namespace", self.namespace,
                "--watch-namespace", self.watch_namespace, "--metrics-port", str(self.port),
                "--evidence-file", self.evidence, "--evidence-stdout=false",
                "--trust-domain", TRUST_DOMAIN, "--sweep-interval", "2s", *self.extra]

    def start(self):
        self.proc = Binary.start("tasklease-operator", self.args(), log_dir=self.workdir,
                                 ready=lambda: http_ok(f"http://127.0.0.1:{self.port}/readyz"))
        self.logs.append(self.proc.log_path)
        return self

    def kill(self):
        self.proc.kill()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def log_text(self):
        return "".join(open(p, errors="replace").read() for p in self.logs if os.path.exists(p))

    def evidence_records(self):
        if not os.path.exists(self.evidence):
            return []
        return [json.loads(line) for line in open(self.evidence) if line.strip()]


class ChartOperator(Operator):
    """The operator of a chart installation (install.Installation), restarted for one test with
    the chart's arguments plus --watch-namespace of the test's namespace and the test's extra
    flags, so that its metrics, Events and evidence file are the test's own, as an Operator's
    are. Its own namespace, names, ServiceAccount and RBAC are the chart's, and the chart's
    webhook stamps every task with who asked for it."""

    stamped = True

    def __init__(self, installation, watch_namespace, extra=()):
        self.installation, self.cluster = installation, installation.cluster
        self.namespace, self.watch_namespace = installation.namespace, watch_namespace
        self.extra = list(extra)
        self.proc = None
        self.logs = []

    def start(self):
        inst = self.installation
        inst.restart_operator([f"--watch-namespace={self.watch_namespace}", *self.extra])
        self.proc, self.port, self.evidence = inst.operator, inst.operator_port, inst.operator_evidence
        self.logs.append(self.proc.log_path)
        return self


@pytest.fixture(scope="module", params=["processes", "chart"])
def deployment(request, shared_cluster):
    """(cluster, chart installation or None): the session's cluster, where each test starts its
    own operator process, or a cluster of its own with tasklease installed from the chart."""
    if request.param == "chart":
        # One operator replica: each test restarts it with flags of its own, and it alone must
        # lead (test_install.py elects one of two).
        with installed_from_chart([f"operator.trustDomain={TRUST_DOMAIN}",
                                   "operator.sweepInterval=2s", "operator.replicas=1"],
                                  prefix="operator-chart-e2e-") as installed:
            yield installed
        return
    install_crds(shared_cluster)
    yield shared_cluster, None


@pytest.fixture(scope="module")
def cluster(deployment):
    return deployment[0]


@pytest.fixture
def operators(cluster, ns, deployment):
    """Starts operators for the test's namespace; each gets its own operator namespace (with the
    chart: the chart's operator, restarted for the test)."""
    installation = deployment[1]
    started = []

    def start(extra=()):
        if installation is not None:
            op = ChartOperator(installation, ns, extra).start()
        else:
            op = Operator(cluster, cluster.namespace("tlop"), ns, extra).start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()
        if installation is None:
            cluster.kubectl("delete", "namespace", op.namespace, "--wait=false", check=False)
    # No request of the operator (or, with the chart, of the webhook) was refused: under the
    # chart's RBAC that proves the chart grants enough.
    logs = [op.log_text() for op in started]
    if installation is not None:
        logs.append(installation.webhook.log_text())
    assert not any("forbidden" in text.lower() for text in logs), [op.logs for op in started]


# ---- policies and tasks ----

def add_policy(cluster, ns, max_ttl="1h", types=("ServiceAccountToken", "X509SVID"), rules=None,
               agents=("refactor-*",), workload=None):
    """workload: spec.allow.workload; None allows workloads within Pod Security baseline (what the
    tests' plain templates meet), "none" allows no workload."""
    name = f"p-{ns}-{uuid.uuid4().hex[:6]}"
    allow = {"maxTTL": max_ttl, "credentialTypes": list(types),
             "rules": rules or [{"apiGroups": [""], "resources": ["configmaps"],
                                 "verbs": ["get", "update", "list"]}]}
    if workload != "none":
        allow["workload"] = workload or {"podSecurity": "baseline"}
    cluster.custom().create_cluster_custom_object(GROUP, VERSION, "agentpolicies", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentPolicy", "metadata": {"name": name},
        "spec": {"match": {"namespaces": [ns], "agents": list(agents)}, "allow": allow,
                 "requireVerifiedDelegation": False}})
    return name


def task_body(name, ttl="15m", credential="ServiceAccountToken", rules=None, workload=None,
              agent="refactor-bot"):
    spec = {"agent": agent, "purpose": "e2e: " + name,
            "context": {"tool": "git", "dataSensitivity": "internal", "environment": "staging"},
            "ttl": ttl, "scope": {"rules": RULES if rules is None else rules},
            "credential": {"type": credential}}
    if workload is not None:
        spec["workload"] = {"template": workload}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentTask",
            "metadata": {"name": name}, "spec": spec}


def retrying(fn, attempts=30):
    """Runs fn, again after 5xx/429 answers (the fault tests inject them for every client)."""
    for i in range(attempts):
        try:
            return fn()
        except ApiException as e:
            if e.status not in (429, 500, 503, 504) or i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))


def create_task(cluster, ns, body):
    api = cluster.custom()
    try:
        return retrying(lambda: api.create_namespaced_custom_object(GROUP, VERSION, ns, "agenttasks",
                                                                    body))
    except ApiException as e:
        if e.status != 409:  # created by an attempt whose answer was lost
            raise
        return get_task(cluster, ns, body["metadata"]["name"])


def get_task(cluster, ns, name):
    try:
        return retrying(lambda: cluster.custom().get_namespaced_custom_object(
            GROUP, VERSION, ns, "agenttasks", name))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def list_tasks(cluster, ns):
    return retrying(lambda: cluster.custom().list_namespaced_custom_object(
        GROUP, VERSION, ns, "agenttasks"))["items"]


def complete_task(cluster, ns, name):
    retrying(lambda: cluster.custom().patch_namespaced_custom_object(
        GROUP, VERSION, ns, "agenttasks", name, {"spec": {"completed": True}}))


def phase_of(task):
    return ((task or {}).get("status") or {}).get("phase", "")


def wait_phase(cluster, ns, name, phases, timeout=30):
    phases = (phases,) if isinstance(phases, str) else tuple(phases)
    return cluster.wait_for(lambda: (lambda t: t if phase_of(t) in phases else None)(
        get_task(cluster, ns, name)), timeout=timeout, interval=0.05,
        what=f"task {ns}/{name} to reach {phases}")


def issued_objects(cluster, ns, uid=None, kinds=CREDENTIAL_KINDS):
    """{kind: [names]} of the credential objects labelled for the task (all tasks if no uid)."""
    selector = "app.kubernetes.io/managed-by=tasklease,tasklease.io/task-uid" + (f"={uid}" if uid else "")
    out = {}
    prefixes = {"roles": "/apis/rbac.authorization.k8s.io/v1",
                "rolebindings": "/apis/rbac.authorization.k8s.io/v1", "jobs": "/apis/batch/v1"}
    for kind in kinds:
        path = f"{prefixes.get(kind, '/api/v1')}/namespaces/{ns}/{kind}?labelSelector={selector}"
        status, _, body = cluster.request("GET", path)
        assert status == 200, body
        names = [i["metadata"]["name"] for i in body["items"]]
        if names:
            out[kind] = names
    return out


def secret_data(cluster, ns, name):
    secret = retrying(lambda: cluster.core().read_namespaced_secret(name, ns))
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}, secret


# ---- reviews ----

def access_review(cluster, user, groups, ns, verb, resource, name="", group=""):
    attrs = {"namespace": ns, "verb": verb, "resource": resource, "group": group}
    if name:
        attrs["name"] = name
    status, _, out = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                     {"apiVersion": "authorization.k8s.io/v1",
                                      "kind": "SubjectAccessReview",
                                      "spec": {"user": user, "groups": groups,
                                               "resourceAttributes": attrs}})
    assert status == 201, out
    return out["status"].get("allowed", False)


# ---- X.509 ----

def load_certs(pem_bytes):
    text = pem_bytes.decode() if isinstance(pem_bytes, bytes) else pem_bytes
    end = "-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate((b + end + "\n").encode())
            for b in text.split(end) if b.strip()]


def signed_by(cert, ca):
    try:
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                               ec.ECDSA(cert.signature_hash_algorithm))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not signed by this CA"
        return False


def published_crls(cluster, operator_ns):
    cm = retrying(lambda: cluster.core().read_namespaced_config_map("tasklease-crl", operator_ns))
    text = cm.data["crl.pem"]
    blocks = [b + "-----END X509 CRL-----\n" for b in text.split("-----END X509 CRL-----") if b.strip()]
    return [x509.load_pem_x509_crl(b.encode()) for b in blocks], cm.data


def on_crl(cluster, operator_ns, cert, cas):
    crls, _ = published_crls(cluster, operator_ns)
    for crl in crls:
        for ca in cas:
            if crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key()):
                if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                    return True
    return False


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- evidence ----

def verify_chain(records):
    """Checks seq, prev and hash of every record (docs/evidence.md); returns them."""
    prev = records[0]["prev"] if records else "0" * 64
    for i, rec in enumerate(records):
        body = dict(rec)
        digest = body.pop("hash")
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert rec["prev"] == prev, f"record {rec['seq']} does not chain to its predecessor"
        assert hashlib.sha256((prev + canon).encode()).hexdigest() == digest, f"record {rec['seq']} altered"
        if i:
            assert rec["seq"] == records[i - 1]["seq"] + 1, f"seq jumps at {rec['seq']}"
        prev = digest
    return records


def kinds_for(records, uid):
    return [r["kind"] for r in records if r["task"]["uid"] == uid]


def dedupe(kinds):
    """Kinds in order with repeats removed (a crash may repeat a record, never lose one)."""
    out = []
    for k in kinds:
        if k not in out:
            out.append(k)
    return out


def metric_value(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + ("{" + want if want else "")):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- the acceptance tests ----

def test_a_service_account_token_works_exactly_as_granted_until_the_task_completes(
        cluster, ns, operators):
    op = operators()
    add_policy(cluster, ns)
    core = cluster.core()
    for cm in ("billing-config", "other-config"):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=cm), data={"k": "v"}))
    create_task(cluster, ns, task_body("refactor"))
    task = wait_phase(cluster, ns, "refactor", "Active")
    st = task["status"]
    cred = st["credential"]
    uid = task["metadata"]["uid"]
    assert st["policy"]["decision"] == "Allowed"
    assert st["observedGeneration"] == task["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Authorized": "True", "CredentialIssued": "True", "CredentialRevoked": "False",
        "Ready": "True"}
    assert issued_objects(cluster, ns, uid) == {k: [cred["serviceAccountName"]] for k in CREDENTIAL_KINDS}

    data, secret = secret_data(cluster, ns, cred["secretName"])
    token = data["token"].decode()
    assert cred["fingerprint"] == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert cred["tokenID"] == claims["jti"]
    assert claims["kubernetes.io"]["secret"]["uid"] == secret.metadata.uid
    assert secret.metadata.owner_references[0].uid == uid
    # The token never outlives the task: it expires by the deadline (or is bound to the Secret).
    assert claims["exp"] <= datetime.datetime.fromisoformat(st["expiresAt"].replace("Z", "+00:00")).timestamp() + 1

    review = token_review(cluster, token)
    user = f"system:serviceaccount:{ns}:{cred['serviceAccountName']}"
    assert review["authenticated"] is True and review["user"]["username"] == user
    groups = review["user"]["groups"]
    assert access_review(cluster, user, groups, ns, "get", "configmaps", "billing-config")
    assert access_review(cluster, user, groups, ns, "update", "configmaps", "billing-config")
    assert not access_review(cluster, user, groups, ns, "delete", "configmaps", "billing-config")
    assert not access_review(cluster, user, groups, ns, "get", "configmaps", "other-config")
    assert not access_review(cluster, user, groups, ns, "list", "configmaps")
    assert not access_review(cluster, user, groups, ns, "get", "secrets", cred["secretName"])
    # And the token itself, used as a client, gets exactly that.
    status, _, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/billing-config", token=token)
    assert status == 200
    status, _, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/other-config", token=token)
    assert status == 403

    complete_task(cluster, ns, "refactor")
    task = wait_phase(cluster, ns, "refactor", "Succeeded")
    assert task["status"]["credential"]["revokedAt"]
    assert {c["type"]: c["status"] for c in task["status"]["conditions"]}["CredentialRevoked"] == "True"
    assert issued_objects(cluster, ns, uid) == {}
    token_refused(cluster, token)
    request_refused(cluster, f"/api/v1/namespaces/{ns}/configmaps/billing-config", token)

    records = verify_chain(op.evidence_records())
    assert kinds_for(records, uid) == op.lifecycle("authorized", "issued", "completed", "revoked")
    if op.stamped:
        delegated = next(r for r in records if r["kind"] == "delegated" and r["task"]["uid"] == uid)
        assert delegated["details"]["verified"] is True, delegated
    issued = next(r for r in records if r["kind"] == "issued" and r["task"]["uid"] == uid)
    assert issued["details"]["fingerprint"] == cred["fingerprint"]
    assert token not in open(op.evidence).read() and token not in op.log_text()
    reasons = {e.reason for e in core.list_namespaced_event(ns).items
               if e.involved_object.name == "refactor"}
    assert {"Authorized", "CredentialIssued", "Completed", "CredentialRevoked"} <= reasons
    text = op.metrics()
    assert metric_value(text, "tasklease_operator_tasks", phase="Succeeded") == 1
    assert metric_value(text, "tasklease_operator_issuance_seconds_count", type="ServiceAccountToken") == 1
    assert metric_value(text, "tasklease_operator_revocation_seconds_count",
                        type="ServiceAccountToken", trigger="completed") == 1


def test_an_x509_svid_verifies_against_the_ca_and_its_serial_goes_on_the_crl(cluster, ns, operators):
    op = operators()
    add_policy(cluster, ns)
    create_task(cluster, ns, task_body("signer", ttl="5m", credential="X509SVID"))
    task = wait_phase(cluster, ns, "signer", "Active")
    cred, uid = task["status"]["credential"], task["metadata"]["uid"]
    data, secret = secret_data(cluster, ns, cred["secretName"])
    assert secret.type == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    bundle = load_certs(data["ca.crt"])
    ca_secret, _ = secret_data(cluster, op.namespace, "tasklease-ca")
    operator_ca = x509.load_pem_x509_certificate(ca_secret["tls.crt"])
    assert bundle[0] == operator_ca
    assert signed_by(cert, operator_ca) and cert.issuer == operator_ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://{TRUST_DOMAIN}/ns/{ns}/task/signer/uid/{uid}"]
    assert cred["spiffeID"] == f"spiffe://{TRUST_DOMAIN}/ns/{ns}/task/signer/uid/{uid}"
    assert rfc3339(cert.not_valid_after) == task["status"]["expiresAt"]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert format(cert.serial_number, "x") == cred["serial"]
    assert not on_crl(cluster, op.namespace, cert, bundle)

    complete_task(cluster, ns, "signer")
    task = wait_phase(cluster, ns, "signer", "Succeeded")
    assert task["status"]["credential"]["revokedAt"]
    assert issued_objects(cluster, ns, uid) == {}
    assert on_crl(cluster, op.namespace, cert, bundle)
    _, crl_data = published_crls(cluster, op.namespace)
    assert load_certs(crl_data["ca.crt"].encode())[0] == operator_ca
    assert dedupe(kinds_for(verify_chain(op.evidence_records()), uid)) == op.lifecycle(
        "authorized", "issued", "completed", "revoked")
    assert data["tls.key"].decode() not in op.log_text()


def test_tasks_expire_at_their_deadline_with_nobody_touching_them(cluster, ns, operators):
    # The operator's clock runs 9m50s ahead (--clock-skew, test only), so 10-minute tasks
    # reach their deadline about ten seconds after they are created, in real time.
    op = operators(extra=["--clock-skew", "9m50s"])
    add_policy(cluster, ns)
    create_task(cluster, ns, task_body("sat", ttl="10m"))
    create_task(cluster, ns, task_body("svid", ttl="10m", credential="X509SVID"))
    active = {n: wait_phase(cluster, ns, n, "Active") for n in ("sat", "svid")}
    cert = x509.load_pem_x509_certificate(
        secret_data(cluster, ns, active["svid"]["status"]["credential"]["secretName"])[0]["tls.crt"])
    token = secret_data(cluster, ns, active["sat"]["status"]["credential"]["secretName"])[0]["token"].decode()
    assert token_review(cluster, token)["authenticated"] is True
    for name in ("sat", "svid"):
        task = wait_phase(cluster, ns, name, "Expired", timeout=40)
        assert task["status"]["credential"]["revokedAt"]
        assert {c["type"]: c["reason"] for c in task["status"]["conditions"]}["Ready"] == "Expired"
        assert issued_objects(cluster, ns, task["metadata"]["uid"]) == {}
    token_refused(cluster, token)
    ca = x509.load_pem_x509_certificate(secret_data(cluster, op.namespace, "tasklease-ca")[0]["tls.crt"])
    assert on_crl(cluster, op.namespace, cert, [ca])
    records = verify_chain(op.evidence_records())
    assert dedupe(kinds_for(records, active["sat"]["metadata"]["uid"])) == op.lifecycle(
        "authorized", "issued", "expired", "revoked")


def test_denied_tasks_never_get_any_object(cluster, ns, operators):
    op = operators()
    add_policy(cluster, ns, max_ttl="20m", types=("ServiceAccountToken",))
    cases = {
        "too-long": (task_body("too-long", ttl="30m"), "ttl 30m0s exceeds maxTTL 20m0s"),
        "wrong-agent": (task_body("wrong-agent", agent="deploy-bot"), "agent \"deploy-bot\" is not in"),
        "too-much": (task_body("too-much", rules=[{"apiGroups": [""], "resources": ["secrets"],
                                                   "verbs": ["get"]}]),
                     "verb \"get\" on secrets (every name) is not within the policy's rules"),
        "wrong-type": (task_body("wrong-type", credential="X509SVID"),
                       "credential type X509SVID is not allowed"),
    }
    for body, _ in cases.values():
        create_task(cluster, ns, body)
    for name, (_, reason) in cases.items():
        task = wait_phase(cluster, ns, name, "Denied")
        assert task["status"]["policy"]["decision"] == "Denied"
        assert reason in task["status"]["policy"]["reason"], task["status"]["policy"]["reason"]
        assert {c["type"]: c["status"] for c in task["status"]["conditions"]}["Authorized"] == "False"
        assert "credential" not in task["status"]
    time.sleep(2.5)  # a sweep pass later, still nothing
    assert issued_objects(cluster, ns, kinds=CREDENTIAL_KINDS + ("jobs",)) == {}
    records = verify_chain(op.evidence_records())
    assert sorted(r["kind"] for r in records) == sorted(op.lifecycle("denied") * len(cases))


# What a user who may only create AgentTasks asked the operator to run (issue 14): a privileged
# pod in the node's namespaces with the node's root filesystem mounted.
HOST_TAKEOVER = {"spec": {
    "hostPID": True, "hostNetwork": True, "hostIPC": True,
    "containers": [{"name": "x", "image": "busybox", "command": ["sleep", "3600"],
                    "securityContext": {"privileged": True},
                    "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
    "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}


def test_a_privileged_host_workload_is_denied_naming_each_field_and_nothing_runs(cluster, ns, operators):
    op = operators()
    add_policy(cluster, ns)
    create_task(cluster, ns, task_body("takeover", workload=HOST_TAKEOVER))
    task = wait_phase(cluster, ns, "takeover", "Denied")
    reason = task["status"]["policy"]["reason"]
    for field in ("spec.workload.template.spec.hostPID: true", "spec.workload.template.spec.hostNetwork: true",
                  "spec.workload.template.spec.hostIPC: true",
                  "spec.workload.template.spec.containers[0].securityContext.privileged: true",
                  "spec.workload.template.spec.volumes[0].hostPath: a hostPath volume"):
        assert field in reason, reason
    assert "(Pod Security baseline)" in reason, reason
    assert issued_objects(cluster, ns, kinds=CREDENTIAL_KINDS + ("jobs",)) == {}
    assert cluster.core().list_namespaced_pod(ns).items == []
    [denied] = [r for r in verify_chain(op.evidence_records()) if r["kind"] == "denied"]
    assert denied["details"]["reason"] == reason


def test_a_policy_without_allow_workload_allows_no_workload(cluster, ns, operators):
    operators()
    add_policy(cluster, ns, workload="none")
    plain = {"spec": {"containers": [{"name": "agent", "image": "registry.example/agent:1"}]}}
    create_task(cluster, ns, task_body("with-job", workload=plain))
    create_task(cluster, ns, task_body("without-job"))
    task = wait_phase(cluster, ns, "with-job", "Denied")
    assert "spec.workload: the policy allows no workload" in task["status"]["policy"]["reason"]
    wait_phase(cluster, ns, "without-job", "Active")


def test_a_finalizer_on_the_rolebinding_holds_only_itself_and_the_task_leaves_active(cluster, ns, operators):
    """Issue 14: a finalizer on a task's RoleBinding held the whole revocation, with the task
    Active meanwhile. Now the task is Revoking at once, everything else is revoked, the held
    object is named, and the revocation finishes when the finalizer goes."""
    op = operators()
    add_policy(cluster, ns)
    create_task(cluster, ns, task_body("held"))
    task = wait_phase(cluster, ns, "held", "Active")
    uid, name = task["metadata"]["uid"], task["status"]["credential"]["serviceAccountName"]
    rbac = cluster.rbac()
    retrying(lambda: rbac.patch_namespaced_role_binding(
        name, ns, {"metadata": {"finalizers": ["example.com/hold"]}}))
    complete_task(cluster, ns, "held")
    task = wait_phase(cluster, ns, "held", "Revoking")
    task = cluster.wait_for(lambda: (lambda t: t if (t["status"].get("revocation") or {}).get("held")
                                     else None)(get_task(cluster, ns, "held")),
                            timeout=30, what="the held RoleBinding in status.revocation.held")
    assert task["status"]["revocation"]["held"] == [
        {"kind": "RoleBinding", "name": name, "finalizers": ["example.com/hold"]}]
    assert task["status"]["revocation"]["outcome"] == "Succeeded"
    conditions = {c["type"]: c for c in task["status"]["conditions"]}
    assert conditions["CredentialRevoked"]["reason"] == "RevocationBlocked"
    assert f"RoleBinding {ns}/{name}" in conditions["CredentialRevoked"]["message"]
    # Everything but the held RoleBinding is gone already.
    assert issued_objects(cluster, ns, uid) == {"rolebindings": [name]}
    cluster.wait_for(lambda: metric_value(op.metrics(), "tasklease_operator_revocations_blocked",
                                          kind="RoleBinding") == 1,
                     timeout=30, what="the blocked-revocation gauge")
    reasons = {e.reason for e in cluster.core().list_namespaced_event(ns).items
               if e.involved_object.name == "held"}
    assert "RevocationBlocked" in reasons
    retrying(lambda: rbac.patch_namespaced_role_binding(name, ns, {"metadata": {"finalizers": None}}))
    task = wait_phase(cluster, ns, "held", "Succeeded", timeout=60)
    assert task["status"]["credential"]["revokedAt"] and task["status"]["revocation"]["held"] == []
    assert issued_objects(cluster, ns, uid) == {}
    [revoked] = [r for r in verify_chain(op.evidence_records()) if r["kind"] == "revoked"]
    # The RoleBinding went when its finalizer did (the API server's doing, after our deletion).
    assert {f"{kind}/{name}" for kind in ("Secret", "ServiceAccount", "Role")} <= set(
        revoked["details"]["deleted"]), revoked


def test_deleting_an_active_task_revokes_before_the_task_disappears(cluster, ns, operators):
    operators()
    add_policy(cluster, ns)
    create_task(cluster, ns, task_body("doomed"))
    task = wait_phase(cluster, ns, "doomed", "Active")
    uid = task["metadata"]["uid"]
    assert "tasklease.io/revoke" in task["metadata"]["finalizers"]
    seen = []
    objects_when_deleted = {}

    def follow():
        w = watch.Watch()
        for ev in w.stream(cluster.custom().list_namespaced_custom_object, GROUP, VERSION, ns,
                           "agenttasks", resource_version=task["metadata"]["resourceVersion"],
                           timeout_seconds=30):
            obj = ev["object"]
            if obj["metadata"]["name"] != "doomed":
                continue
            seen.append((ev["type"], obj))
            if ev["type"] == "DELETED":
                objects_when_deleted.update(issued_objects(cluster, ns, uid))
                w.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.3)
    cluster.custom().delete_namespaced_custom_object(GROUP, VERSION, ns, "agenttasks", "doomed")
    follower.join(35)
    assert seen and seen[-1][0] == "DELETED", [t for t, _ in seen]
    assert objects_when_deleted == {}
    revoked = [o for t, o in seen if t == "MODIFIED"
               and (o.get("status") or {}).get("credential", {}).get("revokedAt")]
    assert revoked, "no update recorded the revocation before the task disappeared"
    assert revoked[0]["metadata"].get("deletionTimestamp")
    assert "tasklease.io/revoke" in revoked[0]["metadata"]["finalizers"]


def test_the_workload_job_runs_under_the_task_identity_and_its_end_ends_the_task(cluster, ns, operators):
    operators()
    add_policy(cluster, ns)

    def template(exit_code):
        return {"metadata": {"annotations": {"kubesim.tasklease.io/run-seconds": "1",
                                             "kubesim.tasklease.io/exit-code": str(exit_code)}},
                "spec": {"containers": [{"name": "agent", "image": "registry.example/agent:1"}]}}

    create_task(cluster, ns, task_body("works", workload=template(0)))
    create_task(cluster, ns, task_body("breaks", workload=template(1)))
    for name, phase, reason in (("works", "Succeeded", "WorkloadSucceeded"),
                                ("breaks", "Failed", "WorkloadFailed")):
        task = wait_phase(cluster, ns, name, phase, timeout=40)
        assert {c["type"]: c["reason"] for c in task["status"]["conditions"]}["Ready"] == reason
        assert issued_objects(cluster, ns, task["metadata"]["uid"]) == {}
        job = cluster.kubectl_json("get", "job", task["status"]["workload"]["jobName"], "-n", ns)
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == task["status"]["credential"]["serviceAccountName"]
        assert pod["automountServiceAccountToken"] is False
        assert job["spec"]["template"]["metadata"]["labels"]["tasklease.io/task"] == name
        assert pod["volumes"] == [{"name": "tasklease-credential", "secret": {
            "secretName": task["status"]["credential"]["secretName"], "defaultMode": 420}}]


def test_the_operator_works_with_only_its_documented_permissions(cluster, ns, deployment):
    # The documented permissions are the chart's RBAC (docs/operator.md). With the chart every
    # test above already runs under it; here a plain operator process gets it too.
    if deployment[1] is not None:
        pytest.skip("with the chart, every test of this module runs under exactly these permissions")
    own = cluster.namespace("tlop")
    kubeconfig, rbac = apply_operator_rbac(cluster, tempfile.mkdtemp(prefix="operator-rbac-"), own)
    op = Operator(cluster, own, ns, ["--leader-elect"], kubeconfig).start()
    try:
        add_policy(cluster, ns)
        create_task(cluster, ns, task_body("sat"))
        create_task(cluster, ns, task_body("svid", ttl="5m", credential="X509SVID"))
        for name in ("sat", "svid"):
            wait_phase(cluster, ns, name, "Active")
            complete_task(cluster, ns, name)
            task = wait_phase(cluster, ns, name, "Succeeded")
            assert issued_objects(cluster, ns, task["metadata"]["uid"]) == {}
        assert "Forbidden" not in op.log_text() and "forbidden" not in op.log_text()
        assert metric_value(op.metrics(), "tasklease_operator_leader") == 1
    finally:
        op.stop()
        cluster.kubectl("delete", "namespace", own, "--wait=false", check=False)
        for o in rbac:
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                cluster.kubectl("delete", o["kind"].lower(), o["metadata"]["name"], check=False)


def test_bad_flags_are_refused_with_a_clear_message():
    import subprocess
    from binaries import binary_path
    run = lambda *a: subprocess.run([binary_path("tasklease-operator"), *a], capture_output=True,
                                    text=True, timeout=10)
    res = run("--help")
    assert res.returncode == 0
    for flag in ("--namespace", "--kubeconfig", "--leader-elect", "--evidence-file", "--metrics-port",
                 "--trust-domain", "--workers", "--sweep-interval", "--clock-skew"):
        assert flag in res.stdout, flag
    res = run("--metrics-port", "1")
    assert res.returncode == 2 and "--namespace is required" in res.stderr
    res = run("--namespace", "x", "--workers", "0")
    assert res.returncode == 2 and "--workers 0: must be between 1 and 64" in res.stderr
    res = run("--namespace", "x", "--sweep-interval", "soon")
    assert res.returncode == 2 and "--sweep-interval" in res.stderr
    res = run("--namespace", "x", "--trust-domain", "Bad Domain")
    assert res.returncode == 2 and "--trust-domain" in res.stderr
    res = run("--namespace", "x", "--no-such-flag")
    assert res.returncode == 2 and "no-such-flag" in res.stderr
