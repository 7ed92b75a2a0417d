"""Does the load-test client get slower as a run goes on? Its cost of recording one response,
without a server: the old way (three Python lists that grow by one entry per response) against
`load_test.Recorder` (a fixed-size histogram per window), over as many responses as the
10-minute soak saw.

Feeds --responses synthetic (time, latency, status) triples at the soak's rate into each and
reports the CPU time per response in consecutive blocks (process CPU time, so other processes
on a shared machine count less than in wall time) and the memory each holds at the end. A cost
per response that rises from the first block to the last would be a client-made latency drift.
Writes results/load_test_client_cost.json.

    python -m benchmarks.bench_load_test_client                 # 4.34 M responses, as the soak
    python -m benchmarks.bench_load_test_client --responses 200000 --blocks 4   # smoke
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time

from benchmarks import harness, load_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--responses", type=int, default=4_337_367, help="responses (default: the 600 s soak's)")
    p.add_argument("--blocks", type=int, default=10, help="blocks the cost is reported in")
    p.add_argument("--rate", type=float, default=7229.0, help="responses per second (default: the soak's)")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    return p.parse_args(argv)


class ListRecorder:
    """The client before: every response appended to three lists (load_test.py at commit
    6da86a1, then in scripts/)."""

    def __init__(self):
        self.times, self.latencies, self.statuses = [], [], []

    def record(self, t, latency, status):
        if t >= 0.0:
            self.times.append(t)
            self.latencies.append(latency)
            self.statuses.append(status)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cost_per_block(record, n: int, blocks: int, rate: float) -> list[float]:
    """CPU microseconds per response in each of `blocks` consecutive blocks."""
    per_block = n // blocks
    out = []
    i = 0
    for _ in range(blocks):
        c0 = time.process_time()
        for _ in range(per_block):
            record(i / rate, 1e-3 + (i % 97) * 1e-5, 200)  # varied latencies: many buckets used
            i += 1
        out.append(1e6 * (time.process_time() - c0) / per_block)
    return out


def markdown(record: dict) -> str:
    """CPU time per response in each block, and the memory each recorder grew by."""
    lines = [
        "| recorder | µs per response, block by block | last / first | memory growth MiB |",
        "|---|---|---:|---:|",
    ]
    for name, r in record["recorders"].items():
        blocks = " ".join(f"{b:.2f}" for b in r["cpu_us_per_response_by_block"])
        lines.append(f"| {name} | {blocks} | {r['last_vs_first_block']:.2f} | {r['rss_growth_mb']:.1f} |")
    lines += [
        "",
        f"{record['responses']:,} synthetic responses in {record['blocks']} blocks; "
        f"{record['machine']['note']}.",
        f"- Regenerate: `{record['command']}` (commit `{record['git_commit'][:12]}`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse_args(argv)
    rec = harness.record(argv, module="benchmarks.bench_load_test_client")
    duration = args.responses / args.rate
    results = {}
    load_before = os.getloadavg()[0]
    for name, make in (
        ("lists (before)", ListRecorder),
        ("histogram (now)", lambda: load_test.Recorder(duration + 1.0, max(duration / 60, 1.0))),
    ):
        gc.collect()
        rss0 = rss_mb()
        recorder = make()
        blocks = cost_per_block(recorder.record, args.responses, args.blocks, args.rate)
        results[name] = {
            "cpu_us_per_response_by_block": blocks,
            "rss_growth_mb": rss_mb() - rss0,
            "last_vs_first_block": blocks[-1] / blocks[0],
        }
        print(
            f"{name}: {' '.join(f'{b:.2f}' for b in blocks)} µs/response; last/first "
            f"{blocks[-1] / blocks[0]:.2f}; memory +{results[name]['rss_growth_mb']:.0f} MiB"
        )
        del recorder
    record = harness.finish(rec)
    record.update(
        responses=args.responses,
        blocks=args.blocks,
        recorders=results,
        machine={
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m_before_after": [load_before, os.getloadavg()[0]],
            "note": "CPU time of this process; a shared machine still adds cache and scheduling noise",
        },
    )
    path, _ = harness.write(args.out, "load_test_client_cost", record, markdown(record))
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
