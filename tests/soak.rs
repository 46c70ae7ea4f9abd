//! The short soak CI runs (issue 9): 2·10⁴ closed-loop steps with dropouts and jumps in a
//! release build, 2·10³ (after 500 warm-up steps) in a debug build (`SOAK_STEPS` overrides; debug builds also get
//! generous stage budgets so every stage runs instead of the overrun fallback). Asserts no NaN
//! anywhere and bounded RSS growth; latency is reported, not asserted (CI machines are noisy).
//! The 10⁶-step run is `cargo run --release --example intent_soak_check`.

mod soak_common;

#[test]
fn short_soak_is_nan_free_with_flat_memory() {
    let steps = std::env::var("SOAK_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            5_000
        } else {
            20_000
        });
    let warmup = if cfg!(debug_assertions) { 500 } else { 2_000 };
    let r = soak_common::run(steps, warmup, 5).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.non_finite, 0, "non-finite values in decisions: {r:?}");
    assert!(
        r.dropout_steps > 0 && r.jumps > 0,
        "the faults must be exercised: {r:?}"
    );
    // The engine does not allocate after set-up; 1 MiB covers allocator and page noise.
    assert!(
        r.rss_growth_kib() < 1024,
        "RSS grew by {} KiB over {} steps: {r:?}",
        r.rss_growth_kib(),
        r.steps
    );
}
