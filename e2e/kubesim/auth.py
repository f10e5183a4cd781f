"""Authentication: static bearer tokens (kube-apiserver's --token-auth-file), client
certificates signed by the cluster CA, and service-account JWTs from TokenRequest, with
TokenReview's rules for bound objects."""

import csv
import hashlib
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization

DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_EXPIRATION = 600
# TokenReview still accepts a token whose bound object began deletion less than this long ago.
DELETION_GRACE = 60


class User:
    def __init__(self, name, uid="", groups=(), extra=None):
        self.name, self.uid = name, uid
        self.groups = list(groups)
        self.extra = extra or {}

    def info(self):
        d = {"username": self.name, "groups": self.groups}
        if self.uid:
            d["uid"] = self.uid
        if self.extra:
            d["extra"] = self.extra
        return d


ANONYMOUS = User("system:anonymous", groups=["system:unauthenticated"])


def load_token_file(path):
    """token,user,uid,"group1,group2" per line, like kube-apiserver's static token file."""
    tokens = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}: a line needs at least token,user")
            groups = [g for g in (row[3].split(",") if len(row) > 3 else []) if g]
            tokens[row[0]] = User(row[1], row[2] if len(row) > 2 else "", groups)
    return tokens


class TokenAuthority:
    """Signs and validates service-account tokens (RS256 JWTs with jti and bound objects)."""

    def __init__(self, sa_key, store, registry):
        self.key = sa_key
        self.pub = sa_key.public_key()
        der = self.pub.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:43]
        self.store = store
        self.registry = registry
        # (token, audiences) -> claims of a token whose signature, issuer and audience checked
        # out: those never change, so the RSA verification is done once per token. Expiry and
        # the bound objects are checked on every use, as before.
        self._verified = {}

    def _verify(self, token, want):
        """The token's claims once its signature, issuer, audience and times check out."""
        claims = self._verified.get((token, want))
        if claims is not None:
            now = time.time()
            if now >= claims["exp"]:
                raise ValueError("service account token has expired")
            if now < claims.get("nbf", 0):
                raise ValueError("invalid bearer token: The token is not yet valid (nbf)")
            return claims
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise ValueError(f"invalid bearer token: {e}")
        if header.get("alg") != "RS256":
            raise ValueError("invalid bearer token")
        try:
            claims = jwt.decode(token, self.pub, algorithms=["RS256"], audience=list(want),
                                issuer=ISSUER, options={"require": ["exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise ValueError("service account token has expired")
        except jwt.InvalidAudienceError:
            raise ValueError("token audiences is invalid for the target audiences")
        except jwt.PyJWTError as e:
            raise ValueError(f"invalid bearer token: {e}")
        if not isinstance(claims.get("exp"), (int, float)) or \
                not isinstance(claims.get("nbf", 0), (int, float)):
            raise ValueError("invalid bearer token: exp and nbf must be numbers")
        if len(self._verified) >= 4096:
            self._verified.pop(next(iter(self._verified)))
        self._verified[(token, want)] = claims
        return claims

    def mint(self, sa, audiences, expiration_seconds, bound=None):
        now = int(time.time())
        md = sa["metadata"]
        claims = {
            "aud": audiences or [DEFAULT_AUDIENCE],
            "exp": now + expiration_seconds,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "sub": f"system:serviceaccount:{md['namespace']}:{md['name']}",
            "kubernetes.io": {
                "namespace": md["namespace"],
                "serviceaccount": {"name": md["name"], "uid": md["uid"]},
            },
        }
        if bound is not None:
            claims["kubernetes.io"][bound["kind"].lower()] = {
                "name": bound["metadata"]["name"], "uid": bound["metadata"]["uid"]}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return token, claims

    def validate(self, token, audiences=None):
        """Returns (User, audiences) or raises ValueError with the reason."""
        want = audiences or [DEFAULT_AUDIENCE]
        claims = self._verify(token, tuple(want))
        k = claims.get("kubernetes.io") or {}
        ns = k.get("namespace")
        sa_ref = k.get("serviceaccount") or {}
        sa = self.store.get(self.registry.types[("", "serviceaccounts")], ns, sa_ref.get("name"))
        if sa is None or sa["metadata"]["uid"] != sa_ref.get("uid"):
            raise ValueError("service account token has been invalidated")
        if sa["metadata"].get("deletionTimestamp"):
            raise ValueError("service account token has been invalidated")
        for kind, plural in (("secret", "secrets"), ("pod", "pods")):
            ref = k.get(kind)
            if ref is None:
                continue
            obj = self.store.get(self.registry.types[("", plural)], ns, ref.get("name"))
            if obj is None or obj["metadata"]["uid"] != ref.get("uid"):
                raise ValueError("service account token has been invalidated")
            dts = obj["metadata"].get("deletionTimestamp")
            if dts and _ts_age(dts) > DELETION_GRACE:
                raise ValueError("service account token has been invalidated")
        name = sa["metadata"]["name"]
        user = User(f"system:serviceaccount:{ns}:{name}", sa["metadata"]["uid"],
                    ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"])
        extra = {}
        if "pod" in k:
            extra["authentication.kubernetes.io/pod-name"] = [k["pod"]["name"]]
            extra["authentication.kubernetes.io/pod-uid"] = [k["pod"]["uid"]]
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
        user.extra = extra
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else aud
        return user, [a for a in want if a in aud]


def _ts_age(ts):
    import datetime
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()


class Authenticator:
    def __init__(self, static_tokens, authority):
        self.static = static_tokens
        self.authority = authority

    def authenticate(self, auth_header, peercert):
        """Returns a User, ANONYMOUS when no credential was offered, or None when a credential
        was offered and is invalid (401)."""
        if auth_header:
            scheme, _, token = auth_header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            token = token.strip()
            user = self.static.get(token)
            if user is not None:
                return User(user.name, user.uid, list(user.groups) + ["system:authenticated"])
            if token.count(".") == 2:
                try:
                    u, _ = self.authority.validate(token)
                    return u
                except ValueError:
                    return None
            return None
        if peercert:
            subject = dict(x[0] for x in peercert.get("subject", ()))
            cn = subject.get("commonName")
            if cn:
                groups = [v for rdn in peercert.get("subject", ()) for (k, v) in rdn
                          if k == "organizationName"]
                return User(cn, "", groups + ["system:authenticated"])
        return ANONYMOUS
