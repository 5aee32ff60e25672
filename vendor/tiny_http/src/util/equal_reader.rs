use std::io::Read;
use std::io::Result as IoResult;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF.
///
/// jobmgr: the original read and threw away the remaining bytes when it
/// was dropped, into a buffer of their full size (`vec![0; remaining]`):
/// one request announcing a huge body aborted the process (allocation
/// failure), and one announcing `usize::MAX` bytes panicked its thread. It
/// now leaves them unread and says so in `done`; the connection is closed
/// instead of being reused (see `Request::respond` and `ClientConnection`).
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    done: Arc<AtomicBool>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    /// `done` becomes true once all `size` bytes are read.
    pub fn new(reader: R, size: usize, done: Arc<AtomicBool>) -> EqualReader<R> {
        done.store(size == 0, Ordering::Release);
        EqualReader { reader, size, done }
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                if self.size == 0 {
                    self.done.store(true, Ordering::Release);
                }
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

/// jobmgr: a reader that sets `done` when its inner reader reaches its end
/// (used for chunked bodies, whose length is not known ahead).
pub struct DoneAtEof<R> {
    reader: R,
    done: Arc<AtomicBool>,
}

impl<R: Read> DoneAtEof<R> {
    pub fn new(reader: R, done: Arc<AtomicBool>) -> DoneAtEof<R> {
        done.store(false, Ordering::Release);
        DoneAtEof { reader, done }
    }
}

impl<R: Read> Read for DoneAtEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let len = self.reader.read(buf)?;
        if len == 0 && !buf.is_empty() {
            self.done.store(true, Ordering::Release);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let done = Arc::new(AtomicBool::new(false));
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, done.clone());

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
            assert!(done.load(Ordering::Acquire));
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let done = Arc::new(AtomicBool::new(false));
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5, done.clone());

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
            assert!(!done.load(Ordering::Acquire));
        }

        // jobmgr: the rest is left unread rather than drained.
        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, "ello world");
    }
}
