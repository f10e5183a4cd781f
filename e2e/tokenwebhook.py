#!/usr/bin/python3
"""The real control plane's authenticator for bearer-token users declared by tests: the server
kube-apiserver's webhook token authentication calls (--authentication-token-webhook-config-file,
the TokenReview protocol), so that a test can make a user with a token at any time, as it does
on kubesim through its admin API (`Cluster.add_user`). A token file, kube-apiserver's other
source of token users, is read once at start.

    /usr/bin/python3 e2e/tokenwebhook.py DIR/pki/ --port N

DIR is the control plane's directory (e2e/realcluster.py). Users are lines of DIR/pki/token-users
(mode 0600), `<sha256 of the token, hex>,<name>,<uid>,<group>|<group>...`, appended by
`ControlPlane.add_token_user`; the file holds no token, only its hash, and is read again when it
changes. The server listens on 127.0.0.1 with a certificate of the cluster CA and answers only
the API server (a client certificate of the cluster CA whose common name is
`kube-apiserver-token-webhook`): a minted user cannot use it to probe tokens. A token it does not
know is answered `authenticated: false` with no error, as the API server expects of a webhook that
does not recognize a token (the API server then reports the other authenticators' errors).
"""

import argparse
import hashlib
import http.server
import json
import os
import signal
import ssl
import sys
import threading

CLIENT_NAME = "kube-apiserver-token-webhook"
USERS_FILE = "token-users"


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def user_line(token, name, uid, groups):
    """The line of the users file for a token user; refuses names that would break the format."""
    for field, value in [("name", name), ("uid", uid)] + [("group", g) for g in groups]:
        if not value or any(c in value for c in ",|\n"):
            raise ValueError(f"token user {field} {value!r}: must be non-empty and hold no ',', "
                             "'|' or newline")
    return f"{token_hash(token)},{name},{uid},{'|'.join(groups)}\n"


class Users:
    """The users file, read again whenever its size or modification time changes."""

    def __init__(self, path):
        self.path = path
        self._seen = None
        self._users = {}
        self._lock = threading.Lock()

    def lookup(self, token):
        with self._lock:
            try:
                st = os.stat(self.path)
                key = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                key = None
            if key != self._seen:
                self._users = {}
                if key is not None:
                    with open(self.path) as f:
                        for line in f:
                            parts = line.rstrip("\n").split(",")
                            if len(parts) == 4:
                                digest, name, uid, groups = parts
                                self._users[digest] = {
                                    "username": name, "uid": uid,
                                    "groups": [g for g in groups.split("|") if g]}
                self._seen = key
            return self._users.get(token_hash(token))


def handler_for(users):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # a client that stalls holds only its own thread, and not for long

        def setup(self):
            # The handshake in the connection's thread, not in the accepting one.
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
            super().setup()

        def log_message(self, fmt, *args):  # no request log: nothing secret, but noise
            pass

        def _answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            cert = self.connection.getpeercert() or {}
            names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            if names != [CLIENT_NAME]:
                self._answer(403, {"error": "only the API server may ask"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                review = json.loads(self.rfile.read(length))
                token = review["spec"]["token"]
                if not isinstance(token, str):
                    raise TypeError("spec.token is not a string")
            except (ValueError, KeyError, TypeError) as e:
                self._answer(400, {"error": f"not a TokenReview: {e}"})
                return
            user = users.lookup(token)
            status = {"authenticated": True, "user": user} if user else {"authenticated": False}
            self._answer(200, {"apiVersion": review.get("apiVersion", "authentication.k8s.io/v1"),
                               "kind": "TokenReview", "status": status})

    return Handler


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A connection that closes before or during its handshake (a readiness probe, a client
        # without the right certificate) is the client's business: one line, no traceback.
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            print(f"token webhook: connection from {client_address[0]}: {err}", flush=True)
            return
        super().handle_error(request, client_address)


def serve(pki, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(pki, "token-webhook.crt"),
                        os.path.join(pki, "token-webhook.key"))
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = Server(("127.0.0.1", port), handler_for(Users(os.path.join(pki, USERS_FILE))))
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"token webhook serving on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pki", help="the control plane's pki/ directory")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    serve(os.path.abspath(args.pki), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
