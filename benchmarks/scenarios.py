"""The benchmark scenarios, each measured against a reference in the same run.

1. start-up: `budget --help` vs `python -c pass`; `budget add-expense` vs the import floor
2. round trips: statements each command sends on the wire (counting proxy before PgBouncer)
3. transfers/s with 8 workers vs pgbench running the same SQL at the same concurrency
4. one-month report on 1,000,000 rows vs psql running the same aggregation; 1M vs 10k rows
5. import rows/s vs `psql \\copy` of the same file; peak memory
6. peak RSS of report, verify (one year) and export
7. `budget db copy` SQLite → PostgreSQL vs `budget import` of the same rows; peak RSS of
   copy, backup and restore
8. add-expense, report and transfer as a person's role: row-level security on vs off

A scenario whose command does not exist yet is reported as "not available", never faked.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from benchmarks import data
from benchmarks.harness import (
    BUDGET,
    MISSED,
    PASS,
    PYTHON,
    Row,
    alternate,
    child_env,
    ratio_row,
    run,
    unavailable,
)
from budget_tracker.migrate import upgrade
from tests.wireproxy import WireProxy

FLOOR_IMPORTS = "import sqlalchemy.orm, psycopg2, click, dotenv"
HEAVY_MODULES = ("sqlalchemy", "psycopg2", "alembic")


@dataclass(frozen=True)
class Config:
    quick: bool
    workdir: Path
    runs: int  # timed runs of each side for start-up and report figures
    history_rows: int
    small_rows: int
    import_rows: int
    transfer_seconds: float
    transfer_runs: int
    workers: int = 8
    copy_runs: int = 0  # runs of each side in scenarios 5 and 7 (0: 2 quick, 3 full)

    @classmethod
    def make(cls, *, quick: bool, workdir: Path, runs: int = 0) -> Config:
        if quick:
            return cls(quick, workdir, 7, 100_000, 10_000, 50_000, 4.0, 2, copy_runs=runs)
        return cls(quick, workdir, 25, 1_000_000, 10_000, 1_000_000, 15.0, 3, copy_runs=runs)

    @property
    def bulk_runs(self) -> int:
        """Runs of each side of the import and copy scenarios (minutes each at full size)."""
        return self.copy_runs or (2 if self.quick else 3)


def commands() -> set[str]:
    """The top-level commands this checkout has (the CLI imports no database code)."""
    from budget_tracker.cli import main

    return set(main.commands)


def budget(*args: str) -> list[str]:
    return [BUDGET, *args]


def timed(args: list[str], env: dict[str, str]) -> Callable[[], float]:
    return lambda: run(args, env=env).seconds


def imported_heavy(args: list[str], env: dict[str, str]) -> list[str]:
    """Which heavy top-level packages a process imports (`python -X importtime`)."""
    result = run([PYTHON, "-X", "importtime", *args], env=env)
    names = set()
    for line in result.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            names.add(module.split(".")[0])
    return sorted(names & set(HEAVY_MODULES))


# -- 1. start-up -------------------------------------------------------------------------


def startup(cfg: Config) -> list[Row]:
    rows: list[Row] = []
    env = child_env()
    heavy = imported_heavy([BUDGET, "--help"], env)
    product, reference = alternate(
        timed(budget("--help"), env), timed([PYTHON, "-c", "pass"], env), runs=cfg.runs
    )
    rows.append(
        ratio_row(
            "1 start-up",
            "`budget --help` wall time",
            product,
            reference,
            unit="s",
            reference_name="python -c pass",
            note=f"heavy modules imported by `budget --help`: {', '.join(heavy) or 'none'}",
        ).judge(at_most=3)
    )
    if heavy:
        rows[-1].status = MISSED

    if "add-expense" not in commands():
        rows.append(unavailable("1 start-up", "`budget add-expense` wall time", "no command"))
        return rows
    floor = timed([PYTHON, "-c", FLOOR_IMPORTS], env)
    name = data.history_pg("bench_startup", 1_000)
    try:
        pg = child_env(data.pg_env(name))
        args = budget("add-expense", "12.50", "Category 01", "bench", "--user", data.user_email(1))
        heavy = imported_heavy(args, pg)
        product, reference = alternate(timed(args, pg), floor, runs=cfg.runs)
        rows.append(
            ratio_row(
                "1 start-up",
                "`budget add-expense` wall time, PostgreSQL via PgBouncer",
                product,
                reference,
                unit="s",
                reference_name="python -c 'import sqlalchemy.orm, psycopg2, click, dotenv'",
                note="modules of those imported: " + (", ".join(heavy) or "none"),
            ).judge(at_most=1.25)
        )
        if "alembic" in heavy:
            rows[-1].status = MISSED
    finally:
        data.drop_pg_database(name)
    path = data.history_sqlite(cfg.workdir / "startup.db", 1_000)
    sqlite = child_env({"DATABASE_URL": f"sqlite:///{path}"})
    args = budget("add-expense", "12.50", "Category 01", "bench", "--user", data.user_email(1))
    product, reference = alternate(timed(args, sqlite), floor, runs=cfg.runs)
    rows.append(
        ratio_row(
            "1 start-up",
            "`budget add-expense` wall time, SQLite (informative)",
            product,
            reference,
            unit="s",
            reference_name="same floor",
        )
    )
    return rows


# -- 2. round trips ----------------------------------------------------------------------


@dataclass(frozen=True)
class WireCase:
    command: str
    args: tuple[str, ...]
    target: int | None
    why: str = ""


def wire_cases() -> list[WireCase]:
    user = ("--user", data.user_email(1))
    month = data.REPORT_MONTH
    months = ("--month", month)
    return [
        WireCase("add-expense", ("add-expense", "12.50", "Category 01", "Lunch", *user), 4),
        WireCase("report", ("report", "--month", month, *user), 4),
        WireCase(
            "transfer",
            ("transfer", "1.00", "--from", "Category 01", "--to", "Category 02", *user, *months),
            4,
            "the rules' minimum: BEGIN, lock both categories, then the availability check "
            "and INSERT in one guarded INSERT … SELECT … WHERE (a fresh READ COMMITTED "
            "snapshot after the lock), COMMIT",
        ),
        WireCase("expenses", ("expenses", "--month", month, "--limit", "20", *user), None),
        WireCase("verify", ("verify", "--month", month, *user), None),
        WireCase("export", ("export", "--from", f"{month}-01", "--to", f"{month}-30", *user), None),
    ]


def round_trips(cfg: Config) -> list[Row]:
    rows: list[Row] = []
    available = commands()
    name = data.history_pg("bench_wire", 10_000)
    try:
        with WireProxy(*_pooled_host_port()) as proxy:
            rows.append(_probe_row(proxy, name))
            env = child_env(data.pg_env(name, pooled_port=proxy.port))
            for case in wire_cases():
                metric = f"`budget {case.command}` statements on the wire"
                if case.command not in available:
                    rows.append(unavailable("2 round trips", metric, "no command"))
                    continue
                run(budget(*case.args), env=env)  # first run may do one-time work
                proxy.reset()
                run(budget(*case.args), env=env)
                log = _settled(proxy)
                count = len(log.statements)
                row = Row(
                    "2 round trips",
                    metric,
                    float(count),
                    None,
                    "statements",
                    "",
                    note=f"{log.connections} connection(s); "
                    + (case.why + "; " if case.why else "")
                    + "sent: "
                    + " · ".join(_short(sql) for sql in log.sql),
                )
                if case.target is not None:
                    row.target = f"≤ {case.target}"
                    row.status = PASS if count <= case.target else MISSED
                rows.append(row)
    finally:
        data.drop_pg_database(name)
    return rows


def _probe_row(proxy: WireProxy, database: str) -> Row:
    """Statements a fresh engine sends before its first one: ours vs SQLAlchemy's default."""
    from sqlalchemy import text

    from budget_tracker.config import load_settings
    from budget_tracker.engine import create_app_engine

    counts = []
    for lean in (True, False):
        settings = load_settings(data.pg_env(database, pooled_port=proxy.port))
        engine = create_app_engine(settings, lean_connect=lean)
        proxy.reset()
        with engine.begin() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        counts.append(len(_settled(proxy).statements) - 3)  # minus BEGIN, select 1, COMMIT
    return Row(
        "2 round trips",
        "statements a new connection sends before the first one",
        float(counts[0]),
        float(counts[1]),
        "statements",
        "SQLAlchemy psycopg2 default, hstore off",
        target="as few as safe",
        status=PASS if counts[0] == 0 else MISSED,
        note="version and standard_conforming_strings come from the connection's startup "
        "parameters; tests/test_wire.py proves the answers equal the probes'",
    )


def _pooled_host_port() -> tuple[str, int]:
    url = data.pg_url(data.PG_POOLED, "postgres")
    return url.host or "127.0.0.1", url.port or 6432


def _settled(proxy: WireProxy) -> Any:
    time.sleep(0.1)
    return proxy.snapshot()


def _short(sql: str) -> str:
    words = " ".join(sql.split())
    return words if len(words) <= 48 else words[:45] + "…"


# -- 3. transfers under concurrency ------------------------------------------------------

TRANSFER_CATEGORIES = 4
TRANSFER_MONTH = dt.date(2021, 6, 1)


def transfers(cfg: Config) -> list[Row]:
    metric = f"transfers/s, {cfg.workers} workers via PgBouncer"
    if "transfer" not in commands():
        return [unavailable("3 transfers", metric, "no command", "≥ 0.6")]
    name = data.transfers_pg("bench_transfers", TRANSFER_CATEGORIES)
    try:
        scripts = _pgbench_scripts(name)
        product: list[float] = []
        reference: list[float] = []
        for _ in range(cfg.transfer_runs):
            data.admin("TRUNCATE budget_transfers RESTART IDENTITY", database=name)
            product.append(_product_transfers(cfg, name))
            data.admin("TRUNCATE budget_transfers RESTART IDENTITY", database=name)
            reference.append(_pgbench_transfers(cfg, name, scripts))
        return [
            ratio_row(
                "3 transfers",
                metric,
                product,
                reference,
                unit="tx/s",
                reference_name=f"pgbench -c {cfg.workers}, the same SQL",
                note=f"{cfg.transfer_runs} runs of {cfg.transfer_seconds:g} s each side; "
                "pgbench replays the exact statements the service sends (captured on the "
                f"wire for each ordered pair of {TRANSFER_CATEGORIES} categories); the product "
                "runs `transfer_budget` through `Database.run` in 8 processes, as the CLI does",
            ).judge(at_least=0.6)
        ]
    finally:
        data.drop_pg_database(name)


def _transfer_pairs() -> list[tuple[str, str]]:
    names = [data.category_name(i + 1) for i in range(TRANSFER_CATEGORIES)]
    return [(a, b) for a in names for b in names if a != b]


def _transfer_once(database: Any, source: str, target: str, key: str) -> None:
    from budget_tracker.services.transfers import transfer_budget

    database.run(
        lambda session: transfer_budget(
            session,
            user_email=None,
            amount=Decimal("0.01"),
            source=source,
            target=target,
            month=TRANSFER_MONTH,
            note="",
            allow_overdraw=False,
            idempotency_key=key,
        ),
        write=True,
    )


def _pgbench_scripts(database: str) -> list[Path]:
    """One pgbench script per ordered pair: the service's own statements, captured."""
    from budget_tracker.config import load_settings
    from budget_tracker.unit_of_work import Database

    scripts = []
    with WireProxy(*_pooled_host_port()) as proxy:
        db = Database(load_settings(data.pg_env(database, pooled_port=proxy.port)))
        try:
            for number, (source, target) in enumerate(_transfer_pairs()):
                key = f"capturekey{number:04d}"
                proxy.reset()
                _transfer_once(db, source, target, key)
                sql = [s for s in _settled(proxy).sql if s.strip().upper() != "SELECT 1"]
                assert sql[0].startswith("BEGIN") and sql[-1] == "COMMIT", sql
                body = [statement.replace(key, "pgb-:client_id-:k") for statement in sql]
                path = data_dir(database) / f"transfer_{number:02d}.sql"
                path.write_text(
                    "\\set k random(1, 9000000000000000)\n"
                    + "".join(" ".join(s.split()) + ";\n" for s in body)
                )
                scripts.append(path)
        finally:
            db.close()
    return scripts


def data_dir(database: str) -> Path:
    path = Path("/tmp") / f"{database}_scripts"
    path.mkdir(exist_ok=True)
    return path


def _pgbench_transfers(cfg: Config, database: str, scripts: list[Path]) -> float:
    args = ["pgbench", "-n", "-M", "simple", "-c", str(cfg.workers), "-j", "2"]
    args += ["-T", str(int(cfg.transfer_seconds)), "--max-tries", "20"]
    for script in scripts:
        args += ["-f", f"{script}@1"]
    result = run(args, env=child_env(data.libpq_env(database)))
    text = result.stdout.decode()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    if match is None:
        raise RuntimeError(f"pgbench gave no tps: {text[-500:]}")
    return float(match.group(1))


def _product_transfers(cfg: Config, database: str) -> float:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    env = data.pg_env(database)
    workers = [
        context.Process(
            target=_transfer_worker,
            args=(env, start, cfg.transfer_seconds, seed, results),
        )
        for seed in range(cfg.workers)
    ]
    for worker in workers:
        worker.start()
    ready = [results.get(timeout=120) for _ in workers]
    assert all(r == "ready" for r in ready), ready
    start.set()
    counts = [results.get(timeout=cfg.transfer_seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    errors = [c for c in counts if isinstance(c, str)]
    if errors:
        raise RuntimeError(f"transfer workers failed: {errors[:3]}")
    return float(sum(counts)) / cfg.transfer_seconds


def _transfer_worker(
    env: dict[str, str], start: Any, seconds: float, seed: int, results: Any
) -> None:
    """One worker process: its own engine and pool, transfers until the time is up."""
    try:
        from budget_tracker.config import load_settings
        from budget_tracker.unit_of_work import Database

        database = Database(load_settings(env))
        pairs = _transfer_pairs()
        rng = random.Random(seed)
        _transfer_once(database, *pairs[seed % len(pairs)], uuid.uuid4().hex)  # connect, warm
        results.put("ready")
        start.wait()
        deadline = time.perf_counter() + seconds
        done = 0
        while time.perf_counter() < deadline:
            _transfer_once(database, *rng.choice(pairs), uuid.uuid4().hex)
            done += 1
        database.close()
        results.put(done)
    except Exception as exc:  # reported by the parent, which fails the scenario
        results.put(f"{type(exc).__name__}: {exc}")


# -- 4. reports on history ---------------------------------------------------------------


@dataclass
class History:
    big: str
    small: str
    sqlite_big: Path
    sqlite_small: Path


def make_history(cfg: Config) -> History:
    return History(
        big=data.history_pg("bench_history_big", cfg.history_rows),
        small=data.history_pg("bench_history_small", cfg.small_rows),
        sqlite_big=data.history_sqlite(cfg.workdir / "history_big.db", cfg.history_rows),
        sqlite_small=data.history_sqlite(cfg.workdir / "history_small.db", cfg.small_rows),
    )


def drop_history(history: History) -> None:
    data.drop_pg_database(history.big)
    data.drop_pg_database(history.small)


def report_args() -> list[str]:
    return budget("report", "--month", data.REPORT_MONTH, "--user", data.user_email(1))


def rollover_report_args() -> list[str]:
    return budget(
        "report", "--month", data.ROLLOVER_MONTH, "--user", data.user_email(data.ROLLOVER_USER)
    )


def reports(cfg: Config, history: History) -> list[Row]:
    scenario = "4 reports"
    rows_label = f"{cfg.history_rows:,}"
    if "report" not in commands():
        return [
            unavailable(scenario, f"one-month report on {rows_label} rows vs psql", "no command"),
            unavailable(scenario, f"report on {rows_label} vs 10,000 rows", "no command"),
            unavailable(scenario, f"rollover report on {rows_label} vs 10,000 rows", "no command"),
        ]
    big = child_env(data.pg_env(history.big))
    small = child_env(data.pg_env(history.small))
    aggregation = _captured_aggregation(history.big)
    psql = [
        "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", aggregation,
    ]  # fmt: skip
    p, r = alternate(
        timed(report_args(), big),
        timed(psql, child_env(data.libpq_env(history.big))),
        runs=cfg.runs,
    )
    out: list[Row] = [
        ratio_row(
            scenario,
            f"one-month `budget report` on {rows_label} rows",
            p,
            r,
            unit="s",
            reference_name="psql running the report's own aggregation SQL",
            note="both through PgBouncer, process start-up included on both sides; psql runs "
            "the aggregation statement(s) captured from the report on the wire",
        ).judge(at_most=1.5)
    ]
    p, r = alternate(timed(report_args(), big), timed(report_args(), small), runs=cfg.runs)
    out.append(
        ratio_row(
            scenario,
            f"one-month report, {rows_label} vs {cfg.small_rows:,} rows (PostgreSQL)",
            p,
            r,
            unit="s",
            reference_name=f"same report on {cfg.small_rows:,} rows",
        ).judge(at_most=1.5)
    )
    p, r = alternate(
        timed(rollover_report_args(), big), timed(rollover_report_args(), small), runs=cfg.runs
    )
    out.append(
        ratio_row(
            scenario,
            f"one-month report ten years in, every category rolling over since the start, "
            f"{rows_label} vs {cfg.small_rows:,} rows (PostgreSQL)",
            p,
            r,
            unit="s",
            reference_name=f"same report on {cfg.small_rows:,} rows",
            note=f"{data.ROLLOVER_MONTH} carries 119 months of leftovers of 20 categories",
        ).judge(at_most=1.5)
    )
    lite_big = child_env({"DATABASE_URL": f"sqlite:///{history.sqlite_big}"})
    lite_small = child_env({"DATABASE_URL": f"sqlite:///{history.sqlite_small}"})
    p, r = alternate(
        timed(report_args(), lite_big), timed(report_args(), lite_small), runs=cfg.runs
    )
    out.append(
        ratio_row(
            scenario,
            f"one-month report, {rows_label} vs {cfg.small_rows:,} rows (SQLite, informative)",
            p,
            r,
            unit="s",
            reference_name=f"same report on {cfg.small_rows:,} rows",
        )
    )
    return out


def _captured_aggregation(database: str) -> str:
    """The statements of one report that read expenses, exactly as sent on the wire."""
    with WireProxy(*_pooled_host_port()) as proxy:
        env = child_env(data.pg_env(database, pooled_port=proxy.port))
        run(report_args(), env=env)
        statements = [s for s in _settled(proxy).sql if "expenses" in s]
    if not statements:
        raise RuntimeError("the report sent no statement reading expenses")
    return ";\n".join(statements)


# -- 5. import ---------------------------------------------------------------------------


def imports(cfg: Config) -> list[Row]:
    scenario = "5 import"
    label = f"{cfg.import_rows:,}-row CSV"
    if "import" not in commands():
        return [
            unavailable(scenario, f"import rows/s, {label}", "no command", "≥ 0.5"),
            unavailable(scenario, "import peak RSS", "no command", "< 150 MB"),
        ]
    name = data.fresh_pg_database("bench_import")
    try:
        csv_path = data.import_csv(cfg.workdir / "import.csv", cfg.import_rows)
        env = child_env(data.pg_env(name))
        args = budget("import", str(csv_path), "--create-categories")
        data.admin(
            "CREATE TABLE copy_target (date date, amount numeric(12, 2), category text, "
            "description text)",
            database=name,
        )
        copy = [
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
            f"\\copy copy_target FROM '{csv_path}' WITH (FORMAT csv, HEADER true)",
        ]  # fmt: skip
        libpq = child_env(data.libpq_env(name))
        product: list[float] = []
        reference: list[float] = []
        rss: list[float] = []
        runs = cfg.bulk_runs
        for _ in range(runs):
            data.admin("TRUNCATE expenses RESTART IDENTITY", database=name)
            result = run(args, env=env, measure_rss=True)
            product.append(cfg.import_rows / result.seconds)
            rss.append(result.max_rss_mb)
            count = _scalar(name, "SELECT count(*) FROM expenses")
            if count != cfg.import_rows:
                raise RuntimeError(f"import stored {count} rows, expected {cfg.import_rows}")
            data.admin("TRUNCATE copy_target", database=name)
            reference.append(cfg.import_rows / run(copy, env=libpq).seconds)
        floor = _floor_rss()
        return [
            ratio_row(
                scenario,
                f"import rows/s, {label}, via PgBouncer",
                product,
                reference,
                unit="rows/s",
                reference_name="psql \\copy of the same file into a plain table",
                note=f"{runs} runs each; each product run imports into an emptied expenses "
                "table (categories kept)",
            ).judge(at_least=0.5),
            _rss_row(scenario, f"import peak RSS, {label}", rss, floor, below=150),
            *_sqlite_import(cfg, csv_path, args, product, floor),
            *_bank_import(cfg, env, name, floor),
        ]
    finally:
        data.drop_pg_database(name)


def _sqlite_import(
    cfg: Config, csv_path: Path, args: list[str], pg_rates: list[float], floor: float
) -> list[Row]:
    """The same import into a migrated SQLite file: rows/s (beside the PostgreSQL
    import's, informative) and peak RSS."""
    scenario = "5 import"
    label = f"{cfg.import_rows:,}-row CSV"
    rates: list[float] = []
    rss: list[float] = []
    path = cfg.workdir / "import.db"
    for _ in range(cfg.bulk_runs):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        upgrade(URL.create("sqlite+pysqlite", database=str(path)))
        result = run(args, env=child_env({"DATABASE_URL": f"sqlite:///{path}"}), measure_rss=True)
        rates.append(cfg.import_rows / result.seconds)
        rss.append(result.max_rss_mb)
    return [
        ratio_row(
            scenario,
            f"import rows/s, {label}, SQLite",
            rates,
            pg_rates,
            unit="rows/s",
            reference_name="the same import via PgBouncer, above",
            note=f"{cfg.bulk_runs} runs, each into a freshly migrated SQLite file",
        ),
        _rss_row(scenario, f"import peak RSS, {label}, SQLite", rss, floor, below=150),
    ]


def _bank_import(cfg: Config, env: dict[str, str], database: str, floor: float) -> list[Row]:
    """A bank statement (preamble, `;`, cp1252, decimal commas) through the statement
    reader: rows/s against the export-format fast path's, and peak RSS."""
    scenario = "5 import"
    rows = max(cfg.import_rows // 4, 1_000)
    label = f"{rows:,}-row bank CSV"
    bank_path = data.bank_csv(cfg.workdir / "bank.csv", rows)
    plain_path = data.import_csv(cfg.workdir / "plain.csv", rows)
    bank = budget("import", str(bank_path), "--category", "Bank", "--create-categories")
    plain = budget("import", str(plain_path), "--create-categories")
    product: list[float] = []
    reference: list[float] = []
    rss: list[float] = []
    for _ in range(cfg.bulk_runs):
        data.admin("TRUNCATE expenses RESTART IDENTITY", database=database)
        result = run(bank, env=env, measure_rss=True)
        product.append(rows / result.seconds)
        rss.append(result.max_rss_mb)
        data.admin("TRUNCATE expenses RESTART IDENTITY", database=database)
        reference.append(rows / run(plain, env=env).seconds)
    return [
        ratio_row(
            scenario,
            f"import rows/s, {label}, via PgBouncer",
            product,
            reference,
            unit="rows/s",
            reference_name="the same number of rows in the export format (the fast path)",
            note="two passes (dates and signs from every row, then the rows); 1 in 50 is a "
            "credit and skipped",
        ),
        _rss_row(scenario, f"import peak RSS, {label}", rss, floor, below=150),
    ]


def _scalar(database: str, sql: str) -> Any:
    import psycopg2

    connection = psycopg2.connect(data.dsn(data.pg_url(data.PG_DIRECT, database)))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        connection.close()


# -- 6. memory ---------------------------------------------------------------------------


def _floor_rss() -> float:
    samples = [
        run([PYTHON, "-c", FLOOR_IMPORTS], env=child_env(), measure_rss=True).max_rss_mb
        for _ in range(3)
    ]
    return statistics.median(samples)


def _rss_row(
    scenario: str, metric: str, samples: list[float], floor: float, *, below: float | None
) -> Row:
    value = statistics.median(samples)
    row = Row(
        scenario,
        metric,
        value,
        floor,
        "MB",
        "python with the floor imports",
        ratio=value / floor,
        samples={"product": samples, "reference": [floor]},
    )
    if below is not None:
        row.target = f"< {below:g} MB"
        row.status = PASS if value < below else MISSED
    return row


def memory(cfg: Config, history: History) -> list[Row]:
    scenario = "6 memory"
    rows_label = f"{cfg.history_rows:,} rows"
    available = commands()
    floor = _floor_rss()
    env = child_env(data.pg_env(history.big))
    user = ("--user", data.user_email(1))
    year = int(data.REPORT_MONTH[:4])
    cases: list[tuple[str, list[str], float | None]] = [
        ("report", budget("report", "--month", data.REPORT_MONTH, *user), None),
        (
            "verify",
            budget("verify", "--from", f"{year}-01", "--to", f"{year}-12", *user),
            100,
        ),
        ("export", budget("export", *user, "-o", str(cfg.workdir / "export.csv")), None),
    ]
    out: list[Row] = []
    for command, args, below in cases:
        label = "one year" if command == "verify" else "one month" if command == "report" else ""
        metric = f"`budget {command}` peak RSS, {rows_label}" + (f" ({label})" if label else "")
        if command not in available:
            out.append(unavailable(scenario, metric, "no command"))
            continue
        samples = [run(args, env=env, measure_rss=True).max_rss_mb for _ in range(3)]
        out.append(_rss_row(scenario, metric, samples, floor, below=below))
    if "export" in available:
        small = child_env(data.pg_env(history.small))
        args = budget("export", *user, "-o", str(cfg.workdir / "export_small.csv"))
        big_rss = [run(cases[2][1], env=env, measure_rss=True).max_rss_mb for _ in range(3)]
        small_rss = [run(args, env=small, measure_rss=True).max_rss_mb for _ in range(3)]
        exported = sum(1 for _ in (cfg.workdir / "export.csv").open()) - 1
        out.append(
            ratio_row(
                scenario,
                f"`budget export` peak RSS, {rows_label} vs {cfg.small_rows:,} rows",
                big_rss,
                small_rss,
                unit="MB",
                reference_name=f"export on {cfg.small_rows:,} rows",
                note=f"one user's expenses ({exported:,} rows exported from the big database); "
                "streaming means flat: our criterion ≤ 1.25",
            ).judge(at_most=1.25)
        )
    return out


# -- 7. copy, backup and restore of a whole budget ---------------------------------------


def copies(cfg: Config) -> list[Row]:
    """`budget db copy` SQLite → PostgreSQL through PgBouncer vs `budget import` of the same
    expenses (≤ 2×), and the peak RSS of copy, backup and restore (< 150 MB each)."""
    scenario = "7 copy"
    rows_label = f"{cfg.import_rows:,} expenses"
    available = commands()
    if "backup" not in available or "import" not in available:
        return [unavailable(scenario, f"`budget db copy` of {rows_label}", "no command", "≤ 2")]
    source = data.history_sqlite(cfg.workdir / "copy_source.db", cfg.import_rows)
    csv_path = data.import_csv(cfg.workdir / "copy_import.csv", cfg.import_rows)
    copy_target, import_target = "bench_copy_target", "bench_copy_import"
    runs = cfg.bulk_runs
    copy_seconds: list[float] = []
    import_seconds: list[float] = []
    copy_rss: list[float] = []
    backup_rss: list[float] = []
    restore_rss: list[float] = []
    restore_seconds: list[float] = []
    backup_file = cfg.workdir / "budget.jsonl.gz"
    try:
        for _ in range(runs):
            # The copy migrates its empty target itself (inside its one transaction).
            data.admin(
                f'DROP DATABASE IF EXISTS "{copy_target}" WITH (FORCE)',
                f'CREATE DATABASE "{copy_target}"',
            )
            pg = data.pg_env(copy_target)
            args = budget(
                "db", "copy", "--from", f"sqlite:///{source}",
                "--to", pg["DATABASE_URL"], "--to-direct", pg["DATABASE_URL_UNPOOLED"],
            )  # fmt: skip
            result = run(args, env=child_env(), measure_rss=True)
            copy_seconds.append(result.seconds)
            copy_rss.append(result.max_rss_mb)
            count = _scalar(copy_target, "SELECT count(*) FROM expenses")
            if count != cfg.import_rows:
                raise RuntimeError(f"copy stored {count} expenses, expected {cfg.import_rows}")
            data.fresh_pg_database(import_target)
            imported = run(
                budget("import", str(csv_path), "--create-categories"),
                env=child_env(data.pg_env(import_target)),
            )
            import_seconds.append(imported.seconds)
        lite = child_env({"DATABASE_URL": f"sqlite:///{source}"})
        for _ in range(runs):
            backup_rss.append(
                run(budget("backup", str(backup_file)), env=lite, measure_rss=True).max_rss_mb
            )
            data.admin(
                f'DROP DATABASE IF EXISTS "{copy_target}" WITH (FORCE)',
                f'CREATE DATABASE "{copy_target}"',
            )
            restored = run(
                budget("restore", str(backup_file)),
                env=child_env(data.pg_env(copy_target)),
                measure_rss=True,
            )
            restore_rss.append(restored.max_rss_mb)
            restore_seconds.append(restored.seconds)
    finally:
        data.drop_pg_database(copy_target)
        data.drop_pg_database(import_target)
    floor = _floor_rss()
    return [
        ratio_row(
            scenario,
            f"`budget db copy` SQLite → PostgreSQL via PgBouncer, {rows_label}",
            copy_seconds,
            import_seconds,
            unit="s",
            reference_name=f"`budget import` of the same {rows_label} (CSV) via PgBouncer",
            note="the copy includes migrating the empty target, 3 users × 20 categories, and "
            "its verification (checksums of every table read back through PgBouncer, and "
            "every month's report of every user on both sides); rows are written over the "
            "direct URL in the migration's transaction",
        ).judge(at_most=2),
        _rss_row(scenario, f"`budget db copy` peak RSS, {rows_label}", copy_rss, floor, below=150),
        _rss_row(scenario, f"`budget backup` peak RSS, {rows_label}", backup_rss, floor, below=150),
        _rss_row(
            scenario, f"`budget restore` peak RSS, {rows_label}", restore_rss, floor, below=150
        ),
        ratio_row(
            scenario,
            f"`budget restore` of a gzip'd backup into PostgreSQL, {rows_label}",
            restore_seconds,
            import_seconds,
            unit="s",
            reference_name=f"`budget import` of the same {rows_label}",
        ),
    ]


# -- 8. row-level security ---------------------------------------------------------------

MEMBER_ROLE = "budget_alice"
"""A person's role (not an owner, not a superuser) that scripts/services.sh creates and
PgBouncer lets log in; user 1 of the history is linked to it."""
POLICY_TABLES = (
    "users",
    "categories",
    "expenses",
    "budget_transfers",
    "category_budgets",
    "import_profiles",
    "income",
    "budget_shares",
    "unit_outcomes",
)
"""Every table with row-level security (revisions 0011 and 0013)."""


def policy_cases() -> list[tuple[str, Callable[[], list[str]]]]:
    user = ("--user", data.user_email(1))
    month = data.REPORT_MONTH
    return [
        ("add-expense", lambda: budget("add-expense", "12.50", "Category 01", "Lunch",
                                       "--date", f"{month}-15", *user)),
        ("report", lambda: budget("report", "--month", month, *user)),
        ("transfer", lambda: budget("transfer", "0.01", "--from", "Category 01", "--to",
                                    "Category 02", "--month", month, "--allow-overdraw", *user)),
    ]  # fmt: skip


def _member_env(database: str) -> dict[str, str]:
    """The member role's URLs: its own login (same test password), through PgBouncer."""
    return {
        "DATABASE_URL": data.dsn(data.pg_url(data.PG_POOLED, database).set(username=MEMBER_ROLE)),
        "DATABASE_URL_UNPOOLED": data.dsn(
            data.pg_url(data.PG_DIRECT, database).set(username=MEMBER_ROLE)
        ),
    }


def _member_database(name: str, rows: int, *, policies: bool) -> str:
    """The history, user 1 linked to the member role and `db grant`ed; with `policies`
    false, row-level security disabled on every table (the same data and plans else)."""
    data.history_pg(name, rows)
    run(budget("db", "grant", MEMBER_ROLE), env=child_env(data.pg_env(name)))
    statements = [f"UPDATE users SET role_name = '{MEMBER_ROLE}' WHERE id = 1"]
    if not policies:
        statements += [f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY" for table in POLICY_TABLES]
    data.admin(*statements, "ANALYZE", database=name)
    return name


def _in_process(env: dict[str, str], command: str, count: int) -> Callable[[], float]:
    """Seconds per call of the command's service, `count` calls in one warm process (no
    process start-up to hide a difference in the statements' own time)."""
    from functools import partial

    from budget_tracker.config import load_settings
    from budget_tracker.services.budgets import resolve_period
    from budget_tracker.services.expenses import add_expense
    from budget_tracker.services.reports import category_report
    from budget_tracker.services.transfers import transfer_budget
    from budget_tracker.unit_of_work import Database

    email = data.user_email(1)
    month = dt.date.fromisoformat(f"{data.REPORT_MONTH}-01")
    work: Callable[..., Any]
    if command == "add-expense":
        work = partial(add_expense, user_email=email, category="Category 01",
                       amount=Decimal("12.50"), spent_on=month.replace(day=15),
                       description="Lunch", idempotency_key=None)  # fmt: skip
    elif command == "report":
        period = resolve_period(today=month, month=month, from_month=None, to_month=None)
        work = partial(category_report, user_email=email, period=period)
    else:
        work = partial(transfer_budget, user_email=email, source="Category 01",
                       target="Category 02", amount=Decimal("0.01"), month=month,
                       allow_overdraw=True)  # fmt: skip

    def measure() -> float:
        database = Database(load_settings(env))
        try:
            database.run(work, write=command != "report")  # connect outside the timing
            start = time.perf_counter()
            for _ in range(count):
                database.run(work, write=command != "report")
            return (time.perf_counter() - start) / count
        finally:
            database.close()

    return measure


def policies(cfg: Config) -> list[Row]:
    """add-expense, report and transfer as a person's role: with row-level security vs the
    same database with it disabled (≤ 1.1×), as processes and in one warm process."""
    scenario = "8 row-level security"
    rows_label = f"{cfg.history_rows:,} rows"
    on, off = "bench_rls_on", "bench_rls_off"
    out: list[Row] = []
    try:
        _member_database(on, cfg.history_rows, policies=True)
        _member_database(off, cfg.history_rows, policies=False)
        env_on, env_off = _member_env(on), _member_env(off)
        calls = 50 if cfg.quick else 200
        for command, args in policy_cases():
            p, r = alternate(
                timed(args(), child_env(env_on)), timed(args(), child_env(env_off)), runs=cfg.runs
            )
            out.append(
                ratio_row(
                    scenario,
                    f"`budget {command}` as a person's role, {rows_label}",
                    p,
                    r,
                    unit="s",
                    reference_name="the same with row-level security disabled",
                    note="process start-up included on both sides; both through PgBouncer",
                ).judge(at_most=1.1)
            )
            p, r = alternate(
                _in_process(env_on, command, calls),
                _in_process(env_off, command, calls),
                runs=5,
            )
            out.append(
                ratio_row(
                    scenario,
                    f"{command} service per call in a warm process, {rows_label}",
                    p,
                    r,
                    unit="s",
                    reference_name="the same with row-level security disabled",
                    note=f"median of 5 alternating blocks of {calls} calls through "
                    "`Database.run`, connection pool warm",
                ).judge(at_most=1.1)
            )
    finally:
        data.drop_pg_database(on)
        data.drop_pg_database(off)
    return out
