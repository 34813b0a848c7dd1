-- TOTP MFA with backup codes and the MFA step of login (issue #6, design note 0005).
--
-- The TOTP secret is sealed with a key derived from the master key (ChaCha20-Poly1305, bound
-- to tenant and user), so a copy of the database alone does not yield a second factor.
-- `last_step` is the last accepted RFC 6238 time step: a code at or before it is refused,
-- and it only ever moves forward in one conditional UPDATE, so a code is accepted once even
-- when it is presented concurrently.
CREATE TABLE mfa_totp (
    tenant_id      uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    secret_nonce   bytea       NOT NULL CHECK (octet_length(secret_nonce) = 12),
    secret_sealed  bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    -- NULL while enrolment waits for its first code; a new enrolment replaces such a row.
    confirmed_at   timestamptz,
    last_step      bigint      CHECK (last_step >= 0),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Backup codes: SHA-256 of a random code of 80 bits (high entropy, so a fast hash suffices).
-- A code is spent with `UPDATE … SET used_at … WHERE used_at IS NULL`: once, also under
-- concurrent use.
CREATE TABLE mfa_backup_codes (
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    code_hash   bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at  timestamptz NOT NULL,
    used_at     timestamptz,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- The `mfa_token` of a half-done login: SHA-256 of the token, the user it is bound to, what
-- it may be used for (`verify`: the second factor of an enrolled user; `enroll`: enrolment
-- of a user whose tenant requires MFA), and its short life. Single use: `used_at`.
CREATE TABLE mfa_challenges (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('verify', 'enroll')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
-- A new challenge first deletes the user's spent and expired ones, so the table stays small.
CREATE INDEX mfa_challenges_user ON mfa_challenges (tenant_id, user_id);

-- Per-tenant MFA policy: `require_mfa` makes login demand a second factor, and enrolment
-- for users who have none. No row: not required.
CREATE TABLE tenant_mfa_policies (
    tenant_id    uuid    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    require_mfa  boolean NOT NULL DEFAULT false
);
