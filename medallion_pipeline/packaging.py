"""The EMR Serverless job bundle: what ``medallion package-job`` builds and uploads.

    <bundle>/entrypoint.py          the driver (``jobs/entrypoint.py``), the job run's entry point
    <bundle>/medallion_pipeline.zip the package, shipped with ``--py-files`` (``spark.submit.pyFiles``)
    <bundle>/pyenv.tar.gz           a relocatable Python with the driver's dependencies (``spark.archives``)
    <bundle>/manifest.json          what was packed, from which interpreter, for which platform

``pyenv.tar.gz`` is built from *this* interpreter and its installed distributions, the way ``venv-pack`` does:
the interpreter binary, its shared library and standard library, and the installed files (wheel ``RECORD``)
of every distribution the driver needs. PySpark and py4j are left out: the EMR runtime provides them. The
archive runs only on a system like the one it was built on, so the real bundle must be built on Amazon Linux
2023 (x86_64 or arm64, matching the application's architecture) with Python 3.11, e.g. in an
``amazonlinux:2023`` container; a bundle built elsewhere is good for local runs and tests only.
"""

from __future__ import annotations

import importlib.metadata as metadata
import io
import json
import os
import platform
import sys
import sysconfig
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# What the driver imports (``jobs/`` and everything below it); never ``dagster`` itself.
DRIVER_REQUIREMENTS = ("dagster-pipes", "pandera[pyspark]", "pandas", "pyarrow", "numpy", "boto3")
PROVIDED_BY_RUNTIME = frozenset({"pyspark", "py4j"})  # EMR Serverless's Spark ships its own
_STDLIB_SKIP = frozenset({"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                          "__pycache__", "pydoc_data"})
# Finds the shared libpython next to the interpreter wherever the archive is unpacked (./environment on EMR).
_PYTHON_WRAPPER = """#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/python@VERSION@" "$@"
"""
BUNDLE_FILES = ("entrypoint.py", "medallion_pipeline.zip", "pyenv.tar.gz", "manifest.json")


@dataclass
class Bundle:
    directory: Path
    distributions: list[str]
    seconds: float

    def path(self, name: str) -> Path:
        return self.directory / name


def driver_distributions(requirements=DRIVER_REQUIREMENTS) -> list[metadata.Distribution]:
    """The installed distributions the requirements need, transitively (markers and extras evaluated)."""
    found: dict[str, metadata.Distribution] = {}
    extras_done: dict[str, set[str]] = {}
    queue = [Requirement(r) for r in requirements]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name in PROVIDED_BY_RUNTIME:
            continue
        new_extras = set(req.extras) - extras_done.get(name, set())
        if name in found and not new_extras:
            continue
        dist = found.get(name) or metadata.distribution(req.name)
        found[name] = dist
        extras_done.setdefault(name, set()).update(req.extras)
        for text in dist.requires or []:
            dep = Requirement(text)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                queue.append(dep)
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _skip(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def write_python_environment(target: Path, distributions: list[metadata.Distribution]) -> None:
    """``pyenv.tar.gz``: bin/python (+ the interpreter), lib/libpython, the standard library, site-packages."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = f"lib/python{version}/site-packages"
    with tarfile.open(target, "w:gz", compresslevel=3) as tar:
        tar.add(os.path.realpath(sys.executable), f"bin/python{version}")
        wrapper = _PYTHON_WRAPPER.replace("@VERSION@", version).encode()
        info = tarfile.TarInfo("bin/python")
        info.size, info.mode = len(wrapper), 0o755
        tar.addfile(info, io.BytesIO(wrapper))
        if sysconfig.get_config_var("Py_ENABLE_SHARED"):
            library = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")
            tar.add(os.path.realpath(library), f"lib/{library.name}")
        for path in sorted(stdlib.rglob("*")):
            relative = path.relative_to(stdlib)
            if path.is_file() and not _skip(path) and not _STDLIB_SKIP.intersection(relative.parts[:1]) \
                    and not relative.parts[0].startswith("config-"):
                tar.add(path, f"lib/python{version}/{relative}", recursive=False)
        for dist in distributions:
            root = Path(dist.locate_file(""))
            for file in dist.files or []:
                source = Path(dist.locate_file(file))
                if file.parts[0] == ".." or _skip(source) or not source.is_file():
                    continue  # console scripts and caches: not needed by the driver
                tar.add(source, f"{site}/{source.relative_to(root)}", recursive=False)


def write_package_zip(target: Path) -> None:
    """``medallion_pipeline.zip``: the package's modules, importable from ``--py-files``."""
    package = Path(__file__).resolve().parent
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*.py")):
            if not _skip(path):
                zf.write(path, f"medallion_pipeline/{path.relative_to(package)}")


def build_bundle(directory: Path) -> Bundle:
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    from medallion_pipeline.jobs import entrypoint

    (directory / "entrypoint.py").write_bytes(Path(entrypoint.__file__).read_bytes())
    write_package_zip(directory / "medallion_pipeline.zip")
    distributions = driver_distributions()
    write_python_environment(directory / "pyenv.tar.gz", distributions)
    names = [f"{d.metadata['Name']}=={d.version}" for d in distributions]
    (directory / "manifest.json").write_text(json.dumps({
        "python": platform.python_version(), "platform": f"{platform.system()}-{platform.machine()}",
        "libc": "-".join(platform.libc_ver()), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "distributions": names, "provided_by_runtime": sorted(PROVIDED_BY_RUNTIME),
    }, indent=2))
    return Bundle(directory, names, time.monotonic() - started)


def upload_bundle(bundle: Bundle, uri: str, client=None) -> list[str]:
    """Upload every bundle file under ``s3://bucket/prefix``; returns the object URIs."""
    import boto3

    if not uri.startswith("s3://"):
        raise ValueError(f"the job bundle goes to an s3:// URI, got {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = client or boto3.client("s3")
    uploaded = []
    for name in BUNDLE_FILES:
        key = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
        client.upload_file(str(bundle.path(name)), bucket, key)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded
