"""What kube-apiserver does for particular built-in kinds: defaulting, the validation our clients
meet, built-in admission plugins (NamespaceLifecycle, ServiceAccount), RBAC escalation checks,
TokenRequest, and the review APIs (TokenReview, SubjectAccessReview and friends)."""

import base64
import binascii
import datetime
import ipaddress
import random

from . import schema
from .auth import MIN_EXPIRATION, DEFAULT_AUDIENCE
from .copies import json_copy
from .errors import ApiError, bad_request, invalid, not_found, conflict
from .rbac import Attributes, describe_atom
from .tables import now_rfc3339

RBAC = "rbac.authorization.k8s.io"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _gen_suffix(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


# ---- defaulting ----

# kube-apiserver's defaults of the v1 API (pkg/apis/core/v1/defaults.go and its peers), those
# of the fields tests and tasklease read back.

def _dicts(items):
    return [i for i in items or [] if isinstance(i, dict)]


def _default_field_ref(holder):
    ref = (holder or {}).get("fieldRef") if isinstance(holder, dict) else None
    if isinstance(ref, dict):
        ref.setdefault("apiVersion", "v1")


def _default_container(c):
    image = c.get("image", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") and "@" not in image
                 else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in _dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
    for env in _dicts(c.get("env")):
        source = env.get("valueFrom")
        if isinstance(source, dict):
            _default_field_ref(source)
            if isinstance(source.get("resourceFieldRef"), dict):
                source["resourceFieldRef"].setdefault("divisor", "0")


def _default_volume(v):
    # Files of Secret, ConfigMap, downward API and projected volumes: mode 0644.
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(kind), dict):
            v[kind].setdefault("defaultMode", 420)
    for item in _dicts((v.get("downwardAPI") or {}).get("items")):
        _default_field_ref(item)
    for source in _dicts((v.get("projected") or {}).get("sources")):
        if isinstance(source.get("serviceAccountToken"), dict):
            source["serviceAccountToken"].setdefault("expirationSeconds", 3600)
        for item in _dicts((source.get("downwardAPI") or {}).get("items")):
            _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")


def default_pod_spec(spec, pod=False):
    """A pod's or a pod template's spec. Only a pod gets enableServiceLinks (SetDefaults_Pod)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    if pod:
        spec.setdefault("enableServiceLinks", True)
    # The v1 API keeps the deprecated serviceAccount equal to serviceAccountName.
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)


# The DefaultTolerationSeconds admission plugin: a pod tolerates a not-ready or unreachable node
# for five minutes, unless it says otherwise.
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _admit_new_pod(spec):
    """What kube-apiserver's mutating admission plugins add to a new pod before any webhook
    sees it: Priority (no PriorityClass: priority 0) and DefaultTolerationSeconds."""
    if not spec.get("priorityClassName"):
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return
    tolerations = list(tolerations or [])
    for key in _DEFAULT_TOLERATIONS:
        if not any(isinstance(t, dict) and t.get("effect") in (None, "", "NoExecute") and
                   (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                   for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300})
    spec["tolerations"] = tolerations


def _template_spec(rt, obj):
    spec = obj.get("spec") or {}
    if rt.plural == "cronjobs":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if rt.plural in ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs",
                     "replicationcontrollers"):
        return spec.get("template")
    return None


def default_on_create(server, rt, obj):
    md = obj["metadata"]
    key = rt.key
    if key == ("", "namespaces"):
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
    elif key == ("", "pods"):
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec, pod=True)
        _admit_new_pod(spec)
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        _fold_string_data(obj)
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}")
            spec["clusterIPs"] = [spec["clusterIP"]]
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif key == ("batch", "jobs"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        spec.setdefault("podReplacementPolicy",
                        "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
        uid = md["uid"]
        if not spec.get("manualSelector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            tmd = spec.setdefault("template", {}).setdefault("metadata", {})
            labels = tmd.setdefault("labels", {})
            labels.update({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                           "batch.kubernetes.io/job-name": md["name"], "job-name": md["name"]})
        obj["status"] = {}
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        md.setdefault("finalizers", [])
        if CRD_FINALIZER not in md["finalizers"]:
            md["finalizers"].append(CRD_FINALIZER)
        _crd_status(obj)
    tmpl = _template_spec(rt, obj)
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        default_pod_spec(tmpl["spec"])


def default_on_update(server, rt, new, old, subresource):
    if rt.key == ("", "namespaces") and subresource != "finalize":
        new["spec"] = json_copy(old.get("spec") or {})
        if subresource != "status":
            new["status"] = json_copy(old.get("status") or {})
    elif rt.key == ("", "secrets"):
        _fold_string_data(new)
    elif rt.key == ("apiextensions.k8s.io", "customresourcedefinitions") and subresource != "status":
        _crd_status(new)
    tmpl = _template_spec(rt, new)
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        default_pod_spec(tmpl["spec"])


def _fold_string_data(obj):
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict):
        data = obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _crd_status(crd):
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    if names.get("kind") and "listKind" not in names:
        names["listKind"] = names["kind"] + "List"
    if names.get("kind") and "singular" not in names:
        names["singular"] = names["kind"].lower()
    spec["names"] = names
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    now = now_rfc3339()
    crd["status"] = {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": storage,
    }


def default_propagation(rt):
    # batch/v1 Jobs and ReplicationControllers default to orphaning, as in kube-apiserver.
    if rt.key in (("batch", "jobs"), ("", "replicationcontrollers")):
        return "Orphan"
    return "Background"


def graceful_deletion_seconds(rt, obj, requested):
    """Seconds of graceful deletion: pods running on a node get it (the kubelet then removes
    them); everything else, and pods never scheduled or already finished, go at once."""
    if rt.key != ("", "pods"):
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(int(requested), 0)
    return int(spec.get("terminationGracePeriodSeconds", 30))


def has_pending_spec_finalizers(rt, obj):
    return rt.key == ("", "namespaces") and bool((obj.get("spec") or {}).get("finalizers"))


def on_deletion_started(server, rt, obj):
    if rt.key == ("", "namespaces"):
        obj["status"] = {"phase": "Terminating"}
    elif rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        conds = obj.setdefault("status", {}).setdefault("conditions", [])
        conds.append({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                      "message": "CustomResource deletion is in progress",
                      "lastTransitionTime": now_rfc3339()})


def after_create(server, rt, obj):
    if rt.key == ("", "namespaces"):
        ns = obj["metadata"]["name"]
        sa_rt = server.registry.types[("", "serviceaccounts")]
        cm_rt = server.registry.types[("", "configmaps")]
        if server.store.get(sa_rt, ns, "default") is None:
            server.api_create_internal(sa_rt, {"apiVersion": "v1", "kind": "ServiceAccount",
                                               "metadata": {"name": "default", "namespace": ns}})
        if server.store.get(cm_rt, ns, "kube-root-ca.crt") is None:
            server.api_create_internal(cm_rt, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                             "annotations": {"kubernetes.io/description": (
                                 "Contains a CA bundle that can be used to verify the "
                                 "kube-apiserver when using internal endpoints such as the "
                                 "internal service IP or kubernetes.default.svc. No other usage "
                                 "is guaranteed across distributions of Kubernetes clusters.")}},
                "data": {"ca.crt": server.pki.ca_pem().decode()}})
    elif rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        server.registry.add_crd(obj)


def after_update(server, rt, obj, old):
    if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions") and \
            not obj["metadata"].get("deletionTimestamp"):
        server.registry.add_crd(obj)


# ---- built-in admission plugins ----

def admit_builtin(server, rt, obj, old, op, subresource=""):
    if rt.key == ("", "pods") and op == "CREATE":
        _service_account_admission(server, obj)
    if rt.key == ("", "pods") and op == "UPDATE" and subresource == "":
        _pod_update_immutability(rt, obj, old)
    if rt.key == ("", "pods") and op == "UPDATE" and subresource == "ephemeralcontainers":
        _ephemeral_update(rt, obj, old)


def _service_account_admission(server, pod):
    spec = pod.setdefault("spec", {})
    ns = pod["metadata"]["namespace"]
    name = pod["metadata"]["name"]
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = sa_name
    spec["serviceAccount"] = sa_name
    sa = server.store.get(server.registry.types[("", "serviceaccounts")], ns, sa_name)
    if sa is None:
        raise ApiError(403, "Forbidden",
                       f'pods "{name}" is forbidden: error looking up service account '
                       f'{ns}/{sa_name}: serviceaccount "{sa_name}" not found',
                       {"name": name, "kind": "pods"})
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = sa.get("automountServiceAccountToken", True)
    if not automount:
        return
    vols = spec.setdefault("volumes", [])
    if any(SA_MOUNT == m.get("mountPath") for c in spec.get("containers") or []
           for m in c.get("volumeMounts") or []):
        return
    vol_name = f"kube-api-access-{_gen_suffix()}"
    vols.append({"name": vol_name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not any(m.get("mountPath") == SA_MOUNT for m in c.get("volumeMounts") or []):
                c.setdefault("volumeMounts", []).append(
                    {"name": vol_name, "readOnly": True, "mountPath": SA_MOUNT})


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds",
                "schedulingGates")


def _pod_update_immutability(rt, new, old):
    def strip(spec):
        s = json_copy(spec or {})
        for k in _POD_MUTABLE:
            s.pop(k, None)
        for key in ("containers", "initContainers"):
            for c in s.get(key) or []:
                c.pop("image", None)
        return s
    if strip(new.get("spec")) != strip(old.get("spec")):
        raise invalid(rt, new["metadata"]["name"], [(
            "FieldValueForbidden",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative)", "spec")])


def _ephemeral_update(rt, new, old):
    olds = {c.get("name"): c for c in (old.get("spec") or {}).get("ephemeralContainers") or []}
    news = {c.get("name"): c for c in (new.get("spec") or {}).get("ephemeralContainers") or []}
    for name, c in olds.items():
        if name not in news or news[name] != c:
            raise invalid(rt, new["metadata"]["name"], [(
                "FieldValueForbidden",
                f"Forbidden: existing ephemeral containers \"{name}\" may not be changed",
                "spec.ephemeralContainers")])


# ---- validation ----

def validate(server, rt, obj, old):
    key = rt.key
    causes = []
    if key == ("", "pods"):
        causes += _validate_pod_spec(obj.get("spec") or {}, "spec")
        if old is None and (obj.get("spec") or {}).get("ephemeralContainers"):
            causes.append(("FieldValueForbidden", "Forbidden: cannot be set on create",
                           "spec.ephemeralContainers"))
    elif key == ("", "secrets"):
        for k, v in (obj.get("data") or {}).items():
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, TypeError, ValueError):
                causes.append(("FieldValueInvalid", "Invalid value: \"<secret contents redacted>\": "
                               "illegal base64 data", f"data[{k}]"))
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(("FieldValueInvalid", f'Invalid value: "{obj.get("type")}": field is '
                           "immutable", "type"))
    elif key in ((RBAC, "rolebindings"), (RBAC, "clusterrolebindings")):
        ref = obj.get("roleRef")
        if not isinstance(ref, dict) or not ref.get("name") or not ref.get("kind"):
            causes.append(("FieldValueRequired", "Required value", "roleRef"))
        elif old is not None and ref != old.get("roleRef"):
            causes.append(("FieldValueInvalid", "Invalid value: cannot change roleRef", "roleRef"))
        elif key == (RBAC, "clusterrolebindings") and ref.get("kind") != "ClusterRole":
            causes.append(("FieldValueNotSupported", f'Unsupported value: "{ref.get("kind")}": '
                           'supported values: "ClusterRole"', "roleRef.kind"))
        for i, s in enumerate(obj.get("subjects") or []):
            if s.get("kind") not in ("User", "Group", "ServiceAccount"):
                causes.append(("FieldValueNotSupported", f'Unsupported value: "{s.get("kind")}": '
                               'supported values: "Group", "ServiceAccount", "User"',
                               f"subjects[{i}].kind"))
            if not s.get("name"):
                causes.append(("FieldValueRequired", "Required value", f"subjects[{i}].name"))
    elif key in ((RBAC, "roles"), (RBAC, "clusterroles")):
        for i, r in enumerate(obj.get("rules") or []):
            if not r.get("verbs"):
                causes.append(("FieldValueRequired", "Required value: verbs must contain at least "
                               "one value", f"rules[{i}].verbs"))
            if not r.get("nonResourceURLs") and not r.get("resources"):
                causes.append(("FieldValueRequired", "Required value: resource rules must supply "
                               "at least one resource", f"rules[{i}].resources"))
    elif key == ("", "endpoints"):
        causes += _validate_endpoints(obj)
    elif key[1] in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        causes += _validate_webhooks(obj)
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        causes += _validate_crd(server, obj, old)
    elif key == ("coordination.k8s.io", "leases"):
        d = (obj.get("spec") or {}).get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            causes.append(("FieldValueInvalid", f"Invalid value: {d}: must be greater than 0",
                           "spec.leaseDurationSeconds"))
    tmpl = _template_spec(rt, obj)
    if rt.group in ("apps", "batch") or rt.plural == "replicationcontrollers":
        if not isinstance(tmpl, dict):
            where = "spec.jobTemplate.spec.template" if rt.plural == "cronjobs" else "spec.template"
            causes.append(("FieldValueRequired", "Required value", where))
        else:
            where = "spec.jobTemplate.spec.template.spec" if rt.plural == "cronjobs" else "spec.template.spec"
            causes += _validate_pod_spec(tmpl.get("spec") or {}, where)
    return causes


def _validate_pod_spec(spec, where):
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(("FieldValueRequired", "Required value", f"{where}.containers"))
    names = set()
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(key) or []):
            if not isinstance(c, dict):
                causes.append(("FieldValueTypeInvalid", "Invalid value: must be an object",
                               f"{where}.{key}[{i}]"))
                continue
            if not c.get("name"):
                causes.append(("FieldValueRequired", "Required value", f"{where}.{key}[{i}].name"))
            elif c["name"] in names:
                causes.append(("FieldValueDuplicate", f'Duplicate value: "{c["name"]}"',
                               f"{where}.{key}[{i}].name"))
            else:
                names.add(c["name"])
            if not c.get("image") and key != "ephemeralContainers":
                causes.append(("FieldValueRequired", "Required value", f"{where}.{key}[{i}].image"))
    vols = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") if isinstance(v, dict) else None
        if not n:
            causes.append(("FieldValueRequired", "Required value", f"{where}.volumes[{i}].name"))
        elif n in vols:
            causes.append(("FieldValueDuplicate", f'Duplicate value: "{n}"', f"{where}.volumes[{i}].name"))
        vols.add(n)
    return causes


def _endpoint_ip_causes(ip, field):
    """kube-apiserver's checks of an Endpoints address (validation.ValidateEndpointIP): a valid
    IP that is not loopback, link-local, link-local multicast or unspecified. The API server
    would otherwise proxy to itself or to the node's local services through an Endpoints."""
    try:
        a = ipaddress.ip_address(ip) if isinstance(ip, str) else None
    except ValueError:
        a = None
    if a is None:
        # kube-apiserver reports an address that does not parse twice, in these two forms.
        return [("FieldValueInvalid", f'Invalid value: "{ip}": must be a valid IP address, (e.g. '
                 '10.9.8.7 or 2001:db8::ffff)', field),
                ("FieldValueInvalid", f'Invalid value: "{ip}": must be a valid IP address', field)]
    if a.is_unspecified:
        why = f"may not be unspecified ({'::' if a.version == 6 else '0.0.0.0'})"
    elif a.is_loopback:
        why = "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    elif a in ipaddress.ip_network("169.254.0.0/16") or a in ipaddress.ip_network("fe80::/10"):
        why = "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    elif a in ipaddress.ip_network("224.0.0.0/24") or \
            (a.version == 6 and a.packed[0] == 0xFF and a.packed[1] & 0x0F == 0x02):
        why = "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    else:
        return []
    return [("FieldValueInvalid", f'Invalid value: "{ip}": {why}', field)]


def _validate_endpoints(obj):
    causes = []
    for i, subset in enumerate(obj.get("subsets") or []):
        for kind in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate((subset or {}).get(kind) or []):
                causes += _endpoint_ip_causes((addr or {}).get("ip"),
                                              f"subsets[{i}].{kind}[{j}].ip")
    return causes


def _validate_webhooks(obj):
    causes = []
    names = set()
    for i, h in enumerate(obj.get("webhooks") or []):
        p = f"webhooks[{i}]"
        n = h.get("name", "")
        if not n or "." not in n:
            causes.append(("FieldValueInvalid", f'Invalid value: "{n}": should be a domain with at '
                           "least three segments separated by dots", f"{p}.name"))
        if n in names:
            causes.append(("FieldValueDuplicate", f'Duplicate value: "{n}"', f"{p}.name"))
        names.add(n)
        cc = h.get("clientConfig") or {}
        if bool(cc.get("url")) == bool(cc.get("service")):
            causes.append(("FieldValueRequired", "Required value: exactly one of url or service is "
                           "required", f"{p}.clientConfig"))
        if cc.get("url") and not str(cc["url"]).startswith("https://"):
            causes.append(("FieldValueInvalid", f'Invalid value: "{cc["url"]}": \'https\' is the '
                           "only allowed URL scheme", f"{p}.clientConfig.url"))
        if h.get("sideEffects") not in ("None", "NoneOnDryRun"):
            causes.append(("FieldValueNotSupported", f'Unsupported value: "{h.get("sideEffects", "")}":'
                           ' supported values: "None", "NoneOnDryRun"', f"{p}.sideEffects"))
        if not h.get("admissionReviewVersions"):
            causes.append(("FieldValueRequired", "Required value: must specify one of v1, v1beta1",
                           f"{p}.admissionReviewVersions"))
        elif "v1" not in h["admissionReviewVersions"]:
            causes.append(("FieldValueInvalid", "Invalid value: must include at least one of v1, "
                           "v1beta1", f"{p}.admissionReviewVersions"))
        fp = h.get("failurePolicy")
        if fp is not None and fp not in ("Fail", "Ignore"):
            causes.append(("FieldValueNotSupported", f'Unsupported value: "{fp}": supported values: '
                           '"Fail", "Ignore"', f"{p}.failurePolicy"))
        t = h.get("timeoutSeconds")
        if t is not None and not (isinstance(t, int) and 1 <= t <= 30):
            causes.append(("FieldValueInvalid", f"Invalid value: {t}: the timeout value must be "
                           "between 1 and 30 seconds", f"{p}.timeoutSeconds"))
    return causes


def _validate_crd(server, crd, old):
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    if not group or "." not in group:
        causes.append(("FieldValueInvalid", f'Invalid value: "{group}": should be a domain with at '
                       "least one dot", "spec.group"))
    if not names.get("plural"):
        causes.append(("FieldValueRequired", "Required value", "spec.names.plural"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "Required value", "spec.names.kind"))
    want = f"{names.get('plural')}.{group}"
    if crd["metadata"]["name"] != want:
        causes.append(("FieldValueInvalid", f'Invalid value: "{crd["metadata"]["name"]}": must be '
                       "spec.names.plural+\".\"+spec.group", "metadata.name"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("FieldValueNotSupported", f'Unsupported value: "{spec.get("scope", "")}": '
                       'supported values: "Cluster", "Namespaced"', "spec.scope"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("FieldValueRequired", "Required value: must have exactly one version "
                       "marked as storage version", "spec.versions"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(("FieldValueInvalid", "Invalid value: must have exactly one version marked "
                       "as storage version", "spec.versions"))
    for i, v in enumerate(versions):
        sch = (v.get("schema") or {}).get("openAPIV3Schema")
        if sch is None:
            causes.append(("FieldValueRequired", "Required value: schemas are required",
                           f"spec.versions[{i}].schema.openAPIV3Schema"))
            continue
        for path, msg in schema.compile_schema_rules(sch):
            causes.append(("FieldValueInvalid", f"Invalid value: {msg}",
                           f"spec.versions[{i}].schema.openAPIV3Schema.{path}"))
    if old is not None:
        for f in ("group",):
            if (old.get("spec") or {}).get(f) != spec.get(f):
                causes.append(("FieldValueInvalid", "Invalid value: field is immutable", f"spec.{f}"))
    # Names must not collide with a built-in or another CRD's resource.
    existing = server.registry.types.get((group, names.get("plural")))
    if old is None and existing is not None:
        causes.append(("FieldValueInvalid", f'Invalid value: "{names.get("plural")}": resource '
                       "already exists", "spec.names.plural"))
    return causes


# ---- RBAC escalation prevention ----

def check_escalation(server, rt, obj, user):
    if rt.group != RBAC:
        return
    authz = server.authz
    ns = obj["metadata"].get("namespace") or ""
    name = obj["metadata"]["name"]
    if rt.plural in ("roles", "clusterroles"):
        if authz.authorize(Attributes(user.name, user.groups, "escalate", RBAC, rt.plural, "", ns,
                                      name))[0]:
            return
        missing = authz.covers(user.name, user.groups, ns, obj.get("rules") or [])
    elif rt.plural in ("rolebindings", "clusterrolebindings"):
        ref = obj.get("roleRef") or {}
        ref_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        ref_ns = "" if ref_plural == "clusterroles" else ns
        if authz.authorize(Attributes(user.name, user.groups, "bind", RBAC, ref_plural, "", ns,
                                      ref.get("name", "")))[0]:
            return
        if ref_plural == "clusterroles":
            rules = authz.cluster_role_rules(ref.get("name"))
        else:
            role = server.store.get(server.registry.types[(RBAC, "roles")], ref_ns, ref.get("name"))
            rules = (role or {}).get("rules")
        if rules is None:
            raise not_found(server.registry.types[(RBAC, ref_plural)], ref.get("name"))
        missing = authz.covers(user.name, user.groups, ns, rules)
    else:
        return
    if missing:
        groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
        detail = "\n".join(describe_atom(a) for a in missing)
        raise ApiError(403, "Forbidden",
                       f'{rt.plural}.{RBAC} "{name}" is forbidden: user "{user.name}" '
                       f"(groups={groups}) is attempting to grant RBAC permissions not currently "
                       f"held:\n{detail}", {"name": name, "group": RBAC, "kind": rt.plural})


# ---- TokenRequest ----

def token_request(server, namespace, sa_name, body):
    store, reg = server.store, server.registry
    sa_rt = reg.types[("", "serviceaccounts")]
    sa = store.get(sa_rt, namespace, sa_name)
    if sa is None:
        raise not_found(sa_rt, sa_name)
    if not isinstance(body, dict):
        raise bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    spec = dict(body.get("spec") or {})
    exp = spec.get("expirationSeconds", 3600)

    class _TR:
        group, kind, plural = "authentication.k8s.io", "TokenRequest", "tokenrequests"
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise bad_request("spec.expirationSeconds: must be an integer")
    if exp < MIN_EXPIRATION:
        raise invalid(_TR, "", [("FieldValueInvalid", f"Invalid value: {exp}: may not specify a "
                                 "duration less than 10 minutes", "spec.expirationSeconds")])
    if exp > 2 ** 32:
        raise invalid(_TR, "", [("FieldValueTooLong", f"Invalid value: {exp}: may not specify a "
                                 "duration larger than 2^32 seconds", "spec.expirationSeconds")])
    bound = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind = ref.get("kind")
        if ref.get("apiVersion", "v1") != "v1" or kind not in ("Pod", "Secret"):
            raise bad_request(f'cannot bind token for serviceaccount "{sa_name}" to object of type '
                              f"{ref.get('apiVersion')}, Kind={kind}")
        plural = "pods" if kind == "Pod" else "secrets"
        bound = store.get(reg.types[("", plural)], namespace, ref.get("name", ""))
        if bound is None:
            raise not_found(reg.types[("", plural)], ref.get("name", ""))
        if ref.get("uid") and ref["uid"] != bound["metadata"]["uid"]:
            raise conflict(reg.types[("", plural)], ref["name"],
                           f"the UID in the bound object reference ({ref['uid']}) does not match "
                           "the UID in record. The object might have been deleted and then recreated")
    # As sent (the bound object's uid is in the token's claims, not here), null when none.
    spec["boundObjectRef"] = ref or None
    audiences = spec.get("audiences") or [DEFAULT_AUDIENCE]
    spec["audiences"] = audiences
    spec["expirationSeconds"] = exp
    token, claims = server.authority.mint(sa, audiences, exp, bound)
    exp_ts = datetime.datetime.fromtimestamp(claims["exp"], datetime.timezone.utc)
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": sa_name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": exp_ts.strftime("%Y-%m-%dT%H:%M:%SZ")}}


# ---- review APIs ----

def review(server, rt, body, user, namespace):
    if not isinstance(body, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind})")
    spec = body.get("spec") or {}
    out = {"kind": rt.kind, "apiVersion": rt.api_version,
           "metadata": {"creationTimestamp": None}, "spec": spec}
    if rt.plural == "tokenreviews":
        token = spec.get("token")
        if not token:
            raise invalid(rt, "", [("FieldValueRequired", "Required value", "spec.token")])
        static = server.authn.static.get(token)
        if static is not None:
            out["status"] = {"authenticated": True, "user": static.info(),
                             "audiences": spec.get("audiences") or [DEFAULT_AUDIENCE]}
        else:
            try:
                u, auds = server.authority.validate(token, spec.get("audiences"))
                out["status"] = {"authenticated": True, "user": u.info(), "audiences": auds}
            except ValueError as e:
                # kube-apiserver leaves `authenticated: false` out (omitempty).
                out["status"] = {"user": {}, "error": f"[invalid bearer token, {e}]"}
        return out
    if rt.plural == "selfsubjectreviews":
        out["status"] = {"userInfo": user.info()}
        return out
    if rt.plural == "selfsubjectrulesreviews":
        ns = spec.get("namespace", "")
        rules = server.authz.rules_for(user.name, user.groups, ns)
        if "system:masters" in user.groups:
            rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                     {"nonResourceURLs": ["*"], "verbs": ["*"]}] + rules
        out["status"] = {
            "resourceRules": [{k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames")
                               if k in r} for r in rules if r.get("resources")],
            "nonResourceRules": [{"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                                 for r in rules if r.get("nonResourceURLs")],
            "incomplete": False}
        return out
    # SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview
    ra = spec.get("resourceAttributes")
    nra = spec.get("nonResourceAttributes")
    if bool(ra) == bool(nra):
        raise invalid(rt, "", [("FieldValueInvalid", "Invalid value: exactly one of "
                                "nonResourceAttributes or resourceAttributes must be specified",
                                "spec.resourceAttributes")])
    if rt.plural in ("subjectaccessreviews", "localsubjectaccessreviews"):
        who, groups = spec.get("user", ""), list(spec.get("groups") or [])
        if not who and not groups:
            raise invalid(rt, "", [("FieldValueRequired", "Required value: at least one of user "
                                    "or group must be specified", "spec.user")])
        if rt.plural == "localsubjectaccessreviews":
            if (ra or {}).get("namespace", namespace) != namespace:
                raise invalid(rt, "", [("FieldValueInvalid", "Invalid value: must match "
                                        "metadata.namespace", "spec.resourceAttributes.namespace")])
            out["metadata"]["namespace"] = namespace
    else:
        who, groups = user.name, list(user.groups)
        out["spec"] = dict(spec, user=who, groups=groups)
    if ra:
        a = Attributes(who, groups, ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                       ra.get("subresource", ""), ra.get("namespace", ""), ra.get("name", ""))
    else:
        a = Attributes(who, groups, nra.get("verb", ""), path=nra.get("path", ""))
    allowed, reason = server.authz.authorize(a)
    out["status"] = {"allowed": allowed}
    if reason:
        out["status"]["reason"] = reason
    return out
