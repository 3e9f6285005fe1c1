-- The operator reads refused calls (scope 'security') by time; a partial
-- index keeps that cheap without touching the partners' read path, whose
-- rows it does not hold.
CREATE INDEX access_log_security ON access_log (time_ms) WHERE scope = 'security';
