-- Email and one-time links (issue #6, design note 0005, "Email" and "One-time tokens").

-- The durable outbox: a request commits its rendered message here and never waits for SMTP.
-- A worker on each replica claims due rows (`FOR UPDATE SKIP LOCKED`, then a lease in
-- `next_attempt_at`), sends them and retries with exponential backoff. Once a message is sent
-- (or given up) its subject and bodies are emptied, so no link token outlives its delivery.
CREATE TABLE email_outbox (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- No foreign key: the delivery record of a deleted user is kept.
    user_id          uuid        NOT NULL,
    -- The message kind (`verify_email`, `password_reset`, `new_sign_in`, …).
    template         text        NOT NULL CHECK (template ~ '^[a-z_]{1,40}$'),
    recipient        text        NOT NULL,
    sender           text        NOT NULL,
    subject          text        NOT NULL,
    body_text        text        NOT NULL,
    body_html        text        NOT NULL,
    attempts         bigint      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    sent_at          timestamptz,
    -- Set when `mail.max_attempts` were spent without success.
    failed_at        timestamptz,
    -- The last SMTP failure, for operators; never a secret.
    last_error       text,
    created_at       timestamptz NOT NULL
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- Links mailed to a user: only SHA-256 of the 256-bit token is stored. Consumed with one
-- conditional UPDATE (`used_at IS NULL AND expires_at > now`), so a link works once.
CREATE TABLE one_time_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (tenant_id, user_id, purpose)
    WHERE used_at IS NULL;

-- Per-tenant overrides of a message kind; a NULL column keeps the built-in default. The
-- subject and bodies are minijinja templates (the HTML one auto-escaped).
CREATE TABLE tenant_mail_templates (
    tenant_id  uuid  NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    template   text  NOT NULL CHECK (template ~ '^[a-z_]{1,40}$'),
    sender     text,
    subject    text,
    body_text  text,
    body_html  text,
    PRIMARY KEY (tenant_id, template)
);
