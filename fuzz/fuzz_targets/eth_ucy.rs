//! The ETH/UCY CSV parser on arbitrary bytes; parsed tracks split into segments.
#![no_main]

use intent_engine::belief::eth_ucy::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((tracks, step)) = parse(text) else { return };
    assert!(step > 0, "frame step must be positive, got {step}");
    for t in &tracks {
        assert_eq!(t.frames.len(), t.xy.len());
        assert!(t.frames.windows(2).all(|w| w[0] < w[1]), "frames not increasing");
        assert!(t.xy.iter().flatten().all(|v| v.is_finite()), "non-finite position");
        let n: usize = t.contiguous_segments(step).iter().map(|s| s.frames.len()).sum();
        assert_eq!(n, t.frames.len());
    }
});
