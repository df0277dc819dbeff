"""`python -m shoal_operator [kopf run flags]`: runs the operator with the liveness probe on.

Liveness listens on SHOAL_OPERATOR_LIVENESS (default http://0.0.0.0:8080/healthz); all
namespaces are watched unless `--namespace` is given.
"""

from __future__ import annotations

import os
import sys

from kopf.cli import main as kopf_main


def run(argv: list[str]) -> None:
    liveness = os.environ.get("SHOAL_OPERATOR_LIVENESS", "http://0.0.0.0:8080/healthz")
    args = ["run", "-m", "shoal_operator.main", f"--liveness={liveness}", *argv]
    if not any(a in ("-A", "--all-namespaces") or a.startswith(("-n", "--namespace")) for a in argv):
        args.append("--all-namespaces")
    sys.argv = ["kopf", *args]
    kopf_main()


if __name__ == "__main__":
    run(sys.argv[1:])
