//! The protocol is written once per language: the mirror table of
//! `docs/numerics.md` pairs each pointwise rule's Rust function with its
//! WGSL function, and the shaders' comments cite the Rust code they follow.
//! These tests fail when a rename leaves either pointing at nothing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The one file under `src/` named `name` (`circuit.rs`).
fn rust_file(name: &str) -> PathBuf {
    let mut all = Vec::new();
    rust_files(&root().join("src"), &mut all);
    let found: Vec<_> = all
        .into_iter()
        .filter(|p| p.file_name().unwrap() == name)
        .collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0].clone()
}

/// Whether `source` defines `item`: `fn name`, `const NAME`,
/// `struct|enum|trait Name`, or for `Type::name` both the type and
/// `fn name`.
fn defines(source: &str, item: &str) -> bool {
    let has_fn = |name: &str| {
        source.contains(&format!("fn {name}(")) || source.contains(&format!("fn {name}<"))
    };
    let has_type = |name: &str| {
        ["struct", "enum", "trait", "impl"]
            .iter()
            .any(|k| source.contains(&format!("{k} {name}")))
            || source.contains(&format!("impl<F: Real> {name}<"))
            || source.contains(&format!("impl<F> {name}<"))
    };
    let is_const = !item.contains("::")
        && item
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    match item.split_once("::") {
        Some((ty, name)) => has_type(ty) && has_fn(name),
        None if is_const => source.contains(&format!("const {item}:")),
        None if item.starts_with(char::is_uppercase) => has_type(item),
        None => has_fn(item),
    }
}

/// The rows of the mirror table: (rule, Rust file, Rust item, WGSL file,
/// WGSL function).
fn mirror_table() -> Vec<(String, String, String, String, String)> {
    let doc = fs::read_to_string(root().join("docs/numerics.md")).unwrap();
    let start = doc
        .find("## The mirror table")
        .expect("docs/numerics.md has a mirror table");
    let code = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| rule"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (rust, wgsl) = (code(cells[2]), code(cells[3]));
            assert_eq!(rust.len(), 2, "{line}: `file` `item` for Rust");
            assert_eq!(wgsl.len(), 2, "{line}: `file` `function` for WGSL");
            (
                cells[1].to_string(),
                rust[0].clone(),
                rust[1].clone(),
                wgsl[0].clone(),
                wgsl[1].clone(),
            )
        })
        .collect()
}

#[test]
fn every_function_of_the_mirror_table_exists() {
    let rows = mirror_table();
    assert!(rows.len() >= 8, "the table lists the pointwise rules");
    for (rule, rust_path, rust_item, wgsl_path, wgsl_fn) in rows {
        let rust = fs::read_to_string(root().join(&rust_path))
            .unwrap_or_else(|e| panic!("{rule}: {rust_path}: {e}"));
        assert!(
            defines(&rust, &rust_item),
            "{rule}: {rust_path} has no {rust_item}"
        );
        let wgsl = fs::read_to_string(root().join(&wgsl_path))
            .unwrap_or_else(|e| panic!("{rule}: {wgsl_path}: {e}"));
        assert!(
            wgsl.contains(&format!("fn {wgsl_fn}(")),
            "{rule}: {wgsl_path} has no fn {wgsl_fn}"
        );
    }
}

#[test]
fn every_rule_of_the_mirror_table_is_called_by_the_kernel() {
    let kernels: Vec<String> = ["shaders/train_group.wgsl"]
        .iter()
        .map(|p| fs::read_to_string(root().join(p)).unwrap())
        .collect();
    let common = fs::read_to_string(root().join("shaders/common.wgsl")).unwrap();
    for (rule, _, _, wgsl_path, wgsl_fn) in mirror_table() {
        if wgsl_path != "shaders/common.wgsl" {
            continue;
        }
        // Called from a kernel, or from common.wgsl itself (a rule that
        // another shared rule uses).
        let call = format!("{wgsl_fn}(");
        let definition = format!("fn {wgsl_fn}(");
        let calls_in_common = common.matches(&call).count() - common.matches(&definition).count();
        for (kernel, source) in ["train_group.wgsl"].iter().zip(&kernels) {
            assert!(
                source.contains(&call) || calls_in_common > 0,
                "{rule}: {kernel} does not call {wgsl_fn}"
            );
        }
    }
}

/// A citation in a shader comment: `circuit.rs node_current`,
/// `training.rs Trainer::prune`. Prose after a file name (`circuit.rs
/// does`) is told apart by shape: a cited item has `::`, an underscore, a
/// capital, or a colon right after it.
fn citations(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(comment) = line.split("//").nth(1) else {
            continue;
        };
        let words: Vec<&str> = comment.split_whitespace().collect();
        for pair in words.windows(2) {
            let (file, item) = (pair[0], pair[1]);
            let file = file.trim_start_matches(['(', '`']);
            if !file.ends_with(".rs") || file.contains('/') {
                continue;
            }
            let colon = item.ends_with(':');
            let item = item.trim_end_matches([':', ',', '.', ')', '`', ';']);
            let item = item.trim_end_matches("()");
            let code_like = colon
                || item.contains("::")
                || item.contains('_')
                || item.starts_with(char::is_uppercase);
            if code_like
                && item
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                out.insert((file.to_string(), item.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_rust_item_a_shader_cites_exists() {
    let mut stale = Vec::new();
    let mut checked = 0;
    for shader in ["common.wgsl", "train_group.wgsl", "rules.wgsl"] {
        let text = fs::read_to_string(root().join("shaders").join(shader)).unwrap();
        for (file, item) in citations(&text) {
            let source = fs::read_to_string(rust_file(&file)).unwrap();
            checked += 1;
            if !defines(&source, &item) {
                stale.push(format!("{shader} cites {file} {item}"));
            }
        }
    }
    assert!(checked > 10, "only {checked} citations found");
    assert!(stale.is_empty(), "stale citations:\n{}", stale.join("\n"));
}
