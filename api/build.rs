//! Generates the config protocol's Rust code from `proto/` without a system
//! `protoc`: protox parses the files, tonic-prost-build writes the messages and
//! the gRPC stubs, pbjson-build writes serde impls (proto3 JSON mapping) used
//! by static config files and `/config_dump`.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &["osm/v1/config.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let encoded = descriptors.encode_to_vec();
    fs::write(out_dir.join("descriptors.bin"), &encoded)?;

    // BTreeMap for proto maps: deterministic order in dumps and golden files.
    // The stubs use our codec: tonic's, with smaller per-stream buffers.
    tonic_prost_build::configure()
        .btree_map(".")
        .codec_path("crate::codec::LeanCodec")
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .build(&[".osm.v1"])?;
    Ok(())
}
