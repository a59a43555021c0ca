-- bounceflow notifier: the three logs. Applied by the notifier at start
-- (bounceflow_notifier/migrations.py), the same SQL on chDB and on a server.
--
-- ReplacingMergeTree + a sorting key that ends with the stable event id: a
-- replayed record yields a row with the same key, so `SELECT ... FINAL`
-- (which the read API uses) counts it once, and background merges remove the
-- copy for good. All times are UTC.

-- Refusals at SMTP time (delivery-result, status failed: 5xx and `expired`)
-- and recognised DSN failures (classified-bounce, category dsn-failure).
CREATE TABLE IF NOT EXISTS failure_log
(
    event_id          String,
    event_time        DateTime64(3, 'UTC'),
    account           LowCardinality(String),
    message_id        String,
    recipient         String,
    recipient_domain  LowCardinality(String),
    source            LowCardinality(String),   -- 'delivery' (SMTP-time refusal, expired) | 'dsn'
    category          LowCardinality(String),   -- 'smtp-failure' | 'dsn-failure'
    bounce_type       LowCardinality(String),   -- 'hard' | 'soft' | ''
    reason            LowCardinality(String),   -- Sisimai vocabulary
    status            String,                   -- enhanced status code, e.g. 5.1.1
    smtp_code         Nullable(UInt16),
    diagnostic        String,
    remote_mta        String,
    remote_ip         String,
    mail_from         String,                   -- MAIL FROM we used ('' for <>)
    envelope_from     String,                   -- the customer's envelope ('' for <>)
    attempt           UInt16,                   -- delivery attempt; 0 for DSNs
    logged_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_message_id message_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_recipient recipient TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (account, event_time, event_id);

-- Everything that comes back to the envelope address: DSNs, auto-replies,
-- unrecognised bounces, complaints, unmatched mail (account '').
CREATE TABLE IF NOT EXISTS bounce_log
(
    event_id              String,
    event_time            DateTime64(3, 'UTC'),   -- when the bounce was received
    account               LowCardinality(String), -- '' when unmatched
    message_id            String,                 -- '' when unmatched
    matched               Bool,
    recipient             String,                 -- recipient of the original message
    recipient_domain      LowCardinality(String),
    category              LowCardinality(String), -- dsn-failure | dsn-delay | dsn-success | autoreply | complaint | nonstandard-bounce | unknown
    is_bounce             Bool,
    bounce_type           LowCardinality(String),
    reason                LowCardinality(String),
    status                String,
    smtp_code             Nullable(UInt16),
    diagnostic            String,
    remote_mta            String,
    action                LowCardinality(String),
    feedback_type         LowCardinality(String), -- ARF Feedback-Type for complaints
    mail_from             String,                 -- MAIL FROM of the incoming bounce
    rcpt_to               String,                 -- RCPT TO of the incoming bounce
    envelope_from         String,                 -- the customer's original envelope
    original_envelope_id  String,
    parse_error           String,
    mime_bytes            UInt32,
    classified_at         DateTime64(3, 'UTC'),
    logged_at             DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_message_id message_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_recipient recipient TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (account, event_time, event_id);

-- Every delivery attempt (delivered, deferred, failed): the denominator of
-- the rates in /api/stats.
CREATE TABLE IF NOT EXISTS delivery_log
(
    event_id          String,                   -- `<message_id>:<attempt>`
    event_time        DateTime64(3, 'UTC'),     -- when the attempt finished
    started_at        DateTime64(3, 'UTC'),
    account           LowCardinality(String),
    message_id        String,
    recipient         String,
    recipient_domain  LowCardinality(String),
    outcome           LowCardinality(String),   -- delivered | deferred | failed
    final             Bool,
    attempt           UInt16,
    bounce_type       LowCardinality(String),   -- for failed attempts
    reason            LowCardinality(String),
    status            String,
    smtp_code         Nullable(UInt16),
    diagnostic        String,
    remote_mta        String,
    remote_ip         String,
    mail_from         String,
    envelope_from     String,
    logged_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_message_id message_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_recipient recipient TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (account, event_time, event_id);
