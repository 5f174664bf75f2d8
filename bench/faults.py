"""A long llm map-reduce through a fault-injecting proxy answering a share of calls with 429.

    .venv/bin/python bench/faults.py                      # 200 chunks, 20 % answered 429
    .venv/bin/python bench/faults.py --chunks 40 --share 0.3 --base-url http://127.0.0.1:8080/v1

The real model server (tests/llm_server.py: llama-server + SmolLM2-135M, built on first
use) sits behind tests/faultproxy.py, which answers a seeded-random share of requests
with HTTP 429 and `Retry-After`, and records every request and the most in flight at
once. The run is the CLI's `summarize --strategy map_reduce` with the map cache off, so
every chunk really goes to the server. Prints: chunks, map calls answered, 429s,
chunks that failed (never answered), chunks summarized more than once, the peak of
requests in flight against `--concurrency`, and the wall time.

Map results are capped at a few tokens (`map_max_tokens`) and the proxy caps every
reply, because this measures fault handling and scheduling, not summary quality.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the bench and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200, help="pages, one chunk each")
    parser.add_argument("--share", type=float, default=0.2, help="share of calls answered 429")
    parser.add_argument("--retry-after", default="1", help="the 429s' Retry-After (seconds)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--base-url", help="a running llama-server's /v1 URL (default: start one)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from faultproxy import SUMMARY_ENV, FaultProxy, rate_limited, summarize_args, survey_pdf
    from llm_server import running_server, start_llama_server

    from adaptsum.cli import main as cli

    with contextlib.ExitStack() as stack:
        if args.base_url:
            server = running_server(args.base_url, args.model)
        else:
            server = stack.enter_context(start_llama_server())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-faults-")))
        pdf = survey_pdf(root / "survey.pdf", args.chunks)
        os.environ.update(SUMMARY_ENV)
        common = ["--chunk-size", "48", "--chunk-overlap", "0", "--data-dir", str(root / "d")]
        assert cli(["index", str(pdf), *common]) == 0
        proxy = stack.enter_context(
            FaultProxy(server.base_url, rate_limited(args.share, retry_after=args.retry_after), 24)
        )
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = cli(
                summarize_args(
                    pdf,
                    root / "d",
                    proxy.base_url,
                    concurrency=args.concurrency,
                    model=server.model,
                )
            )
        seconds = time.perf_counter() - started
    result = json.loads(out.getvalue()) if code == 0 else {}
    chunks = result.get("summary_plan", {}).get("chunks", 0)
    answered = [frozenset(re.findall(r"Station (\d+) of", c.user)) for c in proxy.answered("map")]
    twice = sum(n > 1 for n in Counter(answered).values())
    limited = sum(c.status == 429 for c in proxy.calls)
    print(f"exit code                 {code}")
    print(f"chunks                    {chunks}")
    print(f"requests at the proxy     {len(proxy.calls)}")
    print(f"map calls answered        {len(answered)}")
    print(f"answered 429              {limited} ({limited / max(len(proxy.calls), 1):.0%})")
    print(f"failed chunks             {chunks - len(set(answered))}")
    print(f"chunks summarized twice   {twice}")
    print(f"peak in flight            {proxy.peak_in_flight} (concurrency {args.concurrency})")
    print(f"wall time                 {seconds:.1f} s")
    return 0 if code == 0 and chunks == len(set(answered)) else 1


if __name__ == "__main__":
    sys.exit(main())
