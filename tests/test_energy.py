"""Energy meter: backend selection on fake RAPL trees and a fake NVML, counter wrap-around,
slowly updating counters, the labelled estimate; and the Figure 5 benchmark end to end."""

import json
import subprocess
import sys
import time
import types

import pytest

from benchmarks import energy
from benchmarks import energy_bench as bench

MAX_UJ = 262_143_328_850  # a real package max_energy_range_uj


def write_zone(root, zone, name, energy_uj, max_uj=MAX_UJ):
    path = root / zone
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")


def set_energy(root, zone, energy_uj):
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def rapl_tree(tmp_path):
    """One socket: package + core + dram subzones, a psys zone and an mmio duplicate."""
    write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    write_zone(tmp_path, "intel-rapl:0:0", "core", 500_000)
    write_zone(tmp_path, "intel-rapl:0:1", "dram", 2_000_000, max_uj=65_712_999_613)
    write_zone(tmp_path, "intel-rapl:1", "psys", 9_000_000)
    write_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 1_000_000)
    return tmp_path


def meter(**kwargs):
    """A meter with no Zeus and no NVML unless given, so tests do not depend on the machine."""
    kwargs.setdefault("nvml", None)
    kwargs.setdefault("zeus", None)
    m = energy.EnergyMeter(**kwargs)
    m.backend.max_wait_s = 0.0  # fake files never tick on their own
    return m


def test_rapl_selected_and_sums_package_and_dram_only(rapl_tree):
    m = meter(sysfs_root=str(rapl_tree))
    assert m.source == "rapl" and not m.is_estimate
    assert [z["name"] for z in m.backend.info()["zones"]] == ["package-0", "dram"]
    assert any(s.startswith("nvml: pynvml is not installed") for s in m.skipped)
    token = m.begin()
    set_energy(rapl_tree, "intel-rapl:0", 4_000_000)  # +3 J
    set_energy(rapl_tree, "intel-rapl:0:0", 9_000_000)  # core is inside package: not added
    set_energy(rapl_tree, "intel-rapl:0:1", 2_500_000)  # +0.5 J
    set_energy(rapl_tree, "intel-rapl:1", 99_000_000)  # psys would double count
    result = m.end(token)
    assert result.joules == pytest.approx(3.5)
    assert result.source == "rapl" and not result.is_estimate
    assert result.label == "measured (rapl)"


def test_rapl_counter_wrap(rapl_tree):
    set_energy(rapl_tree, "intel-rapl:0", MAX_UJ - 1_000_000)
    m = meter(sysfs_root=str(rapl_tree))
    with m.window() as w:
        set_energy(rapl_tree, "intel-rapl:0", 2_000_000)  # wrapped: 1 J + 2 J
    assert w.result.joules == pytest.approx(3.0)


def test_rapl_polling_catches_two_wraps(rapl_tree):
    m = meter(sysfs_root=str(rapl_tree))
    token = m.begin()
    for value in (MAX_UJ // 2, 0, MAX_UJ // 2, 1_000_000):  # two wraps, seen by polls
        set_energy(rapl_tree, "intel-rapl:0", value)
        m.poll()
    result = m.end(token)
    assert result.joules == pytest.approx(2 * MAX_UJ * 1e-6, rel=1e-9)


def test_no_counter_falls_back_to_labelled_estimate(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_JAX_WATTS_PER_THREAD", raising=False)
    m = meter(sysfs_root=str(tmp_path / "absent"))
    assert m.source == "estimate" and m.is_estimate
    with m.window() as w:
        sum(i * i for i in range(200_000))
    r = w.result
    assert r.is_estimate and r.joules > 0
    assert r.label.startswith("ESTIMATE")
    assert "ESTIMATE, not a measurement" in r.assumption
    assert "4 W per hardware thread" in r.assumption and "pynvml is not installed" in r.assumption
    assert r.to_dict()["is_estimate"] is True


def test_estimate_counts_a_live_child_process():
    """The server runs as a child: its CPU time, not only ours, goes into the estimate. The
    child burns 0.5 s of CPU, then says so and sleeps (alive); we wait for it without using
    CPU, so the difference is the child's whatever the machine's load."""
    busy = "import time\nwhile time.process_time() < 0.5: pass\nprint('done', flush=True)\ntime.sleep(60)"
    before = energy.cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "done\n"
        assert child.poll() is None  # alive: not yet in os.times()'s reaped children
        assert energy.cpu_seconds() - before > 0.45
    finally:
        child.kill()
        child.wait()


def test_estimate_is_cpu_time_times_watts(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(energy, "cpu_seconds", lambda: next(clock))
    monkeypatch.setenv("GAN_JAX_WATTS_PER_THREAD", "6")
    m = meter(prefer="estimate")
    with m.window() as w:
        pass
    assert w.result.joules == pytest.approx(15.0)
    assert "6 W per hardware thread" in w.result.assumption


class FakeZeusMonitor:
    def __init__(self, *args, **kwargs):
        pass


@pytest.mark.parametrize(
    "zeus, nvml, rapl, prefer, expected",
    [
        (False, False, False, "auto", "estimate"),  # a VM: nothing readable
        (False, False, True, "auto", "rapl"),  # a CPU box
        (False, True, False, "auto", "nvml"),  # a GPU without readable RAPL
        (False, True, True, "auto", "nvml+rapl"),  # GPU and CPU: both, summed
        (True, True, True, "auto", "zeus"),  # Zeus covers both itself
        (True, True, True, "rapl", "rapl"),  # a backend asked for by name wins over a better one
        (False, True, True, "nvml", "nvml"),
        (False, True, True, "estimate", "estimate"),
    ],
)
def test_each_situation_selects_its_backend(rapl_tree, tmp_path, zeus, nvml, rapl, prefer, expected):
    """Catches a selection order that prefers the estimate over a readable counter, drops one
    of two counters, or ignores the backend asked for."""
    m = meter(
        prefer=prefer,
        zeus=FakeZeusMonitor if zeus else None,
        nvml=fake_nvml([0] * 9) if nvml else None,
        sysfs_root=str(rapl_tree if rapl else tmp_path / "absent"),
    )
    assert m.source == expected
    assert m.is_estimate == (expected == "estimate")
    assert m.describe()["source"] == expected


def test_required_backend_that_is_missing_raises(tmp_path):
    with pytest.raises(energy.BackendUnavailable, match="no RAPL package zones"):
        energy.EnergyMeter("rapl", sysfs_root=str(tmp_path), nvml=None, zeus=None)
    with pytest.raises(energy.BackendUnavailable, match="pynvml is not installed"):
        energy.EnergyMeter("nvml", sysfs_root=str(tmp_path), nvml=None, zeus=None)
    with pytest.raises(ValueError, match="unknown energy backend"):
        energy.EnergyMeter("wattmeter")


def fake_nvml(readings_mj):
    """A pynvml stand-in with one GPU whose counter returns the given readings in turn."""
    readings = iter(readings_mj)
    return types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetName=lambda h: "Fake H100",
        nvmlDeviceGetTotalEnergyConsumption=lambda h: next(readings),
    )


def ticking_nvml(watts: float) -> types.ModuleType:
    """A pynvml module with one GPU drawing `watts`: its counter follows the wall clock."""
    module = types.ModuleType("pynvml")
    module.__dict__.update(vars(fake_nvml([])))
    module.nvmlDeviceGetTotalEnergyConsumption = lambda h: int(time.perf_counter() * watts * 1e3)
    return module


def test_fake_nvml_counter_in_millijoules(tmp_path):
    # init check, begin, end (alignment off in `meter`)
    m = meter(nvml=fake_nvml([5_000, 5_000, 12_500]), sysfs_root=str(tmp_path))
    assert m.source == "nvml"
    with m.window() as w:
        pass
    assert w.result.joules == pytest.approx(7.5)
    assert w.result.detail["gpus"] == ["Fake H100"]


def test_nvml_and_rapl_are_summed(rapl_tree):
    m = meter(nvml=fake_nvml([0, 0, 2_000]), sysfs_root=str(rapl_tree))
    assert m.source == "nvml+rapl"
    token = m.begin()
    set_energy(rapl_tree, "intel-rapl:0", 2_000_000)  # +1 J
    assert m.end(token).joules == pytest.approx(3.0)


class SlowCounter(energy.CounterBackend):
    """A counter that gains 1 J only every `period`-th read."""

    source, align, max_wait_s = "slow", True, 1.0

    def __init__(self, period: int):
        self.period, self.reads = period, 0

    def read(self):
        self.reads += 1
        return ((self.reads - 1) // self.period * 1_000_000,)

    def joules(self, a, b):
        return (b[0] - a[0]) * 1e-6

    def assumption(self):
        return "fake"


def test_slow_counter_window_is_aligned_to_updates():
    window = energy._Window(SlowCounter(3))  # reads 1..3 are 0 J, read 4 is the first update
    assert window.last == (1_000_000,) and window.aligned_start
    result = window.close()  # reads 5, 6 are 1 J; read 7 is the next update
    assert result.joules == pytest.approx(1.0) and result.detail["aligned"]


def test_summed_counters_align_to_the_slowest():
    fast, slow = SlowCounter(1), SlowCounter(4)
    window = energy._Window(energy.SumBackend([fast, slow]))
    assert slow.reads == 5 and window.last == ((4_000_000,), (1_000_000,))


def test_zeus_monitor_is_used_when_given(tmp_path):
    class FakeZeus:
        def begin_window(self, name):
            self.name = name

        def end_window(self, name):
            assert name == self.name
            return types.SimpleNamespace(
                total_energy=42.0, time=2.0, gpu_energy={0: 40.0}, cpu_energy={0: 2.0}
            )

    m = energy.EnergyMeter(zeus=FakeZeus, nvml=None, sysfs_root=str(tmp_path))
    with m.window() as w:
        pass
    assert (w.result.source, w.result.joules, w.result.watts) == ("zeus", 42.0, 21.0)


def test_benchmark_writes_json_and_png(tmp_path, monkeypatch):
    out = tmp_path / "results"
    # A GPU whose NVML counter reads 100 W, whatever the machine: the benchmark must then report
    # a measurement from NVML, not the CPU-time estimate (and not a source of this machine).
    monkeypatch.setitem(sys.modules, "pynvml", ticking_nvml(watts=100.0))
    bench.main(
        [
            "--quick",
            "--tasks",
            "2,4",
            "--train-repeats",
            "1",
            "--predict-repeats",
            "2",
            "--predict",
            "inprocess",
            "--out",
            str(out),
        ]
    )
    record = json.loads((out / "energy.json").read_text())
    assert set(record["tasks"]) == {"training", "prediction"}
    for kind, n_points in (("training", 2), ("prediction", 4)):
        t = record["tasks"][kind]
        assert len(t["points"]) == n_points and len(t["first_calls"]) == 2
        assert all(p["joules"] > 0 and p["seconds"] > 0 for p in t["points"])
        assert "joules_per_task" in t["fit"]
    assert record["energy"]["source"] == "nvml" and record["energy"]["is_estimate"] is False
    assert record["label"] == "measured (nvml)"
    assert "Fake H100" in record["energy"]["assumption"]
    for p in record["tasks"]["training"]["points"]:  # 100 W for the window's seconds
        assert p["joules"] == pytest.approx(100.0 * p["seconds"], rel=0.05, abs=0.05)
    assert len(record["load_average"]["before"]) == 3 and record["command"].startswith(
        "python -m benchmarks.energy_bench"
    )
    assert (out / "figure5_energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Figure 5" in (out / "energy.md").read_text()
