"""dive's CI rules, plus path globs to ignore and a floor for the ratio rules.

The three rules and their defaults are those of dive 0.13.1
(runtime/ci/rule.go and cmd/root.go):

==========================  =========  =====================================
rule                        default    fails when
==========================  =========  =====================================
lowestEfficiency            0.9        threshold > efficiency
highestWastedBytes          disabled   wasted bytes > threshold
highestUserWastedPercent    0.1        threshold < wasted / user bytes
==========================  =========  =====================================

Each value is a string, as dive keeps it, and ``disabled`` turns a rule
off. A ratio is read like Go's ``strconv.ParseFloat`` and must lie in
[0, 1]. A byte count is read like go-humanize 1.0.1's ``ParseBytes``, so
``20MB`` is 20,000,000 bytes (SI) and ``20MiB`` is 20,971,520 (IEC). A ``.dive-ci`` file
sets them under ``rules:``; dive reads it with yaml.v3 and converts each
value back to a string, so ``1e3`` there means 1000 bytes while the same
text as a flag is rejected. Both readings are reproduced here.

layerlab adds two settings, under ``layerlab:`` in the same file so that
dive still reads it unchanged::

    rules:
      lowestEfficiency: 0.95
      highestWastedBytes: 20MB
    layerlab:
      ignore: ["var/cache/**", "tmp"]
      minWastedBytes: 1MB

- ``ignore``: path globs. ``*`` and ``?`` stay within one path component,
  ``**`` spans any number of them, ``[...]`` is a character class, a leading
  ``/`` is optional. Patterns are anchored at the root, so ``*.log``
  matches ``app.log`` but not ``var/app.log``; ``**/*.log`` matches both. A
  pattern that matches a directory also covers everything below it. Matching paths are dropped from dive's per-path table
  before the sums, so they count in neither the efficiency score, the wasted
  bytes nor the user-wasted percent. Layer sizes are not changed.
- ``minWastedBytes``: while the wasted bytes (after ``ignore``) are below
  this floor, ``lowestEfficiency`` and ``highestUserWastedPercent`` pass
  even if their ratio is out of bounds. ``highestWastedBytes`` is not
  affected. The default 0 turns the floor off.

Unlike dive, an invalid value raises :class:`~layerlab.OptionError` at once,
and a config file that is named but missing is an error.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
import yaml

from ._dive import DiveMetrics, summarise, tabulate_paths
from ._errors import OptionError
from ._format import counted

DISABLED = "disabled"

DIVE_DEFAULTS = {
    "lowestEfficiency": "0.9",
    "highestWastedBytes": DISABLED,
    "highestUserWastedPercent": "0.1",
}
"""dive 0.13.1's default rule values, as the strings its flags default to."""

_OPTION_KEYS = {
    "lowest_efficiency": "lowestEfficiency",
    "highest_wasted_bytes": "highestWastedBytes",
    "highest_user_wasted_percent": "highestUserWastedPercent",
    "ignore": "ignore",
    "min_wasted_bytes": "minWastedBytes",
}


@dataclass(frozen=True)
class CIRules:
    """Thresholds for :func:`evaluate_ci`; None turns a rule off.

    Attributes:
        lowest_efficiency: minimum efficiency score, a ratio in [0, 1].
        highest_wasted_bytes: maximum wasted bytes.
        highest_user_wasted_percent: maximum wasted bytes per user byte, a
            ratio in [0, 1] (0.1 is 10 %).
        ignore: path globs left out of the figures the rules check.
        min_wasted_bytes: wasted bytes below which the two ratio rules pass.
    """

    lowest_efficiency: float | None = 0.9
    highest_wasted_bytes: int | None = None
    highest_user_wasted_percent: float | None = 0.1
    ignore: tuple[str, ...] = ()
    min_wasted_bytes: int = 0


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule.

    Attributes:
        name: dive's name of the rule, e.g. ``lowestEfficiency``.
        value: the measured figure.
        threshold: the configured limit; None when the rule is disabled.
        status: ``passed``, ``failed`` or ``skipped`` (rule disabled).
        message: one sentence on why.
    """

    name: str
    value: float | int
    threshold: float | int | None
    status: str
    message: str


@dataclass(frozen=True)
class CIResult:
    """The outcome of :func:`evaluate_ci`.

    Attributes:
        passed: True when no rule failed.
        rules: one result per rule, in dive's order.
        metrics: the figures the rules checked, with ``ignore`` applied.
        dive: dive's own figures, without ``ignore``.
        settings: the rules that were applied.
    """

    passed: bool
    rules: tuple[RuleResult, ...]
    metrics: DiveMetrics = field(repr=False)
    dive: DiveMetrics = field(repr=False)
    settings: CIRules = field(repr=False)


# Loading rules.


def load_ci_rules(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CIRules:
    """Read CI rules from a ``.dive-ci`` YAML file and apply ``overrides``.

    Without ``path`` the rules start from dive's defaults. ``overrides`` take
    precedence over the file, as dive's flags do. Their keys are the field
    names of :class:`CIRules` and a None value means "not given". ``ignore``
    patterns are added to the file's. Raises OptionError for an
    unknown key, an invalid value, or a file that is missing or not valid
    YAML.
    """
    values: dict[str, Any] = dict(DIVE_DEFAULTS)
    values["minWastedBytes"] = "0"
    ignore: list[str] = []
    if path is not None:
        from_file = _read_config_file(os.fspath(path))
        ignore.extend(from_file.pop("ignore", []))
        values.update(from_file)
    for key, value in (overrides or {}).items():
        if key not in _OPTION_KEYS:
            raise OptionError(
                f"unknown CI option {key!r}; expected one of {', '.join(_OPTION_KEYS)}"
            )
        if value is None:
            continue
        if key == "ignore":
            ignore.extend(_pattern_list(value, "ignore"))
        else:
            values[_OPTION_KEYS[key]] = _option_text(value, key)
    for pattern in ignore:
        if not pattern.strip("/"):
            raise OptionError(f"invalid ignore glob {pattern!r}: it names no path")
    return CIRules(
        lowest_efficiency=_ratio_rule("lowestEfficiency", values["lowestEfficiency"]),
        highest_wasted_bytes=_bytes_rule(
            "highestWastedBytes", values["highestWastedBytes"]
        ),
        highest_user_wasted_percent=_ratio_rule(
            "highestUserWastedPercent", values["highestUserWastedPercent"]
        ),
        ignore=tuple(ignore),
        min_wasted_bytes=_bytes_value("minWastedBytes", values["minWastedBytes"]),
    )


def _option_text(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OptionError(
            f"CI option {key} must be a string or a number, not {value!r}"
        )
    if isinstance(value, float):
        return go_format_float(value)
    return str(value)


def _pattern_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return list(value)
    raise OptionError(
        f"CI option {key} must be a glob or a list of globs, not {value!r}"
    )


def _ratio_rule(name: str, text: str) -> float | None:
    if text == DISABLED:
        return None
    try:
        ratio = go_parse_float(text)
    except ValueError:
        raise OptionError(
            f"invalid value {text!r} for {name}: expected a ratio between 0 and 1 "
            "(e.g. 0.9) or 'disabled'"
        ) from None
    # A NaN passes this check and then never fails the rule, as in dive.
    if ratio < 0 or ratio > 1:
        raise OptionError(
            f"invalid value {text!r} for {name}: the ratio must be between 0 and 1"
        )
    return ratio


def _bytes_rule(name: str, text: str) -> int | None:
    return None if text == DISABLED else _bytes_value(name, text)


def _bytes_value(name: str, text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as error:
        raise OptionError(
            f"invalid value {text!r} for {name}: {error}; expected a byte count "
            "such as 20000000, 20MB or 19MiB"
        ) from None


# The .dive-ci file, read as dive reads it through viper and yaml.v3.


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise OptionError(f"CI config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError(f"cannot read CI config file {path}: {error}") from None
    # NOTE: PyYAML's grammar is stricter than yaml.v3's in a few corners: a
    # plain value that starts with "," or ends in a tab is invalid YAML here
    # but a string to dive.
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise OptionError(f"CI config file {path} is not valid YAML: {error}") from None
    document = _mapping(node, path, "the document") if node is not None else {}
    return _settings_from(document, path)


def _mapping(node: yaml.Node, path: str, where: str) -> dict[str, yaml.Node]:
    """Return a YAML mapping's items by lower-cased key, as viper reads them."""
    if not isinstance(node, yaml.MappingNode):
        raise OptionError(f"CI config file {path}: {where} must be a mapping")
    items: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = go_string(_scalar(key_node)).lower()
        if key in items:
            raise OptionError(
                f"CI config file {path}: key {key_node.value!r} appears twice in "
                f"{where} (keys are case-insensitive)"
            )
        items[key] = value_node
    return items


def _settings_from(document: dict[str, yaml.Node], path: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    rules = document.get("rules")
    rule_nodes = _mapping(rules, path, "rules") if _is_mapping(rules) else {}
    # A non-null rules: that is no mapping hides every rule below it, and
    # viper then gives each rule the empty string, which dive rejects.
    hidden = rules is not None and not _is_mapping(rules) and _scalar(rules) is not None
    for name in DIVE_DEFAULTS:
        # viper finds a dotted top-level key before the nested one.
        node = document.get(f"rules.{name.lower()}", rule_nodes.get(name.lower()))
        value = _config_value(node)
        if value is None and hidden:
            value = ""
        if value is not None:
            settings[name] = value

    extra = document.get("layerlab")
    extra_nodes = _mapping(extra, path, "layerlab") if _is_mapping(extra) else {}
    floor = _config_value(extra_nodes.get("minwastedbytes"))
    if floor is not None:
        settings["minWastedBytes"] = floor
    patterns = extra_nodes.get("ignore")
    if patterns is not None:
        settings["ignore"] = _config_patterns(patterns, path)
    return settings


def _is_mapping(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.MappingNode)


def _config_value(node: yaml.Node | None) -> str | None:
    """Return a rule value as viper's GetString gives it; None when unset."""
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        return ""  # cast.ToString turns a list or mapping into ""
    value = _scalar(node)
    return None if value is None else go_string(value)


def _config_patterns(node: yaml.Node, path: str) -> list[str]:
    if isinstance(node, yaml.ScalarNode):
        return [node.value]
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(item, yaml.ScalarNode) for item in node.value
    ):
        return [item.value for item in node.value]
    raise OptionError(f"CI config file {path}: layerlab.ignore must be a list of globs")


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    if node.style is not None:
        return node.value  # quoted and block scalars are strings
    return resolve_plain_scalar(node.value)


_RESERVED_SCALARS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def resolve_plain_scalar(text: str) -> Any:
    """Resolve an unquoted YAML scalar the way yaml.v3 (resolve.go) does.

    Only booleans, nulls, integers and floats are recognised; YAML 1.1
    spellings such as ``yes`` or ``1_000.5e3`` stay strings or parse as Go
    does. Timestamps are left as strings, which changes nothing for the
    rules: no rule value accepts one either way.
    """
    first = text[:1]
    if first and first not in "+-0123456789.yYnNtTfFoO~":
        return text
    if text in _RESERVED_SCALARS:
        return _RESERVED_SCALARS[text]
    if first == ".":
        try:
            return go_parse_float(text)
        except ValueError:
            return text
    if first in "+-0123456789":
        return _resolve_number(text)
    return text


def _resolve_number(text: str) -> Any:
    plain = text.replace("_", "")
    number = _go_parse_int(plain)
    if number is not None:
        # yaml.v3 tries ParseInt (int64), then ParseUint, which takes no sign.
        fits_int64 = -(2**63) <= number < 2**63
        fits_uint64 = 0 <= number < 2**64 and plain[0] not in "+-"
        if fits_int64 or fits_uint64:
            return number
    if _YAML_FLOAT.fullmatch(plain):
        try:
            return go_parse_float(plain)
        except ValueError:
            pass
    return text


_GO_INT = re.compile(
    r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))"
)


def _go_parse_int(text: str) -> int | None:
    """Parse an integer as Go's strconv.ParseInt(text, 0, 64), without range checks."""
    match = _GO_INT.fullmatch(text)
    if not match:
        return None
    sign, hexadecimal, octal, binary, legacy_octal, decimal = match.groups()
    if hexadecimal:
        value = int(hexadecimal, 16)
    elif octal:
        value = int(octal, 8)
    elif binary:
        value = int(binary, 2)
    elif decimal:
        value = int(decimal)
    else:
        value = int(legacy_octal or "0", 8)
    return -value if sign == "-" else value


def go_string(value: Any) -> str:
    """Convert a YAML value to a string as spf13/cast's ToString does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, (int, str)):
        return str(value)
    return ""


def go_format_float(value: float) -> str:
    """Format like Go's strconv.FormatFloat(value, 'f', -1, 64).

    That is the shortest decimal that reads back as ``value``, without an
    exponent: 1e16 gives ``10000000000000000``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


# Go's number syntax, as dive's rules read their values.

_GO_DECIMAL = re.compile(
    r"[+-]?(?=\.?[0-9])[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9][0-9_]*)?"
)
_GO_HEX = re.compile(
    r"[+-]?0[xX](?=\.?[0-9a-fA-F_]*[0-9a-fA-F])[0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?"
    r"[pP][+-]?[0-9][0-9_]*"
)
_GO_SPECIAL = re.compile(r"([+-]?)(inf|infinity)|(nan)", re.IGNORECASE)


def go_parse_float(text: str) -> float:
    """Parse ``text`` as Go's strconv.ParseFloat(text, 64) does.

    Accepted: decimal and hexadecimal (``0x1p-2``) floats, ``_`` between
    digits, ``inf``/``infinity`` with an optional sign and ``nan`` in any
    case. No spaces. Raises ValueError where Go returns an error, including
    a value too large for a float64.
    """
    special = _GO_SPECIAL.fullmatch(text)
    if special:
        if special.group(3):
            return math.nan
        return -math.inf if special.group(1) == "-" else math.inf
    is_hex = _GO_HEX.fullmatch(text) is not None
    if not is_hex and not _GO_DECIMAL.fullmatch(text):
        raise ValueError(f"invalid syntax: {text!r}")
    if "_" in text and not _underscores_ok(text):
        raise ValueError(f"invalid syntax: {text!r}")
    digits = text.replace("_", "")
    try:
        value = float.fromhex(digits) if is_hex else float(digits)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise ValueError(f"value out of range: {text!r}")
    return value


def _underscores_ok(text: str) -> bool:
    """Check that each ``_`` sits between digits or after a base prefix.

    Go's ParseFloat rejects any other underscore.
    """
    body = text[1:] if text[:1] in "+-" else text
    previous = "^"
    position = 0
    hexadecimal = False
    if len(body) >= 2 and body[0] == "0" and body[1] in "xXoObB":
        previous = "0"
        position = 2
        hexadecimal = body[1] in "xX"
    for char in body[position:]:
        if char.isdigit() or (hexadecimal and char in "abcdefABCDEF"):
            previous = "0"
        elif char == "_":
            if previous != "0":
                return False
            previous = "_"
        elif previous == "_":
            return False
        else:
            previous = "!"
    return previous != "_"


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1 << 10,
    "kib": 1 << 10,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1 << 20,
    "mib": 1 << 20,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1 << 30,
    "gib": 1 << 30,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1 << 40,
    "tib": 1 << 40,
    "p": 1000**5,
    "pb": 1000**5,
    "pi": 1 << 50,
    "pib": 1 << 50,
    "e": 1000**6,
    "eb": 1000**6,
    "ei": 1 << 60,
    "eib": 1 << 60,
}
# Go's unicode.IsSpace, which strings.TrimSpace strips.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
_GO_SPACE += "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def parse_bytes(text: str) -> int:
    """Parse a byte count as go-humanize 1.0.1's ParseBytes does.

    A number (digits, one ``.``, ``,`` as thousands separators) then an
    optional unit, case-insensitive, spaces allowed between: ``b``, SI
    ``kb``/``k`` = 1000 up to ``eb``/``e``, IEC ``kib``/``ki`` = 1024 up to
    ``eib``/``ei``. The product is truncated to whole bytes. Raises
    ValueError for anything else, a sign included, and for 2**64 and more.
    """
    end = 0
    while end < len(text) and (text[end] in "0123456789.," or _is_digit(text[end])):
        end += 1
    number = text[:end].replace(",", "")
    if not re.fullmatch(r"[0-9]*\.?[0-9]*", number) or not re.search("[0-9]", number):
        raise ValueError(f"no number at the start of {text!r}")
    unit = _go_lower(text[end:].strip(_GO_SPACE))
    if unit not in _BYTE_UNITS:
        raise ValueError(f"unknown size unit {unit!r}")
    value = float(number) * float(_BYTE_UNITS[unit])
    if value >= 2.0**64:
        raise ValueError(f"{text!r} is too large")
    return int(value)


def _is_digit(char: str) -> bool:
    # Go's unicode.IsDigit also accepts other scripts' digits, but ParseBytes
    # then slices its bytes by character count, so the number never parses.
    return char.isdigit() and char.isdecimal()


def _go_lower(text: str) -> str:
    # Go lowers one rune at a time; Python maps U+0130 to two characters.
    return "".join("i" if char == "\u0130" else char.lower() for char in text)


# Evaluating rules.


def evaluate_ci(image_or_entries: Any, rules: CIRules | None = None) -> CIResult:
    """Check an image against CI rules, as ``dive --ci`` does.

    ``image_or_entries`` is a :class:`~layerlab.Image` or a sequence of entry
    tables, lowest layer first. ``rules`` default to dive's defaults.
    """
    rules = rules or CIRules()
    table = tabulate_paths(_layer_entries(image_or_entries))
    dive = summarise(table)
    keep = ignore_filter(rules.ignore)
    metrics = dive if keep is None else summarise(table, keep=keep)
    results = (
        _efficiency_rule(metrics, rules),
        _wasted_bytes_rule(metrics, rules),
        _user_wasted_rule(metrics, rules),
    )
    passed = all(result.status != "failed" for result in results)
    return CIResult(
        passed=passed, rules=results, metrics=metrics, dive=dive, settings=rules
    )


def _layer_entries(target: Any) -> list[pd.DataFrame]:
    if hasattr(target, "entries") and hasattr(target, "layers"):
        return [target.entries(index) for index in range(len(target.layers))]
    tables = list(target)
    for table in tables:
        if not isinstance(table, pd.DataFrame):
            raise TypeError(
                "evaluate_ci expects an Image or a sequence of entry DataFrames, "
                f"got a sequence containing {type(table).__name__}"
            )
    return tables


def _efficiency_rule(metrics: DiveMetrics, rules: CIRules) -> RuleResult:
    value, threshold = metrics.efficiency, rules.lowest_efficiency
    return _rule_result(
        "lowestEfficiency",
        value,
        threshold,
        failing=threshold is not None and threshold > value,
        failed=f"efficiency {value!r} is below the lowest allowed {threshold!r}",
        passed=f"efficiency {value!r} >= {threshold!r}",
        exempt=_floor_message(metrics, rules, value, threshold),
    )


def _wasted_bytes_rule(metrics: DiveMetrics, rules: CIRules) -> RuleResult:
    value, threshold = metrics.inefficient_bytes, rules.highest_wasted_bytes
    return _rule_result(
        "highestWastedBytes",
        value,
        threshold,
        failing=threshold is not None and value > threshold,
        failed=f"{counted(value, 'byte')} wasted, more than the highest allowed "
        f"{threshold}",
        passed=f"{counted(value, 'byte')} wasted <= {threshold}",
    )


def _user_wasted_rule(metrics: DiveMetrics, rules: CIRules) -> RuleResult:
    value, threshold = metrics.user_wasted_percent, rules.highest_user_wasted_percent
    return _rule_result(
        "highestUserWastedPercent",
        value,
        threshold,
        failing=threshold is not None and threshold < value,
        failed=f"wasted bytes per user byte {_ratio_text(value)} is above the "
        f"highest allowed {threshold!r}",
        passed=_user_wasted_passed(value, threshold),
        exempt=_floor_message(metrics, rules, value, threshold),
    )


def _user_wasted_passed(value: float, threshold: float | None) -> str:
    if math.isnan(value):
        # dive 0.13 divides 0 wasted by 0 user bytes, and NaN compares false
        # with any threshold, so the rule passes.
        return "wasted bytes per user byte n/a (0 wasted over 0 user bytes)"
    return f"wasted bytes per user byte {value!r} <= {threshold!r}"


def _ratio_text(value: float) -> str:
    return "n/a" if math.isnan(value) else repr(value)


def _rule_result(
    name: str,
    value: float,
    threshold: float | None,
    *,
    failing: bool,
    failed: str,
    passed: str,
    exempt: str | None = None,
) -> RuleResult:
    """Return a rule's outcome; ``exempt`` turns a failing rule into a pass."""
    if threshold is None:
        return RuleResult(name, value, None, "skipped", "rule disabled")
    if not failing:
        return RuleResult(name, value, threshold, "passed", passed)
    if exempt is None:
        return RuleResult(name, value, threshold, "failed", failed)
    return RuleResult(name, value, threshold, "passed", exempt)


def _floor_message(
    metrics: DiveMetrics, rules: CIRules, value: float, threshold: float | None
) -> str | None:
    """Return why a ratio rule passes below ``min_wasted_bytes``, or None."""
    wasted = metrics.inefficient_bytes
    if wasted >= rules.min_wasted_bytes:
        return None
    return (
        f"{_ratio_text(value)} is out of bounds ({threshold!r}), but only "
        f"{counted(wasted, 'byte')} wasted, below min_wasted_bytes "
        f"{rules.min_wasted_bytes}"
    )


# Ignore globs.


def ignore_filter(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """Return a predicate that is False for paths the globs cover; None for no globs."""
    if not patterns:
        return None
    expression = re.compile("|".join(f"(?:{glob_regex(p)})" for p in patterns))

    def keep(path: str) -> bool:
        return expression.fullmatch("/" + path.strip("/")) is None

    return keep


def glob_regex(pattern: str) -> str:
    """Translate a path glob to a regular expression over ``"/" + path``.

    The expression also matches every path below one the glob matches. A
    trailing ``**`` needs at least one component, so ``var/**`` covers what
    is inside ``var`` but not ``var`` itself.
    """
    parts = pattern.strip("/").split("/")
    pieces = []
    for index, part in enumerate(parts):
        if part == "**":
            last = index == len(parts) - 1
            pieces.append("(?:/[^/]+)+" if last else "(?:/[^/]+)*")
        else:
            pieces.append("/" + _component_regex(part))
    return "".join(pieces) + "(?:/.*)?"


def _component_regex(part: str) -> str:
    pieces: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        index += 1
        if char == "*":
            pieces.append("[^/]*")
        elif char == "?":
            pieces.append("[^/]")
        elif char == "[" and (end := _class_end(part, index)) > 0:
            pieces.append(_class_regex(part[index:end]))
            index = end + 1
        else:
            pieces.append(re.escape(char))
    return "".join(pieces)


def _class_end(part: str, start: int) -> int:
    # As in fnmatch, a "]" right after "[" or "[!" belongs to the class.
    search = start + 1 if part[start : start + 1] in ("!", "^") else start
    if part[search : search + 1] == "]":
        search += 1
    return part.find("]", search)


def _class_regex(content: str) -> str:
    negate = content[:1] in ("!", "^")
    body = content[1:] if negate else content
    body = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"[{'^' if negate else ''}{body}]"
