"""README.md's numbers come from results/: every generated block is what `python -m benchmarks.readme`
writes from the committed results files (a hand-edited or stale number fails here), and the
prose around the blocks carries no measured number of its own."""

import json
import os
import re
import shutil

import pytest

from benchmarks import readme

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "results")


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


@pytest.mark.parametrize("name", list(readme.BLOCKS))
def test_readme_block_is_generated_from_results(name):
    block = readme.BLOCKS[name]
    found = readme.find(_readme(), block)
    assert found, f"README.md lost its `{name}` block ({block.begin} … {block.end})"
    try:
        expected = block.build(RESULTS)
    except readme.MissingResults as exc:
        pytest.fail(str(exc))
    assert found.group(0) == expected, (
        f"README.md's `{name}` block is stale or was edited by hand: run `python -m benchmarks.readme`"
    )


def test_render_rewrites_every_block_and_is_idempotent():
    text = _readme()
    assert readme.render(text, RESULTS) == text


def test_a_hand_typed_number_is_caught():
    """Change one number inside a block, as a hand edit would: the block no longer matches."""
    block = readme.BLOCKS["latency-soak"]
    text = _readme()
    edited = text.replace("| echo model, 30 s | ", "| echo model, 30 s | 1", 1)
    assert edited != text
    assert readme.find(edited, block).group(0) != block.build(RESULTS)


@pytest.mark.parametrize(
    "name, missing",
    [
        ("latency-soak", "latency_soak.json"),
        ("latency-soak", "latency_soak.md"),
        ("load-test-client", "load_test_client_cost.json"),
        ("load-test-client", "latency_soak180.json"),
        ("naive-fastapi", "naive_fastapi.json"),
        ("checkpoint-timings", "checkpoint_timings.json"),
        ("energy", "energy.json"),
        ("results", "study.json"),
        ("lock", "study.json"),
    ],
)
def test_a_missing_results_file_is_named(tmp_path, name, missing):
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    (out / missing).unlink()
    with pytest.raises(readme.MissingResults, match=re.escape(missing)):
        readme.BLOCKS[name].build(str(out))


def test_numbers_and_words_follow_the_file(tmp_path):
    """The block is built from the JSON: other numbers in the file give other numbers and, where
    the direction changes, other words ("fell" for "rose", a quiet machine for a shared one)."""
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    path = out / "latency_soak.json"
    soak = json.loads(path.read_text())
    model = soak["runs"]["model"]
    model["req_per_s"] = 1234.5
    model["first_minute"], model["last_minute"] = model["last_minute"], model["first_minute"]
    path.write_text(json.dumps(soak))
    text = readme.BLOCKS["latency-soak"].build(str(out))
    assert "| 1,234 |" in text or "| 1,235 |" in text
    first, last = model["first_minute"]["p50_ms"], model["last_minute"]["p50_ms"]
    assert f"p50 {'rose' if last > first else 'fell'} from {first:.2f} ms" in text

    path = out / "checkpoint_timings.json"
    ckpt = json.loads(path.read_text())
    ckpt["machine"]["load_average_1m_before_after"] = [0.5, 0.7]
    path.write_text(json.dumps(ckpt))
    text = readme.BLOCKS["checkpoint-timings"].build(str(out))
    assert "other jobs" not in text and "load average up to 0.7" in text


def test_wrap_keeps_code_spans_whole_and_never_starts_a_list():
    line = "a " * 40 + "`one code span with spaces` - 3. tail"
    wrapped = readme.wrap(line, width=20)
    assert "`one code span with spaces`" in wrapped
    assert wrapped.replace("\n", " ") == line
    assert not any(re.match(r"([-+*>#|]|\d+[.)]) ", row) for row in wrapped.split("\n"))


# -- no measured number outside the blocks ------------------------------------------------------

SECTIONS = ("images", "serving", "storage", "energy")
UNIT = r"(?:ms|µs|s|min|requests/s|MiB|MB|GB|J|%|×|W)(?!\w)"
# A number with a unit, or any decimal or thousands-separated number (a load average, a ratio).
MEASURED = rf"\d[\d,.]*\s?{UNIT}|\d+\.\d+|\d{{1,3}}(?:,\d{{3}})+"
# Numbers in these sections that are not measurements: defaults, limits and facts about other
# software, each with why it may be typed.
NOT_MEASURED = {
    "4 MiB",  # --max-body-bytes default
    "4 W",  # GAN_JAX_WATTS_PER_THREAD default (CodeCarbon's fallback)
    "0.5 %",  # the load-test histogram's designed relative error
    "15 s",  # the --wrk 15 in the command shown above it
    "60 s",  # gcsfs's time-out against an emulator
    "100 ms",  # NVML's documented counter update period (20–100 ms)
    "0.12",  # the Orbax version that cannot write to s3:// itself
}


def _prose(section: str) -> str:
    text = _readme()
    body = re.search(f"<!-- section:{section} -->(.*?)<!-- /section:{section} -->", text, re.S)
    assert body, f"README.md lost its {section} section"
    prose = re.sub(r"<!-- generated:(\S+) .*?<!-- /generated:\1 -->", "", body.group(1), flags=re.S)
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)  # commands
    return re.sub(r"`[^`]*`", "", prose)  # code spans: options, paths, commands


@pytest.mark.parametrize("section", SECTIONS)
def test_no_measured_number_outside_generated_blocks(section):
    found = {m.group(0) for m in re.finditer(MEASURED, _prose(section))}
    typed = sorted(found - NOT_MEASURED)
    assert not typed, (
        f"README.md's {section} section has numbers outside its generated blocks: {typed}; "
        "generate them in benchmarks/readme.py from results/, or add a non-measurement to NOT_MEASURED"
    )


def test_the_lock_block_follows_the_recorded_versions(tmp_path):
    """The lock statement is built from study.json's versions: other versions, other words."""
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    study = json.loads((out / "study.json").read_text())
    assert "pins" in readme.BLOCKS["lock"].build(str(out))
    study["versions"]["jax"] = "0.0.1"
    (out / "study.json").write_text(json.dumps(study))
    assert "jax: recorded 0.0.1" in readme.BLOCKS["lock"].build(str(out))
