"""Kubernetes resource.Quantity semantics: parsing, exact values, rounding, canonical strings."""

from decimal import Decimal

import pytest

from kfab.objects.quantity import QuantityError, format_quantity, int_value, milli_value, parse


@pytest.mark.parametrize("text, value", [
    ("100m", Decimal("0.1")), ("1Gi", Decimal(1024 ** 3)), ("500Mi", Decimal(500 * 1024 ** 2)),
    ("1e3", Decimal(1000)), ("1E3", Decimal(1000)), ("2", Decimal(2)), ("1.5", Decimal("1.5")),
    ("1k", Decimal(1000)), ("1Ki", Decimal(1024)), ("12e-3", Decimal("0.012")), ("-2k", Decimal(-2000)),
    ("+5", Decimal(5)), (".5", Decimal("0.5")), ("1u", Decimal("0.000001")), ("3n", Decimal("0.000000003")),
    ("2E", Decimal(2 * 10 ** 18)), ("1Ei", Decimal(1024 ** 6)), (4, Decimal(4)),
])
def test_parses_to_exact_values(text, value):
    assert parse(text).value == value


@pytest.mark.parametrize("bad", ["", "1KB", "abc", "1.2.3", "Gi", "1 Gi", " 1", "1e", "--1", None, True, [], "1Gii"])
def test_refuses_what_kubernetes_refuses(bad):
    with pytest.raises(QuantityError):
        parse(bad)


def test_cpu_millis_and_byte_values_round_up_like_kubernetes():
    assert milli_value("100m") == 100
    assert milli_value("2") == 2000
    assert milli_value("0.5") == 500
    assert milli_value("1e-4") == 1          # 0.1m rounds up to 1m
    assert int_value("1500m") == 2           # Value() rounds up
    assert int_value("1Gi") == 1073741824
    assert int_value("1e3") == 1000


def test_below_nano_precision_rounds_up():
    assert parse("0.5n").value == Decimal("1e-9")


def test_sums_are_exact():
    assert parse("0.1").value + parse("0.2").value == parse("300m").value


@pytest.mark.parametrize("text, canonical", [
    ("1000", "1k"), ("1.5", "1500m"), ("0.1", "100m"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"),
    ("1e3", "1e3"), ("100m", "100m"), ("512", "512"), ("0", "0"), ("1000Mi", "1000Mi"), ("2000k", "2M"),
])
def test_canonical_strings_keep_the_suffix_family(text, canonical):
    assert str(parse(text)) == canonical


def test_binary_values_below_1024_print_as_decimal():
    assert format_quantity(Decimal(512), "BinarySI") == "512"
