//! Resampling: turning weights into offspring indices.
//!
//! Every scheme here is *unbiased*: the expected number of copies of particle `i` among `M`
//! draws is `M·wᵢ`. They differ in variance and in what they cost:
//!
//! | scheme | uniforms used | cost | notes |
//! |---|---|---|---|
//! | [`Resampling::Systematic`] (default) | 1 | O(N + M), one pass | lowest variance in practice |
//! | [`Resampling::Stratified`] | M | O(N + M), one pass | one uniform per stratum |
//! | [`Resampling::Residual`] | 1 | O(N + M), two passes | `⌊M wᵢ⌋` copies, rest systematic |
//! | [`Resampling::Multinomial`] | M | O(M log N) | i.i.d. draws by inverse CDF |
//! | [`Resampling::Rejection`] | random | O(M · w_max / w̄) expected | needs no cumulative sum: each draw is independent, so it suits f32 and GPUs (Murray, Lee & Jacob 2016) |
//!
//! The low-level functions take the uniforms explicitly (so a test can feed a reference
//! implementation the same numbers) and write into a caller buffer; [`resample`] is the
//! convenient, allocating entry point.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::linalg::simd::{self, SimdTask};

/// A resampling scheme.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Resampling {
    /// One uniform `u`, positions `(k + u)/M`.
    #[default]
    Systematic,
    /// Positions `(k + u_k)/M`, one uniform per stratum.
    Stratified,
    /// `⌊M wᵢ⌋` deterministic copies; the remaining draws systematic over the residuals.
    Residual,
    /// `M` independent draws from the categorical distribution.
    Multinomial,
    /// Rejection sampling against the largest weight; no prefix sum, independent per draw.
    Rejection,
}

impl Resampling {
    /// Parses `"systematic"`, `"stratified"`, `"residual"`, `"multinomial"`, `"rejection"`.
    ///
    /// ```
    /// use intent_engine::belief::Resampling;
    /// assert_eq!(Resampling::parse("residual")?, Resampling::Residual);
    /// assert!(Resampling::parse("bogus").is_err());
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for any other name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "systematic" => Self::Systematic,
            "stratified" => Self::Stratified,
            "residual" => Self::Residual,
            "multinomial" => Self::Multinomial,
            "rejection" => Self::Rejection,
            _ => {
                return Err(Error::invalid_value(
                    "resampling",
                    format_args!(
                        "unknown scheme {name:?}; expected one of systematic, stratified, residual, multinomial, rejection"
                    ),
                ))
            }
        })
    }

    /// The scheme's name as accepted by [`Resampling::parse`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Systematic => "systematic",
            Self::Stratified => "stratified",
            Self::Residual => "residual",
            Self::Multinomial => "multinomial",
            Self::Rejection => "rejection",
        }
    }
}

/// Checks that `weights` are finite, non-negative and not all zero; returns their sum.
///
/// # Errors
/// [`Error::Shape`] if empty, [`Error::NonFinite`] on NaN/inf, [`Error::InvalidValue`] on a
/// negative weight or a zero total.
pub fn check_weights(weights: &[f64]) -> Result<f64> {
    if weights.is_empty() {
        return Err(Error::shape("weights", "must not be empty"));
    }
    crate::error::check_finite_slice("weights", weights)?;
    // One vectorised pass for the minimum and the sum (8 lanes).
    let (mut mn, mut sm) = ([f64::INFINITY; 8], [0.0f64; 8]);
    let mut it = weights.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            mn[k] = mn[k].min(c[k]);
            sm[k] += c[k];
        }
    }
    let mut min = mn.iter().copied().fold(f64::INFINITY, f64::min);
    let mut total = sm.iter().sum::<f64>();
    for &w in it.remainder() {
        min = min.min(w);
        total += w;
    }
    if min < 0.0 {
        let i = weights.iter().position(|&w| w < 0.0).unwrap_or(0);
        return Err(Error::invalid_value(
            "weights",
            format_args!("must be non-negative, got {} at index {i}", weights[i]),
        ));
    }
    if !(total > 0.0 && total.is_finite()) {
        return Err(Error::invalid_value(
            "weights",
            format_args!("must have a positive finite sum, got {total}"),
        ));
    }
    Ok(total)
}

/// Systematic resampling of weights summing to `total` with one uniform `u ∈ [0, 1)`.
///
/// Writes `out.len()` indices, non-decreasing. One pass over the weights and the output.
///
/// ```
/// use intent_engine::belief::resample::systematic_into;
/// let mut idx = [0usize; 4];
/// systematic_into(&[0.1, 0.2, 0.3, 0.4], 1.0, 0.5, &mut idx);
/// assert_eq!(idx, [1, 2, 3, 3]);
/// ```
pub fn systematic_into(weights: &[f64], total: f64, u: f64, out: &mut [usize]) {
    // Dispatched so that the block store below is one vector store and the integer/float
    // conversions single instructions.
    simd::dispatch(Systematic {
        weights,
        total,
        u,
        out,
    });
}

struct Systematic<'a> {
    weights: &'a [f64],
    total: f64,
    u: f64,
    out: &'a mut [usize],
}

impl SimdTask for Systematic<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let Systematic {
            weights,
            total,
            u,
            out,
        } = self;
        let m = out.len();
        if m == 0 || weights.is_empty() {
            return;
        }
        // Output k goes to the first particle i whose running sum exceeds pos(k) = (k + u)·step
        // (the last one if rounding leaves the sum below `total`). Walk the particles, not the
        // outputs: particle i's outputs end at e_i, the number of positions below its running
        // sum, which is ⌊cum·M/total − u⌋ + 1 unless that quotient lies within rounding of an
        // integer; then (rarely) e_i is found by comparing with pos(k) computed exactly as the
        // output loop does, so the indices equal a merge over the outputs. The offspring are
        // written as a fixed block of `BLOCK` copies that the next particle overwrites from its
        // own start, so the common case has no data-dependent branch (a merge loop mispredicts
        // on almost every particle of a real filter's weights: 8–13 ns per particle there).
        const BLOCK: usize = 4;
        // Particles per group: the scalar chain forms their running sums, then straight-line
        // code over fixed arrays, which LLVM vectorises, turns them into ends.
        const GROUP: usize = 8;
        // 2^52: adding it to an integer-valued f64 in [0, 2^51) puts the integer in the low
        // mantissa bits exactly, a conversion that vectorises (`as i64` saturates, which LLVM
        // does lane by lane).
        const TWO52: f64 = 4_503_599_627_370_496.0;
        let step = total / m as f64;
        let inv = m as f64 / total;
        let mf = m as f64;
        // x = cum·inv − u and the threshold the comparisons `pos(k) < cum` put on k differ by
        // a few rounding errors of size ε·(m + 1); farther than this margin from an integer,
        // ⌊x⌋ + 1 is exactly the number of positions below `cum`. Clamped to [−2, m + 1] (NaN
        // becomes −2, whose zero fraction sends it to the exact path); outside [−1, m) the
        // count is 0 or m.
        let margin = 64.0 * f64::EPSILON * (mf + 2.0);
        let quotient = |cum: f64| (cum * inv - u).max(-2.0).min(mf + 1.0);
        // Beyond 2^50 outputs (more than any memory holds) every end is found exactly.
        let huge = mf >= TWO52 / 4.0;
        // ⌊x⌋ + 1 clamped to [0, m], and whether the exact path must decide instead.
        let estimate = |cum: f64| {
            let x = quotient(cum);
            let fl = x.floor();
            let near = (x - fl - 0.5).abs() >= 0.5 - margin;
            // ⌊x⌋ + 2 ∈ [0, m + 3]: exact through the mantissa.
            let e = (fl + (2.0 + TWO52)).to_bits() as i64 - TWO52.to_bits() as i64 - 1;
            (e.clamp(0, m as i64), near)
        };
        let exact = |cum: f64| systematic_exact(quotient(cum), m, cum, u, step);
        let last = weights.len() - 1;
        let mut start = 0usize;
        let mut cum = 0.0;
        // Writes particle i's offspring `start..e`. Non-negative weights keep the ends
        // non-decreasing; the max makes a bad weight harmless.
        let mut emit = |i: usize, e: usize, start: &mut usize| {
            let e = e.max(*start);
            if e - *start <= BLOCK && *start + BLOCK <= m {
                out[*start..*start + BLOCK].fill(i);
            } else {
                out[*start..e].fill(i);
            }
            *start = e;
        };
        let groups = last / GROUP;
        // The previous group's ends, written out one group later: reloading a lane right
        // after the vector store that made it stalls on store forwarding (this took the
        // loop from ~29 to ~21 µs for 10,000 weights).
        let mut pending = [0i64; GROUP];
        for (g, ws) in weights[..groups * GROUP].chunks_exact(GROUP).enumerate() {
            // The running sum is the only chain.
            let mut c = [0.0; GROUP];
            for (cj, &w) in c.iter_mut().zip(ws) {
                cum += w;
                *cj = cum;
            }
            let mut e = [0i64; GROUP];
            // Flags as integers, reduced after the loop: a `bool` accumulated inside it
            // made LLVM extract lanes one by one.
            let mut nm = [0u64; GROUP];
            for ((ej, nj), &cj) in e.iter_mut().zip(&mut nm).zip(&c) {
                let (est, near) = estimate(cj);
                *ej = est;
                *nj = u64::from(near);
            }
            if nm.iter().fold(huge, |a, &b| a | (b != 0)) {
                for ((ej, &nj), &cj) in e.iter_mut().zip(&nm).zip(&c) {
                    if nj != 0 || huge {
                        *ej = exact(cj) as i64;
                    }
                }
            }
            if g > 0 {
                for (j, &ej) in pending.iter().enumerate() {
                    // In [0, m] by the clamp or the exact search.
                    emit((g - 1) * GROUP + j, ej as usize, &mut start);
                }
            }
            pending = e;
        }
        if groups > 0 {
            for (j, &ej) in pending.iter().enumerate() {
                emit((groups - 1) * GROUP + j, ej as usize, &mut start);
            }
        }
        for (i, &w) in weights[..last].iter().enumerate().skip(groups * GROUP) {
            cum += w;
            let (est, near) = estimate(cum);
            let e = if near || huge {
                exact(cum)
            } else {
                est as usize
            };
            emit(i, e, &mut start);
        }
        out[start..].fill(last);
    }
}

/// The number of positions `pos(k) = (k + u)·step`, `k < m`, below `cum`, by direct
/// comparison from the estimate `⌈x⌉` (rare: only when `x` lies within rounding of an
/// integer, or outside `[−1, m)`). Out of line so the common path stays short.
#[cold]
#[inline(never)]
fn systematic_exact(x: f64, m: usize, cum: f64, u: f64, step: f64) -> usize {
    // Through i64: one instruction each way on the baseline target, and m < 2^63.
    let pos = |k: usize| (k as i64 as f64 + u) * step;
    // `as` saturates (NaN → 0), then the loops walk to the exact count.
    let mut e = (x.ceil() as i64).clamp(0, m as i64) as usize;
    while e < m && pos(e) < cum {
        e += 1;
    }
    while e > 0 && pos(e - 1) >= cum {
        e -= 1;
    }
    e
}

/// The output-side merge that [`systematic_into`] replaces (same indices), kept as the
/// reference its tests compare with.
#[cfg(test)]
fn systematic_merge(weights: &[f64], total: f64, u: f64, out: &mut [usize]) {
    let m = out.len();
    if m == 0 || weights.is_empty() {
        return;
    }
    let step = total / m as f64;
    let last = weights.len() - 1;
    let mut i = 0;
    let mut cum = weights[0];
    for (k, o) in out.iter_mut().enumerate() {
        let pos = (k as f64 + u) * step;
        while pos >= cum && i < last {
            i += 1;
            cum += weights[i];
        }
        *o = i;
    }
}

/// Stratified resampling: position `k` is `(k + uniforms[k]) / M`. `uniforms.len() == out.len()`.
///
/// ```
/// use intent_engine::belief::resample::stratified_into;
/// let mut idx = [0usize; 2];
/// stratified_into(&[0.5, 0.5], 1.0, &[0.9, 0.1], &mut idx);
/// assert_eq!(idx, [0, 1]);
/// ```
pub fn stratified_into(weights: &[f64], total: f64, uniforms: &[f64], out: &mut [usize]) {
    let m = out.len().min(uniforms.len());
    if m == 0 || weights.is_empty() {
        return;
    }
    let step = total / m as f64;
    let last = weights.len() - 1;
    let mut i = 0;
    let mut cum = weights[0];
    for k in 0..m {
        let pos = (k as f64 + uniforms[k]) * step;
        while pos >= cum && i < last {
            i += 1;
            cum += weights[i];
        }
        out[k] = i;
    }
}

/// Multinomial resampling by inverse CDF: `out[k]` is the first `i` with
/// `uniforms[k]·total < w₀ + … + wᵢ`. `cumsum` is scratch of `weights.len()`.
///
/// ```
/// use intent_engine::belief::resample::multinomial_into;
/// let (mut idx, mut cum) = ([0usize; 3], [0.0; 2]);
/// multinomial_into(&[0.25, 0.75], 1.0, &[0.9, 0.1, 0.3], &mut cum, &mut idx);
/// assert_eq!(idx, [1, 0, 1]);
/// ```
pub fn multinomial_into(
    weights: &[f64],
    total: f64,
    uniforms: &[f64],
    cumsum: &mut [f64],
    out: &mut [usize],
) {
    let n = weights.len().min(cumsum.len());
    if n == 0 {
        return;
    }
    let mut c = 0.0;
    for i in 0..n {
        c += weights[i];
        cumsum[i] = c;
    }
    for (o, &u) in out.iter_mut().zip(uniforms) {
        let pos = u * total;
        // partition_point: number of entries <= pos, i.e. the first index with cum > pos.
        *o = cumsum[..n].partition_point(|&c| c <= pos).min(n - 1);
    }
}

/// Residual resampling: `⌊M wᵢ / total⌋` copies of each particle, then the remaining `R`
/// draws systematic over the residual weights with the single uniform `u`.
///
/// ```
/// use intent_engine::belief::resample::residual_into;
/// let mut idx = [0usize; 4];
/// residual_into(&[0.5, 0.3, 0.2], 1.0, 0.5, &mut idx);
/// assert_eq!(&idx[..2], &[0, 0]); // two deterministic copies of particle 0
/// ```
pub fn residual_into(weights: &[f64], total: f64, u: f64, out: &mut [usize]) {
    let m = out.len();
    if m == 0 || weights.is_empty() {
        return;
    }
    let scale = m as f64 / total;
    let mut k = 0;
    let mut res_total = 0.0;
    for (i, &w) in weights.iter().enumerate() {
        let x = w * scale;
        let copies = (x.floor() as usize).min(m - k);
        for o in &mut out[k..k + copies] {
            *o = i;
        }
        k += copies;
        res_total += x - x.floor();
    }
    let r = m - k;
    if r == 0 {
        return;
    }
    if res_total <= 0.0 {
        // Rounding left draws but no residual mass: fill with the largest weight.
        let best = argmax(weights);
        out[k..].fill(best);
        return;
    }
    let step = res_total / r as f64;
    let last = weights.len() - 1;
    let mut i = 0;
    let resid = |i: usize| {
        let x = weights[i] * scale;
        x - x.floor()
    };
    let mut cum = resid(0);
    for j in 0..r {
        let pos = (j as f64 + u) * step;
        while pos >= cum && i < last {
            i += 1;
            cum += resid(i);
        }
        out[k + j] = i;
    }
}

/// Rejection resampling (Murray, Lee & Jacob 2016): for each output `k`, start at `k mod N`,
/// accept with probability `w_j / w_max`, otherwise propose a uniformly random index and try
/// again. The outputs past the last whole multiple of `N` start at a uniformly random index
/// instead (starting them at `0, 1, …` would favour the first particles when `out.len()` is
/// not a multiple of `N`). Unbiased; every draw is independent of the others (no prefix sum), which is what
/// makes it the scheme for f32 weights and GPUs. `w_max` must bound every weight.
///
/// ```
/// use intent_engine::belief::resample::rejection_into;
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut idx = [0usize; 5];
/// rejection_into(&[0.0, 1.0, 0.0], 1.0, &mut rng, &mut idx);
/// assert_eq!(idx, [1; 5]);
/// ```
pub fn rejection_into<R: Rng + ?Sized>(
    weights: &[f64],
    w_max: f64,
    rng: &mut R,
    out: &mut [usize],
) {
    let n = weights.len();
    if n == 0 || w_max.is_nan() || w_max <= 0.0 {
        return;
    }
    // Own-index starts are unbiased only over whole cycles of the N particles.
    let whole = out.len() - out.len() % n;
    for (k, o) in out.iter_mut().enumerate() {
        let mut j = if k < whole {
            k % n
        } else {
            rng.random_range(0..n)
        };
        let mut u: f64 = rng.random();
        while u * w_max >= weights[j] {
            j = rng.random_range(0..n);
            u = rng.random();
        }
        *o = j;
    }
}

fn argmax(w: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in w.iter().enumerate() {
        if x > w[best] {
            best = i;
        }
    }
    best
}

/// Draws `out.len()` offspring indices from (unnormalised) `weights` with `scheme`, using the
/// uniforms of a ChaCha8 stream seeded with `seed`. `scratch` must hold
/// `max(weights.len(), out.len())` floats (used by stratified and multinomial).
///
/// The same uniforms as the `*_into` functions: systematic and residual take `u = rng.random()`;
/// stratified and multinomial take `out.len()` successive `rng.random()` values.
///
/// # Errors
/// As [`check_weights`]; [`Error::Shape`] if `scratch` is too short.
pub fn resample_into(
    scheme: Resampling,
    weights: &[f64],
    seed: u64,
    scratch: &mut [f64],
    out: &mut [usize],
) -> Result<()> {
    let total = check_weights(weights)?;
    let need = weights.len().max(out.len());
    if scratch.len() < need {
        return Err(Error::shape(
            "scratch",
            format_args!("expected at least {need} floats, got {}", scratch.len()),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    resample_with(scheme, weights, total, &mut rng, scratch, out);
    Ok(())
}

/// The unchecked core shared by [`resample_into`] and the particle filter.
pub(crate) fn resample_with<R: Rng + ?Sized>(
    scheme: Resampling,
    weights: &[f64],
    total: f64,
    rng: &mut R,
    scratch: &mut [f64],
    out: &mut [usize],
) {
    match scheme {
        Resampling::Systematic => systematic_into(weights, total, rng.random(), out),
        Resampling::Residual => residual_into(weights, total, rng.random(), out),
        Resampling::Stratified => {
            let u = &mut scratch[..out.len()];
            u.iter_mut().for_each(|x| *x = rng.random());
            stratified_into(weights, total, u, out);
        }
        Resampling::Multinomial => {
            // The uniforms go in a second scratch region after the prefix sums.
            let m = out.len();
            let n = weights.len();
            let mut u_buf = [0.0f64; 256];
            let mut done = 0;
            // Prefix sums once, then the draws in blocks of 256 uniforms (no allocation).
            let cumsum = &mut scratch[..n];
            let mut c = 0.0;
            for i in 0..n {
                c += weights[i];
                cumsum[i] = c;
            }
            while done < m {
                let b = (m - done).min(u_buf.len());
                for x in &mut u_buf[..b] {
                    *x = rng.random();
                }
                for (o, &u) in out[done..done + b].iter_mut().zip(&u_buf[..b]) {
                    let pos = u * total;
                    *o = cumsum.partition_point(|&c| c <= pos).min(n - 1);
                }
                done += b;
            }
        }
        Resampling::Rejection => {
            let w_max = weights.iter().copied().fold(0.0, f64::max);
            rejection_into(weights, w_max, rng, out);
        }
    }
}

/// Allocating convenience: `n` offspring indices (default `weights.len()`) from `weights`.
///
/// ```
/// use intent_engine::belief::{resample, Resampling};
/// let idx = resample(Resampling::Systematic, &[0.0, 3.0, 1.0], None, 7)?;
/// assert_eq!(idx.len(), 3);
/// assert!(idx.iter().all(|&i| i != 0));
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// As [`check_weights`].
pub fn resample(
    scheme: Resampling,
    weights: &[f64],
    n: Option<usize>,
    seed: u64,
) -> Result<Vec<usize>> {
    let m = n.unwrap_or(weights.len());
    let mut out = vec![0; m];
    let mut scratch = vec![0.0; weights.len().max(m)];
    resample_into(scheme, weights, seed, &mut scratch, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward reference: for each position, a linear scan of the cumulative sum.
    fn reference_inverse_cdf(w: &[f64], positions: &[f64]) -> Vec<usize> {
        positions
            .iter()
            .map(|&p| {
                let mut c = 0.0;
                for (i, &x) in w.iter().enumerate() {
                    c += x;
                    if p < c {
                        return i;
                    }
                }
                w.len() - 1
            })
            .collect()
    }

    fn weights(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w: Vec<f64> = (0..n).map(|_| rng.random::<f64>().powi(3)).collect();
        let s: f64 = w.iter().sum();
        w.iter_mut().for_each(|x| *x /= s);
        w
    }

    #[test]
    fn equal_to_reference_given_the_same_uniforms() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1, 2, 7, 100, 1000] {
            let w = weights(n, n as u64);
            let m = n + 3;
            let u: f64 = rng.random();
            let us: Vec<f64> = (0..m).map(|_| rng.random()).collect();
            let mut out = vec![0; m];
            systematic_into(&w, 1.0, u, &mut out);
            let pos: Vec<f64> = (0..m).map(|k| (k as f64 + u) / m as f64).collect();
            assert_eq!(out, reference_inverse_cdf(&w, &pos), "systematic n={n}");
            stratified_into(&w, 1.0, &us, &mut out);
            let pos: Vec<f64> = (0..m).map(|k| (k as f64 + us[k]) / m as f64).collect();
            assert_eq!(out, reference_inverse_cdf(&w, &pos), "stratified n={n}");
            let mut cum = vec![0.0; n];
            multinomial_into(&w, 1.0, &us, &mut cum, &mut out);
            assert_eq!(out, reference_inverse_cdf(&w, &us), "multinomial n={n}");
            residual_into(&w, 1.0, u, &mut out);
            let mut reference = Vec::new();
            let mut resid = Vec::new();
            for (i, &x) in w.iter().enumerate() {
                let c = (x * m as f64).floor() as usize;
                reference.extend(std::iter::repeat_n(i, c));
                resid.push(x * m as f64 - c as f64);
            }
            let r = m - reference.len();
            let tot: f64 = resid.iter().sum();
            let pos: Vec<f64> = (0..r).map(|k| (k as f64 + u) / r as f64 * tot).collect();
            reference.extend(reference_inverse_cdf(&resid, &pos));
            assert_eq!(out, reference, "residual n={n}");
        }
    }

    #[test]
    fn systematic_equals_the_output_merge_on_awkward_weights() {
        // Zeros, one dominant weight (many offspring), totals other than 1, m != n, u at the
        // ends of [0, 1): the particle-side walk must give exactly the merge's indices, at
        // every SIMD level.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let levels = simd::SimdLevel::available();
        for case in 0..400 {
            let n = 1 + case % 37 + (case / 37) * 50;
            let mut w: Vec<f64> = (0..n)
                .map(|_| {
                    let x: f64 = rng.random();
                    match case % 4 {
                        0 => x,
                        1 => x.powi(8),
                        2 => {
                            if x < 0.6 {
                                0.0
                            } else {
                                x
                            }
                        }
                        _ => (30.0 * x).exp(),
                    }
                })
                .collect();
            if w.iter().all(|&x| x == 0.0) || case % 9 == 0 {
                // Equal weights put every running sum at an exact multiple of the spacing:
                // ties that the closed form leaves to the exact comparisons.
                w.iter_mut().for_each(|x| *x = 0.25);
            }
            let total: f64 = w.iter().sum();
            for m in [1, n / 2 + 1, n, 2 * n + 3, 9] {
                for u in [0.0, rng.random(), 1.0 - f64::EPSILON] {
                    let (mut a, mut b) = (vec![usize::MAX; m], vec![usize::MAX; m]);
                    // Rounded totals: the sum slightly above or below the weights' sum.
                    for t in [total, total * (1.0 + 1e-15), total * (1.0 - 1e-15)] {
                        systematic_merge(&w, t, u, &mut b);
                        for &level in &levels {
                            a.fill(usize::MAX);
                            let task = Systematic {
                                weights: &w,
                                total: t,
                                u,
                                out: &mut a,
                            };
                            simd::dispatch_at(level, task);
                            assert_eq!(a, b, "case {case} n {n} m {m} u {u} total {t} {level:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rejection_counts_are_unbiased_when_n_is_not_a_multiple_of_the_particles() {
        // Regression (issue 9, hypothesis): n = 1 from two equal weights always drew index 0.
        for (w, n_out) in [
            (vec![1.0, 1.0], 1),
            (vec![1.0, 2.0, 3.0], 4),
            (vec![2.0, 1.0], 3),
        ] {
            let total: f64 = w.iter().sum();
            let w_max = w.iter().copied().fold(0.0, f64::max);
            let mut counts = vec![0.0; w.len()];
            let seeds = 4000;
            for seed in 0..seeds {
                let mut out = vec![0; n_out];
                rejection_into(&w, w_max, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
                out.iter().for_each(|&i| counts[i] += 1.0);
            }
            for (c, wi) in counts.iter().zip(&w) {
                let (mean, p) = (c / seeds as f64, wi / total);
                let sd = (n_out as f64 * p * (1.0 - p) / seeds as f64).sqrt();
                assert!(
                    (mean - n_out as f64 * p).abs() < 5.0 * sd,
                    "{w:?} {n_out}: {mean}"
                );
            }
        }
    }

    #[test]
    fn rejection_equals_reference_with_the_same_stream() {
        let w = weights(50, 9);
        let w_max = w.iter().copied().fold(0.0, f64::max);
        let mut out = vec![0; 50];
        rejection_into(&w, w_max, &mut ChaCha8Rng::seed_from_u64(5), &mut out);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let reference: Vec<usize> = (0..50)
            .map(|k| {
                let mut j = k;
                loop {
                    let u: f64 = rng.random();
                    if u < w[j] / w_max {
                        return j;
                    }
                    j = rng.random_range(0..50);
                }
            })
            .collect();
        // The reference draws u before each test; ours draws the first u then (j, u) pairs:
        // the same sequence of calls.
        assert_eq!(out, reference);
    }

    #[test]
    fn every_scheme_is_unbiased() {
        let n = 10;
        let w = weights(n, 42);
        let draws = 20_000;
        for scheme in [
            Resampling::Systematic,
            Resampling::Stratified,
            Resampling::Residual,
            Resampling::Multinomial,
            Resampling::Rejection,
        ] {
            let mut counts = vec![0.0; n];
            let mut sq = vec![0.0; n];
            let mut out = vec![0; n];
            let mut scratch = vec![0.0; n];
            for d in 0..draws {
                resample_into(scheme, &w, d, &mut scratch, &mut out).unwrap();
                let mut c = vec![0.0; n];
                out.iter().for_each(|&i| c[i] += 1.0);
                for i in 0..n {
                    counts[i] += c[i];
                    sq[i] += c[i] * c[i];
                }
            }
            for i in 0..n {
                let mean = counts[i] / draws as f64;
                let var = (sq[i] / draws as f64 - mean * mean).max(1e-4);
                let se = (var / draws as f64).sqrt();
                let expect = n as f64 * w[i];
                assert!(
                    (mean - expect).abs() < 5.0 * se + 1e-9,
                    "{scheme:?} particle {i}: mean {mean} vs {expect} (se {se})"
                );
            }
        }
    }

    #[test]
    fn bad_weights_are_errors() {
        for w in [vec![], vec![0.0, 0.0], vec![1.0, f64::NAN], vec![-1.0, 2.0]] {
            assert!(
                resample(Resampling::Systematic, &w, None, 0).is_err(),
                "{w:?}"
            );
        }
    }
}
