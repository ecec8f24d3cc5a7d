//! Shared by the benchmarks: the machine's ceiling, measured in the same run.

use std::process::Command;

/// How long each measurement runs.
pub const SECONDS: u64 = 3;

/// RSA-2048 signatures per second by `openssl speed`.
pub fn openssl(multi: Option<u32>) -> Option<f64> {
    let mut c = Command::new("openssl");
    c.args(["speed", "-seconds", &SECONDS.to_string()]);
    if let Some(m) = multi {
        c.args(["-multi", &m.to_string()]);
    }
    let out = c.arg("rsa2048").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000213s 0.000006s [more times] 4692.4 155806.1 ...":
    // the first figure after the times is signatures per second.
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))?;
    let after_bits = line.split("bits").nth(1)?;
    after_bits
        .split_whitespace()
        .find(|t| !t.ends_with('s'))?
        .parse()
        .ok()
}
