-- The access log in chunks (src/store/log_chunks.rs): each row holds up to
-- 256 entries of one permission (key: its id; -1 for the operator's
-- security entries; NULL for entries of neither), in id order, encoded as
-- the journal commits them, with the span of their ids and times. A row
-- per entry with its index cost the gateway a sixth of its CPU under
-- logged reads.
CREATE TABLE access_log_chunks (
    last_id   INTEGER PRIMARY KEY,
    first_id  INTEGER NOT NULL,
    key       INTEGER,
    from_ms   INTEGER NOT NULL,
    to_ms     INTEGER NOT NULL,
    entries   BLOB NOT NULL
);
CREATE INDEX access_log_chunks_key ON access_log_chunks (key, last_id);

-- Rows written before are moved into chunks at start-up (the chain's
-- hashes need the Rust encoding), then this table is dropped.
DROP INDEX access_log_permission;
DROP INDEX access_log_security;
ALTER TABLE access_log RENAME TO access_log_rows;
