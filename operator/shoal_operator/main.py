"""Entry point: `kopf run -m shoal_operator.main --all-namespaces` (or `python -m shoal_operator`).

Importing this module registers every handler.
"""

from shoal_operator import handlers  # noqa: F401
