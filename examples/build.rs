//! Embeds what the pipeline needs from the `rustface` registry package,
//! so the binaries carry it and nothing is read or fetched at run time:
//! SeetaFace's trained frontal-face model and the photograph (the 1927
//! Solvay conference) the camera pans over.
//!
//! Cargo gives build scripts no path to a dependency's sources, so the
//! package is looked up where cargo unpacks registry crates
//! (`$CARGO_HOME/registry/src/*/rustface-<version>`), or in a `vendor/`
//! directory beside the workspace.

use std::path::{Path, PathBuf};

const PACKAGE: &str = "rustface-0.1.7";
const FILES: [(&str, &str); 2] = [("model/seeta_fd_frontal_v1.0.bin", "seeta_fd_frontal_v1.0.bin"), ("test.png", "solvay-1927.png")];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let package = find_package().unwrap_or_else(|| {
        panic!(
            "examples/build.rs: cannot find the unpacked `{PACKAGE}` crate (its model and photograph are embedded); \
             run `cargo fetch` first, or set CARGO_HOME to where cargo keeps its registry"
        )
    });
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (from, to) in FILES {
        let source = package.join(from);
        std::fs::copy(&source, out.join(to)).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
        println!("cargo:rerun-if-changed={}", source.display());
    }
}

fn find_package() -> Option<PathBuf> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let vendored = manifest.join("../vendor").join("rustface");
    if vendored.join(FILES[0].0).is_file() {
        return Some(vendored);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .flatten()
        .map(|registry| registry.path().join(PACKAGE))
        .find(|p| p.join(FILES[0].0).is_file())
}
