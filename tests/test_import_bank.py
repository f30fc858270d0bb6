"""`budget import` of the files banks export: formats, dialects, amounts, dates, skips."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles import amounts, dates
from budget_tracker.services.bankfiles.source import detect_format, open_source
from tests.conftest import Backend


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def expenses(backend: Backend) -> list[tuple[str, str, str, str]]:
    return [
        (str(spent_on), str(Decimal(cents) / 100), name, description)
        for spent_on, cents, name, description in backend.rows(
            "SELECT e.spent_on, e.amount, c.name, e.description FROM expenses e "
            "JOIN categories c ON c.id = e.category_id ORDER BY e.id"
        )
    ]


def ok(result: object) -> None:
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]


# --- amounts and dates (no database) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("£1,183.23", 118323),
        ("- $220.00", -22000),
        ("-$7,971.39", -797139),
        ("1.234,56 €", 123456),
        ("(19.47)", -1947),
        ("\u22125.00", -500),
        ("+12.00", 1200),
        ("12.50 CR", 1250),
        ("12.50 DR", -1250),
        ("12.50-", -1250),
        ("1'234.50", 123450),
        ("1 234,56", 123456),
        ("EUR -3,5", -350),
        ("-12.00 EUR", -1200),
    ],
)
def test_amounts_as_banks_write_them(text: str, cents: int) -> None:
    assert amounts.parse_amount(text) == cents


@pytest.mark.parametrize("text", ["abc", "1.2.3,4,5", "1.005", "", "--"])
def test_not_amounts(text: str) -> None:
    with pytest.raises(amounts.BadAmount):
        amounts.parse_amount(text, decimal_comma=False)


def test_date_order_is_decided_by_a_day_over_twelve() -> None:
    assert dates.infer_format(["01/02/2026", "13/02/2026"]) == "%d/%m/%Y"
    assert dates.infer_format(["01/02/2026", "02/13/2026"]) == "%m/%d/%Y"
    with pytest.raises(dates.DateProblem) as caught:
        dates.infer_format(["01/02/2026", "03/04/2026"])
    # The library names the option by its keyword; the command line says --date-format.
    assert str(caught.value).endswith("give date_format %d/%m/%Y or date_format %m/%d/%Y")


def test_timestamps_with_zones_are_their_booking_day() -> None:
    fmt = dates.infer_format(["2026-03-05T23:10:00+01:00", "2026-03-06 10:00:00"])
    assert dates.parse("2026-03-05T23:10:00+01:00", fmt).isoformat() == "2026-03-05"


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"OFXHEADER:100\r\nDATA:OFXSGML\r\n", "ofx"),
        (b'<?xml version="1.0"?>\n<?OFX OFXHEADER="200"?>\n<OFX>', "ofx"),
        (b"!Type:Bank\nD03/05/2026\n", "qif"),
        (
            b'<?xml version="1.0"?><Document '
            b'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">',
            "camt",
        ),
        (b":20:STARTUMS\n:25:1234\n:61:2603050305DR12,50N\n", "mt940"),
        (b"Date,Amount\n", "csv"),
    ],
)
def test_format_is_told_from_the_content(head: bytes, fmt: str) -> None:
    assert detect_format(head, "utf-8") == fmt


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04rest", "is an Excel workbook or another zip archive (save it as CSV first)"),
        (b"%PDF-1.7\n", "is a PDF document"),
        (b"\x00\x01\x02binary\x00", "is a binary file, not a bank statement"),
    ],
)
def test_files_we_do_not_read_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "statement.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=re.escape(f"statement.csv {message}")):
        open_source(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "<html><head><meta charset='utf-8'></head><body><table><tr><td>Datum</td>"
            "<td>Betrag</td></tr><tr><td>02.03.2026</td><td>-12,50</td></tr></table>",
            "is a web page (HTML), not a spreadsheet or a statement: open it in a spreadsheet "
            "program and save it as CSV",
        ),
        (
            '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook '
            'xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet/></Workbook>',
            "is an Excel 2003 XML workbook (save it as CSV first)",
        ),
    ],
    ids=["html", "excel-2003-xml"],
)
def test_spreadsheets_that_are_text_are_named(
    backend: Backend, tmp_path: Path, content: str, message: str
) -> None:
    path = write(tmp_path / "umsaetze.xls", content)
    result = backend.invoke(["import", str(path)])
    assert (result.exit_code, result.stderr) == (2, f"Error: umsaetze.xls {message}\n")


def test_dev_zero_is_refused_after_a_bounded_read() -> None:
    with pytest.raises(InvalidInput, match="binary file"):
        open_source("/dev/zero")


# --- CSV dialects, preambles, encodings ---------------------------------------------------

SPARKASSE = (
    '"Umsatzanzeige";"Girokonto"\n'
    '"Zeitraum:";"01.03.2026 - 31.03.2026"\n'
    "\n"
    '"Buchungstag";"Valutadatum";"Buchungstext";"Verwendungszweck";'
    '"Beguenstigter/Zahlungspflichtiger";"Betrag";"Waehrung";"Info"\n'
    '"03.03.2026";"03.03.2026";"KARTENZAHLUNG";"Einkauf";"REWE Markt";"-23,45";"EUR";'
    '"Umsatz gebucht"\n'
    '"14.03.2026";"14.03.2026";"LOHN";"Gehalt März";"ACME GmbH";"2.500,00";"EUR";'
    '"Umsatz gebucht"\n'
    '"15.03.2026";"15.03.2026";"UMBUCHUNG";"Sparen";"Ich selbst";"-100,00";"EUR";'
    '"Umsatz gebucht"\n'
    '"16.03.2026";"16.03.2026";"LASTSCHRIFT";"Strom";"Stadtwerke";"-1.234,50";"EUR";'
    '"Umsatz vorgemerkt"\n'
    '"17.03.2026";"17.03.2026";"KARTENZAHLUNG";"Café";"Bäckerei Müller";"-3,20";"EUR";'
    '"Umsatz gebucht"\n'
)


def test_european_csv_with_preamble_latin1_and_pending(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "umsatz.csv", SPARKASSE, "cp1252")
    result = backend.invoke(["import", str(path), "--category", "Food"])
    ok(result)
    assert expenses(backend) == [
        ("2026-03-03", "23.45", "Food", "REWE Markt Einkauf"),
        ("2026-03-15", "100", "Food", "Ich selbst Sparen"),
        ("2026-03-17", "3.2", "Food", "Bäckerei Müller Café"),
    ]
    lines = result.stderr.splitlines()
    assert (
        "umsatz.csv: read as CSV; the header is on line 4 after a preamble; the file is "
        "cp1252; negative amounts read as spending (bank style; --signs spending-positive for "
        "the other way round)." in lines
    )
    assert "Skipped 1 credit totalling 2500.00: money coming in is not spending." in lines
    assert "Skipped rows that are not spending: 1 pending." in lines


def test_rules_file_skips_transfers_and_categorises(backend: Backend, tmp_path: Path) -> None:
    ok(backend.invoke(["category", "add", "Home"]))
    rules = write(
        tmp_path / "sparkasse.toml",
        'fallback_category = "Food"\n\n'
        '[[skip_rows]]\nmatch = "umbuchung"\ncolumn = "Buchungstext"\n\n'
        '[[category_rules]]\nmatch = "stadtwerke|miete"\ncategory = "Home"\n\n'
        '[[category_rules]]\nmatch = "REWE"\ncategory = "Food"\n\n'
        # Also matches "REWE Markt": the first rule that matches wins.
        '[[category_rules]]\nmatch = "Markt"\ncategory = "Home"\n',
    )
    path = write(tmp_path / "umsatz.csv", SPARKASSE.replace("vorgemerkt", "gebucht"), "cp1252")
    result = backend.invoke(["import", str(path), "--rules", str(rules)])
    ok(result)
    assert expenses(backend) == [
        ("2026-03-03", "23.45", "Food", "REWE Markt Einkauf"),
        ("2026-03-16", "1234.5", "Home", "Stadtwerke Strom"),
        ("2026-03-17", "3.2", "Food", "Bäckerei Müller Café"),
    ]
    assert (
        "Skipped rows that are not spending: 1 matched a skip rule." in result.stderr.splitlines()
    )


def test_saved_profile_is_reused_listed_shown_and_deleted(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "umsatz.csv", SPARKASSE, "cp1252")
    ok(
        backend.invoke(
            [
                "import",
                str(path),
                "--category",
                "Food",
                "--description",
                "{Beguenstigter/Zahlungspflichtiger}",
                "--save-profile",
                "Sparkasse",
            ]
        )
    )
    assert [row[3] for row in expenses(backend)] == ["REWE Markt", "Ich selbst", "Bäckerei Müller"]
    listed = backend.invoke(["import-profile", "list"])
    assert listed.stdout == "Sparkasse\n"
    listed = backend.invoke(["import-profile", "list", "--format", "json"])
    assert json.loads(listed.stdout) == [{"name": "Sparkasse"}]
    listed = backend.invoke(["import-profile", "list", "--format", "csv"])
    assert listed.stdout == "name\nSparkasse\n"
    shown = backend.invoke(["import-profile", "show", "sparkasse"])
    assert shown.stdout == (
        "# budget import profile\n"
        'description = "{Beguenstigter/Zahlungspflichtiger}"\n'
        'category = "Food"\n'
    )
    again = backend.invoke(["import", str(path), "--profile", "Sparkasse"])
    ok(again)
    assert (
        again.stderr.splitlines()[-1] == "Imported umsatz.csv: 0 new, 3 already present (3 rows)."
    )
    ok(backend.invoke(["import-profile", "delete", "Sparkasse"]))
    missing = backend.invoke(["import", str(path), "--profile", "Sparkasse"])
    assert missing.exit_code == 1
    assert "no import profile named 'Sparkasse'" in missing.stderr


def test_a_profile_keeps_the_whole_layout(backend: Backend, tmp_path: Path) -> None:
    path = write(
        tmp_path / "pko.csv",
        "Wyciąg 03/2026\n02.03.2026;Żabka;-12,50\n05.03.2026;Biedronka;-30,00\n",
        encoding="cp1250",
    )
    layout = [
        "--encoding", "cp1250", "--delimiter", ";", "--skip", "1", "--no-header",
        "--columns", "date=1,description=2,amount=3", "--date-format", "%d.%m.%Y",
        "--decimal-comma", "--signs", "spending-negative", "--category", "Food",
    ]  # fmt: skip
    ok(backend.invoke(["import", str(path), *layout, "--save-profile", "PKO"]))
    assert backend.invoke(["import-profile", "show", "PKO"]).stdout == (
        "# budget import profile\n"
        'delimiter = ";"\n'
        'encoding = "cp1250"\n'
        "skip = 1\n"
        "no_header = true\n"
        'date_format = "%d.%m.%Y"\n'
        "decimal_comma = true\n"
        'signs = "spending-negative"\n'
        'category = "Food"\n'
        "\n"
        "[columns]\n"
        'date = "1"\n'
        'description = "2"\n'
        'amount = "3"\n'
    )
    later = write(
        tmp_path / "april.csv",
        "Wyciąg 04/2026\n05.03.2026;Biedronka;-30,00\n01.04.2026;Orlen;-150,00\n",
        encoding="cp1250",
    )
    result = backend.invoke(["import", str(later), "--profile", "PKO"])
    ok(result)
    assert result.stderr.splitlines()[-1] == (
        "Imported april.csv: 1 new, 1 already present (2 rows)."
    )
    assert expenses(backend) == [
        ("2026-03-02", "12.5", "Food", "Żabka"),
        ("2026-03-05", "30", "Food", "Biedronka"),
        ("2026-04-01", "150", "Food", "Orlen"),
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_delimiter_is_found(backend: Backend, tmp_path: Path, delimiter: str) -> None:
    rows = [["Date", "Description", "Amount"], ["2026-03-02", "Bus", "-2.50"]]
    text = "".join(delimiter.join(row) + "\n" for row in rows)
    ok(backend.invoke(["import", str(write(tmp_path / "a.txt", text)), "--category", "Transport"]))
    assert expenses(backend) == [("2026-03-02", "2.5", "Transport", "Bus")]


CARD = "Date,Description,Amount\n2026-03-04,Shop,28.40\n2026-03-05,Cafe,3.10\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (CARD, "every amount is positive, so the file does not show which way its signs go"),
        (
            CARD + "2026-03-18,PAYMENT - THANK YOU,-31.50\n",
            "2 of 3 amounts are positive, as on a card statement that writes purchases positive",
        ),
    ],
    ids=["all-positive", "mostly-positive"],
)
def test_a_file_that_leaves_its_signs_open_is_refused(
    backend: Backend, tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path / "card.csv", body)
    result = backend.invoke(["import", str(path), "--category", "Food"])
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "--signs spending-positive" in result.stderr
    assert expenses(backend) == []
    ok(backend.invoke(["import", str(path), "--category", "Food", "--signs", "spending-positive"]))
    assert expenses(backend) == [
        ("2026-03-04", "28.4", "Food", "Shop"),
        ("2026-03-05", "3.1", "Food", "Cafe"),
    ]


POLISH = (
    "Data operacji;Opis operacji;Kwota\n"
    "2026-03-02;Żabka Łódź zakupy spożywcze;-12,50\n"
    "2026-03-05;Biedronka Gdańsk;-30,00\n"
)


@pytest.mark.parametrize(
    ("forced", "named", "description"),
    [
        ((), "cp1250", "Żabka Łódź zakupy spożywcze"),
        (("--encoding", "cp1252"), "cp1252", "¯abka £ódŸ zakupy spo¿ywcze"),
    ],
    ids=["detected", "forced"],
)
def test_a_central_european_file_is_read_as_cp1250_and_says_so(
    backend: Backend, tmp_path: Path, forced: tuple[str, ...], named: str, description: str
) -> None:
    path = write(tmp_path / "pko.csv", POLISH, encoding="cp1250")
    result = backend.invoke(["import", str(path), "--category", "Food", *forced])
    ok(result)
    assert f"pko.csv: read as CSV; the file is {named}; " in result.stderr
    assert expenses(backend)[0] == ("2026-03-02", "12.5", "Food", description)


def test_skip_names_the_header_line_when_a_summary_table_comes_first(
    backend: Backend, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "two_tables.csv",
        "Date,Amount\n2026-03-31,1000.00\n\nDate,Description,Amount\n"
        "2026-03-02,Bus,-2.50\n2026-03-04,Lunch,-10.00\n",
    )
    refused = backend.invoke(["import", str(path), "--category", "Food"])
    assert (refused.exit_code, refused.stderr) == (
        2,
        "Error: two_tables.csv: line 4 is another header line ('Date' where a date belongs): "
        "if the table starts there, give --skip 3; nothing was imported\n",
    )
    ok(backend.invoke(["import", str(path), "--category", "Food", "--skip", "3"]))
    assert expenses(backend) == [
        ("2026-03-02", "2.5", "Food", "Bus"),
        ("2026-03-04", "10", "Food", "Lunch"),
    ]


def test_split_columns_utf16_and_ambiguous_dates(backend: Backend, tmp_path: Path) -> None:
    text = (
        "Date,Description,Money Out,Money In,Balance\n"
        "01/03/2026,Tesco,12.40,,100.00\n"
        "02/03/2026,Refund,,5.00,105.00\n"
    )
    path = tmp_path / "uk.csv"
    path.write_bytes(text.encode("utf-16"))
    refused = backend.invoke(["import", str(path), "--category", "Food"])
    assert refused.exit_code == 2
    assert refused.stderr == (
        "Error: uk.csv: the dates leave day and month open ('01/03/2026' could be 01 March "
        "2026 or 03 January 2026, and no day in the file is over 12): give --date-format "
        "%d/%m/%Y or --date-format %m/%d/%Y\n"
    )
    ok(backend.invoke(["import", str(path), "--category", "Food", "--date-format", "%d/%m/%Y"]))
    assert expenses(backend) == [("2026-03-01", "12.4", "Food", "Tesco")]


def test_direction_column_with_outflow_value(backend: Backend, tmp_path: Path) -> None:
    text = "Dato;Tekst;Beløb;D/K\n05.03.2026;Netto;45,00;D\n06.03.2026;Løn;100,00;K\n"
    result = backend.invoke(
        [
            "import",
            str(write(tmp_path / "dk.csv", text)),
            "--columns",
            "direction=D/K",
            "--outflow-value",
            "D",
            "--category",
            "Food",
        ]
    )
    ok(result)
    assert expenses(backend) == [("2026-03-05", "45", "Food", "Netto")]


def test_outflow_and_inflow_columns_named_by_the_user(backend: Backend, tmp_path: Path) -> None:
    text = (
        "Valuta;Empfänger;Lastschrift;Gutschrift\n"
        "05.03.2026;Netto;45,00;\n06.03.2026;Arbeitgeber;;2.100,00\n20.03.2026;Miete;1.250,00;\n"
    )
    path = write(tmp_path / "konto.csv", text)
    refused = backend.invoke(["import", str(path), "--category", "Food"])
    assert refused.exit_code == 2
    assert "has no amount (or outflow and inflow) column I recognise" in refused.stderr
    columns = "date=Valuta,outflow=Lastschrift,inflow=Gutschrift"
    ok(backend.invoke(["import", str(path), "--category", "Food", "--columns", columns]))
    assert expenses(backend) == [
        ("2026-03-05", "45", "Food", "Netto"),
        ("2026-03-20", "1250", "Food", "Miete"),
    ]


def test_bad_date_format_is_reported_once(backend: Backend, tmp_path: Path) -> None:
    text = "Date,Description,Amount\n" + "2026-03-01,x,-1.00\n" * 30
    result = backend.invoke(
        [
            "import",
            str(write(tmp_path / "a.csv", text)),
            "--date-format",
            "%d.%m.%Y",
            "--category",
            "Food",
        ]
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: a.csv: --date-format %d.%m.%Y does not read '2026-03-01' (1 of 1 dates in the "
        "file); nothing was imported\n",
    )


def test_all_missing_columns_are_named_at_once(backend: Backend, tmp_path: Path) -> None:
    text = "Wann,Was,Wieviel\n2026-03-01,x,1\n"
    result = backend.invoke(["import", str(write(tmp_path / "a.csv", text))])
    assert result.exit_code == 2
    assert "has no date or amount (or outflow and inflow) column I recognise" in result.stderr


def test_zero_and_balance_rows_are_skipped_and_continuations_joined(
    backend: Backend, tmp_path: Path
) -> None:
    text = (
        "Date,Description,Amount\n"
        "2026-03-01,Opening balance,\n"
        "2026-03-02,Card payment at,-4.00\n"
        ",the corner shop,\n"
        "2026-03-03,Fee waived,0.00\n"
        "Closing balance,,95.00\n"
    )
    result = backend.invoke(["import", str(write(tmp_path / "a.csv", text)), "--category", "Food"])
    ok(result)
    assert expenses(backend) == [("2026-03-02", "4", "Food", "Card payment at the corner shop")]
    assert (
        "Skipped rows that are not spending: 2 balance or summary line, 1 zero amount."
        in result.stderr.splitlines()
    )


def test_credits_income_records_credits_as_income_once(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "statement.ofx", OFX_SGML)
    result = backend.invoke(["import", str(path), "--credits", "income", "--category", "Food"])
    ok(result)
    assert (
        "Recorded 1 credit totalling 100.00 as income: 1 new, 0 already present."
        in result.stderr.splitlines()
    )
    assert backend.rows("SELECT amount, source, received_on FROM income") == [
        (10000, "Payroll", backend.rows("SELECT received_on FROM income")[0][0])
    ]
    assert str(backend.scalar("SELECT received_on FROM income")) == "2026-03-06"
    again = backend.invoke(["import", str(path), "--credits", "income", "--category", "Food"])
    ok(again)
    assert (
        "Recorded 1 credit totalling 100.00 as income: 0 new, 1 already present."
        in again.stderr.splitlines()
    )
    assert backend.scalar("SELECT count(*) FROM income") == 1
    assert backend.scalar("SELECT count(*) FROM expenses") == 2


def test_a_statement_of_many_credits_records_every_one_as_income(
    backend: Backend, tmp_path: Path
) -> None:
    """More credits than one statement's parameters can hold on SQLite (six a row)."""
    credits = 45_000
    lines = ["Date,Description,Amount"]
    lines += [
        f"2026-03-{1 + i % 28:02d},Refund {i},{1 + i % 500}.{i % 100:02d}" for i in range(credits)
    ]
    lines += ["2026-03-02,Corner shop,-4.00"]
    path = write(tmp_path / "refunds.csv", "\n".join(lines) + "\n")
    args = ["import", str(path), "--credits", "income", "--category", "Food"]
    args += ["--signs", "spending-negative"]
    ok(backend.invoke(args))
    assert backend.scalar("SELECT count(*) FROM income") == credits
    assert backend.scalar("SELECT count(*) FROM expenses") == 1
    again = backend.invoke(args)
    ok(again)
    assert backend.scalar("SELECT count(*) FROM income") == credits
    assert f"0 new, {credits:,} already present." in again.stderr or (
        f"0 new, {credits} already present." in again.stderr
    ), again.stderr


def test_dry_run_previews_rows_range_and_total(backend: Backend, tmp_path: Path) -> None:
    text = (
        "Date,Description,Amount\n2026-03-01,Bus,-2.50\n2026-03-02,Card check,0.00\n"
        "2026-03-03,Refund,4.00\n2026-03-04,Lunch,-10.00\n"
    )
    before_first = backend.invoke(["export"])
    ok(before_first)
    before = backend.snapshot()
    result = backend.invoke(
        ["import", str(write(tmp_path / "a.csv", text)), "--category", "Food", "--dry-run"]
    )
    ok(result)
    assert result.stdout == (
        "First 2 rows as they would be stored:\n"
        "  2026-03-01          2.50  Food                  Bus\n"
        "  2026-03-04         10.00  Food                  Lunch\n"
        "Dates 2026-03-01 to 2026-03-04; total 12.50.\n"
    )
    assert result.stderr.splitlines()[-4:] == [
        "Skipped 1 credit totalling 4.00: money coming in is not spending.",
        "  2026-03-03          4.00  Refund",
        "Skipped rows that are not spending: 1 zero amount.",
        "Dry run of a.csv: 2 new, 0 already present (2 rows); nothing was written.",
    ]
    assert backend.snapshot() == before


# --- OFX, QIF, CAMT, MT940 -----------------------------------------------------------------

OFX_SGML = (
    "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
    "CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
    "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
    "<DTSERVER>20260331<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS>"
    "<TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>USD<BANKACCTFROM>"
    "<BANKID>1<ACCTID>2<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST><DTSTART>20260301"
    "<DTEND>20260331\r\n"
    "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260305230000[-5:EST]<TRNAMT>-12.50<FITID>A1"
    "<NAME>Corner Cafe<MEMO>lunch</STMTTRN>\r\n"
    "<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20260306<TRNAMT>100.00<FITID>A2<NAME>Payroll"
    "</STMTTRN>\r\n"
    "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260307<TRNAMT>-12.50<FITID>A3"
    "<NAME>Corner Cafe<MEMO>lunch</STMTTRN>\r\n"
    "</BANKTRANLIST><LEDGERBAL><BALAMT>1<DTASOF>20260331</LEDGERBAL></STMTRS></STMTTRNRS>"
    "</BANKMSGSRSV1></OFX>\r\n"
)


def test_ofx_rows_are_known_by_their_fitid(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "statement.qfx", OFX_SGML)
    result = backend.invoke(["import", str(path), "--category", "Food"])
    ok(result)
    assert expenses(backend) == [
        ("2026-03-05", "12.5", "Food", "Corner Cafe lunch"),
        ("2026-03-07", "12.5", "Food", "Corner Cafe lunch"),
    ]
    assert "statement.qfx: read as OFX." in result.stderr.splitlines()
    # The same transactions in a later download with an edited memo: the FITIDs match.
    edited = write(tmp_path / "later.ofx", OFX_SGML.replace("<MEMO>lunch", "<MEMO>LUNCH"))
    again = backend.invoke(["import", str(edited), "--category", "Transport"])
    ok(again)
    assert again.stderr.splitlines()[-1] == "Imported later.ofx: 0 new, 2 already present (2 rows)."


def test_a_bank_id_already_stored_for_another_transaction_is_not_passed_over_quietly(
    backend: Backend, tmp_path: Path
) -> None:
    ok(backend.invoke(["import", str(write(tmp_path / "a.ofx", OFX_SGML)), "--category", "Food"]))
    # Another account's download whose bank numbers its transactions the same way.
    other = OFX_SGML.replace("<TRNAMT>-12.50<FITID>A1", "<TRNAMT>-80.00<FITID>A1").replace(
        "20260307<TRNAMT>-12.50<FITID>A3", "20260309<TRNAMT>-12.50<FITID>A3"
    )
    result = backend.invoke(["import", str(write(tmp_path / "b.ofx", other)), "--category", "Food"])
    ok(result)
    assert result.stderr.splitlines()[-4:] == [
        "Warning: 2 rows of b.ofx were taken as already present by the bank's transaction id, "
        "but the row stored under that id has another date or amount (is this another "
        "account's file?):",
        "  line 1: 2026-03-05 80.00 in the file, 2026-03-05 12.50 stored",
        "  line 3: 2026-03-09 12.50 in the file, 2026-03-07 12.50 stored",
        "Imported b.ofx: 0 new, 2 already present (2 rows).",
    ]
    summary = backend.invoke(
        ["import", str(tmp_path / "b.ofx"), "--category", "Food", "--format", "json"]
    )
    assert json.loads(summary.stdout)["id_conflicts"] == 2


def test_csv_options_on_an_ofx_file_say_what_the_file_is(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "download.csv", OFX_SGML)
    result = backend.invoke(["import", str(path), "--columns", "date=Datum"])
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: download.csv is an OFX file, not CSV: --columns only apply to CSV files\n",
    )


def test_ofx_xml_version_2(backend: Backend, tmp_path: Path) -> None:
    body = OFX_SGML.split("\r\n\r\n", 1)[1]
    for tag in (
        "CODE",
        "SEVERITY",
        "DTSERVER",
        "LANGUAGE",
        "TRNUID",
        "CURDEF",
        "BANKID",
        "ACCTID",
        "ACCTTYPE",
        "DTSTART",
        "DTEND",
        "TRNTYPE",
        "DTPOSTED",
        "TRNAMT",
        "FITID",
        "NAME",
        "MEMO",
        "BALAMT",
        "DTASOF",
    ):
        body = re.sub(rf"<{tag}>([^<\r\n]*)", rf"<{tag}>\1</{tag}>", body)
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE" OLDFILEUID="NONE" '
        'NEWFILEUID="NONE"?>\n' + body
    )
    ok(backend.invoke(["import", str(write(tmp_path / "s.ofx", xml)), "--category", "Food"]))
    assert len(expenses(backend)) == 2


def test_qif_categories_come_from_l_lines(backend: Backend, tmp_path: Path) -> None:
    text = (
        "!Type:Bank\n"
        "D03/05'26\nT-45.10\nPSupermarket\nLFood:Groceries\n^\n"
        "D03/14'26\nT-30.00\nPBus pass\nLTransport\n^\n"
        "D03/15'26\nT1,200.00\nPSalary\nLIncome\n^\n"
    )
    ok(backend.invoke(["import", str(write(tmp_path / "a.qif", text))]))
    assert expenses(backend) == [
        ("2026-03-05", "45.1", "Food", "Supermarket"),
        ("2026-03-14", "30", "Transport", "Bus pass"),
    ]


def test_a_whole_quicken_export_yields_only_account_transactions(
    backend: Backend, tmp_path: Path
) -> None:
    text = (
        "!Option:AutoSwitch\n!Account\nNChecking\nTBank\nDMain account\n^\n"
        "NBrokerage\nTInvst\n^\n!Clear:AutoSwitch\n"
        "!Type:Cat\nNFood\nDGroceries and eating out\nE\n^\nNSalary\nDWages\nI\n^\n"
        "!Type:Memorized\nKC\nT-12.00\nPCorner Cafe\n^\n"
        "!Account\nNChecking\nTBank\n^\n!Type:Bank\n"
        "D03/05'26\nT-45.10\nPSupermarket\nLFood\n^\n"
        "D03/15'26\nT1,200.00\nPSalary\nLSalary\n^\n"
        "!Account\nNBrokerage\nTInvst\n^\n!Type:Invst\n"
        "D03/20'26\nNBuy\nYACME\nI10.00\nQ5\nT-50.00\n^\n"
    )
    result = backend.invoke(["import", str(write(tmp_path / "quicken.qif", text))])
    ok(result)
    assert expenses(backend) == [("2026-03-05", "45.1", "Food", "Supermarket")]
    assert "Skipped 1 credit totalling 1200.00" in result.stderr


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
<BkToCstmrStmt><GrpHdr><MsgId>1</MsgId><CreDtTm>2026-03-31T00:00:00</CreDtTm></GrpHdr>
<Stmt><Id>1</Id>
<Ntry><Amt Ccy="EUR">23.45</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2026-03-03</Dt></BookgDt><ValDt><Dt>2026-03-04</Dt></ValDt>
<AcctSvcrRef>REF-1</AcctSvcrRef>
<NtryDtls><TxDtls><RltdPties><Cdtr><Nm>REWE Markt</Nm></Cdtr></RltdPties>
<RmtInf><Ustrd>Einkauf</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">2500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2026-03-14</Dt></BookgDt><AcctSvcrRef>REF-2</AcctSvcrRef></Ntry>
<Ntry><Amt Ccy="EUR">9.99</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>PDNG</Sts>
<BookgDt><Dt>2026-03-30</Dt></BookgDt><AddtlNtryInf>Streaming</AddtlNtryInf></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""


def test_camt053_entries(backend: Backend, tmp_path: Path) -> None:
    result = backend.invoke(["import", str(write(tmp_path / "s.xml", CAMT)), "--category", "Food"])
    ok(result)
    assert expenses(backend) == [("2026-03-03", "23.45", "Food", "REWE Markt Einkauf")]
    assert "Skipped rows that are not spending: 1 pending." in result.stderr.splitlines()


def test_xml_entities_are_not_expanded(backend: Backend, tmp_path: Path) -> None:
    bomb = CAMT.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">]>',
    ).replace("Einkauf", "&a;")
    result = backend.invoke(["import", str(write(tmp_path / "s.xml", bomb)), "--category", "Food"])
    assert result.exit_code == 2
    assert "does not parse safely" in result.stderr


MT940 = """:20:STARTUMS
:25:12345678/0001234567
:28C:00001/001
:60F:C260301EUR1000,00
:61:2603050305DR12,50NMSCNONREF//B1
:86:166?00KARTENZAHLUNG?20REWE SAGT DANKE?32REWE MARKT
:61:2603060306CR100,00NTRFNONREF
:86:Salary March
:62F:C260331EUR1087,50
-
"""


def test_mt940_statement(backend: Backend, tmp_path: Path) -> None:
    ok(backend.invoke(["import", str(write(tmp_path / "s.sta", MT940)), "--category", "Food"]))
    assert expenses(backend) == [("2026-03-05", "12.5", "Food", "REWE MARKT REWE SAGT DANKE")]


def _ofx_with(transactions: int) -> str:
    head, tail = OFX_SGML.split("<STMTTRN>", 1)[0], OFX_SGML.rsplit("</STMTTRN>", 1)[1]
    rows = "".join(
        f"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>202603{n % 28 + 1:02d}<TRNAMT>-{n + 1}.00"
        f"<FITID>F{n}<NAME>Shop {n}</STMTTRN>\r\n"
        for n in range(transactions)
    )
    return head + rows + tail


def _mt940_with(transactions: int, *, statements: int = 1) -> str:
    opening, closing = MT940.split(":61:", 1)[0], ":62F:C260331EUR1087,50\n-\n"
    rows = "".join(
        f":61:2603{n % 28 + 1:02d}D{n + 1},00NMSCREF{n}\n:86:SHOP {n}\n"
        for n in range(transactions)
    )
    return (opening + rows + closing) * statements


@pytest.mark.parametrize("fmt", ["ofx", "mt940"])
def test_large_ofx_and_mt940_files_are_read_as_a_stream(tmp_path: Path, fmt: str) -> None:
    from budget_tracker.services.bankfiles import mt940, ofx

    text = _ofx_with(20_000) if fmt == "ofx" else _mt940_with(20_000)
    source = open_source(write(tmp_path / f"big.{fmt}", text))
    try:
        rows = ofx.records(source) if fmt == "ofx" else mt940.records(source, "utf-8")
        first = next(rows)
        # The first transaction arrives after a small part of the file has been read.
        assert source.stream.tell() < source.size // 4
        assert (first.line, first.amount) == (1, "-1.00")
        assert sum(1 for _ in rows) == 19_999
    finally:
        source.close()


def test_mt940_read_in_slices_reads_as_the_whole_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budget_tracker.services.bankfiles import mt940

    def read(path: Path) -> list[object]:
        source = open_source(path)
        try:
            return list(mt940.records(source, "latin-1"))
        finally:
            source.close()

    corpus = Path(__file__).parent / "fixtures" / "banks"
    paths = [
        corpus / "sparkasse_mt940.sta",
        corpus / "ing_nl_mt940.940",
        write(tmp_path / "two.sta", _mt940_with(7, statements=2)),
    ]
    whole = [read(path) for path in paths]
    monkeypatch.setattr(mt940, "GROUP_TRANSACTIONS", 2)
    assert [read(path) for path in paths] == whole
    assert len(whole[2]) == 14


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (
            lambda text: text.split("</BANKTRANLIST>")[0],
            "cut.ofx ends before </OFX>: the download is cut short (ask the bank for it "
            "again); nothing was imported",
        ),
        (
            lambda text: text.rsplit("</STMTTRN>", 1)[0],
            "cut.ofx: transaction 3 has no </STMTTRN>; the file is cut short, nothing was imported",
        ),
    ],
    ids=["no-closing-ofx", "open-transaction"],
)
def test_an_ofx_download_cut_short_is_refused(
    backend: Backend, tmp_path: Path, cut: Callable[[str], str], message: str
) -> None:
    path = write(tmp_path / "cut.ofx", cut(OFX_SGML))
    result = backend.invoke(["import", str(path), "--category", "Food"])
    assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n")
    assert expenses(backend) == []


# --- hostile input: quotes, long fields, streams --------------------------------------------

HEADER = "date,amount,category,description\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('2026-03-01,1,Food,"unterminated\n2026-03-02,2,Food,b\n2026-03-03,3,Food,c\n', 2),
        (
            '2026-03-01,1,Food,a\n2026-03-02,2,Food,"opens\n'
            + "".join(f"2026-03-{d:02d},1,Food,x\n" for d in range(3, 28))
            + '2026-03-28,1,Food,"closed"\n',
            3,
        ),
    ],
)
def test_unterminated_quote_is_refused_at_its_line(
    backend: Backend, tmp_path: Path, body: str, line: int
) -> None:
    result = backend.invoke(["import", str(write(tmp_path / "q.csv", HEADER + body))])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: q.csv: line {line}: a quoted field opens there")
    assert "_csv" not in result.stderr
    assert backend.scalar("SELECT count(*) FROM expenses") == 0


def test_overlong_field_is_refused_by_line(backend: Backend, tmp_path: Path) -> None:
    body = f'2026-03-01,1,Food,ok\n2026-03-02,1,Food,"{"x" * 200_000}"\n'
    result = backend.invoke(["import", str(write(tmp_path / "q.csv", HEADER + body))])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: q.csv: line 3: a field is longer than")
    assert "_csv" not in result.stderr


def test_dash_reads_standard_input(backend: Backend) -> None:
    result = backend.invoke(["import", "-"], input=HEADER + "2026-03-01,1,Food,piped\n")
    ok(result)
    assert result.stderr.splitlines()[-1] == "Imported stdin: 1 new, 0 already present (1 rows)."


def test_fifo_is_read_as_a_stream(backend: Backend, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("w") as stream:
            stream.write(HEADER + "2026-03-01,1,Food,from a fifo\n")

    writer = threading.Thread(target=feed)
    writer.start()
    result = backend.invoke(["import", str(fifo)])
    writer.join()
    ok(result)
    assert expenses(backend) == [("2026-03-01", "1", "Food", "from a fifo")]


def readme_profile(name: str) -> str:
    """The TOML block of the README that starts with `# NAME`."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks: list[str] = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    return next(block for block in blocks if block.startswith(f"# {name}\n"))


def test_readme_sparkasse_profile_reads_the_sparkasse_export(
    backend: Backend, tmp_path: Path
) -> None:
    rules = write(tmp_path / "sparkasse.toml", readme_profile("sparkasse.toml"))
    fixture = Path(__file__).parent / "fixtures" / "banks" / "sparkasse_csv_camt.csv"
    result = backend.invoke(["import", str(fixture), "--rules", str(rules), "--format", "json"])
    ok(result)
    stored = expenses(backend)
    assert stored, result.stderr
    assert all(category in ("Food", "Utilities", "Other") for _, _, category, _ in stored)
    assert '"pending": 1' in result.stdout


def test_readme_ofx_profile_reads_an_ofx_file(backend: Backend, tmp_path: Path) -> None:
    rules = write(tmp_path / "ofx.toml", readme_profile("checking-ofx.toml"))
    path = write(tmp_path / "s.ofx", OFX_SGML.replace("Corner Cafe", "SAFEWAY 123"))
    ok(backend.invoke(["import", str(path), "--rules", str(rules)]))
    assert [row[2] for row in expenses(backend)] == ["Food", "Food"]


def test_multi_line_descriptions_are_joined_in_the_export_format(
    backend: Backend, tmp_path: Path
) -> None:
    body = '2026-03-02,4.20,Food,"two\nlines"\n'
    ok(backend.invoke(["import", str(write(tmp_path / "m.csv", HEADER + body))]))
    assert expenses(backend) == [("2026-03-02", "4.2", "Food", "two lines")]


@pytest.mark.parametrize("encoding", ["", "nope", "rot13"])
@pytest.mark.parametrize(
    "text",
    [
        "date,amount,category,description\n2026-03-02,4.00,Food,bread\n",  # the export format
        "Buchungstag;Betrag;Verwendungszweck\n02.03.2026;-4,00;Brot\n",  # a bank's
    ],
)
def test_an_unknown_encoding_is_bad_input(
    backend: Backend, tmp_path: Path, encoding: str, text: str
) -> None:
    path = write(tmp_path / "a.csv", text)
    before = backend.snapshot()
    result = backend.invoke(["import", str(path), "--encoding", encoding, "--category", "Food"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: {encoding!r} is not an encoding I know\n"
    assert backend.snapshot() == before


def test_a_named_encoding_that_one_byte_cannot_show_is_still_an_encoding(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        "date,amount,category,description\n2026-03-02,4.00,Food,bread\n".encode("utf-16")
    )
    ok(
        backend.invoke(
            ["import", str(path), "--encoding", "utf-16", "--signs", "spending-positive"]
        )
    )
    assert backend.scalar("SELECT count(*) FROM expenses") == 1
