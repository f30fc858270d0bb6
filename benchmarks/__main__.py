"""`python -m benchmarks [--quick] [--json PATH] [--only NAME ...]`

Sets up its own `bench_*` databases on the local PostgreSQL (migrated over the direct
port, used through PgBouncer in transaction mode) and SQLite files, runs every scenario,
prints a table of medians and ratios, and writes the results as JSON
(default: benchmarks/results/<UTC time>[-quick].json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import scenarios
from benchmarks.harness import ROOT, Row, as_json, notes, table

SCENARIOS = (
    "startup",
    "wire",
    "transfers",
    "reports",
    "import",
    "memory",
    "copy",
    "policies",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, few runs (minutes)")
    parser.add_argument("--json", type=Path, help="write results here as well")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument(
        "--runs",
        type=int,
        default=0,
        help="runs of each side of the import and copy scenarios (default 3, --quick 2)",
    )
    args = parser.parse_args(argv)
    chosen = args.only or list(SCENARIOS)

    workdir = Path(tempfile.mkdtemp(prefix="budget-bench-"))
    cfg = scenarios.Config.make(quick=args.quick, workdir=workdir, runs=args.runs)
    meta = machine()
    meta.update(
        quick=args.quick,
        runs=cfg.bulk_runs,
        scenarios=chosen,
        started=_now(),
        load_before=os.getloadavg(),
    )
    rows: list[Row] = []
    started = time.perf_counter()

    def step(name: str, work: Callable[[], list[Row]]) -> None:
        if name not in chosen:
            return
        print(f"… {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows.extend(work())
        except Exception as exc:  # one broken scenario must not lose the others' figures
            traceback.print_exc()
            rows.append(failed(name, exc))
        print(f"  {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    try:
        step("startup", lambda: scenarios.startup(cfg))
        step("wire", lambda: scenarios.round_trips(cfg))
        step("transfers", lambda: scenarios.transfers(cfg))
        history = None
        if {"reports", "memory"} & set(chosen):
            print("… generating history", file=sys.stderr, flush=True)
            try:
                history = scenarios.make_history(cfg)
            except Exception as exc:
                traceback.print_exc()
                rows.append(failed("history", exc))
        try:
            if history is not None:
                step("reports", lambda: scenarios.reports(cfg, history))
            step("import", lambda: scenarios.imports(cfg))
            if history is not None:
                step("memory", lambda: scenarios.memory(cfg, history))
            step("copy", lambda: scenarios.copies(cfg))
            step("policies", lambda: scenarios.policies(cfg))
        finally:
            if history is not None:
                scenarios.drop_history(history)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    meta.update(seconds=round(time.perf_counter() - started), load_after=os.getloadavg())
    print(table(rows))
    if any(row.note for row in rows):
        print("\nNotes:\n" + notes(rows))
    result = as_json(rows, meta)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    default = ROOT / "benchmarks" / "results" / f"{stamp}{'-quick' if args.quick else ''}.json"
    for path in {default, *([args.json] if args.json else [])}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results written to {path}", file=sys.stderr)
    return 0


def failed(name: str, exc: Exception) -> Row:
    message = (str(exc).splitlines() or [""])[0][:300]
    return Row(
        name,
        "scenario failed",
        None,
        None,
        "",
        "",
        status="ERROR",
        note=f"{type(exc).__name__}: {message}",
    )


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, memory, and the versions of everything measured."""
    from importlib.metadata import version

    import psycopg2
    import sqlalchemy

    def out(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "unavailable"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    server = scenarios._scalar("postgres", "SELECT version()") if _pg_up() else "unreachable"
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "memory": out("free", "-h").splitlines()[1:2],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg2": psycopg2.__version__,
        "click": version("click"),
        "postgresql": server,
        "pgbouncer": out("pgbouncer", "--version").splitlines()[:1],
        "pgbench": out("pgbench", "--version"),
        "psql": out("psql", "--version"),
        "commit": out("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
    }


def _pg_up() -> bool:
    try:
        scenarios._scalar("postgres", "SELECT 1")
    except Exception:
        return False
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
