"""RBAC: the authorizer kube-apiserver runs (Roles, ClusterRoles and their bindings for users,
groups and service accounts), escalation checks on role and binding writes, and the bootstrap
policy a new cluster starts with."""

from .selectors import label_selector_matches

RBAC = "rbac.authorization.k8s.io"


class Attributes:
    """What a request wants to do. Resource requests set resource; others set path."""

    def __init__(self, user, groups, verb, api_group="", resource="", subresource="",
                 namespace="", name="", path=None):
        self.user, self.groups, self.verb = user, groups or [], verb
        self.api_group, self.resource, self.subresource = api_group, resource, subresource
        self.namespace, self.name, self.path = namespace, name, path

    @property
    def is_resource(self):
        return self.path is None


def _verb_matches(rule, verb):
    verbs = rule.get("verbs") or []
    return "*" in verbs or verb in verbs


def _group_matches(rule, group):
    groups = rule.get("apiGroups") or []
    return "*" in groups or group in groups


def _resource_matches(rule, resource, subresource):
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def _name_matches(rule, name):
    names = rule.get("resourceNames") or []
    return not names or name in names


def _nonresource_matches(rule, path):
    for u in rule.get("nonResourceURLs") or []:
        if u == "*" or u == path:
            return True
        if u.endswith("*") and path.startswith(u[:-1]):
            return True
    return False


def rule_allows(rule, a):
    if not _verb_matches(rule, a.verb):
        return False
    if a.is_resource:
        return (_group_matches(rule, a.api_group) and _resource_matches(rule, a.resource, a.subresource)
                and _name_matches(rule, a.name))
    return _nonresource_matches(rule, a.path)


def _subject_matches(subject, user, groups):
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
    return False


class Authorizer:
    def __init__(self, store, registry):
        self.store = store
        self.registry = registry

    def _rt(self, plural):
        return self.registry.types[(RBAC, plural)]

    def cluster_role_rules(self, name):
        role = self.store.get(self._rt("clusterroles"), "", name)
        if role is None:
            return None
        rules = list(role.get("rules") or [])
        agg = role.get("aggregationRule")
        if agg:
            # Aggregated rules are computed live (the real controller writes them into .rules).
            for other in self.store.all(self._rt("clusterroles")):
                if other is role:
                    continue
                labels = other["metadata"].get("labels") or {}
                if any(label_selector_matches(sel, labels)
                       for sel in agg.get("clusterRoleSelectors") or []):
                    rules.extend(other.get("rules") or [])
        return rules

    def _role_rules(self, ref, namespace):
        kind = ref.get("kind")
        if kind == "ClusterRole":
            return self.cluster_role_rules(ref.get("name")) or []
        if kind == "Role":
            role = self.store.get(self._rt("roles"), namespace, ref.get("name"))
            return list(role.get("rules") or []) if role else []
        return []

    def visit_rules(self, user, groups, namespace):
        """Yields (rules, description) for every binding that applies to the subject in the
        namespace (cluster-wide bindings always; namespaced ones when namespace is set)."""
        for crb in self.store.all(self._rt("clusterrolebindings")):
            if any(_subject_matches(s, user, groups) for s in crb.get("subjects") or []):
                ref = crb.get("roleRef") or {}
                yield (self._role_rules(ref, ""),
                       f'ClusterRoleBinding "{crb["metadata"]["name"]}" of ClusterRole "{ref.get("name")}"')
        if namespace:
            for rb in self.store.all(self._rt("rolebindings"), namespace):
                if any(_subject_matches(s, user, groups) for s in rb.get("subjects") or []):
                    ref = rb.get("roleRef") or {}
                    yield (self._role_rules(ref, namespace),
                           f'RoleBinding "{rb["metadata"]["name"]}/{namespace}" of '
                           f'{ref.get("kind")} "{ref.get("name")}"')

    def authorize(self, a):
        """Returns (allowed, reason)."""
        if "system:masters" in a.groups:
            return True, ""
        for rules, desc in self.visit_rules(a.user, a.groups, a.namespace if a.is_resource else ""):
            for rule in rules:
                if rule_allows(rule, a):
                    return True, f'RBAC: allowed by {desc} to {_subject_desc(a.user)}'
        return False, ""

    def rules_for(self, user, groups, namespace):
        out = []
        for rules, _ in self.visit_rules(user, groups, namespace):
            out.extend(rules)
        return out

    # ---- escalation prevention (what the RBAC REST storage enforces) ----

    def covers(self, user, groups, namespace, rules):
        """Returns the atomic rules in rules that the user does not hold in namespace."""
        if "system:masters" in groups:
            return []
        missing = []
        for rule in rules:
            for atom in _atomize(rule):
                verb, group, res, name, url = atom
                if url is not None:
                    a = Attributes(user, groups, verb, path=url)
                else:
                    resource, _, sub = res.partition("/")
                    a = Attributes(user, groups, verb, group, resource, sub, namespace, name)
                if not self._covered(a, atom):
                    missing.append(atom)
        return missing

    def _covered(self, a, atom):
        verb, group, res, name, url = atom
        for owner in self.rules_for(a.user, a.groups, a.namespace if url is None else ""):
            if not ("*" in (owner.get("verbs") or []) or verb in (owner.get("verbs") or [])):
                continue
            if url is not None:
                if _nonresource_matches(owner, url):
                    return True
                continue
            ogroups = owner.get("apiGroups") or []
            if not ("*" in ogroups or group in ogroups):
                continue
            ores = owner.get("resources") or []
            resource, _, sub = res.partition("/")
            if not ("*" in ores or res in ores or (sub and "*/" + sub in ores)
                    or (res == "*" and "*" in ores)):
                continue
            onames = owner.get("resourceNames") or []
            if onames and (name is None or name not in onames):
                continue
            return True
        return False


def _atomize(rule):
    out = []
    verbs = rule.get("verbs") or []
    if rule.get("nonResourceURLs"):
        for v in verbs:
            for u in rule["nonResourceURLs"]:
                out.append((v, None, None, None, u))
        return out
    names = rule.get("resourceNames") or [None]
    for v in verbs:
        for g in rule.get("apiGroups") or [""]:
            for r in rule.get("resources") or []:
                for n in names:
                    out.append((v, g, r, n, None))
    return out


def describe_atom(atom):
    verb, group, res, name, url = atom
    if url is not None:
        return f"{{NonResourceURLs:[{url}], Verbs:[{verb}]}}"
    s = f'{{APIGroups:["{group}"], Resources:["{res}"]'
    if name:
        s += f', ResourceNames:["{name}"]'
    return s + f", Verbs:[\"{verb}\"]}}"


def _subject_desc(user):
    if user.startswith("system:serviceaccount:"):
        ns, name = user.split(":")[2:4]
        return f'ServiceAccount "{name}/{ns}"'
    return f'User "{user}"'


def _cr(name, rules, labels=None, aggregation=None):
    obj = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
           "metadata": {"name": name, "labels": dict({"kubernetes.io/bootstrapping": "rbac-defaults"},
                                                     **(labels or {}))},
           "rules": rules}
    if aggregation:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregation: "true"}}]}
        obj["rules"] = []
    return obj


def _crb(name, role, groups):
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]}


_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = {"": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                   "replicationcontrollers", "replicationcontrollers/scale", "services",
                   "services/proxy", "configmaps", "secrets", "serviceaccounts",
                   "persistentvolumeclaims", "endpoints", "events"],
              "apps": ["deployments", "deployments/scale", "replicasets", "replicasets/scale",
                       "statefulsets", "statefulsets/scale", "daemonsets"],
              "batch": ["jobs", "cronjobs"], "policy": ["poddisruptionbudgets"],
              "networking.k8s.io": ["networkpolicies"], "coordination.k8s.io": ["leases"]}


def bootstrap_policy():
    """The default ClusterRoles and ClusterRoleBindings of a new cluster (the subset our tests
    and clients rely on: discovery, self-reviews, cluster-admin and the aggregated user roles)."""
    view_rules = [{"apiGroups": [g], "resources": [r for r in rs if r != "secrets"], "verbs": _READ}
                  for g, rs in _WORKLOADS.items()]
    edit_rules = [{"apiGroups": [g], "resources": rs, "verbs": _READ + _WRITE}
                  for g, rs in _WORKLOADS.items()]
    admin_rules = [{"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": _READ + _WRITE},
                   {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"],
                    "verbs": ["create"]}]
    return [
        _cr("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                              {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _cr("admin", [], aggregation="rbac.authorization.k8s.io/aggregate-to-admin"),
        _cr("edit", [], {"rbac.authorization.k8s.io/aggregate-to-admin": "true"},
            aggregation="rbac.authorization.k8s.io/aggregate-to-edit"),
        _cr("view", [], {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
            aggregation="rbac.authorization.k8s.io/aggregate-to-view"),
        _cr("system:aggregate-to-admin", admin_rules,
            {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
        _cr("system:aggregate-to-edit", edit_rules,
            {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
        _cr("system:aggregate-to-view", view_rules,
            {"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        _cr("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*",
                                                      "/healthz", "/livez", "/openapi", "/openapi/*",
                                                      "/readyz", "/version", "/version/"],
                                  "verbs": ["get"]}]),
        _cr("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz",
                                                               "/version", "/version/"],
                                           "verbs": ["get"]}]),
        _cr("system:basic-user", [
            {"apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
             "verbs": ["create"]}]),
        _cr("system:auth-delegator", [
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
             "verbs": ["create"]}]),
        _crb("cluster-admin", "cluster-admin", ["system:masters"]),
        _crb("system:discovery", "system:discovery", ["system:authenticated"]),
        _crb("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _crb("system:public-info-viewer", "system:public-info-viewer",
             ["system:authenticated", "system:unauthenticated"]),
    ]
