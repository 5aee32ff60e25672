//! A tiny blocking HTTP/1.1 client for webhooks: one POST per connection
//! over a std `TcpStream` (wrapped in TLS for `https://`, see [`super::tls`]),
//! with a bounded name lookup ([`super::resolve`]), connect, write and read
//! timeouts, reading only the status line of the answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::resolve;
use super::tls::Trust;

/// How long connecting to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the receiver may take to read the request and answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest status line read.
const MAX_HEAD: usize = 8 * 1024;

/// A webhook address: `http[s]://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// As written, for messages.
    pub text: String,
    https: bool,
    host: String,
    port: u16,
    /// The path and query, at least "/".
    target: String,
}

impl Url {
    /// Parses `text`, saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!("'{text}' is not an http:// or https:// URL"));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("a URL with user:password@ is not supported".into());
        }
        let (host, port) = split_port(authority, if https { 443 } else { 80 })?;
        if host.is_empty() {
            return Err(format!("'{text}' has no host"));
        }
        if target
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_control())
        {
            return Err(format!("'{text}' contains spaces or control characters"));
        }
        Ok(Url {
            text: text.to_string(),
            https,
            host,
            port,
            target,
        })
    }

    /// Whether it is an `https://` URL.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The Host header's value.
    fn host_header(&self) -> String {
        if self.port == if self.https { 443 } else { 80 } {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn split_port(authority: &str, default: u16) -> Result<(String, u16), String> {
    // An IPv6 literal keeps its brackets in the Host header.
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => return Err(format!("'{authority}': unclosed '['")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("'{p}' is not a port"))?,
    };
    Ok((host.to_string(), port))
}

/// A webhook target: where, and for `https://`, whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: Url,
    /// Set for `https://` URLs, and only for them.
    pub trust: Option<Trust>,
}

/// POSTs `body` as JSON to `hook` with `headers`; the answer's status
/// code, or why there was none.
pub fn post_json(hook: &Webhook, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
    let url = &hook.url;
    let mut tcp = connect(url)?;
    let io = |e: std::io::Error| format!("{}: {e}", url.text);
    // Set before the handshake, so a receiver that stalls it is timed out.
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    match (&hook.trust, url.https) {
        (Some(trust), true) => {
            let host = url.host.trim_start_matches('[').trim_end_matches(']');
            let mut tls = trust.connect(tcp, host)?;
            exchange(&mut tls, url, headers, body)
        }
        (None, true) => Err(format!("{}: no TLS set-up for an https:// URL", url.text)),
        (_, false) => exchange(&mut tcp, url, headers, body),
    }
}

/// A TCP connection to the first of `url`'s addresses that answers.
fn connect(url: &Url) -> Result<TcpStream, String> {
    let addrs = resolve::resolve(&url.host, url.port)?;
    let mut last = format!("resolve {}: no address", url.host);
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// Writes the request on `stream` and reads the answer's status code.
fn exchange(
    stream: &mut (impl Read + Write),
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, String> {
    let io = |e: std::io::Error| format!("{}: {e}", url.text);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         User-Agent: jobmgr/{}\r\nConnection: close\r\n",
        url.target,
        url.host_header(),
        body.len(),
        crate::worker::VERSION
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    status_line(stream).map_err(|e| format!("{}: {e}", url.text))
}

/// Reads the status line and returns its code.
fn status_line(stream: &mut impl Read) -> Result<u16, String> {
    let mut buf = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err("status line too long".into());
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err("connection closed before an answer".into()),
            Ok(_) => buf.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP answer: {:?}", line.trim_end())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_ports_paths_and_ipv6() {
        let u = Url::parse("http://127.0.0.1:8080/hook?x=1").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8080, "/hook?x=1")
        );
        let u = Url::parse("http://example.org").expect("url");
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header()),
            (80, "/", "example.org".into())
        );
        let u = Url::parse("http://[::1]:9/").expect("url");
        assert_eq!(u.host_header(), "[::1]:9");
        let u = Url::parse("https://hooks.example/services/T0/B0").expect("url");
        assert_eq!(
            (u.is_https(), u.port, u.host_header(), u.target.as_str()),
            (true, 443, "hooks.example".into(), "/services/T0/B0")
        );
        let u = Url::parse("https://127.0.0.1:8443/hook").expect("url");
        assert_eq!((u.port, u.host_header()), (8443, "127.0.0.1:8443".into()));
        assert!(!Url::parse("http://x:443/").expect("url").is_https());
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://x:0/").is_err());
        assert!(Url::parse("http://x/a b").is_err());
    }

    #[test]
    fn the_status_line_gives_the_code() {
        assert_eq!(
            status_line(&mut &b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
            Ok(204)
        );
        assert!(status_line(&mut &b"garbage\r\n"[..]).is_err());
        assert!(status_line(&mut &b"HTTP/1.1 200"[..]).is_err());
    }
}
