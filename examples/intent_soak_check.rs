//! The soak check of issue 9: a short run (2·10⁴ steps) and a long run (10⁶ steps by default)
//! of the closed loop with tracker dropouts and identity-switch jumps, each in a fresh engine.
//! Reports NaN count, RSS growth after warm-up (bar: < 1 MB) and the long run's p99 step
//! latency against the short run's (bar: ≤ 1.5×), and exits non-zero if a bar is missed.
//!
//! ```text
//! cargo run --release --example intent_soak_check [LONG_STEPS] [SHORT_STEPS]
//! ```

#[path = "../tests/soak_common/mod.rs"]
mod soak_common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let long: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let short: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let warmup = 2_000;
    println!("run   | steps     | wall s | p50 µs | p99 µs | p99 last 10% µs | max µs | RSS after warm-up KiB | RSS end KiB | growth KiB | non-finite | fallbacks | dropout steps | jumps");
    let mut reports = Vec::new();
    for (name, n) in [("short", short), ("long", long)] {
        let r = soak_common::run(n, warmup, 5)?;
        println!(
            "{name:5} | {:9} | {:6.1} | {:6.1} | {:6.1} | {:15.1} | {:6.0} | {:21} | {:11} | {:10} | {:10} | {:9} | {:13} | {}",
            r.steps, r.wall_s, r.p50_us, r.p99_us, r.p99_last_tenth_us, r.max_us,
            r.rss_after_warmup_kib, r.rss_end_kib, r.rss_growth_kib(), r.non_finite,
            r.fallbacks, r.dropout_steps, r.jumps
        );
        reports.push(r);
    }
    let (s, l) = (&reports[0], &reports[1]);
    let ratio = l.p99_us / s.p99_us;
    let ratio_tail = l.p99_last_tenth_us / s.p99_us;
    let growth_mb = l.rss_growth_kib() as f64 / 1024.0;
    println!("p99 ratio long/short: {ratio:.2} (last tenth of the long run: {ratio_tail:.2}); bar <= 1.5");
    println!("RSS growth over the long run: {growth_mb:.3} MiB; bar < 1 MB");
    println!("non-finite values: {}", s.non_finite + l.non_finite);
    let ok = ratio <= 1.5 && l.rss_growth_kib() < 1000 && s.non_finite + l.non_finite == 0;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    if ok {
        Ok(())
    } else {
        Err("a soak bar was missed".into())
    }
}
