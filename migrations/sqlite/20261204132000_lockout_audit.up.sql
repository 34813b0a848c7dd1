-- Account lockout and the audit log (issue #6, design note 0005): the same tables as
-- `migrations/postgres/20261204132000_lockout_audit.up.sql`, in SQLite.
--
-- Lockout counters are keyed by the account key, a SHA-256 of tenant and normalized email,
-- not by user id: an email with no account is counted and locked exactly like a real one, so
-- the answers never tell whether an account exists.
CREATE TABLE account_lockouts (
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_key      BLOB    NOT NULL CHECK (length(account_key) = 32),
    -- Consecutive failures since the last success (or since the counter went stale).
    failures         INTEGER NOT NULL CHECK (failures >= 0),
    last_failure_at  TEXT,
    -- No secret of the account is checked before this time: a graduated delay or a lock.
    locked_until     TEXT,
    PRIMARY KEY (tenant_id, account_key)
) STRICT;

-- Per-tenant overrides of the `[lockout]` settings; a NULL column keeps the configured value.
CREATE TABLE tenant_lockout_policies (
    tenant_id     BLOB    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    max_failures  INTEGER CHECK (max_failures BETWEEN 1 AND 1000),
    lock_secs     INTEGER CHECK (lock_secs BETWEEN 1 AND 86400)
) STRICT;

-- Security events, for `GET /v1/audit-events`. `id` orders the events and is the cursor.
-- `user_id` has no foreign key: the trail of a deleted user must outlive the user.
CREATE TABLE audit_events (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     BLOB    CHECK (user_id IS NULL OR length(user_id) = 16),
    kind        TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 40
                    AND kind NOT GLOB '*[^a-z_]*'),
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure', 'refused')),
    ip          TEXT    NOT NULL,
    user_agent  TEXT    CHECK (length(user_agent) <= 256),
    -- A small JSON object; never a secret.
    detail      TEXT    NOT NULL DEFAULT '{}' CHECK (
                    length(detail) <= 2048 AND json_valid(detail)
                    AND json_type(detail) = 'object'),
    -- RFC 3339 in UTC as sqlx writes it, which sorts as text in time order.
    created_at  TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_user ON audit_events (tenant_id, user_id, id);
