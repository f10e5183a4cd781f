"""The resource types kubesim serves: built-in kinds, plus custom resources from CRDs."""

from dataclasses import dataclass, field

STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    # subresources served: "status", "token", "ephemeralcontainers", "scale", "finalize"
    subresources: list = field(default_factory=list)
    verbs: list = field(default_factory=lambda: list(STANDARD_VERBS))
    # create-only review types (TokenReview, SubjectAccessReview): nothing is stored
    virtual: bool = False
    # generation moves on spec changes (types with a spec whose status is written separately)
    tracks_generation: bool = False
    # the CRD this custom resource came from (its dict), None for built-ins
    crd: dict = None
    # all versions served for this group/plural (CRDs may serve several)
    served_versions: list = field(default_factory=list)
    name_validation: str = "subdomain"  # subdomain | label | path
    # custom resources: uids of stored objects failing this revision's schema (api.py), or None
    # until first needed
    invalid_stored: set = None

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def singular(self):
        return self.kind.lower()

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self):
        return "status" in self.subresources

    def list_kind(self):
        return self.kind + "List"


def _rt(group, version, kind, plural, namespaced, short=(), cats=(), subs=(), gen=False,
        verbs=None, virtual=False, names="subdomain"):
    return ResourceType(group=group, version=version, kind=kind, plural=plural,
                        namespaced=namespaced, short_names=list(short), categories=list(cats),
                        subresources=list(subs), tracks_generation=gen,
                        verbs=list(verbs) if verbs else list(STANDARD_VERBS), virtual=virtual,
                        served_versions=[version], name_validation=names)


ALL = ("all",)
RBAC = "rbac.authorization.k8s.io"
ADM = "admissionregistration.k8s.io"
REVIEW = ("create",)

BUILTINS = [
    _rt("", "v1", "Namespace", "namespaces", False, ("ns",), subs=("status", "finalize"),
        verbs=["create", "delete", "get", "list", "patch", "update", "watch"], names="label"),
    _rt("", "v1", "Pod", "pods", True, ("po",), ALL, ("status", "ephemeralcontainers"), gen=True),
    _rt("", "v1", "Service", "services", True, ("svc",), ALL, ("status",), names="label",
        verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    _rt("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), subs=("token",)),
    _rt("", "v1", "Secret", "secrets", True),
    _rt("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _rt("", "v1", "Event", "events", True, ("ev",)),
    _rt("", "v1", "Node", "nodes", False, ("no",), subs=("status",)),
    _rt("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ALL,
        ("status",), gen=True),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), subs=("status",)),
    _rt("apps", "v1", "Deployment", "deployments", True, ("deploy",), ALL, ("status",), gen=True),
    _rt("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ALL, ("status",), gen=True),
    _rt("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ALL, ("status",), gen=True),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ALL, ("status",), gen=True),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _rt("batch", "v1", "Job", "jobs", True, (), ALL, ("status",), gen=True),
    _rt("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ALL, ("status",), gen=True),
    _rt("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), subs=("status",), gen=True),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",), gen=True),
    _rt(RBAC, "v1", "Role", "roles", True, names="path"),
    _rt(RBAC, "v1", "RoleBinding", "rolebindings", True, names="path"),
    _rt(RBAC, "v1", "ClusterRole", "clusterroles", False, names="path"),
    _rt(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False, names="path"),
    _rt("coordination.k8s.io", "v1", "Lease", "leases", True),
    _rt(ADM, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False, gen=True),
    _rt(ADM, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False, gen=True),
    _rt("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
        ("crd", "crds"), subs=("status",), gen=True),
    _rt("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=REVIEW, virtual=True),
    _rt("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=REVIEW,
        virtual=True),
    _rt("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
        verbs=REVIEW, virtual=True),
    _rt("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
        verbs=REVIEW, virtual=True),
    _rt("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
        verbs=REVIEW, virtual=True),
    _rt("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
        verbs=REVIEW, virtual=True),
]

# Subresource kinds and verbs, for discovery.
SUBRESOURCE_INFO = {
    "status": (None, ["get", "patch", "update"]),
    "token": ("TokenRequest", ["create"]),
    "ephemeralcontainers": (None, ["get", "patch", "update"]),
    "finalize": (None, ["update"]),
}


class Registry:
    """Resource types by (group, plural), by (group, version), and the API groups they form."""

    def __init__(self):
        self.types = {}
        for rt in BUILTINS:
            self.types[rt.key] = rt

    def lookup(self, group, version, plural):
        rt = self.types.get((group, plural))
        if rt is None or version not in rt.served_versions:
            return None
        return rt

    def by_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        for rt in self.types.values():
            if rt.group == group and rt.kind == kind and version in rt.served_versions:
                return rt
        return None

    def add_crd(self, crd):
        """Registers (or refreshes) the custom resource a CRD defines; returns the type."""
        spec = crd["spec"]
        names = spec["names"]
        served = [v["name"] for v in spec.get("versions", []) if v.get("served", True)]
        storage = next((v["name"] for v in spec.get("versions", []) if v.get("storage")),
                       served[0] if served else "v1")
        subs = []
        storage_def = next((v for v in spec.get("versions", []) if v["name"] == storage), {})
        srs = storage_def.get("subresources") or {}
        if "status" in srs:
            subs.append("status")
        rt = ResourceType(group=spec["group"], version=storage, kind=names["kind"],
                          plural=names["plural"], namespaced=spec.get("scope") == "Namespaced",
                          short_names=list(names.get("shortNames") or []),
                          categories=list(names.get("categories") or []), subresources=subs,
                          tracks_generation=True, crd=crd, served_versions=served)
        self.types[rt.key] = rt
        return rt

    def remove_crd(self, crd):
        spec = crd["spec"]
        self.types.pop((spec["group"], spec["names"]["plural"]), None)

    def crd_version_def(self, rt, version):
        if rt.crd is None:
            return None
        for v in rt.crd["spec"].get("versions", []):
            if v["name"] == version:
                return v
        return None

    # ---- discovery documents ----

    def groups(self):
        """{group: [versions]} for every served API group except the legacy core group."""
        out = {}
        for rt in self.types.values():
            if rt.group:
                vs = out.setdefault(rt.group, [])
                for v in rt.served_versions:
                    if v not in vs:
                        vs.append(v)
        return out

    def preferred_version(self, group):
        rts = [rt for rt in self.types.values() if rt.group == group]
        for rt in rts:
            if rt.crd is not None:
                return rt.version
        return rts[0].version if rts else None

    def api_group_list(self):
        groups = []
        for name, versions in sorted(self.groups().items()):
            pref = self.preferred_version(name)
            ordered = [pref] + [v for v in versions if v != pref]
            groups.append({
                "name": name,
                "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered],
                "preferredVersion": {"groupVersion": f"{name}/{pref}", "version": pref},
            })
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group):
        for g in self.api_group_list()["groups"]:
            if g["name"] == group:
                return dict(g, kind="APIGroup", apiVersion="v1")
        return None

    def resource_list(self, group, version):
        resources = []
        for rt in sorted(self.types.values(), key=lambda r: r.plural):
            if rt.group != group or version not in rt.served_versions:
                continue
            entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                     "kind": rt.kind, "verbs": rt.verbs}
            if rt.short_names:
                entry["shortNames"] = rt.short_names
            if rt.categories:
                entry["categories"] = rt.categories
            resources.append(entry)
            for sub in rt.subresources:
                kind, verbs = SUBRESOURCE_INFO[sub]
                sub_entry = {"name": f"{rt.plural}/{sub}", "singularName": "",
                             "namespaced": rt.namespaced, "kind": kind or rt.kind, "verbs": verbs}
                if sub == "token":
                    sub_entry["group"] = "authentication.k8s.io"
                    sub_entry["version"] = "v1"
                resources.append(sub_entry)
        if not resources:
            return None
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}
