-- The spine of issue #2 for the embedded backend (issue #3, design note 0003): the same tables,
-- constraints and seed rows as `migrations/postgres/20261203192000_spine.up.sql`, in SQLite.
--
-- Types: ids are 16-byte BLOBs, times RFC 3339 TEXT, arrays JSON TEXT, booleans 0/1. Tables
-- are STRICT, so a value of the wrong type is refused instead of silently stored. As in
-- PostgreSQL, every tenant-owned row carries `tenant_id` and references between tenant-owned
-- rows go through composite foreign keys on (tenant_id, id); the issuer turns `foreign_keys`
-- on for every connection.

CREATE TABLE tenants (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    slug        TEXT    NOT NULL UNIQUE CHECK (
                    length(slug) BETWEEN 1 AND 63
                    AND slug GLOB '[a-z0-9]*'
                    AND slug NOT GLOB '*[^a-z0-9-]*'),
    name        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- A Host name served on behalf of one tenant. Stored lowercase, without port or trailing dot.
CREATE TABLE tenant_domains (
    domain      TEXT    NOT NULL PRIMARY KEY CHECK (domain = lower(domain) AND domain <> ''),
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);

CREATE TABLE users (
    id                 BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    tenant_id          BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email              TEXT    NOT NULL,
    -- trim, Unicode NFKC, lowercase: the form used for lookups and uniqueness.
    email_normalized   TEXT    NOT NULL,
    name               TEXT,
    -- Argon2id PHC string.
    password_hash      TEXT    NOT NULL,
    email_verified_at  TEXT,
    created_at         TEXT    NOT NULL,
    UNIQUE (tenant_id, email_normalized),
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE roles (
    id           BLOB    NOT NULL PRIMARY KEY DEFAULT (randomblob(16)) CHECK (length(id) = 16),
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    -- A JSON array of `resource:action` strings, `*` as a wildcard segment.
    permissions  TEXT    NOT NULL DEFAULT '[]'
                 CHECK (json_valid(permissions) AND json_type(permissions) = 'array'),
    -- Granted to every new user of the tenant.
    is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE user_roles (
    tenant_id   BLOB    NOT NULL,
    user_id     BLOB    NOT NULL,
    role_id     BLOB    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- A session is one login and the refresh family that rotates inside it (`sid`).
CREATE TABLE sessions (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    tenant_id       BLOB    NOT NULL,
    user_id         BLOB    NOT NULL,
    -- Authentication methods of the login (RFC 8176) as a JSON array, copied into every
    -- access token.
    amr             TEXT    NOT NULL CHECK (json_valid(amr) AND json_type(amr) = 'array'),
    created_at      TEXT    NOT NULL,
    -- Absolute end of the family, whatever the rotations.
    expires_at      TEXT    NOT NULL,
    revoked_at      TEXT,
    revoked_reason  TEXT,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_active_by_user ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;

-- Only SHA-256 of a refresh token is stored. `successor_hash` is set when the token is
-- claimed; the successor row is inserted in the same transaction.
CREATE TABLE refresh_tokens (
    token_hash      BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    tenant_id       BLOB    NOT NULL,
    session_id      BLOB    NOT NULL,
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    used_at         TEXT,
    successor_hash  BLOB    CHECK (length(successor_hash) = 32),
    CHECK ((used_at IS NULL) = (successor_hash IS NULL)),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- The durable revocation log and the source of the feed. AUTOINCREMENT: a cursor is never
-- handed out twice, even after the newest rows are deleted. Every write goes through the
-- issuer's one writer connection, so ids become visible in order (design note 0003).
CREATE TABLE revocations (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id      BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('jti', 'session', 'subject')),
    -- The revoked jti, `ses_…` or `usr_…`, exactly as it appears in tokens.
    value          TEXT    NOT NULL,
    -- Unix seconds; subject entries only: tokens with `iat` before it are revoked.
    issued_before  INTEGER,
    -- Unix seconds; after it no token the entry matches is still valid.
    expires_at     INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    CHECK ((kind = 'subject') = (issued_before IS NOT NULL))
) STRICT;
CREATE INDEX revocations_expires_at ON revocations (expires_at);
-- The slow-path check of one token while the blacklist is being rebuilt.
CREATE INDEX revocations_value ON revocations (value);

-- Signing keys generated by the issuer, wrapped with ChaCha20-Poly1305 under a key derived
-- from the master key. Configured keys never reach this table.
CREATE TABLE signing_keys (
    kid             TEXT    NOT NULL PRIMARY KEY,
    -- The installation's key ring is held by the default tenant.
    tenant_id       BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm       TEXT    NOT NULL CHECK (algorithm IN ('HS256', 'EdDSA')),
    nonce           BLOB    NOT NULL CHECK (length(nonce) = 12),
    wrapped_secret  BLOB    NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      TEXT    NOT NULL
) STRICT;

-- Every tenant starts with the same roles: `admin` (everything) and `member` (the default
-- role of new users). SQLite has no stored functions, so tenant creation (a later issue)
-- inserts these two rows itself, as below.
INSERT INTO tenants (id, slug, name)
VALUES (X'00000000000000000000000000000001', 'default', 'Default');

INSERT INTO roles (tenant_id, name, permissions, is_default) VALUES
    (X'00000000000000000000000000000001', 'admin', '["*"]', 0),
    (X'00000000000000000000000000000001', 'member', '["profile:read","profile:write"]', 1);
