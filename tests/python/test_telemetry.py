"""Engine telemetry from Python: the dict, the Prometheus text, and /metrics scraped over
loopback during a demo run (parsed by the real Prometheus client library)."""

import json
import math
import threading
import urllib.error
import urllib.request

import prometheus_client.parser as prom_parser  # the real client library (CI installs it)
import pytest

import intent_engine as ie

STAGES = {"belief", "prediction", "constraints", "solve", "safety", "total"}


def person_track(scn):
    """The default scenario's person, walked in Python: straight legs at the scenario's speed
    from the start to each leg's goal (pausing as listed), None during the dropouts."""
    h = scn["human"]
    rate, speed = h["rate_hz"], h["speed"]
    goals = scn["goals"]
    pos = list(h["start"])
    out = []
    for leg in h["legs"]:
        g = goals[leg["goal"]]
        while math.dist(pos, g) > speed / rate:
            d = math.dist(pos, g)
            pos = [pos[k] + (g[k] - pos[k]) * speed / rate / d for k in range(2)]
            out.append(list(pos))
        out.extend([list(pos)] * int(leg["pause_s"] * rate))
    n = int(h["duration_s"] * rate)
    out = (out + [list(pos)] * n)[:n]
    for a, b in h["dropouts"]:
        for i in range(int(a * rate), int(b * rate)):
            out[i] = None
    return out, 1.0 / rate


def demo_steps(engine, scn, on_step=None):
    """Steps the engine through the default scenario with a double-integrator robot shuttling
    between the scenario's stations. Returns the number of steps."""
    track, dt = person_track(scn)
    rob = scn["robot"]
    x = list(rob["state"])
    stations, target = rob["waypoints"], 0
    for i, obs in enumerate(track):
        d = engine.step(obs, x, (i + 1) * dt)
        a = d.command
        x = [x[0] + dt * x[2], x[1] + dt * x[3], x[2] + dt * a[0], x[3] + dt * a[1]]
        if math.dist(x[:2], stations[target]) < rob["tolerance"]:
            target = 1 - target
            engine.set_robot_goal(stations[target])
        if on_step is not None:
            on_step(i + 1)
    return len(track)


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def families(text):
    return {f.name: f for f in prom_parser.text_string_to_metric_families(text)}


def check_stage_histograms(text, steps):
    fams = families(text)
    hist = fams["intent_engine_stage_seconds"]
    assert hist.type == "histogram" and hist.documentation
    by_stage = {}
    for s in hist.samples:
        by_stage.setdefault(s.labels["stage"], []).append(s)
    assert set(by_stage) == STAGES
    counts = {}
    for stage, samples in by_stage.items():
        buckets = sorted(
            ((float(s.labels["le"]), s.value) for s in samples if s.name.endswith("_bucket")),
            key=lambda b: b[0],
        )
        assert len(buckets) >= 10 and buckets[-1][0] == math.inf
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), (stage, buckets)
        count = next(s.value for s in samples if s.name.endswith("_count"))
        total = next(s.value for s in samples if s.name.endswith("_sum"))
        assert buckets[-1][1] == count and total >= 0
        counts[stage] = count
    assert counts["total"] == steps
    assert all(c <= steps for c in counts.values())
    summ = fams["intent_engine_stage_latency_seconds"]
    assert summ.type == "summary"
    q = {(s.labels["stage"], s.labels.get("quantile")): s.value for s in summ.samples}
    if steps:
        assert 0 < q[("total", "0.5")] <= q[("total", "0.95")] <= q[("total", "0.99")]
    steps_family = next(f for f in fams.values() if f.type == "counter" and any(
        s.name == "intent_engine_steps_total" for s in f.samples))
    assert steps_family.samples[0].value == steps
    return counts


def test_metrics_scraped_over_loopback_during_the_demo_run():
    scn = json.loads(ie.default_scenario_json())
    engine = ie.IntentEngine.default()
    with engine.serve_metrics(0) as server:
        assert server.port > 0 and server.running
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        # A scraper thread reads while this thread steps the engine; the steps it sees only grow.
        # A step that meets a reader holding the histograms is parked and recorded at the next
        # step (the control loop never waits for a scrape), so exact counts are checked only
        # after a step taken with the scraper paused (`gate`) or stopped.
        seen, errors, stop = [], [], threading.Event()
        gate, scraped, gated = threading.Lock(), threading.Event(), []

        def scraper():
            try:
                while not stop.is_set():
                    with gate:
                        fams = families(scrape(server.url))
                    hist = fams["intent_engine_stage_seconds"]
                    seen.append(next(s.value for s in hist.samples
                                     if s.name.endswith("_count") and s.labels["stage"] == "total"))
                    scraped.set()
                    stop.wait(0.02)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        t = threading.Thread(target=scraper)
        t.start()
        mid = {}

        def on_step(i):
            if i in (300, 900):  # at least two scrapes while stepping, however fast the steps
                scraped.clear()
                assert scraped.wait(10), errors
            if i == 599:
                gate.acquire()  # step 600 runs with no reader
                gated.append(True)
            if i == 600:  # a scrape from the stepping thread itself, mid-run
                mid["counts"] = check_stage_histograms(scrape(server.url), 600)
                gated.pop()
                gate.release()
            if i == len(track) - 1:  # the last step runs with no reader
                stop.set()
                t.join()

        track, _ = person_track(scn)
        try:
            steps = demo_steps(engine, scn, on_step)
        finally:
            stop.set()
            if gated:  # only a gate this thread took (the scraper may hold it otherwise)
                gate.release()
            t.join()
        assert not errors, errors
        assert len(seen) >= 2 and all(a <= b for a, b in zip(seen, seen[1:])), seen
        assert mid["counts"]["total"] == 600
        counts = check_stage_histograms(scrape(server.url), steps)
        assert steps == 1200
        # Stages run in order, so their counts never increase along the pipeline.
        order = ["belief", "prediction", "constraints", "solve", "safety"]
        assert all(counts[a] >= counts[b] for a, b in zip(order, order[1:])), counts
        tel = engine.telemetry()
        assert tel["steps"] == steps
        assert tel["fresh"] + sum(tel["fallbacks"].values()) == steps
        assert tel["missing_observations"] == 40  # the 0.4 s dropout at 100 Hz
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=10)
    assert not server.running
    server.stop()  # idempotent


def test_telemetry_dict_and_prometheus_text():
    e = ie.IntentEngine([[5.0, 3.2], [5.2, 0.8]], workspace=(0.0, 6.0, 0.0, 4.0), n_particles=200,
                        robot_goal=[1.0, 1.0], belief_budget=1e-9, prediction_budget=1.0,
                        solve_budget=1.0, step_budget=2.0)
    for i in range(1, 21):
        e.step([0.5 + 0.01 * i, 2.5], [3.0, 2.0, 0.0, 0.0], 0.01 * i)
    e.step(None, [float("nan"), 0.0, 0.0, 0.0], 1.0)
    t = e.telemetry()
    assert set(t) == {
        "enabled", "steps", "fresh", "stages", "fallbacks", "overruns", "solver_status",
        "solver_iterations", "hot_started_solves", "observations", "missing_observations",
        "resamplings", "reinitialisations", "speed_limited", "keepout_normals_reused",
        "keepout_normals_rebuilt", "gp_jitter_escalations", "gp_duplicate_jitter", "gp_refactors",
        "dropped_samples", "step_allocations",
    }
    assert t["enabled"] is True and t["steps"] == 21 and t["fresh"] == 0
    assert t["fallbacks"]["overrun"] == 20 and t["fallbacks"]["invalid-robot-state"] == 1
    assert t["overruns"]["belief"] == 20 and sum(t["overruns"].values()) == 20
    assert set(t["stages"]) == STAGES
    total = t["stages"]["total"]
    assert set(total) == {"count", "sum", "mean", "min", "p50", "p95", "p99", "max", "buckets"}
    assert total["count"] == 21 and t["stages"]["belief"]["count"] == 20
    assert t["stages"]["solve"]["count"] == 0
    assert 0 < total["min"] <= total["p50"] <= total["p95"] <= total["p99"] <= total["max"]
    assert total["buckets"][-1] == (math.inf, 21)
    assert t["step_allocations"] is None  # no counting allocator in the extension module

    text = ie.prometheus_text(e)
    assert isinstance(text, str) and text.startswith("# HELP intent_engine_")
    fams = families(text)
    assert all(name.startswith("intent_engine_") for name in fams)
    assert all(f.documentation for f in fams.values())
    fb = {s.labels["reason"]: s.value for s in fams["intent_engine_fallbacks"].samples}
    assert fb["overrun"] == 20 and fb["invalid-robot-state"] == 1
    check_stage_histograms(text, 21)

    off = ie.IntentEngine([[5.0, 3.2]], workspace=(0.0, 6.0, 0.0, 4.0), n_particles=100,
                          telemetry=False)
    for i in range(1, 6):
        off.step([1.0, 1.0], [3.0, 2.0, 0.0, 0.0], 0.01 * i)
    t = off.telemetry()
    assert t["enabled"] is False and t["steps"] == 0 and t["stages"]["total"]["count"] == 0
    assert "\nintent_engine_telemetry_enabled 0\n" in ie.prometheus_text(off)
    off.set_telemetry(True)
    off.step([1.0, 1.0], [3.0, 2.0, 0.0, 0.0], 1.0)
    assert off.telemetry()["steps"] == 1


def test_serve_metrics_bad_ports():
    e = ie.IntentEngine([[5.0, 3.2]], workspace=(0.0, 6.0, 0.0, 4.0), n_particles=100)
    with pytest.raises(ie.InvalidInputError, match="port"):
        e.serve_metrics(70000)
    with pytest.raises(ie.InvalidInputError, match="port"):
        e.serve_metrics(-1)
    a = e.serve_metrics()
    try:
        with pytest.raises(ie.InvalidInputError, match="cannot bind 127.0.0.1"):
            e.serve_metrics(a.port)
        assert "MetricsServer(url='http://127.0.0.1:" in repr(a)
    finally:
        a.stop()
    assert not a.running
