-- jobmgr schema, version 2: what the web server needs.

-- Every admin action taken through the web server: who (source address),
-- what (action), on what (target), and how it ended (detail, JSON).
CREATE TABLE Audit (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    source TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX Audit_at ON Audit (at);

-- The change watcher reads "runs changed since the last one it saw".
CREATE INDEX JobRun_updated ON JobRun (updatedAt);
