"""Operator-issued access keys (APIMP_AUTH=keys): the keys file, and issuing a key into it.

The file maps the SHA-256 of each key to who holds it, and optionally what that holder gets:

    {"keys": {"sha256:9f86d0...": {"principal": "alice", "max_running_tasks": 2,
                                   "max_submits_per_hour": 10, "apimp_key": "sk-...",
                                   "upload_roots": ["/srv/images/alice"]}}}

A key is shown once, when `apimp-video-mcp keys add` creates it; the file keeps only its hash,
so a copy of the file lets nobody in. A key is 256 random bits, so one fast hash is enough (a
slow password hash protects guessable secrets; these are not). `apimp_key` is the holder's own
APIMP key when the operator wants their usage billed apart; it is a secret, so the file is
written readable by its owner only.

`AccessKeys` re-reads the file whenever it changes (checked on each lookup, at the cost of one
stat), so keys are added and revoked without a restart. A file that stops parsing keeps the
last good table in force and says so in the log; a file that disappears lets nobody in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from apimp_video_mcp.access.principals import Limits, Principal
from apimp_video_mcp.errors import ConfigurationError

logger = logging.getLogger(__name__)

KEY_PREFIX: Final = "amk_"  # "APIMP MCP key": recognisable in a leak scanner, never an APIMP key
PRINCIPAL_PREFIX: Final = "key:"
HASH_PREFIX: Final = "sha256:"

PrincipalName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
        description="Who holds the key: letters, digits, '.', '_', '@', '-' (at most 64).",
    ),
]


class KeyEntry(BaseModel):
    """What the holder of one key is, and gets."""

    model_config = ConfigDict(extra="forbid")

    principal: PrincipalName
    created_at: str | None = None
    # Per-key limits; unset, the server's defaults (APIMP_MAX_RUNNING_TASKS, ...). 0: no limit.
    max_running_tasks: Annotated[int, Field(ge=0)] | None = None
    max_submits_per_hour: Annotated[int, Field(ge=0)] | None = None
    # The holder's own APIMP key; unset, the server's APIMP_API_KEY.
    apimp_key: SecretStr | None = None
    # Folders this holder may upload local images from (absolute paths); unset, none.
    upload_roots: list[Path] = Field(default_factory=list)


class KeysFileContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: dict[str, KeyEntry] = Field(default_factory=dict)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def read_keys_file(path: Path) -> KeysFileContent:
    """The file's keys; an absent file has none. Raises ConfigurationError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return KeysFileContent()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the keys file {path} (APIMP_KEYS_FILE): {exc.strerror}"
        ) from None
    try:
        return KeysFileContent.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the file'}: {error['msg']}"
            for error in exc.errors(include_input=False)
        )
        raise ConfigurationError(f"The keys file {path} is invalid: {problems}") from None


def write_keys_file(path: Path, content: KeysFileContent) -> None:
    """Replace the file atomically (a running server never reads half of it), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"keys": {digest: _entry_data(entry) for digest, entry in content.keys.items()}}
    handle, temporary = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _entry_data(entry: KeyEntry) -> dict[str, object]:
    """An entry as the file holds it: its APIMP key in clear (the file is owner-only), no empty list."""
    data: dict[str, object] = entry.model_dump(mode="json", exclude_none=True, exclude={"apimp_key"})
    if not entry.upload_roots:
        del data["upload_roots"]
    if entry.apimp_key is not None:
        data["apimp_key"] = entry.apimp_key.get_secret_value()
    return data


def add_key(path: Path, entry: KeyEntry) -> str:
    """Issue a key for `entry`'s principal into the file; returns the key (its only appearance)."""
    for root in entry.upload_roots:
        if not root.is_absolute():
            raise ConfigurationError(f"An upload folder must be an absolute path, not {str(root)!r}.")
    content = read_keys_file(path)
    key = new_key()
    stamped = entry.model_copy(update={"created_at": datetime.now(UTC).isoformat(timespec="seconds")})
    content.keys[key_hash(key)] = stamped
    write_keys_file(path, content)
    return key


def revoke_principal(path: Path, principal: str) -> int:
    """Remove every key of a principal; returns how many there were."""
    content = read_keys_file(path)
    kept = {digest: entry for digest, entry in content.keys.items() if entry.principal != principal}
    removed = len(content.keys) - len(kept)
    if removed:
        write_keys_file(path, KeysFileContent(keys=kept))
    return removed


@dataclass(frozen=True)
class _Signature:
    """Enough of a file's stat to notice any change to it."""

    inode: int
    size: int
    modified_ns: int


class AccessKeys:
    """The keys file, as principals: looked up by key, re-read whenever the file changes."""

    def __init__(self, path: Path, *, default_limits: Limits) -> None:
        self.path = path
        self.default_limits = default_limits
        self._signature: _Signature | None = None
        self._principals: dict[str, Principal] = {}
        self._reload(strict=True)

    def principal_for(self, key: str) -> Principal | None:
        """The principal a key stands for, or None for a key the file does not hold."""
        self._reload(strict=False)
        return self._principals.get(key_hash(key))

    def _reload(self, *, strict: bool) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if strict:
                raise ConfigurationError(
                    f"APIMP_AUTH=keys, but there is no keys file at {self.path} (APIMP_KEYS_FILE). Issue a "
                    "key with: apimp-video-mcp keys add NAME"
                ) from None
            if self._principals:
                logger.warning("the keys file %s is gone: no key is accepted until it is back", self.path)
            self._signature, self._principals = None, {}
            return
        signature = _Signature(stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._signature:
            return
        try:
            content = read_keys_file(self.path)
        except ConfigurationError as exc:
            if strict:
                raise
            logger.warning("%s; the keys read before stay in force", exc)
            self._signature = signature  # do not re-parse until it changes again
            return
        self._principals = {digest: self._principal(entry) for digest, entry in content.keys.items()}
        self._signature = signature
        logger.info("keys file %s: %d key(s)", self.path, len(self._principals))

    def _principal(self, entry: KeyEntry) -> Principal:
        limits = Limits(
            max_running_tasks=_limit(entry.max_running_tasks, self.default_limits.max_running_tasks),
            max_submits_per_hour=_limit(entry.max_submits_per_hour, self.default_limits.max_submits_per_hour),
        )
        return Principal(
            PRINCIPAL_PREFIX + entry.principal,
            api_key=entry.apimp_key,
            limits=limits,
            upload_roots=tuple(entry.upload_roots),
        )


def _limit(configured: int | None, default: int | None) -> int | None:
    """A key's own limit, else the default; 0 means no limit at all."""
    value = default if configured is None else configured
    return None if value == 0 else value
