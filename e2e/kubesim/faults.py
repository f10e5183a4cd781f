"""Fault injection, switched at runtime through PUT /kubesim/faults (admin only):
error rates per verb and resource with a chosen code (429 carries Retry-After), added
latency, dropped watch streams and forced 410s on watch resume. A seed makes a run repeat:
the same sequence of requests meets the same faults."""

import random

from .errors import ApiError, bad_request, status_for_code, too_many_requests

VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


def _check_list(cfg, key, where, allowed=None):
    v = cfg.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise bad_request(f"{where}.{key}: must be a list of strings")
    if allowed is not None:
        bad = [x for x in v if x not in allowed]
        if bad:
            raise bad_request(f"{where}.{key}: unknown verb(s) {bad}; use {sorted(allowed)}")
    return v


def _rate(cfg, where):
    r = cfg.get("rate", 1.0)
    if not isinstance(r, (int, float)) or not 0 <= r <= 1:
        raise bad_request(f"{where}.rate: must be a number from 0 to 1")
    return float(r)


class Faults:
    def __init__(self):
        self.clear()

    def clear(self):
        self.config = {}
        self.rng = random.Random(0)
        self.errors = []
        self.latency = []
        self.watch_drop = None
        self.watch_expire = None
        self.counts = {"errors": 0, "latency": 0, "watchDrops": 0, "watchExpires": 0}

    def configure(self, cfg):
        """Validates and installs a configuration; raises 400 naming the bad field."""
        if not isinstance(cfg, dict):
            raise bad_request("faults: body must be a JSON object")
        known = {"seed", "errors", "latency", "watchDrop", "watchExpire"}
        unknown = set(cfg) - known
        if unknown:
            raise bad_request(f"faults: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        errors = []
        for i, e in enumerate(cfg.get("errors") or []):
            where = f"errors[{i}]"
            code = e.get("code", 500)
            if not isinstance(code, int) or not 400 <= code <= 599:
                raise bad_request(f"{where}.code: must be an HTTP error code from 400 to 599")
            when = e.get("when", "before")
            if when not in ("before", "after"):
                raise bad_request(f'{where}.when: must be "before" (the request is not performed) '
                                  f'or "after" (performed, then the error is returned)')
            errors.append({"verbs": _check_list(e, "verbs", where, VERBS),
                           "resources": _check_list(e, "resources", where),
                           "namespaces": _check_list(e, "namespaces", where),
                           "rate": _rate(e, where), "code": code, "when": when,
                           "retryAfterSeconds": int(e.get("retryAfterSeconds", 1))})
        latency = []
        for i, e in enumerate(cfg.get("latency") or []):
            where = f"latency[{i}]"
            ms = e.get("ms")
            if not isinstance(ms, (int, float)) or ms < 0:
                raise bad_request(f"{where}.ms: must be a non-negative number of milliseconds")
            latency.append({"verbs": _check_list(e, "verbs", where, VERBS),
                            "resources": _check_list(e, "resources", where),
                            "rate": _rate(e, where), "ms": float(ms)})
        drop = cfg.get("watchDrop")
        if drop is not None:
            after = drop.get("afterSeconds")
            events = drop.get("afterEvents")
            if after is None and events is None:
                raise bad_request("watchDrop: set afterSeconds and/or afterEvents")
            if after is not None and (not isinstance(after, (int, float)) or after <= 0):
                raise bad_request("watchDrop.afterSeconds: must be a positive number")
            if events is not None and (not isinstance(events, int) or events <= 0):
                raise bad_request("watchDrop.afterEvents: must be a positive integer")
            drop = {"resources": _check_list(drop, "resources", "watchDrop"),
                    "afterSeconds": after, "afterEvents": events, "rate": _rate(drop, "watchDrop"),
                    "abrupt": bool(drop.get("abrupt", False))}
        expire = cfg.get("watchExpire")
        if expire is not None:
            expire = {"resources": _check_list(expire, "resources", "watchExpire"),
                      "rate": _rate(expire, "watchExpire")}
        seed = cfg.get("seed", 0)
        if not isinstance(seed, int):
            raise bad_request("seed: must be an integer")
        self.clear()
        self.config = cfg
        self.rng = random.Random(seed)
        self.errors, self.latency = errors, latency
        self.watch_drop, self.watch_expire = drop, expire

    @staticmethod
    def _matches(rule, verb, resource, namespace=None):
        if rule.get("verbs") and verb not in rule["verbs"]:
            return False
        if rule.get("resources") and resource not in rule["resources"]:
            return False
        if rule.get("namespaces") and namespace not in rule["namespaces"]:
            return False
        return True

    def latency_for(self, verb, resource):
        total = 0.0
        for rule in self.latency:
            if self._matches(rule, verb, resource) and self.rng.random() < rule["rate"]:
                total += rule["ms"]
                self.counts["latency"] += 1
        return total / 1000.0

    def error_for(self, verb, resource, namespace):
        """Returns (ApiError, when) for an injected failure, or None."""
        for rule in self.errors:
            if self._matches(rule, verb, resource, namespace) and self.rng.random() < rule["rate"]:
                self.counts["errors"] += 1
                code = rule["code"]
                if code == 429:
                    return too_many_requests(rule["retryAfterSeconds"]), rule["when"]
                if code == 500:
                    err = ApiError(500, "InternalError",
                                   "Internal error occurred: kubesim: injected fault",
                                   {"causes": [{"message": "kubesim: injected fault"}]})
                    return err, rule["when"]
                return status_for_code(code, f"kubesim: injected fault ({code})"), rule["when"]
        return None

    def watch_plan(self, resource, resumed):
        """For a new watch: (expire_now, drop_after_seconds, drop_after_events, abrupt)."""
        expire = False
        if resumed and self.watch_expire and self._matches(self.watch_expire, "watch", resource):
            if self.rng.random() < self.watch_expire["rate"]:
                expire = True
                self.counts["watchExpires"] += 1
        secs = events = None
        abrupt = False
        d = self.watch_drop
        if d and self._matches(d, "watch", resource) and self.rng.random() < d["rate"]:
            secs, events, abrupt = d["afterSeconds"], d["afterEvents"], d["abrupt"]
        return expire, secs, events, abrupt

    def describe(self):
        return {"config": self.config, "injected": dict(self.counts)}
