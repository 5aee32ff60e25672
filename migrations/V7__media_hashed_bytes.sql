-- jobmgr schema, version 7: how much of each file its MediaFile.hash covers.
--
-- media-metadata-batch hashes at most max_hash_bytes of a file (a 20 GB
-- video need not be read whole to be recorded). hashedBytes is the number
-- of leading bytes the SHA-256 covers: equal to size for a whole file,
-- smaller for a file over the cap. NULL on rows written before this
-- version, which always hashed the whole file.
ALTER TABLE MediaFile ADD COLUMN hashedBytes INTEGER;
