-- Account lockout and the audit log (issue #6, design note 0005).
--
-- Lockout counters are keyed by the account key, a SHA-256 of tenant and normalized email,
-- not by user id: an email with no account is counted and locked exactly like a real one, so
-- the answers never tell whether an account exists. The counters live here, not in process
-- memory or Redis, so every replica and every concurrent guess sees the same count.
CREATE TABLE account_lockouts (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_key      bytea       NOT NULL CHECK (octet_length(account_key) = 32),
    -- Consecutive failures since the last success (or since the counter went stale).
    failures         bigint      NOT NULL CHECK (failures >= 0),
    last_failure_at  timestamptz,
    -- No secret of the account is checked before this time: a graduated delay or a lock.
    locked_until     timestamptz,
    PRIMARY KEY (tenant_id, account_key)
);

-- Per-tenant overrides of the `[lockout]` settings; a NULL column keeps the configured value.
CREATE TABLE tenant_lockout_policies (
    tenant_id     uuid     PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    max_failures  bigint   CHECK (max_failures BETWEEN 1 AND 1000),
    lock_secs     bigint   CHECK (lock_secs BETWEEN 1 AND 86400)
);

-- Security events, for `GET /v1/audit-events`. `id` orders the events and is the cursor.
-- `user_id` has no foreign key: the trail of a deleted user must outlive the user.
CREATE TABLE audit_events (
    id          bigserial   PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid,
    kind        text        NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    outcome     text        NOT NULL CHECK (outcome IN ('success', 'failure', 'refused')),
    ip          text        NOT NULL,
    user_agent  text        CHECK (char_length(user_agent) <= 256),
    -- A small JSON object; never a secret.
    detail      text        NOT NULL DEFAULT '{}' CHECK (
                    octet_length(detail) <= 2048 AND jsonb_typeof(detail::jsonb) = 'object'),
    created_at  timestamptz NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_user ON audit_events (tenant_id, user_id, id);
