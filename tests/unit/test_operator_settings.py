"""Kopf settings: everything the operator stores lives under the shoal.dev domain, and
replicas draw distinct peering priorities so exactly one of them acts."""

from __future__ import annotations

import kopf

from shoal_operator.handlers.lifecycle import configure


def test_storage_and_finalizer_are_named_under_shoal_dev() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.persistence.finalizer == "shoal.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "shoal.dev"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.diffbase_storage.prefix == "shoal.dev"
    assert settings.peering.name == "shoal-operator"


def test_each_replica_draws_its_own_peering_priority() -> None:
    priorities = set()
    for _ in range(20):
        settings = kopf.OperatorSettings()
        configure(settings)
        priorities.add(settings.peering.priority)
    assert len(priorities) == 20
    assert min(priorities) > 0
