//! TOTP codes from an authenticator nobody here wrote: `pyotp` (PyPI, installed by
//! `scripts/py-tools`), run through `python3`. The issuer's own TOTP code is never used to make
//! the codes it is tested with.

use std::process::Command;

/// Runs a short pyotp script with `args` (as `sys.argv[1:]`) and returns its stdout, trimmed.
fn pyotp(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(format!("import sys, time, pyotp\n{script}"))
        .args(args)
        .output()
        .expect("run python3 (pyotp)");
    assert!(
        output.status.success(),
        "pyotp failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("pyotp prints UTF-8")
        .trim()
        .to_owned()
}

/// The 6-digit code of the time step `steps_ahead` steps after the current one, for the base32
/// `secret`. The issuer accepts the steps either side of its current one, and a step once; so
/// a test uses step 0 first and step 1 next, each within the window whichever way the clock
/// turns between here and the issuer.
pub(crate) fn code(secret: &str, steps_ahead: u32) -> String {
    let code = pyotp(
        "print(pyotp.TOTP(sys.argv[1]).at(time.time() + 30 * int(sys.argv[2])))",
        &[secret, &steps_ahead.to_string()],
    );
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code:?}"
    );
    code
}

/// A code for `secret` that is none of the valid ones of the window around now.
pub(crate) fn wrong_code(secret: &str) -> String {
    pyotp(
        "t = pyotp.TOTP(sys.argv[1]); now = time.time()\n\
         valid = {t.at(now + 30 * k) for k in range(-2, 4)}\n\
         print(next(c for c in (f'{n:06d}' for n in range(1000000)) if c not in valid))",
        &[secret],
    )
}

/// What `pyotp.parse_uri` reads from an otpauth URI: secret, issuer and account name.
pub(crate) fn parse_uri(uri: &str) -> (String, String, String) {
    let printed = pyotp(
        "t = pyotp.parse_uri(sys.argv[1])\nprint(t.secret); print(t.issuer); print(t.name)",
        &[uri],
    );
    let mut lines = printed.lines().map(str::to_owned);
    let mut next = || lines.next().expect("three lines from pyotp");
    (next(), next(), next())
}
