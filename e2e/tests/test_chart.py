"""The Helm chart (helm/tasklease) with the real helm binary: lint and template pass with the
default values and with each documented option, every rendered object is accepted by the API
server, a misspelt value fails schema validation naming it, the chart's CRDs are the
repository's crds/, and the rendered objects keep the promises of docs/install.md (restricted
pods, the webhook excluded from its own namespace and kube-system, least-privilege RBAC)."""

import base64
import filecmp
import json
import os
import subprocess

import pytest
import yaml

from harness import ROOT, TOOLS, Cluster

CHART = os.path.join(ROOT, "helm", "tasklease")
NS = "tasklease-system"

# Valid Kubernetes objects for the values that take them (core/v1 Affinity, TopologySpreadConstraint,
# Toleration; networking.k8s.io/v1 NetworkPolicyPeer), every field of their schemas used at least once.
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                                  {"key": "node.example.com/cores", "operator": "Gt", "values": ["3"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-0"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [
                {"key": "node-role.kubernetes.io/infra", "operator": "Exists"}]}}]},
    "podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {
                "topologyKey": "topology.kubernetes.io/zone",
                "labelSelector": {"matchLabels": {"app": "api-server-proxy"}},
                "namespaceSelector": {}, "matchLabelKeys": ["pod-template-hash"]}}]},
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "namespaces": ["batch"],
             "labelSelector": {"matchExpressions": [
                 {"key": "workload", "operator": "DoesNotExist"}]},
             "mismatchLabelKeys": ["tenant"]}]},
}
TOLERATIONS = [{"key": "dedicated", "operator": "Equal", "value": "control", "effect": "NoSchedule"},
               {"key": "pool", "operator": "", "value": "system"},  # empty: Equal
               {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 60}]
SPREAD = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
           "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2,
           "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "webhook"},
                             "matchExpressions": [{"key": "app.kubernetes.io/instance",
                                                   "operator": "In", "values": ["r-scheduling"]}]},
           "matchLabelKeys": ["pod-template-hash"], "nodeAffinityPolicy": "Honor",
           "nodeTaintsPolicy": "Ignore"}]
PEERS = [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
         {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
          "podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["x"]}]}}]


def set_json(key, value):
    return ["--set-json", f"{key}={json.dumps(value)}"]


# Each documented option of docs/install.md, as `helm --set` arguments.
OPTIONS = {
    "default": [],
    "cert-manager": ["--set", "certManager.enabled=true"],
    "cert-manager-issuer": ["--set", "certManager.enabled=true",
                            "--set", "certManager.issuerRef.name=corp-ca",
                            "--set", "certManager.issuerRef.kind=ClusterIssuer"],
    "network-policy": ["--set", "networkPolicy.enabled=true",
                       "--set", "networkPolicy.apiServerCidrs={10.0.0.1/32}",
                       "--set-json", 'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":'
                                     '{"kubernetes.io/metadata.name":"monitoring"}}}]'],
    "service-monitor": ["--set", "serviceMonitor.enabled=true",
                        "--set", "serviceMonitor.labels.release=prometheus"],
    "prometheus-rule": ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
                        "--set", "prometheusRule.labels.release=prometheus",
                        "--set", "prometheusRule.revocationBlockedFor=30m",
                        "--set", "prometheusRule.severity=warning"],
    "failure-policy-ignore": ["--set", "webhook.failurePolicy=Ignore"],
    "watch-namespace": ["--set", "operator.watchNamespace=team-a"],
    "exempt-and-timeouts": ["--set", "webhook.exemptNamespaces={monitoring,gatekeeper-system}",
                            "--set", "webhook.timeoutSeconds=3",
                            "--set", "webhook.agentTaskTimeoutSeconds=15"],
    "image-digest": ["--set", "image.digest=sha256:" + "ab" * 32,
                     "--set", "imagePullSecrets[0].name=regcred"],
    "platform-uids": ["--set", "securityContext.runAsUser=null",
                      "--set", "securityContext.runAsGroup=null"],
    "single-replica-no-pdb": ["--set", "webhook.replicas=1", "--set", "operator.replicas=1",
                              "--set", "webhook.podDisruptionBudget.enabled=false"],
    "name-override-and-labels": ["--set", "nameOverride=agentlease",
                                 "--set", "commonLabels.team=platform",
                                 "--set", "commonLabels.cost-center=c42"],
    "fullname-override": ["--set", "fullnameOverride=agents"],
    "image-repository-and-tag": ["--set", "image.repository=registry.example.com/infra/tasklease",
                                 "--set", "image.tag=0.1.0-rc.1", "--set", "image.pullPolicy=Always"],
    "scheduling": [*set_json("webhook.topologySpreadConstraints", SPREAD),
                   *[arg for c in ("webhook", "operator") for arg in (
                       "--set", f"{c}.nodeSelector.kubernetes\\.io/arch=amd64",
                       *set_json(f"{c}.tolerations", TOLERATIONS),
                       *set_json(f"{c}.affinity", AFFINITY),
                       "--set", f"{c}.priorityClassName=tasklease-critical")]],
    "pod-metadata-and-extra-args": [
        *[arg for c in ("webhook", "operator") for arg in (
            "--set-string", f"{c}.podAnnotations.example\\.com/scrape=true",
            "--set", f"{c}.podLabels.team=platform",
            "--set", f"{c}.serviceAccount.annotations.iam\\.example\\.com/role=tasklease")],
        "--set", "webhook.extraArgs={--cache-miss-wait=2s,--access-review-deadline=4s}",
        "--set", "operator.extraArgs={--crl-validity=48h}"],
    "network-policy-peers": ["--set", "networkPolicy.enabled=true",
                             *set_json("networkPolicy.webhookFrom", PEERS[:1]),
                             *set_json("networkPolicy.metricsFrom", PEERS)],
    "resources": [*set_json("webhook.resources", {
                      "requests": {"cpu": 0.1, "memory": "64Mi", "ephemeral-storage": "1Gi"},
                      "limits": {"cpu": "+1", "memory": "256Mi", "hugepages-2Mi": "64Mi",
                                 "hugepages-1G": "1G", "example.com/accelerator": 1}}),
                  *set_json("operator.resources", {"requests": {"cpu": "50m"}})],
    "durations": ["--set", "webhook.selfManagedCerts.caValidity=720h",
                  "--set", "webhook.selfManagedCerts.certValidity=10m",
                  "--set", "webhook.selfManagedCerts.caOverlap=239h59m59s",
                  "--set", "operator.caValidity=49h", "--set", "operator.caRotateBefore=48h",
                  "--set", "operator.sweepInterval=1000ms"],
}


def helm(*args, check=True):
    proc = subprocess.run([os.path.join(TOOLS, "helm"), *args], capture_output=True, text=True,
                          timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def render(*values, release="tasklease", crds=False):
    out = helm("template", release, CHART, "--namespace", NS, *(["--include-crds"] if crds else []),
               *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered"
    return found


def pod_specs(objects):
    return [d["spec"]["template"]["spec"] for d in find(objects, "Deployment")]


@pytest.fixture(scope="module")
def default_objects():
    return render()


# ---- helm lint / template / schema ----

@pytest.mark.parametrize("option", OPTIONS)
def test_lint_and_template_pass(option):
    helm("lint", "--strict", CHART, "--namespace", NS, *OPTIONS[option])
    assert render(*OPTIONS[option])


@pytest.mark.parametrize("values,named", [
    (["--set", "webhok.replicas=3"], "webhok"),
    (["--set", "webhook.replica=3"], "replica"),
    (["--set", "certManager.enable=true"], "enable"),
    (["--set", "webhook.podDisruptionBudget.minAvailible=1"], "minAvailible"),
    # Inside the Kubernetes objects the chart passes through.
    (set_json("webhook.affinity", {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpresions": [{"key": "a", "operator": "Exists"}]}]}}}),
     "matchExpresions"),
    (set_json("operator.affinity", {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {
            "matchLabel": {"app": "x"}}}}]}}), "matchLabel"),
    (set_json("webhook.topologySpreadConstraints", [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "value": ["b"]}]}}]),
     "value"),
    (["--set", "networkPolicy.enabled=true",
      *set_json("networkPolicy.webhookFrom", [{"namespaceSelecter": {"matchLabels": {"a": "b"}}}])],
     "namespaceSelecter"),
    (set_json("networkPolicy.metricsFrom", [{"ipBlock": {"cidr": "10.0.0.0/8", "excepts": ["10.1.0.0/16"]}}]),
     "excepts"),
    (["--set", "webhook.resources.limits.memroy=1Gi"], "memroy"),
])
def test_misspelt_value_fails_schema_validation_naming_it(values, named):
    for cmd in (["template", "tasklease", CHART], ["lint", CHART]):
        res = helm(*cmd, *values, check=False)
        assert res.returncode != 0, res.stdout
        text = res.stdout + res.stderr
        assert "schema" in text and f"'{named}' not allowed" in text, text


@pytest.mark.parametrize("values,says", [
    # What the API server would refuse in the objects passed through.
    (set_json("webhook.affinity", {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 101, "preference": {}}]}}), "weight"),
    (set_json("webhook.affinity", {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}}]}}), "missing property 'topologyKey'"),
    (set_json("operator.affinity", {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Equals"}]}]}}}), "operator"),
    (set_json("networkPolicy.webhookFrom", [{"ipBlock": {"except": ["10.1.0.0/16"]}}]),
     "missing property 'cidr'"),
    (set_json("networkPolicy.webhookFrom", [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]),
     "maxProperties"),
    (set_json("networkPolicy.metricsFrom", [{"podSelector": {"matchExpressions": [
        {"key": "app", "operator": "In"}]}}]), "missing property 'values'"),
])
def test_schema_refuses_invalid_kubernetes_objects(values, says):
    res = helm("template", "tasklease", CHART, *values, check=False)
    assert res.returncode != 0 and "schema" in res.stderr and says in res.stderr, res.stderr


def test_issuer_ref_needs_a_name_and_a_cert_manager_kind():
    base = ["--set", "certManager.enabled=true"]
    for ref in (["--set", "certManager.issuerRef.kind=ClusterIssuer"],
                ["--set", "certManager.issuerRef.group=cert-manager.io"]):
        res = helm("template", "tasklease", CHART, *base, *ref, check=False)
        assert res.returncode != 0 and "/certManager/issuerRef" in res.stderr, res.stderr
        assert "missing property 'name'" in res.stderr, res.stderr
    # cert-manager.io (the default group) has Issuer and ClusterIssuer; an external issuer its own.
    res = helm("template", "tasklease", CHART, *base, "--set", "certManager.issuerRef.name=ca",
               "--set", "certManager.issuerRef.kind=CAIssuer", check=False)
    assert res.returncode != 0 and "'Issuer', 'ClusterIssuer'" in res.stderr, res.stderr
    external = render(*base, "--set", "certManager.issuerRef.name=pca",
                      "--set", "certManager.issuerRef.kind=AWSPCAClusterIssuer",
                      "--set", "certManager.issuerRef.group=awspca.cert-manager.io")
    assert [c["spec"]["issuerRef"] for c in find(external, "Certificate")] == [
        {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}]


SELF_CERTS = "webhook.selfManagedCerts."


@pytest.mark.parametrize("values,named", [
    # The next CA enters the caBundle at 2/3 of the signing CA's life: the overlap must end first.
    ({"caValidity": "8760h", "caOverlap": "2920h"}, ["caOverlap (2920h)", "caValidity (8760h)"]),
    ({"caValidity": "3h", "certValidity": "1h", "caOverlap": "1h"},
     ["caOverlap (1h)", "caValidity (3h)"]),
    ({"caValidity": "4h30m", "certValidity": "600000ms", "caOverlap": "1.5h"},
     ["caOverlap (1.5h)", "caValidity (4h30m)"]),
    ({"caOverlap": "0.5s"}, ["caOverlap (0.5s)"]),  # the webhook counts whole seconds: 0
    ({"caValidity": "2160h"}, ["caValidity (2160h)", "certValidity (2160h)"]),
    ({"certValidity": "9m59s"}, ["certValidity (9m59s)"]),
])
def test_webhook_certificate_durations_the_webhook_refuses_fail_rendering(values, named):
    args = [a for k, v in values.items() for a in ("--set", f"{SELF_CERTS}{k}={v}")]
    res = helm("template", "tasklease", CHART, *args, check=False)
    assert res.returncode != 0, res.stdout
    for name in named:
        assert SELF_CERTS + name in res.stderr, res.stderr
    # With cert-manager the webhook is not given them: nothing to refuse.
    assert render(*args, "--set", "certManager.enabled=true")


def test_webhook_certificate_durations_just_inside_the_rules_render():
    for values in ({"caOverlap": "2919h59m59s"},
                   {"caValidity": "3h", "certValidity": "10m", "caOverlap": "59m59s"},
                   {"caValidity": "4h30m1s", "certValidity": "600000ms", "caOverlap": "1.5h"}):
        sets = [a for k, v in values.items() for a in ("--set", f"{SELF_CERTS}{k}={v}")]
        args = find(render(*sets), "Deployment", "tasklease-webhook")[0][
            "spec"]["template"]["spec"]["containers"][0]["args"]
        for key, flag in (("caValidity", "ca-validity"), ("certValidity", "cert-validity"),
                          ("caOverlap", "ca-overlap")):
            if key in values:
                assert f"--{flag}={values[key]}" in args


@pytest.mark.parametrize("values,named", [
    (["--set", "operator.caRotateBefore=24h"], ["operator.caRotateBefore (24h)"]),
    (["--set", "operator.caValidity=720h"], ["operator.caValidity (720h)", "operator.caRotateBefore (720h)"]),
    (["--set", "operator.sweepInterval=999ms"], ["operator.sweepInterval (999ms)"]),
])
def test_operator_durations_the_operator_refuses_fail_rendering(values, named):
    res = helm("template", "tasklease", CHART, *values, check=False)
    assert res.returncode != 0, res.stdout
    for name in named:
        assert name in res.stderr, res.stderr


def test_out_of_range_value_fails_schema_validation():
    res = helm("template", "tasklease", CHART, "--set", "webhook.failurePolicy=Sometimes", check=False)
    assert res.returncode != 0 and "failurePolicy" in res.stderr, res.stderr


def deref(schema, node):
    """The subschema a local `$ref` ("#/definitions/x") points to, or the node itself."""
    while "$ref" in node:
        assert node["$ref"].startswith("#/"), node
        target = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


# Objects of the schema that take any key: only Helm's `global`, which a parent chart fills.
PASS_THROUGH = {"/properties/global"}
# Subschemas that only constrain the object around them: they cannot add keys to a closed one.
CONDITIONS = {"if", "then", "else", "not"}


def test_schema_refuses_unknown_keys_at_every_level():
    """Every object the schema describes, at any depth (properties, items, definitions), is
    closed: additionalProperties false, or a map whose values have a schema of their own."""
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    open_levels, objects = [], []

    def walk(node, path, condition=False):
        if isinstance(node, dict):
            types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
            if "object" in types or ("properties" in node and not condition):
                objects.append(path)
                extra = node.get("additionalProperties", True)
                if (extra is True or extra == {}) and path not in PASS_THROUGH:
                    open_levels.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}", condition or key in CONDITIONS)
        elif isinstance(node, list):
            for n, child in enumerate(node):
                walk(child, f"{path}[{n}]", condition)

    walk(schema, "")
    assert open_levels == []
    assert len(objects) > 40 and PASS_THROUGH <= set(objects)  # the walk sees the definitions too
    assert "/definitions/podAffinityTerm" in objects
    # ...and every key of values.yaml is described by the schema.
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))

    def undeclared(vals, node, path):
        missing = []
        for key, val in vals.items():
            child = node.get("properties", {}).get(key)
            if child is None:
                missing.append(path + key)
            elif isinstance(val, dict):
                child = deref(schema, child)
                if "properties" in child:
                    missing += undeclared(val, child, path + key + ".")
        return missing

    assert undeclared(values, schema, "") == []


def test_chart_crds_are_the_repository_crds():
    repo, chart = os.path.join(ROOT, "crds"), os.path.join(CHART, "crds")
    names = sorted(os.listdir(repo))
    assert sorted(os.listdir(chart)) == names
    match, mismatch, errors = filecmp.cmpfiles(repo, chart, names, shallow=False)
    assert mismatch == [] and errors == [] and match == names
    rendered = {o["metadata"]["name"] for o in find(render(crds=True), "CustomResourceDefinition")}
    assert rendered == {"agenttasks.tasklease.io", "agentpolicies.tasklease.io",
                        "identityexceptions.tasklease.io"}


# ---- what the rendered objects promise ----

def test_every_pod_runs_restricted(default_objects):
    for spec in pod_specs(default_objects):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 65532
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_webhook_is_highly_available_and_ready_only_after_cache_sync(default_objects):
    deploy = find(default_objects, "Deployment", "tasklease-webhook")[0]
    assert deploy["spec"]["replicas"] == 2
    spec = deploy["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    probe = spec["containers"][0]["readinessProbe"]["httpGet"]
    assert probe == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    pdb = find(default_objects, "PodDisruptionBudget", "tasklease-webhook")[0]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("option", ["default", "fullname-override"])
def test_the_webhook_trusts_the_operators_service_account_and_the_job_controller(option):
    """TL008 admits a task's workload Job only from the operator, and its pods only from the Job
    controller: the chart names the operator's own ServiceAccount, whatever the release's names."""
    objects = render(*OPTIONS[option])

    def deployment(component):
        return next(o for o in objects if o["kind"] == "Deployment"
                    and o["metadata"]["labels"]["app.kubernetes.io/component"] == component)

    operator_sa = deployment("operator")["spec"]["template"]["spec"]["serviceAccountName"]
    args = deployment("webhook")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--operator-username=system:serviceaccount:{NS}:{operator_sa}" in args
    assert [a for a in args if a.startswith("--job-controller-username=")] == [
        "--job-controller-username=system:serviceaccount:kube-system:job-controller",
        "--job-controller-username=system:kube-controller-manager"]
    custom = find(render("--set", "webhook.jobControllerUsernames={system:serviceaccount:kube-system:jobs}"),
                  "Deployment", "tasklease-webhook")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in custom if a.startswith("--job-controller-username=")] == [
        "--job-controller-username=system:serviceaccount:kube-system:jobs"]
    res = helm("template", "tasklease", CHART, "--set-json", "webhook.jobControllerUsernames=[]",
               check=False)
    assert res.returncode != 0 and "jobControllerUsernames" in res.stderr, res.stderr


def test_operator_runs_with_leader_election(default_objects):
    args = find(default_objects, "Deployment", "tasklease-operator")[0][
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args and "--namespace=$(POD_NAMESPACE)" in args


def webhooks(objects):
    return [(o["kind"], h) for o in objects
            if o["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
            for h in o["webhooks"]]


@pytest.mark.parametrize("option", ["default", "exempt-and-timeouts"])
def test_webhooks_never_see_their_own_namespace_or_kube_system(option):
    hooks = webhooks(render(*OPTIONS[option]))
    assert len(hooks) == 3
    for _, hook in hooks:
        names = next(e for e in hook["namespaceSelector"]["matchExpressions"]
                     if e["key"] == "kubernetes.io/metadata.name")
        assert names["operator"] == "NotIn" and {"kube-system", NS} <= set(names["values"])
        assert hook["sideEffects"] == "None"
        assert hook["failurePolicy"] == "Fail"
    if option == "exempt-and-timeouts":
        assert all({"monitoring", "gatekeeper-system"} <= set(next(
            e for e in h["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name")["values"]) for _, h in hooks)
        assert sorted(h["timeoutSeconds"] for _, h in hooks) == [3, 3, 15]


def test_failure_policy_is_the_documented_value():
    assert {h["failurePolicy"] for _, h in webhooks(render(*OPTIONS["failure-policy-ignore"]))} == {"Ignore"}


def test_webhook_rules_cover_workloads_agenttasks_and_exceptions(default_objects):
    by_name = {h["name"]: (kind, h) for kind, h in webhooks(default_objects)}
    covered = set()
    for kind, hook in by_name.values():
        for rule in hook["rules"]:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    for op in rule["operations"]:
                        covered.add((kind[:4], hook["clientConfig"]["service"]["path"], group, res, op))
    for res in ("deployments", "replicasets", "statefulsets", "daemonsets"):
        assert ("Vali", "/validate", "apps", res, "CREATE") in covered
    for want in [("", "pods", "CREATE"), ("", "pods/ephemeralcontainers", "UPDATE"),
                 ("", "replicationcontrollers", "UPDATE"), ("batch", "jobs", "CREATE"),
                 ("batch", "cronjobs", "UPDATE"), ("tasklease.io", "agenttasks", "CREATE"),
                 ("tasklease.io", "agenttasks", "UPDATE"),
                 ("tasklease.io", "identityexceptions", "CREATE")]:
        assert ("Vali", "/validate", *want) in covered, want
    mutating = {c for c in covered if c[0] == "Muta"}
    assert mutating == {("Muta", "/mutate", "tasklease.io", "agenttasks", "CREATE")}
    workload_hook = by_name["validate.tasklease.io"][1]
    assert {"key": "tasklease.io/enforcement", "operator": "Exists"} in \
        workload_hook["namespaceSelector"]["matchExpressions"]


def test_certificates_never_generated_at_template_time(default_objects):
    assert not [o for o in default_objects if o["kind"] == "Secret"]
    for _, hook in webhooks(default_objects):
        assert "caBundle" not in hook["clientConfig"]
    args = find(default_objects, "Deployment", "tasklease-webhook")[0][
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--manage-certs" in args
    assert "--validating-webhook-configuration=tasklease" in args
    assert "--mutating-webhook-configuration=tasklease" in args
    assert "--service-name=tasklease-webhook" in args


def test_cert_manager_issues_the_certificate_and_injects_the_ca():
    objects = render(*OPTIONS["cert-manager"])
    cert = find(objects, "Certificate", "tasklease-webhook")[0]
    assert "tasklease-webhook.tasklease-system.svc" in cert["spec"]["dnsNames"]
    assert find(objects, "Issuer", cert["spec"]["issuerRef"]["name"])[0]["spec"]["ca"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        annotations = find(objects, kind)[0]["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == "tasklease-system/tasklease-webhook"
    spec = find(objects, "Deployment", "tasklease-webhook")[0]["spec"]["template"]["spec"]
    assert "--manage-certs" not in spec["containers"][0]["args"]
    assert [v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v] == [cert["spec"]["secretName"]]
    # The webhook may no longer touch its configurations: nothing for it to keep current.
    webhook_role = find(objects, "ClusterRole", "tasklease-webhook")[0]
    assert all("admissionregistration.k8s.io" not in r["apiGroups"] for r in webhook_role["rules"])
    issued = render(*OPTIONS["cert-manager-issuer"])
    assert [c["spec"]["issuerRef"] for c in find(issued, "Certificate")] == [
        {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}]


def test_optional_network_policy_and_service_monitor():
    assert not [o for o in render() if o["kind"] in ("NetworkPolicy", "ServiceMonitor", "PrometheusRule")]
    policies = find(render(*OPTIONS["network-policy"]), "NetworkPolicy")
    assert {p["metadata"]["name"] for p in policies} == {"tasklease-webhook", "tasklease-operator"}
    monitor = find(render(*OPTIONS["service-monitor"]), "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_optional_prometheus_rule_alerts_on_a_held_revocation():
    """docs/operations.md: the alert on tasklease_operator_revocations_blocked, per kind, in the
    release's namespace, after prometheusRule.revocationBlockedFor."""
    rule = find(render(*OPTIONS["prometheus-rule"]), "PrometheusRule", "tasklease")[0]
    assert rule["metadata"]["namespace"] == NS
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    [alert] = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alert["alert"] == "TaskleaseRevocationBlocked"
    assert alert["expr"] == ("max by (namespace, kind) (tasklease_operator_revocations_blocked"
                             f'{{namespace="{NS}"}}) > 0')
    assert alert["for"] == "30m" and alert["labels"] == {"severity": "warning"}
    # Prometheus's template syntax reaches the rule as written, not eaten by Helm's.
    assert "{{ $labels.kind }}" in alert["annotations"]["summary"]
    assert "status.revocation.held" in alert["annotations"]["description"]
    defaults = find(render("--set", "prometheusRule.enabled=true"), "PrometheusRule")[0]
    [alert] = [r for g in defaults["spec"]["groups"] for r in g["rules"]]
    assert alert["for"] == "10m" and alert["labels"] == {"severity": "critical"}
    bad = helm("template", "tasklease", CHART, "--set", "prometheusRule.revocationBlockedFor=soon",
               check=False)
    assert bad.returncode != 0 and "revocationBlockedFor" in bad.stderr, bad.stderr


def test_kubernetes_objects_in_values_reach_the_rendered_objects_unchanged():
    objects = render(*OPTIONS["scheduling"], release="r-scheduling")
    for component in ("webhook", "operator"):
        deploy = find(objects, "Deployment", f"r-scheduling-tasklease-{component}")[0]
        spec = deploy["spec"]["template"]["spec"]
        assert spec["affinity"] == AFFINITY and spec["tolerations"] == TOLERATIONS
        assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
        assert spec["priorityClassName"] == "tasklease-critical"
        if component == "webhook":
            assert spec["topologySpreadConstraints"] == SPREAD
    policies = {p["metadata"]["name"]: p["spec"]["ingress"]
                for p in find(render(*OPTIONS["network-policy-peers"]), "NetworkPolicy")}
    assert [rule["from"] for rule in policies["tasklease-webhook"]] == [PEERS[:1], PEERS]
    assert [rule["from"] for rule in policies["tasklease-operator"]] == [PEERS]


def test_name_overrides_and_common_labels():
    named = render(*OPTIONS["name-override-and-labels"])
    assert find(named, "Deployment", "tasklease-agentlease-webhook")
    for o in named:
        assert o["metadata"]["labels"]["team"] == "platform", o["metadata"]["name"]
        assert o["metadata"]["labels"]["app.kubernetes.io/name"] == "agentlease"
    full = render(*OPTIONS["fullname-override"])
    assert {o["metadata"]["name"] for o in full if o["kind"] == "Deployment"} == {
        "agents-webhook", "agents-operator"}
    assert find(full, "ValidatingWebhookConfiguration", "agents")


def test_standard_labels_on_every_object(default_objects):
    for o in default_objects:
        labels = o["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, (o["kind"], o["metadata"]["name"], key)


# ---- the API server accepts every rendered object ----

# Just enough of cert-manager's and prometheus-operator's CRDs for their objects to be stored.
FOREIGN_CRDS = [("cert-manager.io", "Issuer", "issuers"), ("cert-manager.io", "Certificate", "certificates"),
                ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
                ("monitoring.coreos.com", "PrometheusRule", "prometheusrules")]


def foreign_crd(group, kind, plural):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": kind + "List"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


@pytest.fixture(scope="module")
def sim():
    """A cluster of the module's own (kubesim, or another real control plane): the chart
    registers webhooks for every namespace, which must not reach the shared cluster's other
    tests."""
    c = Cluster.start_own()
    c.apply([foreign_crd(*f) for f in FOREIGN_CRDS])
    c.kubectl("wait", "--for=condition=Established", "--timeout=30s",
              *[f"crd/{p}.{g}" for g, _, p in FOREIGN_CRDS])
    yield c
    c.stop()


def release_of(option):
    return f"r-{option}", f"tl-{option}"


@pytest.fixture(scope="module")
def applied(sim):
    """Every option rendered under a release and namespace of its own (so cluster-scoped names
    do not collide), applied in one go as Helm 4 applies: server-side. The CRDs come with the
    first. Returns (rendered objects, kubectl's result)."""
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}]  # watchNamespace
    for n, (option, values) in enumerate(OPTIONS.items()):
        release, ns = release_of(option)
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        docs += [d for d in yaml.safe_load_all(helm(
            "template", release, CHART, "--namespace", ns, *values,
            *(["--include-crds"] if n == 0 else [])).stdout) if d]
    text = yaml.safe_dump_all(docs)
    return docs, text, sim.kubectl("apply", "--server-side", "--field-manager=helm", "-f", "-",
                                   input=text, check=False)


def test_every_rendered_object_of_every_option_is_accepted_by_the_api_server(sim, applied):
    docs, text, res = applied
    assert res.returncode == 0, res
    assert len([line for line in res.stdout.splitlines() if line.strip()]) == len(docs), res.stdout
    stored = sim.kubectl_json("get", "-f", "-", input=text)["items"]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in stored) == \
        sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Certificate", "Issuer", "ServiceMonitor", "NetworkPolicy",
            "PodDisruptionBudget", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
            "Deployment", "Service", "ClusterRole", "Role", "RoleBinding", "ClusterRoleBinding",
            "ServiceAccount"} <= kinds


def can(sim, sa, verb, resource, group="", namespace=None, name=None, option="default"):
    attrs = {"verb": verb, "resource": resource.split("/")[0], "group": group}
    if "/" in resource:
        attrs["subresource"] = resource.split("/")[1]
    if namespace:
        attrs["namespace"] = namespace
    if name:
        attrs["name"] = name
    release, ns_of_sa = release_of(option)
    user = f"system:serviceaccount:{ns_of_sa}:{release}-tasklease-{sa}"
    status, _, out = sim.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns_of_sa}"],
                 "resourceAttributes": attrs}})
    assert status == 201, out
    return out["status"]["allowed"]


def test_rbac_grants_what_the_binaries_call_and_no_more(sim, applied):
    own = release_of("default")[1]
    # The webhook: its informers, SubjectAccessReviews, its own Secrets and configurations.
    assert can(sim, "webhook", "watch", "namespaces")
    assert can(sim, "webhook", "list", "agenttasks", "tasklease.io")
    assert can(sim, "webhook", "create", "subjectaccessreviews", "authorization.k8s.io")
    assert can(sim, "webhook", "update", "secrets", namespace=own, name="r-default-tasklease-webhook-tls")
    assert can(sim, "webhook", "get", "secrets", namespace=own, name="tasklease-delegation-signing-key")
    assert can(sim, "webhook", "patch", "configmaps", namespace=own, name="tasklease-delegation-keys")
    assert can(sim, "webhook", "update", "validatingwebhookconfigurations",
               "admissionregistration.k8s.io", name="r-default-tasklease")
    assert not can(sim, "webhook", "get", "secrets", namespace=own, name="r-default-tasklease-ca")
    assert not can(sim, "webhook", "list", "secrets", namespace=own)
    assert not can(sim, "webhook", "get", "secrets", namespace="team-a", name="db")
    assert not can(sim, "webhook", "update", "validatingwebhookconfigurations",
                   "admissionregistration.k8s.io", name="someone-else")
    # The operator: task objects in any namespace, Roles with any rules, its own Lease and CA.
    assert can(sim, "operator", "create", "serviceaccounts/token", namespace="team-a")
    # Revocation deletes a batch of tasks' objects by label selector, kind by kind.
    for kind, group in (("rolebindings", "rbac.authorization.k8s.io"), ("secrets", ""),
                        ("serviceaccounts", ""), ("roles", "rbac.authorization.k8s.io")):
        assert can(sim, "operator", "deletecollection", kind, group, namespace="team-a")
    assert not can(sim, "operator", "deletecollection", "configmaps", namespace="team-a")
    assert can(sim, "operator", "escalate", "roles", "rbac.authorization.k8s.io", namespace="team-a")
    assert can(sim, "operator", "bind", "roles", "rbac.authorization.k8s.io", namespace="team-a")
    assert can(sim, "operator", "update", "agenttasks/status", "tasklease.io", namespace="team-a")
    assert can(sim, "operator", "update", "leases", "coordination.k8s.io", namespace=own,
               name="r-default-tasklease-operator")
    assert can(sim, "operator", "get", "configmaps", namespace=own, name="tasklease-delegation-keys")
    assert not can(sim, "operator", "patch", "configmaps", namespace=own, name="tasklease-delegation-keys")
    assert not can(sim, "operator", "create", "clusterroles", "rbac.authorization.k8s.io")
    assert not can(sim, "operator", "escalate", "clusterroles", "rbac.authorization.k8s.io")
    assert not can(sim, "operator", "create", "pods", namespace="team-a")
    assert not can(sim, "operator", "update", "leases", "coordination.k8s.io", namespace=own,
                   name="kube-scheduler")
    # operator.watchNamespace: task objects in that namespace only.
    assert can(sim, "operator", "create", "secrets", namespace="team-a", option="watch-namespace")
    assert not can(sim, "operator", "create", "secrets", namespace="team-b", option="watch-namespace")



def test_object_names_passed_by_flag_are_the_ones_rbac_grants(default_objects):
    """Each object a binary reads or writes in the release namespace is named to it by flag, and
    its Role grants that name: a default name in the binary and another in the chart would leave
    it without access."""
    def flag(component, name):
        args = find(default_objects, "Deployment", f"tasklease-{component}")[0][
            "spec"]["template"]["spec"]["containers"][0]["args"]
        values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
        assert len(values) == 1, (component, name, args)
        return values[0]

    def granted(component, resource, verbs):
        role = find(default_objects, "Role", f"tasklease-{component}")[0]
        return {name for rule in role["rules"] if resource in rule["resources"]
                for name in rule.get("resourceNames", []) if set(verbs) <= set(rule["verbs"])}

    keys = flag("webhook", "delegation-keys-configmap")
    assert flag("operator", "delegation-keys-configmap") == keys
    assert flag("webhook", "signing-key-secret") in granted("webhook", "secrets", ["get"])
    assert flag("webhook", "cert-secret") in granted("webhook", "secrets", ["get", "update"])
    assert keys in granted("webhook", "configmaps", ["get", "patch"])
    assert keys in granted("operator", "configmaps", ["get"])
    assert flag("operator", "ca-secret") in granted("operator", "secrets", ["get", "update"])
    assert flag("operator", "crl-configmap") in granted("operator", "configmaps", ["get", "update"])
    assert flag("operator", "evidence-configmap") in granted("operator", "configmaps", ["get", "patch"])
    assert flag("operator", "leader-elect-lease") in granted("operator", "leases", ["get", "update"])


# The real binaries running with exactly what the chart gives them: tests/test_install.py.


@pytest.fixture
def own_cluster():
    c = Cluster.start_own()
    yield c
    c.stop()


def test_helm_upgrade_keeps_the_ca_bundle_the_webhook_wrote(own_cluster):
    c = own_cluster

    def helm_on(*args):
        return helm(*args, "--kubeconfig", c.kubeconfig, "--namespace", NS)

    helm_on("install", "tasklease", CHART, "--create-namespace")
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        config = c.kubectl_json("get", kind, "tasklease")
        for hook in config["webhooks"]:
            hook["clientConfig"]["caBundle"] = bundle  # as the webhook's --manage-certs does: an update
        c.kubectl("replace", "-f", "-", input=json.dumps(config))
    helm_on("upgrade", "tasklease", CHART, "--set", "webhook.timeoutSeconds=7")
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        hooks = c.kubectl_json("get", kind, "tasklease")["webhooks"]
        assert [h["clientConfig"].get("caBundle") for h in hooks] == [bundle] * len(hooks)
        assert 7 in [h["timeoutSeconds"] for h in hooks]  # the upgrade itself took effect
    helm_on("uninstall", "tasklease")
    assert c.kubectl("get", "validatingwebhookconfiguration", "tasklease", check=False).returncode != 0


# ---- the installer docs keep up with the sources ----

def schema_fields(node, path=""):
    """Every field path of a CRD schema, arrays as `[]`, e.g. spec.scope.rules[].verbs."""
    out = []
    for key, child in (node.get("properties") or {}).items():
        if not path and key in ("apiVersion", "kind", "metadata"):
            continue
        child_path = f"{path}.{key}" if path else key
        out.append(child_path)
        out += schema_fields(child, child_path)
        if "items" in child:
            out += schema_fields(child["items"], child_path + "[]")
    return out


def test_crd_reference_documents_every_field():
    doc = open(os.path.join(ROOT, "docs", "crd-reference.md")).read()
    missing = []
    for name in sorted(os.listdir(os.path.join(ROOT, "crds"))):
        crd = yaml.safe_load(open(os.path.join(ROOT, "crds", name)))
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        missing += [f"{name}: {f}" for f in schema_fields(schema) if f"`{f}`" not in doc]
    assert missing == []


def test_operator_guide_lists_exactly_the_charts_operator_rules():
    """docs/operator.md's permission list is the chart's (the operator's documented permissions,
    which tests/test_operator.py grants): the same rules, in the same order, rule by rule."""
    import re
    doc = open(os.path.join(ROOT, "docs", "operator.md")).read()
    section = doc.split("## Permissions the operator needs, and why\n", 1)[1].split("\n## ", 1)[0]
    documented = [yaml.safe_load(block.replace("<release>", "tasklease"))["rules"]
                  for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    objects = render("--show-only", "templates/operator-rbac.yaml")
    assert documented == [find(objects, "ClusterRole", "tasklease-operator-policies")[0]["rules"],
                          find(objects, "ClusterRole", "tasklease-operator-tasks")[0]["rules"],
                          find(objects, "Role", "tasklease-operator")[0]["rules"]]


def test_operations_guide_names_every_metric():
    import re
    names = set()
    for part in ("webhook", "operator"):
        for f in os.listdir(os.path.join(ROOT, part)):
            if f.endswith(".cpp"):
                names |= set(re.findall(r'"(tasklease_[a-z_]+)"', open(os.path.join(ROOT, part, f)).read()))
    assert len(names) > 20
    doc = open(os.path.join(ROOT, "docs", "operations.md")).read()
    assert sorted(n for n in names if f"`{n}`" not in doc) == []
