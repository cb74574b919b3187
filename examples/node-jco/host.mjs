// The host policy for azmi.wasm in Node.js: what the component may see and reach.
//
// `jco transpile --map` points the component's `wasi:cli/environment`,
// `wasi:http/outgoing-handler` and `wasi:filesystem/preopens` imports at this module
// (see `transpile` in package.json); everything else comes from
// @bytecodealliance/preview2-shim unchanged. This is the job `send_request` does in the
// wasmtime plugin and the allowlist does in the `azmi` CLI: the shim itself passes the whole
// process environment, lets the guest reach any host, and (before 0.26) preopened `/`.

import { env } from "node:process";
import { outgoingHandler as shimOutgoingHandler } from "@bytecodealliance/preview2-shim/http";

/** The variables a managed-identity source is detected by; nothing else reaches the guest. */
const VISIBLE = /^(IDENTITY_|MSI_|AZURE_)|^(IMDS_ENDPOINT|DEFAULT_IDENTITY_CLIENT_ID)$/;

/**
 * Read once, when this module loads: the component's token cache is keyed without the
 * variables' values, so an instance must see one environment for its life (azmi's
 * `credential` module docs, "A changed environment"). To use another identity, start a new
 * process (or load the component again).
 */
const SNAPSHOT = Object.freeze(Object.entries(env).filter(([name]) => VISIBLE.test(name)));
const visibleEnv = () => SNAPSHOT.map(([name, value]) => [name, value]);

export const environment = {
  getEnvironment: visibleEnv,
  getArguments: () => [],
  initialCwd: () => undefined,
};

/** `host:port`, lower case, the port filled in from the scheme. */
function withPort(authority, scheme) {
  const a = authority.toLowerCase();
  return /:\d+$/.test(a) && !a.endsWith("]") ? a : `${a}:${scheme === "https" ? 443 : 80}`;
}

/**
 * `scheme://host:port` of every endpoint the managed-identity variables name, plus IMDS:
 * the same list as the `azmi` CLI (host-test/src/egress.rs `Allowlist::from_env`).
 */
export function allowlist(vars = Object.fromEntries(visibleEnv())) {
  const list = new Set(["http://169.254.169.254:80"]);
  const allow = (value) => {
    if (!value) return;
    try {
      const url = new URL(value);
      const scheme = url.protocol.slice(0, -1);
      if (scheme === "http" || scheme === "https") list.add(`${scheme}://${withPort(url.host, scheme)}`);
    } catch {
      // A variable that is not a URL names no endpoint; the component reports it.
    }
  };
  for (const name of [
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_AUTHORITY_HOST",
  ]) {
    allow(vars[name]);
  }
  if (vars.AZURE_FEDERATED_TOKEN_FILE && !vars.AZURE_AUTHORITY_HOST) {
    allow("https://login.microsoftonline.com");
  }
  return list;
}

/** Destinations refused so far (`scheme://authority`), for tests and diagnostics. */
export const refused = [];

export const outgoingHandler = {
  handle(request, options) {
    const scheme = request.scheme();
    const name = scheme?.tag === "HTTPS" ? "https" : scheme?.tag === "HTTP" ? "http" : "other";
    const authority = request.authority() ?? "";
    const key = `${name}://${withPort(authority, name)}`;
    if (!allowlist().has(key)) {
      refused.push(key);
      // wasi:http error-code `HTTP-request-denied`: the component reports
      // "the host refused to connect" naming the source.
      throw { tag: "HTTP-request-denied" };
    }
    return shimOutgoingHandler.handle(request, options);
  },
};

/**
 * No preopened directories: Azure Arc (key files under /var/opt/azcmagent/tokens) and AKS
 * workload identity (the federated token file) report `credential-unavailable` with the
 * reason. Map directories with `createFilesystem` from
 * @bytecodealliance/preview2-shim/filesystem if you need them (it cannot make them read-only).
 */
export const preopens = {
  getDirectories: () => [],
};
