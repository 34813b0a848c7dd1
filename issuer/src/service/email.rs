//! Email normalization: the one form used for lookups and uniqueness.
//!
//! Two addresses that a person would read as the same must not become two accounts, and a login
//! must find the account whatever the spelling. So an address is trimmed, refused if it holds a
//! character a reader cannot see (see [`super::text`]) or any whitespace, put through Unicode
//! NFKC (full-width and other compatibility forms collapse onto their plain spelling) and
//! lowercased; its domain is then converted to its ASCII form (UTS 46 / IDNA), so `bücher.de`
//! and `xn--bcher-kva.de` are one domain. The RFC 5321 limits apply to the result, in octets.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use unicode_normalization::UnicodeNormalization as _;

use super::text;

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
const MAX_LEN: usize = 254;
/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_LEN: usize = 64;

/// The normalized form of an email address as typed, or why it is not an address the issuer
/// accepts. It refuses what cannot be delivered to, without pretending to implement RFC 5322.
pub(crate) fn normalize(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("must not be empty");
    }
    refuse_hidden(trimmed)?;
    let composed: String = trimmed.nfkc().collect();
    let folded = composed.to_lowercase();
    // NFKC turns some visible characters into spaces or hidden ones (U+FFA0 into U+1160).
    refuse_hidden(&folded)?;
    let Some((local, domain)) = folded.split_once('@') else {
        return Err("must contain @");
    };
    check_local(local)?;
    let domain = ascii_domain(domain)?;
    let address = format!("{local}@{domain}");
    if address.len() > MAX_LEN {
        return Err("is longer than 254 octets");
    }
    Ok(address)
}

fn refuse_hidden(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_whitespace) || text::has_hidden(text) {
        return Err("must not contain spaces or invisible, formatting or control characters");
    }
    Ok(())
}

fn check_local(local: &str) -> Result<(), &'static str> {
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err("must have 1 to 64 octets before @");
    }
    if local.contains(['@', '<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"'])
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("has characters that are not allowed before @");
    }
    Ok(())
}

/// The domain in its ASCII (A-label) form: letters, digits and inner hyphens only, labels of
/// at most 63 octets, at least two labels and a top-level label that is not all digits.
fn ascii_domain(domain: &str) -> Result<String, &'static str> {
    const INVALID: &str = "has an invalid domain";
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| INVALID)?;
    match ascii.rsplit_once('.') {
        Some((_, tld)) if !tld.bytes().all(|b| b.is_ascii_digit()) => Ok(ascii.into_owned()),
        Some(_) => Err(INVALID),
        None => Err("must have a domain with a dot"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalize(raw).unwrap_or_else(|err| panic!("{raw:?} refused: {err}"))
    }

    #[test]
    fn normalization_trims_composes_and_lowercases() {
        assert_eq!(ok("  Ada@Example.COM \n"), "ada@example.com");
        // Full-width letters and the full-width @ collapse under NFKC.
        assert_eq!(ok("ＡＤＡ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "ada@example.com");
        // A decomposed é and a precomposed é are the same address.
        assert_eq!(ok("re\u{301}my@example.com"), ok("rémy@example.com"));
        // Ideographic space is whitespace: trimmed at the ends.
        assert_eq!(ok("\u{3000}ada@example.com"), "ada@example.com");
        assert_eq!(ok("ÉLODIE@EXAMPLE.FR"), "élodie@example.fr");
    }

    #[test]
    fn unicode_domains_become_their_ascii_form() {
        assert_eq!(ok("üser@bücher.de"), "üser@xn--bcher-kva.de");
        assert_eq!(ok("üser@XN--BCHER-KVA.de"), ok("üser@BÜCHER.DE"));
        assert_eq!(ok("a@münchen.example"), "a@xn--mnchen-3ya.example");
        // Punycode that decodes to nothing valid is not a domain.
        assert!(normalize("a@xn--a.de").is_err());
    }

    #[test]
    fn normalization_is_idempotent() {
        for raw in [
            "  Ada@Example.COM",
            "ＡＤＡ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "ﬁ@example.com",
            "üser@bücher.de",
        ] {
            let once = ok(raw);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for good in [
            "ada@example.com",
            "a.b+tag@mail.example.co.uk",
            "élodie@exemple.fr",
            "x@a-b.io",
            "x@a--b.io",
        ] {
            assert_eq!(normalize(good).as_deref(), Ok(good), "{good}");
        }
    }

    #[test]
    fn refuses_invisible_bidi_control_and_space_characters() {
        for hidden in [
            '\u{200b}',
            '\u{ad}',
            '\u{202e}',
            '\u{feff}',
            '\u{2060}',
            '\u{200d}',
            '\u{2066}',
            '\u{180e}',
            '\u{e0041}',
            '\u{0}',
            '\u{7}',
            '\u{85}',
            ' ',
            '\t',
            '\u{a0}',
            '\u{2028}',
            '\u{3000}',
            '\u{ffa0}',
        ] {
            for raw in [
                format!("ad{hidden}a@example.com"),
                format!("ada@exa{hidden}mple.com"),
                format!("ada@example.com{hidden}x"),
            ] {
                assert!(normalize(&raw).is_err(), "{raw:?} was accepted");
            }
            // Whitespace at either end is trimmed, as pasted addresses often carry it; any
            // other hidden character is refused wherever it is.
            let leading = normalize(&format!("{hidden}ada@example.com"));
            assert_eq!(leading.is_ok(), hidden.is_whitespace(), "{hidden:?}");
        }
    }

    #[test]
    fn lengths_are_counted_in_octets_after_normalization() {
        let local_64 = "a".repeat(64);
        assert!(normalize(&format!("{local_64}@example.com")).is_ok());
        // 32 two-octet characters fill the 64 octets; one more is too many.
        let wide_local = "é".repeat(32);
        assert!(normalize(&format!("{wide_local}@example.com")).is_ok());
        assert!(normalize(&format!("{wide_local}a@example.com")).is_err());
        // Full-width letters are three octets typed but one once normalized.
        let full_width = "ａ".repeat(64);
        assert!(normalize(&format!("{full_width}@example.com")).is_ok());
        // 64 + 1 + 189 = 254 octets is the most.
        let domain = |len: usize| {
            let last = "d".repeat(len - 128);
            format!("{}.{}.{last}.com", "b".repeat(61), "c".repeat(61))
        };
        assert_eq!(domain(189).len(), 189);
        assert!(normalize(&format!("{local_64}@{}", domain(189))).is_ok());
        assert!(normalize(&format!("{local_64}@{}", domain(190))).is_err());
        // The ASCII form of a Unicode domain is what counts: 254 octets as typed, more once
        // the first label becomes an A-label.
        let (b, c, e) = ("b".repeat(61), "c".repeat(61), "e".repeat(20));
        let unicode = format!("ü{}.{b}.{c}.{e}.de", "d".repeat(40));
        let typed = format!("{}@{unicode}", "a".repeat(253 - unicode.len()));
        assert_eq!(typed.len(), 254);
        assert!(normalize(&typed).is_err(), "the A-label is longer");
    }

    #[test]
    fn refuses_malformed_addresses() {
        let long_label = format!("a@{}.com", "b".repeat(64));
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a@b@c.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "ada@example.com.",
            "ada@example.123",
            "ada@exa_mple.com",
            "ada@[127.0.0.1]",
            "<ada>@example.com",
            long_label.as_str(),
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
