//! The `azmi` binary: see `azmi --help` and the README.

fn main() {
    std::process::exit(azmi_host_test::cli::main());
}
