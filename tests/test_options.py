"""Option declarations turn into Info and Init is checked against them."""

import datetime as dt

import pytest

from udfkit import DOUBLE, DURATION, INT, STRING, Opt, OptionError
from udfkit.client import init_request
from udfkit.options import parse_options, positive

SPECS = (
    Opt("field", STRING, "value"),
    Opt("threshold", DOUBLE, 3.0, check=positive),
    Opt("size", INT),
    Opt("mode", STRING, "forward", choices=("forward", "annotate")),
    Opt("tags", STRING, (), repeated=True),
    Opt("every", DURATION, 0),
)


def parse(**options):
    return parse_options(SPECS, init_request(options).init.options)


def test_defaults_and_given_values():
    got = parse(size=10, tags=["a", "b"], every=dt.timedelta(seconds=2))
    assert got == {"field": "value", "threshold": 3.0, "size": 10, "mode": "forward",
                   "tags": ["a", "b"], "every": 2_000_000_000}


def test_wrong_type_names_option_and_types():
    with pytest.raises(OptionError, match=r"threshold: expected DOUBLE, got INT"):
        parse(size=1, threshold=3)


def test_missing_required_option():
    with pytest.raises(OptionError, match=r"size: required option is missing \(expected INT\)"):
        parse()


def test_check_choices_unknown_and_count_all_reported():
    with pytest.raises(OptionError) as err:
        parse(size=1, threshold=-1.0, mode="loud", bogus=1, field=["a", "b"])
    text = str(err.value)
    assert "threshold: must be > 0, got -1.0" in text
    assert "mode: expected one of 'forward', 'annotate', got 'loud'" in text
    assert "bogus: unknown option" in text
    assert "field: expected one STRING value, got 2" in text
