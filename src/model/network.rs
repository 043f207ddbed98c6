//! Network topology (MODEL.md section 1): which nodes exist, in which role,
//! and which memristor joins which pair. Generated from the instance's seed.
//!
//! Node order is fixed: inputs `0..n_in`, then hidden (bulk) nodes, then
//! outputs. Edge order is the generation order below; both backends index
//! edges the same way.

use rand::Rng;

use crate::model::nanowire;
use crate::params::{NetworkParams, Topology};
use crate::rng::{self, Stream};

/// One network's wiring. Ground is not a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub n_in: usize,
    pub n_hidden: usize,
    pub n_out: usize,
    /// Tail `u` of each edge (lower layer in layered networks).
    pub tail: Vec<u32>,
    /// Head `v` of each edge.
    pub head: Vec<u32>,
    /// Orientation `s_e` of each device: +1 or -1.
    pub polarity: Vec<i8>,
    /// Layer of each node: 0 for inputs, 1..=depth for hidden layers,
    /// depth + 1 for outputs (random_bulk: bulk nodes are layer 1).
    pub layer: Vec<u32>,
}

impl Network {
    pub fn n_nodes(&self) -> usize {
        self.n_in + self.n_hidden + self.n_out
    }

    pub fn n_edges(&self) -> usize {
        self.tail.len()
    }

    /// Index of output `o` among the nodes.
    pub fn output_node(&self, o: usize) -> usize {
        self.n_in + self.n_hidden + o
    }

    /// The nodes of one layer parity (the odd layers, or the even ones)
    /// that no edge joins to each other, as a mask: the larger such class,
    /// the odd one on a tie, or none. It is an independent set of the
    /// wiring and so of whatever pruning leaves of it; the GPU's workgroup
    /// kernel can eliminate all its free nodes at once, which bounds the
    /// dense system by the other class (`Params::parity_class_size` is the
    /// size every network of a grid point reaches).
    pub fn parity_class(&self) -> Vec<bool> {
        let mut joined = [false; 2];
        for (&u, &v) in self.tail.iter().zip(&self.head) {
            let (a, b) = (self.layer[u as usize] % 2, self.layer[v as usize] % 2);
            if a == b {
                joined[a as usize] = true;
            }
        }
        let size = |parity: u32| self.layer.iter().filter(|&&l| l % 2 == parity).count();
        let parity = match (joined[1], joined[0]) {
            (false, false) if size(0) > size(1) => 0,
            (false, _) => 1,
            (true, false) => 0,
            (true, true) => return vec![false; self.n_nodes()],
        };
        self.layer.iter().map(|&l| l % 2 == parity).collect()
    }

    /// Generate the network of an instance from its seed.
    ///
    /// Panics where `try_generate` fails: a run checks every nanowire
    /// instance first (`sweep::check_wiring`).
    pub fn generate(p: &NetworkParams, seed: u64) -> Network {
        Network::try_generate(p, seed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Generate the network of an instance from its seed, or say why the
    /// instance has none: a nanowire instance whose largest component is
    /// smaller than its terminals (the reason names the seed).
    pub fn try_generate(p: &NetworkParams, seed: u64) -> Result<Network, String> {
        let mut topo = rng::stream(seed, Stream::Topology);
        let (n_hidden, layer, edges) = match p.topology {
            Topology::Layered => layered(p, &mut topo),
            Topology::RandomBulk => random_bulk(p, &mut topo),
            Topology::Nanowire => nanowire(p, seed)?,
            Topology::Graph => from_file(p),
        };
        let mut pol = rng::stream(seed, Stream::Polarity);
        let mut polarity: Vec<i8> = edges
            .iter()
            .map(|_| {
                if p.random_polarity && pol.random::<bool>() {
                    -1
                } else {
                    1
                }
            })
            .collect();
        if let Some(g) = p.wiring.as_ref().filter(|_| p.topology == Topology::Graph) {
            for (s, given) in polarity.iter_mut().zip(&g.polarity) {
                *s = given.unwrap_or(*s);
            }
        }
        Ok(Network {
            n_in: p.n_in,
            n_hidden,
            n_out: p.n_out,
            tail: edges.iter().map(|e| e.0).collect(),
            head: edges.iter().map(|e| e.1).collect(),
            polarity,
            layer,
        })
    }
}

/// A nanowire network (`model::nanowire`): inputs layer 0, bulk 1, outputs 2.
fn nanowire(p: &NetworkParams, seed: u64) -> Result<(usize, Vec<u32>, Edges), String> {
    let built = nanowire::build(p, seed).map_err(|e| {
        format!(
            "instance seed {seed}: the largest connected component of {} nanowires has {} wires, \
             fewer than n_in + n_out = {}; raise network.wire_density (now {}; the percolation \
             threshold for these lengths is about {:.3} wires/um^2)",
            p.n_wires,
            e.largest,
            e.needed,
            p.wire_density,
            nanowire::percolation_density(p)
        )
    })?;
    let mut layer = vec![0u32; p.n_in];
    layer.extend(std::iter::repeat_n(1u32, built.n_hidden));
    layer.extend(std::iter::repeat_n(2u32, p.n_out));
    Ok((built.n_hidden, layer, built.edges))
}

/// The wiring read from a graph file, already in internal numbering.
fn from_file(p: &NetworkParams) -> (usize, Vec<u32>, Edges) {
    let g = p
        .wiring
        .as_ref()
        .expect("sweep::spec reads the graph file of every graph point");
    let edges = g.tail.iter().copied().zip(g.head.iter().copied()).collect();
    (g.n_hidden, g.layer.clone(), edges)
}

type Edges = Vec<(u32, u32)>;

fn layered(p: &NetworkParams, rng: &mut impl Rng) -> (usize, Vec<u32>, Edges) {
    let widths = p.layer_widths();
    let mut first = vec![0usize];
    for w in &widths {
        first.push(first.last().unwrap() + w);
    }
    let layer = (0..widths.len())
        .flat_map(|l| std::iter::repeat_n(l as u32, widths[l]))
        .collect();
    let mut edges = Vec::new();
    for l in 0..widths.len() - 1 {
        for u in first[l]..first[l + 1] {
            for v in first[l + 1]..first[l + 2] {
                // Always draw, so density = 1 and density < 1 share a stream.
                let keep = rng.random::<f64>() < p.density;
                if keep {
                    edges.push((u as u32, v as u32));
                }
            }
        }
    }
    let out0 = first[widths.len() - 1];
    for u in 0..p.n_in {
        for o in 0..p.n_out {
            let keep = rng.random::<f64>() < p.skip;
            if keep {
                edges.push((u as u32, (out0 + o) as u32));
            }
        }
    }
    (p.hidden.iter().sum(), layer, edges)
}

fn random_bulk(p: &NetworkParams, rng: &mut impl Rng) -> (usize, Vec<u32>, Edges) {
    let (n_in, n_bulk, n_out) = (p.n_in, p.n_bulk, p.n_out);
    let bulk0 = n_in;
    let out0 = n_in + n_bulk;
    let mut layer = vec![0u32; n_in];
    layer.extend(std::iter::repeat_n(1u32, n_bulk));
    layer.extend(std::iter::repeat_n(2u32, n_out));
    let mut edges = Vec::new();
    for i in 0..n_bulk {
        for j in i + 1..n_bulk {
            if rng.random::<f64>() < p.p_bulk {
                edges.push(((bulk0 + i) as u32, (bulk0 + j) as u32));
            }
        }
    }
    for u in 0..n_in {
        for b in distinct(rng, n_bulk, p.k_attach) {
            edges.push((u as u32, (bulk0 + b) as u32));
        }
    }
    for o in 0..n_out {
        for b in distinct(rng, n_bulk, p.k_attach) {
            edges.push(((bulk0 + b) as u32, (out0 + o) as u32));
        }
    }
    (n_bulk, layer, edges)
}

/// `k` distinct indices of `0..n`, in increasing order (partial Fisher-Yates).
fn distinct(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    let mut chosen = idx[..k].to_vec();
    chosen.sort_unstable();
    chosen
}

/// A run of edges that share a tail and whose heads and edge indices are
/// both consecutive: edges `e0..e0 + len` join `tail` to heads
/// `head0..head0 + len`. Layered networks are made of long runs (one per
/// node of a layer and its all-to-all successor layer), so a loop over runs
/// reads node voltages and device state as contiguous slices, which the
/// compiler turns into vector code. Any network splits into runs; a sparse
/// one into short runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeRun {
    pub tail: u32,
    pub head0: u32,
    pub e0: u32,
    pub len: u32,
}

impl EdgeRun {
    /// The run's tail node, the range of its head nodes and the range of
    /// its edges.
    pub fn span(&self) -> (usize, std::ops::Range<usize>, std::ops::Range<usize>) {
        let (h0, e0, len) = (self.head0 as usize, self.e0 as usize, self.len as usize);
        (self.tail as usize, h0..h0 + len, e0..e0 + len)
    }
}

impl Network {
    /// The same circuit with its edges reordered, and some of them turned
    /// round, so that its runs are few and long: an edge between two
    /// layers is listed under its node in the narrower layer (turned round
    /// if that node is its head), and edges are sorted by that node, then
    /// by their other end. Turning an edge round swaps its tail and head
    /// and negates its polarity, which leaves its voltage `s_e (V_u - V_v)`,
    /// its current and its power as they were: the circuit is the same.
    ///
    /// Returns the grouped network and, for each of its edges, the index of
    /// that edge in `self`. For an 8-16-8 network: 8 runs of 16 from the
    /// inputs, and 8 runs of 16 from the outputs instead of 16 runs of 8
    /// from the hidden nodes.
    pub fn grouped(&self) -> (Network, Vec<u32>) {
        let mut width = vec![0usize; self.layer.iter().max().map_or(0, |&l| l as usize + 1)];
        for &l in &self.layer {
            width[l as usize] += 1;
        }
        let width_of = |node: u32| width[self.layer[node as usize] as usize];
        // (listed under, other end, edge, turned round)
        let mut keyed: Vec<(u32, u32, u32, bool)> = (0..self.n_edges())
            .map(|e| {
                let (u, v) = (self.tail[e], self.head[e]);
                if width_of(v) < width_of(u) {
                    (v, u, e as u32, true)
                } else {
                    (u, v, e as u32, false)
                }
            })
            .collect();
        keyed.sort_unstable();
        let net = Network {
            n_in: self.n_in,
            n_hidden: self.n_hidden,
            n_out: self.n_out,
            tail: keyed.iter().map(|k| k.0).collect(),
            head: keyed.iter().map(|k| k.1).collect(),
            polarity: keyed
                .iter()
                .map(|&(_, _, e, turned)| {
                    let s = self.polarity[e as usize];
                    if turned {
                        -s
                    } else {
                        s
                    }
                })
                .collect(),
            layer: self.layer.clone(),
        };
        (net, keyed.iter().map(|k| k.2).collect())
    }

    /// The edges as maximal runs, in edge order.
    pub fn runs(&self) -> Vec<EdgeRun> {
        let mut runs: Vec<EdgeRun> = Vec::new();
        for e in 0..self.n_edges() {
            let (u, v) = (self.tail[e], self.head[e]);
            match runs.last_mut() {
                Some(run) if run.tail == u && run.head0 + run.len == v => run.len += 1,
                _ => runs.push(EdgeRun {
                    tail: u,
                    head0: v,
                    e0: e as u32,
                    len: 1,
                }),
            }
        }
        runs
    }
}

/// Adjacency in compressed rows: for node `i`, entries
/// `start[i]..start[i + 1]` of `edge` and `other` list its incident edges and
/// the node at their far end.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjacency {
    pub start: Vec<u32>,
    pub edge: Vec<u32>,
    pub other: Vec<u32>,
}

impl Adjacency {
    pub fn n_edges(&self) -> usize {
        self.edge.len() / 2
    }

    pub fn new(net: &Network) -> Adjacency {
        let n = net.n_nodes();
        let mut degree = vec![0u32; n];
        for e in 0..net.n_edges() {
            degree[net.tail[e] as usize] += 1;
            degree[net.head[e] as usize] += 1;
        }
        let mut start = vec![0u32; n + 1];
        for i in 0..n {
            start[i + 1] = start[i] + degree[i];
        }
        let mut fill = start.clone();
        let m2 = start[n] as usize;
        let (mut edge, mut other) = (vec![0u32; m2], vec![0u32; m2]);
        for e in 0..net.n_edges() {
            let (u, v) = (net.tail[e] as usize, net.head[e] as usize);
            edge[fill[u] as usize] = e as u32;
            other[fill[u] as usize] = v as u32;
            fill[u] += 1;
            edge[fill[v] as usize] = e as u32;
            other[fill[v] as usize] = u as u32;
            fill[v] += 1;
        }
        Adjacency { start, edge, other }
    }

    pub fn range(&self, node: usize) -> std::ops::Range<usize> {
        self.start[node] as usize..self.start[node + 1] as usize
    }

    /// The most edges any node has (0 without nodes).
    pub fn max_degree(&self) -> usize {
        self.start
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn layered_all_to_all_has_every_consecutive_edge_tail_major() {
        let mut p = Params::default().network;
        p.n_in = 2;
        p.hidden = vec![3];
        p.n_out = 2;
        let net = Network::generate(&p, 1);
        assert_eq!(net.n_edges(), 2 * 3 + 3 * 2);
        assert_eq!((net.tail[0], net.head[0]), (0, 2));
        assert_eq!((net.tail[2], net.head[2]), (0, 4));
        assert_eq!((net.tail[6], net.head[6]), (2, 5));
        assert_eq!(net.layer, vec![0, 0, 1, 1, 1, 2, 2]);
        assert!(net.polarity.iter().all(|&s| s == 1));
    }

    #[test]
    fn grouping_keeps_every_edge_and_its_voltage_and_lengthens_the_runs() {
        let mut p = Params::default().network;
        p.n_in = 8;
        p.hidden = vec![16];
        p.n_out = 8;
        let net = Network::generate(&p, 3);
        let (grouped, _) = net.grouped();
        assert_eq!(net.runs().len(), 8 + 16);
        let runs = grouped.runs();
        assert_eq!(runs.len(), 16, "8 from the inputs, 8 from the outputs");
        assert!(runs.iter().all(|run| run.len == 16));
        // A random network with random polarities: every edge appears once,
        // between the same two nodes, with the same voltage.
        p.n_in = 3;
        p.hidden = vec![7, 2];
        p.n_out = 5;
        p.density = 0.7;
        p.skip = 0.4;
        p.random_polarity = true;
        let net = Network::generate(&p, 11);
        let (grouped, edge_id) = net.grouped();
        let mut seen = vec![false; net.n_edges()];
        let volts: Vec<f64> = (0..net.n_nodes())
            .map(|i| (i * i % 7) as f64 - 2.5)
            .collect();
        for (s, &e) in edge_id.iter().enumerate() {
            let e = e as usize;
            assert!(!seen[e]);
            seen[e] = true;
            let (u, v) = (grouped.tail[s], grouped.head[s]);
            assert!((u, v) == (net.tail[e], net.head[e]) || (v, u) == (net.tail[e], net.head[e]));
            let voltage = |n: &Network, k: usize| {
                n.polarity[k] as f64 * (volts[n.tail[k] as usize] - volts[n.head[k] as usize])
            };
            assert_eq!(voltage(&grouped, s), voltage(&net, e));
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn runs_cover_every_edge_once_with_consecutive_heads() {
        let mut p = Params::default().network;
        p.n_in = 3;
        p.hidden = vec![5, 4];
        p.n_out = 2;
        p.density = 0.6;
        p.skip = 0.5;
        let net = Network::generate(&p, 8);
        let runs = net.runs();
        let mut next_edge = 0;
        for run in &runs {
            assert_eq!(run.e0, next_edge, "runs are in edge order");
            for j in 0..run.len {
                let e = (run.e0 + j) as usize;
                assert_eq!((net.tail[e], net.head[e]), (run.tail, run.head0 + j));
            }
            next_edge += run.len;
        }
        assert_eq!(next_edge as usize, net.n_edges());
        p.density = 1.0;
        p.skip = 0.0;
        let full = Network::generate(&p, 8);
        assert_eq!(
            full.runs().len(),
            3 + 5 + 4,
            "one run per node with successors"
        );
    }

    #[test]
    fn the_parity_class_is_independent_and_as_large_as_its_parameters_promise() {
        let layered = |n_in: usize, hidden: &[usize], n_out: usize, skip: f64| {
            let mut p = Params::default();
            p.network.n_in = n_in;
            p.network.hidden = hidden.to_vec();
            p.network.n_out = n_out;
            p.network.skip = skip;
            p
        };
        let bulk = |p_bulk: f64| {
            let mut p = Params::default();
            p.network.topology = Topology::RandomBulk;
            p.network.n_bulk = 12;
            p.network.p_bulk = p_bulk;
            p
        };
        // (parameters, class size every network reaches, the class's layers)
        let cases = [
            (layered(8, &[16], 8, 0.0), 16, vec![1]),
            (layered(8, &[16], 8, 1.0), 16, vec![1]),
            (layered(2, &[4], 2, 0.0), 4, vec![1]),
            (layered(8, &[32, 32, 32], 8, 0.0), 64, vec![1, 3]),
            (layered(8, &[32, 32, 32], 8, 1.0), 64, vec![1, 3]),
            (layered(8, &[2, 4], 2, 0.0), 12, vec![0, 2]),
            (layered(8, &[2, 4], 2, 1.0), 12, vec![0, 2]),
            (layered(4, &[4, 4], 4, 0.0), 8, vec![1, 3]),
            (layered(2, &[8, 2], 4, 1.0), 12, vec![1, 3]),
            (bulk(0.3), 4, vec![0, 2]),
            (bulk(0.0), 12, vec![1]),
        ];
        for (params, size, layers) in cases {
            assert_eq!(params.parity_class_size(), size, "{:?}", params.network);
            for seed in 0..5 {
                let net = Network::generate(&params.network, seed);
                let class = net.parity_class();
                for e in 0..net.n_edges() {
                    assert!(!(class[net.tail[e] as usize] && class[net.head[e] as usize]));
                }
                let in_layers =
                    (0..net.n_nodes()).all(|i| class[i] == layers.contains(&net.layer[i]));
                assert!(in_layers, "{:?}", params.network);
                assert!(class.iter().filter(|&&c| c).count() >= size);
            }
        }
    }

    #[test]
    fn random_bulk_attaches_each_terminal_to_k_distinct_bulk_nodes() {
        let mut p = Params::default().network;
        p.topology = Topology::RandomBulk;
        p.n_in = 3;
        p.n_out = 2;
        p.n_bulk = 10;
        p.k_attach = 4;
        let net = Network::generate(&p, 99);
        for terminal in [0usize, 1, 2, 13, 14] {
            let mut nbrs: Vec<u32> = (0..net.n_edges())
                .filter_map(|e| {
                    if net.tail[e] as usize == terminal {
                        Some(net.head[e])
                    } else if net.head[e] as usize == terminal {
                        Some(net.tail[e])
                    } else {
                        None
                    }
                })
                .collect();
            assert_eq!(nbrs.len(), 4);
            nbrs.dedup();
            assert_eq!(nbrs.len(), 4);
            assert!(nbrs.iter().all(|&b| (3..13).contains(&b)));
        }
        for e in 0..net.n_edges() {
            if net.layer[net.tail[e] as usize] == 1 && net.layer[net.head[e] as usize] == 1 {
                assert!(net.tail[e] < net.head[e], "bulk edges point upwards");
            }
        }
    }

    #[test]
    fn density_thins_edges_at_its_rate() {
        let mut p = Params::default().network;
        p.n_in = 20;
        p.hidden = vec![50];
        p.n_out = 20;
        p.density = 0.25;
        let net = Network::generate(&p, 5);
        let frac = net.n_edges() as f64 / 2000.0;
        // binomial(2000, 0.25): standard deviation 0.0097
        assert!((frac - 0.25).abs() < 0.04, "kept fraction {frac}");
    }
}
