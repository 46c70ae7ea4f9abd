//! Small dense kernels on row-major slices (`a[i * cols + j]` is `A[i, j]`) for the Riccati
//! recursion. Sizes are runtime values (nx ≈ 4…50, nu ≈ 1…10); the inner loops run over a
//! contiguous row so LLVM vectorises them, and nothing allocates. Every kernel is
//! `#[inline(always)]` and generic over `FMA` so that it compiles into the caller's SIMD tier
//! ([`crate::linalg::simd::dispatch`]).

use crate::linalg::simd::mul_add;

/// Register block of the matrix products: `MR × NR` accumulators.
const MR: usize = 4;
const NR: usize = 4;

/// `c (m×n) = a (m×k) · b (k×n)`, or `c += a·b` when `acc`. 4×4 register blocks, scalar edges.
#[inline(always)]
pub(crate) fn gemm_nn<const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    let (mb, nb) = (m / MR * MR, n / NR * NR);
    for i0 in (0..mb).step_by(MR) {
        let a4: [&[f64]; MR] = std::array::from_fn(|r| &a[(i0 + r) * k..(i0 + r + 1) * k]);
        for j0 in (0..nb).step_by(NR) {
            let mut s = [[0.0f64; NR]; MR];
            for l in 0..k {
                let bl = &b[l * n + j0..l * n + j0 + NR];
                for r in 0..MR {
                    let arl = a4[r][l];
                    for q in 0..NR {
                        s[r][q] = mul_add::<FMA>(arl, bl[q], s[r][q]);
                    }
                }
            }
            store_block(c, n, i0, j0, &s, acc, 1.0);
        }
    }
    // Edges: columns nb.. of the blocked rows, then the remaining rows.
    for i in 0..m {
        let j_start = if i < mb { nb } else { 0 };
        for j in j_start..n {
            let mut v = 0.0;
            for l in 0..k {
                v = mul_add::<FMA>(a[i * k + l], b[l * n + j], v);
            }
            let dst = &mut c[i * n + j];
            *dst = if acc { *dst + v } else { v };
        }
    }
}

#[inline(always)]
fn store_block(
    c: &mut [f64],
    n: usize,
    i0: usize,
    j0: usize,
    s: &[[f64; NR]; MR],
    acc: bool,
    alpha: f64,
) {
    for r in 0..MR {
        let row = &mut c[(i0 + r) * n + j0..(i0 + r) * n + j0 + NR];
        for q in 0..NR {
            row[q] = if acc {
                row[q] + alpha * s[r][q]
            } else {
                alpha * s[r][q]
            };
        }
    }
}

/// `c (m×n) = alpha · aᵀ · b` with `a (k×m)`, `b (k×n)`, or `c += alpha · aᵀ·b` when `acc`.
/// With `LOWER` (square, symmetric result) the register blocks strictly above the diagonal
/// are skipped: only the lower triangle is valid afterwards (see [`mirror_lower`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tn_scaled<const FMA: bool, const LOWER: bool>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    let (a, b, c) = (&a[..k * m], &b[..k * n], &mut c[..m * n]);
    let (mb, nb) = (m / MR * MR, n / NR * NR);
    for i0 in (0..mb).step_by(MR) {
        for j0 in (0..nb).step_by(NR) {
            if LOWER && j0 > i0 {
                break;
            }
            let mut s = [[0.0f64; NR]; MR];
            for l in 0..k {
                let al = &a[l * m + i0..l * m + i0 + MR];
                let bl = &b[l * n + j0..l * n + j0 + NR];
                for r in 0..MR {
                    for q in 0..NR {
                        s[r][q] = mul_add::<FMA>(al[r], bl[q], s[r][q]);
                    }
                }
            }
            store_block(c, n, i0, j0, &s, acc, alpha);
        }
    }
    for i in 0..m {
        let j_start = if i < mb { nb } else { 0 };
        for j in j_start..n {
            let mut v = 0.0;
            for l in 0..k {
                v = mul_add::<FMA>(a[l * m + i], b[l * n + j], v);
            }
            let dst = &mut c[i * n + j];
            *dst = if acc { *dst + alpha * v } else { alpha * v };
        }
    }
}

/// `c (m×n) = aᵀ · b` with `a (k×m)`, `b (k×n)`, or `c += aᵀ·b` when `acc`.
#[inline(always)]
pub(crate) fn gemm_tn<const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    gemm_tn_scaled::<FMA, false>(m, n, k, 1.0, a, b, c, acc);
}

/// `c (n×n) += aᵀ · b` for a product known to be symmetric, lower triangle only.
#[inline(always)]
pub(crate) fn gemm_tn_lower<const FMA: bool>(
    n: usize,
    k: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
) {
    gemm_tn_scaled::<FMA, true>(n, n, k, 1.0, a, b, c, true);
}

/// Copies the lower triangle of a square matrix onto its upper triangle.
#[inline(always)]
pub(crate) fn mirror_lower(n: usize, c: &mut [f64]) {
    let c = &mut c[..n * n];
    for i in 0..n {
        for j in 0..i {
            c[j * n + i] = c[i * n + j];
        }
    }
}

/// `y (m) = a (m×n) · x`, or `y += a·x` when `acc`.
#[inline(always)]
pub(crate) fn gemv_n<const FMA: bool>(
    m: usize,
    n: usize,
    a: &[f64],
    x: &[f64],
    y: &mut [f64],
    acc: bool,
) {
    let (a, x, y) = (&a[..m * n], &x[..n], &mut y[..m]);
    for i in 0..m {
        let s = dot::<FMA>(&a[i * n..(i + 1) * n], x);
        y[i] = if acc { y[i] + s } else { s };
    }
}

/// Dot product with four independent accumulators (vectorisable without reassociation).
#[inline(always)]
pub(crate) fn dot<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let n4 = n / 4 * 4;
    for c in (0..n4).step_by(4) {
        for l in 0..4 {
            acc[l] = mul_add::<FMA>(a[c + l], b[c + l], acc[l]);
        }
    }
    let mut tail = 0.0;
    for j in n4..n {
        tail = mul_add::<FMA>(a[j], b[j], tail);
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// `y += alpha · x`.
#[inline(always)]
pub(crate) fn axpy<const FMA: bool>(alpha: f64, x: &[f64], y: &mut [f64]) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    for j in 0..n {
        y[j] = mul_add::<FMA>(alpha, x[j], y[j]);
    }
}

/// `y (n) = aᵀ · x` with `a (m×n)`, or `y += aᵀ·x` when `acc`.
#[inline(always)]
pub(crate) fn gemv_t<const FMA: bool>(
    m: usize,
    n: usize,
    a: &[f64],
    x: &[f64],
    y: &mut [f64],
    acc: bool,
) {
    let (a, x, y) = (&a[..m * n], &x[..m], &mut y[..n]);
    if !acc {
        y.fill(0.0);
    }
    for i in 0..m {
        let row = &a[i * n..(i + 1) * n];
        let xi = x[i];
        for j in 0..n {
            y[j] = mul_add::<FMA>(row[j], xi, y[j]);
        }
    }
}

/// `c (n×n) -= aᵀ·a` with `a (k×n)`, lower triangle only (see [`mirror_lower`]).
#[inline(always)]
pub(crate) fn syrk_tn_sub<const FMA: bool>(n: usize, k: usize, a: &[f64], c: &mut [f64]) {
    gemm_tn_scaled::<FMA, true>(n, n, k, -1.0, a, a, c, true);
}

/// Outcome of [`cholesky`] when the matrix is not (numerically) positive definite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NotPd {
    /// Index of the failing pivot.
    pub pivot: usize,
    /// Its value before any regularisation.
    pub value: f64,
}

/// In-place lower Cholesky factor `A = L Lᵀ` (the strictly upper part is left as is and never
/// read afterwards). A pivot below `tiny · max|diag|` but above `-1e-8 · max|diag|` is replaced by
/// `tiny · max|diag|` (a rank-deficiency regularisation, counted in the return value); a pivot
/// further below zero, or NaN, is an error.
#[inline(always)]
pub(crate) fn cholesky<const FMA: bool>(
    n: usize,
    a: &mut [f64],
    tiny: f64,
) -> Result<usize, NotPd> {
    let a = &mut a[..n * n];
    let mut scale = 0.0f64;
    for i in 0..n {
        scale = scale.max(a[i * n + i].abs());
    }
    let floor = tiny * scale.max(f64::MIN_POSITIVE);
    let mut regularised = 0;
    for j in 0..n {
        let mut d = a[j * n + j];
        for l in 0..j {
            d -= a[j * n + l] * a[j * n + l];
        }
        if d.is_nan() || d <= floor {
            if d.is_nan() || d < -1e-8 * scale {
                return Err(NotPd { pivot: j, value: d });
            }
            d = floor;
            regularised += 1;
        }
        let djj = d.sqrt();
        a[j * n + j] = djj;
        let inv = 1.0 / djj;
        // Rows below j: L[i, j] = (A[i, j] - Σ_l L[i, l] L[j, l]) / L[j, j].
        for i in j + 1..n {
            let (head, tail) = a.split_at_mut(i * n);
            let rowj = &head[j * n..j * n + j];
            let rowi = &mut tail[..n];
            let mut s = rowi[j];
            for l in 0..j {
                s -= rowi[l] * rowj[l];
            }
            rowi[j] = s * inv;
        }
    }
    Ok(regularised)
}

/// `b (n×m) ← L⁻¹ b` for a lower factor `l (n×n)` from [`cholesky`].
#[inline(always)]
pub(crate) fn trsm_lower<const FMA: bool>(n: usize, m: usize, l: &[f64], b: &mut [f64]) {
    let (l, b) = (&l[..n * n], &mut b[..n * m]);
    for i in 0..n {
        let (done, rest) = b.split_at_mut(i * m);
        let bi = &mut rest[..m];
        for k in 0..i {
            let lik = l[i * n + k];
            let bk = &done[k * m..(k + 1) * m];
            for j in 0..m {
                bi[j] = mul_add::<FMA>(-lik, bk[j], bi[j]);
            }
        }
        let inv = 1.0 / l[i * n + i];
        for x in bi.iter_mut() {
            *x *= inv;
        }
    }
}

/// `x ← L⁻¹ x`.
#[inline(always)]
pub(crate) fn trsv_lower<const FMA: bool>(n: usize, l: &[f64], x: &mut [f64]) {
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * n + k] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
}

/// `x ← L⁻ᵀ x`.
#[inline(always)]
pub(crate) fn trsv_lower_t<const FMA: bool>(n: usize, l: &[f64], x: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = x[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    fn fill(len: usize, seed: u64) -> Vec<f64> {
        (0..len)
            .map(|i| (((i as u64 + 1) * 2654435761 + seed * 97) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn products_match_naive() {
        let (m, n, k) = (5, 7, 3);
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let mut c = vec![9.0; m * n];
        gemm_nn::<false>(m, n, k, &a, &b, &mut c, false);
        let r = naive(m, n, k, &a, &b);
        assert!(c.iter().zip(&r).all(|(x, y)| (x - y).abs() < 1e-14));
        // aᵀ b with a stored (k×m) = transpose of the (m×k) a above.
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for l in 0..k {
                at[l * m + i] = a[i * k + l];
            }
        }
        gemm_tn::<false>(m, n, k, &at, &b, &mut c, false);
        assert!(c.iter().zip(&r).all(|(x, y)| (x - y).abs() < 1e-14));
        let x = fill(n, 3);
        let mut y = vec![0.0; m];
        let bt = {
            let mut t = vec![0.0; n * m];
            for i in 0..m {
                for j in 0..n {
                    t[j * m + i] = r[i * n + j];
                }
            }
            t
        };
        gemv_n::<false>(m, n, &r, &x, &mut y, false);
        let mut y2 = vec![0.0; m];
        gemv_t::<false>(n, m, &bt, &x, &mut y2, false);
        assert!(y.iter().zip(&y2).all(|(p, q)| (p - q).abs() < 1e-14));
    }

    #[test]
    fn lower_triangle_products_match_full_ones() {
        for n in [3, 4, 6, 9, 12] {
            let k = 5;
            let a = fill(k * n, 11);
            let mut full = vec![0.5; n * n];
            let mut low = full.clone();
            gemm_tn::<false>(n, n, k, &a, &a, &mut full, true);
            gemm_tn_lower::<false>(n, k, &a, &a, &mut low);
            mirror_lower(n, &mut low);
            assert!(
                full.iter().zip(&low).all(|(x, y)| (x - y).abs() < 1e-13),
                "n {n}"
            );
            syrk_tn_sub::<false>(n, k, &a, &mut low);
            mirror_lower(n, &mut low);
            assert!(low.iter().all(|v| (v - 0.5).abs() < 1e-13), "n {n}");
        }
    }

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let n = 6;
        let g = fill(n * n, 5);
        let mut a = naive(n, n, n, &g, &{
            let mut t = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    t[j * n + i] = g[i * n + j];
                }
            }
            t
        });
        for i in 0..n {
            a[i * n + i] += 1.0;
        }
        let a0 = a.clone();
        let mut l = a.clone();
        assert_eq!(cholesky::<false>(n, &mut l, 1e-14), Ok(0));
        let b = fill(n, 7);
        let mut x = b.clone();
        trsv_lower::<false>(n, &l, &mut x);
        trsv_lower_t::<false>(n, &l, &mut x);
        let mut ax = vec![0.0; n];
        gemv_n::<false>(n, n, &a0, &x, &mut ax, false);
        assert!(ax.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-10));
        let mut bad = a0.clone();
        bad[2 * n + 2] = -100.0;
        assert!(cholesky::<false>(n, &mut bad, 1e-14).is_err());
        // trsm agrees with column-wise trsv.
        let mut bm = fill(n * 2, 8);
        let col0: Vec<f64> = (0..n).map(|i| bm[i * 2]).collect();
        trsm_lower::<false>(n, 2, &l, &mut bm);
        let mut c0 = col0.clone();
        trsv_lower::<false>(n, &l, &mut c0);
        assert!((0..n).all(|i| (bm[i * 2] - c0[i]).abs() < 1e-12));
        a = a0;
        let _ = a;
    }
}
