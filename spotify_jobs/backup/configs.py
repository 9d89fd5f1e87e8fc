"""Backups of the platform's job configuration: the tenant registry, billing rate cards and deploy values,
archived as a tar.gz whose MANIFEST.json holds each file's SHA-256, and restored only after every file
has been verified against it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from spotify_jobs.tenancy.registry import TenantRegistryError, load_registry

ARCHIVE_FORMAT = 1
MANIFEST_NAME = "MANIFEST.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_ROLE, RATE_CARD_ROLE, DEPLOY_ROLE = "tenant_registry", "rate_card", "deploy_values"
RATE_CARDS_DIR = "spotify_jobs/billing/rate_cards"
DEPLOY_DIR = "deploy"
_ROLE_DIRS = {REGISTRY_ROLE: "tenant_registry", RATE_CARD_ROLE: RATE_CARDS_DIR, DEPLOY_ROLE: DEPLOY_DIR}
_YAML_SUFFIXES = (".yaml", ".yml")


class ConfigArchiveError(ValueError):
    """A config archive that is malformed, tampered with, or would write outside its places."""


class ConfigRestoreRefused(RuntimeError):
    """Restoring would overwrite config files that differ, and overwriting was not allowed."""


@dataclass(frozen=True)
class ConfigFile:
    name: str  # the member name in the archive
    role: str
    source: Path


@dataclass(frozen=True)
class ConfigArchiveResult:
    archive: str
    files: int
    bytes: int
    sha256: str
    roles: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ConfigRestoreResult:
    archive: str
    files: int
    dry_run: bool
    created: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def collect_config_files(repo_root: Path, registry_path: Path) -> list[ConfigFile]:
    """The registry, every rate card and every deploy YAML that exists (missing folders are skipped)."""
    files = [ConfigFile(f"{_ROLE_DIRS[REGISTRY_ROLE]}/{registry_path.name}", REGISTRY_ROLE, registry_path)]
    for role in (RATE_CARD_ROLE, DEPLOY_ROLE):
        base = repo_root / _ROLE_DIRS[role]
        pattern = "*" if role == RATE_CARD_ROLE else "**/*"
        for path in sorted(base.glob(pattern)):
            if path.is_file() and path.suffix in _YAML_SUFFIXES:
                files.append(ConfigFile(path.relative_to(repo_root).as_posix(), role, path))
    return files


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def backup_configs(
    output: Path, *, registry_path: Path, repo_root: Path = PROJECT_ROOT, now: datetime | None = None
) -> ConfigArchiveResult:
    """Write the config archive to `output` (a file, written atomically)."""
    if not registry_path.is_file():
        raise ConfigArchiveError(f"tenant registry {registry_path} does not exist")
    files = collect_config_files(repo_root, registry_path)
    contents = {f.name: f.source.read_bytes() for f in files}
    manifest = {
        "format": ARCHIVE_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "files": [
            {
                "name": f.name,
                "role": f.role,
                "size": len(contents[f.name]),
                "sha256": hashlib.sha256(contents[f.name]).hexdigest(),
            }
            for f in files
        ],
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [(MANIFEST_NAME, json.dumps(manifest, indent=1).encode()), *contents.items()]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    _write_atomically(output, archive)
    roles = {role: sum(1 for f in files if f.role == role) for role in _ROLE_DIRS}
    return ConfigArchiveResult(
        archive=str(output),
        files=len(files),
        bytes=len(archive),
        sha256=hashlib.sha256(archive).hexdigest(),
        roles=roles,
    )


def _destination(entry: dict, repo_root: Path, registry_path: Path) -> Path:
    name, role = entry.get("name"), entry.get("role")
    if role not in _ROLE_DIRS or not isinstance(name, str):
        raise ConfigArchiveError(f"archive entry {entry!r} has an unknown role or no name")
    pure = PurePosixPath(name)
    if (
        pure.is_absolute()
        or ".." in pure.parts
        or pure.suffix not in _YAML_SUFFIXES
        or pure.parts[: len(PurePosixPath(_ROLE_DIRS[role]).parts)] != PurePosixPath(_ROLE_DIRS[role]).parts
    ):
        raise ConfigArchiveError(
            f"archive entry {name!r} ({role}) is not a YAML file under {_ROLE_DIRS[role]}/"
        )
    return registry_path if role == REGISTRY_ROLE else repo_root / pure


def _read_archive(archive: Path) -> tuple[list[dict], dict[str, bytes]]:
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = {}
            for member in tar.getmembers():
                if not member.isfile():
                    raise ConfigArchiveError(f"{archive}: member {member.name!r} is not a regular file")
                members[member.name] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError) as exc:
        raise ConfigArchiveError(f"cannot read config archive {archive}: {exc}") from exc
    try:
        manifest = json.loads(members.pop(MANIFEST_NAME))
        entries = manifest["files"]
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigArchiveError(f"{archive} has no readable {MANIFEST_NAME}: {exc}") from exc
    if manifest.get("format") != ARCHIVE_FORMAT:
        raise ConfigArchiveError(
            f"{archive} has format {manifest.get('format')!r}; expected {ARCHIVE_FORMAT}"
        )
    names = [e.get("name") for e in entries]
    if sorted(names) != sorted(members):
        raise ConfigArchiveError(
            f"{archive}: members {sorted(members)} do not match the manifest's files {sorted(map(str, names))}"
        )
    for entry in entries:
        data = members[entry["name"]]
        if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("size"):
            raise ConfigArchiveError(
                f"{archive}: {entry['name']} does not match its sha256 in {MANIFEST_NAME}"
            )
    return entries, members


def restore_configs(
    archive: Path,
    *,
    registry_path: Path,
    repo_root: Path = PROJECT_ROOT,
    overwrite: bool = False,
    dry_run: bool = False,
) -> ConfigRestoreResult:
    """Verify every file of the archive, then write each to its place (the registry to `registry_path`,
    the rest under `repo_root`). Nothing is written if any check fails or a differing file would be
    overwritten without `overwrite`."""
    entries, members = _read_archive(archive)
    plan = [
        (entry["name"], _destination(entry, repo_root, registry_path), entry["role"]) for entry in entries
    ]
    for name, _dest, role in plan:
        if role == REGISTRY_ROLE:
            with tempfile.TemporaryDirectory() as tmp:
                candidate = Path(tmp) / "tenants.yaml"
                candidate.write_bytes(members[name])
                try:
                    load_registry(candidate)
                except TenantRegistryError as exc:
                    raise ConfigArchiveError(
                        f"{archive}: {name} is not a valid tenant registry: {exc}"
                    ) from exc
    result = ConfigRestoreResult(archive=str(archive), files=len(plan), dry_run=dry_run)
    for name, dest, _role in plan:
        if not dest.exists():
            result.created.append(str(dest))
        elif dest.read_bytes() == members[name]:
            result.unchanged.append(str(dest))
        else:
            result.overwritten.append(str(dest))
    if result.overwritten and not overwrite and not dry_run:
        raise ConfigRestoreRefused(
            f"restoring {archive} would overwrite {len(result.overwritten)} files that differ: "
            f"{', '.join(result.overwritten)}; nothing was written. Pass --overwrite to replace them"
        )
    if not dry_run:
        for name, dest, _role in plan:
            if str(dest) not in result.unchanged:
                _write_atomically(dest, members[name])
    return result
