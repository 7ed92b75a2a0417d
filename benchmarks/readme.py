"""README.md's generated blocks: every measured number in the README, built from files in results/.

Each block sits between `<!-- generated:NAME (python -m benchmarks.readme) -->` and
`<!-- /generated:NAME -->` (the top results block keeps its `results:begin/end` markers from
`gan_jax.studies.report`). `python -m benchmarks.readme` rewrites them all (run it after
`gan-jax reproduce` and the benchmarks); `tests/test_readme.py` checks
that each one equals what its builder writes from the committed results, so a number typed
by hand, or one left behind by a new benchmark run, fails a test.

The prose around the numbers is generated too wherever it depends on them: "rose" or "fell",
"a quiet machine" or "other jobs shared the cores" follow the files, not the last time someone
read them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import lockfile
from benchmarks.harness import current_command
from gan_jax.artifacts import storage
from gan_jax.studies.report import README_BEGIN, README_END, readme_results


class MissingResults(FileNotFoundError):
    """A results file that a README block is built from is missing."""


def begin(name: str) -> str:
    return f"<!-- generated:{name} (python -m benchmarks.readme) -->"


def end(name: str) -> str:
    return f"<!-- /generated:{name} -->"


def _read(out: str, name: str, block: str) -> str:
    uri = f"{out}/{name}"
    try:
        return storage.read_text(uri)
    except FileNotFoundError:
        raise MissingResults(
            f"{uri} is missing: README.md's `{block}` block is built from it. Run the command that "
            f"writes it (README.md names it beside the block), or restore it with `git checkout {uri}`."
        ) from None


def _json(out: str, name: str, block: str) -> dict[str, Any]:
    return json.loads(_read(out, name, block))


# -- small formatting helpers ------------------------------------------------------------------

WIDTH = 100
# A word that would turn a wrapped line into a list item, quote, heading or table row.
_BAD_LINE_START = re.compile(r"^([-+*>#|]|\d+[.)])$")


def _words(line: str) -> list[str]:
    """`line` split at the spaces outside code spans."""
    words, word, in_code = [], "", False
    for ch in line:
        if ch == " " and not in_code:
            words.append(word)
            word = ""
            continue
        in_code ^= ch == "`"
        word += ch
    return [*words, word]


def wrap(text: str, width: int = WIDTH) -> str:
    """Wraps prose lines at `width` (tables and short lines untouched), keeping each code span on
    one line and never starting a line with a word Markdown would read as a list, quote,
    heading or table."""
    out = []
    for line in text.split("\n"):
        if line.startswith("|") or len(line) <= width:
            out.append(line)
            continue
        rows: list[list[str]] = [[]]
        for word in _words(line):
            row = rows[-1]
            if row and len(" ".join([*row, word])) > width and not _BAD_LINE_START.match(word):
                rows.append([word])
            else:
                row.append(word)
        out += [" ".join(r) for r in rows]
    return "\n".join(out)


def _range(lo: float, hi: float, fmt: str) -> str:
    a, b = format(lo, fmt), format(hi, fmt)
    return a if a == b else f"{a}–{b}"


def _shared(load_max: float, cores: int) -> bool:
    """A 1-minute load average above the core count: other jobs shared the machine."""
    return load_max > cores


def _moved(first: float, last: float, up: str, down: str, same: str = "stayed at") -> str:
    return up if last > first else down if last < first else same


def _minute_req_per_s(model: dict[str, Any], which: str) -> float:
    """Requests/s in the first or last minute: recorded by newer load tests, else summed from the
    windows that lie wholly inside that minute."""
    if "req_per_s" in model.get(which, {}):
        return model[which]["req_per_s"]
    windows, duration = model["windows"], model["duration_s"]
    width = duration / len(windows)
    inside = [
        w
        for i, w in enumerate(windows)
        if ((i + 1) * width <= 60 if which == "first_minute" else i * width >= duration - 60)
    ]
    return sum(w["requests"] for w in inside) / (len(inside) * width)


def _loads(model: dict[str, Any]) -> list[float]:
    """Every 1-minute load average the run recorded (per window, and before and after)."""
    return [w["load_avg_1m"] for w in model["windows"] if "load_avg_1m" in w] + list(
        model.get("load_average_before_after", [])
    )


# -- the blocks ---------------------------------------------------------------------------------


def latency_soak(out: str) -> str:
    """The soak's table (bundle and echo model, each also under wrk) and its first/last-minute drift."""
    block = "latency-soak"
    soak = _json(out, "latency_soak.json", block)
    md = _read(out, "latency_soak.md", block)  # the paper's Figure 4, as load_test.py words it
    paper = re.search(r"The paper's Figure 4 shows (.+?) and does not say", md)
    model, echo = soak["runs"]["model"], soak["runs"]["echo"]
    cores, loads = soak["machine"]["cpu_count"], _loads(model)
    quiet = not _shared(max(loads), cores)
    row = lambda label, r: (
        f"| {label} | {r['req_per_s']:,.0f} | {r['p50_ms']:.2f} | "
        f"{format(r['p95_ms'], '.2f') if 'p95_ms' in r else '–'} | {r['p99_ms']:.2f} | "
        f"{r.get('failed', r.get('non_2xx'))} |"
    )
    wrk = lambda label, r: (
        [row(f"{label}, wrk {soak['config']['wrk']:.0f} s", r["wrk"])] if "wrk" in r else []
    )
    first, last = model["first_minute"], model["last_minute"]
    rps0, rps1 = _minute_req_per_s(model, "first_minute"), _minute_req_per_s(model, "last_minute")
    p50s = [w["p50_ms"] for w in model["windows"]]
    lines = [
        f"Measured on this {cores}-core CPU VM (`results/latency_soak.json` has the load average per "
        f"window; it stayed at or below {max(loads):.1f}, "
        + ("i.e. no other jobs" if quiet else "so other jobs shared the cores")
        + f"), {soak['created']}, {soak['config']['connections']} connections, single-case requests:",
        "",
        "| server | requests/s | p50 ms | p95 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|",
        row(f"bundle model, {model['duration_s']:.0f} s soak ({model['requests']:,} requests)", model),
        *wrk("bundle model", model),
        row(f"echo model, {echo['duration_s']:.0f} s", echo),
        *wrk("echo model", echo),
        "",
        f"p99 in the first minute of the soak {first['p99_ms']:.2f} ms, in the last minute "
        f"{last['p99_ms']:.2f} ms (ratio {model['last_vs_first_minute_p99']:.2f}); the slowest of "
        f"{model['requests'] / 1e6:.1f} M requests took {model['max_ms']:.0f} ms. "
        + (f"The paper's Figure 4 shows {paper.group(1)} (`results/latency_soak.md`); " if paper else "")
        + f"ours has a p50 of {model['p50_ms']:.2f} ms, and the model's share is the gap to the echo "
        f"model. It is not flat, though: p50 {_moved(first['p50_ms'], last['p50_ms'], 'rose', 'fell')} "
        f"from {first['p50_ms']:.2f} ms in the first minute to {last['p50_ms']:.2f} ms in the last and "
        f"throughput {_moved(rps0, rps1, 'rose', 'fell')} from {rps0:,.0f} to {rps1:,.0f} requests/s, "
        f"unevenly (window p50 between {min(p50s):.2f} and {max(p50s):.2f} ms).",
    ]
    return "\n".join(lines)


def load_test_client(out: str) -> str:
    """What the load-test client costs (lists vs histogram), and the 180 s soak with the new client."""
    block = "load-test-client"
    cost = _json(out, "load_test_client_cost.json", block)
    soak = _json(out, "latency_soak.json", block)["runs"]["model"]
    s180 = _json(out, "latency_soak180.json", block)
    lists, hist = cost["recorders"]["lists (before)"], cost["recorders"]["histogram (now)"]
    us = lambda r: (min(r["cpu_us_per_response_by_block"]), max(r["cpu_us_per_response_by_block"]))
    share = 100 * max(us(lists)[1], us(hist)[1]) / (1000 * soak["p50_ms"])
    p50_rise = soak["last_minute"]["p50_ms"] - soak["first_minute"]["p50_ms"]
    m = s180["runs"]["model"]
    w0, w1 = m["windows"][0], m["windows"][-1]
    cores, loads = s180["machine"]["cpu_count"], _loads(m)
    rss = [w["server_rss_mb"] for w in m["windows"]]
    cpu0, cpu1 = w0["client_cpu_us_per_request"], w1["client_cpu_us_per_request"]
    client_flat = abs(cpu1 / cpu0 - 1) < 0.2
    rss_text = (
        f"{rss[0]:.0f} MiB throughout"
        if f"{min(rss):.0f}" == f"{max(rss):.0f}"
        else f"{rss[0]:.0f} MiB in the first window and {rss[-1]:.0f} MiB in the last"
    )
    old_soak = "latency_histogram" not in soak
    lines = [
        ("That soak's client (before the histogram) kept" if old_soak else "The load test's old client kept")
        + f" every latency in growing Python lists. What that cost, measured without a server over "
        f"the soak's {cost['responses'] / 1e6:.2f} M responses (`{current_command(cost['command'])}` → "
        f"`results/load_test_client_cost.json`, CPU time per response in {cost['blocks']} blocks): the "
        f"lists {_range(*us(lists), '.2f')} µs per response and {lists['rss_growth_mb']:.0f} MiB more "
        f"memory by the end; the histogram {_range(*us(hist), '.2f')} µs and "
        f"{hist['rss_growth_mb']:.{0 if hist['rss_growth_mb'] >= 10 else 1}f} MiB. Both are at most "
        f"{share:.2f} % of the soak's "
        f"{soak['p50_ms']:.2f} ms median request, so the lists' CPU time cannot explain a "
        f"{abs(p50_rise):.2f} ms {'rise' if p50_rise > 0 else 'fall'} in p50. A "
        f"{m['duration_s']:.0f} s soak with the histogram client (`{current_command(s180['command'])}` → "
        f"`results/latency_soak180.json`) ran "
        + (
            f"while other jobs shared the {cores} cores (1-minute load average "
            f"{_range(min(loads), max(loads), '.1f')}, so its absolute numbers are not comparable with "
            "the table)"
            if _shared(max(loads), cores)
            else f"on a quiet machine (1-minute load average up to {max(loads):.1f})"
        )
        + f": p50 {m['first_minute']['p50_ms']:.2f} ms in the first minute and "
        f"{m['last_minute']['p50_ms']:.2f} ms in the last; the client's CPU per request {cpu0:.0f} µs "
        f"in the first window and {cpu1:.0f} µs in the last, the server's resident memory {rss_text}. "
        + (
            "So the client's cost stays about constant, and the client does not explain the drift."
            if client_flat
            else "So the client's cost changed over the run; see the windows in the JSON."
        ),
    ]
    if old_soak:
        lines[-1] += (
            f" Whether the server drifts over {soak['duration_s'] / 60:.0f} minutes is open: that needs a "
            "soak with the new client on a quiet machine."
        )
    return "\n".join(lines)


def naive_fastapi(out: str) -> str:
    """A naive FastAPI server against `gan-jax serve`, same client, same bundle."""
    block = "naive-fastapi"
    d = _json(out, "naive_fastapi.json", block)
    naive, ours = d["runs"]["naive FastAPI (sync handler, pydantic)"], d["runs"]["gan-jax serve"]
    loads = naive["load_average_before_after"] + ours["load_average_before_after"]
    soak = _json(out, "latency_soak.json", block)
    soak_quiet = not _shared(max(_loads(soak["runs"]["model"])), soak["machine"]["cpu_count"])
    run = lambda r: f"{r['req_per_s']:,.0f} requests/s (p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.1f} ms)"
    shared = _shared(max(loads), d["machine"]["cpu_count"])
    return (
        "For scale, a naive FastAPI server (pydantic request model, synchronous handler calling the same "
        "bundle's jitted predict per request, one uvicorn worker) and `gan-jax serve`, driven in turn by "
        f"the same client for {d['config']['duration_s']:.0f} s each (`{current_command(d['command'])}` → "
        f"`results/naive_fastapi.json`): {run(naive)} against {run(ours)}. "
        + (
            "Both ran on the shared VM at a 1-minute load average of "
            f"{_range(min(loads), max(loads), '.0f')}, "
            f"so only their ratio ({ours['req_per_s'] / naive['req_per_s']:.1f}×) means much"
            + ("; the soak above had the cores to itself." if soak_quiet else ".")
            if shared
            else f"Ratio {ours['req_per_s'] / naive['req_per_s']:.1f}× (1-minute load average up to "
            f"{max(loads):.1f})."
        )
    )


def checkpoint_timings(out: str) -> str:
    """Orbax save and restore times: local async/sync, loopback S3 and GCS."""
    block = "checkpoint-timings"
    d = _json(out, "checkpoint_timings.json", block)
    t, state = d["targets"], d["state"]
    ms = lambda target, key: f"{1000 * t[target][key]['median']:.0f}"
    n = {v["n"] for target in t.values() for v in target.values()}
    load = max(d["machine"]["load_average_1m_before_after"])
    shared = _shared(load, d["machine"]["cpu_count"])
    return (
        f"Save and restore times of the `{d['experiment']}` config's state ({state['runs']} runs, "
        f"{state['leaves']} arrays, {state['bytes'] / 1e6:.1f} MB), medians of "
        f"{'/'.join(map(str, sorted(n)))}, "
        f"from `{current_command(d['command'])}` → `results/checkpoint_timings.json`, measured on the "
        f"{d['machine']['cpu_count']}-core VM "
        + (
            f"while other jobs loaded it (1-minute load average {load:.0f}, so expect less on a quiet "
            "machine)"
            if shared
            else f"(1-minute load average up to {load:.1f})"
        )
        + f": a local asynchronous save blocks training for {ms('local-async', 'save_call_s')} ms, and its "
        f"write finishes {ms('local-async', 'save_background_s')} ms later in the background; a "
        f"synchronous local save takes {ms('local-sync', 'save_total_s')} ms; a local restore "
        f"{ms('local-async', 'restore_s')} ms. Saves to loopback S3 (moto) and GCS (gcp-storage-emulator) "
        f"servers take {ms('s3', 'save_total_s')} and {ms('gs', 'save_total_s')} ms, restores "
        f"{ms('s3', 'restore_s')} and {ms('gs', 'restore_s')} ms: client and protocol cost, not a cloud "
        "network."
    )


def energy(out: str) -> str:
    """Joules per task from the Figure 5 run, and whether they are measured or estimated."""
    d = _json(out, "energy.json", "energy")
    e, machine = d["energy"], d["machine"]
    sig = lambda v: f"{v:.4g}"
    rows = [
        f"| {name} | {task['unit']} | {sig(task['fit']['joules_per_task'])} | {task['fit']['r2']:.3f} | "
        f"{len(task['points'])} |"
        for name, task in d["tasks"].items()
    ]
    if e["is_estimate"]:
        why = "; ".join(e.get("skipped", []))
        head = (
            f"**The committed figure is an ESTIMATE** (`{d['label']}`): no energy counter was readable "
            f"on this {machine['cpus']}-core machine (XLA device: {d['device']['platform']}; {why}), so "
            "every number below is an estimate."
        )
    else:
        head = f"The committed figure is measured: {d['label']}."
    return "\n".join(
        [
            head,
            f"From `{current_command(d['command'])}` → `results/energy.json`:",
            "",
            "| task | unit | J per task (slope) | r² | windows |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


# -- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    name: str
    begin: str
    end: str
    build: Callable[[str], str]  # results folder -> the whole block, markers included


def http_vs_grpc(out: str) -> str:
    """The side-by-side table and its reading, as `load_test.py --protocol both` wrote them."""
    text = _read(out, "latency_http_vs_grpc.md", "http-vs-grpc")
    return "\n".join(line for line in text.strip().splitlines() if not line.startswith("#")).strip()


def serving(out: str) -> str:
    """The serving benchmark's table, load generator and time breakdown, as
    `python -m benchmarks.bench_serving` wrote them (every protocol at 1, 8 and 64 connections)."""
    text = _read(out, "bench_serving.md", "serving-benchmark")
    return "\n".join(line for line in text.strip().splitlines() if not line.startswith("#")).strip()


def image_study(out: str) -> str:
    """The image study's accuracy / F1 / ROC-AUC per model and labelled fraction, its verdict
    on the GAN and its cost, as `gan-jax image-study` wrote them."""
    study = _json(out, "image_study.json", "image-study")
    pct = lambda m: f"{100 * m['mean']:.1f} [{100 * m['ci95_low']:.1f}, {100 * m['ci95_high']:.1f}]"
    rows = [
        f"| {100 * part['fraction']:.0f} % | {model} | "
        + " | ".join(pct(record["summary"][k]) for k in ("accuracy", "f1", "roc_auc"))
        + " |"
        for part in study["per_fraction"]
        for model, record in part["models"].items()
    ]
    comparisons = study["comparisons"]
    significant = [c for c in comparisons if c["p_holm"] < 0.05]
    listed = "; ".join(
        f"{c['metric']} at {100 * c['fraction']:.0f} % labels against {c['b']}: "
        f"{100 * c['mean_diff']:+.2f} pp (Holm p {c['p_holm']:.3f})"
        for c in significant
    )
    verdict = (
        f"{len(significant)} of the {len(comparisons)} paired differences of the conv SGAN (against the "
        f"same classifier without the GAN and against the pixel logistic regression) "
        f"{'is' if len(significant) == 1 else 'are'} significant after Holm's correction: {listed}"
        if significant
        else f"none of the {len(comparisons)} paired differences of the conv SGAN (against the same "
        f"classifier without the GAN and against the pixel logistic regression) is significant after "
        f"Holm's correction (smallest Holm p {min(c['p_holm'] for c in comparisons):.2f})"
    )
    load = study["load_average_at_end"][0]
    return "\n".join(
        [
            f"`{study['command']}` on {study['data']} — **synthetic images, not patient data**; "
            f"{study['n_repeats']} × {study['n_folds']}-fold CV, chance accuracy "
            f"{100 * study['chance_accuracy']:.0f} %. Mean [95 % CI] over CV runs, %:",
            "",
            "| labelled | model | accuracy | F1 | ROC-AUC |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"On this demo set {verdict}. The whole study took {study['wall_seconds']:.0f} s "
            f"({study['cpu_seconds']:.0f} CPU-s) on {study['device']['count']} CPU devices, load average "
            f"{load:.1f} at the end; the paired tests are in `results/image_study.md`.",
        ]
    )


def _generated(name: str, body: Callable[[str], str]) -> Block:
    build = lambda out: "\n".join([begin(name), wrap(body(out)), end(name)])
    return Block(name, begin(name), end(name), build)


def lock(out: str) -> str:
    """Which lock file reproduces the versions results/study.json was made with."""
    study = _json(out, "study.json", "lock")
    return lockfile.reproduction_statement(study["versions"])


def _results(out: str) -> str:
    try:
        return readme_results(out)
    except FileNotFoundError as exc:
        raise MissingResults(f"{exc}: README.md's `results` block is built from {out}/study.json") from None


BLOCKS: dict[str, Block] = {
    b.name: b
    for b in [
        Block("results", README_BEGIN, README_END, _results),
        _generated("lock", lock),
        _generated("latency-soak", latency_soak),
        _generated("load-test-client", load_test_client),
        _generated("naive-fastapi", naive_fastapi),
        _generated("http-vs-grpc", http_vs_grpc),
        _generated("serving-benchmark", serving),
        _generated("checkpoint-timings", checkpoint_timings),
        _generated("energy", energy),
        _generated("image-study", image_study),
    ]
}


def find(readme: str, block: Block) -> re.Match[str] | None:
    return re.search(re.escape(block.begin) + ".*?" + re.escape(block.end), readme, re.S)


def render(readme: str, out: str = "results") -> str:
    """README text with every block rebuilt from `out`; a README that lost a block is an error."""
    for block in BLOCKS.values():
        found = find(readme, block)
        if not found:
            raise ValueError(f"README.md has no `{block.name}` block ({block.begin} … {block.end})")
        text = block.build(out)
        readme = readme[: found.start()] + text + readme[found.end() :]
    return readme


def main() -> None:
    """Rewrites every generated block of the checkout's README.md from its results/."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "README.md")
    with open(path) as f:
        text = f.read()
    try:
        text = render(text, os.path.join(root, "results"))
    except (MissingResults, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    with open(path, "w") as f:
        f.write(text)
    print(f"updated {path}")


if __name__ == "__main__":
    main()
