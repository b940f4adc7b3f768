"""Configuration, read once from the environment into an immutable value.

Every setting has a documented environment variable and a default from `defaults`. The API key
is a `SecretStr`, so printing or logging the settings never shows it; it is optional here
because a host must be able to start the server and list its tools before a key is set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from apimp_video_mcp import defaults
from apimp_video_mcp.costs.pricing import Amount, PriceTable, google_list_prices
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.store.selection import is_postgres_url

APP_NAME: Final = "apimp-video-mcp"

Seconds = Annotated[float, Field(gt=0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# Who may call the streamable HTTP transport (see `server.auth`): nobody is asked (loopback use),
# operator-issued keys, each caller's own APIMP key, or OAuth access tokens (JWT).
AuthMode = Literal["none", "keys", "byok", "oauth"]

# An origin for a CSP source list: http(s), a host (optionally `*.` for its subdomains), a port.
MEDIA_ORIGIN: Final = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")

# A host a download may reach whatever its address: a name or an IPv4/IPv6 address, with a port or not.
ALLOWED_HOST: Final = re.compile(
    r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:(?P<port>[0-9]{1,5}))?"
)

# APIMP_UPLOAD_ROOTS=none turns local files off. Roots must be absolute, so no folder can be
# mistaken for this word.
UPLOAD_ROOTS_NONE: Final = "none"
# APIMP_CONFIRM_ABOVE=off: never ask before spending.
CONFIRM_OFF: Final = "off"


def user_data_dir() -> Path:
    """The per-user data directory of the platform (imported here: only the defaults need it)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_journal_path() -> str:
    """Beside the videos: the journal is the receipt book of what was paid for."""
    return str(user_data_dir() / "journal.sqlite3")


def default_keys_file() -> Path:
    """Beside the journal: the operator's list of issued keys (hashes only)."""
    return user_data_dir() / "keys.json"


def default_download_dir() -> Path:
    """Videos outlive the conversation that made them, so they go to the user's data directory."""
    return user_data_dir() / "videos"


class Settings(BaseModel):
    """Everything the server needs to know about its environment."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    base_url: str = defaults.DEFAULT_BASE_URL
    download_dir: Path = Field(default_factory=default_download_dir)
    # A file path, ":memory:" for a journal that lasts only as long as the process, or a
    # postgresql:// URL for a journal shared by the instances of a cluster.
    journal_path: str = Field(default_factory=default_journal_path)
    wait_timeout_seconds: Annotated[float, Field(gt=0, le=defaults.MAX_WAIT_TIMEOUT_SECONDS)] = (
        defaults.DEFAULT_WAIT_TIMEOUT_SECONDS
    )
    request_timeout_seconds: Seconds = defaults.REQUEST_TIMEOUT_SECONDS
    poll_min_interval_seconds: Seconds = defaults.POLL_MIN_INTERVAL_SECONDS
    poll_max_interval_seconds: Seconds = defaults.POLL_MAX_INTERVAL_SECONDS
    progress_interval_seconds: Seconds = defaults.PROGRESS_INTERVAL_SECONDS
    download_max_bytes: Annotated[int, Field(gt=0)] = defaults.DOWNLOAD_MAX_BYTES
    download_timeout_seconds: Seconds = defaults.DOWNLOAD_TIMEOUT_SECONDS
    download_max_files: Annotated[int, Field(ge=1)] = defaults.DOWNLOAD_MAX_FILES
    download_max_task_bytes: Annotated[int, Field(gt=0)] = defaults.DOWNLOAD_MAX_TASK_BYTES
    # Hosts (`name` or `name:port`) whose result files may be fetched even from a loopback or private
    # address: the simulator, a CDN inside the operator's network. Everyone else must be public.
    download_allowed_hosts: tuple[str, ...] = ()
    retry_max_attempts: Annotated[int, Field(ge=1)] = defaults.RETRY_MAX_ATTEMPTS
    retry_base_delay_seconds: Annotated[float, Field(ge=0)] = defaults.RETRY_BASE_DELAY_SECONDS
    # Folders whose images may be uploaded. None leaves it to the transport (see `local_files`):
    # stdio trusts the local user's working directory and home, HTTP reads no local file at all.
    upload_roots: tuple[Path, ...] | None = None
    upload_max_bytes: Annotated[int, Field(gt=0)] = defaults.UPLOAD_MAX_BYTES
    # The live player view for hosts that render MCP Apps; APIMP_UI=off leaves tools exactly as before.
    ui_enabled: bool = True
    # Origins (https://cdn.example.com, https://*.example.com) the view may play result videos from.
    ui_media_domains: tuple[str, ...] = ()
    ui_poll_interval_seconds: Seconds = defaults.UI_POLL_INTERVAL_SECONDS
    # The largest saved video the view is sent through the host (base64); larger ones open in a browser.
    ui_video_max_bytes: Annotated[int, Field(gt=0)] = defaults.UI_VIDEO_BLOB_MAX_BYTES
    # A cluster (APIMP_JOURNAL=postgresql://...): how long a poller's claim on a task lasts unless
    # renewed, and how often an instance that follows another's poller re-reads the store.
    poll_lease_seconds: Seconds = defaults.POLL_LEASE_SECONDS
    # Streamable HTTP without sessions for legacy-era (<= 2025-11-25) clients, so a balancer may send
    # each of their requests to any instance; without it they need sticky routing on Mcp-Session-Id.
    http_stateless: bool = False
    # Instances of a cluster must share this (comma-separated ring, the first seals): the 2026-07-28
    # era carries a question to the person (a price confirmation) in a sealed requestState that the
    # client's retry may bring to any instance. Unset, each process seals with a key of its own.
    request_state_keys: SecretStr | None = None
    cluster_reread_seconds: Seconds = defaults.CLUSTER_REREAD_SECONDS
    # Connections an instance keeps to a PostgreSQL journal (besides its listener and readiness
    # probe); at least 2, since a submit's lock holds one while its checks use another.
    postgres_pool_size: Annotated[int, Field(ge=2)] = defaults.POSTGRES_POOL_MAX_CONNECTIONS
    # --- Running it for a team (streamable HTTP; see README "Run it for a team") ---
    auth: AuthMode = "none"
    keys_file: Path = Field(default_factory=default_keys_file)
    # The keyed hash that names a bring-your-own-key caller; unset, one is kept beside the journal.
    byok_secret: SecretStr | None = None
    # OAuth: who issues tokens, and this server's own URL (the resource the tokens must name).
    oauth_issuer: str | None = None
    oauth_jwks_url: str | None = None
    oauth_scopes: tuple[str, ...] = ()
    public_url: str | None = None
    # Host and Origin headers accepted besides loopback's (DNS-rebinding protection).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Default limits of each authenticated caller (the keys file may set its own); 0: no limit.
    max_running_tasks: Annotated[int, Field(ge=0)] = defaults.DEFAULT_MAX_RUNNING_TASKS
    max_submits_per_hour: Annotated[int, Field(ge=0)] = defaults.DEFAULT_MAX_SUBMITS_PER_HOUR
    # Addresses whose X-Forwarded-For/-Proto headers are believed (a TLS-terminating proxy).
    trusted_proxies: str = "127.0.0.1"
    # A JSON line per tool call: "stderr", or a file to append to. Unset: no access log.
    access_log: str | None = None
    # Finished and failed tasks unchanged this many days are pruned from the journal (0: never);
    # with journal_prune_videos their saved videos (inside download_dir) are deleted too.
    journal_retention_days: Annotated[float, Field(ge=0)] = defaults.JOURNAL_RETENTION_DAYS
    journal_prune_videos: bool = False
    # The price table estimates come from: Google's list prices unless APIMP_PRICES gives the user's own.
    price_table: PriceTable = Field(default_factory=google_list_prices)
    budget_daily: Amount | None = None
    budget_monthly: Amount | None = None
    budget_timezone: str = defaults.BUDGET_TIMEZONE
    # Estimates above this are confirmed by the person before they are sent; None never asks.
    confirm_above_cost: Amount | None = defaults.CONFIRM_ABOVE_COST

    @field_validator("price_table", mode="before")
    @classmethod
    def _load_prices(cls, value: object) -> object:
        """APIMP_PRICES holds the table's JSON, or the path of a JSON file."""
        if not isinstance(value, str):
            return value
        try:
            return PriceTable.load(value)
        except OSError as exc:
            raise ValueError(f"cannot read the price table file {value!r} ({exc.strerror or exc})") from None

    @field_validator("confirm_above_cost", mode="before")
    @classmethod
    def _confirm_off(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == CONFIRM_OFF else value

    @field_validator("budget_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            _zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a time zone name; use e.g. UTC or Europe/Paris") from None
        return name

    @property
    def budget_zone(self) -> tzinfo:
        return _zone(self.budget_timezone)

    @field_validator("api_key")
    @classmethod
    def _header_safe_key(cls, key: SecretStr | None) -> SecretStr | None:
        """The key goes into an HTTP header: anything but printable ASCII would be refused there (or,
        with a line break, split it), and an HTTP library's debug log would print it. The message
        names the rule, never the value."""
        if key is not None and not all("!" <= char <= "~" for char in key.get_secret_value()):
            raise ValueError(
                "must be printable ASCII with no spaces, tabs, line breaks or control characters (check "
                "for a stray newline, space or quote where it was pasted)"
            )
        return key

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        """An http(s) URL with a host; the message never repeats it (it may hold credentials)."""
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("must be an http(s) URL with a host, such as https://api.apimp.ai")
        return url

    @field_validator("download_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """Paths are reported to the agent; a relative or `~` path would mean nothing to it."""
        return path.expanduser().absolute()

    @field_validator("journal_path")
    @classmethod
    def _absolute_journal(cls, path: str) -> str:
        if path == ":memory:" or is_postgres_url(path):
            return path
        return str(Path(path).expanduser().absolute())

    @field_validator("upload_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        """APIMP_UPLOAD_ROOTS lists folders the way PATH does (os.pathsep); `none` means no folder."""
        if not isinstance(value, str):
            return value
        if value.strip().lower() == UPLOAD_ROOTS_NONE:
            return ()
        roots = tuple(part.strip() for part in value.split(os.pathsep) if part.strip())
        if not roots:
            raise ValueError(f"lists no folder; set it to {UPLOAD_ROOTS_NONE!r} to turn local files off")
        return roots

    @field_validator("upload_roots")
    @classmethod
    def _absolute_roots(cls, roots: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        """A relative root would depend on where the host happens to start the server: refused."""
        if roots is None:
            return None
        expanded = tuple(root.expanduser() for root in roots)
        for root in expanded:
            if not root.is_absolute():
                raise ValueError(f"each folder must be an absolute path (or start with ~), not {str(root)!r}")
        return expanded

    @field_validator("download_allowed_hosts")
    @classmethod
    def _hosts_only(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        """Each is a host name or address, with a port or not: a URL here would silently match nothing."""
        for host in hosts:
            match = ALLOWED_HOST.fullmatch(host)
            if match is None or int(match["port"] or 0) > 65535:
                raise ValueError(
                    f"{host!r} is not a host; write name or name:port, e.g. 127.0.0.1:8765, cdn.internal "
                    "or [::1]:8765"
                )
        return tuple(host.lower() for host in hosts)

    @field_validator(
        "ui_media_domains",
        "download_allowed_hosts",
        "allowed_hosts",
        "allowed_origins",
        "oauth_scopes",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        """Lists in one variable (APIMP_UI_MEDIA_DOMAINS, APIMP_ALLOWED_HOSTS, ...): items separated by
        commas or spaces."""
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("keys_file")
    @classmethod
    def _absolute_keys_file(cls, path: Path) -> Path:
        return path.expanduser().absolute()

    @field_validator("ui_media_domains")
    @classmethod
    def _origins_only(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        """Each goes into a Content-Security-Policy as is: an origin, nothing more, or it is refused."""
        for domain in domains:
            if not MEDIA_ORIGIN.fullmatch(domain):
                raise ValueError(
                    f"{domain!r} is not an origin; write scheme://host[:port], e.g. https://cdn.example.com "
                    "or https://*.example.com"
                )
        return tuple(domain.lower() for domain in domains)

    @field_validator("request_state_keys")
    @classmethod
    def _long_keys(cls, keys: SecretStr | None) -> SecretStr | None:
        if keys is not None and any(len(key.strip()) < 32 for key in keys.get_secret_value().split(",")):
            raise ValueError("each key must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return keys

    def require_api_key(self) -> str:
        """The key, or an error that tells the user exactly which variable to set."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ConfigurationError(
                "APIMP_API_KEY is not set. Set it to your APIMP key (sk-...) in the MCP server's "
                "environment (the 'env' block of your host's MCP configuration), then restart the server."
            )
        return self.api_key.get_secret_value().strip()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every `APIMP_*` variable; an invalid value names its variable and what it accepts."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for field_name, variable in ENVIRONMENT_VARIABLES.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[field_name] = raw
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENVIRONMENT_VARIABLES[str(error['loc'][0])]}: {_where(error['loc'][1:])}{error['msg']}"
                for error in exc.errors()
            )
            raise ConfigurationError(f"Invalid configuration: {problems}") from None


# The public names of the settings: documented in the README, pinned by a test.
ENVIRONMENT_VARIABLES: Final[dict[str, str]] = {
    "api_key": "APIMP_API_KEY",
    "base_url": "APIMP_BASE_URL",
    "download_dir": "APIMP_DOWNLOAD_DIR",
    "journal_path": "APIMP_JOURNAL",
    "wait_timeout_seconds": "APIMP_WAIT_TIMEOUT",
    "request_timeout_seconds": "APIMP_REQUEST_TIMEOUT",
    "poll_min_interval_seconds": "APIMP_POLL_MIN_INTERVAL",
    "poll_max_interval_seconds": "APIMP_POLL_MAX_INTERVAL",
    "progress_interval_seconds": "APIMP_PROGRESS_INTERVAL",
    "download_max_bytes": "APIMP_DOWNLOAD_MAX_BYTES",
    "download_timeout_seconds": "APIMP_DOWNLOAD_TIMEOUT",
    "download_max_files": "APIMP_DOWNLOAD_MAX_FILES",
    "download_max_task_bytes": "APIMP_DOWNLOAD_MAX_TASK_BYTES",
    "download_allowed_hosts": "APIMP_DOWNLOAD_ALLOWED_HOSTS",
    "retry_max_attempts": "APIMP_RETRY_MAX_ATTEMPTS",
    "retry_base_delay_seconds": "APIMP_RETRY_BASE_DELAY",
    "upload_roots": "APIMP_UPLOAD_ROOTS",
    "upload_max_bytes": "APIMP_UPLOAD_MAX_BYTES",
    "ui_enabled": "APIMP_UI",
    "ui_media_domains": "APIMP_UI_MEDIA_DOMAINS",
    "ui_poll_interval_seconds": "APIMP_UI_POLL_INTERVAL",
    "ui_video_max_bytes": "APIMP_UI_VIDEO_MAX_BYTES",
    "poll_lease_seconds": "APIMP_POLL_LEASE",
    "http_stateless": "APIMP_HTTP_STATELESS",
    "request_state_keys": "APIMP_REQUEST_STATE_KEYS",
    "cluster_reread_seconds": "APIMP_CLUSTER_REREAD",
    "postgres_pool_size": "APIMP_POSTGRES_POOL_SIZE",
    "auth": "APIMP_AUTH",
    "keys_file": "APIMP_KEYS_FILE",
    "byok_secret": "APIMP_BYOK_SECRET",
    "oauth_issuer": "APIMP_OAUTH_ISSUER",
    "oauth_jwks_url": "APIMP_OAUTH_JWKS_URL",
    "oauth_scopes": "APIMP_OAUTH_SCOPES",
    "public_url": "APIMP_PUBLIC_URL",
    "allowed_hosts": "APIMP_ALLOWED_HOSTS",
    "allowed_origins": "APIMP_ALLOWED_ORIGINS",
    "max_running_tasks": "APIMP_MAX_RUNNING_TASKS",
    "max_submits_per_hour": "APIMP_MAX_SUBMITS_PER_HOUR",
    "trusted_proxies": "APIMP_TRUSTED_PROXIES",
    "access_log": "APIMP_ACCESS_LOG",
    "price_table": "APIMP_PRICES",
    "budget_daily": "APIMP_BUDGET_DAILY",
    "budget_monthly": "APIMP_BUDGET_MONTHLY",
    "budget_timezone": "APIMP_BUDGET_TIMEZONE",
    "confirm_above_cost": "APIMP_CONFIRM_ABOVE",
    "journal_retention_days": "APIMP_JOURNAL_RETENTION_DAYS",
    "journal_prune_videos": "APIMP_JOURNAL_PRUNE_VIDEOS",
}


def _zone(name: str) -> tzinfo:
    """UTC needs no zone database (Windows has none without tzdata); any other name is looked up."""
    return UTC if name.strip().upper() == "UTC" else ZoneInfo(name)


def _where(location: tuple[int | str, ...]) -> str:
    """Inside a structured value (the price table): which part, e.g. 'rates.2.per_second: '."""
    return ".".join(map(str, location)) + ": " if location else ""
