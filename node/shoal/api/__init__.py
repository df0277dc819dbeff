"""The api layer: gRPC `MilvusService` (servicer + handler families in `rpc/`), proto ↔
domain translation (`translate/`), request checks (`validate`), metrics and the
management HTTP port. It calls only `shoal.engine` (through `EngineAPI`) and the leaf
modules `shoal.errors` / `shoal.schema`; nothing below imports it.
"""
