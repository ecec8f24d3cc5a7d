//! The API's OpenAPI 3.1 document, made from the table of endpoints (the
//! same table the router is made from), and a page that shows it to people.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::resources::endpoints;
use super::BASE;
use crate::domain::api::Scope;
use crate::shared::html::escape;
use crate::web::AppState;

/// The problem codes an answer may carry, and what each means.
pub const PROBLEMS: &[(&str, &str)] = &[
    ("token_invalid", "No token, or not one of this dashboard's (401)."),
    ("token_revoked", "The token was revoked (401)."),
    ("token_expired", "The token has expired (401)."),
    ("token_maker_not_admin", "The admin who made the token is no longer an enabled admin (401)."),
    ("scope_missing", "The token lacks the scope the call needs (403)."),
    ("rate_limited", "Too many calls: wait for Retry-After seconds (429)."),
    ("bad_json", "The body is not JSON (400)."),
    ("body_too_large", "The body is larger than 256 KiB (413)."),
    ("invalid", "A value is wrong; `errors` names the fields (422)."),
    ("not_found", "No such thing (404)."),
    ("no_route", "No such route (404)."),
    ("unknown_site", "No site has that id or URL (404)."),
    ("unknown_person", "No person has that id (404)."),
    ("unknown_grant", "No such grant: the person has none on that site, or the team has no grant of that id (404)."),
    ("unknown_team", "No team has that id (404)."),
    ("duplicate_url", "Another site has that URL (409)."),
    ("conflict", "The site changed since the version given (409)."),
    ("refused", "The service refused the change; `detail` says why (409)."),
    ("last_admin", "The last admin who can act cannot be disabled (409)."),
    ("own_account", "Nobody disables themselves (409)."),
    ("idempotency_key_invalid", "The Idempotency-Key header is malformed (400)."),
    ("idempotency_key_reused", "The Idempotency-Key was used for another request (422)."),
    ("request_in_progress", "A request with this Idempotency-Key is still being carried out (409)."),
    ("unavailable", "The database cannot be reached; try again (503)."),
];

/// The document, as JSON.
pub fn build(public_origin: &str) -> Value {
    let problem = json!({
        "description": "Problem details (RFC 9457)",
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    });
    let mut paths: Map<String, Value> = Map::new();
    for e in endpoints() {
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
            })
            .collect();
        params.extend(e.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        }));
        if e.method != axum::http::Method::GET {
            params.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "A retried request with the same key and body acts once and gets the first answer again (kept a day).",
                "schema": { "type": "string", "maxLength": 255 }
            }));
        }
        let mut op = json!({
            "operationId": operation_id(&e.method, e.path),
            "summary": e.summary,
            "security": [ { "token": [e.scope.as_str()] } ],
            "x-scope": e.scope.as_str(),
            "parameters": params,
            "responses": {
                e.status.to_string(): {
                    "description": "Done",
                    "content": { "application/json": { "schema": (e.response)() } }
                },
                "default": problem,
            }
        });
        if !e.description.is_empty() {
            op["description"] = json!(e.description);
        }
        if let Some(req) = e.request {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": req() } }
            });
        }
        let item = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        item[e.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "agency-sso admin API",
            "version": crate::VERSION,
            "description": "Sites, grants, people, keys and the audit log of an agency-sso dashboard. Calls carry a token made in the console (Admin › API tokens) or with `agency-sso tokens create`: `Authorization: Bearer asso_…`. Each call is recorded in the audit log as the token (its name and the admin who made it)."
        },
        "servers": [ { "url": format!("{public_origin}{BASE}") } ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": format!("An API token. Scopes: {}.", Scope::ALL.map(|s| s.as_str()).join(", ")) }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "code": { "type": "string", "enum": PROBLEMS.iter().map(|(c, _)| *c).collect::<Vec<_>>() },
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `GET /sites/{id}/grants` → `getSitesIdGrants`.
fn operation_id(method: &axum::http::Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for word in path.split(['/', '-', '{', '}']).filter(|w| !w.is_empty()) {
        let mut c = word.chars();
        if let Some(first) = c.next() {
            id.push(first.to_ascii_uppercase());
            id.push_str(c.as_str());
        }
    }
    id
}

/// `GET /api/v1/openapi.json`
pub async fn document(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        build(&st.config.public_origin).to_string(),
    )
        .into_response()
}

/// `GET /api/v1/docs`: the routes for people, each with its scope, and
/// the problem codes (no script: it works where a strict CSP holds).
pub async fn page(State(st): State<AppState>) -> Html<String> {
    let mut rows = String::new();
    for e in endpoints() {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{BASE}{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            e.method,
            escape(e.path),
            e.scope.as_str(),
            escape(e.summary)
        ));
    }
    let problems: String = PROBLEMS
        .iter()
        .map(|(c, d)| {
            format!(
                "<dt id=\"problem-{c}\"><code>{c}</code></dt><dd>{}</dd>",
                escape(d)
            )
        })
        .collect();
    let scopes: String = Scope::ALL
        .iter()
        .map(|s| {
            format!(
                "<li><code>{}</code>: {}</li>",
                s.as_str(),
                escape(s.describe())
            )
        })
        .collect();
    let origin = escape(&st.config.public_origin);
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>agency-sso admin API</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/pkg/agency-sso.css\"></head><body><main class=\"api-docs\">\
         <h1>agency-sso admin API</h1>\
         <p>JSON over HTTPS at <code>{origin}{BASE}</code>. Send a token made in the console (Admin › API tokens): \
         <code>Authorization: Bearer asso_…</code>. The machine-readable description is <a href=\"{BASE}/openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>\
         <p>Writes take an <code>Idempotency-Key</code> header: the same request sent again with the same key acts once and gets the first answer (marked <code>Idempotent-Replayed: true</code>). \
         Lists page with <code>limit</code> and <code>cursor</code> (the audit log with <code>before</code>). Errors are problem details (RFC 9457) with a stable <code>code</code>.</p>\
         <h2>Routes</h2><table class=\"list\"><thead><tr><th>Method</th><th>Path</th><th>Scope</th><th>What it does</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Scopes</h2><ul>{scopes}</ul>\
         <h2>Problems</h2><dl>{problems}</dl></main></body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_route_once_with_its_scope() {
        let doc = build("https://sso.example");
        let table = endpoints();
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                n += 1;
                let e = table
                    .iter()
                    .find(|e| e.path == path && e.method.as_str().eq_ignore_ascii_case(method))
                    .unwrap_or_else(|| panic!("{method} {path} is not a route"));
                assert_eq!(op["x-scope"], e.scope.as_str());
            }
        }
        assert_eq!(n, table.len());
        assert_eq!(
            operation_id(&axum::http::Method::GET, "/sites/{id}/grants"),
            "getSitesIdGrants"
        );
    }
}
