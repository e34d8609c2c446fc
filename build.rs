// Migrations and static files are embedded into the binary at compile time; rebuild when they
// change, not only when Rust sources do.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=static");
    println!("cargo:rerun-if-changed=docs/openapi.json");
}
