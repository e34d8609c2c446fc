// Migrations and static files are embedded into the binary at compile time; rebuild when they
// change, not only when Rust sources do.
//
// The console's files (static/console/, every file under it) are listed here into
// `$OUT_DIR/console_assets.rs`, one `include_bytes!` each, so a file added to the folder is served
// without anyone editing a table; `tests/it/console.rs` checks every file on disk is served.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=static");
    println!("cargo:rerun-if-changed=docs/openapi.json");
    if let Err(err) = write_console_table() {
        println!("cargo:warning=could not list static/console: {err}");
        std::process::exit(1);
    }
}

fn write_console_table() -> std::io::Result<()> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("static").join("console");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .map_err(std::io::Error::other)?
            .to_string_lossy()
            .replace('\\', "/");
        println!("cargo:rerun-if-changed={}", file.display());
        let _ = writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?}) as &[u8]),",
            file.display().to_string()
        );
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    std::fs::write(out.join("console_assets.rs"), table)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
