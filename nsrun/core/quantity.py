"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``1e3``), exact and pure.

Owns the quantity grammar of ``k8s.io/apimachinery/pkg/api/resource``::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
                 | e<signedNumber> | E<signedNumber>

A ``Quantity`` holds its value as an exact integer count of nano-units (Kubernetes rounds every
parsed value up, away from zero, to 1n) and remembers its format (``DecimalSI``, ``BinarySI``,
``DecimalExponent``) for canonical output: ``1.5`` -> ``1500m``, ``1.5Gi`` -> ``1536Mi``.

Deliberate differences from Kubernetes, both to refuse rather than misbehave: exponents beyond
``MAX_EXPONENT`` and numbers with more than ``MAX_DIGITS`` digits are rejected (Kubernetes
wraps or hangs on them), and a ``DecimalSI`` value above ``999E`` prints as ``1000E`` rather
than dropping its suffix.
"""

from __future__ import annotations

import functools
import math

import msgspec

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

NANO = 10**9
MAX_INT64 = 2**63 - 1
MAX_EXPONENT = 1000
MAX_DIGITS = 1000

SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"
ERR_RANGE = f"quantity is out of the range nsrun accepts (exponent beyond ±{MAX_EXPONENT} " \
            f"or more than {MAX_DIGITS} digits)"

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_OUT = {e: s for s, e in _DECIMAL.items()}
_BINARY_OUT = {e // 10: s for s, e in _BINARY.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; ``str(err)`` is Kubernetes' message."""


@functools.total_ordering
class Quantity(msgspec.Struct, frozen=True, eq=False):
    """An exact quantity: ``nanos`` is the value times 10^9; ``format`` drives printing."""

    nanos: int
    format: str = DECIMAL_SI

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.nanos == other.nanos

    def __lt__(self, other: Quantity) -> bool:
        return self.nanos < other.nanos

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __add__(self, other: Quantity) -> Quantity:
        """Like Kubernetes' ``Add``: keeps this format unless this value is zero."""
        fmt = other.format if self.nanos == 0 else self.format
        return Quantity(self.nanos + other.nanos, fmt)

    def __sub__(self, other: Quantity) -> Quantity:
        fmt = other.format if self.nanos == 0 else self.format
        return Quantity(self.nanos - other.nanos, fmt)

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)

    def __str__(self) -> str:
        return canonical(self)

    def __repr__(self) -> str:
        return f"Quantity({canonical(self)!r})"

    def is_zero(self) -> bool:
        return self.nanos == 0

    def sign(self) -> int:
        return (self.nanos > 0) - (self.nanos < 0)

    def value(self) -> int:
        """The value rounded up, away from zero, to an integer (Kubernetes' ``Value()``)."""
        return _ceil_away(self.nanos, NANO)

    def milli_value(self) -> int:
        """``ceil(q * 1000)`` away from zero (Kubernetes' ``MilliValue()``)."""
        return _ceil_away(self.nanos, NANO // 1000)


ZERO = Quantity(0, DECIMAL_SI)


def value(q: Quantity) -> int:
    """Kubernetes' ``Value()``: rounded up, away from zero."""
    return q.value()


def milli_value(q: Quantity) -> int:
    """Kubernetes' ``MilliValue()``: ``ceil(q * 1000)``, away from zero."""
    return q.milli_value()


def _ceil_away(n: int, d: int) -> int:
    q = -(-abs(n) // d)
    return q if n >= 0 else -q


# ---------------------------------------------------------------- parsing


def parse_quantity(text: object) -> Quantity:
    """Parse a quantity string exactly as Kubernetes' ``ParseQuantity`` does.

    Raises ``QuantityError`` with Kubernetes' message on a malformed string."""
    if not isinstance(text, str) or text == "":
        raise QuantityError(ERR_FORMAT)
    if text == "0":
        return ZERO
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    return _build(positive, num, denom, base, exponent, fmt)


def parse_json_quantity(raw: object) -> Quantity:
    """A quantity as it appears in a manifest: a string or a JSON number (``cpu: 0.5``)."""
    if isinstance(raw, bool):
        raise QuantityError(ERR_FORMAT)
    if isinstance(raw, int):
        if len(str(abs(raw))) > MAX_DIGITS:
            raise QuantityError(ERR_RANGE)
        return parse_quantity(str(raw))
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise QuantityError(ERR_FORMAT)
        return parse_quantity(repr(raw))
    if isinstance(raw, str):
        return parse_quantity(raw.strip())
    raise QuantityError(ERR_FORMAT)


def _scan(s: str) -> tuple[bool, str, str, str]:
    """Kubernetes' ``parseQuantityString``: sign, numerator, denominator and suffix."""
    positive, pos, end = True, 0, len(s)
    if s[0] in "+-":
        positive, pos = s[0] == "+", 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
    return positive, num, denom, _scan_suffix(s, pos)


def _scan_suffix(s: str, pos: int) -> str:
    start, end = pos, len(s)
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT)
    return s[start:end]


def _interpret(suffix: str) -> tuple[int, int, str]:
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        return 10, _exponent(suffix[1:]), DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _exponent(text: str) -> int:
    """The integer after ``e``/``E`` (Go's ``strconv.ParseInt``), bounded by MAX_EXPONENT."""
    body = text[1:] if text[0] in "+-" else text
    if not body or any(c not in _DIGITS for c in body):
        raise QuantityError(ERR_SUFFIX)
    if len(body.lstrip("0")) > 6 or int(body) > MAX_EXPONENT:
        raise QuantityError(ERR_RANGE)
    return int(text)


def _build(positive: bool, num: str, denom: str, base: int, exponent: int, fmt: str) -> Quantity:
    denom = denom.rstrip("0")
    digits_text = (num + denom).lstrip("0") or "0"
    if len(digits_text) > MAX_DIGITS:
        raise QuantityError(ERR_RANGE)
    digits = int(digits_text)
    if base == 10:
        nanos = _scaled_up(digits, 9 + exponent - len(denom))
    else:
        nanos = _ceil_away(digits * (2**exponent) * NANO, 10 ** len(denom))
    return _finish(nanos if positive else -nanos, fmt)


def _scaled_up(digits: int, power: int) -> int:
    """``digits * 10**power`` rounded up to an integer (power may be negative)."""
    if power >= 0:
        return digits * 10**power
    if digits and -power > len(str(digits)) + 1:
        return 1
    return _ceil_away(digits, 10**-power)


def _finish(nanos: int, fmt: str) -> Quantity:
    """Kubernetes' post-parse rules: BinarySI caps at 2^63-1 and shows |v| < 1 as DecimalSI."""
    if fmt == BINARY_SI and abs(nanos) > MAX_INT64 * NANO:
        nanos = MAX_INT64 * NANO if nanos > 0 else -MAX_INT64 * NANO
    if fmt == BINARY_SI and 0 < abs(nanos) < NANO:
        fmt = DECIMAL_SI
    return Quantity(nanos, fmt)


# ---------------------------------------------------------------- formatting


def canonical(q: Quantity) -> str:
    """The canonical string (Kubernetes' ``Quantity.String()``)."""
    if q.nanos == 0:
        return "0"
    sign = "-" if q.nanos < 0 else ""
    fmt = q.format
    if fmt == BINARY_SI and (abs(q.nanos) < 1024 * NANO or q.nanos % NANO):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        return sign + _binary_text(abs(q.nanos) // NANO)
    if fmt not in (DECIMAL_SI, DECIMAL_EXPONENT):
        fmt = DECIMAL_EXPONENT
    return sign + _decimal_text(abs(q.nanos), fmt)


def _binary_text(units: int) -> str:
    power = 0
    while units % 1024 == 0 and power < 6:
        units //= 1024
        power += 1
    return f"{units}{_BINARY_OUT[power] if power else ''}"


def _decimal_text(nanos: int, fmt: str) -> str:
    mantissa, exponent = nanos, -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent > 18:
        mantissa, exponent = mantissa * 10 ** (exponent - 18), 18
    return f"{mantissa}{_DECIMAL_OUT[exponent]}"
