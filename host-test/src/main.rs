//! The `azmi` binary: see `azmi --help` and the README.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

fn main() {
    std::process::exit(azmi_host_test::cli::main());
}
