//! The audit stream against real receivers on loopback: Debian's rsyslog
//! (UDP, and TLS with its own CA) writing to a file, and an HTTP webhook
//! receiver in the suite. A receiver killed and brought back loses
//! nothing; a slow one holds up only its own stream; the receiver's file
//! verifies with `agency-sso audit verify --from-file`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agency_sso::domain::audit::Actor;
use agency_sso::service::stream::{self, Sender, Start};

use crate::on_both_databases;
use crate::support::{run_err, run_ok, Backend, TestApp};

/// A webhook receiver: 503 while `down`, slow by `delay_ms`, else 200;
/// keeps each body it answered 200 to, and counts every request.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    signatures: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

async fn hook() -> Hook {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let signatures: Arc<Mutex<Vec<String>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let (b, s, d, w) = (
        bodies.clone(),
        signatures.clone(),
        down.clone(),
        delay_ms.clone(),
    );
    let app = axum::Router::new().route(
        "/audit",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (b, s, d, w) = (b.clone(), s.clone(), d.clone(), w.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(w.load(Ordering::SeqCst))).await;
                if d.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                s.lock().unwrap().push(
                    headers["x-agency-sso-signature"]
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
                b.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/audit", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook {
        url,
        bodies,
        signatures,
        down,
        delay_ms,
    }
}

/// The records a receiver's file holds, by seq.
fn seqs(text: &str) -> Vec<i64> {
    agency_sso::domain::stream::records_in(text)
        .0
        .iter()
        .map(|r| r.seq)
        .collect()
}

async fn head(app: &TestApp) -> i64 {
    agency_sso::service::audit::head(&app.state.db)
        .await
        .unwrap()
        .0
}

/// Some records: sites added from the command line.
fn some_changes(app: &TestApp, from: usize, n: usize) {
    for i in from..from + n {
        run_ok(app.command().args([
            "sites",
            "add",
            "--name",
            &format!("Site {i}"),
            "--client",
            "Acme",
            "--url",
            &format!("https://site{i}.acme.example"),
        ]));
    }
}

/// A webhook down for a while gets everything when it is back, in chain
/// order, signed; the cursor moves only on its 2xx; the file it wrote
/// verifies, and a copy with a record taken out does not.
async fn a_webhook_that_was_down_gets_every_record_in_order(backend: Backend) {
    let app = TestApp::start(backend).await;
    let receiver = hook().await;
    some_changes(&app, 0, 3);
    let out = run_ok(
        app.command()
            .args(["audit", "stream", "add", "SIEM", &receiver.url]),
    );
    let secret = out.trim().lines().last().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{out}");
    let d = &stream::status(&app.state.db).await.unwrap().1[0];
    let sender = Sender::new();
    receiver.down.store(true, Ordering::SeqCst);
    assert_eq!(
        stream::deliver_once(&app.state.core, &sender, &d.id, "w")
            .await
            .unwrap(),
        0
    );
    let (_, list) = stream::status(&app.state.db).await.unwrap();
    assert_eq!(list[0].last_seq, 0, "not acknowledged: the cursor stays");
    assert!(list[0].last_error.contains("503"), "{list:?}");
    let listed = run_ok(app.command().args(["audit", "stream", "list"]));
    assert!(
        listed.contains("SIEM") && listed.contains("503"),
        "{listed}"
    );
    // Not due again before its backoff.
    assert_eq!(
        stream::deliver_once(&app.state.core, &sender, &d.id, "w")
            .await
            .unwrap(),
        0
    );
    some_changes(&app, 3, 2);

    receiver.down.store(false, Ordering::SeqCst);
    app.clock.advance(3);
    let mut delivered = 0;
    loop {
        let n = stream::deliver_once(&app.state.core, &sender, &d.id, "w")
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        delivered += n;
    }
    let h = head(&app).await;
    assert_eq!(delivered as i64, h);
    let file: String = receiver.bodies.lock().unwrap().join("\n");
    assert_eq!(seqs(&file), (1..=h).collect::<Vec<_>>());
    let now = app.clock.now_for_tests();
    for (sig, body) in receiver
        .signatures
        .lock()
        .unwrap()
        .iter()
        .zip(receiver.bodies.lock().unwrap().iter())
    {
        assert!(agency_sso::domain::notify::verify(
            secret.as_bytes(),
            sig,
            body,
            now,
            600
        ));
    }
    // A file of this test's own (the SQLite and PostgreSQL runs go side by side).
    let copy = tempfile::NamedTempFile::new().unwrap();
    let path = copy.path().to_path_buf();
    std::fs::write(&path, &file).unwrap();
    let ok = run_ok(
        app.command()
            .args(["audit", "verify", "--from-file"])
            .arg(&path),
    );
    assert!(
        ok.starts_with(&format!("receiver's copy verified: {h} record(s) #1..#{h}, every link, no gap; its last record is this dashboard's")),
        "{ok}"
    );
    // A record taken out of the copy: named.
    let mut records = agency_sso::domain::stream::records_in(&file).0;
    records.remove(2);
    let gap: String = records
        .iter()
        .map(agency_sso::domain::stream::record_json)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, gap).unwrap();
    let broken = app
        .command()
        .args(["audit", "verify", "--from-file"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{said}");
    assert!(said.starts_with("RECEIVER'S COPY BROKEN: "), "{said}");
    drop(copy);
    let (_, list) = stream::status(&app.state.db).await.unwrap();
    assert_eq!((list[0].last_seq, list[0].last_error.as_str()), (h, ""));
}

/// Two destinations served by the running worker: one answers slowly, the
/// other keeps up; the slow one catches up in the end; /metrics shows the lag.
async fn a_slow_receiver_holds_up_only_its_own_stream(backend: Backend) {
    let app = TestApp::start(backend).await;
    let fast = hook().await;
    let slow = hook().await;
    slow.delay_ms.store(1_500, Ordering::SeqCst);
    let by = Actor::command_line();
    let now = app.clock.now_for_tests();
    for (name, h) in [("fast", &fast), ("slow", &slow)] {
        stream::add(
            &app.state.db,
            &app.state.master_keys,
            name,
            &h.url,
            "",
            Start::Beginning,
            &by,
            now,
        )
        .await
        .unwrap();
    }
    stream::spawn_worker(app.state.core.clone());
    // Records keep coming in small batches; the fast one keeps up with each.
    for round in 0..3 {
        some_changes(&app, round * 2, 2);
        let h = head(&app).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, list) = stream::status(&app.state.db).await.unwrap();
            let f = list.iter().find(|d| d.name == "fast").unwrap();
            if f.last_seq == h {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the fast stream fell behind: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Meanwhile the slow one has taken fewer batches.
    assert!(slow.bodies.lock().unwrap().len() < fast.bodies.lock().unwrap().len() + 1);
    let h = head(&app).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = stream::status(&app.state.db).await.unwrap();
        if list.iter().all(|d| d.last_seq == h) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow stream never caught up: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for r in [&fast, &slow] {
        assert_eq!(
            seqs(&r.bodies.lock().unwrap().join("\n")),
            (1..=h).collect::<Vec<_>>()
        );
    }
}

/// rsyslog on loopback, as an agency's relay or log server runs it.
struct Rsyslog {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Rsyslog {
    /// Start rsyslogd in the foreground on a free port: `udp` or `tls`
    /// (with a CA and certificate made here), writing each message's raw
    /// text to `out.log`.
    fn start(transport: &str) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display().to_string();
        let input = match transport {
            "udp" => format!(
                "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            _ => {
                make_certificates(dir.path());
                format!(
                    "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{d}/ca.pem\" \
                     DefaultNetstreamDriverCertFile=\"{d}/cert.pem\" DefaultNetstreamDriverKeyFile=\"{d}/key.pem\")\n\
                     module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
                     input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
                )
            }
        };
        let conf = format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"64k\")\n{input}\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             action(type=\"omfile\" file=\"{d}/out.log\" template=\"raw\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n"
        );
        std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let child = std::process::Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(dir.path().join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.path().join("rsyslog.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd (scripts/test installs rsyslog and rsyslog-gnutls)");
        let r = Rsyslog { child, dir, port };
        if transport == "tls" {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "rsyslogd did not listen"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            std::thread::sleep(Duration::from_millis(500));
        }
        r
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("out.log")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }

    fn ca(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test syslog CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

async fn wait_for(app: &TestApp, r: &Rsyslog, h: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seqs(&r.text()).last().copied() != Some(h) {
        assert!(
            std::time::Instant::now() < deadline,
            "rsyslog has {:?} of {h}",
            seqs(&r.text()).last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = app;
}

/// Every record over TLS to rsyslog, which trusts its own CA only: the
/// file it wrote holds RFC 5424 messages with the chain index and hash as
/// structured data, and verifies. rsyslog killed, records keep coming,
/// rsyslog back: it gets the rest; the copy still verifies.
async fn rsyslog_over_tls_gets_the_whole_chain_even_across_a_restart(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut relay = Rsyslog::start("tls");
    some_changes(&app, 0, 2);
    let target = format!("syslog+tls://localhost:{}", relay.port);
    // Without its CA the receiver is not trusted: nothing is sent.
    let by = Actor::command_line();
    let now = app.clock.now_for_tests();
    let (wrong, _) = stream::add(
        &app.state.db,
        &app.state.master_keys,
        "untrusted",
        &target,
        "",
        Start::Beginning,
        &by,
        now,
    )
    .await
    .unwrap();
    let sender = Sender::new();
    assert_eq!(
        stream::deliver_once(&app.state.core, &sender, &wrong.id, "w")
            .await
            .unwrap(),
        0
    );
    let (_, list) = stream::status(&app.state.db).await.unwrap();
    assert!(list[0].last_error.contains("TLS"), "{list:?}");
    stream::remove(&app.state.db, "untrusted", &by, now)
        .await
        .unwrap();

    let ca = relay.dir.path().join("ca.pem");
    run_ok(
        app.command()
            .args(["audit", "stream", "add", "logs", &target, "--ca"])
            .arg(&ca),
    );
    let d = stream::status(&app.state.db).await.unwrap().1.remove(0);
    while stream::deliver_once(&app.state.core, &sender, &d.id, "w")
        .await
        .unwrap()
        > 0
    {}
    let h = head(&app).await;
    wait_for(&app, &relay, h).await;
    let first = relay.text().lines().next().unwrap().to_string();
    assert!(
        first.starts_with("<109>1 ")
            && first.contains(" agency-sso - ")
            && first.contains("[audit@32473 seq=\"1\" hash=\""),
        "{first}"
    );

    // The receiver goes away; records keep coming; sending fails and waits.
    let _ = relay.child.kill();
    let _ = relay.child.wait();
    some_changes(&app, 2, 3);
    assert_eq!(
        stream::deliver_once(&app.state.core, &sender, &d.id, "w")
            .await
            .unwrap(),
        0
    );
    let (_, list) = stream::status(&app.state.db).await.unwrap();
    assert_eq!(list[0].last_seq, h);
    assert!(!list[0].last_error.is_empty());
    // Back, on the same port with the same certificate and file.
    let d_path = relay.dir.path().to_path_buf();
    relay.child = std::process::Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(d_path.join("rsyslog.conf"))
        .arg("-i")
        .arg(d_path.join("rsyslog.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", relay.port)).is_err() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.clock.advance(5);
    while stream::deliver_once(&app.state.core, &sender, &d.id, "w")
        .await
        .unwrap()
        > 0
    {}
    let h = head(&app).await;
    wait_for(&app, &relay, h).await;
    assert_eq!(seqs(&relay.text()), (1..=h).collect::<Vec<_>>());
    let ok = run_ok(
        app.command()
            .args(["audit", "verify", "--from-file"])
            .arg(relay.file()),
    );
    assert!(ok.starts_with("receiver's copy verified: "), "{ok}");
    let _ = relay.ca();
}

/// UDP to a relay on loopback; anything but loopback is refused for
/// plain syslog.
async fn rsyslog_over_udp_on_loopback(backend: Backend) {
    let app = TestApp::start(backend).await;
    let relay = Rsyslog::start("udp");
    some_changes(&app, 0, 2);
    let err = run_err(app.command().args([
        "audit",
        "stream",
        "add",
        "far",
        "syslog+udp://192.0.2.1:514",
    ]));
    assert!(err.contains("only to a relay on loopback"), "{err}");
    run_ok(app.command().args([
        "audit",
        "stream",
        "add",
        "relay",
        &format!("syslog+udp://127.0.0.1:{}", relay.port),
    ]));
    let d = stream::status(&app.state.db).await.unwrap().1.remove(0);
    let sender = Sender::new();
    while stream::deliver_once(&app.state.core, &sender, &d.id, "w")
        .await
        .unwrap()
        > 0
    {}
    let h = head(&app).await;
    wait_for(&app, &relay, h).await;
    let ok = run_ok(
        app.command()
            .args(["audit", "verify", "--from-file"])
            .arg(relay.file()),
    );
    assert!(ok.contains("its last record is this dashboard's"), "{ok}");
    let removed = run_ok(app.command().args(["audit", "stream", "remove", "relay"]));
    assert_eq!(
        removed.trim(),
        "The audit log no longer streams to \"relay\"."
    );
}

/// A client driven by the OpenAPI document (PyPI's openapi-core checks
/// every request and answer against it) adds a site and grants Sam; Sam's
/// launch works; it revokes the grant; the records of both, made as the
/// token, arrive at rsyslog through the running stream.
async fn a_client_of_the_document_grants_and_revokes_and_syslog_hears_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sites = crate::support::StandInSites::start(&app).await;
    let relay = Rsyslog::start("udp");
    run_ok(app.command().args([
        "audit",
        "stream",
        "add",
        "relay",
        &format!("syslog+udp://127.0.0.1:{}", relay.port),
    ]));
    stream::spawn_worker(app.state.core.clone());
    let token = run_ok(app.command().args([
        "tokens",
        "create",
        "--name",
        "scenario",
        "--scope",
        "sites:write",
        "--scope",
        "sites:read",
        "--scope",
        "access:write",
        "--scope",
        "access:read",
        "--days",
        "1",
    ]));
    let token = token.trim().lines().last().unwrap().to_string();
    let scenario = |args: &[&str]| {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut c = std::process::Command::new("python3");
        c.arg(format!("{root}/tests/verifiers/openapi_scenario.py"))
            .arg(&app.url)
            .arg(&token)
            .args(args)
            .env("PYTHONPATH", format!("{root}/target/pyverifiers"));
        run_ok(&mut c)
    };
    let url = sites.url("scenario");
    let site = scenario(&["grant", &url, "sam@agency.test"])
        .trim()
        .to_string();
    let sam = app.signed_in("sam@agency.test").await;
    assert_eq!(
        sites.enter(&app, &sam, &site).await["user"]["role"],
        "editor"
    );
    scenario(&["revoke", &site, "sam@agency.test"]);
    let res = app.launch(&sam, &site).await;
    assert_ne!(res.status(), 303, "no grant, no launch");

    let h = head(&app).await;
    wait_for(&app, &relay, h).await;
    let file = relay.text();
    let actor = "token scenario (made by command line)";
    for kind in ["site_created", "grant_set", "grant_revoked"] {
        assert!(
            agency_sso::domain::stream::records_in(&file)
                .0
                .iter()
                .any(|r| r.event.kind == kind && r.event.actor == actor),
            "{kind} by the token is not in rsyslog's file"
        );
    }
    let ok = run_ok(
        app.command()
            .args(["audit", "verify", "--from-file"])
            .arg(relay.file()),
    );
    assert!(ok.contains("its last record is this dashboard's"), "{ok}");
}

on_both_databases!(
    a_client_of_the_document_grants_and_revokes_and_syslog_hears_it,
    a_webhook_that_was_down_gets_every_record_in_order,
    a_slow_receiver_holds_up_only_its_own_stream,
    rsyslog_over_tls_gets_the_whole_chain_even_across_a_restart,
    rsyslog_over_udp_on_loopback,
);
