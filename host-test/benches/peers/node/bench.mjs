// `just bench-peers`: @azure/identity's ManagedIdentityCredential measured the way the driver
// (host-test/benches/peers/main.rs) measures azmi. One JSON line on stdout per run.
//
//   node bench.mjs mi        IDENTITY_ENDPOINT/IDENTITY_HEADER set: first tokens, cached calls
//   node bench.mjs no-mi     nothing configured: the no-managed-identity answer
//   node bench.mjs one-shot  one token, then exit (the driver times the whole process)
//
// Every request goes through `loopbackOnly`: IMDS (169.254.169.254) is sent to
// PEERS_IMDS_ADDRESS (a closed 127.0.0.1 port) and anything not on 127.0.0.0/8 is refused.
import { ManagedIdentityCredential } from "@azure/identity";
import { createDefaultHttpClient } from "@azure/core-rest-pipeline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const imds = process.env.PEERS_IMDS_ADDRESS;
const rounds = Number(process.env.PEERS_FIRST_ROUNDS ?? 20);
const cachedCalls = Number(process.env.PEERS_CACHED_CALLS ?? 10000);
const capMs = Number(process.env.PEERS_NO_MI_CAP_MS ?? 20000);
const SCOPE = "https://vault.azure.net/.default";

function loopbackOnly() {
  const inner = createDefaultHttpClient();
  return {
    async sendRequest(request) {
      const url = new URL(request.url);
      if (url.hostname === "169.254.169.254") {
        if (!imds) throw new Error("PEERS_IMDS_ADDRESS is not set: refusing to contact IMDS");
        url.host = imds;
        request.url = url.toString();
      }
      if (!url.hostname.startsWith("127.")) throw new Error(`refused: ${url.host} is not loopback`);
      return inner.sendRequest(request);
    },
  };
}

const credential = (extra = {}) => new ManagedIdentityCredential({ httpClient: loopbackOnly(), ...extra });
const now = () => process.hrtime.bigint();
const ns = (start) => Number(process.hrtime.bigint() - start);

async function mi() {
  // Fresh credential each round, a scope no earlier round asked for (msal-node's cache is
  // shared by every ManagedIdentityApplication in the process). Three warm-up rounds first.
  const first = [];
  const seen = new Set();
  for (let round = 0; round < rounds + 3; round++) {
    const start = now();
    const token = await credential().getToken(`https://bench-${round}.example/.default`);
    const elapsed = ns(start);
    if (seen.has(token.token)) throw new Error("a fresh credential answered from a cache");
    seen.add(token.token);
    if (round >= 3) first.push(elapsed);
  }
  const cred = credential();
  await cred.getToken(SCOPE);
  const cached = [];
  for (let i = 0; i < cachedCalls; i++) {
    const start = now();
    await cred.getToken(SCOPE);
    cached.push(ns(start));
  }
  return { first_token_ns: first, cached_ns: cached };
}

async function timedFailure(run) {
  const start = now();
  let timer;
  const cap = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ capped: true }), capMs);
  });
  const outcome = await Promise.race([
    run().then(() => ({ error: "unexpectedly got a token" }), (e) => ({ error: `${e.name}: ${e.message}` })),
    cap,
  ]);
  clearTimeout(timer);
  return { ns: ns(start), capped: Boolean(outcome.capped), error: (outcome.error ?? "").split("\n")[0] };
}

async function noMi() {
  // As DefaultAzureCredential uses it (probe IMDS first, 1 attempt), five fresh credentials.
  const probe = [];
  let probeError = "";
  for (let i = 0; i < 5; i++) {
    const r = await timedFailure(() => credential({ sendProbeRequest: true }).getToken(SCOPE));
    probe.push(r.ns);
    probeError = r.error;
  }
  // Alone (no probe, the SDK's IMDS retries), once, given up after PEERS_NO_MI_CAP_MS.
  const alone = await timedFailure(() => credential().getToken(SCOPE));
  return {
    no_mi_probe_ns: probe,
    no_mi_probe_error: probeError,
    no_mi_alone_ns: alone.ns,
    no_mi_alone_capped: alone.capped,
    no_mi_alone_error: alone.error,
  };
}

const mode = process.argv[2];
const version = (name) => require(`${name}/package.json`).version;
const header = {
  peer: "node",
  sdk: `@azure/identity ${version("@azure/identity")} (msal-node ${version("@azure/msal-node")})`,
  runtime: `Node.js ${process.version}`,
};
let result;
if (mode === "mi") result = await mi();
else if (mode === "no-mi") result = await noMi();
else if (mode === "one-shot") result = { ok: Boolean((await credential().getToken(SCOPE)).token) };
else throw new Error(`usage: node bench.mjs mi|no-mi|one-shot (got ${mode})`);
console.log(JSON.stringify({ ...header, ...result }));
process.exit(0);
