-- Email and one-time links (issue #6, design note 0005): the same tables as
-- `migrations/postgres/20261204180000_mail.up.sql`, in SQLite.

-- The durable outbox. Once a message is sent (or given up) its subject and bodies are
-- emptied, so no link token outlives its delivery.
CREATE TABLE email_outbox (
    id               BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- No foreign key: the delivery record of a deleted user is kept.
    user_id          BLOB    NOT NULL CHECK (length(user_id) = 16),
    template         TEXT    NOT NULL CHECK (length(template) BETWEEN 1 AND 40
                         AND template NOT GLOB '*[^a-z_]*'),
    recipient        TEXT    NOT NULL,
    sender           TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body_text        TEXT    NOT NULL,
    body_html        TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- RFC 3339 in UTC as sqlx writes it, which sorts as text in time order.
    next_attempt_at  TEXT    NOT NULL,
    sent_at          TEXT,
    failed_at        TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- Links mailed to a user: only SHA-256 of the token is stored; consumed once.
CREATE TABLE one_time_tokens (
    token_hash  BLOB NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    tenant_id   BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX one_time_tokens_user ON one_time_tokens (tenant_id, user_id, purpose)
    WHERE used_at IS NULL;

-- Per-tenant overrides of a message kind; a NULL column keeps the built-in default.
CREATE TABLE tenant_mail_templates (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    template   TEXT NOT NULL CHECK (length(template) BETWEEN 1 AND 40
                   AND template NOT GLOB '*[^a-z_]*'),
    sender     TEXT,
    subject    TEXT,
    body_text  TEXT,
    body_html  TEXT,
    PRIMARY KEY (tenant_id, template)
) STRICT;
