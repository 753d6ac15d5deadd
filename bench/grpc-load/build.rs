//! Compiles /work/main/proto (../../proto) exactly as crates/rpc/build.rs does: protox,
//! no system protoc. Only the client is generated.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let files = ["admin.proto", "files.proto", "jobs.proto", "kinds.proto"]
        .map(|f| proto_root.join("forklift/v1").join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&proto_root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
