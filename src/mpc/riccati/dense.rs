//! Small dense kernels on row-major slices (`a[i * cols + j]` is `A[i, j]`) for the Riccati
//! recursion. Sizes are runtime values (nx ≈ 4…50, nu ≈ 1…10); the inner loops run over a
//! contiguous row so LLVM vectorises them, and nothing allocates.

/// `c (m×n) = a (m×k) · b (k×n)`, or `c += a·b` when `acc`.
#[inline]
pub(crate) fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    if !acc {
        c.fill(0.0);
    }
    for i in 0..m {
        let crow = &mut c[i * n..(i + 1) * n];
        let arow = &a[i * k..(i + 1) * k];
        for (l, &ail) in arow.iter().enumerate() {
            let brow = &b[l * n..(l + 1) * n];
            for (cj, &bj) in crow.iter_mut().zip(brow) {
                *cj += ail * bj;
            }
        }
    }
}

/// `c (m×n) = aᵀ · b` with `a (k×m)`, `b (k×n)`, or `c += aᵀ·b` when `acc`.
#[inline]
pub(crate) fn gemm_tn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    let (a, b, c) = (&a[..k * m], &b[..k * n], &mut c[..m * n]);
    if !acc {
        c.fill(0.0);
    }
    for l in 0..k {
        let arow = &a[l * m..(l + 1) * m];
        let brow = &b[l * n..(l + 1) * n];
        for (i, &ali) in arow.iter().enumerate() {
            let crow = &mut c[i * n..(i + 1) * n];
            for (cj, &bj) in crow.iter_mut().zip(brow) {
                *cj += ali * bj;
            }
        }
    }
}

/// `y (m) = a (m×n) · x`, or `y += a·x` when `acc`.
#[inline]
pub(crate) fn gemv_n(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64], acc: bool) {
    let (a, x, y) = (&a[..m * n], &x[..n], &mut y[..m]);
    for i in 0..m {
        let row = &a[i * n..(i + 1) * n];
        let mut s = 0.0;
        for (&aij, &xj) in row.iter().zip(x) {
            s += aij * xj;
        }
        y[i] = if acc { y[i] + s } else { s };
    }
}

/// `y (n) = aᵀ · x` with `a (m×n)`, or `y += aᵀ·x` when `acc`.
#[inline]
pub(crate) fn gemv_t(m: usize, n: usize, a: &[f64], x: &[f64], y: &mut [f64], acc: bool) {
    let (a, x, y) = (&a[..m * n], &x[..m], &mut y[..n]);
    if !acc {
        y.fill(0.0);
    }
    for i in 0..m {
        let row = &a[i * n..(i + 1) * n];
        let xi = x[i];
        for (yj, &aij) in y.iter_mut().zip(row) {
            *yj += aij * xi;
        }
    }
}

/// `c (n×n) -= aᵀ·a` with `a (k×n)`.
#[inline]
pub(crate) fn syrk_tn_sub(n: usize, k: usize, a: &[f64], c: &mut [f64]) {
    let (a, c) = (&a[..k * n], &mut c[..n * n]);
    for l in 0..k {
        let arow = &a[l * n..(l + 1) * n];
        for (i, &ali) in arow.iter().enumerate() {
            let crow = &mut c[i * n..(i + 1) * n];
            for (cj, &alj) in crow.iter_mut().zip(arow) {
                *cj -= ali * alj;
            }
        }
    }
}

/// Replaces a square matrix by its symmetric part `(C + Cᵀ)/2`.
#[inline]
pub(crate) fn symmetrize(n: usize, c: &mut [f64]) {
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (c[i * n + j] + c[j * n + i]);
            c[i * n + j] = v;
            c[j * n + i] = v;
        }
    }
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
pub(crate) fn cholesky(n: usize, a: &mut [f64], tiny: f64) -> Result<usize, NotPd> {
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
        if !(d > floor) {
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
            for (&x, &y) in rowi[..j].iter().zip(rowj) {
                s -= x * y;
            }
            rowi[j] = s * inv;
        }
    }
    Ok(regularised)
}

/// `b (n×m) ← L⁻¹ b` for a lower factor `l (n×n)` from [`cholesky`].
#[inline]
pub(crate) fn trsm_lower(n: usize, m: usize, l: &[f64], b: &mut [f64]) {
    let (l, b) = (&l[..n * n], &mut b[..n * m]);
    for i in 0..n {
        let (done, rest) = b.split_at_mut(i * m);
        let bi = &mut rest[..m];
        for k in 0..i {
            let lik = l[i * n + k];
            let bk = &done[k * m..(k + 1) * m];
            for (x, &y) in bi.iter_mut().zip(bk) {
                *x -= lik * y;
            }
        }
        let inv = 1.0 / l[i * n + i];
        for x in bi.iter_mut() {
            *x *= inv;
        }
    }
}

/// `x ← L⁻¹ x`.
#[inline]
pub(crate) fn trsv_lower(n: usize, l: &[f64], x: &mut [f64]) {
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * n + k] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
}

/// `x ← L⁻ᵀ x`.
#[inline]
pub(crate) fn trsv_lower_t(n: usize, l: &[f64], x: &mut [f64]) {
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
        gemm_nn(m, n, k, &a, &b, &mut c, false);
        let r = naive(m, n, k, &a, &b);
        assert!(c.iter().zip(&r).all(|(x, y)| (x - y).abs() < 1e-14));
        // aᵀ b with a stored (k×m) = transpose of the (m×k) a above.
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for l in 0..k {
                at[l * m + i] = a[i * k + l];
            }
        }
        gemm_tn(m, n, k, &at, &b, &mut c, false);
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
        gemv_n(m, n, &r, &x, &mut y, false);
        let mut y2 = vec![0.0; m];
        gemv_t(n, m, &bt, &x, &mut y2, false);
        assert!(y.iter().zip(&y2).all(|(p, q)| (p - q).abs() < 1e-14));
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
        assert_eq!(cholesky(n, &mut l, 1e-14), Ok(0));
        let b = fill(n, 7);
        let mut x = b.clone();
        trsv_lower(n, &l, &mut x);
        trsv_lower_t(n, &l, &mut x);
        let mut ax = vec![0.0; n];
        gemv_n(n, n, &a0, &x, &mut ax, false);
        assert!(ax.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-10));
        let mut bad = a0.clone();
        bad[2 * n + 2] = -100.0;
        assert!(cholesky(n, &mut bad, 1e-14).is_err());
        // trsm agrees with column-wise trsv.
        let mut bm = fill(n * 2, 8);
        let col0: Vec<f64> = (0..n).map(|i| bm[i * 2]).collect();
        trsm_lower(n, 2, &l, &mut bm);
        let mut c0 = col0.clone();
        trsv_lower(n, &l, &mut c0);
        assert!((0..n).all(|i| (bm[i * 2] - c0[i]).abs() < 1e-12));
        a = a0;
        let _ = a;
    }
}
