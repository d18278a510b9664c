"""The load generator, run as its own process so it does not share a CPU budget with the
orchestrator: POSTs one body with the given Authorization headers at a fixed concurrency and
prints each request's latency (seconds) and the wall time as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx


async def drive(url: str, body: bytes, headers: list[str], concurrency: int) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for header in headers:
        queue.put_nowait(header)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                authorization = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/json", "Authorization": authorization}
                )
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "wall": wall, "statuses": statuses}


if __name__ == "__main__":
    job = json.loads(Path(sys.argv[1]).read_text())
    result = asyncio.run(drive(job["url"], job["body"].encode(), job["headers"], job["concurrency"]))
    print(json.dumps(result))
