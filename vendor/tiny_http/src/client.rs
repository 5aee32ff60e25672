use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{Deadline, DeadlineStream};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::{Header, Limits, Request, StatusCode};

/// jobmgr: how long, and how many bytes, a closing connection discards
/// what its client still sends (see `ClientConnection::linger`).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<DeadlineStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<DeadlineStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // jobmgr: what a request may be
    limits: Arc<Limits>,

    // jobmgr: whether the previous request's body was read whole
    previous_body: Option<Arc<AtomicBool>>,

    // jobmgr: when the request being read must have arrived
    deadline: Arc<Deadline>,

    // jobmgr: the socket's descriptor, which requests carry (see
    // `Request::socket_fd`)
    #[cfg(unix)]
    socket_fd: Option<std::os::fd::RawFd>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// jobmgr: the request line is longer than the limit (414)
    UriTooLong,
    /// jobmgr: a header line, the header count or the head is over the limit (431)
    HeadersTooLarge(HTTPVersion),
    /// jobmgr: the previous request was answered before its body was read
    BodyLeftUnread,
}

/// jobmgr: why a line of the request head could not be read.
enum LineError {
    TooLong,
    Io(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: Arc<Limits>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        #[cfg(unix)]
        let socket_fd = write_socket.raw_fd();

        let deadline = Arc::new(Deadline::default());
        let read_socket = DeadlineStream::new(read_socket, deadline.clone());
        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            previous_body: None,
            deadline,
            #[cfg(unix)]
            socket_fd,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// jobmgr: a line longer than `max` bytes is refused as soon as it
    /// gets there; the original buffered a line of any length (a client
    /// sending one endless header line took the server's memory).
    ///
    /// jobmgr: with `starts_request`, the request's deadline is set when
    /// the line's first byte arrives.
    fn read_next_line(
        &mut self,
        max: usize,
        starts_request: bool,
    ) -> Result<AsciiString, LineError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;
        let mut first = starts_request;
        // jobmgr: the line is scanned in the buffered reader's own buffer,
        // a chunk at a time; the original took it one byte at a time
        // through `bytes()`, three `Read` layers per byte, which was a
        // tenth of the server's instructions for a small API request.
        // The bytes taken and the checks made are the same.
        let reader = self.next_header_source.wait_turn();

        loop {
            let chunk = match reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if chunk.is_empty() {
                return Err(LineError::Io(IoError::new(
                    ErrorKind::ConnectionAborted,
                    "Unexpected EOF",
                )));
            }
            if first {
                self.deadline.set(self.limits.request_timeout);
                first = false;
            }

            // The line so far is `buf` and the bytes of `chunk` before `i`.
            let mut end = None;
            for (i, &byte) in chunk.iter().enumerate() {
                if byte == b'\n' && prev_byte_was_cr {
                    end = Some(Ok(i));
                    break;
                }
                // The line may hold `max` bytes and the '\r' of a line of `max`.
                if buf.len() + i > max {
                    end = Some(Err(i));
                    break;
                }
                prev_byte_was_cr = byte == b'\r';
            }

            match end {
                None => {
                    let n = chunk.len();
                    buf.extend_from_slice(chunk);
                    reader.consume(n);
                }
                Some(Err(i)) => {
                    reader.consume(i + 1);
                    return Err(LineError::TooLong);
                }
                Some(Ok(i)) => {
                    buf.extend_from_slice(&chunk[..i]);
                    reader.consume(i + 1);
                    buf.pop(); // removing the '\r'
                    return AsciiString::from_ascii(buf).map_err(|_| {
                        LineError::Io(IoError::new(
                            ErrorKind::InvalidInput,
                            "Header is not in ASCII",
                        ))
                    });
                }
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        if self.previous_body_left_unread() {
            return Err(ReadError::BodyLeftUnread);
        }
        // jobmgr: the previous request is done with the socket; the wait
        // for the next one is bounded by the read timeout alone.
        self.deadline.set(None);
        let (method, path, version, headers) = {
            // reading the request line
            // jobmgr: the whole head, request line included, must fit in
            // `max_head` bytes and `max_headers` header lines.
            let mut head_left = self.limits.max_head;
            let (method, path, version) = {
                let max = self.limits.max_line.min(head_left);
                let line = self.read_next_line(max, true).map_err(|e| match e {
                    LineError::TooLong => ReadError::UriTooLong,
                    LineError::Io(e) => ReadError::ReadIoError(e),
                })?;
                head_left = head_left.saturating_sub(line.len() + 2);

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let max = self.limits.max_line.min(head_left);
                    let line = self.read_next_line(max, false).map_err(|e| match e {
                        LineError::TooLong => ReadError::HeadersTooLarge(version.clone()),
                        LineError::Io(e) => ReadError::ReadIoError(e),
                    })?;
                    head_left = head_left.saturating_sub(line.len() + 2);

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() >= self.limits.max_headers {
                        return Err(ReadError::HeadersTooLarge(version));
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            self.limits.max_buffered_body,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        #[cfg(unix)]
        let request = request.with_socket_fd(self.socket_fd);
        self.previous_body = Some(request.body_done());
        // jobmgr: an upgraded connection is no longer a request
        if request.headers().iter().any(|h| {
            h.field.equiv("Connection") && h.value.as_str().to_ascii_lowercase().contains("upgrade")
        }) {
            self.deadline.set(None);
        }

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            if self.previous_body_left_unread() {
                self.linger();
            }
            return None;
        }

        loop {
            // jobmgr: every answer the server gives on its own comes from
            // `Limits::refusal` and closes the connection.
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    // we don't know where the next request would start,
                    // se we have to close
                    self.refuse(400, HTTPVersion(1, 1));
                    return None;
                }

                Err(ReadError::WrongHeader(ver)) => {
                    self.refuse(400, ver);
                    return None;
                }

                Err(ReadError::UriTooLong) => {
                    self.refuse(414, HTTPVersion(1, 1));
                    return None;
                }

                Err(ReadError::HeadersTooLarge(ver)) => {
                    self.refuse(431, ver);
                    return None;
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout
                    self.refuse(408, HTTPVersion(1, 1));
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    // TODO: should be recoverable, but needs handling in case of body
                    self.refuse(417, ver);
                    return None;
                }

                Err(ReadError::BodyLeftUnread) => {
                    self.linger();
                    return None;
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

impl ClientConnection {
    /// jobmgr: whether the previous request's body is left partly unread
    /// once that request is done with (waits for it): then the next
    /// request cannot be found, and the connection is closed without
    /// reading the rest, which could be any size.
    fn previous_body_left_unread(&mut self) -> bool {
        let done = match self.previous_body.take() {
            Some(done) => done,
            None => return false,
        };
        if !done.load(Ordering::Acquire) {
            self.next_header_source.wait_turn();
        }
        !done.load(Ordering::Acquire)
    }

    /// jobmgr: answers `status` on the server's own behalf and closes.
    fn refuse(&mut self, status: u16, version: HTTPVersion) {
        let mut writer = self.sink.next().unwrap();
        let mut response = (self.limits.refusal)(StatusCode(status));
        response.add_connection_close();
        response
            .raw_print(writer.by_ref(), version, &[], false, None)
            .ok();
        writer.flush().ok();
        drop(writer);
        self.linger();
    }

    /// jobmgr: closes a connection whose client may still be sending.
    /// Closing a socket with unread data resets the connection, and the
    /// reset can destroy the answer before the client reads it. So the
    /// answer is ended (FIN), then what the client still sends is read and
    /// thrown away, in a fixed buffer, for at most `LINGER_TIME` and
    /// `LINGER_BYTES`, until the client closes its side.
    fn linger(&mut self) {
        // Waits for every earlier answer on this connection to be written.
        let mut writer = self.sink.next().unwrap();
        writer.flush().ok();
        drop(writer);
        let reader = self.next_header_source.wait_turn();
        reader.get_mut().get_mut().shutdown_write();
        self.deadline.set(Some(LINGER_TIME));
        let mut left = LINGER_BYTES;
        let mut buf = [0u8; 4096];
        while left > 0 {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
