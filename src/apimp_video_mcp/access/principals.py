"""Who a call is for: the principal that owns tasks, saved videos, an APIMP key and limits.

Every task in the journal belongs to one principal, and a caller sees only its own principal's
tasks. Over stdio (and HTTP with APIMP_AUTH=none) every caller is the one local principal: the
user who started the server. Authenticated HTTP callers each get their own (see `server.auth`):

    local            stdio and APIMP_AUTH=none; sees what it always saw (its own tasks)
    key:<name>       an operator-issued key from the keys file
    byok:<digest>    a caller's own APIMP key, known only by a keyed hash of it
    oauth:<digest>   an OAuth subject, as a hash of (issuer, subject)

The id is what the journal stores; it never contains a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import SecretStr

LOCAL_PRINCIPAL_ID: Final = "local"

_UNSAFE_IN_FOLDER: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Limits:
    """How much one principal may have going at once; None means no limit."""

    max_running_tasks: int | None = None
    max_submits_per_hour: int | None = None


@dataclass(frozen=True)
class Principal:
    """The owner of a call's tasks, and what the operator granted it.

    `api_key` is the APIMP key its requests use upstream (None: the server's APIMP_API_KEY).
    `upload_roots` are the folders it may upload local images from (None: the transport's
    default, which over HTTP is none at all). `remote` callers never adopt a task id that is not
    already theirs in the journal (see `VideoService`).
    """

    id: str
    api_key: SecretStr | None = field(default=None, repr=False)
    limits: Limits = Limits()
    upload_roots: tuple[Path, ...] | None = None
    remote: bool = True

    @property
    def folder(self) -> str:
        """Its own subfolder of the download directory: a safe file name derived from the id."""
        return _UNSAFE_IN_FOLDER.sub("-", self.id).strip(".-") or "principal"

    def download_dir(self, base: Path) -> Path:
        """Where its videos are saved: the local principal keeps the base folder itself."""
        return base if self.id == LOCAL_PRINCIPAL_ID else base / self.folder


LOCAL_PRINCIPAL: Final = Principal(LOCAL_PRINCIPAL_ID, remote=False)
