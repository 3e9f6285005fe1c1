-- Companies, users, API keys, devices, partner permissions and the
-- hash-chained access log. Times are UTC milliseconds since the epoch.

CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id  TEXT NOT NULL REFERENCES companies(id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'user', 'ingest')),
    created_ms  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    -- SHA-256 of the key; the key itself is shown once and never stored.
    hash        BLOB NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies(id),
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE permissions (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL,
    provider_company_id   TEXT NOT NULL REFERENCES companies(id),
    recipient_company_id  TEXT NOT NULL REFERENCES companies(id),
    recipient_user_id     INTEGER REFERENCES users(id),
    -- For a partner permission (no window given): the moment of the grant.
    valid_from_ms         INTEGER NOT NULL,
    valid_until_ms        INTEGER,
    temporary             INTEGER NOT NULL,
    created_ms            INTEGER NOT NULL,
    created_by_user_id    INTEGER NOT NULL,
    revoked_ms            INTEGER
);

CREATE TABLE permission_devices (
    permission_id    INTEGER NOT NULL REFERENCES permissions(id),
    device_id        TEXT NOT NULL REFERENCES devices(device_id),
    shipment_number  TEXT,
    PRIMARY KEY (permission_id, device_id)
);

-- Append-only; each row carries the SHA-256 of the previous row's hash and
-- its own canonical content, so an edited or deleted row breaks the chain.
CREATE TABLE access_log (
    id                    INTEGER PRIMARY KEY,
    scope                 TEXT NOT NULL CHECK (scope IN ('partner', 'security')),
    time_ms               INTEGER NOT NULL,
    event                 TEXT NOT NULL,
    permission_id         INTEGER,
    permission_name       TEXT,
    provider_company_id   TEXT,
    recipient_company_id  TEXT,
    user_id               INTEGER,
    api_key_id            INTEGER,
    device_id             TEXT,
    device_name           TEXT,
    channel               TEXT,
    query                 TEXT,
    positions             INTEGER,
    shipment_number       TEXT,
    client_addr           TEXT,
    user_agent            TEXT,
    detail                TEXT,
    prev_hash             BLOB NOT NULL,
    hash                  BLOB NOT NULL
);
CREATE INDEX access_log_permission ON access_log (permission_id, time_ms);
