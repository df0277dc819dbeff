"""`python -m shoal_operator [kopf run flags]`: runs the operator with the liveness probe on."""

from __future__ import annotations

import sys

from kopf.cli import main as kopf_main


def run(argv: list[str]) -> None:
    args = ["run", "-m", "shoal_operator.main", "--liveness=http://0.0.0.0:8080/healthz", *argv]
    if not any(a in ("-A", "--all-namespaces") or a.startswith(("-n", "--namespace")) for a in argv):
        args.append("--all-namespaces")
    sys.argv = ["kopf", *args]
    kopf_main()


if __name__ == "__main__":
    run(sys.argv[1:])
