"""CSV and other delimited text: the delimiter, the header line after any preamble, and
which column holds which field, all found from the content.

The layout is decided from the first lines (up to SNIFF_LINES): for each delimiter, the
header is the first line whose field count the following lines keep. Headers are
matched against the names banks use in several languages; `--columns` overrides any of
them and `--skip N`/`--no-header` override the header search.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from budget_tracker.errors import InvalidInput, option
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source

DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 60
MAX_FIELD_LINES = 20
"""A quoted field may span this many lines; past it a closing quote is surely missing."""
MAX_FIELD_CHARS = 10_000


# fmt: off
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "date": (
        "date", "booking date", "transaction date", "posting date", "posted date", "post date",
        "trans. date", "trans date", "started date", "completed date", "buchungstag",
        "buchungsdatum", "datum", "date opération", "date operation", "fecha", "data",
        "boekingsdatum", "transactiedatum", "bokföringsdag", "bokforingsdag", "bokføringsdato",
        "dato", "päivämäärä", "date de comptabilisation", "fecha operación", "data operazione",
        "data contabile", "datums", "datum boeking", "transaction date/time", "datetime",
        "valutadatum", "value date", "valuta", "data operacji", "data księgowania",
        "data transakcji", "datum zaúčtování", "datum provedení",
    ),
    "amount": (
        "amount", "betrag", "bedrag", "montant", "importe", "importo", "belopp", "beløb",
        "beløp", "summa", "kwota", "transaction amount", "value", "umsatz", "gross", "net",
        "transaktionsbelopp", "kwota transakcji", "částka", "iznos", "összeg", "amount (eur)",
        "amount (gbp)", "amount (usd)", "betrag (eur)", "bedrag (eur)", "montant (eur)",
        "billing amount", "amount (total)",
    ),
    "outflow": (
        "debit", "debit amount", "withdrawal", "withdrawals", "withdrawal (-)", "money out",
        "paid out", "out", "soll", "afschrijving", "uitgaven", "débit", "debe", "cargo",
        "addebiti", "uttag", "charge", "charges", "outflow", "spent",
    ),
    "inflow": (
        "credit", "credit amount", "deposit", "deposits", "deposit (+)", "money in", "paid in",
        "in", "haben", "bijschrijving", "inkomsten", "crédit", "haber", "abono", "accrediti",
        "insättning", "inflow", "received",
    ),
    "direction": (
        "af bij", "af/bij", "debit/credit", "credit/debit", "soll/haben", "d/c", "c/d", "dr/cr",
        "cr/dr", "d/k", "debet/kredit", "debets/kredīts", "credit debit indicator",
        "cdtdbtind", "debit credit", "s/h", "transaction type", "balance impact",
        "debit or credit", "credit or debit",
    ),
    "category": ("category", "kategorie", "categorie", "catégorie", "categoría", "kategoria"),
    "id": ("transaction id", "transactionid", "id", "fitid"),
    "status": ("status", "state", "info", "umsatzart"),
}
# The description: the first of these columns that is not empty in a row (the payee), and
# the first memo-like column after it. Earlier names win.
PAYEE_COLUMNS = (
    "transaction ref2", "payee", "payee name", "name", "merchant", "merchant name",
    "naam tegenpartij",
    "naam / omschrijving", "name / description", "partnername", "partner name",
    "zahlungsempfänger*in", "zahlungsempfänger", "beguenstigter/zahlungspflichtiger",
    "begünstigter/zahlungspflichtiger", "auftraggeber/empfänger", "empfänger",
    "auftraggeber / begünstigter", "auftraggeber/begünstigter",
    "saņēmējs/maksātājs", "counter party", "counterparty name", "beneficiary", "description",
    "transaction description", "transaction details", "narrative", "libellé", "libelle",
    "concepto", "descrizione", "beskrivning", "tekst", "text", "omschrijving", "to", "title",
    "transaktion", "rubrik", "details", "note", "nazwa kontrahenta", "kontrahent",
    "opis operacji", "název protiúčtu",
)
MEMO_COLUMNS = (
    "transaction ref1", "memo", "verwendungszweck", "purpose", "omschrijving-1",
    "mededelingen", "reference",
    "notes", "informācija saņēmējam", "remittance information", "communication",
    "meddelande", "buchungstext", "description", "notes / reference", "tytuł",
)
# fmt: on
_LOOKUP = {name: role for role, names in _SYNONYMS.items() for name in names}
_PAYEE_RANK = {name: rank for rank, name in enumerate(PAYEE_COLUMNS)}
_MEMO_RANK = {name: rank for rank, name in enumerate(MEMO_COLUMNS)}
_SECTION = re.compile(r"(?i)^(pending|posted|cleared|booked|completed)\b[^,;]*$")
_PAREN = re.compile(r"\s*\([^)]*\)\s*$")
_DATA_LIKE = re.compile(r"^[\s\-+()£$€]*\d[\d\s.,/:'-]*(?:CR|DR)?[\s€$£]*$")


@dataclass(frozen=True)
class LayoutOptions:
    delimiter: str | None = None
    skip: int | None = None
    no_header: bool = False
    columns: Mapping[str, str] = field(default_factory=dict)
    """Role -> the header (or 1-based position with no header) that holds it."""
    description: str | None = None
    """A template such as `{Payee} {Memo}`, or None for the payee and memo columns."""


DescriptionSpec = tuple[tuple[int, ...], tuple[int, ...]] | str
"""(payee columns, memo columns), each best first; or a template over column names."""


@dataclass(frozen=True)
class Layout:
    delimiter: str
    header_line: int
    """1-based line of the header; 0 when the file has none."""
    header: tuple[str, ...]
    roles: dict[str, int]
    description: DescriptionSpec
    data_from: int
    """Lines before the first data row (the preamble and the header)."""


def _normal(cell: str) -> str:
    # mBank writes its headers as "#Data operacji".
    cleaned = cell.replace("\ufeff", "").strip().strip('"').lstrip("#")
    return " ".join(cleaned.casefold().split())


def _role(cell: str) -> str | None:
    name = _normal(cell)
    return _LOOKUP.get(name) or _LOOKUP.get(_PAREN.sub("", name))


def column_role(cell: str) -> str | None:
    """The field a header cell names (`Buchungstag` -> date), or None."""
    return _role(cell)


def _sniff_lines(text: str) -> list[str]:
    return text.splitlines()[:SNIFF_LINES]


def _count(line: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return 0


def _header_index(lines: Sequence[str], delimiter: str) -> tuple[int, int]:
    """(index of the header line, how many lines after it keep its field count)."""
    counts = [_count(line, delimiter) if line.strip() else -1 for line in lines]
    best = (0, -1)
    for index, count in enumerate(counts):
        if count < 2:
            continue
        following = [c for c in counts[index + 1 :] if c != -1]
        kept = sum(1 for c in following if abs(c - count) <= 1 and c >= 2)
        if kept >= min(2, len(following)) and kept * 2 >= len(following) - 1:
            return index, kept
    return best


def _header_by_names(lines: Sequence[str], delimiters: Sequence[str]) -> tuple[str, int] | None:
    """The delimiter and line whose cells name a date and an amount column, if one does."""
    best: tuple[int, int, int, str] | None = None
    for index, line in enumerate(lines):
        for delimiter in delimiters:
            if delimiter not in line:
                continue
            roles = {_role(cell) for cell in next(csv.reader([line], delimiter=delimiter), [])}
            money = roles & {"amount", "outflow", "inflow"}
            if "date" not in roles or not money:
                continue
            score = (len(roles - {None}), -index, line.count(delimiter), delimiter)
            if best is None or score[:3] > best[:3]:
                best = score
    return None if best is None else (best[3], -best[1])


def detect_layout(name: str, text: str, options: LayoutOptions) -> Layout:
    lines = _sniff_lines(text)
    named = None
    if options.skip is None and not options.no_header:
        delimiters = (options.delimiter,) if options.delimiter else DELIMITERS
        named = _header_by_names(lines, delimiters)
    if named is not None:
        delimiter, index = named
    elif options.delimiter is not None:
        delimiter = options.delimiter
        index, _ = _header_index(lines, delimiter)
    else:
        scored = []
        for candidate in DELIMITERS:
            index, kept = _header_index(lines, candidate)
            scored.append((kept, _count(lines[index], candidate) if lines else 0, candidate, index))
        kept, _, delimiter, index = max(scored, key=lambda s: (s[0], s[1]))
        if kept < 0:
            delimiter, index = ",", 0
    if options.skip is not None:
        index = options.skip
    if index >= len(lines):
        raise InvalidInput(f"{name} has no header line (it has {len(lines)} lines)")
    cells = next(csv.reader([lines[index]], delimiter=delimiter), [])
    if options.no_header:
        header = tuple(str(at + 1) for at in range(len(cells)))
        header_line = 0
        data_from = index
    else:
        header = tuple(cell.strip().replace("\ufeff", "") for cell in cells)
        header_line = index + 1
        data_from = index + 1
        looks_like_data = sum(1 for cell in cells if _DATA_LIKE.match(cell)) >= 2
        if looks_like_data and not options.columns:
            raise InvalidInput(
                f"{name}: line {header_line} looks like data, not a header; for a file "
                "without a header use "
                + option("no_header")
                + " with "
                + option("columns")
                + " date=1,amount=2,description=3 (positions)"
            )
    roles, description = _map_roles(name, header, header_line, delimiter, options)
    return Layout(delimiter, header_line, header, roles, description, data_from)


def _map_roles(
    name: str,
    header: Sequence[str],
    header_line: int,
    delimiter: str,
    options: LayoutOptions,
) -> tuple[dict[str, int], DescriptionSpec]:
    by_name: dict[str, int] = {}
    for at, cell in enumerate(header):
        by_name.setdefault(_normal(cell), at)
    roles: dict[str, int] = {}
    for at, cell in enumerate(header):
        role = _role(cell)
        if role is not None and role not in roles:
            roles[role] = at
    normal = [_normal(cell) for cell in header]
    payees = sorted(
        (at for at, cell in enumerate(normal) if cell in _PAYEE_RANK),
        key=lambda at: _PAYEE_RANK[normal[at]],
    )
    memos = sorted(
        (at for at, cell in enumerate(normal) if cell in _MEMO_RANK),
        key=lambda at: _MEMO_RANK[normal[at]],
    )
    missing_mapped: list[str] = []
    for role, title in options.columns.items():
        mapped = by_name.get(_normal(title))
        if mapped is None and title.isdigit() and 0 < int(title) <= len(header):
            mapped = int(title) - 1
        if mapped is None:
            missing_mapped.append(f"{title!r} (for {role})")
            continue
        if role == "description":
            payees, memos = [mapped], []
        else:
            roles[role] = mapped
    if "amount" in options.columns:
        roles.pop("outflow", None)
        roles.pop("inflow", None)
    elif "outflow" in roles and "inflow" in roles and "amount" in roles:
        roles.pop("amount")  # split columns beside a signed total: the split is explicit
    if "amount" not in roles and ("outflow" in roles) != ("inflow" in roles):
        # A lone "Debit" or "Credit" column is not a split; it may be the direction.
        lone = roles.pop("outflow", roles.pop("inflow", -1))
        if lone >= 0:
            roles.setdefault("amount", lone)
    missing = []
    if "date" not in roles:
        missing.append("date")
    if "amount" not in roles and not ("outflow" in roles and "inflow" in roles):
        missing.append("amount (or outflow and inflow)")
    if missing or missing_mapped:
        where = f"line {header_line}" if header_line else "the first line"
        found = ", ".join(repr(cell) for cell in header)
        preamble = " after a preamble" if header_line > 1 else ""
        parts = []
        if missing_mapped:
            parts.append(f"has no column {', '.join(missing_mapped)}")
        if missing:
            parts.append(f"has no {' or '.join(missing)} column I recognise")
        shown = "tab" if delimiter == "\t" else delimiter
        raise InvalidInput(
            f"{name} {' and '.join(parts)} (the header is on {where}{preamble}, split on "
            f"{shown!r}: {found}); map them with "
            + option("columns")
            + ", e.g. "
            + option("columns")
            + " date=HEADER,amount=HEADER"
        )
    if options.description is not None and "{" in options.description:
        return roles, options.description
    if options.description is not None:
        column = by_name.get(_normal(options.description))
        if column is None:
            raise InvalidInput(f"{name} has no column {options.description!r} for the description")
        return roles, ((column,), ())
    return roles, (tuple(payees), tuple(memos))


def records(source: Source, encoding: str, layout: Layout) -> Iterator[Record]:
    """The file's data rows as Records (continuation lines joined)."""
    skip_to = layout.data_from
    source.stream.seek(0)
    text = io.TextIOWrapper(source.stream, encoding=encoding, errors="replace", newline="")
    try:
        yield from _rows(source.name, text, layout, skip_to)
    finally:
        text.detach()


def _rows(name: str, text: io.TextIOWrapper, layout: Layout, skip_to: int) -> Iterator[Record]:
    for _ in range(skip_to):
        text.readline()
    reader = csv.reader(text, delimiter=layout.delimiter, strict=True)
    roles = layout.roles
    header = layout.header
    width = len(header)
    pending: Record | None = None
    section = ""
    line_end = skip_to
    while True:
        start = line_end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInput(
                f"{name}: line {start}: the quoted field that opens there is not closed "
                f"properly ({exc}); nothing was imported"
            ) from exc
        line_end = skip_to + reader.line_num
        if line_end - start >= MAX_FIELD_LINES:
            raise InvalidInput(
                f"{name}: line {start}: a quoted field opens there and runs over "
                f"{line_end - start + 1} lines; is a closing quote missing? Nothing was imported"
            )
        filled = [value.strip() for value in row if value.strip()]
        if not filled:
            continue
        if len(filled) == 1 and _SECTION.match(filled[0]):
            # A section title such as "Pending Transactions": the rows below it are pending
            # until the next section.
            section = "pending" if filled[0].casefold().startswith("pending") else ""
            continue
        for value in row:
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidInput(
                    f"{name}: line {start}: a field is {len(value)} characters long; "
                    "nothing was imported"
                )
        if len(row) < width:
            row = row + [""] * (width - len(row))
        columns = {header[at] or str(at + 1): row[at].strip() for at in range(width)}

        def cell(role: str, row: list[str] = row) -> str:
            at = roles.get(role)
            return row[at].strip() if at is not None else ""

        record = Record(
            line=start,
            date=cell("date"),
            amount=cell("amount"),
            outflow=cell("outflow"),
            inflow=cell("inflow"),
            direction=cell("direction"),
            description=_description(layout.description, row, columns),
            category=cell("category"),
            bank_id=cell("id"),
            status=cell("status") or section,
            columns=columns,
        )
        money = record.amount or record.outflow or record.inflow
        if not record.date and not money and pending is not None and record.description:
            # A continuation line: the description of the row above goes on here.
            pending.description = f"{pending.description} {record.description}".strip()
            continue
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending


def _description(spec: DescriptionSpec, row: list[str], columns: dict[str, str]) -> str:
    if isinstance(spec, str):
        text = re.sub(r"\{([^}]*)\}", lambda match: columns.get(match.group(1), ""), spec)
        return " ".join(text.split())
    payees, memos = spec
    filled = [(at, row[at].strip()) for at in payees if at < len(row) and row[at].strip()]
    payee_at, payee = filled[0] if filled else (-1, "")
    memo = next(
        (
            row[at].strip()
            for at in memos
            if at != payee_at and at < len(row) and row[at].strip() not in ("", payee)
        ),
        "",
    )
    if not memo and not memos and len(filled) > 1:
        memo = filled[1][1]
    return " ".join(f"{payee} {memo}".split())
