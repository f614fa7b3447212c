"""The container images, ``deploy/docker/``: what can be checked without building them (no container engine here).

The Dockerfiles are parsed (comments dropped, continuation lines joined, one instruction each) and held to
rules, each with a failing example: pinned base images, a non-root final user, no secrets, COPY sources that
exist and are in the build context. The code location's CMD and HEALTHCHECK are then run as the image runs
them, against the project installed in ``.venv``, from a directory outside the repository. The project is
installed editable there, so that still resolves to the source tree: what this proves is that the command
loads the installed distribution's module, not a file next to it; the wheel build itself is the image's.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from medallion_pipeline.launchers.emr import IMAGE_ENTRY_POINT
from medallion_pipeline.packaging import PROVIDED_BY_RUNTIME, driver_distributions
from medallion_pipeline.settings import Settings
from medallion_pipeline_tests.dagster_dev import EXEC_WITH_DEFAULT_SIGNALS, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKER = PROJECT_ROOT / "deploy" / "docker"
CODE_LOCATION = DOCKER / "code-location.Dockerfile"
EMR = DOCKER / "emr-serverless.Dockerfile"
VENV_BIN = Path(sys.executable).parent
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
SECRET_NAME = re.compile(r"(?i)(secret|passw|token|credential|(^|_)(api|access|private|pii)?_?key(_id)?$)")
AWS_CREDENTIALS = re.compile(r"(?i)aws_(access_key_id|secret_access_key|session_token)|\b(AKIA|ASIA)[0-9A-Z]{16}\b")
SECRET_FILE = re.compile(
    r"(?i)(^|/)(\.env[^/]*|[^/]*credentials[^/]*|\.aws|[^/]*\.pem|[^/]*\.key|id_rsa[^/]*|\.netrc|\.pypirc)/?$")
BAD = """\
FROM python
FROM python:latest
FROM python:3.11-slim
COPY .env /app/.env
COPY no_such_dir /app/
ENV AWS_SECRET_ACCESS_KEY=abc
ARG DB_PASSWORD=hunter2
RUN pip install --no-cache-dir pyspark==3.5.9 && pip install -r requirements.txt
RUN python3.11 -m pip install --no-deps py4j
USER root
"""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def argv(self) -> list[str]:
        """The exec form (a JSON array) as a list; the shell form split as a shell would."""
        return json.loads(self.args) if self.args.startswith("[") else shlex.split(self.args)


def parse(text: str) -> list[Instruction]:
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not (stripped or pending):
            continue  # comments go even inside a continued instruction, as Docker drops them
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the last instruction ends with a continuation"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    start = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[start:]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert found, f"no {keyword}"
    return found[-1]  # the one in effect


def unpinned_base_images(instructions: list[Instruction]) -> list[str]:
    """Every FROM names a digest, or an explicit tag whose name:tag carries an exact x.y.z release (``latest``
    passes only where the repository itself is one release, as AWS's emr-7.5.0); or an earlier stage."""
    problems, stages = [], set()
    for ins in (i for i in instructions if i.keyword == "FROM"):
        words = [w for w in ins.argv() if not w.startswith("--")]
        image, name_tag = words[0], words[0].rsplit("/", 1)[-1]
        pinned = image in stages or re.search(r"@sha256:[0-9a-f]{64}$", image) or (
            "$" not in image and ":" in name_tag and EXACT_VERSION.search(name_tag))
        problems += [] if pinned else [f"FROM {image}: not an exact release"]
        if len(words) == 3 and words[1].lower() == "as":
            stages.add(words[2])
    return problems


def final_user_problems(instructions: list[Instruction]) -> list[str]:
    users = [ins.args for ins in final_stage(instructions) if ins.keyword == "USER"]
    if not users:
        return ["the final stage has no USER: it runs as its base image's user"]
    return [f"USER {users[-1]}: the image ends as root"] if users[-1].split(":")[0] in ("root", "0") else []


def copy_sources(ins: Instruction) -> list[str]:
    return [word for word in ins.argv() if not word.startswith("--")][:-1]


def secret_problems(text: str) -> list[str]:
    problems = [f"AWS credential {m.group(0)} in the file" for m in AWS_CREDENTIALS.finditer(text)]
    for ins in parse(text):
        if ins.keyword in ("ENV", "ARG"):
            words = ins.argv()
            # ENV key=value ..., the legacy ENV key value, ARG name[=default]
            pairs = [w.partition("=")[::2] for w in words] if "=" in words[0] or ins.keyword == "ARG" else [
                (words[0], " ".join(words[1:]))]
            for name, value in pairs:
                if SECRET_NAME.search(name) and (value or ins.keyword == "ARG"):
                    problems.append(f"{ins.keyword} {name}: a secret in the image (its config or its history)")
        if ins.keyword in ("COPY", "ADD"):
            problems += [f"{ins.keyword} {src}: a credentials file" for src in copy_sources(ins)
                         if SECRET_FILE.search(src)]
    return problems


def healthcheck_problems(instructions: list[Instruction]) -> list[str]:
    checks = [ins for ins in final_stage(instructions) if ins.keyword == "HEALTHCHECK"]
    return [] if checks and " CMD " in f" {checks[-1].args} " else ["no HEALTHCHECK"]


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern]]:
    """.dockerignore patterns as (exclude?, regex), in order; the last one matching a path or a parent wins."""
    rules = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        keep, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        tokens = re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", pattern)
        regex = "".join({"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(tok) or re.escape(tok)
                        for tok in tokens)
        rules.append((not keep, re.compile(regex)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for exclude, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = exclude
    return verdict


MUST_STAY_OUT = (".git/HEAD", ".venv/bin/python", ".venv-tools/bin/python", ".venv311/bin/python",
                 "data/landing/a.json", ".dagster_home/dagster.yaml", "benchmarks/.data/x.json", ".env",
                 ".env.production", "deploy/.env", "medallion_pipeline/.env.local",
                 "medallion_pipeline/__pycache__/a.pyc", "medallion_pipeline_tests/conftest.py")


def dockerignore_problems(text: str) -> list[str]:
    rules = ignore_rules(text)
    return [f"{path} is sent to the build" for path in MUST_STAY_OUT if not ignored(path, rules)]


def copy_source_problems(instructions: list[Instruction], root: Path, ignore_text: str) -> list[str]:
    problems, stages, rules = [], set(), ignore_rules(ignore_text)
    for ins in instructions:
        if ins.keyword == "FROM" and " as " in f" {ins.args.lower()} ":
            stages.add(ins.argv()[-1])
        if ins.keyword not in ("COPY", "ADD"):
            continue
        origin = next((w.partition("=")[2] for w in ins.argv() if w.startswith("--from=")), None)
        if origin is not None:
            problems += [] if origin in stages else [f"{ins.keyword} --from={origin}: no such stage"]
            continue
        for source in copy_sources(ins):
            matches = sorted(root.glob(source))
            if not matches:
                problems.append(f"{ins.keyword} {source}: not in the repository")
            problems += [f"{ins.keyword} {source}: left out by .dockerignore" for m in matches
                         if ignored(m.relative_to(root).as_posix(), rules)]
    return problems


def shell_commands(script: str) -> list[list[str]]:
    """A RUN's shell script as its simple commands (split at &&, ||, ; and |), each as words."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        commands.append([]) if token in ("&&", "||", ";", "|") else commands[-1].append(token)
    return [command for command in commands if command]


def pip_installs(instructions: list[Instruction]) -> list[list[str]]:
    """The arguments of every ``pip install`` (or ``python -m pip install``) the RUN instructions run."""
    commands = [c for ins in instructions if ins.keyword == "RUN" for c in shell_commands(ins.args)]
    return [c[c.index("install") + 1:] for c in commands
            if "install" in c and (Path(c[0]).name.startswith("pip") or c[1:3] == ["-m", "pip"])]


def emr_pip_problems(instructions: list[Instruction], root: Path) -> list[str]:
    """Every pip install of the EMR image is --no-deps and names no PySpark or py4j, nor does its -r file (read
    from the repository file the image copied there)."""
    copied = {ins.argv()[-1]: ins.argv()[0] for ins in instructions
              if ins.keyword == "COPY" and len(ins.argv()) == 2}
    problems = []
    for args in pip_installs(instructions):
        named, options = [], iter(args)
        for arg in options:
            if arg in ("-r", "-c"):
                source = copied.get(next(options, ""))
                if source is None:
                    problems.append(f"pip install {' '.join(args)}: a {arg} file not copied from the repository")
                elif arg == "-r":
                    named += list(read_lock((root / source).read_text())[0])
            elif not arg.startswith(("-", "/", ".")):
                named.append(canonicalize_name(Requirement(arg).name))
        if "--no-deps" not in args:
            problems.append(f"pip install {' '.join(args)}: resolves dependencies (PySpark among them)")
        problems += [f"pip install {name}: EMR's Spark provides it" for name in named if name in PROVIDED_BY_RUNTIME]
    return problems


def read_lock(text: str) -> tuple[dict[str, str], list[str]]:
    """A requirements file's exact pins (canonical name -> version), and its lines that are not one."""
    pins, problems = {}, []
    for line in (raw.strip() for raw in text.splitlines()):
        if line and not line.startswith("#"):
            req = Requirement(line)
            specs = list(req.specifier)
            if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
                pins[canonicalize_name(req.name)] = specs[0].version
            else:
                problems.append(f"{line}: not pinned exactly")
    return pins, problems


def lock_problems(text: str, requirements: list[str], closure: set[str]) -> list[str]:
    pins, problems = read_lock(text)
    for req in map(Requirement, requirements):
        name = canonicalize_name(req.name)
        if name not in pins or not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req}: the lock has {pins.get(name, 'nothing')}")
    return problems + [f"{name}: installed by the project but not locked" for name in sorted(closure - pins.keys())]


def runtime_closure(requirements: list[str]) -> set[str]:
    """The installed distributions the requirements need, transitively, PySpark included."""
    found: dict[str, set[str]] = {}
    queue = [Requirement(r) for r in requirements]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name in found and set(req.extras) <= found[name]:
            continue
        found.setdefault(name, set()).update(req.extras)
        for dep in map(Requirement, metadata.distribution(req.name).requires or []):
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                queue.append(dep)
    return set(found)


def project_dependencies() -> list[str]:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_each_rule_flags_a_bad_dockerfile():
    bad = parse(BAD)
    assert unpinned_base_images(bad) == ["FROM python: not an exact release",
                                         "FROM python:latest: not an exact release",
                                         "FROM python:3.11-slim: not an exact release"]
    assert unpinned_base_images(parse("FROM python:3.11.13-slim-bookworm AS build\nFROM build\n"
                                      f"FROM python:3.11-slim@sha256:{'0' * 64}")) == []
    assert final_user_problems(bad) == ["USER root: the image ends as root"]
    assert final_user_problems(parse("FROM a:1.2.3\nUSER 0:0")) == ["USER 0:0: the image ends as root"]
    assert final_user_problems(parse("FROM a:1.2.3\nUSER 10001\nFROM b:1.2.3")) != []  # USER ends with its stage
    assert secret_problems(BAD) == ["AWS credential AWS_SECRET_ACCESS_KEY in the file",
                                    "COPY .env: a credentials file",
                                    "ENV AWS_SECRET_ACCESS_KEY: a secret in the image (its config or its history)",
                                    "ARG DB_PASSWORD: a secret in the image (its config or its history)"]
    assert secret_problems("FROM a:1.2.3\nENV MEDALLION_PII_KEY dev-key\nCOPY config/credentials /c\n") == [
        "ENV MEDALLION_PII_KEY: a secret in the image (its config or its history)",
        "COPY config/credentials: a credentials file"]
    assert healthcheck_problems(bad) == ["no HEALTHCHECK"]
    assert healthcheck_problems(parse("FROM a:1.2.3\nHEALTHCHECK NONE")) == ["no HEALTHCHECK"]
    assert copy_source_problems(bad, PROJECT_ROOT, "") == ["COPY .env: not in the repository",
                                                           "COPY no_such_dir: not in the repository"]
    assert copy_source_problems(parse("COPY pyproject.toml /\nCOPY --from=builder /w /w"), PROJECT_ROOT, "*.toml") == [
        "COPY pyproject.toml: left out by .dockerignore", "COPY --from=builder: no such stage"]
    assert dockerignore_problems(".git\n.venv\n") == [f"{p} is sent to the build" for p in MUST_STAY_OUT[2:]]
    assert emr_pip_problems(bad, PROJECT_ROOT) == [
        "pip install --no-cache-dir pyspark==3.5.9: resolves dependencies (PySpark among them)",
        "pip install pyspark: EMR's Spark provides it",
        "pip install -r requirements.txt: a -r file not copied from the repository",
        "pip install -r requirements.txt: resolves dependencies (PySpark among them)",
        "pip install py4j: EMR's Spark provides it"]
    copied_lock = parse("COPY deploy/docker/requirements-code-location.txt /r.txt\nRUN pip install --no-deps -r /r.txt")
    assert emr_pip_problems(copied_lock, PROJECT_ROOT) == ["pip install py4j: EMR's Spark provides it",
                                                           "pip install pyspark: EMR's Spark provides it"]
    lock = "dagster==1.13.26\nboto3>=1.34\n"
    assert lock_problems(lock, ["dagster==1.13.27", "boto3>=1.34"], {"dagster", "six"}) == [
        "boto3>=1.34: not pinned exactly", "dagster==1.13.27: the lock has 1.13.26",
        "boto3>=1.34: the lock has nothing", "six: installed by the project but not locked"]


@pytest.mark.parametrize("dockerfile", [CODE_LOCATION, EMR], ids=lambda p: p.name)
def test_images_are_pinned_non_root_secret_free_and_copy_only_what_the_context_holds(dockerfile):
    text, ignore_text = dockerfile.read_text(), (PROJECT_ROOT / ".dockerignore").read_text()
    instructions = parse(text)
    assert unpinned_base_images(instructions) == []
    assert final_user_problems(instructions) == []
    assert secret_problems(text) == []
    assert copy_source_problems(instructions, PROJECT_ROOT, ignore_text) == []
    assert dockerignore_problems(ignore_text) == []
    assert f"-f {dockerfile.relative_to(PROJECT_ROOT)} " in " ".join(text.split())  # its build command, in a comment
    # The wheel stage is the same Python as the code location, within the project's requires-python.
    python = {ins.argv()[0] for ins in instructions if ins.keyword == "FROM" and ins.argv()[0].startswith("python:")}
    assert python == {one(parse(CODE_LOCATION.read_text()), "FROM").argv()[0]}
    requires = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert EXACT_VERSION.search(python.pop()).group(0) in SpecifierSet(requires)


def test_code_location_serves_the_workspace_location_as_a_non_root_user_with_the_production_instance():
    stage = final_stage(parse(CODE_LOCATION.read_text()))
    server = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    cmd = one(stage, "CMD").argv()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    options = dict(zip(cmd[3::2], cmd[4::2]))
    assert options == {"-h": "0.0.0.0", "-p": str(server["port"]), "-m": "medallion_pipeline.definitions",
                       "--location-name": server["location_name"]}
    assert one(stage, "EXPOSE").args == str(server["port"])
    assert healthcheck_problems(stage) == []
    check = json.loads(one(stage, "HEALTHCHECK").args.partition(" CMD ")[2])
    assert check == ["dagster", "api", "grpc-health-check", "-p", str(server["port"])]
    env = dict(w.partition("=")[::2] for ins in stage if ins.keyword == "ENV" for w in ins.argv())
    copies = {ins.argv()[-1]: ins.argv()[0] for ins in stage if ins.keyword == "COPY" and len(ins.argv()) == 2}
    assert copies[f"{env['DAGSTER_HOME']}/dagster.yaml"] == "deploy/dagster.yaml"
    assert copies[f"{env['DAGSTER_HOME']}/workspace.yaml"] == "deploy/workspace.yaml"
    uid = one(stage, "USER").args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert any(f"chown {uid}:" in ins.args and '"$DAGSTER_HOME"' in ins.args for ins in stage if ins.keyword == "RUN")


def test_code_location_installs_the_lock_then_the_wheel_alone_and_checks_the_result():
    stage = final_stage(parse(CODE_LOCATION.read_text()))
    installs = pip_installs(stage)
    assert [args[-2:] for args in installs] == [["-r", "/opt/dagster/requirements.txt"],
                                                ["--no-deps", "/tmp/wheels/*.whl"]]
    # The wheel went in alone: pip check then fails the build if the lock misses one of its requirements.
    wheel_install = next(ins for ins in stage if ins.keyword == "RUN" and "/tmp/wheels/*.whl" in ins.args)
    assert shell_commands(wheel_install.args)[-1] == ["pip", "check"]
    lock = (DOCKER / "requirements-code-location.txt").read_text()
    assert lock_problems(lock, project_dependencies(), runtime_closure(project_dependencies())) == []
    assert read_lock(lock)[0]["pyspark"] == "3.5.9"  # the code location's own Spark (local launcher)


def test_emr_image_mirrors_the_job_bundle_without_pyspark_and_ends_as_hadoop():
    instructions = parse(EMR.read_text())
    stage = final_stage(instructions)
    base = one(stage, "FROM").argv()[0]
    assert base == f"public.ecr.aws/emr-serverless/spark/{Settings().emr_release_label}:latest"
    assert one(stage, "USER").args == "hadoop:hadoop"
    assert emr_pip_problems(stage, PROJECT_ROOT) == []
    driver, _ = read_lock((DOCKER / "requirements-emr-driver.txt").read_text())
    bundled = {canonicalize_name(d.metadata["Name"]) for d in driver_distributions()}
    assert set(driver) == bundled  # what package-job packs into pyenv.tar.gz: no pyspark, py4j nor dagster
    locked, _ = read_lock((DOCKER / "requirements-code-location.txt").read_text())
    assert {name: locked.get(name) for name in driver} == driver  # the versions the code location runs
    env = dict(w.partition("=")[::2] for ins in stage if ins.keyword == "ENV" for w in ins.argv())
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == "/opt/medallion/venv/bin/python"
    assert any("python3.11 -m venv /opt/medallion/venv" in ins.args for ins in stage if ins.keyword == "RUN")
    # MEDALLION_EMR_PYTHON=image: the launcher's entry point is the file the image copies.
    entry_point = IMAGE_ENTRY_POINT.removeprefix("local://")
    assert any(ins.args.endswith(f" {entry_point}") for ins in stage if ins.keyword == "RUN"), entry_point


def top_level_modules(distribution: str) -> set[str]:
    names = set()
    for file in metadata.distribution(distribution).files or []:
        first = file.parts[0]
        if first not in ("..", "__pycache__") and not first.endswith((".dist-info", ".egg-info", ".pth")):
            names.add(first.split(".")[0])
    return names


def test_the_driver_entry_point_imports_with_only_what_the_emr_image_holds(tmp_path):
    """The entry point module the image copies (package-job's entrypoint.py) and every module it imports load
    with the image's distributions only: the -r list, the project, and EMR's PySpark and py4j."""
    run = next(ins.args for ins in final_stage(parse(EMR.read_text())) if "entrypoint" in ins.args)
    module = re.search(r"import (medallion_pipeline[\w.]*entrypoint) as", run).group(1)
    from medallion_pipeline.jobs import entrypoint  # what build_bundle uploads as <bundle>/entrypoint.py

    assert module == entrypoint.__name__
    tree = ast.parse(Path(entrypoint.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "dagster" not in {name.split(".")[0] for name in imported}
    driver, _ = read_lock((DOCKER / "requirements-emr-driver.txt").read_text())
    allowed = {"medallion_pipeline", "pyspark", "py4j"}.union(*map(top_level_modules, driver))
    only_the_image = (
        "import importlib, importlib.abc, importlib.machinery, json, os, sys, sysconfig\n"
        "allowed = set(json.loads(sys.argv[1]))\n"
        "stdlib = [sysconfig.get_path('stdlib'), os.path.join(sysconfig.get_path('platstdlib'), 'lib-dynload')]\n"
        "class OnlyTheImage(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.partition('.')[0]\n"
        "        if top not in allowed and top not in sys.stdlib_module_names \\\n"
        "                and not importlib.machinery.PathFinder.find_spec(top, stdlib):\n"
        "            raise ModuleNotFoundError(f'{name} is not in the EMR image', name=name)\n"
        "sys.meta_path.insert(0, OnlyTheImage())\n"
        "for name in sys.argv[2:]:\n"
        "    importlib.import_module(name)\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", only_the_image, json.dumps(sorted(allowed)), module,
                           *sorted(imported)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return [*argv[:i + 1], value, *argv[i + 2:]]


@pytest.mark.slow
def test_the_code_server_the_image_runs_is_healthy_and_serves_the_definitions(tmp_path):
    """The image's CMD (on a free port, loopback) with its ENV, DAGSTER_HOME holding deploy/dagster.yaml and no
    database settings, from an empty working directory; its HEALTHCHECK passes; Dagster loads the location
    through it as the webserver would through deploy/workspace.yaml; SIGTERM (ECS stopping the task) stops it."""
    stage = final_stage(parse(CODE_LOCATION.read_text()))
    port = str(free_port())
    image_env = dict(w.partition("=")[::2] for ins in stage if ins.keyword == "ENV" for w in ins.argv())
    home, work = tmp_path / "dagster_home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    env = {**{k: v for k, v in image_env.items() if k not in ("PATH", "VIRTUAL_ENV", "DAGSTER_HOME")},
           "PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(home)}
    command = with_option(with_option(one(stage, "CMD").argv(), "-p", port), "-h", "127.0.0.1")
    check = with_option(json.loads(one(stage, "HEALTHCHECK").args.partition(" CMD ")[2]), "-p", port)
    log = tmp_path / "code_server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-c", EXEC_WITH_DEFAULT_SIGNALS, str(VENV_BIN / command[0]),
                                   *command[1:]], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([str(VENV_BIN / check[0]), *check[1:]], env=env, cwd=work,
                             capture_output=True, timeout=60).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        workspace = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=int(port))
        (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
        (tmp_path / "validate_home").mkdir()
        (tmp_path / "validate_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        validate = [str(VENV_BIN / "dagster"), "definitions", "validate", "-w", str(tmp_path / "workspace.yaml")]
        done = subprocess.run(validate, cwd=tmp_path, env={**env, "DAGSTER_HOME": str(tmp_path / "validate_home")},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Validation successful for code location medallion_pipeline.definitions" in done.stdout + done.stderr
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)  # ECS's default stop timeout, after which it sends SIGKILL
        except subprocess.TimeoutExpired:
            pytest.fail("the code server did not stop on SIGTERM within 30 s")
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)  # whatever is left of the group: the proxy's code server child
        except ProcessLookupError:
            pass
        server.wait(10)
