"""Which log rows each record becomes (the seeds' rules), without I/O."""

from __future__ import annotations

from datetime import timezone

import pytest
from notifier.notifier_records import T0, bounce, deferred, delivery, expired, refused

from bounceflow_notifier.rows import (
    TABLE_COLUMNS, bounce_rows, bounce_type_for, delivery_rows, reason_for, recipient_domain, record_rows,
)


def tables(rows) -> list[str]:
    return sorted(row.table for row in rows)


def test_delivered_and_deferred_attempts_go_to_delivery_log_only():
    assert tables(delivery_rows(delivery("m1"))) == ["delivery_log"]
    assert tables(delivery_rows(deferred("m2"))) == ["delivery_log"]


def test_smtp_time_refusal_goes_to_failure_log_with_derived_reason():
    rows = {row.table: row.values for row in delivery_rows(refused("m3", recipient="Bob@Example.COM"))}
    assert set(rows) == {"delivery_log", "failure_log"}
    failure = rows["failure_log"]
    assert failure["source"] == "delivery" and failure["category"] == "smtp-failure"
    assert failure["reason"] == "userunknown" and failure["bounce_type"] == "hard"
    assert failure["smtp_code"] == 550 and failure["status"] == "5.1.1"
    assert failure["recipient_domain"] == "example.com"
    assert rows["delivery_log"]["outcome"] == "failed"


def test_expired_goes_to_failure_log_as_soft():
    failure = next(r.values for r in delivery_rows(expired("m4")) if r.table == "failure_log")
    assert failure["reason"] == "expired" and failure["bounce_type"] == "soft" and failure["attempt"] == 7


def test_dsn_failure_goes_to_both_logs():
    rows = {row.table: row.values for row in bounce_rows(bounce("b1", "dsn-failure", "m5"))}
    assert set(rows) == {"bounce_log", "failure_log"}
    assert rows["failure_log"]["source"] == "dsn" and rows["failure_log"]["category"] == "dsn-failure"
    assert rows["failure_log"]["reason"] == "userunknown" and rows["failure_log"]["bounce_type"] == "hard"
    assert rows["bounce_log"]["remote_mta"] == "dns; mx.example.com"
    assert rows["bounce_log"]["event_time"] == T0


@pytest.mark.parametrize("category", ["dsn-delay", "autoreply", "nonstandard-bounce", "complaint", "unknown"])
def test_other_bounces_go_to_bounce_log_only(category):
    rows = bounce_rows(bounce("b2", category, "m6"))
    assert tables(rows) == ["bounce_log"]
    assert rows[0].values["category"] == category


def test_unmatched_bounce_is_logged_without_account():
    rows = {row.table: row.values for row in bounce_rows(bounce("b3", "dsn-failure", None))}
    assert rows["bounce_log"]["account"] == "" and rows["bounce_log"]["matched"] is False
    assert rows["bounce_log"]["message_id"] == "" and rows["bounce_log"]["recipient"] == ""
    # still a recognised failure: kept in failure_log too, under account '' (SQL only, no API key sees it)
    assert rows["failure_log"]["account"] == ""


def test_rows_have_exactly_the_table_columns():
    for rows in (delivery_rows(refused("m7")), bounce_rows(bounce("b4", "dsn-failure", "m7"))):
        for row in rows:
            assert set(row.values) == set(TABLE_COLUMNS[row.table]), row.table
            assert len(row.as_sequence()) == len(TABLE_COLUMNS[row.table])


def test_times_are_utc():
    row = delivery_rows(delivery("m8"))[0]
    assert row.values["event_time"].tzinfo == timezone.utc


@pytest.mark.parametrize("value", [b"{not json", b'{"schema_version": 1}', b'{"schema_version": 9}', None])
def test_unparseable_records_are_kept_not_dropped(value):
    (row,) = record_rows("delivery-result", "p.delivery-result", 2, 41, b"m9", value, 1_700_000_000_000)
    assert row.table == "rejected_records"
    assert (row.values["partition"], row.values["offset"], row.values["record_key"]) == (2, 41, "m9")
    assert row.values["error"]


def test_valid_records_map_by_topic_kind():
    value = bounce("b5", "autoreply", "m10").to_bytes()
    assert tables(record_rows("classified-bounce", "classified-bounce", 0, 0, b"m10", value, 0)) == ["bounce_log"]


def test_reason_and_bounce_type_rules():
    assert reason_for(None, "5.2.2", 552) == "mailboxfull"
    # The status class decides, whatever the reason (docs/classify.md).
    assert bounce_type_for("mailboxfull", 552, "5.2.2") == "hard"
    assert bounce_type_for("rejected", 554, "5.7.1") == "hard"
    assert bounce_type_for("userunknown", 450, "4.1.1") == "soft"
    assert bounce_type_for("rejected", 554, None) == "hard"
    # No code at all: permanent reasons are hard, the rest soft.
    assert bounce_type_for("userunknown", None, None) == "hard"
    assert bounce_type_for("expired", None, None) == "soft"
    assert reason_for(None, "5.9.9", 554) == "undefined"
    assert bounce_type_for("undefined", 554, "5.9.9") == "hard"
    assert bounce_type_for("undefined", 451, "4.0.0") == "soft"
    assert reason_for("blocked", "5.7.1", 550) == "blocked"


@pytest.mark.parametrize("address,domain", [("a@B.example", "b.example"), ("", ""), ("nodomain", ""),
                                            ("x@y.z>", "y.z")])
def test_recipient_domain(address, domain):
    assert recipient_domain(address) == domain
