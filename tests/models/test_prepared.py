"""PreparedQuery: SQL rendered once, values bound per call, same results as the peewee query."""

from __future__ import annotations

import datetime as dt

import peewee as pw
import pytest
from playhouse.test_utils import count_queries

from models import Nonce, Organization, User
from models.prepared import PreparedQuery
from tests.support.builders import create_customer, create_org, create_user

USERS_OF = PreparedQuery(
    lambda org: User.select(User.login).where(User.organization == org).order_by(User.login), org=str
)


def test_results_match_peewee_and_values_are_bound(database: pw.Database) -> None:
    a, b = create_org("A"), create_org("B")
    for login in ("zed", "amy"):
        create_user(login, a)
    create_user("bob", b)
    assert USERS_OF.all(org=a.id) == [("amy",), ("zed",)]
    assert USERS_OF.all(org=b.id) == [("bob",)]
    assert USERS_OF.all(org="' OR 1=1 --") == []  # a value, never SQL text


def test_sql_is_rendered_once(database: pw.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    query = PreparedQuery(
        lambda org: (calls.append(org), User.select().where(User.organization == org))[1], org=str
    )
    for _ in range(5):
        query.all(org="x")
    assert len(calls) == 1


def test_recursive_cte_and_constants(database: pw.Database) -> None:
    root = create_org("Root")
    deep = create_customer("Deep", create_org("Sub", parent=root))
    in_tree = PreparedQuery(
        lambda root_id, org_id: (
            Organization.subtree(root_id)
            .select(Organization.id)
            .where((Organization.id == org_id) & (Organization.kind == "customer"))
        ),
        root_id=str,
        org_id=str,
    )
    assert in_tree.one(root_id=root.id, org_id=deep.id) == (deep.id,)
    assert in_tree.one(root_id=deep.id, org_id=root.id) is None


def test_insert_rowcount_and_int_parameters(database: pw.Database) -> None:
    record = PreparedQuery(
        lambda key, nonce, ts: Nonce.insert(consumer_key=key, nonce=nonce, timestamp=ts).on_conflict_ignore(),
        key=str,
        nonce=str,
        ts=int,
    )
    assert record.rowcount(key="k", nonce="n-1", ts=1_700_000_000) == 1
    assert record.rowcount(key="k", nonce="n-1", ts=1_700_000_001) == 0
    assert Nonce.get().timestamp == 1_700_000_000


def test_datetime_parameters(database: pw.Database) -> None:
    org = create_org("Old")
    newer = PreparedQuery(
        lambda since: Organization.select(Organization.id).where(Organization.created_at > since),
        since=dt.datetime,
    )
    assert newer.all(since=org.created_at - dt.timedelta(seconds=1)) == [(org.id,)]
    assert newer.all(since=org.created_at + dt.timedelta(seconds=1)) == []


def test_one_query_per_execution(database: pw.Database) -> None:
    USERS_OF.all(org="warm-up")
    with count_queries() as counter:
        USERS_OF.all(org="x")
    assert counter.count == 1


def test_transformed_parameters_are_refused(database: pw.Database) -> None:
    bad = PreparedQuery(lambda login: User.select().where(User.login == login.lower()), login=str)
    with pytest.raises(ValueError, match="verbatim"):
        bad.all(login="x")


def test_wrong_parameter_names_are_refused(database: pw.Database) -> None:
    with pytest.raises(TypeError):
        USERS_OF.all(organization="x")
