-- Records the notifier could not parse (bad JSON, unknown schema version,
-- contract violation). Nothing is dropped silently: each is kept here with
-- its coordinates and the error, and the offset is committed only after this
-- row is written. Keyed by (topic, partition, offset), so a replay is idempotent.
CREATE TABLE IF NOT EXISTS rejected_records
(
    topic        LowCardinality(String),
    partition    UInt32,
    offset       UInt64,
    record_key   String,
    value        String,          -- the raw bytes as received
    error        String,
    received_at  DateTime64(3, 'UTC'),   -- Kafka record timestamp
    logged_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset);
