"""Time layerlab's analysis against dive's on the same image archives.

Usage: python benchmarks/analyze_vs_dive.py ARCHIVE [ARCHIVE ...] [--runs N]

Each archive is analysed by ``dive --json`` and by ``layerlab analyze
--json``, both reading the same file, cold (an empty layer cache) and warm (the cache filled by the cold
run), each as a whole process. The script prints the median wall time, the
peak resident memory of each process, and layerlab's time as a fraction of
dive's. Archive names ending in .tar are read as docker archives unless they
contain ``oci`` in their name; pass ``oci-archive:FILE`` to be explicit.

dive 0.13 has no OCI source, but its docker-archive source reads the OCI
layout that Docker 25 and later save, which adds a ``manifest.json``. For an
OCI archive the script therefore writes a copy with that file added (as
skopeo does not write it) and gives the copy to both tools.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time


def _measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and peak RSS in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {error}")
    return wall, usage.ru_maxrss / 1024


def _dive_source(reference: str) -> tuple[str, str]:
    if reference.startswith("oci-archive:"):
        return "oci-archive", reference.split(":", 1)[1]
    if reference.startswith("docker-archive:"):
        return "docker-archive", reference.split(":", 1)[1]
    return (
        "oci-archive" if "oci" in os.path.basename(reference) else "docker-archive"
    ), reference


def _with_docker_manifest(path: str, scratch: str) -> str:
    """Copy an OCI archive and add the manifest.json Docker 25 writes."""
    copy = os.path.join(scratch, os.path.basename(path))
    shutil.copyfile(path, copy)
    with tarfile.open(copy) as archive:
        index = json.load(archive.extractfile("index.json"))
        digest = index["manifests"][0]["digest"]
        manifest = json.load(archive.extractfile(_blob(digest)))
    entry = [
        {
            "Config": _blob(manifest["config"]["digest"]),
            "RepoTags": [],
            "Layers": [_blob(layer["digest"]) for layer in manifest["layers"]],
        }
    ]
    data = json.dumps(entry).encode()
    with tarfile.open(copy, "a") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return copy


def _blob(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def bench(reference: str, runs: int, bindir: str) -> dict[str, tuple[float, float]]:
    """Return median (wall, peak MiB) for dive, layerlab cold and warm."""
    transport, path = _dive_source(reference)
    results: dict[str, list[tuple[float, float]]] = {"dive": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-") as scratch:
        if transport == "oci-archive":
            path = _with_docker_manifest(path, scratch)
            transport = "docker-archive"
        env = dict(os.environ, CI="true")
        dive_json = os.path.join(scratch, "dive.json")
        layerlab = [
            os.path.join(bindir, "layerlab"),
            "analyze",
            "--json",
            f"{transport}:{path}",
        ]
        dive = [
            os.path.join(bindir, "dive"),
            "--source",
            transport,
            path,
            "--json",
            dive_json,
        ]
        for _ in range(runs):
            results["dive"].append(_measure(dive, env))
            cache = os.path.join(scratch, "cache")
            shutil.rmtree(cache, ignore_errors=True)
            env_cache = dict(env, LAYERLAB_CACHE_DIR=cache)
            results["cold"].append(_measure(layerlab, env_cache))
            results["warm"].append(_measure(layerlab, env_cache))
    return {
        name: (
            statistics.median(w for w, _ in values),
            statistics.median(m for _, m in values),
        )
        for name, values in results.items()
    }


def main() -> None:
    """Run the comparison for every archive and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bindir = os.path.dirname(sys.executable)
    header = (
        f"{'archive':<34} {'dive s':>8} {'cold s':>8} {'warm s':>8} "
        f"{'cold/dive':>9} {'dive MiB':>9} {'cold MiB':>9} {'warm MiB':>9}"
    )
    print(header)
    for reference in args.archives:
        figures = bench(reference, args.runs, bindir)
        dive, cold, warm = figures["dive"], figures["cold"], figures["warm"]
        print(
            f"{os.path.basename(reference)[-34:]:<34} {dive[0]:8.2f} "
            f"{cold[0]:8.2f} {warm[0]:8.2f} {cold[0] / dive[0]:9.2f} "
            f"{dive[1]:9.0f} {cold[1]:9.0f} {warm[1]:9.0f}"
        )


if __name__ == "__main__":
    main()
