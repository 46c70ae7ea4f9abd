//! Triangular solves against a column-major lower factor stored with a leading dimension
//! (`l[i + j·ld]` is `L[i, j]`), the layout of a GP's cached Cholesky factor. These are the
//! single-vector hot paths of prediction and streaming updates: no allocation, contiguous
//! column access, SIMD-dispatched. Batches go through faer.

use super::simd::{dispatch, mul_add, SimdTask};

/// Dot product with eight independent accumulators (vectorisable without reassociation).
#[inline(always)]
fn dot<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (ac, bc) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] = mul_add::<FMA>(ac[k], bc[k], acc[k]);
        }
    }
    let mut tail = 0.0;
    for k in chunks * 8..n {
        tail = mul_add::<FMA>(a[k], b[k], tail);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Prefetches the first cache lines of `s` into L1 (a hint; no effect off x86-64).
#[inline(always)]
fn prefetch(s: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for k in (0..s.len().min(64)).step_by(8) {
        // SAFETY: prefetching is a hint that never faults; the address is inside `s`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                s.as_ptr().add(k).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

struct Forward<'a> {
    l: &'a [f64],
    ld: usize,
    n: usize,
    b: &'a mut [f64],
}

impl SimdTask for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let Forward { l, ld, n, b } = self;
        let b = &mut b[..n];
        for j in 0..n {
            // The next column starts far away (leading dimension): ask for its first lines now
            // so the hardware prefetcher is not restarted cold at every column.
            if j + 1 < n {
                prefetch(&l[(j + 1) * ld + j + 1..(j + 1) * ld + n]);
            }
            let col = &l[j * ld + j..j * ld + n];
            let x = b[j] / col[0];
            b[j] = x;
            for (bi, &lij) in b[j + 1..].iter_mut().zip(&col[1..]) {
                *bi = mul_add::<FMA>(-x, lij, *bi);
            }
        }
    }
}

struct BackwardT<'a> {
    l: &'a [f64],
    ld: usize,
    n: usize,
    b: &'a mut [f64],
}

impl SimdTask for BackwardT<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let BackwardT { l, ld, n, b } = self;
        let b = &mut b[..n];
        for j in (0..n).rev() {
            let col = &l[j * ld + j..j * ld + n];
            let s = dot::<FMA>(&col[1..], &b[j + 1..]);
            b[j] = (b[j] - s) / col[0];
        }
    }
}

struct Dot<'a>(&'a [f64], &'a [f64]);

impl SimdTask for Dot<'_> {
    type Output = f64;
    #[inline(always)]
    fn run<const FMA: bool>(self) -> f64 {
        dot::<FMA>(self.0, self.1)
    }
}

/// Solves `L x = b` in place (`b` becomes `x`) for the leading `n × n` block of `l`.
///
/// # Panics
/// If `l` is shorter than `(n−1)·ld + n` or `b` shorter than `n` (internal callers size
/// both; this is not a public boundary).
pub fn forward_solve(l: &[f64], ld: usize, n: usize, b: &mut [f64]) {
    dispatch(Forward { l, ld, n, b });
}

/// Solves `Lᵀ x = b` in place for the leading `n × n` block of `l`.
///
/// # Panics
/// As [`forward_solve`].
pub fn backward_solve_transposed(l: &[f64], ld: usize, n: usize, b: &mut [f64]) {
    dispatch(BackwardT { l, ld, n, b });
}

/// `a · b` over the common length, SIMD-dispatched.
#[must_use]
pub fn dot_product(a: &[f64], b: &[f64]) -> f64 {
    dispatch(Dot(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_match_dense_reference() {
        let (n, ld) = (37, 40);
        let mut l = vec![f64::NAN; ld * n]; // the upper part and padding must never be read
        for j in 0..n {
            for i in j..n {
                l[i + j * ld] = if i == j {
                    1.5 + (i % 3) as f64
                } else {
                    ((i * 7 + j) % 5) as f64 * 0.1 - 0.2
                };
            }
        }
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let mut x = b.clone();
        forward_solve(&l, ld, n, &mut x);
        for i in 0..n {
            let r: f64 = (0..=i).map(|j| l[i + j * ld] * x[j]).sum();
            assert!((r - b[i]).abs() < 1e-12 * n as f64, "row {i}");
        }
        let mut y = b.clone();
        backward_solve_transposed(&l, ld, n, &mut y);
        for j in 0..n {
            let r: f64 = (j..n).map(|i| l[i + j * ld] * y[i]).sum();
            assert!((r - b[j]).abs() < 1e-12 * n as f64, "col {j}");
        }
        let a: Vec<f64> = (0..29).map(|i| i as f64 * 0.5).collect();
        let want: f64 = a.iter().map(|v| v * v).sum();
        assert!((dot_product(&a, &a) - want).abs() < 1e-12 * want);
    }
}
