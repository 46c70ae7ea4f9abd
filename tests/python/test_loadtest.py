"""The load test: many engines at their control rate in Rust threads; sanity of its figures, the
capacity search, errors and the command line."""

import pytest

import intent_engine as ie
from intent_engine import _core
from intent_engine.__main__ import main


def test_short_run_is_sane():
    r = _core.load_test(4, 0.5, threads=2, deadline_ms=1000.0)
    assert r["engines"] == 4 and r["threads"] == 2 and r["rate_hz"] == 100.0
    # 4 engines x 100 Hz x 0.5 s
    assert 150 <= r["released"] <= 205, r
    assert 0 < r["decisions"] <= r["released"]
    # with a 1 s deadline only releases never served can miss
    assert r["missed"] == r["released"] - r["decisions"]
    assert r["target_per_second"] == 400.0
    assert 0 < r["decisions_per_second"] <= 1.1 * r["target_per_second"]
    lat, comp = r["latency_us"], r["compute_us"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert 0 < comp["p50"] <= comp["max"]
    # latency after release includes the step itself
    assert lat["p50"] >= 0.5 * comp["p50"]


def test_rate_and_impossible_deadline():
    r = _core.load_test(2, 0.3, rate_hz=20.0, threads=1, deadline_ms=1e-6)
    assert r["rate_hz"] == 20.0 and 8 <= r["released"] <= 14
    assert r["missed"] == r["released"] and r["missed_fraction"] == 1.0
    c = _core.load_capacity(0.2, max_engines=8, deadline_ms=1e-6, threads=1)
    assert c["engines"] == 0 and len(c["trials"]) == 1


def test_capacity_search_is_monotone_bisection():
    c = _core.load_capacity(0.2, max_engines=3, rate_hz=10.0, deadline_ms=1000.0, threads=1)
    # an easy load: every trial passes, the search stops at max_engines
    assert c["engines"] == 3
    assert [t["engines"] for t in c["trials"]] == [1, 2, 3]


@pytest.mark.parametrize("kw", [dict(engines=0, seconds=1.0), dict(engines=1, seconds=0.0),
                                dict(engines=1, seconds=1.0, deadline_ms=-1.0),
                                dict(engines=1, seconds=1.0, rate_hz=float("nan")),
                                dict(engines=1, seconds=1.0, threads=-1)])
def test_bad_input(kw):
    with pytest.raises(ie.InvalidInputError):
        _core.load_test(**kw)


def test_cli(capsys, tmp_path):
    out = tmp_path / "lt.json"
    assert main(["loadtest", "--engines", "2", "--seconds", "0.3", "--threads", "1", "--max-engines", "2",
                 "--search-seconds", "0.2", "--deadline-ms", "1000", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decisions/s" in text and "capacity: at least 2 engines" in text
    assert out.read_text().startswith("{")
