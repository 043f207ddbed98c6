//! Sweep files: what `Spec::parse` accepts, what it rejects and how it says
//! so, the grid it builds, and the plan helpers.

use memsweep::params::{ModelKind, Params, TaskKind, Topology};
use memsweep::sweep::fields::FIELDS;
use memsweep::sweep::{describe, instance_seed, set_field, validate, work_bound, Spec, SpecError};

fn parse(text: &str) -> Spec {
    Spec::parse(text, "sweeps/test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn reject(text: &str) -> SpecError {
    match Spec::parse(text, "sweeps/test.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the file is rejected at `field` with a reason mentioning `mention`.
fn assert_rejected(text: &str, field: &str, mention: &str) {
    let e = reject(text);
    assert_eq!(e.file, "sweeps/test.toml");
    assert_eq!(e.field, field, "wrong field in `{e}`");
    assert!(
        e.reason.contains(mention),
        "reason of `{e}` does not mention `{mention}`"
    );
}

#[test]
fn toml_syntax_error_is_rejected_with_line_and_column() {
    let e = reject("seed = 1\n[network]\nn_in = = 3\n");
    assert_eq!(e.field, "toml");
    assert!(e.reason.starts_with("line 3:"), "{e}");
    assert!(!e.reason.contains('\n'), "{e}");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let e = reject("[device]\nron = 1.0\nron = 2.0\n");
    assert_eq!(e.field, "toml");
    assert!(e.reason.contains("line 3:"), "{e}");
}

#[test]
fn spec_error_displays_as_file_field_reason() {
    let e = reject("[network]\nn_in = 0\n");
    assert_eq!(
        e.to_string(),
        "sweeps/test.toml: network.n_in: must be >= 1, got 0"
    );
}

#[test]
fn unknown_top_level_key_is_rejected() {
    assert_rejected("sed = 4\n", "sed", "sed");
}

#[test]
fn unknown_section_is_rejected() {
    assert_rejected("[netwrok]\nn_in = 2\n", "netwrok", "netwrok");
}

#[test]
fn section_that_is_not_a_table_is_rejected() {
    assert_rejected("network = 3\n", "network", "3");
}

#[test]
fn unknown_field_in_section_is_rejected() {
    assert_rejected("[device]\nrom = 1000.0\n", "device.rom", "device.rom");
}

#[test]
fn misspelled_axis_key_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"network.n_inn\" = [2, 4]\n",
        "axes[0].\"network.n_inn\"",
        "network.n_inn",
    );
}

#[test]
fn axis_with_unknown_section_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"netwrk.n_in\" = [2, 4]\n",
        "axes[0].\"netwrk.n_in\"",
        "netwrk.n_in",
    );
}

#[test]
fn axis_value_that_is_not_a_list_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"network.n_in\" = 4\n",
        "axes[0].\"network.n_in\"",
        "4",
    );
}

#[test]
fn axes_that_are_not_tables_are_rejected() {
    assert_rejected("axes = [1, 2]\n", "axes[0]", "1");
    assert_rejected("[axes]\n\"network.n_in\" = [2]\n", "axes", "network.n_in");
}

#[test]
fn axis_lists_of_unequal_length_are_rejected() {
    assert_rejected(
        "[[axes]]\n\"network.n_in\" = [2, 4, 8]\n\"network.n_out\" = [2, 4]\n",
        "axes[0].\"network.n_out\"",
        "has 2 values",
    );
}

#[test]
fn empty_axis_list_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"device.sigma_r0\" = []\n",
        "axes[0].\"device.sigma_r0\"",
        "empty list",
    );
}

#[test]
fn empty_axis_table_is_rejected() {
    assert_rejected("[[axes]]\n", "axes[0]", "empty axis");
}

#[test]
fn same_key_in_two_axes_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"device.sigma_r0\" = [0.0]\n[[axes]]\n\"device.sigma_r0\" = [0.3]\n",
        "axes[1].\"device.sigma_r0\"",
        "axes[0]",
    );
}

#[test]
fn name_seed_and_replicas_are_not_axis_able() {
    for key in ["name", "seed", "replicas"] {
        assert_rejected(
            &format!("[[axes]]\n{key} = [1, 2]\n"),
            &format!("axes[0].\"{key}\""),
            key,
        );
    }
}

#[test]
fn string_where_number_expected_is_rejected() {
    assert_rejected("[device]\nron = \"1k\"\n", "device.ron", "\"1k\"");
}

#[test]
fn float_where_integer_expected_is_rejected() {
    assert_rejected("[network]\nn_in = 2.5\n", "network.n_in", "2.5");
}

#[test]
fn non_list_hidden_is_rejected() {
    assert_rejected("[network]\nhidden = 4\n", "network.hidden", "4");
}

#[test]
fn hidden_with_a_non_integer_is_rejected() {
    assert_rejected("[network]\nhidden = [4, 1.5]\n", "network.hidden", "1.5");
}

#[test]
fn string_where_bool_expected_is_rejected() {
    assert_rejected(
        "[network]\nrandom_polarity = \"yes\"\n",
        "network.random_polarity",
        "\"yes\"",
    );
}

#[test]
fn measures_are_on_unless_switched_off() {
    let base = parse("seed = 1\n").base.measures;
    assert!(base.controllability && base.cycle_space);
    let off = parse("[measures]\ncontrollability = false\n").base.measures;
    assert!(!off.controllability && off.cycle_space);
}

#[test]
fn measure_switch_that_is_not_a_bool_is_rejected() {
    assert_rejected(
        "[measures]\ncontrollability = \"no\"\n",
        "measures.controllability",
        "\"no\"",
    );
    assert_rejected(
        "[measures]\ncycle_space = 0\n",
        "measures.cycle_space",
        "true or false",
    );
    assert_rejected(
        "[measures]\nrank = true\n",
        "measures.rank",
        "controllability",
    );
}

#[test]
fn measure_switches_cannot_vary_along_an_axis() {
    assert_rejected(
        "[[axes]]\n\"measures.controllability\" = [true, false]\n",
        "axes[0].\"measures.controllability\"",
        "cannot vary",
    );
}

#[test]
fn unknown_topology_is_rejected() {
    assert_rejected(
        "[network]\ntopology = \"ring\"\n",
        "network.topology",
        "\"ring\"",
    );
}

#[test]
fn unknown_model_and_task_are_rejected() {
    assert_rejected(
        "[training]\nmodel = \"spice\"\n",
        "training.model",
        "\"spice\"",
    );
    assert_rejected("[training]\ntask = \"xor\"\n", "training.task", "\"xor\"");
}

#[test]
fn wrong_type_in_an_axis_value_is_rejected() {
    assert_rejected(
        "[[axes]]\n\"network.hidden\" = [[4], 8]\n",
        "axes[0].\"network.hidden\"",
        "value 1",
    );
}

#[test]
fn n_in_zero_is_rejected() {
    assert_rejected("[network]\nn_in = 0\n", "network.n_in", "0");
}

#[test]
fn n_out_below_two_is_rejected() {
    assert_rejected("[network]\nn_out = 1\n", "network.n_out", "got 1");
}

#[test]
fn zero_hidden_width_is_rejected() {
    assert_rejected("[network]\nhidden = [4, 0]\n", "network.hidden", "[4, 0]");
}

#[test]
fn empty_hidden_means_no_hidden_layer() {
    let spec = parse("[network]\nhidden = []\n");
    assert!(spec.base.network.hidden.is_empty());
}

#[test]
fn n_bulk_zero_is_rejected() {
    assert_rejected(
        "[network]\nn_bulk = 0\nk_attach = 0\n",
        "network.n_bulk",
        "got 0",
    );
}

#[test]
fn k_attach_outside_one_to_n_bulk_is_rejected() {
    assert_rejected(
        "[network]\nn_bulk = 4\nk_attach = 5\n",
        "network.k_attach",
        "got 5",
    );
    assert_rejected("[network]\nk_attach = 0\n", "network.k_attach", "got 0");
}

#[test]
fn negative_size_is_rejected() {
    assert_rejected("[network]\nn_out = -2\n", "network.n_out", "-2");
}

#[test]
fn probability_outside_unit_interval_is_rejected() {
    for (section, field) in [
        ("network", "density"),
        ("network", "skip"),
        ("network", "p_bulk"),
        ("pruning", "p_prune"),
        ("pruning", "f_prune"),
    ] {
        assert_rejected(
            &format!("[{section}]\n{field} = 1.5\n"),
            &format!("{section}.{field}"),
            "1.5",
        );
        assert_rejected(
            &format!("[{section}]\n{field} = -0.1\n"),
            &format!("{section}.{field}"),
            "-0.1",
        );
    }
}

#[test]
fn non_positive_ron_is_rejected() {
    assert_rejected("[device]\nron = 0\n", "device.ron", "0");
}

#[test]
fn roff_not_above_ron_is_rejected() {
    assert_rejected("[device]\nron = 1000\nroff = 1000\n", "device.roff", "1000");
    assert_rejected("[device]\nroff = 500.0\n", "device.roff", "500");
}

#[test]
fn non_positive_fields_that_must_be_positive_are_rejected() {
    for (section, field) in [
        ("device", "vt"),
        ("circuit", "gmin"),
        ("training", "v_read"),
        ("training", "v_punish"),
        ("training", "v_norm"),
        ("training", "tau"),
        ("training", "delta"),
    ] {
        for bad in ["0.0", "-2.5"] {
            assert_rejected(
                &format!("[{section}]\n{field} = {bad}\n"),
                &format!("{section}.{field}"),
                bad,
            );
        }
    }
}

#[test]
fn negative_fields_that_must_be_non_negative_are_rejected() {
    for (section, field) in [
        ("device", "alpha"),
        ("device", "beta"),
        ("device", "sigma_r0"),
        ("device", "sigma_d2d"),
        ("device", "sigma_c2c"),
        ("training", "tag_factor"),
    ] {
        assert_rejected(
            &format!("[{section}]\n{field} = -0.5\n"),
            &format!("{section}.{field}"),
            "-0.5",
        );
    }
}

#[test]
fn zero_is_allowed_where_non_negative_is_asked() {
    let spec = parse("[device]\nalpha = 0\nsigma_r0 = 0.0\n[training]\ntag_factor = 0\n");
    assert_eq!(spec.base.device.sigma_r0, 0.0);
}

#[test]
fn n_sub_zero_is_rejected() {
    assert_rejected("[training]\nn_sub = 0\n", "training.n_sub", "got 0");
}

#[test]
fn max_eras_zero_is_rejected() {
    assert_rejected("[training]\nmax_eras = 0\n", "training.max_eras", "got 0");
}

#[test]
fn replicas_zero_is_rejected() {
    assert_rejected("replicas = 0\n", "replicas", "got 0");
}

#[test]
fn negative_seed_is_rejected() {
    assert_rejected("seed = -1\n", "seed", "-1");
}

#[test]
fn n_patterns_zero_is_rejected() {
    assert_rejected(
        "[training]\nn_patterns = 0\n",
        "training.n_patterns",
        "got 0",
    );
}

#[test]
fn one_hot_with_more_patterns_than_inputs_is_rejected() {
    assert_rejected(
        "[network]\nn_in = 2\n[training]\nn_patterns = 3\n",
        "training.n_patterns",
        "got 3",
    );
}

#[test]
fn random_binary_may_have_more_patterns_than_inputs() {
    let spec = parse("[network]\nn_in = 2\n[training]\ntask = \"random_binary\"\nn_patterns = 3\n");
    assert_eq!(spec.base.n_patterns(), 3);
}

#[test]
fn nan_and_inf_are_rejected_naming_the_field() {
    assert_rejected("[device]\nbeta = nan\n", "device.beta", "NaN");
    assert_rejected("[device]\nron = inf\n", "device.ron", "inf");
    assert_rejected("[circuit]\ngmin = -inf\n", "circuit.gmin", "-inf");
    assert_rejected(
        "[[axes]]\n\"device.sigma_c2c\" = [0.0, nan]\n",
        "axes[0].\"device.sigma_c2c\"",
        "NaN",
    );
}

#[test]
fn unusable_names_are_rejected() {
    assert_rejected("name = \"\"\n", "name", "\"\"");
    assert_rejected("name = \"a/b\"\n", "name", "a/b");
    assert_rejected("name = \"..\"\n", "name", "..");
    assert_rejected("name = 3\n", "name", "3");
}

#[test]
fn invalid_axis_value_names_the_axis_field_and_the_point() {
    let e = reject("[[axes]]\n\"network.n_in\" = [2, 4]\n[[axes]]\n\"network.n_out\" = [2, 1]\n");
    assert_eq!(e.field, "axes[1].\"network.n_out\"");
    assert!(e.reason.contains("got 1"), "{e}");
    assert!(
        e.reason
            .contains("grid point 1 (network.n_in = 2, network.n_out = 1)"),
        "{e}"
    );
}

#[test]
fn cross_field_failure_at_a_grid_point_names_the_point() {
    let e = reject("[training]\nn_patterns = 4\n[[axes]]\n\"network.n_in\" = [4, 2]\n");
    assert_eq!(e.field, "training.n_patterns");
    assert!(e.reason.contains("grid point 1 (network.n_in = 2)"), "{e}");
}

#[test]
fn axis_may_fix_an_invalid_base_value() {
    let spec = parse("[network]\nn_out = 1\n[[axes]]\n\"network.n_out\" = [2, 3]\n");
    assert_eq!(spec.points().len(), 2);
}

#[test]
fn defaults_equal_params_default() {
    let spec = parse("");
    assert_eq!(spec.base, Params::default());
    assert_eq!(spec.name, "test");
    assert_eq!(spec.seed, 0);
    assert_eq!(spec.replicas, 100);
    assert!(spec.axes.is_empty());
    assert_eq!(spec.source, "name = \"test\"\nseed = 0\nreplicas = 100\n");
    let points = spec.points();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].index, 0);
    assert_eq!(points[0].params, Params::default());
    assert!(points[0].varied.is_empty());
    assert_eq!(spec.n_instances(), 100);
}

#[test]
fn default_params_are_valid() {
    assert_eq!(validate(&Params::default()), Ok(()));
}

#[test]
fn full_valid_file_parses_to_the_expected_params() {
    let text = r#"
name = "full"
seed = 42
replicas = 7

[network]
topology = "random_bulk"
n_in = 3
hidden = [5, 6]
n_out = 4
density = 0.5
skip = 0.25
random_polarity = true
n_bulk = 12
p_bulk = 0.2
k_attach = 3

[device]
ron = 2e3
roff = 3e4
vt = 0.8
alpha = 1e3
beta = 2e9
sigma_r0 = 0.1
sigma_d2d = 0.05
sigma_c2c = 0.02

[circuit]
gmin = 1e-10

[training]
model = "circuit"
task = "random_binary"
n_patterns = 5
max_eras = 30
v_read = 0.4
v_punish = 2.5
v_norm = 1.5
tau = 2e-6
n_sub = 8
delta = 0.5
tagging = true
tag_factor = 0.1

[pruning]
p_prune = 0.0
f_prune = 0.9
"#;
    let spec = parse(text);
    assert_eq!(spec.name, "full");
    assert_eq!(spec.seed, 42);
    assert_eq!(spec.replicas, 7);
    assert!(!spec.source.contains('#'));
    assert_eq!(
        Spec::parse(&spec.source, "again.toml").unwrap().source,
        spec.source
    );

    let mut want = Params::default();
    let n = &mut want.network;
    n.topology = Topology::RandomBulk;
    n.n_in = 3;
    n.hidden = vec![5, 6];
    n.n_out = 4;
    n.density = 0.5;
    n.skip = 0.25;
    n.random_polarity = true;
    n.n_bulk = 12;
    n.p_bulk = 0.2;
    n.k_attach = 3;
    let d = &mut want.device;
    d.ron = 2e3;
    d.roff = 3e4;
    d.vt = 0.8;
    d.alpha = 1e3;
    d.beta = 2e9;
    d.sigma_r0 = 0.1;
    d.sigma_d2d = 0.05;
    d.sigma_c2c = 0.02;
    want.circuit.gmin = 1e-10;
    let t = &mut want.training;
    t.model = ModelKind::Circuit;
    t.task = TaskKind::RandomBinary;
    t.n_patterns = Some(5);
    t.max_eras = 30;
    t.v_read = 0.4;
    t.v_punish = 2.5;
    t.v_norm = 1.5;
    t.tau = 2e-6;
    t.n_sub = 8;
    t.delta = 0.5;
    t.tagging = true;
    t.tag_factor = 0.1;
    want.pruning.p_prune = 0.0;
    want.pruning.f_prune = 0.9;
    assert_eq!(spec.base, want);
}

#[test]
fn integer_is_accepted_where_a_float_is_expected() {
    let spec = parse("[device]\nron = 1000\nroff = 20000\n[network]\ndensity = 1\n");
    assert_eq!(spec.base.device.ron, 1000.0);
    assert_eq!(spec.base.device.roff, 20000.0);
    assert_eq!(spec.base.network.density, 1.0);
}

#[test]
fn axes_give_the_product_grid_first_axis_slowest() {
    let spec = parse(
        r#"
replicas = 3
[[axes]]
"network.n_in" = [2, 4, 8]
"network.n_out" = [2, 4, 8]
"network.hidden" = [[4], [8], [16]]
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#,
    );
    assert_eq!(spec.axes.len(), 2);
    let points = spec.points();
    assert_eq!(points.len(), 6);
    assert_eq!(spec.n_instances(), 18);

    let expected = [
        (2, vec![4], 0.0, "[4]", "0.0"),
        (2, vec![4], 0.3, "[4]", "0.3"),
        (4, vec![8], 0.0, "[8]", "0.0"),
        (4, vec![8], 0.3, "[8]", "0.3"),
        (8, vec![16], 0.0, "[16]", "0.0"),
        (8, vec![16], 0.3, "[16]", "0.3"),
    ];
    for (i, (point, (n, hidden, sigma, hidden_text, sigma_text))) in
        points.iter().zip(expected).enumerate()
    {
        assert_eq!(point.index, i);
        assert_eq!(point.params.network.n_in, n);
        assert_eq!(point.params.network.n_out, n);
        assert_eq!(point.params.network.hidden, hidden);
        assert_eq!(point.params.device.sigma_r0, sigma);
        // Keys within one [[axes]] keep their order in the file.
        let varied: Vec<(String, String)> = [
            ("network.n_in", n.to_string()),
            ("network.n_out", n.to_string()),
            ("network.hidden", hidden_text.to_string()),
            ("device.sigma_r0", sigma_text.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(point.varied, varied);
    }
}

#[test]
fn bare_dotted_axis_keys_are_accepted() {
    let spec = parse(
        "[[axes]]\nnetwork.n_in = [2, 3]\ntraining.task = [\"one_hot\", \"random_binary\"]\n",
    );
    let points = spec.points();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1].params.training.task, TaskKind::RandomBinary);
    assert_eq!(
        points[1].varied,
        vec![
            ("network.n_in".to_string(), "3".to_string()),
            ("training.task".to_string(), "random_binary".to_string()),
        ]
    );
}

#[test]
fn n_patterns_may_vary_along_an_axis() {
    let spec = parse("[network]\nn_in = 4\n[[axes]]\n\"training.n_patterns\" = [1, 2, 4]\n");
    let p: Vec<usize> = spec
        .points()
        .iter()
        .map(|x| x.params.n_patterns())
        .collect();
    assert_eq!(p, vec![1, 2, 4]);
}

#[test]
fn every_listed_field_is_known_to_set_field() {
    let not_a_field_value = toml::Value::Table(toml::Table::new());
    for f in FIELDS {
        let reason = set_field(&mut Params::default(), f.key, &not_a_field_value).unwrap_err();
        assert!(!reason.contains("unknown field"), "{}: {reason}", f.key);
    }
    assert!(set_field(
        &mut Params::default(),
        "network.n_inn",
        &toml::Value::Integer(2)
    )
    .unwrap_err()
    .contains("unknown field"));
}

/// The field table's stated defaults are the defaults: setting each field
/// to the default its table entry shows changes nothing (defaults given in
/// prose, `n_in` or `none`, are the absence of a value).
#[test]
fn every_field_default_in_the_table_is_the_default() {
    let mut checked = 0;
    for f in FIELDS {
        let Ok(doc) = format!("x = {}", f.default).parse::<toml::Table>() else {
            continue;
        };
        let mut p = Params::default();
        set_field(&mut p, f.key, &doc["x"]).unwrap();
        assert_eq!(
            p,
            Params::default(),
            "{}: the table says {}",
            f.key,
            f.default
        );
        checked += 1;
    }
    assert!(
        checked + 3 >= FIELDS.len(),
        "only {checked} defaults are values"
    );
}

/// Every field passes its own check at its default, and each check names
/// its own field: a default point is valid, and a field set out of range
/// is rejected under its own name.
#[test]
fn the_default_point_is_valid_and_checks_name_their_field() {
    assert_eq!(validate(&Params::default()), Ok(()));
    let mut p = Params::default();
    set_field(&mut p, "device.p_window", &toml::Value::Float(-1.0)).unwrap();
    assert_eq!(validate(&p).unwrap_err().0, "device.p_window");
}

/// The README's field reference is the table `memsweep fields` prints.
#[test]
fn the_readme_field_reference_is_the_field_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = "<!-- fields: generated by `memsweep fields` -->\n";
    let from = readme.find(start).expect("README marks its field table") + start.len();
    let to = from
        + readme[from..]
            .find("<!-- end fields -->")
            .expect("and its end");
    assert_eq!(
        &readme[from..to],
        memsweep::sweep::fields::markdown_table(),
        "README.md's field table is stale: replace it with the output of `memsweep fields`"
    );
}

/// Every parameter column the table defines is in the results, in the
/// order report reads them.
#[test]
fn every_field_column_is_a_report_parameter() {
    let columns = memsweep::sweep::fields::parameter_columns();
    for f in FIELDS {
        if let Some(c) = &f.column {
            assert!(columns.contains(&c.name), "{}", c.name);
        }
    }
    assert!(columns.contains(&"depth") && columns.contains(&"graph_hash"));
}

#[test]
fn from_file_labels_errors_with_the_path_and_names_by_stem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("capacity.toml");
    std::fs::write(&good, "seed = 3\n").unwrap();
    let spec = Spec::from_file(&good).unwrap();
    assert_eq!(spec.name, "capacity");
    assert_eq!(spec.seed, 3);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[network]\nn_in = 0\n").unwrap();
    let e = Spec::from_file(&bad).unwrap_err();
    assert_eq!(e.file, bad.display().to_string());

    let missing = dir.path().join("missing.toml");
    let e = Spec::from_file(&missing).unwrap_err();
    assert_eq!(e.field, "file");
}

#[test]
fn instance_seed_differs_across_points_and_replicas_and_is_stable() {
    // Checked against an independent Python splitmix64.
    assert_eq!(instance_seed(42, 0, 0), 0x6310_bf04_d820_7f46);
    let mut seeds = std::collections::HashSet::new();
    for point in 0..50 {
        for replica in 0..50 {
            assert!(seeds.insert(instance_seed(42, point, replica)));
        }
    }
    assert_ne!(instance_seed(42, 1, 2), instance_seed(42, 2, 1));
    assert_ne!(instance_seed(42, 1, 2), instance_seed(43, 1, 2));
}

#[test]
fn work_bound_follows_the_formula_and_skips_abstract_points() {
    let p = Params::default();
    // 2-4-2 layered: 16 edges; P = n_in = 2; 20 eras; 10 substeps.
    let w = work_bound(&p, 5);
    assert_eq!(w.memristor_updates, (5 * 20 * 2 * 2 * 10 * 16) as f64);
    assert_eq!(w.nodal_solves, (5 * 20 * 2 * (1 + 2 * 10)) as f64);

    let mut abstract_params = p.clone();
    abstract_params.training.model = ModelKind::Abstract;
    assert_eq!(work_bound(&abstract_params, 5).memristor_updates, 0.0);

    // A random network counts the edges it has but for six standard
    // deviations, not every pair of its bulk nodes.
    let mut bulk = p.clone();
    bulk.network.topology = Topology::RandomBulk;
    bulk.network.n_bulk = 1024;
    bulk.network.p_bulk = 0.0098;
    bulk.network.k_attach = 4;
    let per_update = (5 * 20 * 2 * 2 * 10) as f64;
    let edges = work_bound(&bulk, 5).memristor_updates / per_update;
    assert!((5_000.0..6_000.0).contains(&edges), "{edges} edges");
}

#[test]
fn describe_lists_points_instances_and_work() {
    let spec = parse(
        "name = \"demo\"\nseed = 9\nreplicas = 1000\n[[axes]]\n\"network.n_in\" = [2, 64]\n\"network.n_out\" = [2, 64]\n\"network.hidden\" = [[4], [256]]\n",
    );
    let text = describe(&spec);
    assert!(text.contains("sweep demo"), "{text}");
    assert!(text.contains("seed 9"), "{text}");
    assert!(text.contains("2 grid points"), "{text}");
    assert!(text.contains("2000 instances"), "{text}");
    assert!(text.contains("network.hidden"), "{text}");
    assert!(text.contains("[256]"), "{text}");
    // 1000 * 20 * 64 * 2 * 10 * 32768 edges dominates: about 8.4e11.
    assert!(text.contains("8.4e11 memristor updates"), "{text}");
}

#[test]
fn the_abstract_model_is_accepted_with_its_fields() {
    let spec = parse(
        "[training]\nmodel = \"abstract\"\ndelta = 0.5\ntagging = true\ntag_factor = 0.1\n[[axes]]\n\"training.model\" = [\"circuit\", \"abstract\"]\n",
    );
    let models: Vec<ModelKind> = spec
        .points()
        .iter()
        .map(|p| p.params.training.model)
        .collect();
    assert_eq!(models, [ModelKind::Circuit, ModelKind::Abstract]);
    let t = &spec.base.training;
    assert_eq!((t.delta, t.tagging, t.tag_factor), (0.5, true, 0.1));
}

#[test]
fn the_abstract_model_needs_one_hot_patterns() {
    assert_rejected(
        "[training]\nmodel = \"abstract\"\ntask = \"random_binary\"\n",
        "training.task",
        "single active input",
    );
}

#[test]
fn the_recorded_text_is_the_sweep_without_comments_and_parses_back_to_it() {
    let text =
        "# why\nseed = 3 # inline\n[network]\nhidden = [3]\n[[axes]]\nnetwork.n_in = [2, 3]\n";
    let spec = parse(text);
    assert_eq!(
        spec.source,
        "name = \"test\"\nseed = 3\nreplicas = 100\n\n[network]\nhidden = [3]\n\n[[axes]]\n\"network.n_in\" = [2, 3]\n"
    );
    let again = Spec::parse(&spec.source, "elsewhere.toml").unwrap();
    assert!(again.same_rows(&spec));
    assert_eq!(
        again.name, "test",
        "the name is kept, not the new file's stem"
    );
    assert_eq!(again.source, spec.source);
}

#[test]
fn a_grid_or_instance_count_over_its_limit_is_refused_from_the_axis_lengths() {
    let values = vec!["0.1"; 1000].join(", ");
    let text = format!(
        "[[axes]]\n\"device.sigma_r0\" = [{values}]\n[[axes]]\n\"device.sigma_d2d\" = [{values}]\n"
    );
    assert_rejected(
        &text,
        "axes",
        "1000 x 1000 = 1000000 points; the limit is 100000",
    );
    assert_rejected(
        "replicas = 9223372036854775807\n[[axes]]\n\"device.sigma_r0\" = [0.0, 0.3]\n",
        "replicas",
        "the limit is 1000000000",
    );
    assert_eq!(parse("replicas = 1000000000").n_instances(), 1_000_000_000);
}

#[test]
fn an_instance_too_large_for_memory_names_the_field_that_asks_for_most() {
    for (text, field, mention) in [
        (
            "[training]\nmax_eras = 10000000",
            "training.max_eras",
            "10000000 eras of 2 patterns",
        ),
        (
            "[training]\ntask = \"random_binary\"\nn_patterns = 100000000",
            "training.n_patterns",
            "100000000 patterns",
        ),
        (
            "[network]\nn_in = 20000",
            "network.n_in",
            "20000 (20006 nodes",
        ),
        ("[network]\nhidden = [50000]", "network.hidden", "[50000]"),
        (
            "[network]\ntopology = \"random_bulk\"\nn_bulk = 5000",
            "network.n_bulk",
            "5000 (5004 nodes",
        ),
    ] {
        assert_rejected(text, field, mention);
        assert_rejected(text, field, "per instance");
        assert_rejected(text, field, "the limit is 128.0 MiB");
    }
    // Large networks that fit are accepted: a wide layered one, and a
    // sparse random one of 10,000 nodes, which the iterative solve and the
    // sparse controllability keep to memory that grows with its edges.
    parse("[network]\nn_in = 64\nhidden = [1024]\nn_out = 64\n[training]\nmax_eras = 1000");
    parse("[network]\ntopology = \"random_bulk\"\nn_in = 8\nn_out = 8\nn_bulk = 10000\np_bulk = 0.001\nk_attach = 4");
}

#[test]
fn a_memory_failure_at_one_grid_point_names_its_axis_and_point() {
    let e = reject("[[axes]]\n\"training.max_eras\" = [10, 100000000]\n");
    assert_eq!(e.field, "axes[0].\"training.max_eras\"");
    assert!(e.reason.contains("grid point 1"), "{e}");
}
