-- TOTP MFA with backup codes and the MFA step of login (issue #6, design note 0005): the same
-- tables as `migrations/postgres/20261204181000_mfa.up.sql`, in SQLite.
--
-- The TOTP secret is sealed with a key derived from the master key (ChaCha20-Poly1305, bound
-- to tenant and user). `last_step` is the last accepted RFC 6238 time step: a code at or
-- before it is refused, and it only moves forward in one conditional UPDATE.
CREATE TABLE mfa_totp (
    tenant_id      BLOB    NOT NULL,
    user_id        BLOB    NOT NULL CHECK (length(user_id) = 16),
    secret_nonce   BLOB    NOT NULL CHECK (length(secret_nonce) = 12),
    secret_sealed  BLOB    NOT NULL,
    created_at     TEXT    NOT NULL,
    -- NULL while enrolment waits for its first code; a new enrolment replaces such a row.
    confirmed_at   TEXT,
    last_step      INTEGER CHECK (last_step >= 0),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- Backup codes: SHA-256 of a random code of 80 bits; spent once with a conditional UPDATE.
CREATE TABLE mfa_backup_codes (
    tenant_id   BLOB    NOT NULL,
    user_id     BLOB    NOT NULL CHECK (length(user_id) = 16),
    code_hash   BLOB    NOT NULL CHECK (length(code_hash) = 32),
    created_at  TEXT    NOT NULL,
    used_at     TEXT,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- The `mfa_token` of a half-done login (`verify`) or of a required enrolment (`enroll`).
CREATE TABLE mfa_challenges (
    token_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    tenant_id   BLOB    NOT NULL,
    user_id     BLOB    NOT NULL CHECK (length(user_id) = 16),
    purpose     TEXT    NOT NULL CHECK (purpose IN ('verify', 'enroll')),
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
-- A new challenge first deletes the user's spent and expired ones, so the table stays small.
CREATE INDEX mfa_challenges_user ON mfa_challenges (tenant_id, user_id);

-- Per-tenant MFA policy; no row: not required.
CREATE TABLE tenant_mfa_policies (
    tenant_id    BLOB    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    require_mfa  INTEGER NOT NULL DEFAULT 0 CHECK (require_mfa IN (0, 1))
) STRICT;
