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
])
def test_misspelt_value_fails_schema_validation_naming_it(values, named):
    for cmd in (["template", "tasklease", CHART], ["lint", CHART]):
        res = helm(*cmd, *values, check=False)
        assert res.returncode != 0, res.stdout
        text = res.stdout + res.stderr
        assert "schema" in text and f"'{named}' not allowed" in text, text


def test_out_of_range_value_fails_schema_validation():
    res = helm("template", "tasklease", CHART, "--set", "webhook.failurePolicy=Sometimes", check=False)
    assert res.returncode != 0 and "failurePolicy" in res.stderr, res.stderr


def test_schema_refuses_unknown_keys_at_every_level():
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    open_levels = []

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_levels.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for n, child in enumerate(node):
                walk(child, f"{path}[{n}]")

    walk(schema, "")
    assert open_levels == []
    # ...and every key of values.yaml is described by the schema.
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))

    def undeclared(vals, node, path):
        missing = []
        for key, val in vals.items():
            child = node.get("properties", {}).get(key)
            if child is None:
                missing.append(path + key)
            elif isinstance(val, dict) and "properties" in child:
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
        assert hook["sideEffects"] in ("None", "NoneOnDryRun")
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
    assert not [o for o in render() if o["kind"] in ("NetworkPolicy", "ServiceMonitor")]
    policies = find(render(*OPTIONS["network-policy"]), "NetworkPolicy")
    assert {p["metadata"]["name"] for p in policies} == {"tasklease-webhook", "tasklease-operator"}
    monitor = find(render(*OPTIONS["service-monitor"]), "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_standard_labels_on_every_object(default_objects):
    for o in default_objects:
        labels = o["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, (o["kind"], o["metadata"]["name"], key)


# ---- the API server accepts every rendered object ----

# Just enough of cert-manager's and prometheus-operator's CRDs for their objects to be stored.
FOREIGN_CRDS = [("cert-manager.io", "Issuer", "issuers"), ("cert-manager.io", "Certificate", "certificates"),
                ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors")]


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
    """A kubesim of the module's own: the chart registers webhooks for every namespace, which
    must not reach the shared cluster's other tests."""
    if os.environ.get("E2E_KUBECONFIG"):
        pytest.skip("installs cluster-wide webhooks; run against kubesim only")
    c = Cluster.start()
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



# The real binaries running with exactly what the chart gives them: tests/test_install.py.


def test_helm_upgrade_keeps_the_ca_bundle_the_webhook_wrote(private_cluster):
    c = private_cluster

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
