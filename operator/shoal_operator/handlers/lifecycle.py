"""Operator start-up: Kopf settings under the `shoal.dev` domain, peering, metrics, probes.

Finalizer, progress and diff-base annotations are all named `shoal.dev/...`. Peering uses
the cluster-wide `ClusterKopfPeering` named `shoal-operator` (or the namespaced one when
the operator watches one namespace); every replica draws a random priority so exactly
one replica acts and the others stand by.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import kopf
from prometheus_client import start_http_server

from shoal_operator import constants as c
from shoal_operator.kube import Kube


def configure(settings: kopf.OperatorSettings) -> None:
    """Pure settings, also used by tests."""
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key="last-handled-configuration"
    )
    settings.peering.name = os.environ.get("SHOAL_OPERATOR_PEERING", c.PEERING_NAME)
    settings.peering.priority = random.SystemRandom().randint(1, 2**31 - 1)
    settings.peering.stealth = True
    # Only warnings become Kubernetes Events automatically (Kopf logs every timer pass at
    # INFO); handlers post the Events worth a human's attention themselves.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.networking.error_backoffs = [1, 2, 5, 10]


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    configure(settings)
    memo.kube = Kube()
    port = int(os.environ.get("SHOAL_OPERATOR_METRICS_PORT", "8000"))
    if port:
        start_http_server(port)
        logger.info(f"metrics on :{port}/metrics")


@kopf.on.probe(id="api")
def api_reachable(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness: the API server still answers this operator's credentials."""
    kube: Kube = memo.kube
    kube.api.call_api("/version", "GET", auth_settings=["BearerToken"], _preload_content=False)
    return True
