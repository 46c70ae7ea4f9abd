//! Covariance kernels with ARD length scales, sums and products.
//!
//! | kernel | k(x, y) with r² = Σₖ ((xₖ − yₖ)/ℓₖ)² | hyperparameters (log space) |
//! |---|---|---|
//! | squared exponential | σ² exp(−r²/2) | σ², ℓ₁…ℓ_L |
//! | Matérn ν = ½, 3/2, 5/2 | σ² e^{−r}, σ²(1+√3r)e^{−√3r}, σ²(1+√5r+5r²/3)e^{−√5r} | σ², ℓ₁…ℓ_L |
//! | rational quadratic | σ² (1 + r²/(2α))^{−α} | σ², ℓ₁…ℓ_L, α |
//! | periodic | σ² exp(−2 sin²(π‖x−y‖/p)/ℓ²) | σ², ℓ, p |
//! | linear | σ² x·y | σ² |
//! | constant | c | c |
//! | white | s·[x and y are the same training point] | s |
//!
//! A length scale given as one value is isotropic (one hyperparameter, any input dimension);
//! given as `d` values it is ARD. Hyperparameters are exposed as their natural logarithms
//! (`theta`), in the order of the table, left operand first for sums and products — the same
//! order scikit-learn uses for `ConstantKernel(σ²) * RBF(ℓ)`.
//!
//! Matrices are computed row by row: the second input set is transposed (and scaled by the
//! length scales) into a [`KernelWorkspace`] once, so each row is a handful of contiguous,
//! vectorised passes ([`crate::linalg::simd`]), and row blocks run in parallel under
//! [`Par::Rayon`]. Results do not depend on the thread count or the SIMD tier beyond a few ulp.
//!
//! ```
//! use intent_engine::{gp::Kernel, Par};
//! use ndarray::array;
//!
//! let k = Kernel::squared_exponential(2.0, &[0.5])? + Kernel::white(0.1)?;
//! let x = array![[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]];
//! let kxx = k.matrix(x.view(), None, Par::Seq)?;
//! assert!((kxx[[0, 0]] - 2.1).abs() < 1e-15);
//! assert!((kxx[[0, 1]] - 2.0 * (-2.0f64).exp()).abs() < 1e-15);
//! assert_eq!(k.theta().len(), 3);
//! # Ok::<(), intent_engine::Error>(())
//! ```

#![allow(clippy::many_single_char_names)]

mod eval;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::{Add, Mul};

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3};

use crate::error::{check_positive, Error, Result};
use crate::linalg::Par;

/// Smoothness of a Matérn kernel (the half-integer cases, which have closed forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaternNu {
    /// ν = 1/2: the exponential (Ornstein–Uhlenbeck) kernel.
    Half,
    /// ν = 3/2: once mean-square differentiable.
    ThreeHalves,
    /// ν = 5/2: twice mean-square differentiable.
    FiveHalves,
}

impl MaternNu {
    /// Converts 0.5, 1.5 or 2.5.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `nu` for any other value.
    pub fn from_f64(nu: f64) -> Result<Self> {
        if nu == 0.5 {
            Ok(MaternNu::Half)
        } else if nu == 1.5 {
            Ok(MaternNu::ThreeHalves)
        } else if nu == 2.5 {
            Ok(MaternNu::FiveHalves)
        } else {
            Err(Error::invalid_value(
                "nu",
                format_args!("must be 0.5, 1.5 or 2.5, got {nu}"),
            ))
        }
    }

    /// The value of ν.
    #[must_use]
    pub fn value(self) -> f64 {
        match self {
            MaternNu::Half => 0.5,
            MaternNu::ThreeHalves => 1.5,
            MaternNu::FiveHalves => 2.5,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    SquaredExponential {
        variance: f64,
        ls: Vec<f64>,
    },
    Matern {
        nu: MaternNu,
        variance: f64,
        ls: Vec<f64>,
    },
    RationalQuadratic {
        variance: f64,
        ls: Vec<f64>,
        alpha: f64,
    },
    Periodic {
        variance: f64,
        ls: f64,
        period: f64,
    },
    Linear {
        variance: f64,
    },
    Constant {
        value: f64,
    },
    White {
        noise: f64,
    },
    Sum(Box<Node>, Box<Node>),
    Product(Box<Node>, Box<Node>),
}

impl Node {
    fn n_params(&self) -> usize {
        match self {
            Node::SquaredExponential { ls, .. } | Node::Matern { ls, .. } => 1 + ls.len(),
            Node::RationalQuadratic { ls, .. } => 2 + ls.len(),
            Node::Periodic { .. } => 3,
            Node::Linear { .. } | Node::Constant { .. } | Node::White { .. } => 1,
            Node::Sum(a, b) | Node::Product(a, b) => a.n_params() + b.n_params(),
        }
    }

    /// Nesting depth of sums/products (0 for a leaf).
    fn depth(&self) -> usize {
        match self {
            Node::Sum(a, b) | Node::Product(a, b) => 1 + a.depth().max(b.depth()),
            _ => 0,
        }
    }

    /// Input dimension fixed by ARD length scales, if any; errors if leaves disagree.
    fn dim(&self) -> Result<Option<usize>> {
        match self {
            Node::SquaredExponential { ls, .. }
            | Node::Matern { ls, .. }
            | Node::RationalQuadratic { ls, .. } => Ok((ls.len() > 1).then_some(ls.len())),
            Node::Sum(a, b) | Node::Product(a, b) => match (a.dim()?, b.dim()?) {
                (Some(x), Some(y)) if x != y => Err(Error::shape(
                    "kernel",
                    format_args!(
                        "operands have ARD length scales of different lengths ({x} and {y})"
                    ),
                )),
                (x, y) => Ok(x.or(y)),
            },
            _ => Ok(None),
        }
    }

    /// Whether the leaf reads the transposed second input (all but constant and white).
    fn needs_inputs(&self) -> bool {
        !matches!(self, Node::Constant { .. } | Node::White { .. })
    }

    fn theta_into(&self, out: &mut Vec<f64>) {
        match self {
            Node::SquaredExponential { variance, ls } | Node::Matern { variance, ls, .. } => {
                out.push(variance.ln());
                out.extend(ls.iter().map(|l| l.ln()));
            }
            Node::RationalQuadratic {
                variance,
                ls,
                alpha,
            } => {
                out.push(variance.ln());
                out.extend(ls.iter().map(|l| l.ln()));
                out.push(alpha.ln());
            }
            Node::Periodic {
                variance,
                ls,
                period,
            } => out.extend([variance.ln(), ls.ln(), period.ln()]),
            Node::Linear { variance } => out.push(variance.ln()),
            Node::Constant { value } => out.push(value.ln()),
            Node::White { noise } => out.push(noise.ln()),
            Node::Sum(a, b) | Node::Product(a, b) => {
                a.theta_into(out);
                b.theta_into(out);
            }
        }
    }

    /// Writes `exp(theta)` into the parameters; `theta` is already validated.
    fn set_theta(&mut self, theta: &[f64]) -> usize {
        let mut it = theta.iter().map(|t| t.exp());
        let mut next = || it.next().unwrap_or(1.0);
        match self {
            Node::SquaredExponential { variance, ls } | Node::Matern { variance, ls, .. } => {
                *variance = next();
                ls.iter_mut().for_each(|l| *l = next());
            }
            Node::RationalQuadratic {
                variance,
                ls,
                alpha,
            } => {
                *variance = next();
                ls.iter_mut().for_each(|l| *l = next());
                *alpha = next();
            }
            Node::Periodic {
                variance,
                ls,
                period,
            } => {
                *variance = next();
                *ls = next();
                *period = next();
            }
            Node::Linear { variance } => *variance = next(),
            Node::Constant { value } => *value = next(),
            Node::White { noise } => *noise = next(),
            Node::Sum(a, b) | Node::Product(a, b) => {
                let pa = a.set_theta(theta);
                let pb = b.set_theta(&theta[pa..]);
                return pa + pb;
            }
        }
        self.n_params()
    }

    fn names_into(&self, prefix: &str, out: &mut Vec<String>) {
        let ls_names = |ls: &[f64], out: &mut Vec<String>| {
            if ls.len() == 1 {
                out.push(format!("{prefix}length_scale"));
            } else {
                out.extend((0..ls.len()).map(|k| format!("{prefix}length_scale[{k}]")));
            }
        };
        match self {
            Node::SquaredExponential { ls, .. } | Node::Matern { ls, .. } => {
                out.push(format!("{prefix}variance"));
                ls_names(ls, out);
            }
            Node::RationalQuadratic { ls, .. } => {
                out.push(format!("{prefix}variance"));
                ls_names(ls, out);
                out.push(format!("{prefix}alpha"));
            }
            Node::Periodic { .. } => {
                for n in ["variance", "length_scale", "period"] {
                    out.push(format!("{prefix}{n}"));
                }
            }
            Node::Linear { .. } => out.push(format!("{prefix}variance")),
            Node::Constant { .. } => out.push(format!("{prefix}value")),
            Node::White { .. } => out.push(format!("{prefix}noise")),
            Node::Sum(a, b) | Node::Product(a, b) => {
                a.names_into(&format!("{prefix}k1__"), out);
                b.names_into(&format!("{prefix}k2__"), out);
            }
        }
    }

    fn diag_value(&self, x: &ArrayView2<'_, f64>, i: usize) -> f64 {
        match self {
            Node::SquaredExponential { variance, .. }
            | Node::Matern { variance, .. }
            | Node::RationalQuadratic { variance, .. }
            | Node::Periodic { variance, .. } => *variance,
            Node::Linear { variance } => variance * x.row(i).iter().map(|v| v * v).sum::<f64>(),
            Node::Constant { value } => *value,
            Node::White { noise } => *noise,
            Node::Sum(a, b) => a.diag_value(x, i) + b.diag_value(x, i),
            Node::Product(a, b) => a.diag_value(x, i) * b.diag_value(x, i),
        }
    }
}

impl Node {
    /// `k(x, y)` and its gradient with respect to `x` (into `grad`, length d). `scratch`
    /// needs `depth · d` entries.
    fn value_grad_x(&self, x: &[f64], y: &[f64], grad: &mut [f64], scratch: &mut [f64]) -> f64 {
        let d = x.len();
        let scaled = |ls: &[f64], k: usize| ls[if ls.len() == 1 { 0 } else { k }];
        match self {
            Node::SquaredExponential { ls, .. }
            | Node::Matern { ls, .. }
            | Node::RationalQuadratic { ls, .. } => {
                let s: f64 = (0..d)
                    .map(|k| ((x[k] - y[k]) / scaled(ls, k)).powi(2))
                    .sum();
                // k = f(s); ∂k/∂x_k = −g · (x_k − y_k)/ℓ_k² with g = −2 f'(s).
                let (val, g) = match self {
                    Node::SquaredExponential { variance, .. } => {
                        let v = variance * (-0.5 * s).exp();
                        (v, v)
                    }
                    Node::Matern { nu, variance, .. } => {
                        let r = s.sqrt();
                        match nu {
                            MaternNu::Half => {
                                let v = variance * (-r).exp();
                                (v, if r > 0.0 { v / r } else { 0.0 })
                            }
                            MaternNu::ThreeHalves => {
                                let t = 3f64.sqrt() * r;
                                let e = variance * (-t).exp();
                                ((1.0 + t) * e, 3.0 * e)
                            }
                            MaternNu::FiveHalves => {
                                let t = 5f64.sqrt() * r;
                                let e = variance * (-t).exp();
                                ((1.0 + t + t * t / 3.0) * e, 5.0 / 3.0 * (1.0 + t) * e)
                            }
                        }
                    }
                    Node::RationalQuadratic {
                        variance, alpha, ..
                    } => {
                        let base = 1.0 + s / (2.0 * alpha);
                        let v = variance * base.powf(-alpha);
                        (v, v / base)
                    }
                    _ => unreachable!("matched above"),
                };
                for k in 0..d {
                    let l = scaled(ls, k);
                    grad[k] = -g * (x[k] - y[k]) / (l * l);
                }
                val
            }
            Node::Periodic {
                variance,
                ls,
                period,
            } => {
                let dist = (0..d).map(|k| (x[k] - y[k]).powi(2)).sum::<f64>().sqrt();
                let arg = std::f64::consts::PI * dist / period;
                let (sn, cs) = arg.sin_cos();
                let v = variance * (-2.0 * sn * sn / (ls * ls)).exp();
                // ∂k/∂dist = −k · 4 sin cos · π / (p ℓ²); ∂dist/∂x_k = (x_k − y_k)/dist.
                let f = if dist > 0.0 {
                    -v * 4.0 * sn * cs * std::f64::consts::PI / (period * ls * ls * dist)
                } else {
                    0.0
                };
                for k in 0..d {
                    grad[k] = f * (x[k] - y[k]);
                }
                v
            }
            Node::Linear { variance } => {
                for k in 0..d {
                    grad[k] = variance * y[k];
                }
                variance * (0..d).map(|k| x[k] * y[k]).sum::<f64>()
            }
            Node::Constant { value } => {
                grad[..d].iter_mut().for_each(|g| *g = 0.0);
                *value
            }
            // Between distinct points the white kernel is zero.
            Node::White { .. } => {
                grad[..d].iter_mut().for_each(|g| *g = 0.0);
                0.0
            }
            Node::Sum(a, b) | Node::Product(a, b) => {
                let (tmp, rest) = scratch.split_at_mut(d);
                let va = a.value_grad_x(x, y, grad, rest);
                let vb = b.value_grad_x(x, y, tmp, rest);
                if matches!(self, Node::Sum(..)) {
                    grad[..d]
                        .iter_mut()
                        .zip(tmp.iter())
                        .for_each(|(g, t)| *g += t);
                    va + vb
                } else {
                    grad[..d]
                        .iter_mut()
                        .zip(tmp.iter())
                        .for_each(|(g, t)| *g = *g * vb + va * t);
                    va * vb
                }
            }
        }
    }

    /// `k(x, x)` and its gradient with respect to `x` (moving both arguments together).
    fn diag_grad_x(&self, x: &[f64], grad: &mut [f64], scratch: &mut [f64]) -> f64 {
        let d = x.len();
        match self {
            Node::Linear { variance } => {
                for k in 0..d {
                    grad[k] = 2.0 * variance * x[k];
                }
                variance * x.iter().map(|v| v * v).sum::<f64>()
            }
            Node::Sum(a, b) | Node::Product(a, b) => {
                let (tmp, rest) = scratch.split_at_mut(d);
                let va = a.diag_grad_x(x, grad, rest);
                let vb = b.diag_grad_x(x, tmp, rest);
                if matches!(self, Node::Sum(..)) {
                    grad[..d]
                        .iter_mut()
                        .zip(tmp.iter())
                        .for_each(|(g, t)| *g += t);
                    va + vb
                } else {
                    grad[..d]
                        .iter_mut()
                        .zip(tmp.iter())
                        .for_each(|(g, t)| *g = *g * vb + va * t);
                    va * vb
                }
            }
            // Stationary, constant and white kernels are constant on the diagonal.
            leaf => {
                grad[..d].iter_mut().for_each(|g| *g = 0.0);
                match leaf {
                    Node::SquaredExponential { variance, .. }
                    | Node::Matern { variance, .. }
                    | Node::RationalQuadratic { variance, .. }
                    | Node::Periodic { variance, .. } => *variance,
                    Node::Constant { value } => *value,
                    Node::White { noise } => *noise,
                    _ => unreachable!("handled above"),
                }
            }
        }
    }
}

fn fmt_ls(ls: &[f64]) -> String {
    if ls.len() == 1 {
        format!("{}", ls[0])
    } else {
        format!("{ls:?}")
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::SquaredExponential { variance, ls } => {
                write!(f, "RBF(length_scale={}, variance={variance})", fmt_ls(ls))
            }
            Node::Matern { nu, variance, ls } => write!(
                f,
                "Matern(nu={}, length_scale={}, variance={variance})",
                nu.value(),
                fmt_ls(ls)
            ),
            Node::RationalQuadratic {
                variance,
                ls,
                alpha,
            } => write!(
                f,
                "RationalQuadratic(length_scale={}, alpha={alpha}, variance={variance})",
                fmt_ls(ls)
            ),
            Node::Periodic {
                variance,
                ls,
                period,
            } => write!(
                f,
                "Periodic(length_scale={ls}, period={period}, variance={variance})"
            ),
            Node::Linear { variance } => write!(f, "Linear(variance={variance})"),
            Node::Constant { value } => write!(f, "Constant(value={value})"),
            Node::White { noise } => write!(f, "White(noise={noise})"),
            Node::Sum(a, b) => write!(f, "({a} + {b})"),
            Node::Product(a, b) => write!(f, "({a} * {b})"),
        }
    }
}

/// A covariance function: a leaf kernel or a sum/product of kernels.
///
/// Construct leaves with the associated functions (they validate their arguments) and
/// compose with `+` and `*`. See the [module docs](self) for the formulas.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    node: Node,
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

fn check_length_scale(ls: &[f64]) -> Result<Vec<f64>> {
    if ls.is_empty() {
        return Err(Error::shape(
            "length_scale",
            "must have one value (isotropic) or one per input dimension (ARD), got none",
        ));
    }
    for &l in ls {
        if !(l.is_finite() && l > 0.0) {
            return Err(Error::invalid_value(
                "length_scale",
                format_args!("must be positive and finite, got {l}"),
            ));
        }
    }
    Ok(ls.to_vec())
}

impl Kernel {
    fn leaf(node: Node) -> Self {
        Kernel { node }
    }

    /// Squared-exponential (RBF) kernel `σ² exp(−r²/2)`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `variance` or a length scale is not positive and finite;
    /// [`Error::Shape`] if `length_scale` is empty.
    pub fn squared_exponential(variance: f64, length_scale: &[f64]) -> Result<Self> {
        check_positive("variance", variance)?;
        Ok(Self::leaf(Node::SquaredExponential {
            variance,
            ls: check_length_scale(length_scale)?,
        }))
    }

    /// Matérn kernel with ν ∈ {½, 3/2, 5/2}.
    ///
    /// # Errors
    /// As [`Kernel::squared_exponential`].
    pub fn matern(nu: MaternNu, variance: f64, length_scale: &[f64]) -> Result<Self> {
        check_positive("variance", variance)?;
        Ok(Self::leaf(Node::Matern {
            nu,
            variance,
            ls: check_length_scale(length_scale)?,
        }))
    }

    /// Rational-quadratic kernel `σ² (1 + r²/(2α))^{−α}` (a scale mixture of RBFs).
    ///
    /// # Errors
    /// As [`Kernel::squared_exponential`], and for `alpha` not positive and finite.
    pub fn rational_quadratic(variance: f64, length_scale: &[f64], alpha: f64) -> Result<Self> {
        check_positive("variance", variance)?;
        check_positive("alpha", alpha)?;
        Ok(Self::leaf(Node::RationalQuadratic {
            variance,
            ls: check_length_scale(length_scale)?,
            alpha,
        }))
    }

    /// Periodic (exp-sine-squared) kernel `σ² exp(−2 sin²(π‖x−y‖/p)/ℓ²)`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if any argument is not positive and finite.
    pub fn periodic(variance: f64, length_scale: f64, period: f64) -> Result<Self> {
        check_positive("variance", variance)?;
        check_positive("length_scale", length_scale)?;
        check_positive("period", period)?;
        Ok(Self::leaf(Node::Periodic {
            variance,
            ls: length_scale,
            period,
        }))
    }

    /// Linear (dot-product) kernel `σ² x·y`; add a [`Kernel::constant`] for an offset.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `variance` is not positive and finite.
    pub fn linear(variance: f64) -> Result<Self> {
        check_positive("variance", variance)?;
        Ok(Self::leaf(Node::Linear { variance }))
    }

    /// Constant kernel `c`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `value` is not positive and finite.
    pub fn constant(value: f64) -> Result<Self> {
        check_positive("value", value)?;
        Ok(Self::leaf(Node::Constant { value }))
    }

    /// White-noise kernel: `noise` on the diagonal of `K(X, X)`, zero between distinct sets.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `noise` is not positive and finite.
    pub fn white(noise: f64) -> Result<Self> {
        check_positive("noise", noise)?;
        Ok(Self::leaf(Node::White { noise }))
    }

    /// `a + b`.
    ///
    /// # Errors
    /// [`Error::Shape`] if both operands have ARD length scales of different lengths.
    pub fn sum(a: Kernel, b: Kernel) -> Result<Self> {
        let k = Kernel {
            node: Node::Sum(Box::new(a.node), Box::new(b.node)),
        };
        k.node.dim()?;
        Ok(k)
    }

    /// `a * b`.
    ///
    /// # Errors
    /// As [`Kernel::sum`].
    pub fn product(a: Kernel, b: Kernel) -> Result<Self> {
        let k = Kernel {
            node: Node::Product(Box::new(a.node), Box::new(b.node)),
        };
        k.node.dim()?;
        Ok(k)
    }

    /// The kernel's class name: `"RBF"`, `"Matern"`, `"RationalQuadratic"`, `"Periodic"`,
    /// `"Linear"`, `"Constant"`, `"White"`, `"Sum"` or `"Product"`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.node {
            Node::SquaredExponential { .. } => "RBF",
            Node::Matern { .. } => "Matern",
            Node::RationalQuadratic { .. } => "RationalQuadratic",
            Node::Periodic { .. } => "Periodic",
            Node::Linear { .. } => "Linear",
            Node::Constant { .. } => "Constant",
            Node::White { .. } => "White",
            Node::Sum(..) => "Sum",
            Node::Product(..) => "Product",
        }
    }

    /// The two operands of a sum or product (copies), `None` for a leaf.
    #[must_use]
    pub fn operands(&self) -> Option<(Kernel, Kernel)> {
        match &self.node {
            Node::Sum(a, b) | Node::Product(a, b) => Some((
                Kernel {
                    node: (**a).clone(),
                },
                Kernel {
                    node: (**b).clone(),
                },
            )),
            _ => None,
        }
    }

    /// Number of hyperparameters (the length of [`Kernel::theta`]).
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.node.n_params()
    }

    /// The input dimension fixed by ARD length scales, or `None` if any dimension works.
    #[must_use]
    pub fn input_dim(&self) -> Option<usize> {
        self.node.dim().ok().flatten()
    }

    /// Hyperparameters as natural logarithms, in the documented order.
    #[must_use]
    pub fn theta(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.n_params());
        self.node.theta_into(&mut v);
        v
    }

    /// Sets the hyperparameters from their logarithms.
    ///
    /// # Errors
    /// [`Error::Shape`] if `theta.len() != n_params()`; [`Error::NonFinite`] if an entry is
    /// not finite; [`Error::InvalidValue`] if `exp(theta)` over- or underflows. On error the
    /// kernel is unchanged.
    pub fn set_theta(&mut self, theta: &[f64]) -> Result<()> {
        let p = self.n_params();
        if theta.len() != p {
            return Err(Error::shape(
                "theta",
                format_args!("expected {p} values, got {}", theta.len()),
            ));
        }
        crate::error::check_finite("theta", theta)?;
        if let Some(t) = theta.iter().find(|t| t.abs() > 700.0) {
            return Err(Error::invalid_value(
                "theta",
                format_args!("log-hyperparameter {t} is outside [-700, 700]"),
            ));
        }
        self.node.set_theta(theta);
        Ok(())
    }

    /// A copy with hyperparameters set from `theta`.
    ///
    /// # Errors
    /// As [`Kernel::set_theta`].
    pub fn with_theta(&self, theta: &[f64]) -> Result<Self> {
        let mut k = self.clone();
        k.set_theta(theta)?;
        Ok(k)
    }

    /// Names of the hyperparameters (`k1__`/`k2__` prefixes for operands, as scikit-learn).
    #[must_use]
    pub fn param_names(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.n_params());
        self.node.names_into("", &mut v);
        v
    }

    /// Checks shapes and finiteness of the inputs; returns `(n1, n2, d)`.
    fn check_inputs(
        &self,
        x1: &ArrayView2<'_, f64>,
        x2: Option<&ArrayView2<'_, f64>>,
    ) -> Result<(usize, usize, usize)> {
        let (n1, d) = x1.dim();
        if n1 == 0 || d == 0 {
            return Err(Error::shape(
                "X1",
                format_args!("must be a non-empty (n, d) array, got shape ({n1}, {d})"),
            ));
        }
        if let Some(kd) = self.node.dim()? {
            if kd != d {
                return Err(Error::shape(
                    "X1",
                    format_args!(
                        "expected {kd} columns (one per ARD length scale of the kernel), got {d}"
                    ),
                ));
            }
        }
        crate::error::check_finite("X1", x1.iter())?;
        let n2 = match x2 {
            None => n1,
            Some(x2) => {
                let (n2, d2) = x2.dim();
                if n2 == 0 || d2 != d {
                    return Err(Error::shape(
                        "X2",
                        format_args!(
                            "must be a non-empty (n, {d}) array matching X1's columns, got shape ({n2}, {d2})"
                        ),
                    ));
                }
                crate::error::check_finite("X2", x2.iter())?;
                n2
            }
        };
        Ok((n1, n2, d))
    }

    /// The covariance matrix `K(X1, X2)` (or `K(X1, X1)` when `x2` is `None`; only then does a
    /// white kernel add its diagonal).
    ///
    /// # Errors
    /// [`Error::Shape`] for empty inputs, mismatched columns, or columns that do not match ARD
    /// length scales; [`Error::NonFinite`] for NaN/inf inputs; [`Error::Numerical`] naming
    /// `kernel` when finite inputs give non-finite values (overflow, e.g. |x| ~ 1e200).
    pub fn matrix(
        &self,
        x1: ArrayView2<'_, f64>,
        x2: Option<ArrayView2<'_, f64>>,
        par: Par,
    ) -> Result<Array2<f64>> {
        let (n1, n2, _) = self.check_inputs(&x1, x2.as_ref())?;
        // No zero-fill: for large results, zeroing (or faulting in fresh zero pages) costs as
        // much as the kernel itself, and every entry is written below.
        let mut buf: Vec<f64> = Vec::with_capacity(n1 * n2);
        let mut ws = KernelWorkspace::new();
        {
            let spare = &mut buf.spare_capacity_mut()[..n1 * n2];
            // SAFETY: `MaybeUninit<f64>` and `f64` have the same layout. `eval::matrix` writes
            // every entry of `out` before it reads it (each leaf row overwrites its slice; sums
            // and products write the left operand first) and never reads an unwritten entry.
            let out = unsafe { &mut *(std::ptr::from_mut(spare) as *mut [f64]) };
            eval::matrix(&self.node, x1, x2, out, &mut ws, par);
        }
        // SAFETY: all n1 * n2 entries were initialised above.
        unsafe { buf.set_len(n1 * n2) };
        finite_output(&buf)?;
        Array2::from_shape_vec((n1, n2), buf).map_err(|e| Error::Internal(e.to_string()))
    }

    /// [`Kernel::matrix`] into a caller-owned `(n1, n2)` standard-layout array. With
    /// [`Par::Seq`] this does not allocate once `ws` has grown to the problem size.
    ///
    /// # Errors
    /// As [`Kernel::matrix`], plus [`Error::Shape`] naming `out` if it has the wrong shape or
    /// is not in standard (C-contiguous) layout.
    pub fn matrix_into(
        &self,
        x1: ArrayView2<'_, f64>,
        x2: Option<ArrayView2<'_, f64>>,
        mut out: ArrayViewMut2<'_, f64>,
        ws: &mut KernelWorkspace,
        par: Par,
    ) -> Result<()> {
        let (n1, n2, _) = self.check_inputs(&x1, x2.as_ref())?;
        let out_dim = out.dim();
        let out = match out.as_slice_mut() {
            Some(s) if out_dim == (n1, n2) => s,
            _ => {
                return Err(Error::shape(
                    "out",
                    format_args!(
                        "must be a C-contiguous ({n1}, {n2}) array, got shape {out_dim:?}"
                    ),
                ))
            }
        };
        eval::matrix(&self.node, x1, x2, out, ws, par);
        finite_output(out)
    }

    /// The diagonal `k(xᵢ, xᵢ)` of `K(X, X)`.
    ///
    /// # Errors
    /// As [`Kernel::matrix`] for `x`.
    pub fn diag(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        let mut out = Array1::zeros(x.nrows());
        self.diag_into(x, out.view_mut())?;
        Ok(out)
    }

    /// [`Kernel::diag`] into a caller-owned array of length `n`. Does not allocate.
    ///
    /// # Errors
    /// As [`Kernel::diag`], plus [`Error::Shape`] naming `out` for a wrong length.
    pub fn diag_into(&self, x: ArrayView2<'_, f64>, mut out: ArrayViewMut1<'_, f64>) -> Result<()> {
        let (n, _, _) = self.check_inputs(&x, None)?;
        if out.len() != n {
            return Err(Error::shape(
                "out",
                format_args!("expected length {n}, got {}", out.len()),
            ));
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.node.diag_value(&x, i);
            if !o.is_finite() {
                return Err(overflow());
            }
        }
        Ok(())
    }

    /// Gradient of `K(X, X)` with respect to [`Kernel::theta`], shape `(n, n, n_params)` (the
    /// layout scikit-learn's `eval_gradient` returns).
    ///
    /// # Errors
    /// As [`Kernel::matrix`].
    pub fn gradient(&self, x: ArrayView2<'_, f64>, par: Par) -> Result<Array3<f64>> {
        let (n, _, _) = self.check_inputs(&x, None)?;
        let mut out = Array3::zeros((n, n, self.n_params()));
        let mut ws = KernelWorkspace::new();
        self.gradient_into(x, out.view_mut(), &mut ws, par)?;
        Ok(out)
    }

    /// [`Kernel::gradient`] into a caller-owned `(n, n, n_params)` standard-layout array.
    ///
    /// # Errors
    /// As [`Kernel::gradient`], plus [`Error::Shape`] naming `out`.
    pub fn gradient_into(
        &self,
        x: ArrayView2<'_, f64>,
        mut out: ArrayViewMut3<'_, f64>,
        ws: &mut KernelWorkspace,
        par: Par,
    ) -> Result<()> {
        let (n, _, _) = self.check_inputs(&x, None)?;
        let p = self.n_params();
        let out_dim = out.dim();
        let out = match out.as_slice_mut() {
            Some(s) if out_dim == (n, n, p) => s,
            _ => {
                return Err(Error::shape(
                    "out",
                    format_args!(
                        "must be a C-contiguous ({n}, {n}, {p}) array, got shape {out_dim:?}"
                    ),
                ))
            }
        };
        eval::gradient(&self.node, x, out, None, ws, par);
        finite_output(out)
    }

    /// Contracts the gradient with a weight matrix without storing it:
    /// `g_q = Σᵢⱼ W_ij ∂K_ij/∂θ_q`. This is the `½ tr((ααᵀ − K⁻¹) ∂K/∂θ)` term of a GP's
    /// log-likelihood gradient at O(n) extra memory instead of O(n² p).
    ///
    /// # Errors
    /// As [`Kernel::gradient`], plus [`Error::Shape`] naming `weights` (must be `(n, n)`) or
    /// `out` (must have length `n_params`), and [`Error::NonFinite`] naming `weights`.
    pub fn gradient_dot(
        &self,
        x: ArrayView2<'_, f64>,
        weights: ArrayView2<'_, f64>,
        out: &mut [f64],
        ws: &mut KernelWorkspace,
        par: Par,
    ) -> Result<()> {
        let (n, _, _) = self.check_inputs(&x, None)?;
        let p = self.n_params();
        if weights.dim() != (n, n) {
            return Err(Error::shape(
                "weights",
                format_args!("expected shape ({n}, {n}), got {:?}", weights.dim()),
            ));
        }
        crate::error::check_finite("weights", weights.iter())?;
        if out.len() != p {
            return Err(Error::shape(
                "out",
                format_args!("expected length {p}, got {}", out.len()),
            ));
        }
        eval::gradient(&self.node, x, out, Some(weights), ws, par);
        finite_output(out)
    }
}

/// The error for finite inputs whose kernel values overflow (e.g. a linear kernel at 1e200,
/// or squared distances beyond f64's range): never hand back inf/NaN posing as a covariance.
fn overflow() -> Error {
    Error::Numerical {
        what: "kernel",
        detail: "values overflow (non-finite) for these inputs; rescale the inputs".into(),
    }
}

/// Checks a kernel output (one SIMD pass; cheap next to the kernel evaluation itself).
fn finite_output(out: &[f64]) -> Result<()> {
    crate::error::check_finite_slice("kernel", out).map_err(|_| overflow())
}

impl Kernel {
    /// Scratch length needed by [`Kernel::cross_gradient_into`] and
    /// [`Kernel::diag_gradient_into`] for inputs of dimension `d`.
    #[must_use]
    pub fn input_gradient_scratch_len(&self, d: usize) -> usize {
        (self.node.depth() + 1) * d
    }

    /// Values `k(x, y_j)` and gradients `∂k(x, y_j)/∂x` for every row `y_j` of `data`:
    /// `values` has length n, `grads` shape (n, d). Used for gradients of GP predictions with
    /// respect to the test input. Does not allocate.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched lengths (naming `x`, `data`, `values`, `grads` or
    /// `scratch`); [`Error::NonFinite`] naming `x`.
    pub fn cross_gradient_into(
        &self,
        x: &[f64],
        data: ArrayView2<'_, f64>,
        values: &mut [f64],
        mut grads: ArrayViewMut2<'_, f64>,
        scratch: &mut [f64],
    ) -> Result<()> {
        let (n, d) = data.dim();
        if x.len() != d || self.node.dim()?.is_some_and(|kd| kd != d) {
            return Err(Error::shape(
                "x",
                format_args!("expected {d} values (the data's columns), got {}", x.len()),
            ));
        }
        crate::error::check_finite("x", x)?;
        if values.len() != n || grads.dim() != (n, d) {
            return Err(Error::shape(
                "grads",
                format_args!("expected values of length {n} and grads of shape ({n}, {d})"),
            ));
        }
        if scratch.len() < self.input_gradient_scratch_len(d) {
            return Err(Error::shape(
                "scratch",
                "shorter than input_gradient_scratch_len(d)",
            ));
        }
        let mut row = [0.0; 16];
        for j in 0..n {
            let mut g = grads.row_mut(j);
            let y = data.row(j);
            let v = match (y.as_slice(), g.as_slice_mut()) {
                (Some(ys), Some(gs)) => self.node.value_grad_x(x, ys, gs, scratch),
                _ if d <= 16 => {
                    let mut ybuf = [0.0; 16];
                    ybuf[..d]
                        .iter_mut()
                        .zip(y.iter())
                        .for_each(|(b, v)| *b = *v);
                    let v = self
                        .node
                        .value_grad_x(x, &ybuf[..d], &mut row[..d], scratch);
                    g.iter_mut().zip(&row[..d]).for_each(|(o, r)| *o = *r);
                    v
                }
                _ => return Err(Error::shape("data", "rows must be contiguous when d > 16")),
            };
            values[j] = v;
        }
        Ok(())
    }

    /// `k(x, x)` and its gradient with respect to `x` (zero for stationary kernels).
    ///
    /// # Errors
    /// [`Error::Shape`] if `grad` is shorter than `x` or `scratch` too short;
    /// [`Error::NonFinite`] naming `x`.
    pub fn diag_gradient_into(
        &self,
        x: &[f64],
        grad: &mut [f64],
        scratch: &mut [f64],
    ) -> Result<f64> {
        let d = x.len();
        if grad.len() < d || scratch.len() < self.input_gradient_scratch_len(d) {
            return Err(Error::shape(
                "grad",
                format_args!("expected length {d} and enough scratch"),
            ));
        }
        crate::error::check_finite("x", x)?;
        Ok(self.node.diag_grad_x(x, grad, scratch))
    }
}

impl Add for Kernel {
    type Output = Kernel;
    /// `a + b`.
    ///
    /// # Panics
    /// If both operands have ARD length scales of different lengths; use [`Kernel::sum`] to
    /// get an error instead.
    fn add(self, rhs: Kernel) -> Kernel {
        match Kernel::sum(self, rhs) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Mul for Kernel {
    type Output = Kernel;
    /// `a * b`.
    ///
    /// # Panics
    /// As for `+`; use [`Kernel::product`] to get an error instead.
    fn mul(self, rhs: Kernel) -> Kernel {
        match Kernel::product(self, rhs) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A kernel as plain data, for model files ([`Kernel::to_spec`], [`Kernel::from_spec`]).
/// Values are the hyperparameters themselves (not logs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
#[allow(missing_docs)]
pub enum KernelSpec {
    #[serde(rename = "RBF")]
    SquaredExponential {
        variance: f64,
        length_scale: Vec<f64>,
    },
    Matern {
        nu: f64,
        variance: f64,
        length_scale: Vec<f64>,
    },
    RationalQuadratic {
        variance: f64,
        length_scale: Vec<f64>,
        alpha: f64,
    },
    Periodic {
        variance: f64,
        length_scale: f64,
        period: f64,
    },
    Linear {
        variance: f64,
    },
    Constant {
        value: f64,
    },
    White {
        noise: f64,
    },
    Sum {
        k1: Box<KernelSpec>,
        k2: Box<KernelSpec>,
    },
    Product {
        k1: Box<KernelSpec>,
        k2: Box<KernelSpec>,
    },
}

impl Kernel {
    /// This kernel as plain data.
    #[must_use]
    pub fn to_spec(&self) -> KernelSpec {
        fn rec(n: &Node) -> KernelSpec {
            match n {
                Node::SquaredExponential { variance, ls } => KernelSpec::SquaredExponential {
                    variance: *variance,
                    length_scale: ls.clone(),
                },
                Node::Matern { nu, variance, ls } => KernelSpec::Matern {
                    nu: nu.value(),
                    variance: *variance,
                    length_scale: ls.clone(),
                },
                Node::RationalQuadratic {
                    variance,
                    ls,
                    alpha,
                } => KernelSpec::RationalQuadratic {
                    variance: *variance,
                    length_scale: ls.clone(),
                    alpha: *alpha,
                },
                Node::Periodic {
                    variance,
                    ls,
                    period,
                } => KernelSpec::Periodic {
                    variance: *variance,
                    length_scale: *ls,
                    period: *period,
                },
                Node::Linear { variance } => KernelSpec::Linear {
                    variance: *variance,
                },
                Node::Constant { value } => KernelSpec::Constant { value: *value },
                Node::White { noise } => KernelSpec::White { noise: *noise },
                Node::Sum(a, b) => KernelSpec::Sum {
                    k1: Box::new(rec(a)),
                    k2: Box::new(rec(b)),
                },
                Node::Product(a, b) => KernelSpec::Product {
                    k1: Box::new(rec(a)),
                    k2: Box::new(rec(b)),
                },
            }
        }
        rec(&self.node)
    }

    /// Rebuilds a kernel from plain data, validating every value as the constructors do.
    ///
    /// # Errors
    /// As the constructors ([`Kernel::squared_exponential`] …).
    ///
    /// ```
    /// use intent_engine::gp::Kernel;
    /// let k = Kernel::squared_exponential(2.0, &[0.5, 1.0])? * Kernel::periodic(1.0, 1.0, 3.0)?;
    /// assert_eq!(Kernel::from_spec(&k.to_spec())?, k);
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn from_spec(spec: &KernelSpec) -> Result<Self> {
        Ok(match spec {
            KernelSpec::SquaredExponential {
                variance,
                length_scale,
            } => Kernel::squared_exponential(*variance, length_scale)?,
            KernelSpec::Matern {
                nu,
                variance,
                length_scale,
            } => Kernel::matern(MaternNu::from_f64(*nu)?, *variance, length_scale)?,
            KernelSpec::RationalQuadratic {
                variance,
                length_scale,
                alpha,
            } => Kernel::rational_quadratic(*variance, length_scale, *alpha)?,
            KernelSpec::Periodic {
                variance,
                length_scale,
                period,
            } => Kernel::periodic(*variance, *length_scale, *period)?,
            KernelSpec::Linear { variance } => Kernel::linear(*variance)?,
            KernelSpec::Constant { value } => Kernel::constant(*value)?,
            KernelSpec::White { noise } => Kernel::white(*noise)?,
            KernelSpec::Sum { k1, k2 } => {
                Kernel::sum(Kernel::from_spec(k1)?, Kernel::from_spec(k2)?)?
            }
            KernelSpec::Product { k1, k2 } => {
                Kernel::product(Kernel::from_spec(k1)?, Kernel::from_spec(k2)?)?
            }
        })
    }

    /// The kernel as JSON (see [`KernelSpec`]).
    ///
    /// # Errors
    /// [`Error::Internal`] if serialisation fails (it does not for finite values).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(&self.to_spec()).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Parses [`Kernel::to_json`] output.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `json` for malformed input; constructor errors.
    pub fn from_json(json: &str) -> Result<Self> {
        let spec: KernelSpec =
            serde_json::from_str(json).map_err(|e| Error::invalid_value("json", e))?;
        Kernel::from_spec(&spec)
    }
}

/// Reusable buffers for kernel evaluation: the transposed (and length-scaled) second input
/// of every leaf, and per-row scratch. Grows to the largest problem seen, never shrinks.
#[derive(Clone, Debug, Default)]
pub struct KernelWorkspace {
    pub(crate) inputs: Vec<f64>,
    pub(crate) offsets: Vec<usize>,
    pub(crate) scratch: Vec<f64>,
}

impl KernelWorkspace {
    /// An empty workspace; it grows on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves room for evaluating `kernel` against a second input set of up to `n2` rows of
    /// dimension `d`, so later calls up to that size never allocate.
    pub fn reserve(&mut self, kernel: &Kernel, n2: usize, d: usize) {
        let leaves = count_leaves(&kernel.node);
        let want_inputs = leaves * n2 * d;
        self.inputs
            .reserve(want_inputs.saturating_sub(self.inputs.len()));
        self.offsets
            .reserve(leaves.saturating_sub(self.offsets.len()));
        let want_scratch = (kernel.node.depth() + 2) * n2;
        if self.scratch.len() < want_scratch {
            self.scratch.resize(want_scratch, 0.0);
        }
    }
}

fn count_leaves(node: &Node) -> usize {
    match node {
        Node::Sum(a, b) | Node::Product(a, b) => count_leaves(a) + count_leaves(b),
        _ => 1,
    }
}
