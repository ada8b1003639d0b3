"""docker-compose.yml is for users and never runs in CI (no Docker engine there), so check what can
rot without anyone noticing: every service names an image or a build, every file or directory it
bind-mounts from the repository exists, and the connector files the bridge's command points at exist,
are valid, get their `${env:...}` variables, reach the database and write inside a mounted volume.

PyYAML is not a dependency, so the file is read with a small line parser that understands the subset
of YAML the file uses (block mappings by two-space indentation, `- item` lists, flow lists of strings).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path, PurePosixPath

import pytest

from cdc.config import FileStreamSinkConfig, PostgresSourceConfig, load_connectors

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"

Service = dict[str, str | list[str]]


def _value(text: str) -> str | list[str]:
    text = text.strip()
    if text.startswith("["):
        items = ast.literal_eval(text)  # a flow list of quoted strings: Python's literal syntax too
        assert isinstance(items, list)
        return [str(i) for i in items]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def services() -> dict[str, Service]:
    """service name -> {key: a scalar, a flow list, or the lines of its block: `- item` list items,
    or `NAME: value` entries of a nested mapping, as strings}."""
    found: dict[str, Service] = {}
    current: Service | None = None
    key: str | None = None
    inside = False
    for raw in COMPOSE.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"\s+#.*$", "", raw) if not raw.lstrip().startswith("- ") else raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            inside = line.rstrip() == "services:"
            current = None
        elif inside and indent == 2 and (m := re.fullmatch(r"  ([\w.-]+):\s*", line)):
            current = found.setdefault(m.group(1), {})
        elif current is not None and indent == 4 and (m := re.fullmatch(r"    ([\w.-]+):\s*(.*)", line)):
            key = m.group(1)
            current[key] = _value(m.group(2)) if m.group(2) else []
        elif current is not None and key is not None and indent == 6:
            items = current[key]
            assert isinstance(items, list), f"{key}: a block after a scalar"
            entry = line.strip()
            items.append(str(_value(entry[2:])) if entry.startswith("- ") else entry)
    return found


def binds(service: Service) -> dict[PurePosixPath, Path]:
    """container path -> repository path, for the service's bind mounts (`./host:/container[:mode]`)."""
    volumes = service.get("volumes", [])
    assert isinstance(volumes, list)
    out: dict[PurePosixPath, Path] = {}
    for spec in volumes:
        source, target = spec.split(":")[:2]
        if source.startswith("."):
            out[PurePosixPath(target)] = ROOT / source
    return out


def volume_targets(service: Service) -> list[PurePosixPath]:
    volumes = service.get("volumes", [])
    assert isinstance(volumes, list)
    return [PurePosixPath(spec.split(":")[1]) for spec in volumes]


def host_path(service: Service, container: PurePosixPath) -> Path:
    """Where a container path of the service lives in the repository (through its bind mounts)."""
    for target, source in binds(service).items():
        if container == target or target in container.parents:
            return source.joinpath(*container.relative_to(target).parts)
    raise AssertionError(f"{container} is not inside a bind mount")


def command(service: Service) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_every_service_has_an_image_or_a_build() -> None:
    found = services()
    assert {"postgres", "cdc"} <= found.keys()
    for name, service in found.items():
        assert "image" in service or "build" in service, name


def test_bind_mounted_files_exist_in_the_repository() -> None:
    mounted = [source for service in services().values() for source in binds(service).values()]
    assert ROOT / "config/demo/erp_schema.sql" in mounted
    for source in mounted:
        if source.name == "out":  # the output directory: Docker creates it
            continue
        assert source.exists(), f"docker-compose.yml mounts {source.relative_to(ROOT)}, which does not exist"


def test_postgres_runs_with_logical_decoding_and_the_sample_schema() -> None:
    pg = services()["postgres"]
    assert "wal_level=logical" in command(pg)
    assert any(t.parent == PurePosixPath("/docker-entrypoint-initdb.d") for t in binds(pg))


def test_cdc_command_runs_valid_connector_files(monkeypatch: pytest.MonkeyPatch) -> None:
    cdc = services()["cdc"]
    cmd = command(cdc)
    assert "pip install" in cmd and "cdc run" in cmd
    patterns = re.findall(r"(/\S+\.json)", cmd)
    assert patterns, "the cdc command names no connector files"
    files: list[Path] = []
    for pattern in patterns:
        container = PurePosixPath(pattern)
        matched = sorted(host_path(cdc, container.parent).glob(container.name))
        assert matched, f"{pattern} matches no file in the repository"
        files += matched

    # Every ${env:NAME} the connector files use is passed into the container.
    environment = cdc.get("environment", [])
    assert isinstance(environment, list)
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    passed = {entry.split(":")[0].split("=")[0] for entry in environment}
    for name in set(re.findall(r"\$\{env:([^}]+)\}", text)):
        assert name in passed, f"connector files use ${{env:{name}}}, which the cdc service does not set"
        monkeypatch.setenv(name, "compose-test")

    connectors = load_connectors(files)
    sources = [c for c in connectors if isinstance(c, PostgresSourceConfig)]
    assert sources and any(isinstance(c, FileStreamSinkConfig) for c in connectors)
    for src in sources:  # reachable: the compose service's name, or loopback in its network namespace
        loopback = src.database_hostname in ("127.0.0.1", "localhost", "::1")
        assert src.database_hostname in services() or (
            loopback and cdc.get("network_mode") == "service:postgres"), src.database_hostname

    # A sink's relative "file" resolves against working_dir; it must land on a volume, not in the container.
    workdir = PurePosixPath(str(cdc.get("working_dir", "/")))
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        for entry in doc if isinstance(doc, list) else [doc]:
            config = entry.get("config", entry)
            if "file" in config:
                out = workdir / config["file"]
                assert any(t in out.parents for t in volume_targets(cdc)), f"{out} is not on a volume"
