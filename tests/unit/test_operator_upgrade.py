"""The rolling-upgrade plan: order, waiting for each rollout, resuming, stalling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shoal_operator.upgrade import UPGRADE_ORDER, Rollout, Step, plan

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
