//! Compiles the `.proto` contracts with a vendored `protoc`, so the build needs no system package.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let protos = [
        "kitsuki/catalog/v1/catalog.proto",
        "kitsuki/patron/v1/patron.proto",
        "kitsuki/circulation/v1/circulation.proto",
        "kitsuki/notification/v1/notification.proto",
        "kitsuki/events/v1/events.proto",
        "kitsuki/platform/v1/testclock.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    // Default stubs answer `Unimplemented` for methods a service does not serve yet, so the
    // contracts can be written ahead of their implementations.
    tonic_prost_build::configure()
        .generate_default_stubs(true)
        .compile_with_config(config, &protos, &["."])?;
    Ok(())
}
