// node --test test.mjs: index.mjs (azmi.wasm through jco + preview2-shim) against the real
// `azmi emulator` on a free 127.0.0.1 port. Nothing here reaches beyond 127.0.0.0/8: every
// child gets a clean environment whose only endpoint is the emulator.
//
// Needs `npm run transpile` and the emulator binary (`cargo build -p azmi-host-test --bin azmi`;
// AZMI_BIN overrides its path). `just node-jco` does all of it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { allowlist, environment, outgoingHandler, refused } from "./host.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const azmiBin = process.env.AZMI_BIN ?? fileURLToPath(new URL("../../target/debug/azmi", import.meta.url));
const SCOPE = "https://vault.azure.net/.default";

/** Starts `azmi emulator --port 0`; resolves to its HTTP base URL and a `stop()` → request count. */
async function startEmulator() {
  assert.ok(existsSync(azmiBin), `no emulator binary at ${azmiBin}: cargo build -p azmi-host-test --bin azmi`);
  const child = spawn(azmiBin, ["emulator", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+) /);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`emulator exited (${code}) before listening: ${err}`)));
  });
  return {
    url,
    async stop() {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
      const m = err.match(/stopped after (\d+) token requests/);
      assert.ok(m, `the emulator did not report its request count; stderr: ${err}`);
      return Number(m[1]);
    },
  };
}

/** Runs index.mjs with only PATH and the pod-identity variable (IMDS → the emulator). */
function runExample(imdsUrl, args) {
  assert.match(imdsUrl, /^http:\/\/127\.\d+\.\d+\.\d+:\d+$/, "the test talks to loopback only");
  const env = { PATH: process.env.PATH, AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsUrl };
  return new Promise((resolve) => {
    execFile(process.execPath, ["index.mjs", ...args], { cwd: here, env }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

const lines = (text) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

test("3 calls on one instance: an imds token, 1 upstream request", async () => {
  const emu = await startEmulator();
  let run;
  try {
    run = await runExample(emu.url, ["--scope", SCOPE, "--repeat", "3", "--timing"]);
  } finally {
    const requests = await emu.stop();
    assert.equal(requests, 1, "the emulator saw exactly one token request");
  }
  assert.equal(run.code, 0, `exit code; stderr: ${run.stderr}`);
  const tokens = lines(run.stdout);
  assert.equal(tokens.length, 3);
  for (const t of tokens) {
    assert.equal(t.source, "imds");
    assert.equal(t.token_type, "Bearer");
    assert.ok(t.expires_on > Date.now() / 1000, "expires in the future");
    assert.ok(t.refresh_on <= t.expires_on, "refresh_on before expires_on");
    // Second count: the emulator numbers the tokens it mints (`emu.<serial>.…`). Compare
    // without printing a token on failure.
    assert.ok(t.access_token.startsWith("emu.1."), "minted first by this emulator");
    assert.ok(t.access_token === tokens[0].access_token, "the same cached token");
  }
  const timing = lines(run.stderr);
  console.log(`first call ${timing[0].ms.toFixed(2)} ms, cached calls ${timing.slice(1).map((t) => t.ms.toFixed(3)).join(", ")} ms`);
});

test("cached-call latency over 1000 calls (1 upstream request)", async () => {
  const emu = await startEmulator();
  let run;
  try {
    run = await runExample(emu.url, ["--repeat", "1000", "--timing"]);
  } finally {
    assert.equal(await emu.stop(), 1, "one token request for 1000 calls");
  }
  assert.equal(run.code, 0, `exit code; stderr: ${run.stderr}`);
  assert.equal(lines(run.stdout).length, 1000);
  const ms = lines(run.stderr).map((t) => t.ms);
  const cached = ms.slice(1).sort((a, b) => a - b);
  const p50 = cached[Math.floor(cached.length / 2)];
  const p99 = cached[Math.floor(cached.length * 0.99)];
  const perSec = Math.round(1000 / (cached.reduce((a, b) => a + b, 0) / cached.length));
  console.log(`first call ${ms[0].toFixed(2)} ms; cached p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, ≈ ${perSec} calls/s`);
});

test("an empty client id is an invalid argument, nothing is sent", async () => {
  const emu = await startEmulator();
  let run;
  try {
    run = await runExample(emu.url, ["--client-id", ""]);
  } finally {
    assert.equal(await emu.stop(), 0, "no token request");
  }
  assert.equal(run.code, 4);
  const [err] = lines(run.stdout);
  assert.equal(err.error, "invalid_argument");
  assert.match(err.message, /client id is empty/);
  assert.doesNotMatch(run.stderr, /emu\./, "no token in the error output");
});

test("a user-assigned client id reaches the emulator", async () => {
  // The emulator answers per identity: its user-assigned id gets a token, an id it does not
  // know gets IMDS's 400 "identity not found". Were the id dropped on the way, both calls
  // would be system-assigned and both would get a token.
  const emu = await startEmulator();
  let known;
  let unknown;
  try {
    known = await runExample(emu.url, ["--client-id", "22222222-2222-2222-2222-222222222222"]);
    unknown = await runExample(emu.url, ["--client-id", "99999999-9999-9999-9999-999999999999"]);
  } finally {
    assert.equal(await emu.stop(), 2, "one token request per run");
  }
  assert.equal(known.code, 0, `exit code; stderr: ${known.stderr}`);
  assert.equal(lines(known.stdout)[0].source, "imds");
  assert.equal(unknown.code, 3, `exit code; stdout: ${unknown.stdout}`);
  const [err] = lines(unknown.stdout);
  assert.equal(err.error, "authentication_failed");
  assert.equal(err.status, 400);
  assert.equal(err.source, "imds");
});

test("host policy: the allowlist names only the variables' endpoints and IMDS", () => {
  assert.deepEqual(
    [...allowlist({ AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:8080/" })],
    ["http://169.254.169.254:80", "http://127.0.0.1:8080"],
  );
  assert.deepEqual(
    [...allowlist({ IDENTITY_ENDPOINT: "https://Example.test/msi/token", AZURE_FEDERATED_TOKEN_FILE: "/f" })],
    ["http://169.254.169.254:80", "https://example.test:443", "https://login.microsoftonline.com:443"],
  );
  // A destination the variables do not name is refused before the shim sees it.
  const request = { scheme: () => ({ tag: "HTTP" }), authority: () => "10.0.0.1:80" };
  assert.throws(() => outgoingHandler.handle(request, undefined), (e) => e.tag === "HTTP-request-denied");
  assert.deepEqual(refused, ["http://10.0.0.1:80"]);
  // Only managed-identity variables reach the component.
  for (const [name] of environment.getEnvironment()) {
    assert.match(name, /^(IDENTITY_|MSI_|AZURE_|IMDS_ENDPOINT$|DEFAULT_IDENTITY_CLIENT_ID$)/);
  }
});

/**
 * A local server that answers every request with headers at once and then one body byte per
 * `everyMs` (a response no between-bytes timer ever ends). Resolves to its URL and `close()`.
 */
async function startTrickleServer(everyMs) {
  const { createServer } = await import("node:http");
  const timers = new Set();
  const server = createServer((req, res) => {
    const body = Buffer.from(JSON.stringify({ access_token: "x".repeat(150), expires_in: 86399 }));
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    let i = 0;
    const timer = setInterval(() => {
      if (i >= body.length || res.destroyed) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(body.subarray(i, i + 1));
      i += 1;
    }, everyMs);
    timers.add(timer);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      server.close();
    },
  };
}

test("--timeout 2000 bounds a trickled response as a whole", async () => {
  const server = await startTrickleServer(200);
  let run;
  const start = Date.now();
  try {
    run = await runExample(server.url, ["--timeout", "2000"]);
  } finally {
    server.close();
  }
  const took = Date.now() - start;
  assert.equal(run.code, 2, `exit code; stdout: ${run.stdout} stderr: ${run.stderr}`);
  assert.equal(lines(run.stdout)[0].error, "credential_unavailable");
  // 2 s, plus starting Node and instantiating the component; the trickle alone is 40 s.
  assert.ok(took < 4_000, `took ${took} ms`);
});

test("--timeout takes a positive whole number of milliseconds", async () => {
  for (const bad of ["0", "-1", "2s", "1.5"]) {
    const run = await runExample("http://127.0.0.1:9", [`--timeout=${bad}`]);
    assert.equal(run.code, 1, bad);
    assert.match(run.stderr, /--timeout/);
  }
});

test("host policy: the component sees the environment of the moment the host loaded", () => {
  const before = environment.getEnvironment();
  process.env.AZURE_TENANT_ID = "0c0c0c0c-1111-4222-8333-444444444444";
  process.env.IDENTITY_ENDPOINT = "http://127.0.0.1:9/msi/token";
  try {
    assert.deepEqual(environment.getEnvironment(), before);
    assert.ok(!allowlist().has("http://127.0.0.1:9"), "a later variable names no endpoint");
  } finally {
    delete process.env.AZURE_TENANT_ID;
    delete process.env.IDENTITY_ENDPOINT;
  }
});
