"""The replay tool: files in, the real UDF over the protocol, CSV out."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import ROOT
from udfkit import replay

NAB = ROOT / "training_data_sets" / "nab"


def run(*argv: str, capsys) -> tuple[int, list[dict], str]:
    code = replay.main(list(argv))
    captured = capsys.readouterr()
    return code, list(csv.DictReader(io.StringIO(captured.out))), captured.err


def test_csv_columns_become_fields_and_options_are_typed_by_info(capsys):
    code, rows, err = run("threshold", "--csv", str(NAB / "art_daily_jumpsup.csv"),
                          "--option", "field=value", "--option", "max=80.0",
                          "--option", "mode=annotate", capsys=capsys)
    assert code == 0, err
    assert len(rows) == 4032
    assert rows[0]["time"] == "2014-04-01T00:00:00+00:00"
    flagged = [r for r in rows if r["out_of_range"] == "True"]
    assert flagged and all(float(r["value"]) > 80.0 for r in flagged)


def test_line_protocol_input_and_batch_windows(tmp_path, capsys):
    lines = "".join(f"machine,machine=m1 torque={v} {i * 10**9}\n"
                    for i, v in enumerate([40, 41, 39.5, 40.5, 40.2, 90, 39.8, 40.1] * 2))
    path = tmp_path / "torque.lp"
    path.write_text(lines)
    code, rows, err = run("outliers", "--mode", "batch", "--lp", str(path), "--option",
                          "field=torque", "--batch-size", "8", capsys=capsys)
    assert code == 0, err
    assert [float(r["torque"]) for r in rows] == [90.0, 90.0]
    assert {r["machine"] for r in rows} == {"m1"}


def test_wrong_option_type_and_unknown_option_are_named(capsys):
    csv_file = str(NAB / "art_daily_jumpsup.csv")
    code, _, err = run("ads_model", "--csv", csv_file, "--option", "learn=many", capsys=capsys)
    assert code == 2 and "learn: expected INT, got 'many'" in err
    code, _, err = run("ads_model", "--csv", csv_file, "--option", "bogus=1", capsys=capsys)
    assert code == 2 and "bogus: unknown option" in err


def test_a_refused_init_is_reported(capsys):
    code, _, err = run("ads_model", "--csv", str(NAB / "art_daily_jumpsup.csv"),
                       "--option", "learn=1", capsys=capsys)
    assert code == 2 and "learn: must be >= 2" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("2014-04-01 00:05:00", 1396310700 * 10**9),
    ("2014-04-01T00:05:00Z", 1396310700 * 10**9),
    ("1396310700", 1396310700 * 10**9),
    ("1396310700123", 1396310700123 * 10**6),
])
def test_time_formats(text, expected):
    assert replay.parse_time(text) == expected


def test_bad_time_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n")
    with pytest.raises(replay.ReplayError, match="line 3: bad time 'yesterday'"), \
            path.open() as fh:
        list(replay.csv_points(fh, "m", {}))
