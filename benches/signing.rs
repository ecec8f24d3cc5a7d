//! Signing throughput beside the machine's ceiling, measured in the same run:
//! `openssl speed rsa2048` (one process, and `-multi 2`) against the
//! dashboard's signer (the parsed key kept in memory) on one and two
//! threads, and jsonwebtoken's `encode` (which parses the key per call).
//!
//! Run: `cargo bench --features ssr --bench signing` (about 30 seconds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agency_sso::domain::keys::generate;
use agency_sso::domain::tokens::Signer;
use serde_json::json;

mod support;
use support::openssl;

use support::SECONDS;

fn claims(i: u64) -> serde_json::Value {
    json!({
        "iss": "https://sso.agency.example",
        "aud": "https://client-one.example",
        "sub": "sam@agency.example",
        "email": "sam@agency.example",
        "iat": 1_790_000_000u64 + i,
        "nbf": 1_790_000_000u64 + i,
        "exp": 1_790_000_060u64 + i,
        "jti": format!("{i:032x}"),
        "wp_role": "editor",
        "name": "Sam Staff",
    })
}

/// Tokens per second from `threads` threads signing for SECONDS.
fn rate(threads: usize, sign: impl Fn(u64) -> String + Sync) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sign = &sign;
                s.spawn(move || {
                    let mut n = 0u64;
                    let end = Instant::now() + Duration::from_secs(SECONDS);
                    while Instant::now() < end {
                        let token = sign(n * 16 + t as u64);
                        assert!(token.len() > 300);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut rng = rand::rngs::OsRng;
    let key = generate(2048, &mut rng).expect("key generation");
    let signer = Arc::new(Signer::from_pkcs1_der(&key.kid, &key.private_der).unwrap());
    let jwt_key = jsonwebtoken::EncodingKey::from_rsa_der(&key.private_der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());

    eprintln!("measuring for {SECONDS} s each...");
    let ceiling_1 = openssl(None);
    let ceiling_2 = openssl(Some(2));
    let ours_1 = rate(1, |i| signer.sign(&claims(i)).unwrap());
    let ours_2 = rate(2, |i| signer.sign(&claims(i)).unwrap());
    let jwt_1 = rate(1, |i| {
        jsonwebtoken::encode(&header, &claims(i), &jwt_key).unwrap()
    });

    let ratio = |v: f64, c: Option<f64>| match c {
        Some(c) if c > 0.0 => format!("{:>5.0}%", 100.0 * v / c),
        _ => "    -".to_string(),
    };
    let show = |c: Option<f64>| c.map_or("unavailable".to_string(), |c| format!("{c:.0}"));
    println!();
    println!(
        "RS256 signing, 2048-bit key ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| workload | tokens/s | ceiling (openssl speed rsa2048, same run) | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| agency-sso signer, 1 thread | {ours_1:.0} | {} sign/s, 1 process | {} |",
        show(ceiling_1),
        ratio(ours_1, ceiling_1)
    );
    println!(
        "| agency-sso signer, 2 threads | {ours_2:.0} | {} sign/s, -multi 2 | {} |",
        show(ceiling_2),
        ratio(ours_2, ceiling_2)
    );
    println!("| jsonwebtoken::encode, 1 thread (key parsed per call) | {jwt_1:.0} | {} sign/s, 1 process | {} |", show(ceiling_1), ratio(jwt_1, ceiling_1));
}
