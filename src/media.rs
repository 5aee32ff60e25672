//! What jobmgr records about a media file (the `MediaFile` table): the
//! rows the media-metadata-batch job writes and what it knows from earlier
//! runs. Domain values shared by the job and the store.

/// What is stored about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRow {
    pub path: String,
    pub size: i64,
    pub mtime: String,
    pub hash: String,
    pub media_type: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Leading bytes the hash covers (less than `size` when capped).
    pub hashed_bytes: i64,
}

/// What is known of a file from an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub size: i64,
    pub mtime: String,
    /// None on rows from before the column, which hashed the whole file.
    pub hashed_bytes: Option<i64>,
}
