//! The demo on the embedded default scenario, from Rust: runs the intent pipeline as a 100 Hz
//! control loop in simulated time, prints a summary and writes `intent_demo.svg` and
//! `intent_demo.csv` (or into the directory given as the first argument).
//!
//! ```text
//! cargo run --release --example intent_demo [OUT_DIR]
//! ```

use std::io::Write as _;
use std::path::PathBuf;

use intent_engine::intent::scenario::{simulate, Scenario};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let scn = Scenario::default_embedded()?;
    println!("intent_engine demo - scenario '{}'", scn.name);
    let run = simulate(&scn, |done, total| {
        let frac = done as f64 / total as f64;
        let bar = "#".repeat((30.0 * frac) as usize);
        print!("\r[{bar:<30}] {:5.1}%", 100.0 * frac);
        let _ = std::io::stdout().flush();
    })?;
    println!();
    print!("{}", run.summary.report(&scn));
    std::fs::create_dir_all(&out)?;
    let svg = out.join("intent_demo.svg");
    let csv = out.join("intent_demo.csv");
    std::fs::write(&svg, run.svg())?;
    std::fs::write(&csv, run.csv())?;
    println!("wrote {} and {}", svg.display(), csv.display());
    Ok(())
}
