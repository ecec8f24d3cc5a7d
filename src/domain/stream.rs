//! The audit stream's rules: where records go (a syslog receiver or an
//! HTTPS webhook), how each record is written for it (RFC 5424 with the
//! chain index and hash as structured data; JSON batches), and how a
//! receiver's file is read back to verify the chain. Pure.

use std::net::IpAddr;

use super::audit::Stored;

/// Where a destination sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// HTTPS (plain HTTP only to loopback): batches of JSON records.
    Webhook(String),
    /// RFC 5424 over TLS (RFC 5425 framing).
    SyslogTls { host: String, port: u16 },
    /// RFC 5424 over plain TCP (RFC 6587 octet counting): loopback only,
    /// for a local relay.
    SyslogTcp { host: String, port: u16 },
    /// RFC 5424 over UDP (RFC 5426): loopback only, for a local relay.
    SyslogUdp { host: String, port: u16 },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) => "webhook",
            _ => "syslog",
        }
    }
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Read a destination's address: `https://…` (or `http://` on loopback),
/// `syslog+tls://host:port`, `syslog+tcp://127.0.0.1:port` or
/// `syslog+udp://127.0.0.1:port` (the last two on loopback only: the
/// records would cross the network in the clear).
pub fn parse_target(raw: &str) -> Result<Target, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|_| format!("{raw:?} is not an address"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{raw:?} names no host"))?
        .to_string();
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put no user or password in the address".into());
    }
    let port = |default: Option<u16>| {
        url.port()
            .or(default)
            .ok_or_else(|| format!("{raw:?} needs a port"))
    };
    match url.scheme() {
        "https" => Ok(Target::Webhook(url.to_string())),
        "http" if loopback(&host) => Ok(Target::Webhook(url.to_string())),
        "http" => Err("a webhook takes https (plain http only on loopback)".into()),
        "syslog+tls" => Ok(Target::SyslogTls {
            host,
            port: port(Some(6514))?,
        }),
        "syslog+tcp" | "syslog+udp" if !loopback(&host) => Err(
            "plain syslog (tcp or udp) only to a relay on loopback: use syslog+tls:// across the network".into(),
        ),
        "syslog+tcp" => Ok(Target::SyslogTcp {
            host,
            port: port(Some(514))?,
        }),
        "syslog+udp" => Ok(Target::SyslogUdp {
            host,
            port: port(Some(514))?,
        }),
        other => Err(format!(
            "{other}: the address starts with https://, syslog+tls://, syslog+tcp:// or syslog+udp://"
        )),
    }
}

/// A destination's name: 1 to 64 plain characters.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(plain) {
        return Err("name: 1 to 64 letters, digits, spaces, dots, dashes or underscores".into());
    }
    Ok(name.to_string())
}

/// The structured data ID the records carry (a private enterprise number
/// is not registered: RFC 5424 allows `name@number` only with one, so a
/// plain name is not used; 32473 is the number RFC 5612 reserves for
/// documentation and examples).
pub const SD_ID: &str = "audit@32473";

fn sd_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(']', "\\]")
}

/// One record as an RFC 5424 message: facility 13 (log audit), severity
/// notice (warning for refusals and failures), the record's time, the
/// kind as MSGID, the chain index and hashes as structured data, and the
/// record itself as JSON for the message.
pub fn syslog_message(r: &Stored, hostname: &str) -> String {
    let severity = if r.event.outcome == super::audit::outcome::SUCCESS {
        5
    } else {
        4
    };
    let pri = 13 * 8 + severity;
    let host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let msgid: String = r
        .event
        .kind
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    format!(
        "<{pri}>1 {} {} agency-sso - {} [{SD_ID} seq=\"{}\" hash=\"{}\" prev=\"{}\"] {}",
        super::audit::utc(r.event.at),
        if host.is_empty() { "-" } else { &host },
        if msgid.is_empty() { "-" } else { &msgid },
        r.seq,
        sd_escape(&r.hash),
        sd_escape(&r.prev_hash),
        record_json(r)
    )
}

/// A record as one line of JSON: the same fields as the API's and the
/// JSON Lines export (`detail` kept as the text that was hashed).
pub fn record_json(r: &Stored) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// RFC 5425/6587 octet-counting framing for a stream transport.
pub fn frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// A webhook's body: the records in chain order.
pub fn batch_body(records: &[Stored]) -> String {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    serde_json::json!({
        "from_seq": records.first().map(|r| r.seq),
        "to_seq": records.last().map(|r| r.seq),
        "records": items,
    })
    .to_string()
}

/// How long to wait after `failures` failures in a row: 2 s doubling, at
/// most 5 minutes.
pub fn backoff(failures: i64) -> i64 {
    (2i64 << failures.clamp(0, 10)).min(300)
}

/// Read the records out of a receiver's file: lines of JSON records (the
/// webhook's or the export's), syslog messages whose message is one, or a
/// webhook batch per line. Each is returned once (a receiver may be given
/// a record twice: at least once), in chain order. Lines that hold no
/// record are skipped and counted.
pub fn records_in(text: &str) -> (Vec<Stored>, usize) {
    let mut out: std::collections::BTreeMap<i64, Stored> = Default::default();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let json = match line.find('{') {
            Some(i) => &line[i..],
            None => {
                skipped += 1;
                continue;
            }
        };
        let found: Vec<Stored> = match serde_json::from_str::<serde_json::Value>(json) {
            Ok(v) if v.get("records").is_some() => {
                serde_json::from_value(v["records"].clone()).unwrap_or_default()
            }
            Ok(v) => serde_json::from_value(v)
                .map(|r| vec![r])
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        if found.is_empty() {
            skipped += 1;
        }
        for r in found {
            out.entry(r.seq).or_insert(r);
        }
    }
    (out.into_values().collect(), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{chain_hash, to_hex, Actor, GENESIS};

    fn chain(n: i64) -> Vec<Stored> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let mut e = Actor::system().did(1_800_000_000 + seq, "launch");
                e.subject = "sam@agency.test".into();
                e.detail = format!("{{\"n\":{seq},\"q\":\"a]b\\\"c\"}}");
                let hash = chain_hash(&prev, &e);
                let r = Stored {
                    seq,
                    event: e,
                    prev_hash: to_hex(&prev),
                    hash: to_hex(&hash),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            parse_target("syslog+tls://logs.example:6514"),
            Ok(Target::SyslogTls {
                host: "logs.example".into(),
                port: 6514
            })
        );
        assert_eq!(
            parse_target("syslog+udp://127.0.0.1:5514"),
            Ok(Target::SyslogUdp {
                host: "127.0.0.1".into(),
                port: 5514
            })
        );
        assert!(parse_target("syslog+udp://logs.example:514").is_err());
        assert!(parse_target("syslog+tcp://10.0.0.1:514").is_err());
        assert!(parse_target("http://siem.example/in").is_err());
        assert!(matches!(
            parse_target("http://127.0.0.1:9/in"),
            Ok(Target::Webhook(_))
        ));
        assert!(matches!(
            parse_target("https://siem.example/in"),
            Ok(Target::Webhook(_))
        ));
        assert!(parse_target("https://u:p@siem.example/in").is_err());
        assert!(parse_target("ftp://x").is_err());
        assert_eq!(check_name(" SIEM "), Ok("SIEM".into()));
        assert!(check_name("a/b").is_err());
    }

    #[test]
    fn a_syslog_message_carries_the_chain_and_the_record() {
        let r = &chain(1)[0];
        let m = syslog_message(r, "sso-1");
        assert!(m.starts_with("<109>1 2027-01-15T08:00:01Z sso-1 agency-sso - launch [audit@32473 seq=\"1\" hash=\""), "{m}");
        let (back, skipped) = records_in(&m);
        assert_eq!((back.len(), skipped), (1, 0));
        assert_eq!(&back[0], r);
        assert_eq!(frame("abc"), "3 abc");
        let mut refused = r.clone();
        refused.event.outcome = "refused".into();
        assert!(syslog_message(&refused, "h").starts_with("<108>1 "));
    }

    #[test]
    fn a_receivers_file_reads_back_once_each_in_order() {
        let c = chain(4);
        let mut file = String::new();
        file.push_str(&batch_body(&c[2..4]));
        file.push('\n');
        file.push_str("garbage\n");
        for r in [&c[0], &c[1], &c[1]] {
            file.push_str(&syslog_message(r, "h"));
            file.push('\n');
        }
        let (back, skipped) = records_in(&file);
        assert_eq!(skipped, 1);
        assert_eq!(back, c);
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        assert_eq!(backoff(0), 2);
        assert_eq!(backoff(1), 4);
        assert_eq!(backoff(7), 256);
        assert_eq!(backoff(8), 300);
        assert_eq!(backoff(60), 300);
    }
}
