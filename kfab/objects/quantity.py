"""Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource.Quantity): parse, compare, format.

`<sign><digits>[.<digits>]<suffix>` where the suffix is binary SI (Ki Mi Gi Ti Pi Ei), decimal SI
(n u m "" k M G T P E) or a decimal exponent (e3, E-2). Values are exact Decimals: "0.1" + "0.2" is "0.3",
and "1Gi" is 1073741824. As Kubernetes does, a value is rounded up to nano precision, Value() and
MilliValue() round up (so "1m" of memory is 1 byte), and the canonical string keeps the suffix family the
quantity was written in ("1536Mi" stays binary, "1.5" becomes "1500m", "1e3" becomes "1e3").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation

BINARY_SI, DECIMAL_SI, DECIMAL_EXPONENT = "BinarySI", "DecimalSI", "DecimalExponent"

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}          # powers of 1024
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}  # powers of 10
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}

# The grammar of resource.ParseQuantity: a number, then one suffix (or an exponent).
_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_NANO = Decimal("1e-9")

# The message kube-apiserver gives for any unparseable quantity.
FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    pass


@dataclass(frozen=True)
class Quantity:
    value: Decimal   # exact, already rounded up to nano precision
    format: str      # the suffix family it was written in

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)

    def milli_value(self) -> int:
        return int((self.value * 1000).to_integral_value(ROUND_CEILING))

    def int_value(self) -> int:
        return int(self.value.to_integral_value(ROUND_CEILING))


def parse(text: object) -> Quantity:
    """A Quantity from its string (or a JSON number, as clients sometimes send). Raises QuantityError."""
    if isinstance(text, bool) or text is None:
        raise QuantityError(FORMAT_ERROR)
    if isinstance(text, (int, float)):
        text = repr(text) if isinstance(text, float) else str(text)
    if not isinstance(text, str):
        raise QuantityError(FORMAT_ERROR)
    m = _RE.match(text.strip())
    if not m or text != text.strip():
        raise QuantityError(FORMAT_ERROR)
    number, suffix = m.group(1), m.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise QuantityError(FORMAT_ERROR) from None
    if suffix in _BINARY:
        value, fmt = base * (Decimal(1024) ** _BINARY[suffix]), BINARY_SI
    elif suffix in _DECIMAL:
        value, fmt = base.scaleb(_DECIMAL[suffix]), DECIMAL_SI
    else:
        exponent = int(suffix[1:])
        if abs(exponent) > 1000:
            raise QuantityError(FORMAT_ERROR)
        value, fmt = base.scaleb(exponent), DECIMAL_EXPONENT
    # Kubernetes keeps nano precision at most, rounding away from zero... up for positives (ceil).
    value = value.quantize(_NANO, rounding=ROUND_CEILING) if value.as_tuple().exponent < -9 else value
    return Quantity(value, fmt)


def parse_value(text: object) -> Decimal:
    return parse(text).value


def milli_value(text: object) -> int:
    """"100m" -> 100, "2" -> 2000 (CPU in millicores); rounds up as Quantity.MilliValue()."""
    return parse(text).milli_value()


def int_value(text: object) -> int:
    """"1Gi" -> 1073741824, "1500m" -> 2 (bytes, counts); rounds up as Quantity.Value()."""
    return parse(text).int_value()


def format_quantity(value: Decimal, fmt: str = DECIMAL_SI) -> str:
    """The canonical string Kubernetes would print for this value in this suffix family."""
    value = Decimal(value)
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt == BINARY_SI and magnitude == magnitude.to_integral_value() and magnitude >= 1024:
        n, power = int(magnitude), 0
        while power < 6 and n % 1024 == 0:
            n //= 1024
            power += 1
        return f"{sign}{n}{_BINARY_BY_EXP.get(power, '')}"
    # Decimal: an integer mantissa with the largest exponent (multiple of 3) that keeps it an integer.
    mantissa, exponent = _integer_mantissa(magnitude)
    while exponent % 3 or (exponent > 18 and fmt != DECIMAL_EXPONENT):
        mantissa *= 10
        exponent -= 1
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL_BY_EXP[exponent]}"


def _integer_mantissa(magnitude: Decimal) -> tuple[int, int]:
    sign, digits, exponent = magnitude.normalize().as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent < -9:  # below nano precision: round up to n
        scaled = (magnitude * Decimal(10) ** 9).to_integral_value(ROUND_CEILING)
        return int(scaled), -9
    return mantissa, int(exponent)
