"""Pure builders: a MilvusCluster spec in, Kubernetes objects (plain dicts) out.

No I/O, no clock, no randomness: the same input always gives the same objects, so an
operator upgrade never changes a pod template and never restarts pods. `cluster` wires
the others together; handlers apply what it returns.
"""
