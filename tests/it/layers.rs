//! The one-way rule of `src/lib.rs`: each top-level module of the server may
//! import only from the layers below it, and only `cluster/` may know whether a
//! node is part of a cluster. Read from the source, so a wrong `use` fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module and the modules it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("model", &[]),
    ("metrics", &["model"]),
    ("store", &["model", "config"]),
    ("cluster", &["model", "config", "metrics"]),
    ("ops", &["store", "model", "config"]),
    ("game", &["cluster", "store", "model", "config", "metrics"]),
    (
        "gateway",
        &["game", "cluster", "store", "model", "config", "metrics"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::x` and `use crate::{x, …}` references in `text`, outside test modules.
fn references(text: &str) -> BTreeSet<String> {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(cut) => &text[..cut],
        None => text,
    };
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn server_modules_import_only_from_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen = BTreeSet::new();
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        let first = rel.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        seen.insert(module.clone());
        let Some(may_use) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "{module} (in {}) has no place in the layers",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in references(&text) {
            let known = allowed.contains_key(used.as_str());
            if known && used != module && !may_use.contains(&used.as_str()) {
                violations.push(format!("{} uses crate::{used}", rel.display()));
            }
        }
        if module != "cluster" && text.contains("cluster.is_some()") {
            violations.push(format!("{} asks whether a cluster exists", rel.display()));
        }
        if module != "cluster"
            && text
                .lines()
                .any(|l| l.contains("if let Some(") && l.contains(".cluster {"))
        {
            violations.push(format!("{} branches on the cluster", rel.display()));
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
    for (module, _) in ALLOWED {
        assert!(
            seen.contains(*module),
            "no module `{module}` under src/: update ALLOWED"
        );
    }
}

#[test]
fn the_layer_check_sees_a_violation() {
    let text = "use crate::gateway::Gateway;\nuse crate::{game, store::Store};\n#[cfg(test)]\nmod tests { use crate::ops; }";
    let found = references(text);
    assert_eq!(
        found,
        ["game", "gateway", "store"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
