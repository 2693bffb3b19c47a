"""The command line: settings flags, CONNECTOR_CONFIG, ConfigError -> exit 2, and the command registry."""

from __future__ import annotations

import argparse
import importlib
import operator
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from endpoint.commands.cli import COMMANDS, add_settings_flags, main, settings_from_args
from endpoint.config.loader import ConfigError
from models import MIGRATIONS, db


@pytest.fixture(autouse=True)
def release_database() -> Iterator[None]:
    """main() binds the shared proxy to the command's database: close its pool afterwards."""
    yield
    if db.obj is not None:
        db.obj.close_all()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    return parser.parse_args(argv)


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


ALL_VERSIONS = [m.version for m in MIGRATIONS]


@pytest.mark.parametrize(
    ("argv", "attribute", "expected"),
    [
        (["--db", "sqlite:////srv/c.db"], "database.url", "sqlite:////srv/c.db"),
        (["--public-url", "https://c.example.com/"], "endpoint.public_base_url", "https://c.example.com/"),
        (["--host", "0.0.0.0"], "server.host", "0.0.0.0"),
        (["--port", "9000"], "server.port", 9000),
        (["--log-level", "DEBUG"], "logging.level", "DEBUG"),
        (["--set", "auth.cache_size=5"], "auth.cache_size", 5),
        (["--set", " logging.format =json"], "logging.format", "json"),
        (
            ["--set", "endpoint.trusted_proxies=10.0.0.0/8,::1"],
            "endpoint.trusted_proxies",
            ("10.0.0.0/8", "::1"),
        ),
        (["--set", "server.port=1", "--set", "server.port=2"], "server.port", 2),
        (["--set", "endpoint.app_code=a=b"], "endpoint.app_code", "a=b"),  # split at the first '='
    ],
)
def test_flags_map_to_dotted_settings(argv: list[str], attribute: str, expected: Any) -> None:
    settings = settings_from_args(parse(*argv), {})
    assert operator.attrgetter(attribute)(settings) == expected


def test_flags_beat_environment_and_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 1000\nhost = '10.0.0.1'\n")
    environ = {"CONNECTOR_SERVER_PORT": "2000", "CONNECTOR_SERVER_HOST": "10.0.0.2"}
    settings = settings_from_args(parse("--config", str(config), "--port", "3000"), environ)
    assert (settings.server.port, settings.server.host) == (3000, "10.0.0.2")


@pytest.mark.parametrize("item", ["auth.cache_size", "", "no-equals-sign"])
def test_malformed_set_is_a_config_error(item: str) -> None:
    with pytest.raises(ConfigError, match=r"expected SECTION\.KEY=VALUE"):
        settings_from_args(parse("--set", item), {})


def test_migrate_really_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data" / "c.db"
    assert main(["migrate", "--db", f"sqlite:///{path}"], environ={}) == 0
    assert versions(path) == ALL_VERSIONS
    assert (
        capsys.readouterr().out.strip() == f"schema up to date (applied: {', '.join(map(str, ALL_VERSIONS))})"
    )


def test_connector_config_is_used_without_config_flag(tmp_path: Path) -> None:
    path = tmp_path / "from-env.db"
    config = tmp_path / "c.toml"
    config.write_text(f"[database]\nurl = 'sqlite:///{path}'\n")
    assert main(["migrate"], environ={"CONNECTOR_CONFIG": str(config)}) == 0
    assert versions(path) == ALL_VERSIONS


def test_config_flag_wins_over_connector_config(tmp_path: Path) -> None:
    path = tmp_path / "from-flag.db"
    config = tmp_path / "c.toml"
    config.write_text(f"[database]\nurl = 'sqlite:///{path}'\n")
    environ = {"CONNECTOR_CONFIG": str(tmp_path / "missing.toml")}
    assert main(["migrate", "--config", str(config)], environ=environ) == 0
    assert path.exists()


@pytest.mark.parametrize(
    ("extra", "environ", "named"),
    [
        (["--set", "server.port=abc"], {}, "server.port"),
        (["--set", "server.port"], {}, "--set 'server.port'"),
        (["--set", "nosuch.key=1"], {}, "nosuch.key"),
        ([], {"CONNECTOR_DATABASE_POOL_TIMEOUT": "0"}, "database.pool_timeout"),
        (["--log-level", "LOUD"], {}, "logging.level"),
        ([], {"CONNECTOR_CONFIG": "/nonexistent/c.toml"}, "/nonexistent/c.toml"),
    ],
)
def test_config_errors_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], environ: dict[str, str], named: str
) -> None:
    path = tmp_path / "c.db"
    assert main(["migrate", "--db", f"sqlite:///{path}", *extra], environ=environ) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("configuration error: ") and named in captured.err
    assert captured.out == ""
    assert not path.exists()  # the command never ran


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_module_imports_and_exposes_the_protocol(name: str) -> None:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    assert callable(module.configure_parser) and callable(module.run)
    assert help_text
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    module.configure_parser(parser)  # its own flags do not clash with the common ones


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([], environ={})
    assert info.value.code == 2
    assert "VERB" in capsys.readouterr().err


# -- one command: options anywhere, help per verb, suggestions, errors a person can act on --------------
def test_shared_options_work_before_or_after_the_verb(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    assert main(["--db", f"sqlite:///{first}", "migrate"], environ={}) == 0
    assert main(["migrate", "--db", f"sqlite:///{second}"], environ={}) == 0
    assert versions(first) == versions(second) == ALL_VERSIONS
    third = tmp_path / "c.db"  # after the verb wins: it is the one the user typed last
    assert (
        main(["--db", "sqlite:////nonexistent/x.db", "migrate", "--db", f"sqlite:///{third}"], environ={})
        == 0
    )
    assert third.exists()


def test_an_unknown_verb_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["rotate-keys"], environ={})
    assert info.value.code == 2
    assert "unknown verb 'rotate-keys'; did you mean 'rotate-key'?" in capsys.readouterr().err


def test_a_verbs_help_shows_only_the_options_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["list-keys", "--help"], environ={})
    out = capsys.readouterr().out
    assert "--db" in out and "--host" not in out and "--port" not in out and "--public-url" not in out
    with pytest.raises(SystemExit):
        main(["serve", "--help"], environ={})
    out = capsys.readouterr().out
    assert "--host" in out and "--public-url" in out


def test_a_database_that_cannot_be_reached_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://svc:hunter2@127.0.0.1:1/connector"  # port 1: nothing listens there
    assert main(["migrate", "--db", url], environ={}) == 1
    err = capsys.readouterr().err
    assert err.startswith("connector migrate: database.url (postgresql://svc:***@127.0.0.1:1/connector): ")
    assert "is the server running?" in err and err.count("\n") == 1
    assert "hunter2" not in err and "Traceback" not in err


def test_debug_shows_the_traceback_instead() -> None:
    with pytest.raises(Exception, match="Connection refused|connection refused"):
        main(["migrate", "--debug", "--db", "postgresql://svc@127.0.0.1:1/connector"], environ={})


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`connector outbox list | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    script = (
        "import sys; from endpoint.commands import cli, migrate; "
        "migrate.run = lambda args, settings: [print('line', i) for i in range(200000)] and 0; "
        f"sys.exit(cli.main(['migrate', '--db', 'sqlite:///{tmp_path / 'c.db'}']))"
    )
    done = _run_into_head(script)
    assert done == ("line 0\n", "")


def _run_into_head(script: str) -> tuple[str, str]:
    """Run ``script`` with its stdout piped into ``head -1``; returns (head's output, script's stderr)."""
    producer = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, timeout=60)
    producer.stdout.close()  # type: ignore[union-attr]
    _, err = producer.communicate(timeout=60)
    return head.stdout.decode(), err.decode()
