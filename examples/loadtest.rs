//! Load test without Python: `cargo run --release --example loadtest -- [ENGINES] [SECONDS]
//! [DEADLINE_MS] [MAX_ENGINES]` drives ENGINES engines (default 8) of the default scenario at
//! 100 Hz on every core for SECONDS (default 5), then searches the capacity up to MAX_ENGINES
//! (default 256) with trials of min(SECONDS, 3) s, at most 1 % of deadlines missed.
use std::time::Duration;

use intent_engine::intent::loadtest::{capacity, run_load, LoadReport, LoadSettings};

fn arg<T: std::str::FromStr>(i: usize, default: T) -> Result<T, intent_engine::Error> {
    match std::env::args().nth(i) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            intent_engine::Error::invalid_value("argument", format_args!("cannot parse {s:?}"))
        }),
    }
}

fn row(r: &LoadReport) -> String {
    format!(
        "{:>7} {:>11.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>7.2}% {:>9}",
        r.engines,
        r.decisions_per_second,
        r.target_per_second,
        r.latency.p50,
        r.latency.p99,
        r.compute.p50,
        100.0 * r.missed_fraction,
        r.fallbacks
    )
}

fn main() -> Result<(), intent_engine::Error> {
    let engines: usize = arg(1, 8)?;
    let seconds: f64 = arg(2, 5.0)?;
    let deadline_ms: f64 = arg(3, 10.0)?;
    let max_engines: usize = arg(4, 256)?;
    let mut s = LoadSettings::new(engines, seconds)?;
    s.deadline = Duration::from_secs_f64(deadline_ms * 1e-3);
    let header =
        "engines decisions/s   offered   lat p50   lat p99  step p50   missed fallbacks  (µs)";
    let r = run_load(&s)?;
    println!(
        "{} engines at {} Hz on {} threads, deadline {deadline_ms} ms",
        r.engines, r.rate_hz, r.threads
    );
    println!("{header}\n{}", row(&r));
    s.seconds = seconds.min(3.0);
    let c = capacity(&s, max_engines, 0.01)?;
    println!("\ncapacity search:\n{header}");
    for t in &c.trials {
        println!("{}", row(t));
    }
    println!("capacity: {} engines", c.engines);
    Ok(())
}
