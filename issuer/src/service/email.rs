//! Email normalization: the one form used for lookups and uniqueness.
//!
//! `trim`, then Unicode NFKC (so full-width and other compatibility forms collapse onto their
//! plain spelling), then lowercase. Two addresses that a person would read as the same must not
//! become two accounts, and a login must find the account whatever the spelling.

use unicode_normalization::UnicodeNormalization as _;

/// RFC 5321: a path is at most 256 octets including the angle brackets.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// The normalized form of an email address as typed.
pub(crate) fn normalize(raw: &str) -> String {
    let composed: String = raw.trim().nfkc().collect();
    // NFKC can turn compatibility spaces into plain ones; trim again after it.
    composed.trim().to_lowercase()
}

/// A basic shape check of a normalized address: `local@domain` with a dotted domain. It
/// refuses what cannot be delivered to, without pretending to implement RFC 5322.
pub(crate) fn check(normalized: &str) -> Result<(), &'static str> {
    if normalized.is_empty() {
        return Err("must not be empty");
    }
    if normalized.chars().count() > MAX_LEN {
        return Err("is too long");
    }
    let Some((local, domain)) = normalized.split_once('@') else {
        return Err("must contain @");
    };
    check_local(local)?;
    check_domain(domain)
}

fn check_local(local: &str) -> Result<(), &'static str> {
    if local.is_empty() || local.chars().count() > MAX_LOCAL_LEN {
        return Err("has an empty or overlong part before @");
    }
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "@<>()[]\\,;:\"".contains(c);
    if local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("has characters that are not allowed before @");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("must have a domain with a dot");
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.chars().count() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !valid {
            return Err("has an invalid domain");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("has an invalid domain");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_trims_composes_and_lowercases() {
        assert_eq!(normalize("  Ada@Example.COM \n"), "ada@example.com");
        // Full-width letters and the full-width @ collapse under NFKC.
        assert_eq!(
            normalize("ＡＤＡ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
            "ada@example.com"
        );
        // A decomposed é and a precomposed é are the same address.
        assert_eq!(
            normalize("re\u{301}my@example.com"),
            normalize("rémy@example.com")
        );
        // Ideographic space is a compatibility space: trimmed after NFKC.
        assert_eq!(normalize("\u{3000}ada@example.com"), "ada@example.com");
        assert_eq!(normalize("ÉLODIE@EXAMPLE.FR"), "élodie@example.fr");
    }

    #[test]
    fn normalization_is_idempotent() {
        for raw in [
            "  Ada@Example.COM",
            "ＡＤＡ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "ﬁ@example.com",
        ] {
            let once = normalize(raw);
            assert_eq!(normalize(&once), once);
        }
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for good in [
            "ada@example.com",
            "a.b+tag@mail.example.co.uk",
            "élodie@exemple.fr",
            "x@a-b.io",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@example.123",
            "ada@exa mple.com",
            "<ada>@example.com",
            long_local.as_str(),
            long.as_str(),
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
