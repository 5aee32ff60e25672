//! https webhooks: a TLS receiver in the test (rustls, with a CA and
//! server certificates made by rcgen for this run only), reached by the
//! real worker. A notifier that names the CA in `ca_file` delivers once,
//! with the JSON body and SNI, and so does one that names a self-signed
//! receiver's own certificate; one without `ca_file`, one whose receiver's
//! certificate is for another name, and one whose self-signed certificate
//! is marked as a CA record a certificate error, deliver nothing, and stay
//! pending for a retry. `check-config` checks the file.

mod common;
mod notify_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestDb, wait_for};
use notify_support::{Got, JOBS, WAIT, outbox, setup, start_worker};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

/// A CA made for this test: its PEM, and what signs server certificates.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "jobmgr test CA");
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server configuration whose certificate, signed by this CA, is
    /// valid for `names`.
    fn server(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "jobmgr test receiver");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        server_config(cert.der(), &key)
    }
}

/// A rustls server configuration presenting `cert`.
fn server_config(cert: &CertificateDer<'_>, key: &KeyPair) -> Arc<ServerConfig> {
    let chain = vec![CertificateDer::from(cert.to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    Arc::new(config)
}

/// A self-signed certificate for `names`, marked as a CA when `ca`: its
/// PEM, and a server configuration that presents it.
fn self_signed(names: &[&str], ca: bool) -> (String, Arc<ServerConfig>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert.pem(), server_config(cert.der(), &key))
}

/// What a TLS receiver saw.
#[derive(Default)]
struct Seen {
    requests: Vec<Got>,
    /// The SNI name of each request, in the same order.
    sni: Vec<Option<String>>,
    /// Handshakes that failed (the client refused the certificate).
    refused: usize,
}

/// A TLS receiver on 127.0.0.1, answering every request with 200.
struct TlsReceiver {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl TlsReceiver {
    fn start(config: Arc<ServerConfig>) -> TlsReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                serve_one(tcp, config.clone(), &s);
            }
        });
        TlsReceiver { port, seen }
    }

    fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        let seen = self.seen.lock().expect("receiver state");
        f(&seen)
    }
}

fn serve_one(tcp: TcpStream, config: Arc<ServerConfig>, seen: &Mutex<Seen>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            if let Ok(mut s) = seen.lock() {
                s.refused += 1;
            }
            return;
        }
    }
    let sni = tls.conn.server_name().map(str::to_string);
    let Some(got) = read_request(&mut BufReader::new(&mut tls)) else {
        return;
    };
    if let Ok(mut s) = seen.lock() {
        s.requests.push(got);
        s.sni.push(sni);
    }
    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn read_request(reader: &mut impl BufRead) -> Option<Got> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Got {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn notifier(name: &str, url: &str, extra: &str) -> String {
    format!("[[notify]]\nname = \"{name}\"\non = [\"run_failed\"]\nwebhook = \"{url}\"\n{extra}\n")
}

/// The outbox row of `notifier` as (status, attempts, lastError).
fn row_of(db: &TestDb, notifier: &str) -> Option<(String, i64, String)> {
    db.query(&format!(
        "SELECT status, attempts, coalesce(lastError, '') FROM NotifyOutbox \
         WHERE notifier = '{notifier}'"
    ))
    .first()
    .map(|r| {
        (
            r[0].as_str().unwrap_or("").to_string(),
            r[1].as_i64().unwrap_or(0),
            r[2].as_str().unwrap_or("").to_string(),
        )
    })
}

#[test]
fn an_https_receiver_is_trusted_through_ca_file_and_refused_without_it() {
    let ca = TestCa::new();
    let good = TlsReceiver::start(ca.server(&["localhost", "127.0.0.1"]));
    let misnamed = TlsReceiver::start(ca.server(&["other.example"]));
    let (own_pem, own) = self_signed(&["127.0.0.1"], false);
    let own = TlsReceiver::start(own);
    let (own_ca_pem, own_ca) = self_signed(&["127.0.0.1"], true);
    let own_ca = TlsReceiver::start(own_ca);
    let config = [
        notifier(
            "trusted",
            &format!("https://localhost:{}/hook", good.port),
            "ca_file = \"ca.pem\"",
        ),
        notifier(
            "untrusted",
            &format!("https://127.0.0.1:{}/hook", good.port),
            "",
        ),
        notifier(
            "misnamed",
            &format!("https://127.0.0.1:{}/hook", misnamed.port),
            "ca_file = \"ca.pem\"",
        ),
        notifier(
            "selfsigned",
            &format!("https://127.0.0.1:{}/hook", own.port),
            "ca_file = \"self.pem\"",
        ),
        notifier(
            "selfsignedca",
            &format!("https://127.0.0.1:{}/hook", own_ca.port),
            "ca_file = \"selfca.pem\"",
        ),
    ]
    .concat();
    let (db, clock) = setup("notify-tls", &config);
    // Relative to the config file's folder.
    std::fs::write(db.dir.join("ca.pem"), &ca.pem).expect("write ca.pem");
    std::fs::write(db.dir.join("self.pem"), &own_pem).expect("write self.pem");
    std::fs::write(db.dir.join("selfca.pem"), &own_ca_pem).expect("write selfca.pem");
    db.ok(&["check-config"]);

    let worker = start_worker(&db, &clock);
    let run = db.enqueue("fails", &[]);
    db.wait_status(run, "FAILED", WAIT);
    wait_for(
        "every notifier's first attempt to be recorded",
        WAIT,
        || {
            [
                "trusted",
                "untrusted",
                "misnamed",
                "selfsigned",
                "selfsignedca",
            ]
            .iter()
            .all(|n| row_of(&db, n).is_some_and(|(_, attempts, _)| attempts >= 1))
        },
    );

    let (status, attempts, error) = row_of(&db, "trusted").expect("trusted row");
    assert_eq!((status.as_str(), attempts), ("DELIVERED", 1), "{error}");
    let (requests, sni) = good.with(|s| (s.requests.clone(), s.sni.clone()));
    assert_eq!(requests.len(), 1, "exactly one delivery: {requests:#?}");
    assert_eq!(sni, [Some("localhost".to_string())], "SNI names the host");
    let post = &requests[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(post.headers["content-type"], "application/json");
    assert_eq!(
        post.headers["host"],
        format!("localhost:{}", good.port),
        "{post:?}"
    );
    let b = &post.body;
    assert_eq!(
        (&b["event"], &b["runId"], &b["notifier"]),
        (
            &Value::from("run_failed"),
            &Value::from(run),
            &Value::from("trusted")
        )
    );
    assert!(
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("run {run} (fails) failed"))),
        "{b}"
    );
    let id = b["deliveryId"].as_i64().expect("deliveryId");
    assert_eq!(post.headers["idempotency-key"], format!("jobmgr-{id}"));

    // Without ca_file the test CA is unknown: refused, kept for a retry.
    let (status, attempts, error) = row_of(&db, "untrusted").expect("untrusted row");
    assert_eq!((status.as_str(), attempts), ("PENDING", 1));
    assert!(
        error.starts_with("certificate not trusted for 127.0.0.1: issued by an authority")
            && error.contains("ca_file"),
        "{error}"
    );
    assert!(good.with(|s| s.refused) >= 1, "the handshake was refused");

    // A certificate from the trusted CA, but for another name.
    let (status, attempts, error) = row_of(&db, "misnamed").expect("misnamed row");
    assert_eq!((status.as_str(), attempts), ("PENDING", 1));
    assert!(
        error.starts_with("certificate not trusted for 127.0.0.1: ")
            && error.contains("other.example"),
        "{error}"
    );
    assert_eq!(misnamed.with(|s| s.requests.len()), 0);

    // A self-signed certificate in ca_file is trusted for itself...
    let (status, _, error) = row_of(&db, "selfsigned").expect("selfsigned row");
    assert_eq!(status, "DELIVERED", "{error}");
    assert_eq!(own.with(|s| s.requests.len()), 1);
    // ... unless it is marked as a CA, as `openssl req -x509` does; the
    // error says what to do.
    let (status, _, error) = row_of(&db, "selfsignedca").expect("selfsignedca row");
    assert_eq!(status, "PENDING");
    assert!(
        error.starts_with("certificate not trusted for 127.0.0.1: its certificate is a CA")
            && error.contains("CA:FALSE"),
        "{error}"
    );
    assert_eq!(own_ca.with(|s| s.requests.len()), 0);

    // `jobmgr notifications` shows the errors as the outbox has them.
    assert_eq!(outbox(&db).len(), 5);
    let listed: Value = serde_json::from_str(&db.ok(&["notifications", "--json"])).expect("JSON");
    let errors: Vec<&str> = listed["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["lastError"].as_str())
        .collect();
    assert_eq!(errors.len(), 3, "{listed}");
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with("certificate not trusted")),
        "{errors:?}"
    );
    assert_eq!(good.with(|s| s.requests.len()), 1, "still one delivery");
    drop(worker);
}

#[test]
fn check_config_refuses_a_ca_file_that_is_missing_or_no_certificate() {
    let db = TestDb::new("notify-tls-check");
    std::fs::write(db.dir.join("notes.pem"), "not a certificate\n").expect("write");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        format!(
            "{JOBS}\n{}\n{}\n{}",
            notifier("a", "https://hooks.example/x", "ca_file = \"nowhere.pem\""),
            notifier("b", "https://hooks.example/x", "ca_file = \"notes.pem\""),
            notifier("c", "http://127.0.0.1:9/x", "ca_file = \"notes.pem\""),
        ),
    )
    .expect("write config");
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let nowhere = db.dir.join("nowhere.pem");
    let notes = db.dir.join("notes.pem");
    for want in [
        format!(
            "line 17: notify[0].ca_file: read {}: No such file or directory",
            nowhere.display()
        ),
        format!(
            "line 23: notify[1].ca_file: {} holds no PEM certificate",
            notes.display()
        ),
        "line 29: notify[2].ca_file: applies to https:// webhooks only".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}
