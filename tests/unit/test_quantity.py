"""Kubernetes quantities: parsing, canonical form, Value()/MilliValue(), arithmetic."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsrun.core.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT,
    ERR_SUFFIX,
    Quantity,
    QuantityError,
    canonical,
    milli_value,
    parse_json_quantity,
    parse_quantity,
    value,
)

CANONICAL = [
    # input, canonical, format
    ("0", "0", DECIMAL_SI),
    ("1", "1", DECIMAL_SI),
    ("1.5", "1500m", DECIMAL_SI),
    ("1.5Gi", "1536Mi", BINARY_SI),
    ("0.5Gi", "512Mi", BINARY_SI),
    ("1Ki", "1Ki", BINARY_SI),
    ("1024Ki", "1Mi", BINARY_SI),
    ("1023Ki", "1023Ki", BINARY_SI),
    ("100Mi", "100Mi", BINARY_SI),
    ("1.1Ki", "1126400m", BINARY_SI),  # not an integer: shown as DecimalSI
    ("0.5Ki", "512", BINARY_SI),  # below 1024: shown as DecimalSI
    ("1000", "1k", DECIMAL_SI),
    ("1024", "1024", DECIMAL_SI),
    ("1000m", "1", DECIMAL_SI),
    ("100m", "100m", DECIMAL_SI),
    ("1001m", "1001m", DECIMAL_SI),
    ("0.1m", "100u", DECIMAL_SI),
    ("0.0001", "100u", DECIMAL_SI),
    ("1n", "1n", DECIMAL_SI),
    ("1u", "1u", DECIMAL_SI),
    ("1k", "1k", DECIMAL_SI),
    ("1M", "1M", DECIMAL_SI),
    ("1G", "1G", DECIMAL_SI),
    ("1T", "1T", DECIMAL_SI),
    ("1P", "1P", DECIMAL_SI),
    ("1E", "1E", DECIMAL_SI),
    ("1000E", "1000E", DECIMAL_SI),
    ("1e3", "1e3", DECIMAL_EXPONENT),
    ("1E3", "1e3", DECIMAL_EXPONENT),
    ("1.5e3", "1500", DECIMAL_EXPONENT),
    ("2e-3", "2e-3", DECIMAL_EXPONENT),
    ("1e+3", "1e3", DECIMAL_EXPONENT),
    ("3e20", "300e18", DECIMAL_EXPONENT),
    ("-1.5", "-1500m", DECIMAL_SI),
    ("+1", "1", DECIMAL_SI),
    ("001", "1", DECIMAL_SI),
    (".5", "500m", DECIMAL_SI),
    ("5.", "5", DECIMAL_SI),
    ("12345678901234567890", "12345678901234567890", DECIMAL_SI),
    ("0.0000000001", "1n", DECIMAL_SI),  # rounded up to the smallest unit
    ("1e-1000", "1e-9", DECIMAL_EXPONENT),
]


@pytest.mark.parametrize("text,expected,fmt", CANONICAL)
def test_canonical_form(text, expected, fmt):
    q = parse_quantity(text)
    assert str(q) == expected
    assert q.format == fmt


VALUES = [
    # input, Value(), MilliValue()
    ("1", 1, 1000),
    ("1.5", 2, 1500),
    ("100m", 1, 100),
    ("0.1m", 1, 1),
    ("1Ki", 1024, 1024000),
    ("1.5Gi", 1610612736, 1610612736000),
    ("-1.5", -2, -1500),
    ("1n", 1, 1),
    ("250m", 1, 250),
    ("1E", 10**18, 10**21),
]


@pytest.mark.parametrize("text,val,milli", VALUES)
def test_value_rounds_up_away_from_zero(text, val, milli):
    q = parse_quantity(text)
    assert value(q) == val and q.value() == val
    assert milli_value(q) == milli and q.milli_value() == milli


BAD = [
    ("", ERR_FORMAT),
    ("x", ERR_FORMAT),
    ("1x", ERR_FORMAT),
    ("1.5.5", ERR_FORMAT),
    ("1 ", ERR_FORMAT),
    ("1e", ERR_SUFFIX),
    ("1ee3", ERR_SUFFIX),
    ("1e-", ERR_SUFFIX),
    ("1Ki5", ERR_SUFFIX),
    ("1kk", ERR_SUFFIX),
    ("1e99999999", "out of the range"),
    ("1" * 2000, "out of the range"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_malformed_quantities(text, message):
    with pytest.raises(QuantityError, match=re.escape(message)):
        parse_quantity(text)


def test_binary_is_capped_at_int64():
    assert parse_quantity("100Ei").value() == 2**63 - 1


def test_decimal_is_not_capped():
    assert parse_quantity("100E").value() == 100 * 10**18


def test_json_numbers():
    assert str(parse_json_quantity(0.5)) == "500m"
    assert str(parse_json_quantity(2)) == "2"
    assert str(parse_json_quantity(1e20)) == "100e18"
    assert str(parse_json_quantity(" 1Gi ")) == "1Gi"
    for bad in (True, None, [], float("inf"), float("nan")):
        with pytest.raises(QuantityError):
            parse_json_quantity(bad)


def test_arithmetic_keeps_the_first_format():
    one = parse_quantity("1")
    half = parse_quantity("500m")
    assert str(one + half) == "1500m"
    assert str(parse_quantity("64Mi") + parse_quantity("64Mi")) == "128Mi"
    assert str(parse_quantity("100M") + parse_quantity("64Mi")) == "167108864"
    assert str(Quantity(0) + parse_quantity("1Gi")) == "1Gi"  # zero takes the other's format
    assert str(parse_quantity("1") - parse_quantity("250m")) == "750m"
    assert str(-parse_quantity("1Ki")) == "-1Ki"


def test_comparison_is_by_value():
    assert parse_quantity("1") == parse_quantity("1000m")
    assert parse_quantity("1Ki") == parse_quantity("1024")
    assert parse_quantity("1k") < parse_quantity("1Ki")
    assert parse_quantity("2") > parse_quantity("1999m")
    assert len({parse_quantity("1"), parse_quantity("1000m")}) == 1


# ---------------------------------------------------------------- properties

suffixes = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi",
                            "Ti", "Pi", "Ei", "e3", "e-3", "E6", "e0"])
numbers = st.from_regex(r"\A[+-]?[0-9]{1,12}(\.[0-9]{0,9})?\Z", fullmatch=True)


@given(numbers, suffixes)
def test_canonical_round_trip(number, suffix):
    q = parse_quantity(number + suffix)
    again = parse_quantity(canonical(q))
    assert again == q
    assert canonical(again) == canonical(q)


@given(st.text(max_size=30))
def test_any_string_parses_or_raises_quantity_error(text):
    try:
        q = parse_quantity(text)
    except QuantityError:
        return
    assert parse_quantity(canonical(q)) == q


@given(st.integers(min_value=-(10**30), max_value=10**30),
       st.integers(min_value=-(10**30), max_value=10**30))
def test_addition_is_exact(a, b):
    qa, qb = Quantity(a), Quantity(b)
    assert (qa + qb).nanos == a + b
    assert (qa + qb) - qb == qa
