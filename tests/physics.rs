//! The circuit and the device against closed-form answers.

mod common;

use common::{instance, net_242, network, one_hot_task, one_layer};
use memsweep::model::circuit::{node_current, Boundary, NodeRole, Solver};
use memsweep::model::device::c2c_factor;
use memsweep::model::network::{Adjacency, Network};
use memsweep::params::Params;
use memsweep::protocol::phase;
use memsweep::protocol::training::{Pulse, Trainer};
use memsweep::rng::CounterRng;

const GMIN: f64 = 1e-12;

fn solve(net: &Network, adj: &Adjacency, g: &[f64], b: &Boundary<f64>) -> Vec<f64> {
    let n = b.fixed.len();
    let mut solver = Solver::new(n);
    let alive: Vec<bool> = g.iter().map(|&g| g > 0.0).collect();
    solver.prepare(adj, &alive, b);
    let mut v = vec![f64::NAN; n];
    solver.solve(net, adj, g, GMIN, b, &mut v);
    v
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn voltage_divider_splits_by_conductance() {
    // in (0) --R1-- mid (1) --R2-- out (2, grounded)
    let net = network(1, 1, 1, &[(0, 1), (1, 2)]);
    let adj = Adjacency::new(&net);
    let (g1, g2) = (1.0 / 1000.0, 1.0 / 3000.0);
    let mut b = Boundary::floating(3);
    b.drive(0, 2.0);
    b.ground(2);
    let v = solve(&net, &adj, &[g1, g2], &b);
    let expected = g1 * 2.0 / (g1 + g2 + GMIN);
    assert!(close(v[1], expected, 1e-13), "{} vs {expected}", v[1]);
    assert!(close(v[1], 1.5, 1e-8));
    let i_out = node_current(&adj, &[g1, g2], &v, 2);
    assert!(close(i_out, g2 * expected, 1e-13));
}

#[test]
fn wheatstone_bridge_matches_cramers_rule() {
    // in (0) -> a (1), in -> b (2), a -> out (3), b -> out, a -> b (bridge)
    let net = network(1, 2, 1, &[(0, 1), (0, 2), (1, 3), (2, 3), (1, 2)]);
    let adj = Adjacency::new(&net);
    let v_in = 1.0;
    for r in [[1e3, 2e3, 3e3, 4e3, 5e3], [1e3, 2e3, 2e3, 4e3, 7e3]] {
        let g: Vec<f64> = r.iter().map(|r| 1.0 / r).collect();
        let mut b = Boundary::floating(4);
        b.drive(0, v_in);
        b.ground(3);
        let v = solve(&net, &adj, &g, &b);
        // KCL at a and b: [[g1+g3+g5+gmin, -g5], [-g5, g2+g4+g5+gmin]] [va vb] = [g1 vin, g2 vin]
        let a11 = g[0] + g[2] + g[4] + GMIN;
        let a22 = g[1] + g[3] + g[4] + GMIN;
        let a12 = -g[4];
        let (b1, b2) = (g[0] * v_in, g[1] * v_in);
        let det = a11 * a22 - a12 * a12;
        let va = (b1 * a22 - a12 * b2) / det;
        let vb = (a11 * b2 - a12 * b1) / det;
        assert!(close(v[1], va, 1e-12), "{} vs {va}", v[1]);
        assert!(close(v[2], vb, 1e-12), "{} vs {vb}", v[2]);
    }
    // Balanced (R1/R3 = R2/R4): no current through the bridge.
    let g: Vec<f64> = [1e3, 2e3, 2e3, 4e3, 7e3].iter().map(|r| 1.0 / r).collect();
    let mut b = Boundary::floating(4);
    b.drive(0, v_in);
    b.ground(3);
    let v = solve(&net, &adj, &g, &b);
    // gmin unbalances it at the 1e-9 level (gmin * R)
    assert!((v[1] - v[2]).abs() < 1e-8);
}

#[test]
fn read_of_a_242_network_matches_hand_computation() {
    let net = net_242();
    let adj = Adjacency::new(&net);
    // distinct resistances so that nothing cancels by symmetry
    let r: Vec<f64> = (0..16).map(|e| 1000.0 + 500.0 * e as f64).collect();
    let g: Vec<f64> = r.iter().map(|r| 1.0 / r).collect();
    let mut b = Boundary::floating(8);
    phase::read(&net, &[true, false], 0.5, &mut b);
    let v = solve(&net, &adj, &g, &b);
    // Each hidden node h sees input 0 (0.5 V) and three grounded nodes.
    for h in 0..4 {
        let (g_in0, g_in1) = (g[h], g[4 + h]);
        let (g_o0, g_o1) = (g[8 + 2 * h], g[8 + 2 * h + 1]);
        let expected = g_in0 * 0.5 / (g_in0 + g_in1 + g_o0 + g_o1 + GMIN);
        assert!(close(v[2 + h], expected, 1e-13), "hidden {h}");
    }
    for o in 0..2 {
        let expected: f64 = (0..4).map(|h| g[8 + 2 * h + o] * v[2 + h]).sum();
        assert!(close(node_current(&adj, &g, &v, 6 + o), expected, 1e-13));
    }
    assert_eq!((v[0], v[1], v[6], v[7]), (0.5, 0.0, 0.0, 0.0));
}

#[test]
fn punish_of_a_uniform_242_network_matches_hand_computation() {
    // All devices equal: by symmetry every hidden node sits at Vh, the
    // floating input and the floating output follow the hidden layer.
    let net = network(
        2,
        4,
        2,
        &net_242()
            .tail
            .iter()
            .zip(&net_242().head)
            .map(|(&t, &h)| (t, h))
            .collect::<Vec<_>>(),
    );
    let adj = Adjacency::new(&net);
    let g = vec![1.0 / 3000.0; 16];
    let gg = g[0];
    let mut b = Boundary::floating(8);
    phase::punish(&net, &[true, false], 0, 3.0, &mut b);
    let v = solve(&net, &adj, &g, &b);
    // Floating input 1 and output 7: 4 gg (Vh - Vf) = gmin Vf.
    // Hidden: gg(-3 - Vh) + gg(Vf - Vh) + gg(0 - Vh) + gg(Vf - Vh) = gmin Vh.
    let k = 4.0 * gg / (4.0 * gg + GMIN);
    let vh = -3.0 * gg / (4.0 * gg - 2.0 * gg * k + GMIN);
    let vf = k * vh;
    for h in 2..6 {
        assert!(close(v[h], vh, 1e-12), "hidden {h}: {} vs {vh}", v[h]);
    }
    assert!(close(v[1], vf, 1e-12));
    assert!(close(v[7], vf, 1e-12));
    assert!(close(vh, -1.5, 1e-8));
    assert_eq!((v[0], v[6]), (-3.0, 0.0));
}

#[test]
fn normalize_of_a_uniform_242_network_puts_hidden_at_half() {
    let net = net_242();
    let adj = Adjacency::new(&net);
    let g = vec![1e-3; 16];
    let mut b = Boundary::floating(8);
    phase::normalize(&net, 2.0, &mut b);
    let v = solve(&net, &adj, &g, &b);
    let expected = 2.0 * 2e-3 / (4e-3 + GMIN);
    for h in 2..6 {
        assert!(close(v[h], expected, 1e-13));
    }
}

#[test]
fn an_isolated_node_sits_at_zero_volts() {
    // Hidden node 3 has no alive edge; node 2 is cut off behind it.
    let net = network(1, 3, 1, &[(0, 1), (1, 4), (0, 2), (2, 3)]);
    let adj = Adjacency::new(&net);
    let g = vec![1e-3, 1e-3, 0.0, 1e-3];
    let mut b = Boundary::floating(5);
    b.drive(0, 1.0);
    b.ground(4);
    let mut solver = Solver::new(5);
    let alive = vec![true, true, false, true];
    solver.prepare(&adj, &alive, &b);
    assert_eq!(solver.role(2), NodeRole::Isolated);
    assert_eq!(solver.role(3), NodeRole::Isolated);
    let mut v = vec![f64::NAN; 5];
    solver.solve(&net, &adj, &g, GMIN, &b, &mut v);
    assert_eq!((v[2], v[3]), (0.0, 0.0));
    assert!(close(v[1], 0.5, 1e-8));
}

#[test]
fn dense_and_eliminated_solves_satisfy_kirchhoff_on_a_random_bulk_network() {
    let mut p = Params::default();
    p.network.topology = memsweep::params::Topology::RandomBulk;
    p.network.n_in = 3;
    p.network.n_out = 3;
    p.network.n_bulk = 20;
    p.network.p_bulk = 0.4;
    let net = memsweep::model::network::Network::generate(&p.network, 77);
    let adj = Adjacency::new(&net);
    let g: Vec<f64> = (0..net.n_edges())
        .map(|e| 1.0 / (1000.0 + 37.0 * (e % 200) as f64))
        .collect();
    let mut b = Boundary::floating(net.n_nodes());
    phase::punish(&net, &[true, false, true], 1, 3.0, &mut b);
    let v = solve(&net, &adj, &g, &b);
    for i in 0..net.n_nodes() {
        if b.fixed[i] {
            continue;
        }
        // net current out of a free node through edges and gmin is zero
        let i_in = node_current(&adj, &g, &v, i) - GMIN * v[i];
        let scale: f64 = adj
            .range(i)
            .map(|k| g[adj.edge[k] as usize] * 3.0)
            .sum::<f64>()
            + 1e-30;
        assert!(i_in.abs() < 1e-12 * scale, "node {i}: residual {i_in}");
    }
}

fn single_device(r0: f64) -> memsweep::instance::Instance {
    // input (driven) -> output (grounded): one device, whatever the pulse
    instance(network(1, 0, 1, &[(0, 1)]), &[r0], one_hot_task(1, &[0]))
}

fn apply_pulse(inst: &memsweep::instance::Instance, params: &Params, v: f64) -> (f64, f64) {
    let mut t = Trainer::<f64>::new(inst, params);
    let mut b = Boundary::floating(2);
    b.drive(0, v);
    b.ground(1);
    t.set_boundary(b);
    t.pulse(0, 0, Pulse::Normalize);
    (t.r()[0], t.energy_write)
}

#[test]
fn a_device_under_a_constant_pulse_follows_the_closed_form_ramp() {
    let params = Params::default();
    let (beta, vt, tau) = (params.device.beta, params.device.vt, params.training.tau);
    let n_sub = params.training.n_sub;
    let dt = tau / n_sub as f64;
    let v = 1.5;
    let r0 = 9000.0;
    let inst = single_device(r0);
    let (r, energy) = apply_pulse(&inst, &params, v);
    // dR/dt = -beta (v - vt) is constant, so Euler is exact.
    let expected = r0 - beta * (v - vt) * tau;
    assert!(close(r, expected, 1e-12), "{r} vs {expected}");
    let expected_energy: f64 = (0..n_sub)
        .map(|k| v * v / (r0 - beta * (v - vt) * dt * k as f64) * dt)
        .sum();
    assert!(close(energy, expected_energy, 1e-12));
    // A stronger pulse reaches Ron and stays there.
    // (beta * 9 V * 1 us = 16.2 kohm, more than the whole range)
    let (r, _) = apply_pulse(&single_device(r0), &params, 10.0);
    assert_eq!(r, params.device.ron);
    // A negative pulse raises R up to Roff.
    let (r, _) = apply_pulse(&single_device(3000.0), &params, -1.5);
    assert!(close(r, 3000.0 + beta * 0.5 * tau, 1e-12));
    let (r, _) = apply_pulse(&single_device(3000.0), &params, -10.0);
    assert_eq!(r, params.device.roff);
}

#[test]
fn a_sub_threshold_pulse_changes_nothing() {
    let params = Params::default();
    for v in [-0.99, -0.2, 0.0, 0.5, 1.0] {
        let (r, energy) = apply_pulse(&single_device(4321.0), &params, v);
        assert_eq!(r, 4321.0);
        assert!(close(energy, v * v / 4321.0 * params.training.tau, 1e-12));
    }
}

#[test]
fn reversed_polarity_reverses_the_device() {
    let params = Params::default();
    let mut inst = single_device(5000.0);
    inst.network.polarity[0] = -1;
    let (r, _) = apply_pulse(&inst, &params, 1.5);
    assert!(
        r > 5000.0,
        "a reversed device is depressed by a positive pulse: {r}"
    );
}

#[test]
fn c2c_noise_has_mean_one() {
    let rng = CounterRng::new(2024);
    let sigma = 0.5;
    let n = 200_000u32;
    let factors: Vec<f64> = (0..n)
        .map(|i| c2c_factor(sigma, rng.normal::<f64>([0, 1, i, 7])))
        .collect();
    let mean = factors.iter().sum::<f64>() / n as f64;
    let var = factors.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64;
    let se = (var / n as f64).sqrt();
    // lognormal mean is exactly 1; allow 4 standard errors
    assert!(
        (mean - 1.0).abs() < 4.0 * se,
        "mean {mean}, standard error {se}"
    );
}

#[test]
fn a_punish_reuses_the_eliminated_nodes_term_only_while_their_edges_stay() {
    // Punishing input 0 with output 24 grounded leaves 14 floating
    // terminals with no fixed neighbour: the solver eliminates them and may
    // reuse their Schur term while their edges keep their conductance.
    // Inputs 0..8, hidden 8..24, outputs 24..32, edges input-major.
    let net = one_layer(8, 16, 8);
    let adj = Adjacency::new(&net);
    let m = net.tail.len();
    let mut g: Vec<f64> = (0..m).map(|e| 1.0 / (1500.0 + 97.0 * e as f64)).collect();
    let alive = vec![true; m];
    let mut active = vec![false; 8];
    active[0] = true;
    let mut b = Boundary::floating(32);
    phase::punish(&net, &active, 0, 3.0, &mut b);
    let mut solver = Solver::<f64>::new(32);
    solver.prepare(&adj, &alive, &b);
    assert_eq!(solver.dense_size(), 16, "the hidden layer stays dense");
    for node in 1..8 {
        assert_eq!(solver.role(node), NodeRole::Eliminated);
    }
    let touches = solver.touches_eliminated().to_vec();
    let mut v = vec![0.0; 32];
    let mut fresh = vec![0.0; 32];
    let solve = |solver: &mut Solver<f64>, g: &[f64], reuse: bool, v: &mut [f64]| {
        solver.sums.fill(&net, &adj, g, &b);
        solver.solve_from_sums(g, GMIN, &b, v, reuse);
    };
    solve(&mut solver, &g, false, &mut v);
    // Driven edges (input 0 to the hidden layer) move: reuse is exact.
    for e in 0..16 {
        assert_eq!(touches[e], 0.0);
        g[e] *= 0.9;
    }
    solve(&mut solver, &g, true, &mut v);
    solve(&mut solver, &g, false, &mut fresh);
    assert_eq!(v, fresh, "reuse gives the same bits as a fresh solve");
    // An edge of a floating input moves: the kept term is stale, and a
    // solve that reused it would be wrong.
    let floating = 16 * 3 + 5;
    assert_eq!(touches[floating], 1.0);
    g[floating] *= 0.5;
    solve(&mut solver, &g, true, &mut v);
    solve(&mut solver, &g, false, &mut fresh);
    let worst = (0..32).map(|i| (v[i] - fresh[i]).abs()).fold(0.0, f64::max);
    assert!(worst > 1e-6, "a stale term must show: {worst}");
    let residual = kcl_residual(&net, &g, &b, &fresh);
    assert!(residual < 1e-12, "fresh solve obeys KCL: {residual}");
}

/// Largest current imbalance (ampere) at a free node.
fn kcl_residual(net: &Network, g: &[f64], b: &Boundary<f64>, v: &[f64]) -> f64 {
    let mut net_current = vec![0.0; v.len()];
    for ((&u, &w), &g) in net.tail.iter().zip(&net.head).zip(g) {
        let (u, w) = (u as usize, w as usize);
        let i = g * (v[u] - v[w]);
        net_current[u] -= i;
        net_current[w] += i;
    }
    (0..v.len())
        .filter(|&i| !b.fixed[i])
        .map(|i| (net_current[i] - GMIN * v[i]).abs())
        .fold(0.0, f64::max)
}
