//! Reading a command job's stdout and stderr as lines with bounded memory:
//! a fixed read buffer, lines cut at a byte limit with a marker (the rest
//! of an over-long line is counted, not kept), bytes that are not UTF-8
//! replaced. Each stream has its own thread that hands lines to the
//! supervising thread over a bounded channel, so a fast printer is slowed
//! down instead of filling memory.

use std::io::{BufRead, BufReader, Read};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a reader thread reports.
#[derive(Debug)]
pub enum Event {
    /// One line, without its newline, already cut and made UTF-8.
    Line(Stream, String),
    /// The stream reached its end (or failed).
    Eof,
}

/// Size of the read buffer per stream.
const READ_BUFFER: usize = 64 * 1024;

/// Starts a thread reading `reader` line by line into `tx`.
pub fn spawn_reader(
    stream: Stream,
    reader: impl Read + Send + 'static,
    tx: Sender<Event>,
    max_line: usize,
) -> std::io::Result<JoinHandle<()>> {
    let name = match stream {
        Stream::Stdout => "cmd-stdout",
        Stream::Stderr => "cmd-stderr",
    };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            read_lines(reader, max_line, |line| {
                tx.send(Event::Line(stream, line)).is_ok()
            });
            let _ = tx.send(Event::Eof);
        })
}

/// Calls `emit` for each line of `reader` (false from `emit` stops). A
/// line longer than `max_line` bytes is cut there and marked with how many
/// bytes were left out. A last line without a newline is emitted too.
pub fn read_lines(reader: impl Read, max_line: usize, mut emit: impl FnMut(String) -> bool) {
    let mut r = BufReader::with_capacity(READ_BUFFER, reader);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut cut: u64 = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if buf.is_empty() {
            if !line.is_empty() || cut > 0 {
                emit(finish(&line, cut));
            }
            return;
        }
        let (chunk, ends_line) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = max_line.saturating_sub(line.len());
        let keep = chunk.len().min(room);
        line.extend_from_slice(&chunk[..keep]);
        cut += (chunk.len() - keep) as u64;
        let used = chunk.len() + usize::from(ends_line);
        r.consume(used);
        if ends_line {
            if line.last() == Some(&b'\r') && cut == 0 {
                line.pop();
            }
            if !emit(finish(&line, cut)) {
                return;
            }
            line.clear();
            cut = 0;
        }
    }
}

/// The text of a line: lossy UTF-8, never ending in half a character
/// because of the cut, plus the marker when bytes were left out.
fn finish(bytes: &[u8], cut: u64) -> String {
    let mut bytes = bytes;
    let mut cut = cut;
    if cut > 0 {
        // Don't let the cut leave a broken character at the end.
        if let Err(e) = std::str::from_utf8(bytes)
            && e.error_len().is_none()
        {
            cut += (bytes.len() - e.valid_up_to()) as u64;
            bytes = &bytes[..e.valid_up_to()];
        }
    }
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if cut > 0 {
        text.push_str(&format!(" …[line cut: {cut} more bytes]"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        read_lines(input, max, |l| {
            out.push(l);
            true
        });
        out
    }

    #[test]
    fn splits_lines_and_keeps_a_last_partial_one() {
        assert_eq!(lines(b"a\nbb\r\n\nc", 10), vec!["a", "bb", "", "c"]);
        assert!(lines(b"", 10).is_empty());
    }

    #[test]
    fn cuts_long_lines_with_a_marker() {
        assert_eq!(
            lines(b"abcdefghij\nxy\n", 4),
            vec!["abcd …[line cut: 6 more bytes]", "xy"]
        );
        // "é" is two bytes: a cut inside it drops the whole character.
        assert_eq!(
            lines("aé\n".as_bytes(), 2),
            vec!["a …[line cut: 2 more bytes]"]
        );
    }

    #[test]
    fn replaces_bytes_that_are_not_utf8() {
        assert_eq!(lines(b"a\xff\xfeb\n", 100), vec!["a\u{fffd}\u{fffd}b"]);
    }
}
