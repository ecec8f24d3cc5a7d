//! The whole dashboard started in-process on loopback, on a fresh SQLite
//! file or a fresh PostgreSQL database, with a hand-set clock.

use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use agency_sso::config::{Config, ConfigArgs};
use agency_sso::server;
use agency_sso::service::Clock;
use agency_sso::web::AppState;
use clap::Parser;
use reqwest::header::LOCATION;
use reqwest::redirect::Policy;
use url::Url;

use crate::idp::{FakeIdp, Signing, CLIENT_ID, CLIENT_SECRET};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run each named `async fn name(backend: Backend)` once per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn now_for_tests(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The PostgreSQL server the suite uses (`TEST_PG_URL`, else the local one).
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database URL for a fresh, empty database of that kind.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/test.db", dir.display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let name = format!("sso_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
                .await
                .expect("the suite needs the local PostgreSQL server (see README)");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let mut url = Url::parse(&pg_admin_url()).unwrap();
            url.set_path(&name);
            url.to_string()
        }
    }
}

pub struct TestApp {
    pub url: String,
    /// The database and data folder, for running the binary beside it.
    pub database_url: String,
    pub data_dir: std::path::PathBuf,
    pub state: AppState,
    pub idp: FakeIdp,
    pub clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub backend: Backend,
    pub extra: Vec<(&'static str, String)>,
    /// Point the dashboard at this issuer instead of the test provider.
    pub issuer: Option<String>,
    /// Reach PostgreSQL through this port on loopback (a proxy the test
    /// can cut) instead of the server's own.
    pub pg_port: Option<u16>,
    /// This database instead of a fresh one in the test's folder.
    pub database_url: Option<String>,
}

impl Options {
    pub fn new(backend: Backend) -> Self {
        Options {
            backend,
            extra: Vec::new(),
            issuer: None,
            pg_port: None,
            database_url: None,
        }
    }
    pub fn with(mut self, flag: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((flag, value.into()));
        self
    }
    /// For load: one person launching thousands of times a minute is far
    /// over the launch limits, which are tested on their own.
    pub fn without_launch_limits(self) -> Self {
        self.with("launch-rate", "off")
            .with("launch-client-rate", "off")
    }
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(Options::new(backend)).await
    }

    pub async fn start_with(opts: Options) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let idp = FakeIdp::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut database = match &opts.database_url {
            Some(url) => url.clone(),
            None => fresh_database(opts.backend, dir.path()).await,
        };
        if let (Backend::Postgres, Some(port)) = (opts.backend, opts.pg_port) {
            let mut u = Url::parse(&database).unwrap();
            u.set_host(Some("127.0.0.1")).unwrap();
            u.set_port(Some(port)).unwrap();
            database = u.to_string();
        }
        let issuer = opts
            .issuer
            .clone()
            .unwrap_or_else(|| idp.issuer().to_string());
        let data_path = dir.path().join("data");
        let data_dir = data_path.display().to_string();
        let mut argv: Vec<String> = vec!["test".into()];
        let mut flag = |k: &str, v: &str| {
            argv.push(format!("--{k}"));
            argv.push(v.to_string());
        };
        if !opts.extra.iter().any(|(k, _)| *k == "public-url") {
            flag("public-url", &url);
        }
        flag("database-url", &database);
        flag("data-dir", &data_dir);
        flag("oidc-issuer", &issuer);
        flag("oidc-client-id", CLIENT_ID);
        flag("oidc-client-secret", CLIENT_SECRET);
        flag("allowed-domains", "agency.test");
        if !opts.extra.iter().any(|(k, _)| *k == "admin-emails") {
            flag("admin-emails", "boss@agency.test");
        }
        for (k, v) in &opts.extra {
            flag(k, v);
        }
        let config: Config = Args::try_parse_from(argv)
            .unwrap()
            .config
            .validate()
            .unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )));
        let state = server::build_state(
            config,
            clock.clone(),
            server::leptos_options(listener.local_addr().unwrap()),
        )
        .await
        .unwrap();
        server::record_start(&state).await.unwrap();
        serve_in_background(listener, &state);
        TestApp {
            url,
            database_url: database,
            data_dir: data_path,
            state,
            idp,
            clock,
            _dir: dir,
        }
    }

    /// A second instance of the dashboard on the same database (its own
    /// pool, key ring and listener), as behind a load balancer. Returns its URL.
    pub async fn another_instance(&self) -> (String, AppState) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = server::build_state(
            (*self.state.config).clone(),
            self.clock.clone(),
            server::leptos_options(addr),
        )
        .await
        .unwrap();
        server::record_start(&state).await.unwrap();
        serve_in_background(listener, &state);
        (format!("http://{addr}"), state)
    }

    /// Run this instance's key ring upkeep in the background, as `serve` does.
    pub fn spawn_key_upkeep(&self) {
        agency_sso::service::keys::spawn_maintenance(self.state.keys.clone(), self.clock.clone());
    }

    /// The binary, configured for this app's database and data folder.
    pub fn command(&self) -> std::process::Command {
        let mut c = crate::cli::agency_sso();
        c.env("SSO_DATABASE_URL", &self.database_url)
            .env("SSO_DATA_DIR", &self.data_dir)
            .env("SSO_ALLOWED_DOMAINS", "agency.test")
            .env("SSO_PUBLIC_URL", &self.url);
        c
    }

    /// A browser-like client: keeps cookies, does not follow redirects, and
    /// sends `Origin` on state-changing requests as browsers do.
    pub fn browser(&self) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            origin: Url::parse(&self.url).unwrap(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Start a sign-in: returns the provider's authorization URL parameters.
    pub async fn begin(&self, browser: &Browser) -> Attempt {
        self.begin_at(browser, "/auth/login").await
    }

    /// Start a sign-in at `path` (`/auth/login?reauth=1` for a fresh one).
    pub async fn begin_at(&self, browser: &Browser, path: &str) -> Attempt {
        let res = browser.get(self.at(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "login starts with a redirect");
        let location = res.headers()[LOCATION].to_str().unwrap().to_string();
        let url = Url::parse(&location).unwrap();
        assert!(location.starts_with(&format!("{}/authorize?", self.idp.issuer())));
        let param = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string())
        };
        Attempt {
            state: param("state").expect("state"),
            nonce: param("nonce").expect("nonce"),
            challenge: param("code_challenge").expect("code_challenge"),
            challenge_method: param("code_challenge_method"),
            hd: param("hd"),
            scope: param("scope").unwrap_or_default(),
        }
    }

    /// Come back from the provider with a code for `claims`.
    pub async fn finish(
        &self,
        browser: &Browser,
        attempt: &Attempt,
        claims: serde_json::Value,
        signing: Signing,
    ) -> reqwest::Response {
        let code = self.idp.issue_code(claims, &attempt.challenge, signing);
        self.callback(browser, &code, &attempt.state).await
    }

    pub async fn callback(&self, browser: &Browser, code: &str, state: &str) -> reqwest::Response {
        let mut url = Url::parse(&self.at("/auth/callback")).unwrap();
        url.query_pairs_mut()
            .append_pair("code", code)
            .append_pair("state", state);
        browser.get(url).send().await.unwrap()
    }

    /// A full, successful sign-in as `email`.
    pub async fn sign_in(&self, browser: &Browser, email: &str) {
        let attempt = self.begin(browser).await;
        let claims = self.idp.claims(email, &attempt.nonce);
        let res = self.finish(browser, &attempt, claims, Signing::Rs256).await;
        assert_eq!(res.status(), 303, "sign-in of {email} should succeed");
    }

    /// A full, successful sign-in as `email` under the provider's subject
    /// `sub` (the same person at the provider with another address, say).
    pub async fn sign_in_as(&self, browser: &Browser, email: &str, sub: &str) {
        let attempt = self.begin(browser).await;
        let mut claims = self.idp.claims(email, &attempt.nonce);
        claims["sub"] = serde_json::json!(sub);
        let res = self.finish(browser, &attempt, claims, Signing::Rs256).await;
        assert_eq!(
            res.status(),
            303,
            "sign-in of {email} as {sub} should succeed"
        );
    }

    /// A fresh sign-in, as sensitive actions ask for: the dashboard asks the
    /// provider to authenticate again, and the ID token says it just did.
    pub async fn sign_in_fresh(&self, browser: &Browser, email: &str) {
        let attempt = self.begin_at(browser, "/auth/login?reauth=1").await;
        let mut claims = self.idp.claims(email, &attempt.nonce);
        claims["auth_time"] = serde_json::json!(self.clock.now_for_tests());
        let res = self.finish(browser, &attempt, claims, Signing::Rs256).await;
        assert_eq!(res.status(), 303, "fresh sign-in of {email} should succeed");
    }

    /// A new browser, freshly signed in as `email` (see [`TestApp::sign_in_fresh`]).
    pub async fn signed_in_fresh(&self, email: &str) -> Browser {
        let b = self.browser();
        self.sign_in_fresh(&b, email).await;
        b
    }

    /// A page's HTML as the browser sees it, whatever its status.
    pub async fn page(&self, browser: &Browser, path: &str) -> String {
        browser
            .get(self.at(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POST /launch as the site picker does (no deep link).
    pub async fn launch(&self, browser: &Browser, site: &str) -> reqwest::Response {
        browser
            .post(self.at("/launch"))
            .header("origin", &self.url)
            .form(&[("site", site), ("path", "")])
            .send()
            .await
            .unwrap()
    }

    /// A browser signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let b = self.browser();
        self.sign_in(&b, email).await;
        b
    }

    /// The home page's HTML as the browser sees it.
    pub async fn home(&self, browser: &Browser) -> String {
        let res = browser.get(self.at("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }
}

/// Serve the dashboard on `listener` until the test ends.
pub fn serve_in_background(listener: tokio::net::TcpListener, state: &AppState) {
    let router = server::router(state.clone());
    let client_timeout = state.config.client_timeout;
    tokio::spawn(server::serve_connections(
        listener,
        router,
        client_timeout,
        std::future::pending(),
    ));
}

/// Secrets the suite uses; none may ever appear in an audit record.
pub const TEST_SECRETS: &[&str] = &[
    crate::idp::CLIENT_SECRET,
    "hunter2-secret",
    "miniorange-client-secret-0123456789abcdef",
    "another-secret-0123456789abcdef-xyz",
    "BEGIN RSA PRIVATE KEY",
    "BEGIN PRIVATE KEY",
];

/// Every audit record of a database, as one text per record.
pub async fn audit_texts(database_url: &str) -> Vec<(i64, String)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, kind || '|' || actor || '|' || subject || '|' || site_id || '|' || site_url \
         || '|' || client || '|' || role || '|' || COALESCE(jti, '') || '|' || reason || '|' || ip \
         || '|' || user_agent || '|' || request_id || '|' || detail FROM audit_log ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

/// What in a record looks like a token or a secret, if anything.
pub fn leak_in(text: &str, extra: &[String]) -> Option<String> {
    // A JWS: base64url JSON header, payload and signature.
    for (i, _) in text.match_indices("eyJ") {
        let rest = &text[i..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if token.split('.').filter(|p| p.len() >= 4).count() >= 2 {
            return Some(format!(
                "a JWT-shaped string {}…",
                &token[..token.len().min(24)]
            ));
        }
    }
    TEST_SECRETS
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .find(|s| !s.is_empty() && text.contains(s.as_str()))
        .map(|s| format!("the secret {s:?}"))
}

impl Drop for TestApp {
    /// Every record the test wrote is scanned: no token, no secret, no
    /// private key, whatever the test did.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let url = self.database_url.clone();
        let master = std::fs::read_to_string(self.data_dir.join("master.key")).unwrap_or_default();
        let found = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                audit_texts(&url).await.into_iter().find_map(|(seq, text)| {
                    leak_in(&text, &[master.trim().to_string()]).map(|l| (seq, l))
                })
            })
        })
        .join()
        .unwrap();
        if let Some((seq, leak)) = found {
            panic!("audit record #{seq} holds {leak}");
        }
    }
}

/// A client with a readable cookie jar.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    origin: Url,
}

impl std::ops::Deref for Browser {
    type Target = reqwest::Client;
    fn deref(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Browser {
    /// GET `url` and read the body as text, whatever the status.
    pub async fn text(&self, url: String) -> String {
        self.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// The `Cookie` header this browser sends to the dashboard.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.origin)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub challenge: String,
    pub challenge_method: Option<String>,
    pub hd: Option<String>,
    pub scope: String,
}

/// The visible text of an HTML page, whitespace folded (not script or
/// style contents, where serialized data would make a check pass falsely).
pub fn page_text(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let mut words = Vec::new();
    for node in doc.root_element().descendants() {
        let Some(text) = node.value().as_text() else {
            continue;
        };
        let hidden = node.ancestors().any(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "script" | "style" | "template" | "head"))
        });
        if !hidden {
            words.extend(text.split_whitespace().map(str::to_string));
        }
    }
    words.join(" ")
}

/// Feed `input` to a token verifier (PyJWT or jose) and read its results.
pub fn run_verifier(
    mut c: std::process::Command,
    input: &str,
    what: &str,
) -> Vec<serde_json::Value> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); scripts/test installs it"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed (scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// PyJWT, as a site operator would run it (tests/verifiers/pyjwt_verify.py).
pub fn pyjwt() -> std::process::Command {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut py = std::process::Command::new("python3");
    py.arg(format!("{root}/tests/verifiers/pyjwt_verify.py"))
        .env("PYTHONPATH", format!("{root}/target/pyverifiers"));
    py
}

/// miniOrange's free plugin's own checks, in PHP (tests/verifiers/miniorange_verify.php).
pub fn miniorange_php() -> std::process::Command {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut php = std::process::Command::new("php");
    php.arg(format!("{root}/tests/verifiers/miniorange_verify.php"));
    php
}

/// The connector plugin's own verifier in PHP (tests/verifiers/connector_verify.php).
pub fn connector_php() -> std::process::Command {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut php = std::process::Command::new("php");
    php.arg(format!("{root}/tests/verifiers/connector_verify.php"));
    php
}

pub fn run_ok(c: &mut std::process::Command) -> String {
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn run_err(c: &mut std::process::Command) -> String {
    let out = c.output().unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A site ("Blog", https://blog.client.example) on which each of `editors`
/// holds the editor role; returns its id.
pub async fn blog_with_editors(app: &TestApp, editors: &[&str]) -> String {
    use agency_sso::domain::audit::Actor;
    let st = &app.state;
    let now = app.clock.now_for_tests();
    let id = agency_sso::service::sites::create_site(
        &st.db,
        &st.master_keys,
        agency_sso::domain::sites::SiteInput {
            name: "Blog".into(),
            client: "Client".into(),
            url: "https://blog.client.example".into(),
            ..Default::default()
        },
        &Actor::command_line(),
        now,
    )
    .await
    .unwrap()
    .id;
    for who in editors {
        agency_sso::service::access::grant(
            &st.db,
            &["agency.test".to_string()],
            who,
            &id,
            "editor",
            &Actor::command_line(),
            now,
        )
        .await
        .unwrap();
    }
    id
}

/// Call a server function as the console's forms do: a same-origin POST.
/// The status, and the body as JSON (or as a JSON string if it is not).
pub async fn server_fn(
    app: &TestApp,
    b: &Browser,
    name: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let res = b
        .post(app.at(&format!("/api/{name}")))
        .header("origin", &app.url)
        .header("referer", app.at("/admin/sites"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// The console's People page as `admin` reads it (no filter): its status and answer.
pub async fn people_page(app: &TestApp, admin: &Browser) -> (u16, serde_json::Value) {
    let filter = [
        ("filter[q]", ""),
        ("filter[standing]", ""),
        ("filter[offset]", "0"),
    ];
    server_fn(app, admin, "admin_people", &filter).await
}

/// The console's import dry run by `admin`: its answer, and each row's
/// action (create, update, unchanged or invalid).
pub async fn import_preview(
    app: &TestApp,
    admin: &Browser,
    csv: &str,
) -> (serde_json::Value, Vec<String>) {
    let (status, preview) = server_fn(app, admin, "admin_import_preview", &[("csv", csv)]).await;
    assert_eq!(status, 200, "{preview}");
    let actions = preview["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    (preview, actions)
}

/// Apply an import that `preview` showed: the status and the answer.
pub async fn import_apply(
    app: &TestApp,
    admin: &Browser,
    csv: &str,
    preview: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let digest = preview["digest"].as_str().unwrap();
    server_fn(
        app,
        admin,
        "admin_import_apply",
        &[("csv", csv), ("digest", digest)],
    )
    .await
}

/// A team made through the console by `admin`; returns its id.
pub async fn create_team(app: &TestApp, admin: &Browser, name: &str, description: &str) -> String {
    let (status, team) = server_fn(
        app,
        admin,
        "admin_create_team",
        &[("name", name), ("description", description)],
    )
    .await;
    assert_eq!(status, 200, "{team}");
    team.as_str().unwrap().to_string()
}

/// The site form's fields: these values over the form's defaults.
pub fn site_form<'a>(values: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form: Vec<(&str, &str)> = [
        ("id", ""),
        ("version", "0"),
        ("name", ""),
        ("client", "Acme"),
        ("url", ""),
        ("profile", "twl-sso"),
        ("login_template", ""),
        ("username_claim", ""),
        ("signing", ""),
        ("secret", ""),
        ("roles", ""),
        ("token_lifetime", ""),
        ("notes", ""),
    ]
    .to_vec();
    for (k, v) in values {
        match form.iter_mut().find(|(f, _)| f == k) {
            Some(slot) => slot.1 = *v,
            None => form.push((*k, *v)),
        }
    }
    form
}

/// Stand-in connector sites (tests/verifiers/back_channel_sites.php under
/// PHP's built-in server): each checks a message with the plugin's own
/// code, keeps its jti single-use, answers as the plugin does, and logs
/// what it carried out.
pub struct StandInSites {
    pub base: String,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl StandInSites {
    pub async fn start(app: &TestApp) -> StandInSites {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        // Its own process group: the workers it forks are stopped with it.
        let child = std::process::Command::new("php")
            .process_group(0)
            .arg("-S")
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("{root}/tests/verifiers/back_channel_sites.php"))
            .env("PHP_CLI_SERVER_WORKERS", "8")
            .env("AGENCY_SSO_ISSUER", &*app.state.config.public_url)
            .env(
                "AGENCY_SSO_JWKS_URI",
                format!("{}/.well-known/jwks.json", app.url),
            )
            .env("STAND_IN_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("php (scripts/test installs php-cli)");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let sites = StandInSites { base, dir, child };
        sites.follow_clock(app);
        sites
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// The folder the sites keep their state in.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The sites' clock is the dashboard's test clock.
    pub fn follow_clock(&self, app: &TestApp) {
        self.set_clock_offset(
            app.clock.now_for_tests() - time::OffsetDateTime::now_utc().unix_timestamp(),
        );
    }

    /// The sites' clock: this machine's, `secs` ahead.
    pub fn set_clock_offset(&self, secs: i64) {
        std::fs::write(self.dir.path().join("clock"), secs.to_string()).unwrap();
    }

    /// Write one of a site's switch files (`{name}.{what}`) with these
    /// contents, or remove it (`None`).
    fn switch(&self, name: &str, what: &str, contents: Option<&str>) {
        let f = self.dir.path().join(format!("{name}.{what}"));
        match contents {
            Some(c) => std::fs::write(f, c).unwrap(),
            None => {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    /// Take a site down (503) or bring it back.
    pub fn set_down(&self, name: &str, down: bool) {
        self.switch(name, "down", down.then_some(""));
    }

    /// Hold a site's answers to messages until released (`false`), at
    /// most 9 seconds each (under the dashboard's send timeout).
    pub fn set_held(&self, name: &str, held: bool) {
        self.switch(name, "held", held.then_some(""));
    }

    /// Make a site take this long to answer (0: at once).
    pub fn set_slow(&self, name: &str, secs: u64) {
        let secs = secs.to_string();
        self.switch(name, "slow", (secs != "0").then_some(secs.as_str()));
    }

    /// Make a site answer every message it takes with `body` (HTTP 200,
    /// `{jti}` replaced by the message's), as a compromised or broken site
    /// might; `None`: answer as the plugin does.
    pub fn set_answer(&self, name: &str, body: Option<&str>) {
        self.switch(name, "answer", body);
    }

    /// The site `name` asks to connect to the dashboard `issuer` (its
    /// pending attempt, as the plugin keeps it), or no longer does (`None`).
    pub fn set_pending(&self, name: &str, issuer: &str, attempt: Option<&str>) {
        let f = self.dir.path().join(format!("{name}.pending.json"));
        match attempt {
            Some(a) => std::fs::write(
                f,
                serde_json::json!({
                    "issuer": issuer,
                    "attempt": a,
                    "started_at": time::OffsetDateTime::now_utc().unix_timestamp(),
                })
                .to_string(),
            )
            .unwrap(),
            None => {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    /// A connector site served here as `name`, on which `email` holds
    /// `role`: its id.
    pub async fn granted_site(&self, app: &TestApp, name: &str, email: &str, role: &str) -> String {
        let input = agency_sso::domain::sites::SiteInput {
            name: name.into(),
            client: "Acme".into(),
            url: self.url(name),
            profile: "connector".into(),
            ..Default::default()
        };
        let id = add_site(app, input).await;
        grant(app, email, &id, role).await;
        id
    }

    /// Launch `site_id` from the dashboard as `browser`, and follow the
    /// redirect to the stand-in site `name`, which signs the person in as
    /// the plugin does: the user it bound or created (`{"user": ...}`), or
    /// the refusal's code (`{"error": ...}`).
    pub async fn enter(
        &self,
        app: &TestApp,
        browser: &Browser,
        site_id: &str,
    ) -> serde_json::Value {
        let res = app.launch(browser, site_id).await;
        assert_eq!(res.status(), 303, "the launch answers 303");
        let location = res.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        assert!(location.starts_with(&self.base), "{location}");
        reqwest::get(location).await.unwrap().json().await.unwrap()
    }

    /// A user of the site `name`, as a site admin made it: `login` with
    /// the fields given (`email`, `subject` ("{issuer} {sub}", or "" for
    /// none), `role`, `admin`, `locked_at`, `sessions`, `app_passwords`,
    /// `last_seq`; the rest as for a new account).
    pub fn add_user(&self, name: &str, login: &str, fields: serde_json::Value) {
        let file = self.dir.path().join(format!("{name}.users.json"));
        let mut users = self.users(name);
        users.insert(login.to_string(), fields);
        std::fs::write(file, serde_json::Value::Object(users).to_string()).unwrap();
    }

    /// The users of the site `name`, by login, as it keeps them.
    pub fn users(&self, name: &str) -> serde_json::Map<String, serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.users.json")))
            .unwrap_or_default();
        match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => Default::default(),
        }
    }

    /// The user of the site `name` with this address, if any.
    pub fn user(&self, name: &str, email: &str) -> Option<serde_json::Value> {
        self.users(name)
            .into_values()
            .find(|u| u["email"].as_str() == Some(email))
    }

    /// How many times the site `name` fetched the dashboard's key set.
    pub fn key_fetches(&self, name: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.key-fetches")))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// How many messages reached a site, carried out or not (a slow site
    /// counts one as soon as it arrives).
    pub fn arrivals(&self, name: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.arrived")))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The site messages (connect, status, refresh-keys) a site took, in
    /// order: action and jti.
    pub fn site_received(&self, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.site-log")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The messages a site took (verified, not replays), in order: action,
    /// role, email, sub, seq, jti, and whether it found the user and
    /// whether the message was superseded.
    pub fn received(&self, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for StandInSites {
    fn drop(&mut self) {
        // The server and its workers (killing the server alone leaves them running).
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lasting grant made from the command line (no domain check).
pub async fn grant(app: &TestApp, email: &str, site: &str, role: &str) {
    agency_sso::service::access::grant(
        &app.state.db,
        &[],
        email,
        site,
        role,
        &agency_sso::domain::audit::Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap();
}

/// The key ring's version and the rows the master keys vouch for.
pub async fn key_ring(st: &agency_sso::service::Context) -> (i64, agency_sso::domain::keys::Ring) {
    let checked = agency_sso::service::keys::load(&st.db, &st.master_keys)
        .await
        .unwrap();
    (checked.version, checked.ring)
}

/// A site made by the command line's actor, as `agency-sso sites add` does; its id.
pub async fn add_site(app: &TestApp, input: agency_sso::domain::sites::SiteInput) -> String {
    let st = &app.state;
    agency_sso::service::sites::create_site(
        &st.db,
        &st.master_keys,
        input,
        &agency_sso::domain::audit::Actor::command_line(),
        app.clock.now_for_tests(),
    )
    .await
    .unwrap()
    .id
}
