"""`just bench-peers`: azure-identity's ManagedIdentityCredential measured the way the driver
(host-test/benches/peers/main.rs) measures azmi. One JSON line on stdout per run.

    python bench.py mi        IDENTITY_ENDPOINT/IDENTITY_HEADER set: first tokens, cached calls
    python bench.py no-mi     nothing configured: the no-managed-identity answer
    python bench.py one-shot  one token, then exit (the driver times the whole process)

Every request goes through `LoopbackOnly`: IMDS (169.254.169.254) is sent to
PEERS_IMDS_ADDRESS (a closed 127.0.0.1 port) and anything not on 127.0.0.0/8 is refused.
"""

import concurrent.futures
import json
import os
import sys
import time
import urllib.parse
from importlib.metadata import version

from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ChainedTokenCredential, ManagedIdentityCredential

IMDS = os.environ.get("PEERS_IMDS_ADDRESS")
ROUNDS = int(os.environ.get("PEERS_FIRST_ROUNDS", "20"))
CACHED_CALLS = int(os.environ.get("PEERS_CACHED_CALLS", "10000"))
CAP_S = int(os.environ.get("PEERS_NO_MI_CAP_MS", "20000")) / 1000
SCOPE = "https://vault.azure.net/.default"


class LoopbackOnly(RequestsTransport):
    """The SDK's default transport, IMDS rerouted to PEERS_IMDS_ADDRESS, loopback only."""

    def send(self, request, **kwargs):
        parts = urllib.parse.urlsplit(request.url)
        if parts.hostname == "169.254.169.254":
            if not IMDS:
                raise RuntimeError("PEERS_IMDS_ADDRESS is not set: refusing to contact IMDS")
            parts = parts._replace(netloc=IMDS)
            request.url = urllib.parse.urlunsplit(parts)
        if not (parts.hostname or "").startswith("127."):
            raise RuntimeError(f"refused: {parts.netloc} is not loopback")
        return super().send(request, **kwargs)


def credential():
    return ManagedIdentityCredential(transport=LoopbackOnly())


def mi():
    # Fresh credential each round, a scope no earlier round asked for; three warm-up rounds.
    first, seen = [], set()
    for round_ in range(ROUNDS + 3):
        start = time.perf_counter_ns()
        token = credential().get_token(f"https://bench-{round_}.example/.default")
        elapsed = time.perf_counter_ns() - start
        if token.token in seen:
            raise RuntimeError("a fresh credential answered from a cache")
        seen.add(token.token)
        if round_ >= 3:
            first.append(elapsed)
    cred = credential()
    cred.get_token(SCOPE)
    cached = []
    for _ in range(CACHED_CALLS):
        start = time.perf_counter_ns()
        cred.get_token(SCOPE)
        cached.append(time.perf_counter_ns() - start)
    return {"first_token_ns": first, "cached_ns": cached}


def timed_failure(run):
    """Runs `run` on a worker thread; gives up waiting after PEERS_NO_MI_CAP_MS."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    start = time.perf_counter_ns()
    future = pool.submit(run)
    try:
        future.result(timeout=CAP_S)
        error, capped = "unexpectedly got a token", False
    except concurrent.futures.TimeoutError:
        error, capped = "", True
    except Exception as e:  # the answer being measured
        error, capped = f"{type(e).__name__}: {e}".split("\n")[0], False
    elapsed = time.perf_counter_ns() - start
    pool.shutdown(wait=False)
    return elapsed, capped, error


def no_mi():
    # In a credential chain (as DefaultAzureCredential uses it: IMDS probed first), 5 fresh.
    probe, probe_error = [], ""
    for _ in range(5):
        elapsed, _, probe_error = timed_failure(
            lambda: ChainedTokenCredential(credential()).get_token(SCOPE)
        )
        probe.append(elapsed)
    # Alone (no probe, the SDK's IMDS retries), once, given up after PEERS_NO_MI_CAP_MS.
    alone, capped, error = timed_failure(lambda: credential().get_token(SCOPE))
    return {
        "no_mi_probe_ns": probe,
        "no_mi_probe_error": probe_error,
        "no_mi_alone_ns": alone,
        "no_mi_alone_capped": capped,
        "no_mi_alone_error": error,
    }


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    header = {
        "peer": "python",
        "sdk": f"azure-identity {version('azure-identity')} (msal {version('msal')}, azure-core {version('azure-core')})",
        "runtime": f"Python {sys.version.split()[0]}",
    }
    if mode == "mi":
        result = mi()
    elif mode == "no-mi":
        result = no_mi()
    elif mode == "one-shot":
        result = {"ok": bool(credential().get_token(SCOPE).token)}
    else:
        raise SystemExit(f"usage: python bench.py mi|no-mi|one-shot (got {mode!r})")
    print(json.dumps({**header, **result}), flush=True)
    os._exit(0)  # a capped no-MI attempt may still be retrying on its thread


if __name__ == "__main__":
    main()
