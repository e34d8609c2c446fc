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
    pack_relative_relocations();
    if let Err(err) = write_console_table() {
        println!("cargo:warning=could not list static/console: {err}");
        std::process::exit(1);
    }
}

/// The binary is position-independent, so the dynamic loader fixes up every pointer in its
/// read-only data at each start: ~20,000 relocations of 24 bytes each, half a megabyte of the
/// file read at every start for nothing after that. Packed (`DT_RELR`, a bitmap of the
/// pointers to fix) they take ~20 KB, and idle RSS is ~0.5 MB less (docs/performance-log.md).
/// Only when the C library the linker links against can read them (glibc 2.36 and later; the
/// binary then needs such a glibc to run): `cc`, rustc's linker here, names that library.
fn pack_relative_relocations() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" && libc_reads_packed_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the `libc.so.6` that `cc` links against defines the version `GLIBC_ABI_DT_RELR`.
fn libc_reads_packed_relocations() -> bool {
    let Ok(output) = std::process::Command::new("cc")
        .arg("-print-file-name=libc.so.6")
        .output()
    else {
        return false;
    };
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let Ok(library) = std::fs::read(&path) else {
        return false;
    };
    let marker = b"GLIBC_ABI_DT_RELR";
    library.windows(marker.len()).any(|window| window == marker)
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
