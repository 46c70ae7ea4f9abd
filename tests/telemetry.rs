//! Engine telemetry: the stage histograms agree with the decisions' own timings, counters count
//! the events that happened (forced overruns and fallbacks included), telemetry off records
//! nothing, and `/metrics` serves the same numbers over loopback while the engine steps.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use intent_engine::belief::Goal;
use intent_engine::intent::telemetry::{BUCKET_BOUNDS, STAGES};
use intent_engine::intent::{EngineConfig, IntentEngine, Stage, TelemetrySnapshot, Workspace};
use intent_engine::mpc::SolveStatus;

fn config() -> EngineConfig {
    let mut cfg = EngineConfig::new(
        vec![Goal::point(5.0, 3.2), Goal::point(5.2, 0.8)],
        Workspace {
            x_min: 0.0,
            x_max: 6.0,
            y_min: 0.0,
            y_max: 4.0,
        },
    );
    cfg.human.n_particles = 200;
    // Budgets an unoptimised build meets (overruns are forced explicitly below).
    let t = &mut cfg.timing;
    t.belief_budget = Duration::from_secs(1);
    t.prediction_budget = Duration::from_secs(1);
    t.solve_budget = Duration::from_secs(1);
    t.step_budget = Duration::from_secs(4);
    cfg
}

/// Steps a person walking right past a robot; every 5th step has no observation. Returns the
/// per-step total latencies.
fn walk(e: &mut IntentEngine, steps: usize, t0: f64) -> Vec<Duration> {
    let mut x = [3.0, 2.0, 0.0, 0.0];
    let mut totals = Vec::new();
    for i in 0..steps {
        let t = t0 + 0.01 * (i + 1) as f64;
        let obs = (i % 5 != 4).then_some([0.5 + 0.012 * i as f64, 2.5]);
        let d = e.step(obs, &x, t);
        totals.push(d.timings.total);
        let cmd = [d.command[0], d.command[1]];
        for k in 0..2 {
            x[k] += 0.01 * x[k + 2];
            x[k + 2] += 0.01 * cmd[k];
        }
    }
    totals
}

fn counter(s: &TelemetrySnapshot, status: SolveStatus) -> u64 {
    s.solver_status
        .iter()
        .find(|x| x.0 == status)
        .map_or(0, |x| x.1)
}

#[test]
fn histograms_and_counters_follow_the_steps() {
    let mut e = IntentEngine::new(config()).unwrap();
    let totals = walk(&mut e, 200, 0.0);
    let s = e.telemetry();
    let c = e.counters();
    assert!(s.enabled);
    assert_eq!(s.steps, 200);
    assert_eq!(s.observations, c.observations);
    assert_eq!(s.missing_observations, 40);
    assert_eq!(s.resamplings, c.resamplings);
    assert_eq!(s.reinitialisations, c.reinitialisations);
    assert_eq!(s.fallbacks_total(), c.fallbacks);
    assert_eq!(s.fresh + s.fallbacks_total(), 200);
    // Every step that got to the solver is counted by status, with a hot start from the 2nd on.
    let solves: u64 = s.solver_status.iter().map(|x| x.1).sum();
    assert_eq!(s.stage(Stage::Solve).count, solves);
    assert!(
        counter(&s, SolveStatus::Solved) > 150,
        "{:?}",
        s.solver_status
    );
    assert!(s.hot_started_solves >= counter(&s, SolveStatus::Solved) - 1);
    assert!(s.solver_iterations > 0);
    // With a person present the keep-out rows are linearised every step: reused or rebuilt.
    assert!(s.keepout_normals_reused + s.keepout_normals_rebuilt > 0);
    assert!(s.keepout_normals_reused > 0, "the normal cache never hit");

    let total = s.stage(Stage::Total);
    assert_eq!(total.count, 200);
    let mut sorted = totals.clone();
    sorted.sort_unstable();
    let exact_sum: Duration = totals.iter().sum();
    assert_eq!(total.sum, exact_sum);
    let close = |a: Duration, b: Duration| {
        (a.as_secs_f64() - b.as_secs_f64()).abs() <= 0.01 * b.as_secs_f64() + 1e-9
    };
    assert!(close(total.max, sorted[199]), "{total:?}");
    assert!(close(total.min, sorted[0]), "{total:?}");
    assert!(
        close(total.p50, sorted[99]),
        "{:?} vs {:?}",
        total.p50,
        sorted[99]
    );
    assert!(
        close(total.p99, sorted[197]),
        "{:?} vs {:?}",
        total.p99,
        sorted[197]
    );
    for st in &s.stages {
        assert!(st.count <= 200);
        assert!(
            st.p50 <= st.p95 && st.p95 <= st.p99 && st.p99 <= st.max,
            "{st:?}"
        );
        assert_eq!(st.buckets.len(), BUCKET_BOUNDS.len() + 1);
        assert!(st.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(st.buckets.last().unwrap().1, st.count);
    }
    // Every stage completed on every step here.
    for stage in STAGES {
        assert_eq!(s.stage(stage).count, 200, "{stage:?}");
    }
}

#[test]
fn forced_overruns_and_fallbacks_are_counted_by_reason() {
    let mut cfg = config();
    cfg.timing.belief_budget = Duration::from_nanos(1);
    let mut e = IntentEngine::new(cfg).unwrap();
    walk(&mut e, 20, 0.0);
    // Invalid input: a NaN robot state and a time that does not increase.
    e.step(Some([1.0, 1.0]), &[f64::NAN, 2.0, 0.0, 0.0], 1.0);
    e.step(Some([1.0, 1.0]), &[3.0, 2.0, 0.0, 0.0], 0.05);
    let s = e.telemetry();
    assert_eq!(s.steps, 22);
    // Every 5th step has no observation, but its prediction-only belief step still overruns 1 ns.
    assert_eq!(s.fallback_count("overrun"), 20, "{:?}", s.fallbacks);
    assert_eq!(s.fallback_count("invalid-robot-state"), 1);
    assert_eq!(s.fallback_count("invalid-time"), 1);
    assert_eq!(s.fallbacks_total(), 22);
    assert_eq!(s.fresh, 0);
    let belief_overruns = s.overruns.iter().find(|o| o.0 == Stage::Belief).unwrap().1;
    assert_eq!(belief_overruns, 20);
    // The overrun stops the step after the belief; invalid input stops it before any stage.
    assert_eq!(s.stage(Stage::Total).count, 22);
    assert_eq!(s.stage(Stage::Belief).count, 20);
    assert_eq!(s.stage(Stage::Prediction).count, 0);
    assert_eq!(s.stage(Stage::Solve).count, 0);
    assert_eq!(s.solver_status.iter().map(|x| x.1).sum::<u64>(), 0);
    assert_eq!(e.counters().overruns, 20);

    let text = s.to_prometheus().unwrap();
    assert!(text.contains("intent_engine_fallbacks_total{reason=\"overrun\"} 20"));
    assert!(text.contains("intent_engine_overruns_total{stage=\"belief\"} 20"));
    assert!(text.contains("intent_engine_fallbacks_total{reason=\"invalid-time\"} 1"));
    assert!(text.contains("intent_engine_stage_seconds_count{stage=\"total\"} 22"));
    assert!(text.contains("intent_engine_stage_seconds_count{stage=\"solve\"} 0"));

    // A 1 ns solve budget is the solver's own time limit: the solves end `time-limit`.
    let mut cfg = config();
    cfg.timing.solve_budget = Duration::from_nanos(1);
    let mut e = IntentEngine::new(cfg).unwrap();
    walk(&mut e, 10, 0.0);
    let s = e.telemetry();
    assert_eq!(s.fallback_count("solver-failed"), 10, "{:?}", s.fallbacks);
    assert_eq!(
        counter(&s, SolveStatus::TimeLimit),
        10,
        "{:?}",
        s.solver_status
    );
    assert_eq!(s.stage(Stage::Solve).count, 10);
    assert_eq!(s.stage(Stage::Safety).count, 0);
}

#[test]
fn telemetry_off_records_nothing() {
    let mut cfg = config();
    cfg.telemetry = false;
    cfg.timing.belief_budget = Duration::from_nanos(1); // overruns would be counted if on
    let mut e = IntentEngine::new(cfg).unwrap();
    let h = e.telemetry_handle();
    walk(&mut e, 30, 0.0);
    let s = e.telemetry();
    assert!(!s.enabled);
    assert_eq!(s.steps, 0);
    assert_eq!(s.fallbacks_total(), 0);
    assert!(s.stages.iter().all(|st| st.count == 0));
    let raw = h.snapshot();
    assert_eq!(raw.steps, 0);
    assert!(raw.stages.iter().all(|st| st.count == 0));
    assert_eq!(e.counters().steps, 30); // the engine's own counters still run
    assert!(s
        .to_prometheus()
        .unwrap()
        .contains("intent_engine_telemetry_enabled 0"));
    // Switched on at run time, it records from then on.
    e.set_telemetry(true);
    walk(&mut e, 10, 1.0);
    let s = e.telemetry();
    assert_eq!(s.steps, 10);
    assert_eq!(s.stage(Stage::Total).count, 10);
}

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn sample(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_prefix} missing"))
}

#[test]
fn metrics_are_served_over_loopback_while_the_engine_steps() {
    let mut e = IntentEngine::new(config()).unwrap();
    let server = e.serve_metrics(0).unwrap();
    let port = server.port();
    assert!(port > 0);
    assert_eq!(server.url(), format!("http://127.0.0.1:{port}/metrics"));
    // A scraper thread reads while this thread steps: the counts it sees never go down.
    let scraper = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..20 {
            let body = get(port, "/metrics");
            assert!(body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"));
            assert!(body.contains("text/plain; version=0.0.4"));
            seen.push(sample(
                &body,
                "intent_engine_stage_seconds_count{stage=\"total\"}",
            ));
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    walk(&mut e, 300, 0.0);
    let seen = scraper.join().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let body = get(port, "/metrics");
    assert_eq!(
        sample(&body, "intent_engine_stage_seconds_count{stage=\"total\"}"),
        300.0
    );
    assert_eq!(sample(&body, "intent_engine_steps_total"), 300.0);
    assert!(body.contains("# HELP intent_engine_stage_seconds "));
    assert!(body.contains("intent_engine_stage_seconds_bucket{stage=\"solve\",le=\"+Inf\"}"));
    assert!(body.contains("intent_engine_stage_latency_seconds{stage=\"total\",quantile=\"0.99\"}"));
    assert!(get(port, "/nope").contains("404"));
    server.stop();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err() || {
            // The accept thread may still be letting go of the socket: give it a moment.
            std::thread::sleep(Duration::from_millis(300));
            TcpStream::connect(("127.0.0.1", port)).is_err()
        }
    );
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let e = IntentEngine::new(config()).unwrap();
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = e.serve_metrics(port).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("port: cannot bind 127.0.0.1:"), "{msg}");
    assert_eq!(err.kind(), intent_engine::ErrorKind::InvalidInput);
}
