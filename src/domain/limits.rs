//! Rate limits: a token bucket per key (a client address, a person). Each
//! key may make `count` requests at once and earns them back evenly over
//! `per_secs`. Pure: the caller passes the time, in milliseconds.

use std::collections::HashMap;

/// `count` requests per `per_secs` seconds, `count` of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per_secs: u32,
}

impl Rate {
    /// `30/min`, `5/s`, `1000/hour`, or `off` (no limit: `None`).
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("{s:?}: use a count per unit, like 30/min, 5/s or 1000/hour, or off");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per_secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 || count > 1_000_000 {
            return Err(format!("{s:?}: the count must be between 1 and 1000000"));
        }
        Ok(Some(Rate { count, per_secs }))
    }

    /// Milliseconds to earn back one request.
    fn ms_per_token(&self) -> f64 {
        f64::from(self.per_secs) * 1000.0 / f64::from(self.count)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per_secs {
            1 => "s",
            60 => "min",
            3600 => "hour",
            n => return write!(f, "{}/{n}s", self.count),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: try again after `retry_after_secs`. `first` is true
    /// for the first refusal since the key was last allowed, so that a
    /// flood is recorded once, not once per request.
    Limited {
        retry_after_secs: u64,
        first: bool,
    },
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
    limited: bool,
}

impl Bucket {
    /// The tokens it holds at `now_ms`, earned back since it was last used.
    /// A clock that steps back earns nothing; it does not take tokens away.
    fn tokens_at(&self, now_ms: i64, rate: Rate) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        (self.tokens + elapsed / rate.ms_per_token()).min(f64::from(rate.count))
    }
}

/// Buckets for one limit. Memory is bounded: past `max_keys`, buckets that
/// have refilled (nothing to remember) are dropped first.
#[derive(Debug)]
pub struct Buckets {
    rate: Rate,
    max_keys: usize,
    map: HashMap<String, Bucket>,
}

impl Buckets {
    pub fn new(rate: Rate, max_keys: usize) -> Buckets {
        Buckets {
            rate,
            max_keys: max_keys.max(1),
            map: HashMap::new(),
        }
    }

    /// Take one request for `key` at `now_ms`.
    pub fn check(&mut self, key: &str, now_ms: i64) -> Verdict {
        let rate = self.rate;
        if !self.map.contains_key(key) && self.map.len() >= self.max_keys {
            self.sweep(now_ms);
        }
        let b = self.map.entry(key.to_string()).or_insert(Bucket {
            tokens: f64::from(rate.count),
            at_ms: now_ms,
            limited: false,
        });
        b.tokens = b.tokens_at(now_ms, rate);
        b.at_ms = b.at_ms.max(now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.limited = false;
            Verdict::Allowed
        } else {
            let first = !b.limited;
            b.limited = true;
            let wait_ms = (1.0 - b.tokens) * rate.ms_per_token();
            Verdict::Limited {
                retry_after_secs: (wait_ms / 1000.0).ceil().max(1.0) as u64,
                first,
            }
        }
    }

    /// Forget full buckets (nothing to remember); if the map is still
    /// full, forget the eighth of it used longest ago. Never all of it: a
    /// flood of new keys must not give a limited key a fresh bucket, and
    /// the key in use now is the newest of all.
    fn sweep(&mut self, now_ms: i64) {
        let (rate, capacity) = (self.rate, f64::from(self.rate.count));
        self.map.retain(|_, b| b.tokens_at(now_ms, rate) < capacity);
        if self.map.len() < self.max_keys {
            return;
        }
        let evict = (self.map.len() / 8).max(1);
        let mut ages: Vec<i64> = self.map.values().map(|b| b.at_ms).collect();
        let (_, cut, _) = ages.select_nth_unstable(evict - 1);
        let cut = *cut;
        let mut left = evict;
        self.map.retain(|_, b| {
            if left > 0 && b.at_ms <= cut {
                left -= 1;
                false
            } else {
                true
            }
        });
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An address block (`10.0.0.0/8`, `fd00::/8`, or one address), for the
/// proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an address or block like 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)),
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let width = if ip.is_ipv4() { 32 } else { 128 };
        if self.prefix == 0 {
            return true;
        }
        let shift = width - u32::from(self.prefix);
        bits(self.addr) >> shift == bits(ip) >> shift
    }
}

/// Which header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyHeader {
    /// `X-Forwarded-For` (HAProxy, nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): its `for=` parameters.
    Forwarded,
}

impl ProxyHeader {
    /// The header's name, lower-case.
    pub fn name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "x-forwarded-for",
            ProxyHeader::Forwarded => "forwarded",
        }
    }

    pub fn parse(s: &str) -> Option<ProxyHeader> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Some(ProxyHeader::XForwardedFor);
        }
        [ProxyHeader::XForwardedFor, ProxyHeader::Forwarded]
            .into_iter()
            .find(|h| h.name() == s)
    }
}

/// One hop as a header names it: an address, maybe with a port, maybe in
/// brackets or quotes. Anything else (`unknown`, an obfuscated `_name`) is
/// no address.
fn hop_address(hop: &str) -> Option<std::net::IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

/// The hops a header's lines name, left (the first proxy's client) to right
/// (the last proxy's peer). Several lines of one header are one list, in
/// order (RFC 9110 5.3): a proxy that adds its own line (HAProxy) follows
/// whatever line the client sent.
pub fn forwarded_hops(header: ProxyHeader, lines: &[&str]) -> Vec<Option<std::net::IpAddr>> {
    let elements = lines.iter().flat_map(|l| l.split(','));
    match header {
        ProxyHeader::XForwardedFor => elements.map(hop_address).collect(),
        ProxyHeader::Forwarded => elements
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| hop_address(v))
                })?
            })
            .collect(),
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the right-most hop the proxies name that is not a trusted proxy.
/// Anything unreadable there stops the walk at the last proxy seen, so a
/// forged hop never picks an address.
pub fn client_ip(
    peer: std::net::IpAddr,
    hops: &[Option<std::net::IpAddr>],
    trusted: &[Cidr],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = *hop else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The key a client's address is limited under: an IPv4 address alone; an
/// IPv6 address by its /64, which one subscriber usually holds whole (per
/// address, one client would have 2^64 buckets).
pub fn bucket_key(ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        Rate::parse(s).unwrap().unwrap()
    }

    #[test]
    fn parses_counts_per_unit_and_off() {
        assert_eq!(
            rate("30/min"),
            Rate {
                count: 30,
                per_secs: 60
            }
        );
        assert_eq!(rate(" 5 / s ").per_secs, 1);
        assert_eq!(rate("1000/hour").per_secs, 3600);
        assert_eq!(Rate::parse("off").unwrap(), None);
        for bad in [
            "",
            "30",
            "0/min",
            "x/min",
            "30/day",
            "-1/s",
            "30/min/s",
            "2000000/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(rate("30/min").to_string(), "30/min");
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_earned_back() {
        let mut b = Buckets::new(rate("3/min"), 100);
        let t = 1_000_000;
        for _ in 0..3 {
            assert_eq!(b.check("ip", t), Verdict::Allowed);
        }
        assert_eq!(
            b.check("ip", t),
            Verdict::Limited {
                retry_after_secs: 20,
                first: true
            }
        );
        // Still limited, no longer the first refusal; the wait shrinks.
        assert_eq!(
            b.check("ip", t + 5_000),
            Verdict::Limited {
                retry_after_secs: 15,
                first: false
            }
        );
        // Others are not affected.
        assert_eq!(b.check("other", t), Verdict::Allowed);
        // One request earned back after 20 s, and only one.
        assert_eq!(b.check("ip", t + 20_000), Verdict::Allowed);
        assert!(matches!(
            b.check("ip", t + 20_001),
            Verdict::Limited { first: true, .. }
        ));
        // A full minute gives the whole burst back.
        for _ in 0..3 {
            assert_eq!(b.check("ip", t + 90_000), Verdict::Allowed);
        }
    }

    #[test]
    fn a_clock_stepping_back_neither_gives_nor_takes() {
        let mut b = Buckets::new(rate("1/min"), 10);
        assert_eq!(b.check("k", 100_000), Verdict::Allowed);
        assert!(matches!(b.check("k", 50_000), Verdict::Limited { .. }));
        assert_eq!(b.check("k", 160_000), Verdict::Allowed);
    }

    #[test]
    fn memory_is_bounded_and_keeps_active_keys_first() {
        let mut b = Buckets::new(rate("2/min"), 3);
        b.check("idle1", 0);
        b.check("idle2", 0);
        b.check("busy", 50_000);
        b.check("busy", 50_000);
        // idle1 and idle2 are full again: they are dropped to make room,
        // the busy key keeps its empty bucket.
        assert_eq!(b.check("new", 55_000), Verdict::Allowed);
        assert_eq!(b.len(), 2);
        assert!(matches!(b.check("busy", 55_000), Verdict::Limited { .. }));
        // Every key active: the oldest goes rather than the map grow.
        let mut b = Buckets::new(rate("1/hour"), 2);
        b.check("a", 0);
        b.check("b", 1);
        b.check("c", 2);
        assert!(b.len() <= 2);
        assert!(matches!(b.check("b", 3), Verdict::Limited { .. }));
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.255.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(!Cidr::parse("fd00::/8")
            .unwrap()
            .contains("10.1.2.3".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "host/8", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let xff =
            |line: Option<&str>| forwarded_hops(ProxyHeader::XForwardedFor, &Vec::from_iter(line));
        let client_ip =
            |peer, line: Option<&str>, trusted: &[Cidr]| client_ip(peer, &xff(line), trusted);
        // Not through a trusted proxy: the header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the address it saw, not what the client claimed.
        assert_eq!(
            client_ip(ip("10.0.0.5"), Some("6.6.6.6, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // Through two proxies.
        assert_eq!(
            client_ip(ip("10.0.0.5"), Some("198.51.100.7, 10.0.0.9"), &trusted),
            ip("198.51.100.7")
        );
        // Nothing or garbage: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
        assert_eq!(
            client_ip(ip("10.0.0.5"), Some("1.2.3.4, <script>"), &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn every_header_line_counts_and_the_proxys_own_line_wins() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // The client sends its own X-Forwarded-For line; HAProxy adds a
        // second one with the address it saw.
        let hops = forwarded_hops(ProxyHeader::XForwardedFor, &["6.6.6.6", "198.51.100.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.5"), &hops, &trusted),
            ip("198.51.100.7")
        );
        // Ports and brackets, as some balancers write them.
        let hops = forwarded_hops(
            ProxyHeader::XForwardedFor,
            &["198.51.100.7:4711", "[2001:db8::1]:443, 10.0.0.9"],
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &hops, &trusted),
            ip("2001:db8::1")
        );
        // RFC 7239, over two lines, quoted IPv6 with a port.
        let hops = forwarded_hops(
            ProxyHeader::Forwarded,
            &[
                "for=6.6.6.6;proto=https",
                "for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.9, for=10.0.0.8",
            ],
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &hops, &trusted),
            ip("2001:db8:cafe::17")
        );
        // An obfuscated or unknown hop stops the walk at the last proxy.
        let hops = forwarded_hops(ProxyHeader::Forwarded, &["for=1.2.3.4, for=_hidden"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &hops, &trusted), ip("10.0.0.5"));
        let hops = forwarded_hops(ProxyHeader::Forwarded, &["proto=https"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &hops, &trusted), ip("10.0.0.5"));
        assert_eq!(
            ProxyHeader::parse("Forwarded"),
            Some(ProxyHeader::Forwarded)
        );
        assert_eq!(ProxyHeader::parse("x-real-ip"), None);
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(bucket_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            bucket_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            bucket_key(ip("2001:db8:1:3::1")),
            bucket_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(bucket_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(bucket_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        // A sweep of a /64 is one client: limited after its allowance.
        let mut b = Buckets::new(rate("5/min"), 1000);
        let limited = (0..100u16)
            .map(|i| b.check(&bucket_key(ip(&format!("2001:db8:1:2::{i:x}"))), 0))
            .filter(|v| matches!(v, Verdict::Limited { .. }))
            .count();
        assert_eq!(limited, 95);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_full_map_forgets_its_oldest_keys_not_a_limited_one() {
        let mut b = Buckets::new(rate("1/hour"), 64);
        // The attacker is limited ...
        assert_eq!(b.check("attacker", 0), Verdict::Allowed);
        assert!(matches!(b.check("attacker", 1), Verdict::Limited { .. }));
        // ... then fills the map with fresh keys, still knocking now and then.
        for i in 0..1000 {
            b.check(&format!("sweep-{i}"), 10 + i);
            if i % 16 == 0 {
                b.check("attacker", 10 + i);
            }
            assert!(b.len() <= 64);
        }
        assert!(
            matches!(b.check("attacker", 2000), Verdict::Limited { .. }),
            "the full map must not be cleared at once"
        );
        assert!(b.len() > 32, "only the oldest are forgotten: {}", b.len());
    }
}
