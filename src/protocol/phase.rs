//! The boundary of each protocol phase (MODEL.md section 6): which nodes are
//! driven, which grounded, which float.

use crate::model::circuit::Boundary;
use crate::model::network::Network;
use crate::real::Real;

/// Read pattern `k`: active inputs at `+v_read`, idle inputs and every
/// output grounded.
pub fn read<F: Real>(net: &Network, active: &[bool], v_read: F, b: &mut Boundary<F>) {
    reset(b);
    for (i, &on) in active.iter().enumerate() {
        b.drive(i, if on { v_read } else { F::ZERO });
    }
    for o in 0..net.n_out {
        b.ground(net.output_node(o));
    }
}

/// Punish a wrong winner: active inputs at `-v_punish`, idle inputs
/// floating, the wrong winner grounded, every other output floating.
pub fn punish<F: Real>(
    net: &Network,
    active: &[bool],
    winner: usize,
    v_punish: F,
    b: &mut Boundary<F>,
) {
    reset(b);
    for (i, &on) in active.iter().enumerate() {
        if on {
            b.drive(i, -v_punish);
        }
    }
    b.ground(net.output_node(winner));
}

/// Normalize: every input at `+v_norm`, every output grounded.
pub fn normalize<F: Real>(net: &Network, v_norm: F, b: &mut Boundary<F>) {
    reset(b);
    for i in 0..net.n_in {
        b.drive(i, v_norm);
    }
    for o in 0..net.n_out {
        b.ground(net.output_node(o));
    }
}

fn reset<F: Real>(b: &mut Boundary<F>) {
    b.fixed.fill(false);
    b.volts.fill(F::ZERO);
}

/// The winning output: the largest current, where currents within
/// `F::TIE_REL` (relative) of the largest count as tied and the lowest index
/// among them wins.
pub fn winner<F: Real>(currents: &[F]) -> usize {
    let mut max = currents[0];
    for &c in &currents[1..] {
        if c > max {
            max = c;
        }
    }
    let band = tie_band(max);
    currents.iter().position(|&c| c >= band).unwrap_or(0)
}

/// The lowest current that ties with the largest, `largest`: within
/// `F::TIE_REL` (relative) of it.
#[inline(always)]
pub fn tie_band<F: Real>(largest: F) -> F {
    largest - F::TIE_REL * largest.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_ties_go_to_the_lowest_index() {
        assert_eq!(winner(&[1.0, 1.0 + 1e-12, 0.5]), 0);
        assert_eq!(winner(&[1.0, 1.0 + 1e-6, 0.5]), 1);
        assert_eq!(winner(&[0.1, 0.2, 0.2]), 1);
    }
}
