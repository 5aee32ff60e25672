//! How media-metadata-batch touches the file system without being fooled:
//! which file systems it will not read (proc, sysfs, cgroup, ...: their
//! "files" are views of kernel state, some endless or as large as the
//! address space), opening a scanned file so that a symbolic link or a FIFO
//! put in its place after the scan is refused instead of followed or
//! blocked on, and hashing at most a given number of bytes while watching
//! for cancellation.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;

/// Bytes read for the header sniffer.
pub const HEAD_BYTES: u64 = 256 * 1024;
/// Bytes hashed between two looks at the cancel flag: small enough that a
/// cancel is seen within a millisecond, large enough that the look costs
/// nothing next to the hashing.
const CHUNK: usize = 64 * 1024;

/// Pseudo file systems by `statfs` magic number (linux/magic.h). Their
/// files are kernel state, not data: `/proc/<pid>/pagemap` reads on for
/// tens of gigabytes and other files block or have side effects. devtmpfs
/// is not here: it shares tmpfs's number (so it cannot be told apart from a
/// real /tmp), and its entries are device nodes, which the walk never reads
/// because it reads regular files only.
const PSEUDO: &[(u32, &str)] = &[
    (0x0000_9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0000_1cd1, "devpts"),
    (0xcafe_4a11, "bpf"),
    (0x6165_676c, "pstore"),
    (0x6265_6570, "configfs"),
    (0x6573_5543, "fusectl"),
    (0x4249_4e4d, "binfmt_misc"),
    (0xde5e_81e4, "efivarfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x6e73_6673, "nsfs"),
    (0x1980_0202, "mqueue"),
];

/// The name of the pseudo file system `magic` stands for, if it is one.
pub fn pseudo_name(magic: u32) -> Option<&'static str> {
    PSEUDO.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

/// The pseudo file system directory `dir` lies on, if any.
pub fn pseudo_fs(dir: &Path) -> io::Result<Option<&'static str>> {
    let f = File::open(dir)?;
    Ok(pseudo_name(fs_magic(&f)?))
}

/// `fstatfs(2)`'s f_type: std has no call for it, and one call does not
/// justify a new dependency.
#[allow(unsafe_code)]
fn fs_magic(f: &File) -> io::Result<u32> {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct;
    // fstatfs only writes into the struct it is given, which lives across
    // the call, and the descriptor is borrowed from `f`, open throughout.
    let (rc, s) = unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        let rc = libc::fstatfs(f.as_raw_fd(), &mut s);
        (rc, s)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // The magic numbers are 32-bit; f_type's width differs between C
    // libraries, so keep the low 32 bits.
    Ok(s.f_type as u32)
}

/// A file's identity: after the scan, the path must still name this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The identity `meta` describes.
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The modification time as stored in `MediaFile.mtime`.
pub fn mtime_text(meta: &Metadata) -> String {
    let ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms).to_text()
}

/// What a file that is not regular is, for a message.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens the file the scan found at `path`, and its metadata from the
/// opened descriptor. A symbolic link is not followed (O_NOFOLLOW), a FIFO
/// or device does not block the open (O_NONBLOCK), and anything that is
/// not the regular file the scan saw (same device and inode) is refused
/// with the reason.
pub fn open_scanned(path: &Path, scanned: FileId) -> Result<(File, Metadata), String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => "is now a symbolic link; not followed".to_string(),
            _ => format!("cannot read: {e}"),
        })?;
    let meta = f.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "is now {} instead of a regular file; skipped",
            kind(&meta)
        ));
    }
    if FileId::of(&meta) != scanned {
        return Err("was replaced by another file since the scan; skipped".into());
    }
    Ok((f, meta))
}

/// A file's header and hash.
#[derive(Debug)]
pub struct Hashed {
    /// SHA-256 of the first `hashed` bytes, lowercase hex.
    pub hash: String,
    /// How many bytes the hash covers: the size, or the cap when smaller.
    pub hashed: u64,
    /// The first [`HEAD_BYTES`] bytes (fewer for a smaller file).
    pub head: Vec<u8>,
}

/// Why a file could not be hashed.
#[derive(Debug, PartialEq, Eq)]
pub enum HashError {
    /// Cancellation was asked for while reading.
    Cancelled,
    /// A read failed, or the file changed while it was read.
    Failed(String),
}

/// Reads the header of `f` (whose size was `size` when opened) and hashes
/// its first `min(size, cap)` bytes. Never reads past `size`, so a file
/// that grows while it is read, or claims a size it does not have, is not
/// read on; one that shrinks is an error. `cancelled` is asked before every
/// chunk.
pub fn hash(
    f: &mut File,
    size: u64,
    cap: u64,
    cancelled: impl Fn() -> bool,
) -> Result<Hashed, HashError> {
    let failed = |e: io::Error| HashError::Failed(format!("cannot read: {e}"));
    let shrank = || HashError::Failed("shrank while it was read; skipped".into());
    let want = size.min(cap);
    let head_len = size.min(HEAD_BYTES);
    let mut head = Vec::with_capacity(head_len as usize);
    f.take(head_len).read_to_end(&mut head).map_err(failed)?;
    if (head.len() as u64) < head_len {
        return Err(shrank());
    }
    let mut hasher = Sha256::new();
    let in_head = want.min(head_len);
    hasher.update(&head[..in_head as usize]);
    let mut left = want - in_head;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        if cancelled() {
            return Err(HashError::Cancelled);
        }
        let n = (left as usize).min(CHUNK);
        let got = match f.read(&mut buf[..n]) {
            Ok(0) => return Err(shrank()),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e)),
        };
        hasher.update(&buf[..got]);
        left -= got as u64;
    }
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Hashed {
        hash,
        hashed: want,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("jobmgr-mediafs-{name}-{}", std::process::id()));
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }

    #[test]
    fn hashes_at_most_the_cap_and_stops_on_cancel() {
        let path = temp_file("cap", b"not an image\n");
        let mut f = File::open(&path).expect("open");
        let whole = hash(&mut f, 13, u64::MAX, || false).expect("hash");
        assert_eq!(
            (whole.hash.as_str(), whole.hashed),
            (
                "c04bee9d659201c6647cbc29f7c2e1556b8370c54f4a50a32d84ceab2fddf6cd",
                13
            )
        );
        let mut f = File::open(&path).expect("open");
        let part = hash(&mut f, 13, 3, || false).expect("hash");
        // sha256 of "not"; the header is still read whole for the sniffer.
        assert_eq!(
            (part.hash.as_str(), part.hashed, part.head.len()),
            (
                "254bb97b57f12e1608fefc4517de768427b2fd6d2cffbbfcbc09f3c818198d5f",
                3,
                13
            )
        );
        let mut f = File::open(&path).expect("open");
        assert_eq!(
            hash(&mut f, 20, u64::MAX, || false).map(|h| h.hashed),
            Err(HashError::Failed(
                "shrank while it was read; skipped".into()
            ))
        );
        let _ = std::fs::remove_file(&path);
        let big = temp_file("cancel", &vec![0u8; 3 * HEAD_BYTES as usize]);
        let mut f = File::open(&big).expect("open");
        assert_eq!(
            hash(&mut f, 3 * HEAD_BYTES, u64::MAX, || true).map(|h| h.hashed),
            Err(HashError::Cancelled)
        );
        let _ = std::fs::remove_file(&big);
    }

    #[test]
    fn knows_proc_and_not_ext4() {
        assert_eq!(pseudo_name(0x9fa0), Some("proc"));
        assert_eq!(pseudo_name(0xEF53), None);
    }
}
