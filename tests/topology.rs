//! The physical topologies (MODEL.md section 1, issue 17): nanowire
//! geometry against brute force and MODEL.md's rules, graph files and
//! their refusals, and `export-graph` round trips.

#[path = "common/refusal.rs"]
mod refusal;
#[path = "common/tables.rs"]
mod tables;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use memsweep::model::nanowire::{self, Wire};
use memsweep::model::network::Network;
use memsweep::params::{Params, Topology};
use refusal::{assert_refused, stderr};
use tables::read_sorted;

fn nanowire_params(n_wires: usize, wire_density: f64) -> Params {
    let mut p = Params::default();
    p.network.topology = Topology::Nanowire;
    p.network.n_in = 3;
    p.network.n_out = 3;
    p.network.n_wires = n_wires;
    p.network.wire_density = wire_density;
    p
}

fn memsweep(args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memsweep"));
    cmd.args(args).current_dir(cwd);
    if args[0] == "run" {
        cmd.args([
            "--backend",
            "cpu",
            "--threads",
            "2",
            "--quiet",
            "--no-slurm",
        ]);
    }
    cmd.output().expect("memsweep runs")
}

#[test]
fn grid_junctions_are_the_brute_force_junctions() {
    for (n, density, std) in [
        (2000, 0.1, 1.0),
        (1500, 0.03, 4.0),
        (800, 0.5, 0.0),
        (50, 2.0, 1.0),
    ] {
        let mut p = nanowire_params(n, density).network;
        p.wire_length_std = std;
        for seed in 0..3 {
            let wires = nanowire::drop_wires(&p, seed);
            let fast = nanowire::junctions(&wires);
            let slow = nanowire::junctions_brute_force(&wires);
            assert!(!slow.is_empty());
            assert_eq!(fast, slow, "{n} wires at density {density}, seed {seed}");
        }
    }
}

#[test]
fn ten_thousand_wires_find_their_junctions() {
    let p = nanowire_params(10_000, 0.1).network;
    let wires = nanowire::drop_wires(&p, 1);
    let pairs = nanowire::junctions(&wires);
    // (n - 1) density l^2 / pi = 3183 mean junctions per 1000 wires, a few
    // percent fewer near the box edges.
    let expected = nanowire::expected_edges(&p);
    let found = pairs.len() as f64;
    assert!(
        found < expected && found > 0.9 * expected,
        "{found} of {expected}"
    );
    let net = Network::generate(&p, 1);
    assert!(net.n_nodes() > 9_000 && net.n_nodes() <= 10_000);
}

#[test]
fn nanowire_networks_follow_the_geometry_rules() {
    let p = nanowire_params(300, 0.08);
    for seed in 0..10 {
        let wires = nanowire::drop_wires(&p.network, seed);
        let built = nanowire::build(&p.network, seed).unwrap();
        let net = Network::generate(&p.network, seed);
        assert_eq!(net.n_nodes(), built.wire.len());
        assert_eq!(net.n_hidden, built.n_hidden);
        let w = |node: u32| -> &Wire { &wires[built.wire[node as usize]] };

        // The largest component, whole and connected.
        let all = nanowire::junctions_brute_force(&wires);
        let kept = nanowire::largest_component(wires.len(), &all);
        let mut nodes = built.wire.clone();
        nodes.sort_unstable();
        assert_eq!(nodes, kept);
        let inside = |i: u32| kept.binary_search(&(i as usize)).is_ok();
        let expected_edges = all.iter().filter(|&&(i, _)| inside(i)).count();
        assert_eq!(
            net.n_edges(),
            expected_edges,
            "every junction of the component"
        );

        for e in 0..net.n_edges() {
            let (u, v) = (net.tail[e], net.head[e]);
            assert!(w(u).crosses(w(v)));
            assert!(
                w(u).centre_x() <= w(v).centre_x(),
                "tail has the smaller centre x"
            );
        }
        // Inputs: the smallest left ends; outputs: of the rest, the largest
        // right ends.
        let n_in = net.n_in;
        let out0 = net.output_node(0);
        let left_of_inputs = (0..n_in)
            .map(|i| w(i as u32).min_x())
            .fold(f64::MIN, f64::max);
        let right_of_outputs = (out0..net.n_nodes())
            .map(|o| w(o as u32).max_x())
            .fold(f64::MAX, f64::min);
        for other in n_in..net.n_nodes() {
            assert!(w(other as u32).min_x() >= left_of_inputs);
        }
        for bulk in n_in..out0 {
            assert!(w(bulk as u32).max_x() <= right_of_outputs);
        }
        assert!(net.layer[..n_in].iter().all(|&l| l == 0));
        assert!(net.layer[out0..].iter().all(|&l| l == 2));
    }
}

#[test]
fn nanowire_networks_are_determined_by_their_seed() {
    let mut p = nanowire_params(200, 0.1);
    p.network.random_polarity = true;
    let a = Network::generate(&p.network, 9);
    assert_eq!(a, Network::generate(&p.network, 9));
    assert_ne!(a, Network::generate(&p.network, 10));
    assert!(a.polarity.contains(&-1) && a.polarity.contains(&1));
}

#[test]
fn a_component_too_small_for_the_terminals_is_refused_naming_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("sparse.toml"),
        "seed = 1\nreplicas = 3\n[network]\ntopology = \"nanowire\"\nn_in = 4\nn_out = 4\nn_wires = 60\nwire_density = 0.005\n",
    )
    .unwrap();
    for args in [
        vec!["run", "sparse.toml", "-o", "out"],
        vec!["analyze", "sparse.toml"],
        vec![
            "export-graph",
            "sparse.toml",
            "--point",
            "0",
            "--replica",
            "1",
            "-o",
            "g",
        ],
    ] {
        let out = memsweep(&args, dir.path());
        assert_refused(
            &out,
            &[
                "sparse.toml",
                "network.wire_density",
                "seed",
                "raise network.wire_density",
            ],
            args[0],
        );
    }
    assert!(!dir.path().join("out").exists() && !dir.path().join("g").exists());
}

#[test]
fn nanowire_fields_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (field, value, mention) in [
        ("wire_density", "0.0", "network.wire_density"),
        ("wire_length", "-1.0", "network.wire_length"),
        ("wire_length_std", "-0.5", "network.wire_length_std"),
        ("n_wires", "3", "network.n_wires"),
    ] {
        let text =
            format!("[network]\ntopology = \"nanowire\"\nn_in = 2\nn_out = 2\n{field} = {value}\n");
        fs::write(dir.path().join("bad.toml"), text).unwrap();
        let out = memsweep(&["run", "bad.toml", "-o", "out"], dir.path());
        assert_refused(&out, &["bad.toml", mention], field);
        assert!(!dir.path().join("out").exists());
    }
}

const NODES: &str = "id,role\n10,input\n11,input\n20,bulk\n21,bulk\n30,output\n31,output\n";
const EDGES: &str = "tail,head\n10,20\n11,21\n20,21\n20,30\n21,31\n";
const GRAPH_SWEEP: &str =
    "seed = 2\nreplicas = 2\n[network]\ntopology = \"graph\"\ngraph = \"g/edges.csv\"\n[training]\nmax_eras = 3\n";

#[test]
fn bad_graph_files_are_refused_in_one_line_naming_file_and_row() {
    let cases: [(&str, &str, &str, &[&str]); 12] = [
        (
            "self-loop",
            NODES,
            "tail,head\n10,20\n20,20\n",
            &["edges.csv", "line 3", "self-loop"],
        ),
        (
            "unknown node",
            NODES,
            "tail,head\n10,20\n20,99\n",
            &["edges.csv", "line 3", "head", "99"],
        ),
        (
            "duplicate",
            NODES,
            "tail,head\n10,20\n20,30\n30,20\n",
            &["edges.csv", "line 4", "duplicate", "line 3"],
        ),
        (
            "repeated edge",
            NODES,
            "tail,head\n10,20\n10,20\n",
            &["edges.csv", "line 3", "duplicate"],
        ),
        (
            "no input",
            "id,role\n20,bulk\n30,output\n31,output\n",
            EDGES,
            &["nodes.csv", "no node has role input"],
        ),
        (
            "no output",
            "id,role\n10,input\n20,bulk\n",
            EDGES,
            &["nodes.csv", "no node has role output"],
        ),
        (
            "bad role",
            "id,role\n10,input\n11,hidden\n",
            EDGES,
            &["nodes.csv", "line 3", "role", "hidden"],
        ),
        (
            "bad integer",
            NODES,
            "tail,head\n10,x\n",
            &["edges.csv", "line 2", "head", "`x`"],
        ),
        (
            "negative ron",
            NODES,
            "tail,head,ron\n10,20,-1\n",
            &["edges.csv", "line 2", "ron"],
        ),
        (
            "bad polarity",
            NODES,
            "tail,head,polarity\n10,20,0\n",
            &["edges.csv", "line 2", "polarity"],
        ),
        (
            "unknown column",
            NODES,
            "tail,head,weight\n10,20,1\n",
            &["edges.csv", "line 1", "weight"],
        ),
        (
            "short row",
            NODES,
            "tail,head\n10\n",
            &["edges.csv", "line 2", "fields"],
        ),
    ];
    for (what, nodes, edges, mentions) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("g")).unwrap();
        fs::write(dir.path().join("g/nodes.csv"), nodes).unwrap();
        fs::write(dir.path().join("g/edges.csv"), edges).unwrap();
        fs::write(dir.path().join("s.toml"), GRAPH_SWEEP).unwrap();
        let out = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
        assert_refused(&out, mentions, what);
        assert!(!dir.path().join("out").exists(), "{what}: nothing written");
    }
}

#[test]
fn graph_sweeps_refuse_terminal_counts_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("g")).unwrap();
    fs::write(dir.path().join("g/edges.csv"), EDGES).unwrap();
    fs::write(dir.path().join("s.toml"), GRAPH_SWEEP).unwrap();
    let out = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert_refused(
        &out,
        &["s.toml", "network.graph_nodes", "nodes.csv"],
        "no nodes file",
    );
    fs::write(dir.path().join("g/nodes.csv"), NODES).unwrap();
    let three = GRAPH_SWEEP.replace("[training]", "n_in = 3\n[training]");
    fs::write(dir.path().join("s.toml"), three).unwrap();
    let out = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert_refused(
        &out,
        &["s.toml", "network.n_in", "2 nodes of role input"],
        "n_in",
    );
    let gone = GRAPH_SWEEP.replace("g/edges.csv", "g/missing.csv");
    fs::write(dir.path().join("s.toml"), gone).unwrap();
    let out = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert_refused(&out, &["missing.csv", "cannot read"], "missing file");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_changed_graph_file_is_a_different_sweep_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("g")).unwrap();
    fs::write(dir.path().join("g/nodes.csv"), NODES).unwrap();
    fs::write(dir.path().join("g/edges.csv"), EDGES).unwrap();
    fs::write(dir.path().join("s.toml"), GRAPH_SWEEP).unwrap();
    let first = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let recorded = fs::read_to_string(dir.path().join("out/sweep.toml")).unwrap();
    assert!(recorded.contains("[graph_files]") && recorded.contains("fnv1a64:"));
    let again = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert!(
        again.status.success(),
        "the same files resume: {}",
        stderr(&again)
    );
    fs::write(dir.path().join("g/edges.csv"), format!("{EDGES}10,21\n")).unwrap();
    let changed = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert_refused(&changed, &["different sweep"], "changed graph file");
    let status = memsweep(&["status", "out"], dir.path());
    assert!(
        status.status.success(),
        "status reads no graph file: {}",
        stderr(&status)
    );
    fs::remove_dir_all(dir.path().join("g")).unwrap();
    let report = memsweep(&["report", "out"], dir.path());
    assert!(
        report.status.success(),
        "report reads no graph file: {}",
        stderr(&report)
    );
    let hash = read_sorted(&dir.path().join("out"), "instances");
    let hashes = hash
        .column_by_name("graph_hash")
        .unwrap()
        .as_string::<i32>();
    assert!(hashes.value(0).starts_with("fnv1a64:"));
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("{name}"))
        .as_ref()
}

/// The outcome columns of replica `r` of point 0.
fn outcome(batch: &RecordBatch, r: usize) -> (i64, Option<i64>, i64, f64) {
    let int = |name: &str| column(batch, name).as_primitive::<Int64Type>().clone();
    let converged = int("converged_era");
    (
        int("recalled").value(r),
        converged.is_valid(r).then(|| converged.value(r)),
        int("pruned_edges").value(r),
        column(batch, "energy_write")
            .as_primitive::<Float64Type>()
            .value(r),
    )
}

#[test]
fn an_exported_instance_trains_to_the_same_outcome_as_a_graph_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        "seed = 7\nreplicas = 3\n[network]\ntopology = \"nanowire\"\nn_in = 3\nn_out = 3\n\
                  n_wires = 80\nrandom_polarity = true\n[device]\nsigma_d2d = 0.2\n\
                  [training]\nmax_eras = 8\nv_punish = 4.0\n[pruning]\np_prune = 0.5\n";
    fs::write(dir.path().join("nw.toml"), source).unwrap();
    let run = memsweep(&["run", "nw.toml", "-o", "nw"], dir.path());
    assert!(run.status.success(), "{}", stderr(&run));
    let original = read_sorted(&dir.path().join("nw"), "instances");
    for (replica, format) in [(1, "csv"), (2, "parquet")] {
        let out = format!("g{replica}");
        let r = replica.to_string();
        let export = memsweep(
            &[
                "export-graph",
                "nw.toml",
                "--point",
                "0",
                "--replica",
                &r,
                "-o",
                &out,
                "--format",
                format,
            ],
            dir.path(),
        );
        assert!(export.status.success(), "{}", stderr(&export));
        let graphml = fs::read_to_string(dir.path().join(&out).join("graph.graphml")).unwrap();
        let count = |tag: &str| graphml.matches(tag).count() as i64;
        let graph = format!(
            "seed = 7\nreplicas = 3\n[network]\ntopology = \"graph\"\ngraph = \"{out}/edges.{format}\"\n\
             n_in = 3\nn_out = 3\n[device]\nsigma_d2d = 0.2\n[training]\nmax_eras = 8\nv_punish = 4.0\n\
             [pruning]\np_prune = 0.5\n"
        );
        fs::write(dir.path().join("g.toml"), graph).unwrap();
        let rerun = memsweep(&["run", "g.toml", "-o", &format!("{out}-run")], dir.path());
        assert!(rerun.status.success(), "{}", stderr(&rerun));
        let again = read_sorted(&dir.path().join(format!("{out}-run")), "instances");
        let (a, b) = (outcome(&original, replica), outcome(&again, replica));
        assert_eq!(
            (a.0, a.1, a.2),
            (b.0, b.1, b.2),
            "{format}: recalled, converged_era, pruned_edges"
        );
        assert!(
            (a.3 - b.3).abs() <= 1e-12 * a.3.abs(),
            "{format}: energy {} vs {}",
            a.3,
            b.3
        );
        let n_edges = |t: &RecordBatch| {
            column(t, "n_edges")
                .as_primitive::<Int64Type>()
                .value(replica)
        };
        assert_eq!(n_edges(&original), n_edges(&again));
        let n_nodes = |t: &RecordBatch| {
            column(t, "n_nodes")
                .as_primitive::<Int64Type>()
                .value(replica)
        };
        assert_eq!(
            (count("<node "), count("<edge ")),
            (n_nodes(&original), n_edges(&original))
        );
    }
}

/// The round trip with the VTEAM device and stuck devices: the export
/// marks the stuck devices, and the graph sweep draws the same ones and
/// trains to the same outcome.
#[test]
fn an_exported_vteam_instance_with_stuck_devices_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let device = "[device]\nmodel = \"vteam\"\nwindow = \"joglekar\"\nr_of_x = \"exponential\"\n\
                  sigma_d2d = 0.2\np_stuck_on = 0.1\np_stuck_off = 0.1\n";
    let tail = format!("{device}[training]\nmax_eras = 6\nv_punish = 4.0\n");
    let source = format!(
        "seed = 11\nreplicas = 2\n[network]\ntopology = \"random_bulk\"\nn_in = 3\nn_out = 3\n\
         n_bulk = 20\np_bulk = 0.25\n{tail}"
    );
    fs::write(dir.path().join("rb.toml"), source).unwrap();
    let run = memsweep(&["run", "rb.toml", "-o", "rb"], dir.path());
    assert!(run.status.success(), "{}", stderr(&run));
    let export = memsweep(
        &[
            "export-graph",
            "rb.toml",
            "--point",
            "0",
            "--replica",
            "1",
            "-o",
            "g",
        ],
        dir.path(),
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let edges = fs::read_to_string(dir.path().join("g/edges.csv")).unwrap();
    let header: Vec<&str> = edges.lines().next().unwrap().split(',').collect();
    let stuck = header
        .iter()
        .position(|&c| c == "stuck")
        .expect("a stuck column");
    let marked = edges
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(stuck) == Some("true"))
        .count();
    assert!(marked > 0, "no stuck device exported");
    let graph = format!(
        "seed = 11\nreplicas = 2\n[network]\ntopology = \"graph\"\ngraph = \"g/edges.csv\"\n\
         n_in = 3\nn_out = 3\n{tail}"
    );
    fs::write(dir.path().join("g.toml"), graph).unwrap();
    let rerun = memsweep(&["run", "g.toml", "-o", "g-run"], dir.path());
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let original = read_sorted(&dir.path().join("rb"), "instances");
    let again = read_sorted(&dir.path().join("g-run"), "instances");
    let (a, b) = (outcome(&original, 1), outcome(&again, 1));
    assert_eq!((a.0, a.1, a.2), (b.0, b.1, b.2));
    assert!(
        (a.3 - b.3).abs() <= 1e-12 * a.3.abs(),
        "energy {} vs {}",
        a.3,
        b.3
    );
}

#[test]
fn parquet_graph_files_are_checked_row_by_row() {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("g")).unwrap();
    let nodes = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![1, 2, 2, 4])) as _),
        (
            "role",
            Arc::new(StringArray::from(vec!["input", "bulk", "output", "output"])) as _,
        ),
    ])
    .unwrap();
    let edges = RecordBatch::try_from_iter([
        ("tail", Arc::new(Int64Array::from(vec![1, 2])) as _),
        ("head", Arc::new(Int64Array::from(vec![2, 4])) as _),
    ])
    .unwrap();
    memsweep::results::write_parquet(&dir.path().join("g/nodes.parquet"), &nodes, &[]).unwrap();
    memsweep::results::write_parquet(&dir.path().join("g/edges.parquet"), &edges, &[]).unwrap();
    let sweep = GRAPH_SWEEP.replace("g/edges.csv", "g/edges.parquet");
    fs::write(dir.path().join("s.toml"), sweep).unwrap();
    let out = memsweep(&["run", "s.toml", "-o", "out"], dir.path());
    assert_refused(&out, &["nodes.parquet", "row 3", "listed twice"], "parquet");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_axis_of_graph_files_reads_each_once_and_wires_each_point_its_own() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [("a", ""), ("b", "10,21\n")] {
        let sub = dir.path().join(name);
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("nodes.csv"), NODES).unwrap();
        fs::write(sub.join("edges.csv"), format!("{EDGES}{extra}")).unwrap();
    }
    let text = "replicas = 3\n[network]\ntopology = \"graph\"\n\
                [[axes]]\n\"network.graph\" = [\"a/edges.csv\", \"b/edges.csv\", \"a/edges.csv\"]\n";
    let file = dir.path().join("s.toml");
    fs::write(&file, text).unwrap();
    let spec = memsweep::sweep::Spec::from_file(&file).unwrap();
    assert_eq!(spec.graphs.len(), 2, "each file once");
    let edges: Vec<usize> = spec
        .points()
        .iter()
        .map(|p| Network::generate(&p.params.network, 1).n_edges())
        .collect();
    assert_eq!(edges, vec![5, 6, 5]);
    assert!(spec.source.contains("[graph_files]"));
    let again = memsweep::sweep::Spec::parse(&spec.source, "recorded.toml").unwrap();
    assert!(
        again.same_rows(&spec),
        "the recorded sweep names the same files"
    );
}

#[test]
fn a_nanowire_network_too_large_for_memory_is_refused_naming_n_wires() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("big.toml"),
        "[network]\ntopology = \"nanowire\"\nn_wires = 100000000\n",
    )
    .unwrap();
    let out = memsweep(&["plan", "big.toml"], dir.path());
    assert_refused(
        &out,
        &["big.toml", "network.n_wires", "per instance"],
        "memory",
    );
}

#[test]
fn nanowire_rows_do_not_depend_on_chunks_or_shards() {
    let dir = tempfile::tempdir().unwrap();
    let sweep =
        "seed = 21\nreplicas = 5\n[network]\ntopology = \"nanowire\"\nn_in = 2\nn_out = 2\n\
                 n_wires = 50\nrandom_polarity = true\n[training]\nmax_eras = 5\n\
                 [[axes]]\n\"network.wire_density\" = [0.08, 0.12]\n";
    fs::write(dir.path().join("s.toml"), sweep).unwrap();
    let whole = memsweep(&["run", "s.toml", "-o", "whole"], dir.path());
    assert!(whole.status.success(), "{}", stderr(&whole));
    for shard in ["0/2", "1/2"] {
        let part = memsweep(
            &[
                "run",
                "s.toml",
                "-o",
                "split",
                "--shard",
                shard,
                "--batch-size",
                "2",
            ],
            dir.path(),
        );
        assert!(part.status.success(), "{}", stderr(&part));
    }
    assert_eq!(
        read_sorted(&dir.path().join("whole"), "instances"),
        read_sorted(&dir.path().join("split"), "instances")
    );
}

#[test]
fn file_values_win_and_every_other_value_is_drawn_per_replica() {
    let dir = tempfile::tempdir().unwrap();
    let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/graph.toml");
    let sweeps = sweeps.to_str().unwrap();
    let mut edges = Vec::new();
    for replica in ["0", "1"] {
        let out = memsweep(
            &[
                "export-graph",
                sweeps,
                "--point",
                "1",
                "--replica",
                replica,
                "-o",
                replica,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        edges.push(fs::read_to_string(dir.path().join(replica).join("edges.csv")).unwrap());
    }
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let (a, b) = (rows(&edges[0]), rows(&edges[1]));
    // columns: tail, head, polarity, ron, roff, vt, r0, r, alive
    assert_eq!(a.len(), 23);
    assert_eq!(
        (a[14][2].as_str(), b[14][2].as_str()),
        ("-1", "-1"),
        "the file's polarity"
    );
    for row in [&a[21], &b[21], &a[22], &b[22]] {
        assert_eq!(
            (row[3].as_str(), row[4].as_str()),
            ("2000.0", "20000.0"),
            "the file's ron, roff"
        );
    }
    assert!(
        (0..23).any(|e| a[e][6] != b[e][6]),
        "initial states drawn per replica"
    );
    assert!(
        (0..23).any(|e| a[e][2] != b[e][2]),
        "random polarities drawn per replica"
    );
}
