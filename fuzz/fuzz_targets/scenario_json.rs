//! `Scenario::from_json` on arbitrary bytes; a loaded scenario builds an engine that runs a
//! few steps with finite decisions inside the actuator limits.
#![no_main]

use intent_engine::intent::scenario::Scenario;
use intent_engine::intent::IntentEngine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(scn) = Scenario::from_json(text) else { return };
    let _ = scn.human_path(8);
    // Keep an iteration cheap: large particle counts or horizons are valid but slow.
    if scn.config.human.n_particles > 4096 || scn.config.timing.horizon > 64 {
        return;
    }
    let Ok(mut engine) = IntentEngine::new(scn.config.clone()) else { return };
    let nx = engine.mpc().problem().nx();
    let x = vec![0.0; nx];
    for i in 0..3 {
        let d = engine.step(Some([1.0 + i as f64, 1.0]), &x, i as f64 * 0.01);
        assert!(d.command.iter().all(|v| v.is_finite()), "non-finite command");
    }
});
