//! SMS lengths: one segment holds 160 characters of the GSM 03.38 alphabet (7 bits each,
//! two for the extension characters `^{}\[~]|€`), or 70 UTF-16 units once any other
//! character appears (an emoji, an en dash, `ç`). A longer text is split into parts of 153
//! or 67 and billed per part, so the SMS templates aim at one segment and the renderer
//! shortens titles (never the link) until the text fits.

/// The GSM 03.38 basic alphabet, one septet each.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: an escape septet plus one.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How the text is encoded, and its length in that encoding's units.
fn encoded_length(text: &str) -> (bool, usize) {
    let mut septets = 0;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            return (false, text.encode_utf16().count());
        }
    }
    (true, septets)
}

/// The number of SMS parts `text` is sent as.
pub fn segments(text: &str) -> usize {
    let (gsm, len) = encoded_length(text);
    let (single, part) = if gsm { (160, 153) } else { (70, 67) };
    if len <= single {
        1
    } else {
        len.div_ceil(part)
    }
}

/// Whether the text goes as one SMS.
pub fn fits_one(text: &str) -> bool {
    segments(text) == 1
}

/// `s` cut to at most `max` characters, `...` marking the cut (GSM characters, so a cut
/// never makes the text more expensive).
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_fits_160() {
        assert!(fits_one(&"a".repeat(160)));
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // French accents of the basic alphabet stay 7-bit.
        assert!(fits_one(&"é".repeat(160)));
        // Extension characters count twice.
        assert!(!fits_one(&"€".repeat(81)));
    }

    #[test]
    fn other_characters_switch_to_70() {
        assert!(fits_one(&format!("{}ç", "a".repeat(69))));
        assert!(!fits_one(&format!("{}ç", "a".repeat(70))));
        assert_eq!(segments("–"), 1);
    }

    #[test]
    fn shorten_marks_the_cut() {
        assert_eq!(shorten("Mentoring session", 40), "Mentoring session");
        assert_eq!(shorten("Mentoring session", 10), "Mentori...");
    }
}
