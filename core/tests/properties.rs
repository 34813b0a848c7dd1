//! Properties: hostile input never panics, any change to a valid token is refused, and
//! permissions and revocations behave the same whatever the input order.

// Test code: an unexpected value should fail the test loudly, so unwrapping, indexing and
// panicking are fine here (as `clippy.toml` allows inside `#[test]` functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use portcullis_core::jws::CompactJws;
use portcullis_core::rbac::{Permission, has_permission};
use portcullis_core::revocation::{RevocationEntry, RevocationKind, RevocationSet};
use portcullis_core::{Key, KeySet, Validation, Verifier};
use proptest::collection::vec;
use proptest::prelude::*;

const KINDS: [RevocationKind; 3] = [
    RevocationKind::Jti,
    RevocationKind::Session,
    RevocationKind::Subject,
];
const SECRET: &[u8; 32] = b"properties-secret-of-32-bytes!!!";
const NOW: u64 = 1_767_225_600;

fn verifier() -> Verifier {
    let mut keys = KeySet::new();
    keys.insert(Key::hs256("k1", SECRET).unwrap()).unwrap();
    Verifier::new(keys, Validation::new("iss", "api"))
}

fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn valid_token() -> String {
    let payload = format!(
        r#"{{"iss":"iss","sub":"usr_1","aud":"api","exp":{},"iat":{NOW},"jti":"j1","roles":["a"]}}"#,
        NOW + 600
    );
    sign(
        br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#,
        payload.as_bytes(),
    )
}

/// Characters that can appear in (or break) a compact token.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9'].into()),
        Just('-'),
        Just('_'),
        Just('.'),
        Just('='),
        Just('+'),
        Just('/'),
        any::<char>(),
    ]
}

/// JSON-ish text: fragments that exercise the parsers' edges.
fn json_fragment() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(r#""alg""#.to_owned()),
        Just(r#""kid""#.to_owned()),
        Just(r#""exp""#.to_owned()),
        Just(r#""aud""#.to_owned()),
        Just(r#""HS256""#.to_owned()),
        Just(r#""k1""#.to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("null".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just(r#""\u0000""#.to_owned()),
        Just(r#""\ud800""#.to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[ -~]{0,8}",
    ];
    vec(atom, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_arbitrary_string_never_panics(token in "\\PC{0,200}") {
        drop(verifier().verify(&token, NOW));
        drop(CompactJws::parse(&token).map(|jws| jws.decode_payload()));
    }

    #[test]
    fn verify_token_shaped_string_never_panics(chars in vec(token_char(), 0..300)) {
        let token: String = chars.into_iter().collect();
        drop(verifier().verify(&token, NOW));
    }

    #[test]
    fn verify_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..400)) {
        let token = String::from_utf8_lossy(&bytes);
        drop(verifier().verify(&token, NOW));
    }

    #[test]
    fn verify_signed_arbitrary_json_never_panics(
        header in json_fragment(),
        payload in json_fragment(),
        now in any::<u64>(),
    ) {
        let token = sign(header.as_bytes(), payload.as_bytes());
        drop(verifier().verify(&token, now));
        let good_header = br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#;
        let token = sign(good_header, payload.as_bytes());
        drop(verifier().verify(&token, now));
    }

    #[test]
    fn verify_signed_arbitrary_bytes_never_panics(payload in vec(any::<u8>(), 0..300)) {
        let token = sign(br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#, &payload);
        drop(verifier().verify(&token, NOW));
    }

    #[test]
    fn verify_any_mutation_of_valid_token_is_refused(
        edits in vec((any::<prop::sample::Index>(), token_char(), 0u8..3), 1..4)
    ) {
        let original = valid_token();
        prop_assert!(verifier().verify(&original, NOW).is_ok());
        let mut chars: Vec<char> = original.chars().collect();
        for (index, replacement, op) in edits {
            match op {
                0 if !chars.is_empty() => {
                    let i = index.index(chars.len());
                    chars[i] = replacement;
                }
                1 => {
                    let i = index.index(chars.len() + 1);
                    chars.insert(i, replacement);
                }
                _ if !chars.is_empty() => {
                    let i = index.index(chars.len());
                    chars.remove(i);
                }
                _ => {}
            }
        }
        let mutated: String = chars.into_iter().collect();
        if mutated != original {
            prop_assert!(verifier().verify(&mutated, NOW).is_err(), "{mutated}");
        }
    }

    #[test]
    fn permission_parse_never_panics(text in "\\PC{0,40}") {
        if let Ok(permission) = Permission::parse(&text) {
            prop_assert_eq!(permission.to_string(), text.clone());
            prop_assert!(has_permission(&[text.as_str()], &text));
            prop_assert!(has_permission(&["*"], &text));
        } else {
            prop_assert!(!has_permission(&["*"], &text));
        }
    }

    #[test]
    fn permission_valid_round_trips(
        resource in "(\\*|[a-z0-9_.-]{1,12})",
        action in "(\\*|[a-z0-9_.-]{1,12})",
    ) {
        let text = format!("{resource}:{action}");
        let permission = Permission::parse(&text).unwrap();
        prop_assert_eq!(permission.as_str(), text.as_str());
        prop_assert_eq!(permission.resource(), resource.as_str());
        prop_assert_eq!(permission.action(), action.as_str());
        prop_assert_eq!(text.parse::<Permission>().unwrap(), permission);
        // A wildcard grant covers a concrete requirement, never the reverse.
        let concrete = format!("{}:{}", resource.replace('*', "x"), action.replace('*', "y"));
        prop_assert!(has_permission(&[text.as_str()], &concrete));
        if text != concrete {
            prop_assert!(!has_permission(&[concrete.as_str()], &text));
        }
    }

    #[test]
    fn revocation_apply_order_and_repetition_do_not_matter(
        raw in vec((0u8..3, 0u8..4, 0u64..50, any::<bool>(), 0u64..100, 0u32..1000), 0..20),
        seed in any::<u64>(),
    ) {
        let entries: Vec<RevocationEntry> = raw
            .into_iter()
            .map(|(kind, value, issued_before, has_issued_before, expires_at, cursor)| {
                RevocationEntry {
                    cursor: cursor.to_string(),
                    kind: KINDS[usize::from(kind)],
                    value: format!("v{value}"),
                    tenant_id: "tnt_1".into(),
                    issued_before: has_issued_before.then_some(issued_before),
                    expires_at,
                }
            })
            .collect();
        let mut shuffled = entries.clone();
        // A cheap deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap());
        }
        let mut first = RevocationSet::new();
        first.apply_all(&entries);
        let mut second = RevocationSet::new();
        second.apply_all(&shuffled);
        second.apply_all(&entries);
        prop_assert_eq!(first.len(), second.len());
        prop_assert_eq!(first.cursor(), second.cursor());
        let claims_json = |sub: &str, iat: u64| format!(
            r#"{{"iss":"iss","sub":"{sub}","aud":"api","exp":{},"iat":{iat},"jti":"{sub}","sid":"{sub}"}}"#,
            NOW + 600
        );
        for value in 0..4 {
            for iat in [0, 10, 25, 49, 60] {
                let token = sign(br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#,
                    claims_json(&format!("v{value}"), iat).as_bytes());
                let claims = verifier().verify(&token, NOW).unwrap();
                prop_assert_eq!(first.is_revoked(&claims), second.is_revoked(&claims));
            }
        }
    }
}
