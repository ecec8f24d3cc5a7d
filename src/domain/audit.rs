//! The audit trail: what a record says, its canonical encoding, the hash
//! chain that makes alteration, deletion, insertion and reordering
//! detectable, signed checkpoints of the chain head, and the walk that
//! verifies a stored chain and names the first record that is wrong.
//!
//! Each record's hash is SHA-256 over a domain tag, the previous record's
//! hash and the record's fields, each length-prefixed in a fixed order. The
//! position (`seq`) is not hashed: order is carried by the links, so a
//! record moved elsewhere breaks the chain where it now sits.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Event kinds, as stored and filtered on.
pub mod kind {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_IN_FAILED: &str = "sign_in_failed";
    pub const SIGN_OUT: &str = "sign_out";
    pub const SESSION_ENDED: &str = "session_ended";
    pub const LAUNCH: &str = "launch";
    pub const LAUNCH_REFUSED: &str = "launch_refused";
    pub const SITE_CREATED: &str = "site_created";
    pub const SITE_CHANGED: &str = "site_changed";
    pub const GRANT_SET: &str = "grant_set";
    pub const GRANT_REVOKED: &str = "grant_revoked";
    pub const PERSON_CHANGED: &str = "person_changed";
    pub const KEY_CREATED: &str = "key_created";
    pub const KEY_ACTIVATED: &str = "key_activated";
    pub const KEY_RETIRED: &str = "key_retired";
    pub const KEY_REMOVED: &str = "key_removed";
    pub const KEY_REVOKED: &str = "key_revoked";
    pub const KEY_REWRAPPED: &str = "key_rewrapped";
    pub const SERVICE_STARTED: &str = "service_started";
    pub const AUDIT_PRUNED: &str = "audit_pruned";
    pub const SITE_DELETED: &str = "site_deleted";
    pub const SITES_IMPORTED: &str = "sites_imported";
    pub const GRANTS_IMPORTED: &str = "grants_imported";
    pub const PERSON_INVITED: &str = "person_invited";
    pub const INVITATION_WITHDRAWN: &str = "invitation_withdrawn";
    pub const TEAM_CREATED: &str = "team_created";
    pub const TEAM_DELETED: &str = "team_deleted";
    pub const TEAM_MEMBER_ADDED: &str = "team_member_added";
    pub const TEAM_MEMBER_REMOVED: &str = "team_member_removed";
    pub const TEAM_GRANT_SET: &str = "team_grant_set";
    pub const TEAM_GRANT_REVOKED: &str = "team_grant_revoked";
    pub const ADMIN_REFUSED: &str = "admin_refused";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const DATABASE_BACKED_UP: &str = "database_backed_up";
    pub const GRANT_EXPIRED: &str = "grant_expired";
    pub const SITE_SESSIONS_END_REQUESTED: &str = "site_sessions_end_requested";
    pub const SITE_MESSAGE_DELIVERED: &str = "site_message_delivered";
    pub const SITE_MESSAGE_FAILED: &str = "site_message_failed";
    pub const SITE_MESSAGE_CANCELLED: &str = "site_message_cancelled";
    pub const KEY_ROWS_BOUND: &str = "key_rows_bound";
    pub const KEY_REJECTED: &str = "key_rejected";
    pub const IDENTITY_CONFIRMED: &str = "identity_confirmed";
    pub const IDENTITY_REFUSED: &str = "identity_refused";
    pub const CONNECT_CODE_CREATED: &str = "connect_code_created";
    pub const SITE_CONNECTED: &str = "site_connected";
    pub const SITE_CONNECT_REFUSED: &str = "site_connect_refused";
    pub const KEY_ACTIVATION_HELD: &str = "key_activation_held";
    pub const ELEVATION_REQUESTED: &str = "elevation_requested";
    pub const ELEVATION_CANCELLED: &str = "elevation_cancelled";
    pub const ELEVATION_APPROVED: &str = "elevation_approved";
    pub const ELEVATION_SELF_APPROVED: &str = "elevation_self_approved";
    pub const ELEVATION_DENIED: &str = "elevation_denied";
    pub const ELEVATION_STARTED: &str = "elevation_started";
    pub const ELEVATION_EXPIRED: &str = "elevation_expired";
    pub const ELEVATION_ENDED_EARLY: &str = "elevation_ended_early";
    pub const ELEVATION_ENDED: &str = "elevation_ended";
    pub const API_TOKEN_CREATED: &str = "api_token_created";
    pub const API_TOKEN_REVOKED: &str = "api_token_revoked";
    /// A call to the admin API that no service recorded itself: a read, or
    /// a refusal.
    pub const API_CALL: &str = "api_call";
    pub const STREAM_DESTINATION_ADDED: &str = "stream_destination_added";
    pub const STREAM_DESTINATION_REMOVED: &str = "stream_destination_removed";

    /// Every kind, for the filter's choices.
    pub const ALL: [&str; 60] = [
        SIGN_IN,
        SIGN_IN_FAILED,
        SIGN_OUT,
        SESSION_ENDED,
        LAUNCH,
        LAUNCH_REFUSED,
        SITE_CREATED,
        SITE_CHANGED,
        GRANT_SET,
        GRANT_REVOKED,
        PERSON_CHANGED,
        KEY_CREATED,
        KEY_ACTIVATED,
        KEY_RETIRED,
        KEY_REMOVED,
        KEY_REVOKED,
        KEY_REWRAPPED,
        SERVICE_STARTED,
        AUDIT_PRUNED,
        SITE_DELETED,
        SITES_IMPORTED,
        GRANTS_IMPORTED,
        PERSON_INVITED,
        INVITATION_WITHDRAWN,
        TEAM_CREATED,
        TEAM_DELETED,
        TEAM_MEMBER_ADDED,
        TEAM_MEMBER_REMOVED,
        TEAM_GRANT_SET,
        TEAM_GRANT_REVOKED,
        ADMIN_REFUSED,
        RATE_LIMITED,
        DATABASE_BACKED_UP,
        GRANT_EXPIRED,
        SITE_SESSIONS_END_REQUESTED,
        SITE_MESSAGE_DELIVERED,
        SITE_MESSAGE_FAILED,
        SITE_MESSAGE_CANCELLED,
        KEY_ROWS_BOUND,
        KEY_REJECTED,
        IDENTITY_CONFIRMED,
        IDENTITY_REFUSED,
        CONNECT_CODE_CREATED,
        SITE_CONNECTED,
        SITE_CONNECT_REFUSED,
        KEY_ACTIVATION_HELD,
        ELEVATION_REQUESTED,
        ELEVATION_CANCELLED,
        ELEVATION_APPROVED,
        ELEVATION_SELF_APPROVED,
        ELEVATION_DENIED,
        ELEVATION_STARTED,
        ELEVATION_EXPIRED,
        ELEVATION_ENDED_EARLY,
        ELEVATION_ENDED,
        API_TOKEN_CREATED,
        API_TOKEN_REVOKED,
        API_CALL,
        STREAM_DESTINATION_ADDED,
        STREAM_DESTINATION_REMOVED,
    ];
}

/// Outcomes, as stored and filtered on.
pub mod outcome {
    pub const SUCCESS: &str = "success";
    pub const FAILURE: &str = "failure";
    pub const REFUSED: &str = "refused";
    pub const ALL: [&str; 3] = [SUCCESS, FAILURE, REFUSED];
}

/// Who acted when nobody signed in did: the schedule, start-up.
pub const SYSTEM: &str = "system";

/// Where a request came from, for the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl Origin {
    /// A command run on the server itself.
    pub fn command_line() -> Origin {
        Origin {
            ip: "local".into(),
            user_agent: "agency-sso command line".into(),
            request_id: String::new(),
        }
    }
}

/// Who acts, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// An e-mail address, `system` or `command line`.
    pub who: String,
    pub origin: Origin,
}

impl Actor {
    pub fn person(email: &str, origin: Origin) -> Actor {
        Actor {
            who: email.into(),
            origin,
        }
    }

    /// The service itself: the key schedule, start-up, retention.
    pub fn system() -> Actor {
        Actor {
            who: SYSTEM.into(),
            origin: Origin::default(),
        }
    }

    /// An admin command run on the server.
    pub fn command_line() -> Actor {
        Actor {
            who: "command line".into(),
            origin: Origin::command_line(),
        }
    }

    /// A successful event by this actor.
    pub fn did(&self, at: i64, kind: &str) -> Event {
        Event::new(at, kind, outcome::SUCCESS, &self.who, &self.origin)
    }
}

/// One audit record's content (everything but its place in the chain).
/// Empty strings stand for "not applicable"; `detail` is a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds, UTC.
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    /// Who did it: an e-mail address, `system`, or `command line`.
    pub actor: String,
    /// The person it concerns (the actor for sign-ins and launches, the
    /// person changed or granted for admin changes).
    pub subject: String,
    pub site_id: String,
    pub site_url: String,
    pub client: String,
    pub role: String,
    /// A launch's token id (unique).
    pub jti: Option<String>,
    /// A refusal's or failure's code.
    pub reason: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub detail: String,
}

/// Longest stored length of the free-text fields that come from outside.
const MAX_TEXT: usize = 2000;

fn bounded(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

impl Event {
    /// An event of `kind` with `outcome`, by `actor`, from `origin`.
    pub fn new(at: i64, kind: &str, outcome: &str, actor: &str, origin: &Origin) -> Event {
        Event {
            at,
            kind: kind.into(),
            outcome: outcome.into(),
            actor: bounded(actor),
            ip: bounded(&origin.ip),
            user_agent: bounded(&origin.user_agent),
            request_id: bounded(&origin.request_id),
            detail: "{}".into(),
            ..Event::default()
        }
    }

    pub fn subject(mut self, email: &str) -> Event {
        self.subject = bounded(email);
        self
    }

    pub fn site(mut self, id: &str, url: &str, client: &str) -> Event {
        self.site_id = bounded(id);
        self.site_url = bounded(url);
        self.client = bounded(client);
        self
    }

    pub fn role(mut self, role: &str) -> Event {
        self.role = bounded(role);
        self
    }

    pub fn reason(mut self, code: &str) -> Event {
        self.reason = bounded(code);
        self
    }

    /// The detail object (keys sorted: serde_json's map is ordered).
    pub fn detail(mut self, detail: serde_json::Value) -> Event {
        self.detail = detail.to_string();
        self
    }

    /// The canonical encoding that is hashed.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.detail.len());
        out.extend_from_slice(&self.at.to_be_bytes());
        for s in [
            &self.kind,
            &self.outcome,
            &self.actor,
            &self.subject,
            &self.site_id,
            &self.site_url,
            &self.client,
            &self.role,
        ] {
            push(&mut out, s);
        }
        match &self.jti {
            None => out.push(0),
            Some(j) => {
                out.push(1);
                push(&mut out, j);
            }
        }
        for s in [
            &self.reason,
            &self.ip,
            &self.user_agent,
            &self.request_id,
            &self.detail,
        ] {
            push(&mut out, s);
        }
        out
    }
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The hash of a record that follows `prev`.
pub fn chain_hash(prev: &[u8; 32], event: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"agency-sso audit record v1\0");
    h.update(prev);
    h.update(event.canonical());
    h.finalize().into()
}

pub fn to_hex(b: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub seq: i64,
    #[serde(flatten)]
    pub event: Event,
    pub prev_hash: String,
    pub hash: String,
}

impl Stored {
    /// The record as the person it concerns sees it in their own activity:
    /// what was done, by whom and when, but not where from when someone
    /// else (an admin) did it: no address, user agent or request id.
    pub fn for_subject(mut self, viewer: &str) -> Stored {
        if !self.event.actor.eq_ignore_ascii_case(viewer) {
            self.event.ip.clear();
            self.event.user_agent.clear();
            self.event.request_id.clear();
        }
        self
    }
}

/// The first thing wrong with a stored chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("record #{seq} was altered: its content does not match its hash")]
    Altered { seq: i64 },
    #[error("record(s) #{from}..#{to} were deleted")]
    Deleted { from: i64, to: i64 },
    #[error("a record right before #{seq} was deleted (the numbers were closed up)")]
    DeletedBefore { seq: i64 },
    #[error("record #{seq} was inserted: it is not part of the chain")]
    Inserted { seq: i64 },
    #[error("record #{seq} was moved (reordered): it belongs after #{after}")]
    Reordered { seq: i64, after: i64 },
    #[error("record #{seq} does not follow #{prev} in the chain")]
    Broken { seq: i64, prev: i64 },
    #[error("the checkpoint at #{seq} does not match the chain: the records up to #{seq} were rewritten")]
    CheckpointMismatch { seq: i64 },
    #[error("the checkpoint at #{seq} is not validly signed: {why}")]
    CheckpointForged { seq: i64, why: String },
    #[error(
        "the chain ends at #{last} but the head says #{head}: records after #{last} were deleted"
    )]
    Truncated { last: i64, head: i64 },
    #[error("the chain head was altered (it names #{head} with another hash)")]
    HeadAltered { head: i64 },
}

impl Problem {
    /// The record the problem is found at.
    pub fn seq(&self) -> i64 {
        match *self {
            Problem::Altered { seq }
            | Problem::DeletedBefore { seq }
            | Problem::Inserted { seq }
            | Problem::Reordered { seq, .. }
            | Problem::Broken { seq, .. }
            | Problem::CheckpointMismatch { seq }
            | Problem::CheckpointForged { seq, .. } => seq,
            Problem::Deleted { from, .. } => from,
            Problem::Truncated { last, .. } => last + 1,
            Problem::HeadAltered { head } => head,
        }
    }
}

/// What a walk over an intact chain saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub checkpoints: u64,
}

/// Walks a chain in `seq` order, one record at a time (constant memory
/// but for the checkpoints). A link that breaks is classified with one
/// record of look-ahead.
pub struct Walker {
    /// (seq, hash) of the last two records accepted; the anchor before the first.
    prev: Option<(i64, [u8; 32])>,
    /// The link of the last record accepted (the hash of the one before it).
    last_prev: Option<[u8; 32]>,
    anchor: (i64, [u8; 32]),
    /// A record whose link broke, waiting for the next one to say why.
    suspect: Option<(i64, [u8; 32], [u8; 32])>,
    checkpoints: Vec<(i64, [u8; 32])>,
    summary: Summary,
}

impl Walker {
    /// Start after `anchor`: (0, GENESIS) for a whole chain, or the pruning
    /// checkpoint's (seq, hash). `checkpoints` are the signature-checked
    /// (seq, hash) pairs to compare against the chain on the way.
    pub fn new(anchor: (i64, [u8; 32]), mut checkpoints: Vec<(i64, [u8; 32])>) -> Walker {
        checkpoints.retain(|c| c.0 > anchor.0);
        checkpoints.sort_by_key(|c| std::cmp::Reverse(c.0));
        Walker {
            prev: None,
            last_prev: None,
            anchor,
            suspect: None,
            checkpoints,
            summary: Summary::default(),
        }
    }

    fn last(&self) -> (i64, [u8; 32]) {
        self.prev.unwrap_or(self.anchor)
    }

    /// The next stored record, in `seq` order.
    pub fn push(&mut self, r: &Stored) -> Result<(), Problem> {
        let hash = from_hex(&r.hash).ok_or(Problem::Altered { seq: r.seq })?;
        let prev_hash = from_hex(&r.prev_hash).ok_or(Problem::Altered { seq: r.seq })?;
        if chain_hash(&prev_hash, &r.event) != hash {
            return Err(Problem::Altered { seq: r.seq });
        }
        if let Some((s, s_prev, s_hash)) = self.suspect.take() {
            let (last_seq, last_hash) = self.last();
            if prev_hash == s_hash {
                return Err(Problem::DeletedBefore { seq: s });
            }
            if s_prev == hash {
                return Err(Problem::Reordered {
                    seq: s,
                    after: r.seq,
                });
            }
            if prev_hash == last_hash {
                return Err(Problem::Inserted { seq: s });
            }
            return Err(Problem::Broken {
                seq: s,
                prev: last_seq,
            });
        }
        let (last_seq, last_hash) = self.last();
        if prev_hash != last_hash {
            if r.seq > last_seq + 1 {
                return Err(Problem::Deleted {
                    from: last_seq + 1,
                    to: r.seq - 1,
                });
            }
            if self.last_prev == Some(prev_hash) {
                return Err(Problem::Inserted { seq: last_seq });
            }
            // Moved, inserted or the record before it deleted: the next one tells.
            self.suspect = Some((r.seq, prev_hash, hash));
            return Ok(());
        }
        if r.seq != last_seq + 1 {
            // The links hold but the numbering was edited.
            return Err(Problem::Broken {
                seq: r.seq,
                prev: last_seq,
            });
        }
        while let Some(&(cseq, chash)) = self.checkpoints.last() {
            if cseq > r.seq {
                break;
            }
            self.checkpoints.pop();
            if cseq < r.seq || chash != hash {
                return Err(Problem::CheckpointMismatch { seq: cseq });
            }
            self.summary.checkpoints += 1;
        }
        self.last_prev = Some(prev_hash);
        self.prev = Some((r.seq, hash));
        self.summary.records += 1;
        self.summary.first.get_or_insert(r.seq);
        self.summary.last = Some(r.seq);
        Ok(())
    }

    /// The end of the stored records; `head` is the chain head as stored
    /// (seq, hash), updated by every append.
    pub fn finish(mut self, head: (i64, &str)) -> Result<Summary, Problem> {
        let (last_seq, last_hash) = self.last();
        if let Some((s, _, _)) = self.suspect.take() {
            // Nothing after it: a foreign record at the end.
            return Err(if s == last_seq + 1 {
                Problem::Inserted { seq: s }
            } else {
                Problem::Broken {
                    seq: s,
                    prev: last_seq,
                }
            });
        }
        if let Some(&(cseq, _)) = self.checkpoints.last() {
            return Err(if cseq > last_seq {
                Problem::Truncated {
                    last: last_seq,
                    head: cseq,
                }
            } else {
                Problem::CheckpointMismatch { seq: cseq }
            });
        }
        if head.0 > last_seq {
            return Err(Problem::Truncated {
                last: last_seq,
                head: head.0,
            });
        }
        if head.0 < last_seq {
            return Err(Problem::Inserted { seq: head.0 + 1 });
        }
        if from_hex(head.1) != Some(last_hash) {
            return Err(Problem::HeadAltered { head: head.0 });
        }
        Ok(self.summary)
    }
}

/// The claims of a checkpoint: the chain head at a moment, signed (RS256)
/// with the dashboard's signing key. Anyone holding one can later check
/// that the chain up to `seq` is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    pub iss: String,
    pub typ: String,
    pub seq: i64,
    pub hash: String,
    pub iat: i64,
}

pub const CHECKPOINT_TYP: &str = "agency-sso-audit-checkpoint";
/// The JOSE header's `typ` of a checkpoint (explicit typing, RFC 8725 3.11).
pub const CHECKPOINT_JOSE_TYP: &str = "audit-checkpoint+jwt";

impl CheckpointClaims {
    pub fn new(issuer: &str, seq: i64, hash: &str, now: i64) -> CheckpointClaims {
        CheckpointClaims {
            iss: issuer.into(),
            typ: CHECKPOINT_TYP.into(),
            seq,
            hash: hash.into(),
            iat: now,
        }
    }
}

/// The `kid` a checkpoint names in its header.
pub fn checkpoint_kid(jws: &str) -> Option<String> {
    jsonwebtoken::decode_header(jws).ok()?.kid
}

/// Check a checkpoint's signature with the RSA public key (`n`, `e`,
/// base64url) of the key it names; returns its claims.
pub fn verify_checkpoint(jws: &str, n: &str, e: &str) -> Result<CheckpointClaims, String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let header = jsonwebtoken::decode_header(jws).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some(CHECKPOINT_JOSE_TYP) {
        return Err("its header does not say it is an audit checkpoint".into());
    }
    let data =
        jsonwebtoken::decode::<CheckpointClaims>(jws, &key, &v).map_err(|e| e.to_string())?;
    if data.claims.typ != CHECKPOINT_TYP {
        return Err("not an audit checkpoint".into());
    }
    if from_hex(&data.claims.hash).is_none() {
        return Err("the checkpoint's hash is malformed".into());
    }
    Ok(data.claims)
}

/// A CSV cell that spreadsheets show as text: quoted, and a leading
/// `= + - @` (or tab, carriage return) neutralised with a quote mark so a
/// crafted site name cannot become a formula.
pub fn csv_cell(s: &str) -> String {
    let risky = needs_formula_guard(s);
    let mut out = String::with_capacity(s.len() + 3);
    out.push('"');
    if risky {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether [`csv_cell`] puts a quote mark before `s`: it starts with
/// `= + - @`, a tab or a carriage return, after any quote marks it already
/// has (so that taking one guard off on import gives back `'=x` as well).
pub fn needs_formula_guard(s: &str) -> bool {
    matches!(
        s.trim_start_matches('\'').chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
}

pub const CSV_HEADER: &str = "seq,time_utc,event,outcome,actor,person,site_url,site_id,client,role,jti,reason,ip,user_agent,request_id,detail,hash";

/// `at` as RFC 3339 UTC.
pub fn utc(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

impl Stored {
    pub fn csv_line(&self) -> String {
        let e = &self.event;
        let cells = [
            self.seq.to_string(),
            utc(e.at),
            e.kind.clone(),
            e.outcome.clone(),
            e.actor.clone(),
            e.subject.clone(),
            e.site_url.clone(),
            e.site_id.clone(),
            e.client.clone(),
            e.role.clone(),
            e.jti.clone().unwrap_or_default(),
            e.reason.clone(),
            e.ip.clone(),
            e.user_agent.clone(),
            e.request_id.clone(),
            e.detail.clone(),
            self.hash.clone(),
        ];
        let mut line = cells
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(",");
        line.push_str("\r\n");
        line
    }

    pub fn json_line(&self) -> String {
        let e = &self.event;
        let detail: serde_json::Value =
            serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail.clone()));
        let mut line = serde_json::json!({
            "seq": self.seq,
            "time": utc(e.at),
            "at": e.at,
            "event": e.kind,
            "outcome": e.outcome,
            "actor": e.actor,
            "person": e.subject,
            "site_url": e.site_url,
            "site_id": e.site_id,
            "client": e.client,
            "role": e.role,
            "jti": e.jti,
            "reason": e.reason,
            "ip": e.ip,
            "user_agent": e.user_agent,
            "request_id": e.request_id,
            "detail": detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        })
        .to_string();
        line.push('\n');
        line
    }
}

/// Audit settings, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// How often the chain head is signed, seconds.
    pub checkpoint_secs: u64,
    /// Records older than this many days are pruned (None: kept for good).
    pub retention_days: Option<i64>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            checkpoint_secs: 3600,
            retention_days: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: i64) -> Event {
        Event::new(
            1_700_000_000 + i,
            kind::LAUNCH,
            outcome::SUCCESS,
            "sam@agency.test",
            &Origin::default(),
        )
        .subject("sam@agency.test")
        .detail(serde_json::json!({ "n": i }))
    }

    fn chain(n: i64) -> Vec<Stored> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let event = ev(seq);
                let h = chain_hash(&prev, &event);
                let s = Stored {
                    seq,
                    event,
                    prev_hash: to_hex(&prev),
                    hash: to_hex(&h),
                };
                prev = h;
                s
            })
            .collect()
    }

    fn walk(records: &[Stored], head: (i64, &str)) -> Result<Summary, Problem> {
        let mut w = Walker::new((0, GENESIS), Vec::new());
        for r in records {
            w.push(r)?;
        }
        w.finish(head)
    }

    fn head(c: &[Stored]) -> (i64, String) {
        let l = c.last().unwrap();
        (l.seq, l.hash.clone())
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(10);
        let (hs, hh) = head(&c);
        let s = walk(&c, (hs, &hh)).unwrap();
        assert_eq!((s.records, s.first, s.last), (10, Some(1), Some(10)));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = ev(1);
        let h = chain_hash(&GENESIS, &base);
        let mut variants = Vec::new();
        let mut e = base.clone();
        e.at += 1;
        variants.push(e);
        for f in 0..14 {
            let mut e = base.clone();
            let s = match f {
                0 => &mut e.kind,
                1 => &mut e.outcome,
                2 => &mut e.actor,
                3 => &mut e.subject,
                4 => &mut e.site_id,
                5 => &mut e.site_url,
                6 => &mut e.client,
                7 => &mut e.role,
                8 => &mut e.reason,
                9 => &mut e.ip,
                10 => &mut e.user_agent,
                11 => &mut e.request_id,
                12 => &mut e.detail,
                _ => {
                    e.jti = Some(String::new());
                    variants.push(e);
                    continue;
                }
            };
            s.push('x');
            variants.push(e);
        }
        for v in variants {
            assert_ne!(chain_hash(&GENESIS, &v), h, "{v:?}");
        }
        // Length prefixes: moving a character between fields changes the hash.
        let mut a = base.clone();
        a.actor = "ab".into();
        a.subject = "c".into();
        let mut b = base.clone();
        b.actor = "a".into();
        b.subject = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &a), chain_hash(&GENESIS, &b));
    }

    #[test]
    fn alteration_is_named() {
        let mut c = chain(10);
        c[4].event.role = "administrator".into();
        let (hs, hh) = head(&c);
        assert_eq!(walk(&c, (hs, &hh)), Err(Problem::Altered { seq: 5 }));
    }

    #[test]
    fn deletion_is_named() {
        let mut c = chain(10);
        c.remove(3);
        let (hs, hh) = head(&c);
        assert_eq!(
            walk(&c, (hs, &hh)),
            Err(Problem::Deleted { from: 4, to: 4 })
        );
        // The first record.
        let mut c = chain(5);
        c.remove(0);
        let (hs, hh) = head(&c);
        assert_eq!(
            walk(&c, (hs, &hh)),
            Err(Problem::Deleted { from: 1, to: 1 })
        );
        // The last ones: the head still names them.
        let full = chain(10);
        let (hs, hh) = head(&full);
        assert_eq!(
            walk(&full[..8], (hs, &hh)),
            Err(Problem::Truncated { last: 8, head: 10 })
        );
        // Deleted and the numbers closed up.
        let mut c = chain(10);
        c.remove(3);
        for (i, r) in c.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(walk(&c, (9, "")), Err(Problem::DeletedBefore { seq: 4 }));
    }

    #[test]
    fn insertion_is_named() {
        // A forged record with a good hash of its own, in the middle, the
        // later records renumbered to make room.
        let c = chain(10);
        let mut forged = ev(99);
        forged.role = "administrator".into();
        let prev = from_hex(&c[4].hash).unwrap();
        let fh = chain_hash(&prev, &forged);
        let mut d: Vec<Stored> = c[..5].to_vec();
        d.push(Stored {
            seq: 6,
            event: forged.clone(),
            prev_hash: c[4].hash.clone(),
            hash: to_hex(&fh),
        });
        for r in &c[5..] {
            let mut r = r.clone();
            r.seq += 1;
            d.push(r);
        }
        assert_eq!(walk(&d, (11, "")), Err(Problem::Inserted { seq: 6 }));
        // At the end, past the head.
        let mut e = c.clone();
        e.push(Stored {
            seq: 11,
            event: forged.clone(),
            prev_hash: c[9].hash.clone(),
            hash: to_hex(&chain_hash(&from_hex(&c[9].hash).unwrap(), &forged)),
        });
        let (hs, hh) = head(&c);
        assert_eq!(walk(&e, (hs, &hh)), Err(Problem::Inserted { seq: 11 }));
        // Not linked to anything, in the middle.
        let mut f = c.clone();
        f.insert(
            5,
            Stored {
                seq: 6,
                event: forged.clone(),
                prev_hash: to_hex(&[7; 32]),
                hash: to_hex(&chain_hash(&[7; 32], &forged)),
            },
        );
        for r in f.iter_mut().skip(6) {
            r.seq += 1;
        }
        assert_eq!(walk(&f, (11, "")), Err(Problem::Inserted { seq: 6 }));
    }

    #[test]
    fn reordering_is_named() {
        let mut c = chain(10);
        let (a, b) = (c[3].clone(), c[4].clone());
        c[3] = Stored { seq: 4, ..b };
        c[4] = Stored { seq: 5, ..a };
        let (hs, hh) = (10, c[9].hash.clone());
        assert_eq!(
            walk(&c, (hs, &hh)),
            Err(Problem::Reordered { seq: 4, after: 5 })
        );
    }

    #[test]
    fn checkpoints_catch_a_rewritten_chain() {
        let honest = chain(10);
        let cp = (6, from_hex(&honest[5].hash).unwrap());
        // Someone rewrote record 3 and recomputed every hash after it.
        let mut prev = GENESIS;
        let rewritten: Vec<Stored> = honest
            .iter()
            .map(|r| {
                let mut event = r.event.clone();
                if r.seq == 3 {
                    event.role = "administrator".into();
                }
                let h = chain_hash(&prev, &event);
                let s = Stored {
                    seq: r.seq,
                    event,
                    prev_hash: to_hex(&prev),
                    hash: to_hex(&h),
                };
                prev = h;
                s
            })
            .collect();
        let (hs, hh) = head(&rewritten);
        assert!(
            walk(&rewritten, (hs, &hh)).is_ok(),
            "the chain alone cannot tell"
        );
        let mut w = Walker::new((0, GENESIS), vec![cp]);
        let got = rewritten.iter().try_for_each(|r| w.push(r));
        assert_eq!(got, Err(Problem::CheckpointMismatch { seq: 6 }));
        // The honest chain passes its checkpoint.
        let mut w = Walker::new((0, GENESIS), vec![cp]);
        honest.iter().try_for_each(|r| w.push(r)).unwrap();
        let (hs, hh) = head(&honest);
        assert_eq!(w.finish((hs, &hh)).unwrap().checkpoints, 1);
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_anchor() {
        let c = chain(10);
        let anchor = (4, from_hex(&c[3].hash).unwrap());
        let mut w = Walker::new(anchor, Vec::new());
        c[4..].iter().try_for_each(|r| w.push(r)).unwrap();
        let (hs, hh) = head(&c);
        assert_eq!(w.finish((hs, &hh)).unwrap().first, Some(5));
        // Pruning further than the anchor says is a deletion.
        let mut w = Walker::new(anchor, Vec::new());
        assert_eq!(w.push(&c[6]), Err(Problem::Deleted { from: 5, to: 6 }));
    }

    #[test]
    fn csv_cells_are_inert() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("plain, text"), "\"plain, text\"");
        assert_eq!(csv_cell("a\nb"), "\"a\nb\"");
    }

    #[test]
    fn hex_round_trips() {
        let b = [0xab; 32];
        assert_eq!(from_hex(&to_hex(&b)), Some(b));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"A".repeat(64)), None);
    }
}
