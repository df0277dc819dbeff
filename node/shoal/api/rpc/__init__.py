"""MilvusService handlers, one module per family of RPCs, combined by `shoal.api.servicer`."""
