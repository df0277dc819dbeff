"""Kopf handlers, one module per resource kind; importing the package registers them."""

from shoal_operator.handlers import backup, cluster, collection, lifecycle  # noqa: F401
