"""metav1.Status errors with the reasons, codes and messages kube-apiserver uses."""


class ApiError(Exception):
    """An error answered to the client as a metav1.Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        s = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            s["details"] = self.details
        return s


def qualified(rt):
    """The resource as kube-apiserver names it in messages: 'pods', 'roles.rbac.authorization.k8s.io'."""
    return rt.plural if not rt.group else f"{rt.plural}.{rt.group}"


def _details(rt, name):
    d = {}
    if name:
        d["name"] = name
    if rt is not None:
        if rt.group:
            d["group"] = rt.group
        d["kind"] = rt.plural
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{qualified(rt)} "{name}" not found', _details(rt, name))


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists',
                    _details(rt, name))


def conflict(rt, name, why="the object has been modified; please apply your changes to the "
                          "latest version and try again"):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(rt)} "{name}": {why}',
                    _details(rt, name))


def precondition_conflict(rt, name, why):
    """A delete whose preconditions fail: kube-apiserver's check before the deletion
    (rest.BeforeDelete) names the kind where other conflicts name the resource."""
    d = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.kind
    target = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {target} "{name}": {why}', d)


def bad_request(message, causes=None):
    details = {"causes": causes} if causes else None
    return ApiError(400, "BadRequest", message, details)


def invalid(rt, name, causes):
    """422 Invalid. causes: list of (reason, message, field)."""
    kind = rt.kind
    group_kind = f"{kind}.{rt.group}" if rt.group else kind
    parts = [f"{f}: {m}" if f else m for (_, m, f) in causes]
    if len(parts) == 1:
        msg = f'{group_kind} "{name}" is invalid: {parts[0]}'
    else:
        msg = f'{group_kind} "{name}" is invalid: [{", ".join(parts)}]'
    details = {"name": name, "kind": kind,
               "causes": [{"reason": r, "message": m, "field": f} for (r, m, f) in causes]}
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, "Invalid", msg, details)


def forbidden(rt_or_resource, name, message):
    if isinstance(rt_or_resource, str):
        res = rt_or_resource
        details = {"kind": res.split(".")[0]}
        if "." in res:
            details["group"] = res.split(".", 1)[1]
        if name:
            details["name"] = name
    else:
        res = qualified(rt_or_resource)
        details = _details(rt_or_resource, name)
    if name:
        full = f'{res} "{name}" is forbidden: {message}'
    else:
        full = f"{res} is forbidden: {message}"
    return ApiError(403, "Forbidden", full, details)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def gone(message):
    return ApiError(410, "Expired", message)


def too_many_requests(retry_after):
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after}, {"Retry-After": str(retry_after)})


def internal(message):
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type, accepted):
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(accepted)}")


def not_acceptable(accepted):
    return ApiError(406, "NotAcceptable",
                    f"only the following media types are accepted: {', '.join(accepted)}")


def status_for_code(code, message):
    """A Status for an injected fault of the given HTTP code."""
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests",
               500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
    return ApiError(code, reasons.get(code, "Unknown"), message)


def success_status(details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        s["details"] = details
    return s
