// Get a managed-identity token from Node.js through azmi.wasm, transpiled by jco.
//
//   node index.mjs [--scope URL] [--client-id ID | --object-id ID | --resource-id ID]
//                  [--repeat N] [--timeout MS] [--timing]
//
// `--timeout MS` gives up after MS milliseconds, retries and every wait on the network
// included (the component's `timeout-ms`; default 120000).
//
// Prints one JSON line per call on stdout, like `azmi token`; `--timing` adds one
// `{"call":i,"ms":…}` line per call on stderr. Exit codes as the CLI: 0 success,
// 2 credential unavailable, 3 authentication failed, 4 invalid argument, 1 anything else.

import { parseArgs } from "node:util";
import process, { argv, hrtime, stderr, stdout } from "node:process";
// The module instantiates azmi.wasm once, on import; that instance holds the token cache,
// so every call in this process after the first is served from memory.
import { credential } from "./generated/azmi.js";

/** The WIT `source` enum as the CLI spells it (`app-service` → `app_service`). */
const sourceName = (source) => source.replaceAll("-", "_");

/**
 * `getToken` returns the `access-token` record or throws jco's `ComponentError` whose
 * `payload` is the WIT `error` variant. Returns `{ok}` or `{err}`; never the token in `err`.
 */
function getToken(scope, identity, timeoutMs) {
  try {
    if (timeoutMs === undefined) return { ok: credential.getToken(scope, identity) };
    const request = {
      scope,
      identity,
      forceRefresh: false,
      claims: undefined,
      clientCapabilities: [],
      timeoutMs,
      probe: false,
    };
    return { ok: credential.getTokenWith(request) };
  } catch (e) {
    if (e && Object.hasOwn(e, "payload")) return { err: e.payload };
    throw e; // a trap or a bug in the bindings, not a WIT error
  }
}

/** The CLI's success line. */
function tokenLine(token) {
  const line = {
    access_token: token.token,
    expires_on: Number(token.expiresOn),
    refresh_on: token.refreshOn === undefined ? null : Number(token.refreshOn),
    token_type: token.tokenType,
    source: sourceName(token.source),
  };
  if (line.refresh_on === null) delete line.refresh_on;
  return line;
}

/** The CLI's failure line and exit code. The WIT error never carries a token. */
function errorLine(err) {
  if (err.tag === "invalid-argument") {
    return [{ error: "invalid_argument", message: err.val }, 4];
  }
  const info = err.val;
  const line = {
    error: err.tag === "credential-unavailable" ? "credential_unavailable" : "authentication_failed",
    message: info.message,
  };
  if (info.source !== undefined) line.source = sourceName(info.source);
  if (info.status !== undefined) line.status = info.status;
  if (info.code !== undefined) line.code = info.code;
  if (info.correlationId !== undefined) line.correlation_id = info.correlationId;
  return [line, err.tag === "credential-unavailable" ? 2 : 3];
}

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv.slice(2),
      options: {
        scope: { type: "string", default: "https://vault.azure.net/.default" },
        "client-id": { type: "string" },
        "object-id": { type: "string" },
        "resource-id": { type: "string" },
        repeat: { type: "string", default: "1" },
        timeout: { type: "string" },
        timing: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    stderr.write(`usage: ${e.message}\n`);
    return 1;
  }
  const selectors = ["client-id", "object-id", "resource-id"].filter((k) => values[k] !== undefined);
  const repeat = Number(values.repeat);
  if (selectors.length > 1 || !Number.isInteger(repeat) || repeat < 1) {
    stderr.write("usage: at most one of --client-id/--object-id/--resource-id; --repeat N >= 1\n");
    return 1;
  }
  let timeoutMs;
  if (values.timeout !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(values.timeout)) {
      stderr.write("usage: --timeout MS takes a positive whole number of milliseconds\n");
      return 1;
    }
    timeoutMs = BigInt(values.timeout);
  }
  const identity = selectors.length
    ? { tag: selectors[0], val: values[selectors[0]] }
    : { tag: "system-assigned" };

  for (let call = 1; call <= repeat; call++) {
    const start = hrtime.bigint();
    const result = getToken(values.scope, identity, timeoutMs);
    const ms = Number(hrtime.bigint() - start) / 1e6;
    if (values.timing) stderr.write(`${JSON.stringify({ call, ms })}\n`);
    if (result.err) {
      const [line, code] = errorLine(result.err);
      stdout.write(`${JSON.stringify(line)}\n`);
      stderr.write(`azmi: ${line.message}\n`);
      return code;
    }
    stdout.write(`${JSON.stringify(tokenLine(result.ok))}\n`);
  }
  return 0;
}

process.exitCode = main();
