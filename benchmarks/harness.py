"""Measuring: timed subprocess runs, peak memory, results and the table.

Every figure is a ratio against a reference measured in the same run, because absolute
times on a shared machine drift. Product and reference runs alternate, so drift hits
both sides alike, and the median of several runs is reported.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
BUDGET = str(VENV_BIN / "budget")
PYTHON = sys.executable
GNU_TIME = "/usr/bin/time"

PASS, MISSED, INFO, NOT_AVAILABLE = "pass", "MISSED", "info", "not available"


@dataclass
class Row:
    """One line of the table: the product's figure, the reference's, and their ratio."""

    scenario: str
    metric: str
    product: float | None
    reference: float | None
    unit: str
    reference_name: str
    ratio: float | None = None
    target: str = ""
    status: str = INFO
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    def judge(self, *, at_most: float | None = None, at_least: float | None = None) -> Row:
        """Set ratio-based status against a bound (the bound is written into `target`)."""
        if self.ratio is None:
            self.status = NOT_AVAILABLE
            return self
        if at_most is not None:
            self.target = f"≤ {at_most:g}"
            self.status = PASS if self.ratio <= at_most else MISSED
        if at_least is not None:
            self.target = f"≥ {at_least:g}"
            self.status = PASS if self.ratio >= at_least else MISSED
        return self


def ratio_row(
    scenario: str,
    metric: str,
    product: Sequence[float],
    reference: Sequence[float],
    *,
    unit: str,
    reference_name: str,
    note: str = "",
) -> Row:
    """A row from product and reference samples: medians, and median(product)/median(ref)."""
    p, r = statistics.median(product), statistics.median(reference)
    return Row(
        scenario=scenario,
        metric=metric,
        product=p,
        reference=r,
        unit=unit,
        reference_name=reference_name,
        ratio=p / r if r else None,
        note=note,
        samples={"product": list(product), "reference": list(reference)},
    )


def unavailable(scenario: str, metric: str, why: str, target: str = "") -> Row:
    return Row(scenario, metric, None, None, "", "", target=target, status=NOT_AVAILABLE, note=why)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for timed children: as an installed user has it.

    PYTHONDONTWRITEBYTECODE is dropped so that the warm-up runs leave compiled bytecode,
    as `pip install` does; without it every run would recompile the package from source.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name in ("DATABASE_URL", "DATABASE_URL_UNPOOLED", "BUDGET_USER", "BUDGET_DB_PATH"):
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    if extra:
        env.update(extra)
    return env


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: bytes
    stderr: bytes


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    check: bool = True,
    stdout_path: Path | None = None,
    measure_rss: bool = False,
) -> Run:
    """Run a process to completion: its wall time and, with `measure_rss`, its peak RSS.

    Output goes to files, not pipes, so nothing in this process paces the child. Peak RSS
    comes from GNU time (`%M`, wait4's ru_maxrss) run as a small intermediate parent:
    Linux carries the forking process's RSS high-water mark into the child's ru_maxrss,
    so measured directly from this (large) process every child would look as big as it.
    """
    rss_file = tempfile.NamedTemporaryFile(suffix=".rss", delete=False)  # noqa: SIM115
    rss_file.close()
    if measure_rss:
        args = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *args]
    with tempfile.TemporaryFile() as err_file, contextlib.ExitStack() as stack:
        out_file = (
            stack.enter_context(open(stdout_path, "wb"))
            if stdout_path
            else stack.enter_context(tempfile.TemporaryFile())
        )
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
        )
        _, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read()
        out = b""
        if not stdout_path:
            out_file.seek(0)
            out = out_file.read()
    rss_text = Path(rss_file.name).read_text().strip()
    Path(rss_file.name).unlink()
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:6])} exited {proc.returncode}: {err.decode(errors='replace')[-800:]}"
        )
    rss = float(rss_text.splitlines()[-1]) / 1024 if measure_rss and rss_text else float("nan")
    return Run(seconds, rss, proc.returncode, out, err)


def alternate(
    product: Callable[[], float],
    reference: Callable[[], float],
    *,
    runs: int,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Run product and reference in turn (ABAB…), after warm-up runs of each."""
    for _ in range(warmup):
        product()
        reference()
    p: list[float] = []
    r: list[float] = []
    for i in range(runs):
        if i % 2 == 0:
            p.append(product())
            r.append(reference())
        else:
            r.append(reference())
            p.append(product())
    return p, r


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit in ("rows/s", "tx/s"):
        return f"{value:,.0f} {unit}"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "statements":
        return f"{value:g}"
    return f"{value:g} {unit}".strip()


def table(rows: Sequence[Row]) -> str:
    """A Markdown table: readable in a terminal and pasteable into docs/benchmarks.md."""
    header = "| Scenario | Metric | Product | Reference | Ratio | Target | Result |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        reference = fmt(row.reference, row.unit)
        if row.reference_name:
            reference = f"{reference} ({row.reference_name})"
        lines.append(
            f"| {row.scenario} | {row.metric} | {fmt(row.product, row.unit)} | {reference} "
            f"| {ratio} | {row.target or '—'} | {row.status} |"
        )
    return "\n".join(lines)


def notes(rows: Sequence[Row]) -> str:
    return "\n".join(f"- {row.scenario} / {row.metric}: {row.note}" for row in rows if row.note)


def as_json(rows: Sequence[Row], meta: Mapping[str, Any]) -> dict[str, Any]:
    return {"meta": dict(meta), "rows": [asdict(row) for row in rows]}
