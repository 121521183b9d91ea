//! The module layering of `crates/broker`, enforced (Kafka's `import-control` in spirit: think
//! hard before changing `LAYERS`).
//!
//! Every top-level module of the crate appears once in [`LAYERS`], from the edge of the process
//! (the server) inwards to the leaves. A module may use (`crate::x`, outside comments and
//! `#[cfg(test)]` code) only modules that come **after** it. So the graph has no cycle, and a
//! reader can learn the crate bottom-up. Modules on the same line are independent of each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, outermost first.
const LAYERS: &[&[&str]] = &[
    &["server"],
    &["connection"],
    &["handlers"],
    &["broker"],
    &["services"],
    &["txn_service"],
    &["markers"],
    &["group_service"],
    &["producer_ids", "broker_lifecycle"],
    &["coordinator_runtime", "log_manager"],
    &["controller"],
    &["metadata_follower"],
    &["quorum_controller"],
    &["replica_manager"],
    &["metadata_cache", "metadata_log"],
    &["topic_config"],
    &["configs", "healthcheck", "tls"],
    &["config"],
    &["env_config"],
    &[
        "metrics",
        "errors",
        "sendfile",
        "cleaner_codec",
        "clock",
        "limits",
        "cli",
        "rpc_client",
        "authorizer",
        "quotas",
    ],
];

/// The crate's code outside comments and test modules.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::<name>` references in `code`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn collect(dir: &Path, top: Option<&str>, graph: &mut BTreeMap<String, BTreeSet<String>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_string();
        if path.is_dir() {
            collect(&path, Some(top.unwrap_or(&name)), graph);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        if top.is_none() && (name == "lib" || name == "main") {
            continue;
        }
        let module = top.unwrap_or(&name).to_string();
        let text = std::fs::read_to_string(&path).expect("read source");
        let refs = crate_refs(&code_of(&text));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
}

#[test]
fn module_layering() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    collect(&src, None, &mut graph);
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i)))
        .collect();
    let mut problems = Vec::new();
    for (module, uses) in &graph {
        let Some(&r) = rank.get(module.as_str()) else {
            problems.push(format!("module `{module}` is not in LAYERS"));
            continue;
        };
        for used in uses {
            match rank.get(used.as_str()) {
                None => problems.push(format!("`{module}` uses `{used}`, which is not in LAYERS")),
                Some(&u) if u <= r => problems.push(format!(
                    "`{module}` (layer {r}) uses `{used}` (layer {u}): a module may only use later layers"
                )),
                Some(_) => {}
            }
        }
    }
    for name in rank.keys() {
        if !graph.contains_key(*name) {
            problems.push(format!("LAYERS names `{name}`, which is not a module"));
        }
    }
    assert!(
        problems.is_empty(),
        "module layering violations:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn layering_checker_sees_references() {
    let code = code_of(
        "use crate::a::B;\n// crate::comment\nfn f() { crate::b::c(); }\n#[cfg(test)]\nmod t { use crate::z; }",
    );
    let refs: Vec<String> = crate_refs(&code).into_iter().collect();
    assert_eq!(refs, vec!["a".to_string(), "b".to_string()]);
}
