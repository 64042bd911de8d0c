"""A small judge-like run in its own process, for the cross-process and Ctrl-C tests.

``python -m tests.helpers.llm_run BASE_URL CACHE N [CONCURRENCY]`` asks the
Anthropic provider (the real client) ``item 0`` ... ``item N-1`` through
`opinbench.llm.runner.run_jobs` and prints the run's stats as JSON; on Ctrl-C it
prints ``interrupted`` and exits 130, as a shell command would.

SIGINT is set back to Python's KeyboardInterrupt first: a test suite started in the
background by a non-interactive shell (``pytest &``) runs with SIGINT ignored, which
its children inherit, and Python keeps an inherited SIG_IGN, so the Ctrl-C test's
signal was lost and the run finished with status 0.
"""

from __future__ import annotations

import json
import signal
import sys

from opinbench.llm import Budget, ChatRequest, Job, ProviderSpec, ReplyCache, RunOptions
from opinbench.llm import make_provider, request_key, run_jobs


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    base_url, cache_path, n = argv[0], argv[1], int(argv[2])
    concurrency = int(argv[3]) if len(argv) > 3 else 4
    spec = ProviderSpec.parse("anthropic:claude-sonnet-4-6", base_url=base_url, timeout=30)
    provider = make_provider(spec)
    jobs = []
    for i in range(n):
        req = ChatRequest(messages=(("user", f"item {i}"),), max_tokens=8)
        key = request_key(spec.identity(), req.to_json())
        jobs.append(Job(key, req.to_json(), lambda r=req: provider.complete(r)))
    try:
        with ReplyCache(cache_path) as cache:
            _, stats = run_jobs(
                jobs,
                cache=cache,
                provider=spec.provider,
                model=spec.model,
                options=RunOptions(concurrency=concurrency, progress=False, claim_poll=0.05),
                budget=Budget(),
            )
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print(json.dumps(stats.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
