//! The layers of docs/architecture.md, checked against every `crate::…` and
//! `super::…` path in `src/`: a module may use its own layer and the layers
//! below, never one above; a command never uses another command; only the
//! entry and the commands see `cli`. Adding a module means giving it a layer here.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Top first. A unit is a top-level module, or `slurm::x` / `commands::x` (the
/// file `src/slurm/x.rs`); `commands` and `slurm` alone are their `mod.rs`.
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["lib", "main"]),
    ("commands", &["commands", "commands::*"]),
    ("cli", &["cli"]),
    (
        "core",
        &[
            "create",
            "restore",
            "restored",
            "export",
            "verify",
            "due",
            "health",
            "metrics",
            "quota",
            "retention",
            "mirror",
            "remote",
            "remote::*",
            "attempts",
            "snapshot",
            "snapshot_copy",
            "slurm",
            "slurm::*",
        ],
    ),
    (
        "foundation",
        &[
            "store",
            "archive",
            "diff",
            "sqlite_file",
            "lock",
            "slurm::job",
            "config",
            "signals",
            "progress",
            "logging",
            "output",
            "man_page",
            "summary_log",
        ],
    ),
    (
        "leaves",
        &[
            "error",
            "exit_code",
            "units",
            "limits",
            "options",
            "host",
            "spelling",
        ],
    ),
];

/// Command files every command may use: the shared context and what several
/// commands print the same way.
const SHARED_COMMANDS: &[&str] = &["commands", "commands::report"];

/// The one documented exception: `run` is pre-job, the work, then post-job, and
/// calls those two commands so that their lines are the commands' own.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("commands::run", "commands::pre_job"),
    ("commands::run", "commands::post_job"),
];

/// The layer of `unit`, by its index in `LAYERS` (0 = top); the most specific
/// entry wins (`slurm::job` over `slurm::*`).
fn layer(unit: &str) -> Option<usize> {
    let exact = LAYERS.iter().position(|(_, units)| units.contains(&unit));
    exact.or_else(|| {
        let (parent, _) = unit.split_once("::")?;
        let wildcard = format!("{parent}::*");
        LAYERS
            .iter()
            .position(|(_, units)| units.contains(&wildcard.as_str()))
    })
}

/// Why `from` may not use `to`, if it may not.
fn forbidden(from: &str, to: &str) -> Option<String> {
    if from == to || EXCEPTIONS.contains(&(from, to)) {
        return None;
    }
    let (Some(a), Some(b)) = (layer(from), layer(to)) else {
        return Some(format!(
            "{from} -> {to}: a module without a layer (add it to LAYERS)"
        ));
    };
    if b < a {
        return Some(format!(
            "{from} ({}) uses {to} ({}), a layer above it",
            LAYERS[a].0, LAYERS[b].0
        ));
    }
    let command = |u: &str| u.starts_with("commands::") && !SHARED_COMMANDS.contains(&u);
    if command(from) && command(to) {
        return Some(format!("command {from} uses another command, {to}"));
    }
    None
}

/// Every `crate::…` and `super::…` path in `text` (comments and the `tests`
/// module left out), as the units of the module at `module` (`["commands",
/// "run"]`) that they name.
fn used_units(text: &str, module: &[&str], submodules: &dyn Fn(&str) -> bool) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut units = BTreeSet::new();
    for (start, word) in [("crate::", None), ("super::", Some(()))] {
        let base: Vec<&str> = match word {
            None => Vec::new(),
            Some(()) => module[..module.len().saturating_sub(1)].to_vec(),
        };
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + start.len()..];
            // `dbbackup::crate::` cannot happen; `my_crate::` is not ours.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for path in use_tree(rest) {
                let mut full = base.clone();
                full.extend(path.iter().map(String::as_str));
                if let Some(unit) = unit_of(&full, submodules) {
                    units.insert(unit);
                }
            }
        }
    }
    units
}

/// The paths a use tree starting at `text` names, up to their second segment:
/// `{a, b::{c, d}}` → `a`, `b::c`, `b::d`; `a::b::C` → `a::b`.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut paths = Vec::new();
        let mut item_start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    paths.extend(use_tree(&inner[item_start..i]));
                    return paths;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    paths.extend(use_tree(&inner[item_start..i]));
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        return paths;
    }
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        return Vec::new();
    }
    let after = &text[ident.len()..];
    match after.strip_prefix("::") {
        Some(more) => use_tree(more)
            .into_iter()
            .map(|mut path| {
                path.insert(0, ident.clone());
                path.truncate(2);
                path
            })
            .collect(),
        None => vec![vec![ident]],
    }
}

/// The unit a path from the crate root names: `slurm::job::X` → `slurm::job`,
/// `commands::Ctx` → `commands`, `store::naming` → `store`; `self`/`super`
/// resolved by the caller. `None` for the crate root itself.
fn unit_of(path: &[&str], submodules: &dyn Fn(&str) -> bool) -> Option<String> {
    let first = *path.first()?;
    if first == "self" || first == "super" {
        return None;
    }
    match path.get(1) {
        Some(second) if submodules(&format!("{first}::{second}")) => {
            Some(format!("{first}::{second}"))
        }
        _ => Some(first.to_string()),
    }
}

/// Every `.rs` file under `src/` with its module path (`src/slurm/mod.rs` →
/// `["slurm"]`, `src/lib.rs` → `[]`, `src/main.rs` → `["main"]`).
fn source_files(src: &Path) -> Vec<(Vec<String>, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Vec<String> = relative
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                    module.pop();
                }
                files.push((module, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// The unit a file belongs to: `["slurm", "job"]` → `slurm::job`, `["store",
/// "naming"]` → `store`, `[]` → `lib`.
fn file_unit(module: &[String], submodules: &dyn Fn(&str) -> bool) -> String {
    match module {
        [] => "lib".into(),
        [first, second, ..] if submodules(&format!("{first}::{second}")) => {
            format!("{first}::{second}")
        }
        [first, ..] => first.clone(),
    }
}

/// `slurm::x` and `commands::x` are units of their own (files of their own).
fn is_submodule_of(src: &Path) -> impl Fn(&str) -> bool + '_ {
    move |unit: &str| {
        unit.split_once("::").is_some_and(|(parent, child)| {
            matches!(parent, "slurm" | "commands")
                && src.join(parent).join(format!("{child}.rs")).is_file()
        })
    }
}

#[test]
fn no_module_uses_a_layer_above_it_nor_a_command_another_command() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let submodules = is_submodule_of(&src);
    let mut broken = Vec::new();
    let mut seen = 0;
    for (module, text) in source_files(&src) {
        let from = file_unit(&module, &submodules);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for to in used_units(&text, &module, &submodules) {
            seen += 1;
            if let Some(why) = forbidden(&from, &to) {
                broken.push(why);
            }
        }
    }
    broken.sort();
    broken.dedup();
    assert!(
        seen > 200,
        "the scan found only {seen} uses: is it reading src/?"
    );
    assert!(
        broken.is_empty(),
        "layering broken (docs/architecture.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scan_sees_grouped_nested_and_relative_paths() {
    let submodules = |unit: &str| matches!(unit, "commands::pre_job" | "slurm::job");
    let units = used_units(
        "use super::{Ctx, pre_job};\n// use crate::cli;\nuse crate::{error::Result, slurm::{job, array::X}};\nfn f() { crate::store::naming::parse(); my_crate::x(); }\n#[cfg(test)]\nmod tests { use crate::create; }\n",
        &["commands", "run"],
        &submodules,
    );
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    assert_eq!(
        units,
        [
            "commands",
            "commands::pre_job",
            "error",
            "slurm",
            "slurm::job",
            "store"
        ]
    );
    assert!(forbidden("commands::run", "commands::pre_job").is_none());
    assert!(forbidden("commands::backup", "commands::pre_job").is_some());
    assert!(forbidden("store", "create").is_some());
    assert!(forbidden("create", "cli").is_some());
    assert!(forbidden("commands::backup", "commands::report").is_none());
    assert!(forbidden("slurm::prejob", "slurm::job").is_none());
    assert!(forbidden("slurm::job", "slurm::prejob").is_some());
    assert!(forbidden("store", "new_module").is_some());
}

/// Every unit's uses of other units.
fn module_graph(src: &Path) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let submodules = is_submodule_of(src);
    let mut graph: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (module, text) in source_files(src) {
        let from = file_unit(&module, &submodules);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for to in used_units(&text, &module, &submodules) {
            if from != to {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// The groups of modules that use each other, directly or through others
/// (strongly connected components of more than one module).
fn cycles(graph: &std::collections::BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(next) = stack.pop() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.extend(graph.get(&next).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut groups: Vec<Vec<String>> = Vec::new();
    for module in graph.keys() {
        if groups.iter().any(|g| g.contains(module)) {
            continue;
        }
        let group: Vec<String> = graph
            .keys()
            .filter(|other| *other == module || (reaches(module, other) && reaches(other, module)))
            .cloned()
            .collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

#[test]
fn no_two_modules_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = cycles(&module_graph(&src));
    assert!(
        found.is_empty(),
        "modules that use each other (docs/architecture.md): {found:?}"
    );
}

#[test]
fn cycles_are_found_through_other_modules_and_nowhere_else() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        graph
    };
    let found = cycles(&graph(&[
        ("store", "sqlite_file"),
        ("sqlite_file", "units"),
        ("units", "store"),
        ("create", "store"),
        ("lock", "store"),
    ]));
    assert_eq!(found, [["sqlite_file", "store", "units"]]);
    assert!(cycles(&graph(&[("create", "store"), ("store", "sqlite_file")])).is_empty());
}

/// The backup directory and the SQLite file facts are below everything that
/// reads SLURM: neither uses `slurm` at all (not even `slurm::job`, the
/// foundation unit that lives in the `slurm` directory), so no path of uses
/// leads from them back to themselves even when `slurm` counts as one module.
#[test]
fn the_store_is_in_no_cycle_even_counting_slurm_as_one_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let top = |unit: &str| unit.split("::").next().unwrap_or(unit).to_string();
    let mut tree = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for (from, uses) in module_graph(&src) {
        for to in uses.iter().filter(|to| top(to) != top(&from)) {
            tree.entry(top(&from)).or_default().insert(top(to));
        }
    }
    for group in cycles(&tree) {
        for module in ["store", "sqlite_file"] {
            assert!(
                !group.iter().any(|m| m == module),
                "{module} is in a cycle of modules: {group:?}"
            );
        }
    }
}
