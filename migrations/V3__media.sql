-- jobmgr schema, version 3: what media-metadata-batch knows about the files
-- under the directories it scanned. One row per regular file, by path.

CREATE TABLE MediaFile (
    id         INTEGER PRIMARY KEY,
    path       TEXT    NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    -- Modification time as UTC text (millisecond precision), like every
    -- other timestamp in this file.
    mtime      TEXT    NOT NULL,
    -- SHA-256 of the content, lowercase hex.
    hash       TEXT    NOT NULL,
    -- From the file's magic bytes, e.g. image/png; application/octet-stream
    -- when unknown.
    mediaType  TEXT    NOT NULL,
    width      INTEGER,
    height     INTEGER,
    -- The run that last inserted or changed the row.
    jobRunId   INTEGER REFERENCES JobRun (id) ON DELETE SET NULL,
    createdAt  TEXT    NOT NULL,
    updatedAt  TEXT    NOT NULL
);
