"""Energy of a window of work: `with meter.window() as w: ...` then `w.result.joules`.

Backends, chosen automatically (`EnergyMeter()`), best first:

- **zeus**: Zeus's `ZeusMonitor` (GPU through NVML, CPU/DRAM through RAPL), if importable.
- **nvml**: the NVIDIA driver's total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`,
  millijoules since the driver loaded; Volta or newer), through nvidia-ml-py (`pynvml`).
- **rapl**: Linux powercap RAPL package (and DRAM) counters, `/sys/class/powercap/intel-rapl:*`
  (AMD Zen CPUs appear under the same control type on Linux >= 5.8). Handles counter
  wrap-around (`max_energy_range_uj`).
- **estimate**: where no counter is readable (a VM, or `energy_uj` being root-only on kernels
  patched for CVE-2020-8694): CPU-seconds of this process and its children × power per hardware
  thread, CodeCarbon's documented fallback for a CPU whose TDP it does not know (4 W per thread).
  It is *not* a measurement: every result says `is_estimate=True` and carries the assumption.

NVML and RAPL are summed when both are readable (GPU + CPU). Counters that update more slowly
than a short window (NVML: every 20-100 ms) are handled by aligning both ends of a window to
counter updates: the reported `seconds` is the span between the two updates, which is what the
energy covers. The sysfs root and the NVML/Zeus modules are arguments, so tests use fakes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import re
import threading
import time
from typing import Any

CODECARBON_WATTS_PER_THREAD = 4.0  # CodeCarbon's default power for an unknown CPU, per thread
POWERCAP_ROOT = "/sys/class/powercap"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Energy of one window. `is_estimate` is True for the CPU-time estimate."""

    joules: float
    seconds: float
    source: str  # "zeus", "nvml", "rapl", "nvml+rapl" or "estimate"
    is_estimate: bool
    assumption: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")

    @property
    def label(self) -> str:
        """Short text for legends and tables; an estimate always says so."""
        return f"ESTIMATE ({self.assumption_short})" if self.is_estimate else f"measured ({self.source})"

    @property
    def assumption_short(self) -> str:
        return self.detail.get("assumption_short", self.source)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "watts": self.watts, "label": self.label}


class BackendUnavailable(RuntimeError):
    """A backend cannot be used here; the message says why."""


class CounterBackend:
    """A backend whose `read()` returns cumulative counters; `joules(a, b)` turns two reads into
    energy. Subclasses set `source`, `is_estimate`, `align` (wait for a counter update at both
    ends of a window) and `poll_s` (read at least this often while a window is open, so that a
    counter cannot wrap twice unseen)."""

    source = "counter"
    is_estimate = False
    align = False
    poll_s: float | None = None
    max_wait_s = 0.5  # longest wait for a counter update when aligning

    def read(self) -> tuple:
        raise NotImplementedError

    def joules(self, a: tuple, b: tuple) -> float:
        raise NotImplementedError

    def assumption(self) -> str:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {}

    def changed(self, first: tuple, now: tuple) -> bool:
        return now != first

    def aligned_read(self) -> tuple[tuple, float, bool]:
        """(counters, time, aligned): the first read after the counter changes, so a window
        starts and ends on an update of a slowly updating counter."""
        first = self.read()
        if not self.align:
            return first, time.perf_counter(), False
        deadline = time.perf_counter() + self.max_wait_s
        while time.perf_counter() < deadline:
            now = self.read()
            if self.changed(first, now):
                return now, time.perf_counter(), True
            time.sleep(0.0005)
        return first, time.perf_counter(), False


class _Window:
    """An open window on a counter backend: energy so far plus the last counters seen. Reads
    happen under the window's lock, so a poll and the closing read never cross (a stale read
    applied after a newer one would look like a wrap)."""

    def __init__(self, backend: CounterBackend):
        self.backend = backend
        self.last, self.t0, self.aligned_start = backend.aligned_read()
        self.joules = 0.0
        self.closed = False
        self.lock = threading.Lock()

    def advance(self) -> None:
        with self.lock:
            if not self.closed:
                self._add(self.backend.read())

    def _add(self, counters: tuple) -> None:
        self.joules += self.backend.joules(self.last, counters)
        self.last = counters

    def close(self) -> Measurement:
        with self.lock:
            counters, t1, aligned_end = self.backend.aligned_read()
            self._add(counters)
            self.closed = True
        detail = {**self.backend.info(), "aligned": self.aligned_start and aligned_end}
        if self.joules == 0.0 and not self.backend.is_estimate:
            detail["warning"] = "the counter did not advance: window shorter than its update period"
        return Measurement(
            self.joules,
            t1 - self.t0,
            self.backend.source,
            self.backend.is_estimate,
            self.backend.assumption(),
            detail,
        )


# --- RAPL ---------------------------------------------------------------------------------


class RaplBackend(CounterBackend):
    """Package (and DRAM) energy of every CPU socket from Linux powercap RAPL zones."""

    source = "rapl"
    align = True
    poll_s = 30.0  # a 262 kJ counter at 500 W wraps after ~9 min; 30 s is well inside that

    def __init__(self, root: str = POWERCAP_ROOT, include_dram: bool = True):
        self.zones = _rapl_zones(root, include_dram)  # [(path, name, max_range_uj)]
        if not self.zones:
            raise BackendUnavailable(f"no RAPL package zones under {root}")
        self.read()  # fail now, with the reason, if energy_uj is not readable

    def read(self) -> tuple[int, ...]:
        return tuple(_read_int(os.path.join(path, "energy_uj")) for path, _, _ in self.zones)

    def joules(self, a: tuple, b: tuple) -> float:
        total = 0
        for (_, _, max_range), ua, ub in zip(self.zones, a, b, strict=True):
            # The counter restarts from 0 after max_energy_range_uj.
            total += ub - ua if ub >= ua else ub + max_range - ua
        return total * 1e-6

    def assumption(self) -> str:
        names = ", ".join(f"{os.path.basename(p)} ({n})" for p, n, _ in self.zones)
        return (
            f"Linux RAPL counters {names}: whole-socket energy, including other processes "
            "running at the same time"
        )

    def info(self) -> dict[str, Any]:
        return {
            "zones": [
                {"zone": os.path.basename(p), "name": n, "max_energy_range_uj": m} for p, n, m in self.zones
            ]
        }


def _rapl_zones(root: str, include_dram: bool) -> list[tuple[str, str, int]]:
    """Top-level package zones `intel-rapl:N` and, optionally, their `dram` subzones. `psys`
    (whole platform) and `intel-rapl-mmio` (a second view of the package) are left out, as
    either would count the package twice."""
    zones = []
    for path in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
        base = os.path.basename(path)
        name = _read_text(os.path.join(path, "name"), default="")
        top = re.fullmatch(r"intel-rapl:\d+", base) is not None
        if (top and name.startswith("package")) or (include_dram and not top and name == "dram"):
            max_range = _read_int(os.path.join(path, "max_energy_range_uj"))
            zones.append((path, name, max_range))
    return zones


def _read_text(path: str, default: str | None = None) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except PermissionError as e:
        raise BackendUnavailable(
            f"{path} is not readable (root-only on kernels patched for CVE-2020-8694; "
            f"`sudo chmod o+r {path}` to allow it)"
        ) from e
    except OSError as e:
        if default is not None:
            return default
        raise BackendUnavailable(f"cannot read {path}: {e}") from e


def _read_int(path: str) -> int:
    text = _read_text(path)
    try:
        return int(text)
    except ValueError as e:
        raise BackendUnavailable(f"{path} holds {text!r}, not an integer") from e


# --- NVML ---------------------------------------------------------------------------------


class NvmlBackend(CounterBackend):
    """Every visible NVIDIA GPU's total-energy counter (mJ since the driver loaded)."""

    source = "nvml"
    align = True  # the counter updates every 20-100 ms

    def __init__(self, nvml: Any):
        try:
            nvml.nvmlInit()
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            self.names = [str(nvml.nvmlDeviceGetName(h)) for h in self.handles]
        except Exception as e:  # NVMLError: no driver, no device
            raise BackendUnavailable(f"NVML could not start: {e}") from e
        if not self.handles:
            raise BackendUnavailable("NVML sees no GPU")
        self.nvml = nvml
        try:
            self.read()
        except Exception as e:  # NVMLError_NotSupported before Volta
            raise BackendUnavailable(f"the GPU has no total-energy counter (needs Volta+): {e}") from e

    def read(self) -> tuple[int, ...]:
        return tuple(int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles)

    def joules(self, a: tuple, b: tuple) -> float:
        return sum(ub - ua for ua, ub in zip(a, b, strict=True)) * 1e-3

    def assumption(self) -> str:
        return f"NVML total-energy counter of {len(self.handles)} GPU(s) ({', '.join(self.names)})"

    def info(self) -> dict[str, Any]:
        return {"gpus": self.names}


class SumBackend(CounterBackend):
    """Several measured backends read together (GPU + CPU); energy is their sum."""

    def __init__(self, parts: list[CounterBackend]):
        self.parts = parts
        self.source = "+".join(p.source for p in parts)
        self.align = any(p.align for p in parts)
        polls = [p.poll_s for p in parts if p.poll_s]
        self.poll_s = min(polls) if polls else None

    def read(self) -> tuple:
        return tuple(p.read() for p in self.parts)

    def changed(self, first: tuple, now: tuple) -> bool:
        # Align to the slowest counter: every aligned part must have updated.
        return all(p.changed(f, n) for p, f, n in zip(self.parts, first, now, strict=True) if p.align)

    def joules(self, a: tuple, b: tuple) -> float:
        return sum(p.joules(x, y) for p, x, y in zip(self.parts, a, b, strict=True))

    def assumption(self) -> str:
        return "; ".join(p.assumption() for p in self.parts)

    def info(self) -> dict[str, Any]:
        return {p.source: p.info() for p in self.parts}


# --- estimate -----------------------------------------------------------------------------


class CpuTimeEstimate(CounterBackend):
    """CPU-seconds of this process (all threads, ns resolution) plus its children × watts per
    hardware thread. Not a measurement: it sees neither idle power nor memory nor other
    processes, and the power per thread is an assumption."""

    source = "estimate"
    is_estimate = True

    def __init__(self, watts_per_thread: float | None = None, why: list[str] | None = None):
        env = os.environ.get("GAN_JAX_WATTS_PER_THREAD")
        self.watts_per_thread = float(watts_per_thread or env or CODECARBON_WATTS_PER_THREAD)
        if not self.watts_per_thread > 0:
            raise ValueError(f"watts per thread must be > 0, got {self.watts_per_thread}")
        self.why = why or []

    def read(self) -> tuple[float]:
        return (cpu_seconds(),)

    def joules(self, a: tuple, b: tuple) -> float:
        return (b[0] - a[0]) * self.watts_per_thread

    def assumption(self) -> str:
        text = (
            f"ESTIMATE, not a measurement: energy = CPU-seconds of this process and its "
            f"children x {self.watts_per_thread:g} W per hardware thread (CodeCarbon's fallback "
            f"for a CPU whose TDP it does not know is 4 W per thread; its process mode charges "
            f"TDP x the process's share of CPU time). Leaves out idle/base power, memory, other "
            f"processes and any accelerator."
        )
        return text + (f" No energy counter was readable: {'; '.join(self.why)}." if self.why else "")

    def info(self) -> dict[str, Any]:
        return {
            "watts_per_thread": self.watts_per_thread,
            "assumption_short": f"CPU time x {self.watts_per_thread:g} W/thread",
        }


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) and of its children, live or
    reaped. Live children (the prediction server) are found with psutil where installed."""
    total = time.process_time()
    t = os.times()
    total += t.children_user + t.children_system  # children already waited for
    with contextlib.suppress(ImportError):
        import psutil

        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += _process_cpu_seconds(child)
    return total


def _process_cpu_seconds(process) -> float:
    """A process's CPU time in ns resolution from Linux's per-process CPU clock (clockid
    ((~pid) << 3) | 2, what clock_getcpuclockid returns); psutil's clock ticks (10 ms) made
    windows of a few requests jump by 10 ms of CPU time."""
    try:
        return time.clock_gettime(((~process.pid) << 3) | 2)
    except (OSError, OverflowError, AttributeError):
        c = process.cpu_times()
        return c.user + c.system


# --- Zeus ---------------------------------------------------------------------------------


class ZeusBackend:
    """Zeus's `ZeusMonitor` windows (it handles NVML and RAPL quirks itself)."""

    source = "zeus"
    is_estimate = False

    def __init__(self, monitor_cls: Any):
        try:
            self.monitor = monitor_cls()
        except Exception as e:
            raise BackendUnavailable(f"ZeusMonitor could not start: {e}") from e
        self._count = 0

    def begin(self) -> str:
        self._count += 1
        name = f"gan_jax-{self._count}"
        self.monitor.begin_window(name)
        return name

    def end(self, name: str) -> Measurement:
        m = self.monitor.end_window(name)
        detail = {
            k: getattr(m, k)
            for k in ("gpu_energy", "cpu_energy", "dram_energy")
            if getattr(m, k, None) is not None
        }
        return Measurement(
            float(m.total_energy),
            float(m.time),
            "zeus",
            False,
            "Zeus ZeusMonitor window (NVML GPU energy, RAPL CPU energy)",
            detail,
        )


# --- selection and the meter ----------------------------------------------------------------

_AUTO = object()


def _import_or_none(name: str, attr: str | None = None) -> Any:
    try:
        module = __import__(name, fromlist=[attr] if attr else [])
        return getattr(module, attr) if attr else module
    except ImportError:
        return None


def select_backend(
    prefer: str = "auto",
    *,
    sysfs_root: str = POWERCAP_ROOT,
    nvml: Any = _AUTO,
    zeus: Any = _AUTO,
    watts_per_thread: float | None = None,
) -> tuple[Any, list[str]]:
    """The best readable backend and why the better ones were skipped.

    Args:
      prefer: "auto", or one of "zeus", "nvml", "rapl", "estimate" to require that backend
        (a required measured backend that is unreadable raises `BackendUnavailable`).
      sysfs_root: where the powercap tree is (tests pass a fake tree).
      nvml: the pynvml module, or None for "not installed" (default: import pynvml).
      zeus: the ZeusMonitor class, or None (default: import it from zeus.monitor).
    """
    if prefer not in ("auto", "zeus", "nvml", "rapl", "estimate"):
        raise ValueError(f"unknown energy backend {prefer!r}")
    nvml = _import_or_none("pynvml") if nvml is _AUTO else nvml
    skipped: list[str] = []
    if prefer in ("auto", "zeus"):
        zeus = _import_or_none("zeus.monitor", "ZeusMonitor") if zeus is _AUTO else zeus
        found = _try(lambda: ZeusBackend(zeus) if zeus else _missing("zeus"), "zeus", skipped)
        if found or prefer == "zeus":
            return _required(found, skipped), skipped
    measured = []
    if prefer in ("auto", "nvml"):
        found = _try(lambda: NvmlBackend(nvml) if nvml else _missing("pynvml"), "nvml", skipped)
        measured += [found] if found else []
    if prefer in ("auto", "rapl"):
        found = _try(lambda: RaplBackend(sysfs_root), "rapl", skipped)
        measured += [found] if found else []
    if prefer in ("nvml", "rapl"):
        return _required(measured[0] if measured else None, skipped), skipped
    if len(measured) == 1:
        return measured[0], skipped
    if measured:
        return SumBackend(measured), skipped
    return CpuTimeEstimate(watts_per_thread, why=skipped), skipped


def _missing(name: str):
    raise BackendUnavailable(f"{name} is not installed")


def _try(make, name: str, skipped: list[str]):
    try:
        return make()
    except BackendUnavailable as e:
        skipped.append(f"{name}: {e}")
        return None


def _required(backend, skipped: list[str]):
    if backend is None:
        raise BackendUnavailable("; ".join(skipped))
    return backend


class EnergyMeter:
    """Measures windows of work with one backend chosen once.

        meter = EnergyMeter()          # or EnergyMeter("rapl"), EnergyMeter(sysfs_root=...)
        with meter.window() as w:
            work()
        print(w.result.joules, w.result.source, w.result.is_estimate)

    or `token = meter.begin(); ...; m = meter.end(token)`. Windows may overlap.
    """

    def __init__(self, prefer: str = "auto", **kwargs: Any):
        self.backend, self.skipped = select_backend(prefer, **kwargs)
        self._open: set[_Window] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def source(self) -> str:
        return self.backend.source

    @property
    def is_estimate(self) -> bool:
        return self.backend.is_estimate

    def describe(self) -> dict[str, Any]:
        """Which backend, why the others were skipped, and the assumption (for results JSON)."""
        assumption = (
            self.backend.assumption()
            if callable(getattr(self.backend, "assumption", None))
            else "Zeus ZeusMonitor"
        )
        return {
            "source": self.source,
            "is_estimate": self.is_estimate,
            "assumption": assumption,
            "skipped": list(self.skipped),
        }

    def begin(self) -> Any:
        if isinstance(self.backend, ZeusBackend):
            return self.backend.begin()
        window = _Window(self.backend)
        self._open.add(window)
        self._start_poller()
        return window

    def end(self, token: Any) -> Measurement:
        if isinstance(self.backend, ZeusBackend):
            m = self.backend.end(token)
        else:
            self._open.discard(token)
            m = token.close()
        if self.skipped:
            m.detail.setdefault("skipped", list(self.skipped))
        return m

    @contextlib.contextmanager
    def window(self):
        """Context manager; the yielded object's `.result` is set on exit."""
        holder = _Result()
        token = self.begin()
        try:
            yield holder
        finally:
            holder.result = self.end(token)

    def poll(self) -> None:
        """Reads the counters once into every open window (the poller does this on its own)."""
        for window in list(self._open):
            window.advance()

    def _start_poller(self) -> None:
        period = getattr(self.backend, "poll_s", None)
        if period is None or (self._poller is not None and self._poller.is_alive()):
            return

        def loop():
            while not self._stop.wait(period) and self._open:
                self.poll()

        self._poller = threading.Thread(target=loop, name="energy-poll", daemon=True)
        self._poller.start()


class _Result:
    result: Measurement | None = None
