//! Assembles the service: state, router and its layers, and serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, Request};
use axum::{middleware, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};

use crate::app::{shell, App};
use crate::config::Config;
use crate::service::{self, clock_for, Clock, Context};
use crate::store::sessions::DbSessionStore;
use crate::store::Db;
use crate::web::limits::Limiter;
use crate::web::oidc::OidcProvider;
use crate::web::{self, security, AppState, Services};

/// Leptos settings: from the `LEPTOS_*` variables cargo-leptos sets, else
/// the layout cargo-leptos builds (`target/site`).
pub fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    LeptosOptions::builder()
        .output_name(var("LEPTOS_OUTPUT_NAME", "agency-sso"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .build()
}

/// The address to listen on: SSO_BIND, else LEPTOS_SITE_ADDR, else 127.0.0.1:3000.
pub fn bind_addr(config: &Config) -> SocketAddr {
    config
        .bind
        .or_else(|| std::env::var("LEPTOS_SITE_ADDR").ok()?.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)))
}

/// Whether the configured identity provider answers OpenID Connect
/// discovery (`agency-sso check`).
pub async fn discover_provider(config: &Config) -> Result<(), String> {
    let provider = OidcProvider::new(config).map_err(|e| format!("{e:#}"))?;
    provider
        .client()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Open the services and assemble the web side's state around them.
pub async fn build_state(
    config: Config,
    clock: Arc<dyn Clock>,
    leptos: LeptosOptions,
) -> anyhow::Result<AppState> {
    let oidc = Arc::new(OidcProvider::new(&config)?);
    let limits = Arc::new(Limiter::new(config.limits));
    let core = Context::open(config, clock).await?;
    Ok(AppState::new(Services {
        core,
        oidc,
        metrics: Arc::default(),
        limits,
        leptos,
    }))
}

/// The pages' routes, worked out once per process. Working them out runs
/// the app with resource loading switched off by a process-wide flag
/// (leptos_server's `SuppressResourceLoad`): a page whose data started
/// loading at that moment would wait forever (leptos-rs/leptos#4773), so
/// a router built while another serves (a second instance in one process,
/// as the tests run them) must not work them out again.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole service as one router.
pub fn router(state: AppState) -> Router {
    let https = state.config.is_https();
    let client_timeout = state.config.client_timeout;
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        // `__Host-` binds the cookie to this exact origin (Secure, Path=/, no Domain).
        .with_name(if https {
            "__Host-agency-sso"
        } else {
            "agency-sso"
        })
        .with_secure(https)
        .with_http_only(true)
        // Lax: the provider's redirect back is a top-level cross-site GET that must carry it.
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // Save on every response so the inactivity expiry moves with use.
        .with_always_save(true)
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            state.config.session.idle_secs,
        )));

    let request_id = HeaderName::from_static("x-request-id");
    let observe = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                // The path only: query strings may hold codes or state.
                .make_span_with(|req: &Request<Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id));

    let routes = route_list();
    let leptos = state.leptos.clone();
    let (assets_path, assets) = web::assets(&leptos);
    Router::new()
        .merge(web::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            {
                // The pages and server functions reach the services only.
                let core = state.core.clone();
                move || provide_context(core.clone())
            },
            move || page_shell(leptos.clone()),
        )
        .fallback({
            // The site's other files (favicon, the connector's zip): the
            // release binary's own, else the site folder's; else the
            // app's "not found" page.
            let files = leptos_axum::file_and_error_handler::<AppState, _>(page_shell);
            move |uri: axum::http::Uri,
                  state: axum::extract::State<AppState>,
                  req: Request<Body>| {
                let embedded = web::site_files::embedded()
                    .then(|| web::site_files::answer(req.method(), uri.path(), req.headers()))
                    .flatten();
                let files = files.clone();
                async move {
                    match embedded {
                        Some(answer) => answer,
                        None => files(uri, state, req).await,
                    }
                }
            }
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::admin::admin_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::same_origin_only,
        ))
        .layer(middleware::from_fn(web::note_origin))
        .layer(sessions)
        .layer(middleware::from_fn(web::pages::explain_bare_errors))
        // The admin API: tokens, not sessions (no cookie is read, so no
        // cross-site request can act); the per-client limits still apply.
        .merge(web::api::routes())
        // Outside the session layer: a request over a limit never touches
        // the session store.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::limits::by_client,
        ))
        // Public, cacheable, sessionless: the key set, discovery, health, the bundle.
        .merge(web::public_routes())
        .nest_service(&assets_path, assets)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::metrics::observe,
        ))
        // Bounded: the largest body is a sites CSV import (1 MB, form-encoded).
        .layer(RequestBodyLimitLayer::new(4 << 20))
        // Slow clients: each part of a body must come within the client
        // timeout, and a whole request is answered (408) within a bound.
        .layer(RequestBodyTimeoutLayer::new(client_timeout))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(observe)
        .with_state(state)
}

/// Delete expired sessions now and then, so the table does not grow forever.
pub fn spawn_session_cleanup(db: Db) {
    tokio::spawn(async move {
        let store = DbSessionStore::new(db);
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "cannot delete expired sessions");
            }
        }
    });
}

/// Run the dashboard until SIGTERM or Ctrl-C; in-flight requests finish.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.oidc_client().map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = bind_addr(&config);
    let clock = clock_for(&config);
    let state = build_state(config, clock, leptos_options(addr)).await?;
    record_start(&state).await?;
    spawn_session_cleanup(state.db.clone());
    service::keys::spawn_maintenance(state.keys.clone(), state.clock.clone());
    service::messages::spawn_worker(state.core.clone());
    service::fleet::spawn_worker(state.core.clone());
    service::notify::spawn_worker(state.core.clone());
    service::stream::spawn_worker(state.core.clone());
    crate::service::audit::spawn_maintenance(
        state.db.clone(),
        state.keys.clone(),
        state.clock.clone(),
        state.config.public_url.clone(),
        state.config.audit,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(
        public_url = %state.config.public_url,
        listen = %addr,
        database = ?state.config.db_kind,
        oidc_issuer = %state.config.oidc.issuer,
        allowed_domains = ?state.config.sign_in.allowed_domains,
        signing_key = state.keys.signer().map(|s| s.kid().to_string()).unwrap_or_default(),
        master_key = state.master_keys.current().id(),
        "agency-sso is serving"
    );
    let client_timeout = state.config.client_timeout;
    serve_connections(listener, router(state), client_timeout, shutdown_signal()).await;
    tracing::info!("agency-sso stopped");
    Ok(())
}

/// The most a whole request may take, body included (a CSV import is the
/// longest); past it the answer is 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Accept connections and serve `app` on them until `shutdown` resolves,
/// then let in-flight requests finish. Unlike `axum::serve`, a client must
/// send each request head within `client_timeout` (which also closes idle
/// keep-alive connections), so slow clients cannot hold connections open.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    client_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::Service;

    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(client_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make.call(remote).await;
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("requests still running after the drain timeout were cut");
        }
    }
}

/// Record the start of the service with its effective non-secret configuration.
pub async fn record_start(st: &AppState) -> anyhow::Result<()> {
    use crate::domain::audit::{kind, Actor};
    let c = &st.config;
    let event = Actor::system()
        .did(st.clock.now(), kind::SERVICE_STARTED)
        .detail(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "public_url": c.public_url,
            "listen": bind_addr(c).to_string(),
            "database": format!("{:?}", c.db_kind),
            "oidc_issuer": c.oidc.issuer,
            "oidc_client_id": c.oidc.client_id,
            "allowed_domains": c.sign_in.allowed_domains,
            "admin_emails": c.sign_in.admin_emails,
            "require_hosted_domain": c.sign_in.require_hosted_domain,
            "key_bits": c.keys.bits,
            "jwks_max_age": c.keys.jwks_max_age,
            "session_idle_secs": c.session.idle_secs,
            "session_absolute_secs": c.session.absolute_secs,
            "audit_checkpoint_secs": c.audit.checkpoint_secs,
            "audit_retention_days": c.audit.retention_days,
            "master_key": st.master_keys.current().id(),
            "signing_key": st.keys.signer().map(|s| s.kid().to_string()),
        }));
    crate::store::audit::record(&st.db, &[event])
        .await
        .map_err(|e| anyhow::anyhow!("cannot record the start of the service: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The app's HTML shell, told whether the hydrate bundle is there yet (a
/// development server answers while it is still building).
fn page_shell(options: LeptosOptions) -> impl IntoView {
    let ready = web::site_files::bundle_ready(
        &options.site_root,
        &options.site_pkg_dir,
        &options.output_name,
    );
    shell(options, ready)
}
