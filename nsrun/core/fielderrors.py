"""Kubernetes' field errors and apimachinery's string rules, with their exact messages (pure).

Owns the ``field.Error`` constructors (``required``, ``invalid``, ``not_supported``…), the
DNS-1123 / qualified-name / label-value / port-name rules and their messages, and the small
checks every validator shares (``label_check``, ``nonnegative``, ``quantity_field``). The Pod
validators (``core.validate``, ``core.validcontainers``, ``core.validfields``), the Service
validator and the pod network validator all build their problems here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from nsrun.core.quantity import Quantity, QuantityError, parse_json_quantity
from nsrun.errors import Problem

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1

# ---------------------------------------------------------------- field.Error constructors


def show(value: Any) -> str:
    """A bad value as Kubernetes prints it: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Quantity):
        value = str(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def required(path: str, detail: str = "") -> Problem:
    return Problem(path, "Required value", detail)


def invalid(path: str, value: Any, detail: str) -> Problem:
    return Problem(path, "Invalid value", f"{show(value)}: {detail}")


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Problem:
    values = ", ".join(json.dumps(v) for v in valid)
    return Problem(path, "Unsupported value", f"{show(value)}: supported values: {values}")


def duplicate(path: str, value: Any) -> Problem:
    return Problem(path, "Duplicate value", show(value))


def not_found(path: str, value: Any) -> Problem:
    return Problem(path, "Not found", show(value))


def forbidden(path: str, detail: str) -> Problem:
    return Problem(path, "Forbidden", detail)


# ---------------------------------------------------------------- apimachinery string rules

LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN_FMT = LABEL_FMT + "(\\." + LABEL_FMT + ")*"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
HEADER_FMT = "[-A-Za-z0-9]+"
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
             "or '-', and must start and end with an alphanumeric character")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character")
QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric "
                   "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                   "character")
ENV_NAME_MSG = ("a valid environment variable name must consist only of printable ASCII "
                "characters other than '='")
HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"
NEGATIVE_MSG = "must be greater than or equal to 0"
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
INIT_FORBIDDEN = "may not be set for init containers without restartPolicy=Always"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError`` (with its double space before "or")."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


# The formats above are what the messages print; the checks below are linear-time
# equivalents (Python's backtracking regexes are quadratic on them for long input).


def _is_label(value: str) -> bool:
    return bool(re.fullmatch("[-a-z0-9]+", value)) and "-" not in (value[0], value[-1])


def _is_qname(value: str) -> bool:
    return bool(re.fullmatch("[-A-Za-z0-9_.]+", value)) \
        and all(ch.isascii() and ch.isalnum() for ch in (value[0], value[-1]))


def dns1123_label(value: str) -> list[str]:
    errs = [max_len(63)] if len(value) > 63 else []
    if not _is_label(value):
        errs.append(regex_error(LABEL_MSG, LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len(253)] if len(value) > 253 else []
    if not all(_is_label(part) for part in value.split(".")):
        errs.append(regex_error(SUBDOMAIN_MSG, SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        errs += ["prefix part must be non-empty"] if not prefix else [
            "prefix part " + m for m in dns1123_subdomain(prefix)]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len(63))
    if not _is_qname(name):
        errs.append("name part " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    errs = [max_len(63)] if len(value) > 63 else []
    if value and not _is_qname(value):
        errs.append(regex_error(LABEL_VALUE_MSG, f"({QNAME_FMT})?", "MyValue", "my_value",
                                "12345"))
    return errs


def port_name(value: str) -> list[str]:
    errs = [max_len(15)] if len(value) > 15 else []
    if not re.fullmatch("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else [inclusive_range(1, 65535)]


def env_var_name(value: str) -> list[str]:
    errs = ["environment variable name must be non-empty"] if not value else []
    if any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in value):
        errs.append(ENV_NAME_MSG)
    return errs


def validate_labels(labels: dict[str, str], path: str) -> list[Problem]:
    """A label map (``metadata.labels``, a Service's ``spec.selector``): qualified-name
    keys, label values."""
    out: list[Problem] = []
    for key, value in labels.items():
        out += [invalid(path, key, m) for m in qualified_name(key)]
        out += [invalid(path, value, m) for m in label_value(value)]
    return out


def label_check(value: str | None, path: str, rule=dns1123_label) -> list[Problem]:
    return [invalid(path, value, m) for m in rule(value)] if value else []


def nonnegative(value: int | None, path: str, hi: int = MAX_INT32) -> list[Problem]:
    if value is None:
        return []
    if value < 0:
        return [invalid(path, value, NEGATIVE_MSG)]
    return [invalid(path, value, inclusive_range(0, hi))] if value > hi else []


def quantity_field(raw: Any, path: str) -> tuple[Quantity | None, list[Problem]]:
    try:
        return parse_json_quantity(raw), []
    except QuantityError as err:
        return None, [invalid(path, raw, str(err))]
