"""The keys file and the `apimp-video-mcp keys` commands: a key is shown once, only its hash kept."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from apimp_video_mcp.access.keys import AccessKeys, KeyEntry, add_key, key_hash
from apimp_video_mcp.access.principals import Limits
from apimp_video_mcp.cli import main
from apimp_video_mcp.errors import ConfigurationError


def run(*argv: str) -> None:
    main(list(argv))


def test_keys_add_prints_the_key_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"

    run("keys", "--file", str(path), "add", "alice", "--max-running-tasks", "2", "--upload-root", "/srv/a")
    key = capsys.readouterr().out.strip()

    assert key.startswith("amk_")
    stored = json.loads(path.read_text())["keys"]
    assert list(stored) == [key_hash(key)]
    assert stored[key_hash(key)]["principal"] == "alice"
    assert stored[key_hash(key)]["max_running_tasks"] == 2
    assert stored[key_hash(key)]["upload_roots"] == ["/srv/a"]
    assert key not in path.read_text()


def test_keys_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    add_key(path, KeyEntry(principal="alice"))
    add_key(path, KeyEntry(principal="bob"))

    run("keys", "--file", str(path), "list")
    listed = capsys.readouterr().out
    run("keys", "--file", str(path), "revoke", "alice")
    with pytest.raises(SystemExit) as none_left:
        run("keys", "--file", str(path), "revoke", "alice")

    assert [line.split("\t")[0] for line in listed.splitlines()] == ["alice", "bob"]
    assert [entry["principal"] for entry in json.loads(path.read_text())["keys"].values()] == ["bob"]
    assert none_left.value.code == 1


def test_a_holders_own_apimp_key_is_read_from_stdin_never_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-carols-own\n"))

    run("keys", "--file", str(path), "add", "carol", "--apimp-key-stdin")
    key = capsys.readouterr().out.strip()
    principal = AccessKeys(path, default_limits=Limits()).principal_for(key)

    assert principal is not None
    assert principal.api_key is not None
    assert principal.api_key.get_secret_value() == "sk-carols-own"
    assert "sk-carols-own" not in repr(principal)


def test_a_bad_name_or_a_relative_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(SystemExit) as bad_name:
        run("keys", "--file", str(path), "add", "../alice")
    with pytest.raises(ConfigurationError, match="absolute"):
        add_key(path, KeyEntry(principal="alice", upload_roots=[Path("relative")]))

    assert bad_name.value.code == 2
    assert "Invalid key" in capsys.readouterr().err
    assert not path.exists()


def test_limits_fall_back_to_the_defaults_and_zero_means_none(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    plain = add_key(path, KeyEntry(principal="plain"))
    unlimited = add_key(path, KeyEntry(principal="free", max_running_tasks=0, max_submits_per_hour=0))
    keys = AccessKeys(path, default_limits=Limits(max_running_tasks=3, max_submits_per_hour=9))

    plain_principal = keys.principal_for(plain)
    free_principal = keys.principal_for(unlimited)

    assert plain_principal is not None
    assert plain_principal.limits == Limits(3, 9)
    assert plain_principal.id == "key:plain"
    assert free_principal is not None
    assert free_principal.limits == Limits(None, None)
    assert keys.principal_for("amk_unknown") is None


def test_keys_mode_without_a_keys_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="apimp-video-mcp keys add NAME"):
        AccessKeys(tmp_path / "missing.json", default_limits=Limits())


def test_a_deleted_keys_file_lets_nobody_in(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, KeyEntry(principal="alice"))
    keys = AccessKeys(path, default_limits=Limits())
    path.unlink()

    assert keys.principal_for(key) is None
