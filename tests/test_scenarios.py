"""The scenarios of the talk: their files, the AWS CLI stand-in, and real builds.

Expected values are worked out independently. The Dockerfiles give by hand
which steps the legacy builder can take from its cache after an edit. The
stand-in zip's own directory listing gives the bytes that the ``rm`` cannot
take back, and the engine gives the image sizes.
"""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from layerlab import OptionError, scenarios
from layerlab._awscli_standin import (
    OFFICIAL_URL,
    awscli_download,
    is_reachable,
    official_url,
    stand_in_zip,
)
from layerlab.scenarios import (
    APP_DIR,
    RESULT_COLUMNS,
    Variant,
    VariantRun,
    against_slides,
    get_scenario,
    list_scenarios,
    results_table,
    results_view,
)

# The only build arguments the Dockerfiles may declare: the base images and
# the download URL.
ALLOWED_ARGS = {"BASE_IMAGE", "RUNTIME_IMAGE", "AWSCLI_URL"}


# The catalog and its files


def test_scenarios_in_talk_order() -> None:
    names = [scenario.name for scenario in list_scenarios()]
    assert names == ["build-cache", "multistage", "rm-does-not-shrink", "squash"]
    assert [scenario.number for scenario in list_scenarios()] == [1, 2, 3, 4]


def test_scenario_lookup_by_number_name_notebook() -> None:
    assert get_scenario(2).name == "multistage"
    assert get_scenario("3").name == "rm-does-not-shrink"
    assert get_scenario("squash").number == 4
    assert get_scenario("10-build-cache").name == "build-cache"


def test_unknown_scenario_and_variant_rejected() -> None:
    with pytest.raises(OptionError, match="no scenario 'nope'"):
        get_scenario("nope")
    with pytest.raises(OptionError, match="has no variant 'nope'"):
        get_scenario("multistage").variant("nope")


def test_every_variant_has_its_dockerfile() -> None:
    for scenario in list_scenarios():
        if scenario.name == "squash":
            continue
        files = {path.name for path in scenario.directory.glob("Dockerfile.*")}
        expected = {f"Dockerfile.{variant.name}" for variant in scenario.variants}
        assert files == expected, scenario.name


def test_dockerfiles_declare_only_allowed_args() -> None:
    for path in Path(scenarios.FILES_DIR).glob("*/Dockerfile.*"):
        declared = set(re.findall(r"^ARG (\w+)", path.read_text(), re.MULTILINE))
        assert declared <= ALLOWED_ARGS, path.name


def test_notebooks_exist_for_scenarios() -> None:
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    for scenario in list_scenarios():
        assert (notebooks / scenario.notebook).is_file(), scenario.notebook


def test_app_manifest_dependencies() -> None:
    manifest = json.loads((APP_DIR / "package.json").read_text())
    assert set(manifest["dependencies"]) == {"express"}
    assert set(manifest["devDependencies"]) == {"eslint", "mocha", "nodemon"}


def test_lock_file_matches_manifest() -> None:
    manifest = json.loads((APP_DIR / "package.json").read_text())
    lock = json.loads((APP_DIR / "package-lock.json").read_text())
    root = lock["packages"][""]
    assert lock["lockfileVersion"] == 3
    assert root["dependencies"] == manifest["dependencies"]
    assert root["devDependencies"] == manifest["devDependencies"]
    for name in ("express", "eslint", "mocha", "nodemon"):
        assert f"node_modules/{name}" in lock["packages"], name
    assert lock["packages"]["node_modules/eslint"]["dev"] is True
    assert "dev" not in lock["packages"]["node_modules/express"]


def test_dockerignore_keeps_dockerfiles_out() -> None:
    ignored = (APP_DIR / ".dockerignore").read_text().split()
    assert "node_modules" in ignored
    assert "Dockerfile*" in ignored


def test_server_edit_changes_greeting() -> None:
    edit = get_scenario("build-cache").variant("deps-first").edit
    assert edit is not None
    original = (APP_DIR / edit.path).read_text()
    edited = edit.apply(original)
    assert edited != original
    assert re.search(r"edited \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", edited)
    assert edited.count("\n") == original.count("\n")


def test_install_edit_adds_package() -> None:
    scenario = get_scenario("build-cache")
    for name in ("update-separate", "update-combined"):
        edit = scenario.variant(name).edit
        assert edit is not None
        assert edit.path == f"Dockerfile.{name}"
        edited = edit.apply(scenario.dockerfile(name).read_text())
        assert "--no-install-recommends jq tree  # edited " in edited


def test_edit_of_changed_file_rejected() -> None:
    edit = get_scenario("build-cache").variant("deps-first").edit
    assert edit is not None
    with pytest.raises(OptionError, match="greeting"):
        edit.apply("console.log('something else');\n")


# Tables without an engine: variants made of plain records


def _run_of(rows: list[tuple[str, str, int, int]]) -> Any:
    run = scenarios.ScenarioRun(get_scenario("rm-does-not-shrink"))
    for scenario, variant, size, layers in rows:
        run.variants[variant] = VariantRun(
            scenario=scenario,
            variant=Variant(variant, "summary"),
            tag=f"example/{variant}",
            image_id="sha256:" + "0" * 64,
            size=size,
            layers=layers,
            seconds=1.5,
        )
    return run


def test_results_table_columns_and_values() -> None:
    run = _run_of([("rm-does-not-shrink", "rm-same-run", 451_000_000, 7)])
    table = results_table([run])
    assert list(table.columns) == list(RESULT_COLUMNS)
    row = table.iloc[0]
    assert row["size_mb"] == 451.0
    assert row["layers"] == 7
    assert row["build_s"] == 1.5
    assert pd.isna(row["rebuild_s"])
    assert pd.isna(row["build_cache_hits"])


def test_against_slides_ratio() -> None:
    run = _run_of(
        [
            ("rm-does-not-shrink", "rm-separate", 699_300_000, 8),
            ("rm-does-not-shrink", "rm-same-run", 506_000_000, 7),
        ]
    )
    table = against_slides(results_table([run])).set_index("variant")
    assert table.loc["rm-separate", "talk"] == "777 MB"
    assert table.loc["rm-separate", "ratio"] == pytest.approx(0.9)
    assert table.loc["rm-same-run", "ratio"] == pytest.approx(1.0)


def test_results_view_blank_cells() -> None:
    run = _run_of([("rm-does-not-shrink", "no-rm", 697_000_000, 7)])
    view = results_view(results_table([run]))
    assert view.loc[0, "cache hits"] == ""
    assert view.loc[0, "size (MB)"] == 697


def test_slide_figures_of_talk() -> None:
    figures = scenarios.slide_figures().set_index(["scenario", "variant"])["talk_mb"]
    assert figures[("multistage", "single-stage")] == 1300
    assert figures[("multistage", "multistage")] == 300
    assert figures[("rm-does-not-shrink", "rm-separate")] == 777
    assert figures[("rm-does-not-shrink", "rm-same-run")] == 506
    assert figures[("squash", "original")] == 770
    assert figures[("squash", "docker-squash")] == 480


# The AWS CLI stand-in


@pytest.fixture(scope="module")
def standin_zip() -> Path:
    return stand_in_zip(architecture="x86_64")


def test_official_url_per_architecture() -> None:
    assert official_url("amd64") == OFFICIAL_URL.format(arch="x86_64")
    assert official_url("arm64").endswith("awscli-exe-linux-aarch64.zip")
    with pytest.raises(OptionError, match="s390x"):
        official_url("s390x")


def test_standin_zip_layout(standin_zip: Path) -> None:
    with zipfile.ZipFile(standin_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    assert "aws/install" in infos
    assert "aws/dist/aws" in infos
    assert any(name.startswith("aws/dist/botocore/data/") for name in infos)
    assert any(name.startswith("aws/dist/awscli/") for name in infos)
    for name in ("aws/install", "aws/dist/aws", "aws/dist/aws_completer"):
        mode = infos[name].external_attr >> 16
        assert mode & stat.S_IXUSR, name


def test_standin_zip_sizes(standin_zip: Path) -> None:
    with zipfile.ZipFile(standin_zip) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    # In the talk's figures, the real AWS CLI v2 zip and folder took 271 MB
    # together (777 MB - 506 MB). The stand-in stays within a fifth of that.
    together = standin_zip.stat().st_size + unpacked
    assert 0.8 * 271e6 < together < 1.2 * 271e6
    assert 150e6 < unpacked < 260e6


def test_standin_zip_reused_from_cache(standin_zip: Path) -> None:
    before = standin_zip.stat().st_mtime_ns
    assert stand_in_zip(architecture="amd64") == standin_zip
    assert standin_zip.stat().st_mtime_ns == before


def test_standin_served_on_loopback(standin_zip: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with awscli_download(architecture="x86_64", stand_in=True) as download:
        assert download.stand_in
        assert download.url.startswith("http://127.0.0.1:")
        assert download.zip_path == standin_zip
        assert is_reachable(download.url, timeout=5)
        with opener.open(download.url, timeout=30) as response:
            body = response.read()
        missing = download.url.rsplit("/", 1)[0] + "/other.zip"
        with pytest.raises(urllib.error.HTTPError):
            opener.open(missing, timeout=5)
    assert body == standin_zip.read_bytes()
    assert "stand-in" in download.description


def test_unreachable_url_detected() -> None:
    # A bound socket that does not listen refuses every connection.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        assert not is_reachable(f"http://127.0.0.1:{port}/awscli.zip", timeout=2)


def test_real_download_not_served() -> None:
    with awscli_download(architecture="x86_64", stand_in=False) as download:
        assert not download.stand_in
        assert download.url == OFFICIAL_URL.format(arch="x86_64")
        assert download.zip_path is None


# Builds through the engine


@pytest.fixture(scope="module")
def build_cache_run(engine: Any) -> Any:
    return scenarios.build_scenario("build-cache")


@pytest.fixture(scope="module")
def rm_run(engine: Any) -> Any:
    return scenarios.build_scenario("rm-does-not-shrink")


def _cached(run: Any, variant: str, instruction: str) -> bool:
    steps = run.steps(variant, rebuild=True)
    matches = steps[steps["instruction"].str.startswith(instruction)]
    return bool(matches["cached"].iloc[0])


@pytest.mark.engine
def test_copy_all_first_reruns_install(build_cache_run: Any) -> None:
    assert not _cached(build_cache_run, "copy-all-first", "RUN npm install")
    row = build_cache_run.table().set_index("variant").loc["copy-all-first"]
    # ARG, FROM, WORKDIR, then COPY . . is step 4: the first to miss.
    assert row["first_rebuilt_step"] == 4
    assert row["rebuild_cache_hits"] == 1


@pytest.mark.engine
def test_deps_first_reuses_install(build_cache_run: Any) -> None:
    assert _cached(build_cache_run, "deps-first", "RUN npm install")
    row = build_cache_run.table().set_index("variant").loc["deps-first"]
    # ARG, FROM, WORKDIR, COPY manifests, RUN npm install, then COPY . . (6).
    assert row["first_rebuilt_step"] == 6
    assert row["rebuild_cache_hits"] == 3
    slow = build_cache_run.table().set_index("variant").loc["copy-all-first"]
    assert row["rebuild_s"] < slow["rebuild_s"]


@pytest.mark.engine
def test_separate_update_step_cached(build_cache_run: Any) -> None:
    assert _cached(build_cache_run, "update-separate", "RUN apt-get update")
    assert not _cached(build_cache_run, "update-separate", "RUN apt-get install")
    assert not _cached(build_cache_run, "update-combined", "RUN apt-get update")


@pytest.mark.engine
def test_apt_index_age(build_cache_run: Any) -> None:
    ages = scenarios.apt_index_age(build_cache_run).set_index("variant")
    assert ages.loc["update-combined", "index_age_s"] == 0
    assert ages.loc["update-separate", "index_age_s"] >= 0
    assert bool(ages.loc["update-separate", "update_step_cached"])
    assert not bool(ages.loc["update-combined", "update_step_cached"])


@pytest.mark.engine
def test_build_cache_image_runs(build_cache_run: Any, docker_client: Any) -> None:
    output = docker_client.containers.run(
        build_cache_run.tag("deps-first"),
        ["node", "-e", "require('./server'); console.log('loaded')"],
        remove=True,
        network_mode="none",
    )
    assert output.decode().strip() == "loaded"


@pytest.mark.engine
def test_rm_separate_as_large_as_no_rm(rm_run: Any) -> None:
    sizes = rm_run.table().set_index("variant")["size_bytes"]
    # The rm layer adds only two whiteouts, which have no content.
    assert sizes["rm-separate"] == sizes["no-rm"]


@pytest.mark.engine
def test_rm_same_run_saves_zip_and_folder(rm_run: Any) -> None:
    sizes = rm_run.table().set_index("variant")["size_bytes"]
    download = rm_run.awscli
    assert download is not None
    if not download.stand_in:
        pytest.skip("the real AWS CLI zip was used; its sizes are not known here")
    expected = download.zip_bytes + download.unpacked_bytes
    saved = sizes["rm-separate"] - sizes["rm-same-run"]
    # The engine's sizes count file contents, so the saving is the zip plus
    # its unpacked files. The tolerance covers how a storage driver counts
    # directories.
    assert saved == pytest.approx(expected, rel=0.005)


@pytest.mark.engine
def test_rm_image_runs_installed_cli(rm_run: Any, docker_client: Any) -> None:
    output = docker_client.containers.run(
        rm_run.tag("rm-same-run"), remove=True, network_mode="none"
    )
    assert output.decode().startswith("aws-cli/")


@pytest.mark.engine
def test_multistage_shares_build_stage(engine: Any) -> None:
    run = scenarios.build_scenario("multistage", rebuild=False)
    steps = run.steps("multistage")
    build_stage = steps[(steps["step"] >= 4) & (steps["step"] <= 8)]
    # The build stage repeats the single-stage steps, built just before.
    assert build_stage["cached"].all()
    sizes = run.table().set_index("variant")["size_bytes"]
    assert sizes["multistage"] < 300e6
    assert sizes["single-stage"] > 1e9


@pytest.mark.engine
def test_squash_variants(rm_run: Any) -> None:
    run = scenarios.build_scenario("squash")
    table = run.table().set_index("variant")
    rm_sizes = rm_run.table().set_index("variant")["size_bytes"]
    assert table.loc["original", "size_bytes"] == rm_sizes["rm-separate"]
    assert table.loc["docker-squash", "layers"] == 1
    assert table.loc["layerlab", "layers"] == 1
    # Squashing everything removes the installer's bytes, as the same-step
    # rm does, and the little waste of the base image too.
    squashed = table.loc["docker-squash", "size_bytes"]
    assert squashed == pytest.approx(rm_sizes["rm-same-run"], rel=0.01)
    assert squashed <= rm_sizes["rm-same-run"]
    assert table.loc["layerlab", "size_bytes"] == squashed
    # Above the base, the result stores what the same-step rm stores.
    base_layers = len(_layers(run.bases["node:22-slim"].tag))
    assert table.loc["layerlab-above-base", "layers"] == base_layers + 1
    above = table.loc["layerlab-above-base", "size_bytes"]
    assert above == rm_sizes["rm-same-run"]


def _layers(reference: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        return client.api.inspect_image(reference)["RootFS"]["Layers"]
    finally:
        client.close()


# The command line


def _layerlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerlab.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_list_json() -> None:
    result = _layerlab("scenarios", "list", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [entry["name"] for entry in document] == [
        "build-cache",
        "multistage",
        "rm-does-not-shrink",
        "squash",
    ]
    variants = {v["name"]: v for v in document[2]["variants"]}
    assert variants["rm-same-run"]["talk"] == "506 MB"
    assert (
        variants["rm-same-run"]["tag"]
        == "layerlab-scenario/rm-does-not-shrink:rm-same-run"
    )


def test_cli_unknown_scenario_fails() -> None:
    result = _layerlab("scenarios", "build", "nope")
    assert result.returncode == 2
    assert "no scenario 'nope'" in result.stderr


@pytest.mark.engine
def test_cli_build_json(rm_run: Any) -> None:
    result = _layerlab("scenarios", "build", "3", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    sizes = {row["variant"]: row["size_bytes"] for row in document["results"]}
    expected = rm_run.table().set_index("variant")["size_bytes"].to_dict()
    assert sizes == expected
    talk = {row["variant"]: row["talk"] for row in document["against_talk"]}
    assert talk["rm-separate"] == "777 MB"


def test_public_names_documented() -> None:
    assert len(set(scenarios.__all__)) == len(scenarios.__all__)
    for name in scenarios.__all__:
        value = getattr(scenarios, name)
        if callable(value):
            assert value.__doc__, name
