//! The opt-in allocation counter: with `CountingAllocator` installed, telemetry reports the
//! allocations made during steps, and a warmed-up step (telemetry on) makes none.
//! One test in its own binary: the counter is process-wide.

use std::time::Duration;

use intent_engine::belief::Goal;
use intent_engine::intent::telemetry::CountingAllocator;
use intent_engine::intent::{EngineConfig, IntentEngine, Workspace};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn warmed_up_steps_allocate_nothing_with_telemetry_on() {
    let mut cfg = EngineConfig::new(
        vec![Goal::point(5.0, 3.2), Goal::point(5.2, 0.8)],
        Workspace {
            x_min: 0.0,
            x_max: 6.0,
            y_min: 0.0,
            y_max: 4.0,
        },
    );
    cfg.timing.belief_budget = Duration::from_secs(1);
    cfg.timing.prediction_budget = Duration::from_secs(1);
    cfg.timing.solve_budget = Duration::from_secs(1);
    cfg.timing.step_budget = Duration::from_secs(4);
    assert!(cfg.telemetry);
    let mut e = IntentEngine::new(cfg).unwrap();
    let handle = e.telemetry_handle();
    let x = [3.0, 2.0, 0.0, 0.0];
    let mut t = 0.0;
    let mut run = |e: &mut IntentEngine, n: usize| {
        for i in 0..n {
            t += 0.01;
            let obs = (i % 4 != 0).then_some([0.5 + 0.3 * t, 2.5]);
            e.step(obs, &x, t);
        }
    };
    run(&mut e, 20);
    let warm = e.telemetry().step_allocations.expect("allocator installed");
    let before = CountingAllocator::allocations();
    run(&mut e, 60);
    assert_eq!(CountingAllocator::allocations(), before, "a step allocated");
    // Readers allocate (snapshots are owned); the steps themselves add nothing.
    let s = handle.snapshot();
    assert_eq!(s.step_allocations, Some(warm));
    assert_eq!(s.steps, 80);
}
