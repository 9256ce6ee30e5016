//! The layers of docs/ARCHITECTURE.md hold in the code: no module of `shared/src` names a
//! module of a higher layer, every module has a layer, and every function's `main` is one call
//! into `stormwater::lambda`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Module → layer (1 is the top), from the list between the `layers` markers of
/// docs/ARCHITECTURE.md: one numbered line per layer, its modules in backticks.
fn layers(doc: &str) -> BTreeMap<String, usize> {
    let start = doc
        .find("<!-- layers -->")
        .expect("docs/ARCHITECTURE.md has a <!-- layers --> list");
    let end = doc[start..]
        .find("<!-- /layers -->")
        .expect("the layer list ends with <!-- /layers -->");
    let mut out = BTreeMap::new();
    for line in doc[start..start + end].lines().skip(1) {
        let Some((n, rest)) = line.trim().split_once(". ") else {
            continue;
        };
        let n: usize = n.parse().expect("a layer line starts with its number");
        // The modules are the backticked names before the dash that explains the layer.
        let names = rest.split(" — ").next().unwrap_or_default();
        for m in names.split('`').skip(1).step_by(2) {
            assert!(out.insert(m.to_owned(), n).is_none(), "{m} is listed twice");
        }
    }
    assert!(!out.is_empty(), "no layers read");
    out
}

/// The top-level module a file of `shared/src` belongs to (`sync/import.rs` → `sync`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without comments and without its `#[cfg(test)]` module (tests may use
/// anything).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
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

/// The top-level modules `code` names through `crate::` (paths and `use crate::{a, b::c}`).
fn named_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let close = group.find('}').unwrap_or(group.len());
            for item in group[..close].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// What `shared/src` breaks of `layers`: each upward use, and each module without a layer.
fn violations(src: &Path, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        if module == "lib" {
            continue;
        }
        let Some(&own) = layers.get(&module) else {
            out.push(format!("{module} has no layer in docs/ARCHITECTURE.md"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let mut named = named_modules(&code(&text));
        named.sort();
        named.dedup();
        for m in named {
            if m == module {
                continue;
            }
            match layers.get(&m) {
                Some(&l) if l < own => out.push(format!(
                    "{}: {module} (layer {own}) uses crate::{m} (layer {l}, above it)",
                    file.strip_prefix(src.parent().unwrap()).unwrap().display()
                )),
                _ => {}
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let layers = layers(&doc);
    let found = violations(&root().join("shared/src"), &layers);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_finds_an_upward_import() {
    // A copy of shared/src in which the loader names the sync stage again.
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let layers = layers(&doc);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("import")).unwrap();
    std::fs::write(
        src.join("import/load.rs"),
        "use crate::sync::SyncError; // the error of a higher layer\nuse crate::{domain, repo::sync};\n",
    )
    .unwrap();
    std::fs::write(src.join("brand_new.rs"), "pub fn f() {}\n").unwrap();
    assert_eq!(
        violations(&src, &layers),
        [
            "brand_new has no layer in docs/ARCHITECTURE.md".to_owned(),
            format!(
                "src/import/load.rs: import (layer {}) uses crate::sync (layer {}, above it)",
                layers["import"], layers["sync"]
            ),
        ]
    );
}

#[test]
fn every_module_of_the_crate_has_a_layer() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let layers = layers(&doc);
    let lib = std::fs::read_to_string(root().join("shared/src/lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    for m in &modules {
        assert!(layers.contains_key(*m), "{m} has no layer");
    }
    for m in layers.keys() {
        assert!(
            modules.contains(&m.as_str()),
            "{m} is listed but is no module"
        );
    }
}

#[test]
fn every_function_main_is_one_call_into_the_lambda_module() {
    let mut checked = 0;
    for e in std::fs::read_dir(root().join("functions")).unwrap() {
        let dir = e.unwrap().path();
        let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
        let code = code(&main);
        let body: Vec<&str> = code
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let calls: Vec<&&str> = body
            .iter()
            .filter(|l| l.starts_with("stormwater::"))
            .collect();
        assert_eq!(calls.len(), 1, "{}: {body:?}", dir.display());
        assert!(
            calls[0].starts_with("stormwater::lambda::serve_"),
            "{}: {}",
            dir.display(),
            calls[0]
        );
        assert!(
            main.starts_with("//! "),
            "{}: the doc comment says what the function does",
            dir.display()
        );
        checked += 1;
    }
    // Every function package of the template (and none other).
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let binaries = template
        .lines()
        .filter(|l| l.trim_start().starts_with("Binary:"))
        .count();
    assert_eq!(checked, binaries);
    assert!(checked >= 29, "{checked} functions");
}
