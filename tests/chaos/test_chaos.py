"""A short chaos schedule in CI, on the session's cluster (2 coordinators, 2 streaming nodes,
3 Kafka brokers; scaled to 2 query nodes here, the checkers' collection loaded with
replica_number=2): every checker of `chaos_checkers.py` runs while
the scheduler SIGKILLs a streaming node, pauses one past its etcd lease (a partition of the
WAL owner when the seeded draw picks it), restarts the proxy as a rolling update does and
scales the query nodes 2 -> 3 -> 1 -> 2; then the auditor reads everything back. The session's
cluster has one proxy, so a proxy SIGKILL would be an outage by design (the 10-minute run uses
two on one port); it is left to `scripts/chaos.sh`. It runs after every other test of the session
(tests/conftest.py), since it breaks the cluster's processes.

Asserted: the auditor's verdict (no acknowledged write lost or duplicated, no read answered
wrongly, the two replicas agree), every checker served again after the last event, and a success floor of
`FLOOR_PCT` per checker. The floor is loose on purpose: a killed or paused streaming node can
fail calls for a while, and on a loaded 2-core CI machine that while is longer; the
issue's 98 % bar is for the 10-minute run (`scripts/chaos.sh`), whose report is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_run import run_chaos  # noqa: E402

pytestmark = pytest.mark.timeout(1500)
FLOOR_PCT = 50.0
PLAN = ["kill:streaming", "pause:streaming", "restart:proxy", "scale"]


def test_chaos_short_schedule(shoal_cluster, tmp_path: Path) -> None:
    result = run_chaos(shoal_cluster.uri, shoal_cluster.data_dir, seconds=120, seed=19, plan=PLAN, replicas=2,
                       interval_s=(3.0, 8.0))
    for e in result["events"]:
        print(f"{e['offset_s']:6.0f}s {e['kind']:8} {e['target']:18} {e['took_s']:5.1f}s {e['error'] or e['detail']}")
    for kind, c in result["checkers"].items():
        print(f"{kind:7} {c['requests']:5} requests, {c['success_pct']:6.2f} % ok, longest outage "
              f"{c['longest_outage_s']:.1f} s, longest gap {c['longest_gap_s']:.1f} s; {c['errors']}")
    print(result["audit"])
    assert [f"{e['kind']}:{e['target'].split('-')[0]}" for e in result["events"] if e["kind"] != "scale"] == PLAN[:3]
    assert not [e for e in result["events"] if e["error"]], result["events"]
    assert result["audit"]["ok"], result["audit"]  # with the replicas' agreement
    assert result["audit"]["replicas"]["checked"], result["audit"]["replicas"]
    for kind, c in result["checkers"].items():
        assert not c["still_failing"], (kind, c)
        assert c["success_pct"] >= FLOOR_PCT, (kind, c)
