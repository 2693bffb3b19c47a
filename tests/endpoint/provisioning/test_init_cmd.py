"""connector init: schema, root partner, admin, consumer, and the filled instance document; safe re-runs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from endpoint.commands.cli import main
from models import Consumer, ConsumerSecret, Organization, User, db
from models.db import utcnow
from tests.support.builders import FAST_ARGON2

PUBLIC = "https://connector.example.com/"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    config = tmp_path / "connector.toml"
    argon2 = "\n".join(f"{key} = {value}" for key, value in FAST_ARGON2.items())
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n[auth]\n{argon2}\n', encoding="utf-8"
    )
    yield tmp_path
    if not db.is_closed():
        db.close()


def run(workdir: Path, *extra: str, password: str | None = "admin-password-1", **env: str) -> int:
    environ = {**env, **({"CONNECTOR_ADMIN_PASSWORD": password} if password else {})}
    argv = [
        "--config",
        str(workdir / "connector.toml"),
        "--public-url",
        PUBLIC,
        "--instance-json",
        str(workdir / "var" / "app_instance.json"),
        *extra,
    ]
    return main(["init", *argv], environ)


def counts() -> dict[str, int]:
    with db.connection_context():
        return {m.__name__: m.select().count() for m in (Organization, User, Consumer, ConsumerSecret)}


def document(workdir: Path) -> dict:
    return json.loads((workdir / "var" / "app_instance.json").read_text())


def test_writes_the_documented_instance_document_owner_only(workdir: Path) -> None:
    assert run(workdir) == 0
    path = workdir / "var" / "app_instance.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = document(workdir)
    aps = doc["aps"]
    assert aps["endpoint"] == PUBLIC  # byte-identical to public_base_url
    assert aps["network"] == "proxy"
    assert set(aps["package"]) == {"type", "version", "release"}
    key, secret = aps["auth"]["oauth"]["key"], aps["auth"]["oauth"]["secret"]
    assert key.startswith("connector-") and len(key) == len("connector-") + 32
    assert len(secret) >= 43  # 32 random bytes, URL-safe
    with db.connection_context():
        assert Consumer.active_secrets(key, utcnow())[0][1] == secret


def test_rerun_is_safe_and_never_replaces_keys(workdir: Path) -> None:
    assert run(workdir, "--demo") == 0
    first, before = document(workdir), counts()
    assert run(workdir, "--demo") == 0
    assert document(workdir) == first and counts() == before


def test_an_instance_document_for_another_key_is_never_overwritten(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "var" / "app_instance.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"aps": {"auth": {"oauth": {"key": "other-0123456789", "secret": "x"}}}}))
    assert run(workdir) == 2
    assert "holds consumer key 'other-0123456789'" in capsys.readouterr().err
    assert json.loads(path.read_text())["aps"]["auth"]["oauth"]["key"] == "other-0123456789"


def test_admin_password_changes_only_on_request(workdir: Path) -> None:
    assert run(workdir) == 0
    with db.connection_context():
        original = User.get(User.login == "admin").password_hash
    assert run(workdir, password="another-password") == 0
    with db.connection_context():
        assert User.get(User.login == "admin").password_hash == original
    assert run(workdir, "--reset-admin-password", password="another-password") == 0
    with db.connection_context():
        assert User.get(User.login == "admin").password_hash != original


def test_password_from_flag_or_environment_is_never_printed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workdir, "--admin-password", "flag-secret-123", password=None) == 0
    out = capsys.readouterr()
    secret = document(workdir)["aps"]["auth"]["oauth"]["secret"]
    for value in ("flag-secret-123", secret):
        assert value not in out.out and value not in out.err


def test_demo_data_is_deterministic_with_a_seed(tmp_path: Path) -> None:
    ids = []
    for run_dir in ("a", "b"):
        workdir = tmp_path / run_dir
        workdir.mkdir()
        (workdir / "connector.toml").write_text(f'[database]\nurl = "sqlite:///{workdir / "c.db"}"\n')
        assert run(workdir, "--demo", "--seed", "7") == 0
        with db.connection_context():
            ids.append(sorted((o.id, o.name) for o in Organization.select()))
    assert ids[0] == ids[1]


def test_missing_public_url_is_a_clear_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["init", "--config", str(workdir / "connector.toml"), "--instance-json", str(workdir / "x.json")]
    assert main(argv, {"CONNECTOR_ADMIN_PASSWORD": "admin-password-1"}) == 2
    assert "endpoint.public_base_url" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("abc", "at least 12 characters"),
        ("elevenchars", "at least 12 characters"),
        ("Admin.Person", "must not be the login"),
    ],
)
def test_a_weak_admin_password_is_refused_before_anything_is_written(
    workdir: Path, capsys: pytest.CaptureFixture[str], password: str, error: str
) -> None:
    assert run(workdir, "--admin-login", "admin.person", password=password) == 2
    err = capsys.readouterr().err
    assert err.startswith("connector init: ") and error in err and err.count("\n") == 1
    assert password not in err
    assert not (workdir / "c.db").exists() and not (workdir / "var").exists()


def test_no_password_for_a_new_admin_fails_and_creates_nobody(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workdir, password=None) == 2  # no terminal attached: nobody can be asked
    err = capsys.readouterr().err
    assert "needs a password" in err and "CONNECTOR_ADMIN_PASSWORD" in err
    assert counts() == {"Organization": 0, "User": 0, "Consumer": 0, "ConsumerSecret": 0}
    assert not (workdir / "var" / "app_instance.json").exists()


def test_a_rerun_without_password_keeps_the_admin_it_has(workdir: Path) -> None:
    assert run(workdir) == 0
    assert run(workdir, password=None) == 0
    assert counts()["User"] == 1


def test_an_instance_path_in_a_missing_tree_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = workdir / "no" / "such" / "dir" / "x.json"
    code = main(
        [
            "init",
            "--config",
            str(workdir / "connector.toml"),
            "--public-url",
            PUBLIC,
            "--instance-json",
            str(target),
        ],
        {"CONNECTOR_ADMIN_PASSWORD": "admin-password-1"},
    )
    assert code == 2
    assert "--instance-json: directory" in capsys.readouterr().err
    assert not (workdir / "no").exists()  # nothing created on the way
