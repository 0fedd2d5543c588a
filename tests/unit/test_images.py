"""The container images: Dockerfile.proxy and Dockerfile.operator.

No container engine runs here, so the images are never built. The tests lint
each Dockerfile with hadolint and check the final stage's settings. Then they
run the build stage's own RUN lines, read from the Dockerfile, in a temporary
directory on the host, so a fresh virtual environment gets exactly the
packages that the image would get, and the image's entrypoint must start in
it. The install downloads the pinned packages, so these tests need PyPI.
"""

from __future__ import annotations

import re
import shlex
import string
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "python:3.11-slim-bookworm"
IMAGE_UID = "10001"
IMAGE_USER = f"{IMAGE_UID}:{IMAGE_UID}"
# The operator's install took about 20 s on a 2-core machine; the limit leaves
# room for a slow package index.
INSTALL_TIMEOUT_SECONDS = 600
REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.base.name",
)
# Tools that build native code. The final stage must not install any.
COMPILER_WORDS = ("gcc", "g++", "clang", "build-essential", "make", "cc", "rustc", "cargo")


@dataclass
class Stage:
    """One FROM block of a Dockerfile."""

    base: str
    name: str | None
    commands: list[dockerfile.Command] = field(default_factory=list)

    def all(self, instruction: str) -> list[dockerfile.Command]:
        return [command for command in self.commands if command.cmd == instruction]

    def last(self, instruction: str) -> dockerfile.Command:
        commands = self.all(instruction)
        assert commands, f"no {instruction} instruction in stage {self.name or self.base}"
        return commands[-1]


def parse_stages(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            base, *rest = command.value
            name = rest[1] if len(rest) == 2 and rest[0].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            assert stages, f"{path.name}: {command.cmd} before the first FROM"
            stages[-1].commands.append(command)
    return stages


def unquote(word: str, env: dict[str, str]) -> str:
    """Return a Dockerfile word without its quotes and with $VAR and ${VAR} expanded."""
    (text,) = shlex.split(word)
    return string.Template(text).safe_substitute(env)


def env_pairs(command: dockerfile.Command) -> Iterator[tuple[str, str]]:
    values = list(command.value)
    yield from zip(values[0::2], values[1::2], strict=True)


def label_pairs(stage: Stage) -> dict[str, str]:
    labels = {}
    for command in stage.all("LABEL"):
        for key, value in env_pairs(command):
            labels[key] = unquote(value, {})
    return labels


IMAGES = {
    "proxy": REPO_ROOT / "Dockerfile.proxy",
    "operator": REPO_ROOT / "Dockerfile.operator",
}


@pytest.fixture(params=sorted(IMAGES), ids=str)
def image(request: pytest.FixtureRequest) -> str:
    return request.param


def stages_of(image: str) -> list[Stage]:
    return parse_stages(IMAGES[image])


# ---- Lint and static checks ------------------------------------------------------


def test_hadolint_clean(image: str):
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(IMAGES[image])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_two_stages_on_pinned_base(image: str):
    stages = stages_of(image)

    assert [stage.base for stage in stages] == [BASE_IMAGE, BASE_IMAGE]
    assert stages[0].name == "build"


def test_final_stage_runs_as_fixed_uid(image: str):
    final = stages_of(image)[-1]

    assert final.last("USER").value == (IMAGE_USER,)


def test_final_stage_installs_no_compiler(image: str):
    final = stages_of(image)[-1]
    words = {word for run in final.all("RUN") for word in re.split(r"[\s;&|]+", run.value[0])}

    assert not words & set(COMPILER_WORDS)
    assert "apt-get" not in words
    assert "pip" not in words


def test_final_stage_copies_only_from_build(image: str):
    final = stages_of(image)[-1]

    for copy in final.all("COPY"):
        assert "--from=build" in copy.flags, copy.original


def test_oci_labels(image: str):
    labels = label_pairs(stages_of(image)[-1])

    for key in REQUIRED_LABELS:
        assert labels.get(key), f"label {key} missing or empty"
    assert labels["org.opencontainers.image.title"] == f"imtegrity-{image}"


def test_install_pins_through_constraints(image: str):
    build = stages_of(image)[0]
    installs = [run.value[0] for run in build.all("RUN") if "pip install" in run.value[0]]

    assert len(installs) == 1
    assert "--constraint constraints.txt" in installs[0]


def test_proxy_entrypoint_and_ports():
    final = stages_of("proxy")[-1]

    assert final.last("ENTRYPOINT").value == ("imtegrity-proxy", "serve")
    assert final.last("ENTRYPOINT").json
    assert final.last("CMD").value == ("--config", "/etc/imtegrity/config.yaml")
    assert set(final.last("EXPOSE").value) == {"5190", "8080"}


def test_operator_entrypoint():
    final = stages_of("operator")[-1]

    assert final.last("ENTRYPOINT").value == ("imtegrity-operator",)
    assert final.last("ENTRYPOINT").json
    assert final.last("CMD").value[0] == "run"


def test_dockerignore_admits_copied_sources(image: str):
    patterns = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    build = stages_of(image)[0]

    assert "*" in patterns, ".dockerignore must exclude everything by default"
    for copy in build.all("COPY"):
        for source in copy.value[:-1]:
            assert f"!{source.rstrip('/')}" in patterns or f"!{source}" in patterns, source


# ---- The build stage, run on the host ---------------------------------------------


@dataclass
class Installed:
    """An image's build stage, run on the host."""

    image: str
    venv: Path
    workdir: Path
    env: dict[str, str]


def host_bin(tmp: Path) -> Path:
    """Return a directory whose python is this interpreter's base Python 3.11."""
    directory = tmp / "host-bin"
    directory.mkdir()
    base = Path(getattr(sys, "_base_executable", sys.executable))
    (directory / "python").symlink_to(base)
    (directory / "python3").symlink_to(base)
    return directory


def check_relative(run: str) -> None:
    """Fail before running a RUN line that names an absolute path on this host."""
    hint = "the test runs these lines on the host, so use paths under WORKDIR or $VIRTUAL_ENV"
    for token in shlex.split(run):
        assert not token.startswith("/"), f"absolute path {token!r} in RUN {run}: {hint}"
        assert "=/" not in token, f"absolute path in {token!r} in RUN {run}: {hint}"


def run_build_stage(image: str, tmp: Path) -> Installed:
    """Run the build stage's WORKDIR, ENV, COPY and RUN instructions under ``tmp``.

    WORKDIR maps to ``tmp/workdir`` and ``$VIRTUAL_ENV`` to ``tmp/venv``; COPY
    sources come from the repository, as in a build whose context is its root.
    """
    build = stages_of(image)[0]
    venv = tmp / "venv"
    workdir = tmp / "workdir"
    env = {
        "PATH": f"{host_bin(tmp)}:/usr/bin:/bin",
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
    }
    for command in build.commands:
        if command.cmd == "ENV":
            for key, value in env_pairs(command):
                env[key] = str(venv) if key == "VIRTUAL_ENV" else unquote(value, env)
        elif command.cmd == "WORKDIR":
            workdir.mkdir(parents=True, exist_ok=True)
        elif command.cmd == "COPY":
            assert not command.flags, f"unexpected COPY flags in the build stage: {command}"
            *sources, destination = command.value
            target = workdir / destination
            target.mkdir(parents=True, exist_ok=True)
            for source in sources:
                path = REPO_ROOT / source
                subprocess.run(["cp", "-R", f"{path}/." if path.is_dir() else path, target],
                               check=True)  # fmt: skip
        elif command.cmd == "RUN":
            (line,) = command.value
            check_relative(line)
            result = subprocess.run(
                ["sh", "-c", line],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
            assert result.returncode == 0, (
                f"RUN {line}\nfailed with exit code {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        else:
            pytest.fail(f"the test cannot run {command.cmd} in the build stage: {command}")
    return Installed(image, venv, workdir, env)


@pytest.fixture(scope="module", params=sorted(IMAGES), ids=str)
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """Run one image's build stage; pytest runs it once per image for this module."""
    return run_build_stage(request.param, tmp_path_factory.mktemp(f"image-{request.param}"))


def pinned_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator:
            pins[canonical(name)] = version.strip()
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_entrypoint_starts_after_install(installed: Installed):
    entrypoint = stages_of(installed.image)[-1].last("ENTRYPOINT").value
    program = installed.venv / "bin" / entrypoint[0]

    started = subprocess.run(
        [str(program), *entrypoint[1:], "--help"],
        capture_output=True,
        text=True,
        env=installed.env,
        timeout=60,
        check=False,
    )

    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("usage: "), started.stdout


# Prints "name==version" for every distribution in the environment.
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m\n"
    "for d in m.distributions(): print(f\"{d.metadata['Name']}=={d.version}\")"
)


def installed_distributions(installed: Installed) -> dict[str, str]:
    listed = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", LIST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
        env=installed.env,
        timeout=60,
        check=True,
    ).stdout.split()
    return {canonical(name): version for name, _, version in (r.partition("==") for r in listed)}


def test_installed_versions_match_constraints(installed: Installed):
    distributions = installed_distributions(installed)
    pins = pinned_versions()

    for name, version in distributions.items():
        if name in {"imtegrity-proxy", "imtegrity-operator"}:
            continue
        assert name in pins, f"{name} is installed but not pinned in constraints.txt"
        assert version == pins[name], f"{name}: installed {version}"


def test_installers_removed(installed: Installed):
    distributions = installed_distributions(installed)

    assert "pip" not in distributions
    assert "setuptools" not in distributions


def test_own_distributions_installed(installed: Installed):
    distributions = installed_distributions(installed)
    expected = {"imtegrity-proxy"} | (
        {"imtegrity-operator"} if installed.image == "operator" else set()
    )

    for name in expected:
        assert distributions.get(name) == "0.1.0", name
