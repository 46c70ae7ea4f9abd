//! Loader for ETH/UCY-format trajectories: CSV with header `frame,ped_id,x,y` (metres),
//! consecutive frames 0.4 s apart.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// One pedestrian's track: frames and positions, sorted by frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// Pedestrian id within the scene.
    pub id: i64,
    /// Frame numbers (increasing).
    pub frames: Vec<i64>,
    /// Positions `[x, y]` in metres.
    pub xy: Vec<[f64; 2]>,
}

impl Track {
    /// Splits the track at frame gaps (a step other than the most common frame step),
    /// returning contiguous segments.
    #[must_use]
    pub fn contiguous_segments(&self, frame_step: i64) -> Vec<Track> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.frames.len() {
            // Checked: a hand-built track may hold frames whose difference overflows i64.
            if i == self.frames.len()
                || self.frames[i].checked_sub(self.frames[i - 1]) != Some(frame_step)
            {
                out.push(Track {
                    id: self.id,
                    frames: self.frames[start..i].to_vec(),
                    xy: self.xy[start..i].to_vec(),
                });
                start = i;
            }
        }
        out
    }
}

/// Parses ETH/UCY CSV text into tracks (sorted by id) and the scene's frame step (the most
/// common difference between consecutive frames of a pedestrian).
///
/// ```
/// use intent_engine::belief::eth_ucy::parse;
/// let (tracks, step) = parse("frame,ped_id,x,y\n0,1,0.0,0.0\n10,1,0.5,0.0\n10,2,3.0,1.0\n")?;
/// assert_eq!(tracks.len(), 2);
/// assert_eq!(step, 10);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidValue`] naming `csv` and the line on a malformed row (not four fields,
/// non-finite positions, frame or id not an integer of magnitude ≤ 2⁵³) or header, or a
/// pedestrian listed twice in one frame.
pub fn parse(text: &str) -> Result<(Vec<Track>, i64)> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == "frame,ped_id,x,y" => {}
        other => {
            return Err(Error::invalid_value(
                "csv",
                format_args!("expected header frame,ped_id,x,y, got {other:?}"),
            ))
        }
    }
    let mut by_id: BTreeMap<i64, Track> = BTreeMap::new();
    for (ln, line) in lines.enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            Error::invalid_value(
                "csv",
                format_args!("line {}: cannot parse {line:?}", ln + 2),
            )
        };
        let mut it = line.split(',');
        let frame: f64 = it
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(bad)?;
        let id: f64 = it
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(bad)?;
        let x: f64 = it
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(bad)?;
        let y: f64 = it
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(bad)?;
        if it.next().is_some() {
            return Err(bad()); // more than four fields
        }
        // Frame and id may be written as floats ("780.0") but must be integers that f64
        // holds exactly (|v| <= 2^53; also keeps frame differences far from i64 overflow).
        let integral = |v: f64| v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0;
        if !(x.is_finite() && y.is_finite() && integral(frame) && integral(id)) {
            return Err(bad());
        }
        let t = by_id.entry(id as i64).or_insert_with(|| Track {
            id: id as i64,
            frames: Vec::new(),
            xy: Vec::new(),
        });
        t.frames.push(frame as i64);
        t.xy.push([x, y]);
    }
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut tracks: Vec<Track> = by_id.into_values().collect();
    for t in &mut tracks {
        let mut order: Vec<usize> = (0..t.frames.len()).collect();
        order.sort_by_key(|&i| t.frames[i]);
        t.frames = order.iter().map(|&i| t.frames[i]).collect();
        t.xy = order.iter().map(|&i| t.xy[i]).collect();
        if let Some(w) = t.frames.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid_value(
                "csv",
                format_args!("pedestrian {} appears twice in frame {}", t.id, w[0]),
            ));
        }
        for w in t.frames.windows(2) {
            *counts.entry(w[1] - w[0]).or_default() += 1;
        }
    }
    let step = counts
        .iter()
        .filter(|(d, _)| **d > 0)
        .max_by_key(|(_, c)| **c)
        .map_or(1, |(d, _)| *d);
    Ok((tracks, step))
}

/// Reads and parses a scene file.
///
/// # Errors
/// I/O errors as [`Error::InvalidValue`] naming the path; parse errors as in [`parse`].
pub fn load(path: &Path) -> Result<(Vec<Track>, i64)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid_value("path", format_args!("cannot read {}: {e}", path.display()))
    })?;
    parse(&text)
}
