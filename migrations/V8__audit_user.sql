-- The OS user behind an action taken from the CLI (NULL for the web,
-- whose source is the client's address).
ALTER TABLE Audit ADD COLUMN user TEXT;
