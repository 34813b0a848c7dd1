//! Character classes that user-supplied identifiers and names must not contain.
//!
//! An email address or a display name is shown to people, who compare what they see. A
//! character that renders as nothing (U+200B, the soft hyphen, U+2060, the byte-order mark),
//! reorders the text around it (U+202E and the other bidi controls) or breaks the line makes
//! two different strings look the same, so one account can pose as another. The Unicode data
//! comes from ICU4X (`icu_properties`, already in the build through `idna`), so new code points
//! are classified with each Unicode update rather than by a hand-kept table.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Whether `c` is invisible, a formatting or bidi control, a control character or a line or
/// paragraph separator: every `Default_Ignorable_Code_Point`, and the general categories Cc,
/// Cf, Zl and Zp.
pub(crate) fn is_hidden(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || matches!(
            CodePointMapData::<GeneralCategory>::new().get(c),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Whether `text` contains a character of [`is_hidden`].
pub(crate) fn has_hidden(text: &str) -> bool {
    text.chars().any(is_hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_bidi_and_control_characters_are_hidden() {
        for c in [
            '\u{0}',
            '\t',
            '\n',
            '\u{7f}',
            '\u{85}', // C0, C1 controls
            '\u{ad}',
            '\u{34f}',
            '\u{61c}',
            '\u{115f}',
            '\u{180e}', // soft hyphen and friends
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}', // zero widths, marks
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}', // bidi embeddings and isolates
            '\u{2028}',
            '\u{2029}', // line and paragraph separators
            '\u{2060}',
            '\u{2064}',
            '\u{3164}',
            '\u{feff}',
            '\u{ffa0}',
            '\u{fe0f}',
            '\u{fff9}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e01ef}', // annotations, tags, selectors
        ] {
            assert!(is_hidden(c), "U+{:04X} is not hidden", u32::from(c));
        }
    }

    #[test]
    fn visible_text_is_not_hidden() {
        for text in [
            "Ada Lovelace",
            "Élodie Ñúñez",
            "王小明",
            "Мария",
            "محمد",
            "ada@example.com",
            "\u{3000}",
        ] {
            assert!(!has_hidden(text), "{text:?}");
        }
        assert!(has_hidden("ad\u{200b}a"));
    }
}
