"""The rolling-upgrade plan: order, waiting for each rollout, resuming, stalling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shoal_operator.upgrade import (
    UPGRADE_ORDER,
    Policy,
    Record,
    Requests,
    Rollout,
    Step,
    decide,
    error_ratio,
    plan,
)

OLD, NEW = "shoal/shoal-node:0.1.0", "shoal/shoal-node:0.2.0"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COMPONENTS = ("coord", "proxy", "streaming", "query", "index")


def done(image: str, replicas: int = 2) -> Rollout:
    return Rollout(image, 3, 3, replicas, replicas, replicas, replicas, (image,) * replicas)


def rolling(image: str, pods: tuple[str, ...]) -> Rollout:
    return Rollout(image, 4, 4, 2, 3, 1, 2, pods)


def test_order_is_coord_streaming_query_index_proxy() -> None:
    assert UPGRADE_ORDER == ("coord", "streaming", "query", "index", "proxy")


def test_first_step_moves_only_coord() -> None:
    live = {c: done(OLD) for c in COMPONENTS}
    p = plan(COMPONENTS, NEW, live, None, NOW, 600)
    assert p.images == {"coord": NEW, "streaming": OLD, "query": OLD, "index": OLD, "proxy": OLD}
    assert p.step == Step("coord", NOW.isoformat())
    assert p.upgrading and not p.stalled


def test_next_component_waits_until_every_pod_runs_the_target() -> None:
    live = {c: done(OLD) for c in COMPONENTS}
    # coord's template is new and its replicas counters look finished, but one pod still runs OLD
    live["coord"] = Rollout(NEW, 4, 4, 2, 2, 2, 2, (NEW, OLD))
    p = plan(COMPONENTS, NEW, live, None, NOW, 600)
    assert p.step is not None and p.step.component == "coord"
    assert p.images["streaming"] == OLD


def test_next_component_waits_for_observed_generation() -> None:
    live = {c: done(OLD) for c in COMPONENTS}
    live["coord"] = Rollout(NEW, 5, 4, 2, 2, 2, 2, (NEW, NEW))
    assert plan(COMPONENTS, NEW, live, None, NOW, 600).images["streaming"] == OLD


def test_steps_advance_in_order_as_rollouts_finish() -> None:
    live = {c: done(OLD) for c in COMPONENTS}
    seen = []
    for _ in COMPONENTS:
        p = plan(COMPONENTS, NEW, live, None, NOW, 600)
        assert p.step is not None
        seen.append(p.step.component)
        live[p.step.component] = done(NEW)  # the rollout completes
    assert seen == list(UPGRADE_ORDER)
    final = plan(COMPONENTS, NEW, live, None, NOW, 600)
    assert final.step is None and not final.upgrading and set(final.images.values()) == {NEW}


def test_resumes_mid_upgrade_from_live_state() -> None:
    live = {"coord": done(NEW), "streaming": done(NEW), "query": rolling(NEW, (NEW, OLD)),
            "index": done(OLD), "proxy": done(OLD)}
    p = plan(COMPONENTS, NEW, live, Step("query", (NOW - timedelta(seconds=30)).isoformat()), NOW, 600)
    assert p.step is not None and p.step.component == "query"
    assert p.step.started_at == (NOW - timedelta(seconds=30)).isoformat()  # the stall clock survives
    assert (p.images["index"], p.images["proxy"]) == (OLD, OLD)


def test_a_step_past_its_timeout_is_stalled_with_a_reason() -> None:
    live = {c: done(NEW) for c in COMPONENTS}
    live["query"] = rolling(NEW, (NEW, OLD))
    live["index"], live["proxy"] = done(OLD), done(OLD)
    started = (NOW - timedelta(seconds=601)).isoformat()
    p = plan(COMPONENTS, NEW, live, Step("query", started), NOW, 600)
    assert p.stalled
    assert "query did not roll out" in p.message and "600s" in p.message
    assert p.images["index"] == OLD  # a stalled step never lets later ones move


def test_fresh_deploy_gives_everything_the_target_at_once() -> None:
    p = plan(COMPONENTS, NEW, dict.fromkeys(COMPONENTS), None, NOW, 600)
    assert set(p.images.values()) == {NEW}
    assert not p.upgrading


def test_standalone_has_one_step() -> None:
    p = plan(("standalone",), NEW, {"standalone": done(OLD, 1)}, None, NOW, 600)
    assert p.images == {"standalone": NEW} and p.upgrading


# ---- decide: strategy, canary, rollback, history ---------------------------------------
def one(image: str) -> Rollout:
    return done(image, replicas=1)


def never_ready(image: str) -> Rollout:
    return Rollout(image, 1, 1, 1, 1, 1, 0, (image,))


CANARY = Policy(strategy="canary", pause_seconds=30, max_error_ratio=0.1, rollback_on_failure=True,
                step_timeout_seconds=60)
ROLLING = Policy(step_timeout_seconds=60)
ALL_OLD = {c: done(OLD) for c in COMPONENTS}


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_rolling_is_the_default_and_reports_the_version_only_at_the_end() -> None:
    d = decide(COMPONENTS, NEW, ALL_OLD, {}, None, None, OLD, ROLLING, None, NOW)
    assert d.record is not None and d.record.phase == "Rolling" and d.record.from_image == OLD
    assert d.canaries == {} and d.images["coord"] == NEW and d.images["proxy"] == OLD
    assert d.version is None  # mixed: keep reporting OLD
    live = {c: done(NEW) for c in COMPONENTS}
    end = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, ROLLING, None, later(5))
    assert end.record is None and end.version == NEW
    assert [(e["from"], e["to"], e["strategy"], e["outcome"]) for e in end.finished] == [
        (OLD, NEW, "rolling", "Succeeded")]


def test_a_fresh_deploy_is_no_upgrade() -> None:
    d = decide(COMPONENTS, NEW, dict.fromkeys(COMPONENTS), {}, None, None, None, CANARY, None, NOW)
    assert d.record is None and d.canaries == {} and set(d.images.values()) == {NEW}
    assert d.version is None and d.finished == []


def test_canary_first_moves_one_pod_per_role_and_holds_the_rest() -> None:
    d = decide(COMPONENTS, NEW, ALL_OLD, {}, None, None, OLD, CANARY, None, NOW)
    assert d.record is not None and d.record.phase == "Canary"
    assert d.canaries == dict.fromkeys(COMPONENTS, NEW)
    assert set(d.images.values()) == {OLD} and d.plan.upgrading and not d.plan.stalled


def test_a_healthy_canary_is_held_for_pause_seconds_then_the_roll_starts() -> None:
    canaries = {c: one(NEW) for c in COMPONENTS}
    d = decide(COMPONENTS, NEW, ALL_OLD, {}, None, None, OLD, CANARY, None, NOW)
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, Requests(100, 0), later(10))
    assert d.record is not None and d.record.phase == "Canary" and d.record.canary_ready_at == later(10).isoformat()
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, Requests(200, 1), later(30))
    assert d.record is not None and d.record.phase == "Canary"  # 20 s of 30
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, Requests(300, 2), later(41))
    assert d.record is not None and d.record.phase == "Rolling" and d.canaries == {}
    assert d.images["coord"] == NEW and d.images["streaming"] == OLD


def test_a_canary_never_ready_rolls_back_in_reverse_order() -> None:
    canaries = {c: never_ready(NEW) for c in COMPONENTS}
    d = decide(COMPONENTS, NEW, ALL_OLD, {}, None, None, OLD, CANARY, None, NOW)
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, None, later(30))
    assert d.record is not None and d.record.phase == "Canary" and not d.plan.stalled
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, None, later(61))
    # Nothing but the canaries moved: the rollback ends in the same pass.
    assert d.record is None and d.canaries == {} and set(d.images.values()) == {OLD}
    assert d.version == OLD and d.steering == OLD and "rolled back" in d.held
    (entry,) = d.finished
    assert entry["outcome"] == "RolledBack" and entry["strategy"] == "canary"
    assert "canary coord, streaming, query, index, proxy not Ready" in entry["reason"] and "60s" in entry["reason"]
    # The spec still names NEW: it is held, not retried.
    held = decide(COMPONENTS, NEW, ALL_OLD, {}, None, entry, OLD, CANARY, None, later(70))
    assert held.record is None and set(held.images.values()) == {OLD} and held.canaries == {}
    assert "rolled back" in held.held and not held.plan.upgrading
    # Another version starts again.
    again = decide(COMPONENTS, "shoal/shoal-node:0.3.0", ALL_OLD, {}, None, entry, OLD, CANARY, None, later(80))
    assert again.record is not None and again.record.phase == "Canary"


def test_an_erroring_canary_rolls_back() -> None:
    canaries = {c: one(NEW) for c in COMPONENTS}
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, None, None, OLD, CANARY, Requests(10, 0), NOW)
    d = decide(COMPONENTS, NEW, ALL_OLD, canaries, d.record, None, OLD, CANARY, Requests(110, 30), later(5))
    assert d.record is None and d.finished[0]["outcome"] == "RolledBack"
    assert "error ratio 0.300 above 0.1" in d.finished[0]["reason"]


def test_a_canary_that_loses_readiness_fails() -> None:
    ready = {c: one(NEW) for c in COMPONENTS}
    d = decide(COMPONENTS, NEW, ALL_OLD, ready, None, None, OLD, CANARY, None, NOW)
    lost = {**ready, "query": never_ready(NEW)}
    d = decide(COMPONENTS, NEW, ALL_OLD, lost, d.record, None, OLD, CANARY, None, later(5))
    assert d.finished[0]["outcome"] == "RolledBack" and "query lost readiness" in d.finished[0]["reason"]


def test_a_stalled_step_rolls_back_every_role_that_moved_last_first() -> None:
    policy = Policy(rollback_on_failure=True, step_timeout_seconds=60)
    live = {**ALL_OLD, "coord": done(NEW), "streaming": done(NEW), "query": rolling(NEW, (NEW, OLD, OLD))}
    d = decide(COMPONENTS, NEW, live, {}, None, None, OLD, policy, None, NOW)
    assert d.record is not None and d.record.step == Step("query", NOW.isoformat())
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, policy, None, later(61))
    assert d.record is not None and d.record.phase == "RollingBack" and d.steering == OLD
    assert d.record.step is not None and d.record.step.component == "query"  # proxy, index are already OLD
    assert d.images["query"] == OLD and d.images["streaming"] == NEW and d.images["coord"] == NEW
    live["query"] = done(OLD)
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, policy, None, later(70))
    assert d.record is not None and d.record.step is not None and d.record.step.component == "streaming"
    assert d.images["streaming"] == OLD and d.images["coord"] == NEW
    live["streaming"] = done(OLD)
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, policy, None, later(80))
    assert d.images["coord"] == OLD
    live["coord"] = done(OLD)
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, policy, None, later(90))
    assert d.record is None and d.version == OLD
    assert d.finished[0]["outcome"] == "RolledBack" and "query did not roll out" in d.finished[0]["reason"]


def test_without_rollback_a_stall_is_recorded_once_and_held() -> None:
    live = {**ALL_OLD, "coord": rolling(NEW, (NEW, OLD, OLD))}
    d = decide(COMPONENTS, NEW, live, {}, None, None, OLD, ROLLING, None, NOW)
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, ROLLING, None, later(61))
    assert d.plan.stalled and [e["outcome"] for e in d.finished] == ["Stalled"]
    assert d.images["coord"] == NEW and d.images["streaming"] == OLD
    d = decide(COMPONENTS, NEW, live, {}, d.record, None, OLD, ROLLING, None, later(75))
    assert d.plan.stalled and d.finished == []


def test_the_record_survives_status_round_trips() -> None:
    d = decide(COMPONENTS, NEW, ALL_OLD, {c: one(NEW) for c in COMPONENTS}, None, None, OLD, CANARY,
               Requests(5, 1), NOW)
    assert d.record is not None
    assert Record.from_status(d.record.to_status()) == d.record
    assert Record.from_status({"component": "coord", "startedAt": NOW.isoformat()}) is None


def test_error_ratio_needs_traffic() -> None:
    assert error_ratio(None, Requests(10, 1)) is None
    assert error_ratio(Requests(10, 1), Requests(10, 1)) is None
    assert error_ratio(Requests(10, 1), Requests(30, 3)) == 0.1


def test_the_gap_of_a_recreate_is_not_the_end_of_the_upgrade() -> None:
    """Standalone (Recreate): the old pod is gone, the new one not there yet. Even with the
    record lost (a pass on a stale status), the last whole version says it is in flight."""
    gap = {"standalone": Rollout(NEW, 5, 5, 1, 0, 0, 0, ())}
    d = decide(("standalone",), NEW, gap, {}, None, None, OLD, ROLLING, None, NOW)
    assert d.record is not None and d.record.from_image == OLD and d.plan.upgrading and d.version is None
    d = decide(("standalone",), NEW, {"standalone": one(NEW)}, {}, d.record, None, OLD, ROLLING, None, later(30))
    assert d.version == NEW and [e["outcome"] for e in d.finished] == ["Succeeded"]
