//! The floating-point type a kernel computes in: f64 on the CPU by default,
//! f32 to mirror the GPU shader's arithmetic.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Relative tolerance under which two output currents count as tied.
    /// MODEL.md's 1e-9 for f64; in f32, whose epsilon is 1.2e-7, a tie
    /// within rounding needs a wider band (about 30 ulp).
    const TIE_REL: Self;
    /// The conjugate-gradient stopping rule of the nodal solve
    /// (`model::circuit`), in residual terms: iterate until the current
    /// imbalance `r` at the free nodes, weighted by the inverse of the
    /// solve's preconditioner `M`, satisfies `r^T M^-1 r <= tol^2 b^T M^-1 b`,
    /// `b` being the current the fixed nodes inject (the CPU's `M` is
    /// symmetric Gauss-Seidel, the GPU's the diagonal `D`, each node's total
    /// conductance). f64 stops at `tol = 1e-11`, which leaves node voltages
    /// and output currents within 1e-10 (relative) of a direct solve on the
    /// networks of `tests/sparse.rs` (within 1.0e-11 there) and trains to
    /// the same outcomes as `1e-12` (docs/numerics.md); f32, whose rounding
    /// floor is near 1e-7, at 1e-6.
    const CG_TOLERANCE: Self;
    /// Whether the CPU's conjugate gradients deflate each component's
    /// constant voltage (`circuit::CgVectors::solve`). f64 does: at its
    /// tight tolerance that takes about a third of the iterations off.
    /// f32 does not, as the GPU kernel does not: the CPU's f32 path is the
    /// reference that kernel's outcomes are checked against.
    const DEFLATE: bool;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn ln(self) -> Self;
    fn exp(self) -> Self;
    fn cos(self) -> Self;
    fn abs(self) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $tie:expr, $cg:expr, $deflate:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const TIE_REL: Self = $tie;
            const CG_TOLERANCE: Self = $cg;
            const DEFLATE: bool = $deflate;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}

impl_real!(f64, 1e-9, 1e-11, true);
impl_real!(f32, 4e-6, 1e-6, false);
