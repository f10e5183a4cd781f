"""kubesim: a single-process Kubernetes API emulator for tasklease's end-to-end tests.

Run from e2e/: /usr/bin/python3 -m kubesim --port N --kubeconfig-out FILE
See docs/kubesim.md for what it emulates and how faithfully.
"""
