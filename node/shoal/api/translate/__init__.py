"""Proto ↔ domain translation, one module per message family.

Pure functions only: they turn `pymilvus.grpc_gen` messages into the dataclasses of
`shoal.engine.requests` / `shoal.schema` and back. No engine calls, no I/O; the servicer
(`shoal.api.servicer`) is the only caller.
"""
