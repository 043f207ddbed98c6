//! The iterative (sparse) nodal solve against the split-and-dense one: the
//! same voltages and currents from random states, the same outcomes from
//! whole trainings, and the same bits whatever the threads or batches.

use std::sync::Arc;

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::backend::Executor;
use memsweep::instance::Instance;
use memsweep::model::circuit::{node_current, Boundary, Solver, SolverChoice};
use memsweep::model::network::{Adjacency, Network};
use memsweep::params::{Params, Topology};
use memsweep::protocol::phase;
use memsweep::protocol::training::{train_reusing, Layouts};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn random_bulk(n_bulk: usize, p_bulk: f64) -> Params {
    let mut p = Params::default();
    p.network.topology = Topology::RandomBulk;
    p.network.n_in = 4;
    p.network.n_out = 4;
    p.network.n_bulk = n_bulk;
    p.network.p_bulk = p_bulk;
    p.network.k_attach = 3;
    p
}

fn layered(hidden: &[usize], density: f64, skip: f64) -> Params {
    let mut p = Params::default();
    p.network.n_in = 4;
    p.network.hidden = hidden.to_vec();
    p.network.n_out = 3;
    p.network.density = density;
    p.network.skip = skip;
    p.network.random_polarity = true;
    p
}

/// Every network family the solver meets: random graphs dense and sparse
/// (the sparse ones fall apart into components), deep, thinned and skip
/// layered networks.
fn families() -> Vec<(&'static str, Params)> {
    vec![
        ("random_bulk 60, p 0.1", random_bulk(60, 0.1)),
        ("random_bulk 200, p 0.02", random_bulk(200, 0.02)),
        (
            "random_bulk 80, p 0.01 (disconnected)",
            random_bulk(80, 0.01),
        ),
        ("layered depth 3", layered(&[6, 9, 5], 1.0, 0.0)),
        ("layered thinned, skip", layered(&[12, 12], 0.4, 0.5)),
    ]
}

/// Voltages of every boundary of the protocol, one solver path.
fn solve_all(
    inst: &Instance,
    params: &Params,
    g: &[f64],
    alive: &[bool],
    choice: SolverChoice,
) -> Vec<(Vec<f64>, Vec<f64>, Vec<bool>)> {
    let net = &inst.network;
    let adj = &inst.adjacency;
    let n = net.n_nodes();
    let t = &params.training;
    let mut solver = Solver::<f64>::with_choice(n, choice);
    let mut b = Boundary::floating(n);
    let mut out = Vec::new();
    let mut v = vec![0.0; n];
    for k in 0..inst.task.n_patterns() {
        let active = &inst.task.active[k];
        for phase_id in 0..3 {
            match phase_id {
                0 => phase::read(net, active, t.v_read, &mut b),
                1 => phase::punish(net, active, k % net.n_out, t.v_punish, &mut b),
                _ => phase::normalize(net, t.v_norm, &mut b),
            }
            solver.prepare(adj, alive, &b);
            assert_eq!(
                solver.is_iterative(),
                choice == SolverChoice::Sparse,
                "forced path"
            );
            solver.solve(net, adj, g, params.circuit.gmin, &b, &mut v);
            let currents: Vec<f64> = (0..net.n_out)
                .map(|o| node_current(adj, g, &v, net.output_node(o)))
                .collect();
            // Only ammeters (grounded outputs) measure a current; a
            // floating output's is the gmin leak, a residual.
            let grounded = (0..net.n_out)
                .map(|o| b.fixed[net.output_node(o)])
                .collect();
            out.push((v.clone(), currents, grounded));
        }
    }
    assert_eq!(solver.stats.cg_capped, 0);
    out
}

#[test]
fn sparse_and_dense_solves_agree_on_random_states() {
    let mut rng = Pcg64::seed_from_u64(7);
    for (name, params) in families() {
        for replica in 0..4 {
            let inst = Instance::build(&params, 0, replica, 100 + replica as u64);
            let m = inst.network.n_edges();
            let d = &inst.devices;
            // Resistances anywhere in their range, a fifth of the edges
            // pruned in odd replicas.
            let alive: Vec<bool> = (0..m)
                .map(|_| replica % 2 == 0 || rng.random::<f64>() > 0.2)
                .collect();
            let g: Vec<f64> = (0..m)
                .map(|e| {
                    let r = d.ron[e] + rng.random::<f64>() * (d.roff[e] - d.ron[e]);
                    if alive[e] {
                        1.0 / r
                    } else {
                        0.0
                    }
                })
                .collect();
            let dense = solve_all(&inst, &params, &g, &alive, SolverChoice::Dense);
            let sparse = solve_all(&inst, &params, &g, &alive, SolverChoice::Sparse);
            for (s, ((vd, id, grounded), (vs, is, _))) in dense.iter().zip(&sparse).enumerate() {
                let scale = vd.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                for (i, (a, b)) in vd.iter().zip(vs).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-10 * scale,
                        "{name}, replica {replica}, solve {s}, node {i}: dense {a} sparse {b}"
                    );
                }
                // (Plus 1e-18 A, a millionth of the gmin leak at 1 V, for
                // an output that no current reaches.)
                let scale = id.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                for (o, (a, b)) in id.iter().zip(is).enumerate() {
                    assert!(
                        !grounded[o] || (a - b).abs() <= 1e-10 * scale + 1e-18,
                        "{name}, replica {replica}, solve {s}, output {o}: dense {a} sparse {b}"
                    );
                }
            }
        }
    }
}

/// One set of rows serves every boundary, so a boundary can split a
/// component: here grounding input 1 leaves hidden nodes 8 to 13 joined
/// to the rest only through it and through a grounded output. Nothing
/// drives them then, and they sit at exactly 0 V, as the dense path gives,
/// even when the solve starts from the voltages they had while input 1
/// drove them (so that outputs no current reaches tie exactly). Left
/// floating, output 14 joins them to the driven rest again.
#[test]
fn a_region_that_a_boundary_cuts_off_from_every_drive_sits_at_exactly_zero() {
    // Inputs 0 and 1, hidden 2 to 13, outputs 14 and 15. Input 0 drives
    // hidden 2 to 7 (a path with chords) into both outputs; input 1
    // drives hidden 8 to 13 (likewise) into output 14 alone.
    let edges = [
        (0, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 6),
        (6, 7),
        (2, 5),
        (3, 6),
        (7, 14),
        (4, 15),
        (1, 8),
        (8, 9),
        (9, 10),
        (10, 11),
        (11, 12),
        (12, 13),
        (8, 11),
        (9, 12),
        (10, 13),
        (13, 14),
        (10, 14),
    ];
    let net = Network {
        n_in: 2,
        n_hidden: 12,
        n_out: 2,
        tail: edges.iter().map(|e| e.0).collect(),
        head: edges.iter().map(|e| e.1).collect(),
        polarity: vec![1; edges.len()],
        layer: (0..16)
            .map(|i| (i >= 2) as u32 + (i >= 14) as u32)
            .collect(),
    };
    let adj = Adjacency::new(&net);
    let (n, m) = (net.n_nodes(), net.n_edges());
    let g: Vec<f64> = (0..m)
        .map(|e| 1e-4 * (1.0 + (e * e % 11) as f64 / 3.0))
        .collect();
    let alive = vec![true; m];
    let boundary = |v1: f64| {
        let mut b = Boundary::floating(n);
        for (i, v) in [(0, 1.0), (1, v1), (14, 0.0), (15, 0.0)] {
            b.fixed[i] = true;
            b.volts[i] = v;
        }
        b
    };
    // The kept sparse solver's voltages and a fresh dense solve's, which
    // must agree at every node.
    let mut solver = Solver::<f64>::with_choice(n, SolverChoice::Sparse);
    let mut solve_both = |b: &Boundary<f64>| {
        let (mut v, mut vd) = (vec![0.0; n], vec![0.0; n]);
        solver.prepare_cached(&adj, &alive, b);
        solver.solve(&net, &adj, &g, 1e-12, b, &mut v);
        let mut dense = Solver::<f64>::with_choice(n, SolverChoice::Dense);
        dense.prepare(&adj, &alive, b);
        dense.solve(&net, &adj, &g, 1e-12, b, &mut vd);
        for i in 0..n {
            assert!(
                (v[i] - vd[i]).abs() <= 1e-10,
                "node {i}: {} against {}",
                v[i],
                vd[i]
            );
        }
        (v, vd)
    };
    for v1 in [0.7, 0.0, 0.7, 0.0] {
        let (v, vd) = solve_both(&boundary(v1));
        let region = 8..14;
        if v1 == 0.0 {
            assert!(
                v[region.clone()].iter().all(|&x| x == 0.0),
                "undriven: {v:?}"
            );
            assert!(vd[region].iter().all(|&x| x == 0.0), "the dense path's");
        } else {
            assert!(v[region].iter().all(|&x| x > 0.01), "driven");
        }
    }
    // Output 14 left floating joins the two regions: input 0 drives
    // hidden 8 to 13 through it.
    let mut b = boundary(0.0);
    b.fixed[14] = false;
    let (v, _) = solve_both(&b);
    assert!(
        v[8..14].iter().all(|&x| x > 0.01),
        "driven through output 14"
    );
}

/// After pruning that leaves a boundary's components as they were, the
/// iterative path keeps its rows (the pruned links add exact zeros) and
/// solves as a fresh solver does; pruning that cuts a node off rebuilds
/// them, and the node sits at 0 V.
#[test]
fn rows_kept_after_pruning_solve_as_fresh_ones() {
    let params = random_bulk(200, 0.02);
    let inst = Instance::build(&params, 0, 0, 11);
    let (net, adj) = (&inst.network, &inst.adjacency);
    let (n, m) = (net.n_nodes(), net.n_edges());
    let mut rng = Pcg64::seed_from_u64(3);
    let d = &inst.devices;
    let mut g: Vec<f64> = (0..m)
        .map(|e| 1.0 / (d.ron[e] + rng.random::<f64>() * (d.roff[e] - d.ron[e])))
        .collect();
    let mut alive = vec![true; m];
    let mut b = Boundary::floating(n);
    phase::punish(
        net,
        &inst.task.active[0],
        1,
        params.training.v_punish,
        &mut b,
    );
    let gmin = params.circuit.gmin;
    let mut kept = Solver::<f64>::with_choice(n, SolverChoice::Sparse);
    let mut v = vec![0.0; n];
    kept.prepare_cached(adj, &alive, &b);
    kept.solve(net, adj, &g, gmin, &b, &mut v);
    let fresh = |alive: &[bool], g: &[f64]| {
        let mut solver = Solver::<f64>::with_choice(n, SolverChoice::Sparse);
        let mut v = vec![0.0; n];
        solver.prepare(adj, alive, &b);
        solver.solve(net, adj, g, gmin, &b, &mut v);
        v
    };
    let agree = |a: &[f64], b: &[f64]| {
        let scale = a.iter().fold(0.0f64, |s, x| s.max(x.abs()));
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-10 * scale)
    };
    // Three edges between bulk nodes of degree above 3: the graph stays
    // connected.
    let bulk = |i: usize| i >= net.n_in && i < n - net.n_out;
    let mut pruned = 0;
    for e in 0..m {
        let (t, h) = (net.tail[e] as usize, net.head[e] as usize);
        if pruned < 3 && bulk(t) && bulk(h) && adj.range(t).len() > 3 && adj.range(h).len() > 3 {
            alive[e] = false;
            g[e] = 0.0;
            pruned += 1;
        }
    }
    let built = kept.stats.rows_built;
    kept.edges_pruned();
    kept.prepare_cached(adj, &alive, &b);
    kept.solve(net, adj, &g, gmin, &b, &mut v);
    assert_eq!(kept.stats.rows_built, built, "rows kept");
    assert!(agree(&fresh(&alive, &g), &v));
    // Every edge of one bulk node: it is cut off.
    let lone = (0..n)
        .find(|&i| bulk(i) && adj.range(i).any(|k| alive[adj.edge[k] as usize]))
        .unwrap();
    for k in adj.range(lone) {
        let e = adj.edge[k] as usize;
        alive[e] = false;
        g[e] = 0.0;
    }
    kept.edges_pruned();
    kept.prepare_cached(adj, &alive, &b);
    kept.solve(net, adj, &g, gmin, &b, &mut v);
    assert_eq!(kept.stats.rows_built, built + 1, "rows rebuilt");
    assert_eq!(v[lone], 0.0);
    assert!(agree(&fresh(&alive, &g), &v));
    // The three edges come alive again (the components stay): rows built
    // without them must not serve.
    for e in 0..m {
        let (t, h) = (net.tail[e] as usize, net.head[e] as usize);
        if !alive[e] && t != lone && h != lone {
            alive[e] = true;
            g[e] = 1.0 / d.ron[e];
        }
    }
    kept.alive_changed();
    kept.prepare_cached(adj, &alive, &b);
    kept.solve(net, adj, &g, gmin, &b, &mut v);
    assert_eq!(kept.stats.rows_built, built + 2, "rows rebuilt");
    assert!(agree(&fresh(&alive, &g), &v));
}

/// A kept solver brings only the changed conductances into its rows
/// between solves (a few devices move per substep): across pulses, boundary
/// switches and changes of one edge or of all, every solve agrees with a
/// fresh solver's within 1e-10 (relative; the kept one may start from an
/// earlier solve of the same boundary). A conductance left stale by a
/// millionth moves the voltages far more.
#[test]
fn a_kept_solver_follows_every_changed_conductance() {
    let params = random_bulk(200, 0.02);
    let inst = Instance::build(&params, 0, 0, 12);
    let (net, adj) = (&inst.network, &inst.adjacency);
    let (n, m) = (net.n_nodes(), net.n_edges());
    let mut rng = Pcg64::seed_from_u64(4);
    let d = &inst.devices;
    let random_g =
        |rng: &mut Pcg64, e: usize| 1.0 / (d.ron[e] + rng.random::<f64>() * (d.roff[e] - d.ron[e]));
    let mut g: Vec<f64> = (0..m).map(|e| random_g(&mut rng, e)).collect();
    let alive = vec![true; m];
    let mut boundaries = [Boundary::floating(n), Boundary::floating(n)];
    let active = &inst.task.active[0];
    phase::punish(net, active, 1, params.training.v_punish, &mut boundaries[0]);
    phase::read(net, active, params.training.v_read, &mut boundaries[1]);
    let gmin = params.circuit.gmin;
    let mut kept = Solver::<f64>::with_choice(n, SolverChoice::Sparse);
    let mut v = vec![0.0; n];
    for s in 0..40 {
        // Mostly a few edges; now and then every edge, or none.
        let changed = match s % 10 {
            9 => m,
            4 => 0,
            _ => 1 + s % 4,
        };
        for k in 0..changed {
            let e = if changed == m {
                k
            } else {
                rng.random_range(0..m)
            };
            g[e] = random_g(&mut rng, e);
        }
        // The boundary switches every few solves and comes back.
        let b = &boundaries[(s / 3) % 2];
        kept.prepare_cached(adj, &alive, b);
        kept.solve(net, adj, &g, gmin, b, &mut v);
        let mut fresh = Solver::<f64>::with_choice(n, SolverChoice::Sparse);
        let mut w = vec![0.0; n];
        fresh.prepare(adj, &alive, b);
        fresh.solve(net, adj, &g, gmin, b, &mut w);
        let scale = w.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        for (i, (a, b)) in v.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-10 * scale,
                "solve {s}, node {i}: kept {a}, fresh {b}"
            );
        }
    }
}

/// A solver kept from an instance that pruned edges serves the next
/// instance of the same wiring as a fresh one does: the same outcome, to
/// the bit.
#[test]
fn a_kept_solver_trains_the_next_instance_as_a_fresh_one() {
    let mut params = layered(&[6, 9, 5], 1.0, 0.0);
    params.pruning.p_prune = 0.5;
    let first = Instance::build(&params, 0, 0, 21);
    let second = Instance::build(&params, 0, 1, 22);
    let mut kept = Layouts::<f64>::with_choice(SolverChoice::Sparse);
    let a = train_reusing(&first, &params, &mut kept);
    assert!(a.pruned_edges > 0, "the first instance pruned");
    let b = train_reusing(&second, &params, &mut kept);
    let fresh = train_reusing(
        &second,
        &params,
        &mut Layouts::<f64>::with_choice(SolverChoice::Sparse),
    );
    assert_eq!(b.r_final, fresh.r_final);
    assert_eq!(b.final_currents, fresh.final_currents);
}

#[test]
fn auto_takes_the_dense_path_on_small_layered_and_the_sparse_on_large_random() {
    let decide = |params: &Params| {
        let inst = Instance::build(params, 0, 0, 5);
        let net = &inst.network;
        let n = net.n_nodes();
        let mut b = Boundary::floating(n);
        phase::punish(net, &inst.task.active[0], 0, 3.0, &mut b);
        let mut solver = Solver::<f64>::new(n);
        solver.prepare(&inst.adjacency, &vec![true; net.n_edges()], &b);
        solver.is_iterative()
    };
    let mut small = layered(&[16], 1.0, 0.0);
    small.network.n_in = 8;
    small.network.n_out = 8;
    assert!(!decide(&small), "8-16-8 stays on the split");
    assert!(
        decide(&random_bulk(1024, 0.0098)),
        "1,024 bulk nodes go sparse"
    );
}

/// Share of instances whose `recalled` and `converged_era` agree between
/// the two paths, over `replicas` instances of `params`.
fn outcome_agreement(params: &Params, replicas: usize) -> f64 {
    let mut dense = Layouts::<f64>::with_choice(SolverChoice::Dense);
    let mut sparse = Layouts::<f64>::with_choice(SolverChoice::Sparse);
    let same = (0..replicas)
        .filter(|&replica| {
            let inst = Instance::build(params, 0, replica, 9000 + replica as u64);
            let a = train_reusing(&inst, params, &mut dense);
            let b = train_reusing(&inst, params, &mut sparse);
            a.recalled == b.recalled && a.converged_era == b.converged_era
        })
        .count();
    same as f64 / replicas as f64
}

#[test]
fn sparse_and_dense_training_give_the_same_outcomes() {
    let mut bulk = random_bulk(24, 0.2);
    bulk.device.sigma_c2c = 0.1;
    bulk.pruning.p_prune = 0.3;
    let mut deep = layered(&[6, 6, 6], 1.0, 0.0);
    deep.network.random_polarity = false;
    deep.device.sigma_c2c = 0.1;
    for (name, params) in [("random_bulk 24", bulk), ("depth 3", deep)] {
        let share = outcome_agreement(&params, 250);
        eprintln!("{name}: {share}");
        assert!(share >= 0.99, "{name}: {share} of outcomes agree");
    }
}

#[test]
fn a_large_network_trains_to_the_same_bits_whatever_the_threads_and_batches() {
    let mut params = random_bulk(300, 0.03);
    params.training.max_eras = 3;
    params.device.sigma_c2c = 0.1;
    let params = Arc::new(params);
    let batch: Vec<(Instance, Arc<Params>)> = (0..6)
        .map(|replica| {
            let inst = Instance::build(&params, 0, replica, 40 + replica as u64);
            (inst, params.clone())
        })
        .collect();
    let cpu = Cpu {
        precision: Precision::F64,
        solver: SolverChoice::Auto,
    };
    let on = |threads: usize, chunk: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            batch
                .chunks(chunk)
                .flat_map(|c| cpu.train(c))
                .collect::<Vec<_>>()
        })
    };
    let reference = on(1, 6);
    assert_eq!(on(2, 6), reference, "two threads");
    assert_eq!(on(2, 1), reference, "batches of one");
    assert_eq!(on(1, 4), reference, "batches of four");
}
