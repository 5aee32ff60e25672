//! Media types from magic bytes, and image width × height read from the
//! headers of PNG, GIF, JPEG and WebP files, without decoding pixels.

/// What the first bytes of a file say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub media_type: &'static str,
    /// Width and height, for the image formats we read.
    pub size: Option<(u32, u32)>,
}

/// Why an image header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The bytes end before the size; with more of the file it may be found.
    Truncated,
    /// The header is not what its format requires.
    Corrupt(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Truncated => f.write_str("header is truncated"),
            HeaderError::Corrupt(m) => f.write_str(m),
        }
    }
}

/// An image's width and height, or why they could not be read.
pub type Parsed = Result<(u32, u32), HeaderError>;

/// The width and height of an image of `media_type`; None for types
/// whose header we do not read.
pub fn dimensions(media_type: &str, head: &[u8]) -> Option<Parsed> {
    match media_type {
        "image/png" => Some(png(head)),
        "image/gif" => Some(gif(head)),
        "image/jpeg" => Some(jpeg(head)),
        "image/webp" => Some(webp(head)),
        _ => None,
    }
}

/// The media type from the magic bytes.
pub fn media_type(head: &[u8]) -> &'static str {
    let at = |range: std::ops::Range<usize>, magic: &[u8]| head.get(range) == Some(magic);
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if at(0..4, b"RIFF") && at(8..12, b"WEBP") {
        "image/webp"
    } else if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else if head.starts_with(b"PK\x03\x04") {
        "application/zip"
    } else if at(4..8, b"ftyp") {
        "video/mp4"
    } else if head.starts_with(b"OggS") {
        "audio/ogg"
    } else if head.starts_with(b"ID3") {
        "audio/mpeg"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "image/tiff"
    } else {
        "application/octet-stream"
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 3)
        .map(|s| u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

fn nonzero(w: u32, h: u32) -> Parsed {
    if w == 0 || h == 0 {
        Err(HeaderError::Corrupt(format!("image size {w}×{h} is empty")))
    } else {
        Ok((w, h))
    }
}

/// PNG: the first chunk must be IHDR, width and height big-endian.
fn png(b: &[u8]) -> Parsed {
    if b.len() < 24 {
        return Err(HeaderError::Truncated);
    }
    if &b[12..16] != b"IHDR" || be32(b, 8) != Some(13) {
        return Err(HeaderError::Corrupt(
            "PNG does not start with an IHDR chunk".into(),
        ));
    }
    let (w, h) = (be32(b, 16), be32(b, 20));
    match (w, h) {
        (Some(w), Some(h)) => nonzero(w, h),
        _ => Err(HeaderError::Truncated),
    }
}

/// GIF: the logical screen size, little-endian, after the signature.
fn gif(b: &[u8]) -> Parsed {
    match (le16(b, 6), le16(b, 8)) {
        (Some(w), Some(h)) => nonzero(u32::from(w), u32::from(h)),
        _ => Err(HeaderError::Truncated),
    }
}

/// JPEG: walks the marker segments to the first start-of-frame.
fn jpeg(b: &[u8]) -> Parsed {
    let mut i = 2;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        let Some(&first) = b.get(i) else {
            return Err(HeaderError::Truncated);
        };
        if first != 0xFF {
            return Err(HeaderError::Corrupt(format!(
                "JPEG marker expected at byte {i}"
            )));
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return Err(HeaderError::Truncated);
        };
        i += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => {
                return Err(HeaderError::Corrupt(
                    "JPEG has no frame header before its image data".into(),
                ));
            }
            _ => {}
        }
        let Some(len) = be16(b, i) else {
            return Err(HeaderError::Truncated);
        };
        if len < 2 {
            return Err(HeaderError::Corrupt(format!(
                "JPEG segment length {len} at byte {i}"
            )));
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            return match (be16(b, i + 3), be16(b, i + 5)) {
                (Some(h), Some(w)) => nonzero(u32::from(w), u32::from(h)),
                _ => Err(HeaderError::Truncated),
            };
        }
        i += usize::from(len);
    }
}

/// WebP: lossy (VP8), lossless (VP8L) or extended (VP8X) first chunk.
fn webp(b: &[u8]) -> Parsed {
    let chunk = b.get(12..16).ok_or(HeaderError::Truncated)?;
    match chunk {
        b"VP8 " => {
            if b.len() < 30 {
                return Err(HeaderError::Truncated);
            }
            if b[23..26] != [0x9D, 0x01, 0x2A] {
                return Err(HeaderError::Corrupt(
                    "WebP VP8 frame has no start code".into(),
                ));
            }
            match (le16(b, 26), le16(b, 28)) {
                (Some(w), Some(h)) => nonzero(u32::from(w & 0x3FFF), u32::from(h & 0x3FFF)),
                _ => Err(HeaderError::Truncated),
            }
        }
        b"VP8L" => {
            if b.len() < 25 {
                return Err(HeaderError::Truncated);
            }
            if b[20] != 0x2F {
                return Err(HeaderError::Corrupt(
                    "WebP VP8L stream has no signature".into(),
                ));
            }
            let bits = u32::from_le_bytes([b[21], b[22], b[23], b[24]]);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => match (le24(b, 24), le24(b, 27)) {
            (Some(w), Some(h)) => Ok((w + 1, h + 1)),
            _ => Err(HeaderError::Truncated),
        },
        other => Err(HeaderError::Corrupt(format!(
            "unknown WebP chunk '{}'",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Media type and, for images, size, as the media job reads them from
    /// a file's first bytes.
    fn sniff(head: &[u8]) -> Result<Sniffed, HeaderError> {
        let media_type = media_type(head);
        Ok(Sniffed {
            media_type,
            size: dimensions(media_type, head).transpose()?,
        })
    }

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn reads_png_and_gif_sizes() {
        let s = sniff(&png_bytes(640, 480)).expect("png");
        assert_eq!((s.media_type, s.size), ("image/png", Some((640, 480))));
        let s = sniff(b"GIF89a\x0a\x00\x14\x00\x00").expect("gif");
        assert_eq!((s.media_type, s.size), ("image/gif", Some((10, 20))));
        assert_eq!(
            sniff(&png_bytes(640, 480)[..20]),
            Err(HeaderError::Truncated)
        );
    }

    #[test]
    fn walks_jpeg_segments_to_the_frame() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        j.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        j.extend_from_slice(&[0xFF, 0xC2, 0x00, 0x11, 0x08, 0x01, 0x2C, 0x00, 0xC8, 0x03]);
        let s = sniff(&j).expect("jpeg");
        assert_eq!((s.media_type, s.size), ("image/jpeg", Some((200, 300))));
        let bad = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        assert!(matches!(sniff(&bad), Err(HeaderError::Corrupt(_))));
    }

    #[test]
    fn reads_all_three_webp_kinds() {
        let riff = |chunk: &[u8], data: &[u8]| {
            let mut v = b"RIFF\0\0\0\0WEBP".to_vec();
            v.extend_from_slice(chunk);
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(data);
            v
        };
        let lossy = riff(
            b"VP8 ",
            &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00],
        );
        assert_eq!(sniff(&lossy).map(|s| s.size), Ok(Some((320, 240))));
        // 100×50: (100-1) | (50-1) << 14.
        let bits: u32 = 99 | (49 << 14);
        let mut data = vec![0x2F];
        data.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(
            sniff(&riff(b"VP8L", &data)).map(|s| s.size),
            Ok(Some((100, 50)))
        );
        let ext = riff(b"VP8X", &[0, 0, 0, 0, 0x1F, 0x03, 0x00, 0x57, 0x02, 0x00]);
        assert_eq!(sniff(&ext).map(|s| s.size), Ok(Some((800, 600))));
    }

    #[test]
    fn other_files_get_a_type_without_a_size() {
        assert_eq!(
            sniff(b"hello").map(|s| s.media_type),
            Ok("application/octet-stream")
        );
        assert_eq!(
            sniff(b"%PDF-1.7").map(|s| s.media_type),
            Ok("application/pdf")
        );
        assert!(matches!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dJUNK0000000000"),
            Err(HeaderError::Corrupt(_))
        ));
    }
}
