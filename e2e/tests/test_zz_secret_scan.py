"""No secret material in anything the binaries wrote during the session (issue 6 acceptance):
every log and evidence file under the session's artifacts directory (e2e/binaries.py puts each
binary's log there, with links to its evidence files) and the logs of every kubesim of the
session (the shared one and those modules started for themselves) are searched for tokens (JWTs,
and the actual token values the session could obtain from any of those kubesims), private keys
and certificate bodies (PEM armour, base64 DER). Named test_zz_ so that pytest runs it after every
other module; it refuses to pass when there was little to look at."""

import os
import re
import sys

from binaries import ARTIFACTS_DIR
from harness import Cluster

PATTERNS = {
    "JWT": re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "PEM armour": re.compile(rb"-----BEGIN [A-Z0-9 ]+-----"),
    # A DER SEQUENCE with a two-byte length, base64-encoded: every certificate and key body.
    "base64 DER": re.compile(rb"MII[A-Za-z0-9+/]{60,}"),
}
MIN_FILES = 4


def files_to_scan(cluster):
    found = []
    for root, _, names in os.walk(ARTIFACTS_DIR, followlinks=True):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p):  # a dangling link (its test's directory is gone) is no file
                found.append(p)
    for workdir in [cluster.workdir] + [w for w, _ in Cluster.stopped]:
        kubesim_log = os.path.join(workdir, "kubesim.log")
        if os.path.isfile(kubesim_log):
            found.append(kubesim_log)
    return found


def known_secrets(cluster):
    """Secret values the session can obtain: the tokens tests recorded, and the admin token and
    every token, key and certificate in the Secrets of this cluster and of every kubesim the
    session has stopped (as they were when it stopped)."""
    values = set(getattr(sys.modules.get("test_cli"), "OBSERVED_SECRETS", []))
    values.update(cluster.secret_values())
    for _, held in Cluster.stopped:
        values.update(held)
    return {v.encode() for v in values if len(v) >= 16}


def secret_lines(value):
    """A PEM's body lines (64 base64 characters each) and the value itself: a log that quotes
    a PEM with escaped newlines still contains each line."""
    text = value.decode(errors="replace")
    if "-----BEGIN" not in text:
        return [value]
    return [line.encode() for line in text.splitlines()
            if line and not line.startswith("-----") and len(line) >= 40]


def test_no_log_or_evidence_file_holds_a_token_key_or_certificate(cluster):
    files = files_to_scan(cluster)
    evidence = [f for f in files if f.endswith(".jsonl") and os.path.getsize(f) > 0]
    logs = [f for f in files if f.endswith(".log") and os.path.getsize(f) > 0]
    assert len(files) >= MIN_FILES and evidence and logs, (
        f"only {len(files)} files under {ARTIFACTS_DIR} ({len(evidence)} evidence, {len(logs)} "
        f"logs): run this after the rest of the suite, e.g. pytest tests/test_cli.py {__file__}")
    secrets = known_secrets(cluster)
    assert secrets, "no secret values to look for: the admin token at least should be known"
    needles = [n for s in secrets for n in secret_lines(s)]

    found = []
    scanned = 0
    for path in files:
        data = open(path, "rb").read()
        scanned += len(data)
        for name, pattern in PATTERNS.items():
            m = pattern.search(data)
            if m:
                found.append(f"{path}: {name} at byte {m.start()}")
        for n in needles:
            if n in data:
                found.append(f"{path}: a known secret value (starting {n[:6]!r}...)")
    assert not found, "secret material in logs or evidence:\n" + "\n".join(found)
    assert scanned > 1000, f"scanned only {scanned} bytes"
