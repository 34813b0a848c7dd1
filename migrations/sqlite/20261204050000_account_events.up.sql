-- Security-relevant events of an account, written in the same transaction as the change they
-- describe. Registration writes one whether or not the email was free, so both answers cost
-- the same committed write and take the same time (no account enumeration by timing); the
-- rows also let later notices ("someone tried to register with your address") be sent.
CREATE TABLE account_events (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     BLOB    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('registered', 'registration_conflict')),
    created_at  TEXT    NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX account_events_user ON account_events (tenant_id, user_id);
