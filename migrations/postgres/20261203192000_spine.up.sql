-- The spine of issue #2: tenants, users, roles, sessions (refresh families), refresh tokens,
-- the revocation log behind the feed, and stored signing keys.
--
-- Every row that belongs to a tenant carries `tenant_id`, and references between tenant-owned
-- rows go through composite foreign keys on (tenant_id, id), so a row of one tenant can never
-- point at a row of another, whatever the application code does.

CREATE TABLE tenants (
    id          uuid        PRIMARY KEY,
    slug        text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A Host name served on behalf of one tenant. Stored lowercase, without port or trailing dot.
CREATE TABLE tenant_domains (
    domain      text        PRIMARY KEY CHECK (domain = lower(domain) AND domain <> ''),
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);

CREATE TABLE users (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email              text        NOT NULL,
    -- trim, Unicode NFKC, lowercase: the form used for lookups and uniqueness.
    email_normalized   text        NOT NULL,
    name               text,
    -- Argon2id PHC string.
    password_hash      text        NOT NULL,
    email_verified_at  timestamptz,
    created_at         timestamptz NOT NULL,
    UNIQUE (tenant_id, email_normalized),
    UNIQUE (tenant_id, id)
);

CREATE TABLE roles (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    -- `resource:action` strings, `*` as a wildcard segment.
    permissions  text[]      NOT NULL DEFAULT '{}',
    -- Granted to every new user of the tenant.
    is_default   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE user_roles (
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    role_id     uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

-- A session is one login and the refresh family that rotates inside it (`sid`).
CREATE TABLE sessions (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    -- Authentication methods of the login (RFC 8176), copied into every access token.
    amr             text[]      NOT NULL,
    created_at      timestamptz NOT NULL,
    -- Absolute end of the family, whatever the rotations.
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_active_by_user ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;

-- Only SHA-256 of a refresh token is stored. `successor_hash` is set when the token is
-- claimed; the successor row is inserted in the same transaction.
CREATE TABLE refresh_tokens (
    token_hash      bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    tenant_id       uuid        NOT NULL,
    session_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    successor_hash  bytea       CHECK (octet_length(successor_hash) = 32),
    CHECK ((used_at IS NULL) = (successor_hash IS NULL)),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- The durable revocation log and the source of the feed. Writers insert under a
-- transaction-level advisory lock so ids become visible in order (design note 0001).
CREATE TABLE revocations (
    id             bigserial   PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('jti', 'session', 'subject')),
    -- The revoked jti, `ses_…` or `usr_…`, exactly as it appears in tokens.
    value          text        NOT NULL,
    -- Unix seconds; subject entries only: tokens with `iat` before it are revoked.
    issued_before  bigint,
    -- Unix seconds; after it no token the entry matches is still valid.
    expires_at     bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    CHECK ((kind = 'subject') = (issued_before IS NOT NULL))
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
-- The slow-path check of one token while the Redis blacklist is being rebuilt.
CREATE INDEX revocations_value ON revocations (value);

-- Signing keys generated by the issuer, wrapped with ChaCha20-Poly1305 under a key derived
-- from the master key. Configured keys never reach this table.
CREATE TABLE signing_keys (
    kid             text        PRIMARY KEY,
    -- The installation's key ring is held by the default tenant.
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm       text        NOT NULL CHECK (algorithm IN ('HS256', 'EdDSA')),
    nonce           bytea       NOT NULL CHECK (octet_length(nonce) = 12),
    wrapped_secret  bytea       NOT NULL,
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL
);

-- Every tenant starts with the same roles: `admin` (everything) and `member` (the default
-- role of new users). Tenant creation (a later issue) calls this too.
CREATE FUNCTION portcullis_seed_tenant_roles(tenant uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO roles (tenant_id, name, permissions, is_default) VALUES
        (tenant, 'admin', ARRAY['*'], false),
        (tenant, 'member', ARRAY['profile:read', 'profile:write'], true)
    ON CONFLICT (tenant_id, name) DO NOTHING;
$$;

INSERT INTO tenants (id, slug, name)
VALUES ('00000000-0000-0000-0000-000000000001', 'default', 'Default');

SELECT portcullis_seed_tenant_roles('00000000-0000-0000-0000-000000000001');
