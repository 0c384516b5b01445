//! Splits long inputs so a judge sees all of them: a response into sentences (each claim is
//! judged on its own), a context into overlapping windows of words (a model that reads 128 or
//! 256 tokens would otherwise silently ignore the rest of a long document).

/// Abbreviations whose period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "corp", "no", "fig", "approx", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
];

/// The sentences of `text`, trimmed, empty ones dropped. Splits after `.`, `!` or `?` (and any
/// closing quotes or brackets) followed by whitespace, unless the word before the period is a
/// known abbreviation, a single letter (an initial) or a number like "3."; and at line breaks.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            push_trimmed(&mut out, &text[start..i]);
            start = i + 1;
        } else if matches!(c, b'.' | b'!' | b'?') {
            let mut end = i + 1;
            while end < bytes.len()
                && matches!(bytes[end], b'"' | b'\'' | b')' | b']' | b'.' | b'!' | b'?')
            {
                end += 1;
            }
            let at_break = end >= bytes.len() || bytes[end].is_ascii_whitespace();
            if at_break && !(c == b'.' && is_abbreviation(&text[start..i])) {
                push_trimmed(&mut out, &text[start..end]);
                start = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s);
    }
}

fn is_abbreviation(before_period: &str) -> bool {
    let word = before_period
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_ascii_lowercase();
    (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
        || ABBREVIATIONS.contains(&lower.as_str())
        // "No. 3." ends a sentence, but "3." in a list item does not start one.
        || (word.len() <= 2 && word.chars().all(|c| c.is_ascii_digit()) && before_period.trim() == word)
}

/// Overlapping windows of at most `words` words (half a window of overlap, so a fact that spans
/// a boundary is whole in one of them). A text that fits is one window, returned as is.
pub fn windows(text: &str, words: usize) -> Vec<String> {
    let words = words.max(2);
    let all: Vec<&str> = text.split_whitespace().collect();
    if all.len() <= words {
        return vec![text.trim().to_string()];
    }
    let stride = words / 2;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + words).min(all.len());
        out.push(all[start..end].join(" "));
        if end == all.len() {
            return out;
        }
        start += stride;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_but_not_abbreviations_or_initials() {
        assert_eq!(
            sentences("Dr. Smith met J. R. Tolkien in the U.S. in 1937. He liked it! Did he? Yes.\nA list:\n1. one"),
            vec![
                "Dr. Smith met J. R. Tolkien in the U.S. in 1937.",
                "He liked it!",
                "Did he?",
                "Yes.",
                "A list:",
                "1. one",
            ]
        );
        assert_eq!(sentences("  "), Vec::<&str>::new());
        assert_eq!(
            sentences("No period at the end"),
            vec!["No period at the end"]
        );
        assert_eq!(
            sentences("He said \"go.\" Then left."),
            vec!["He said \"go.\"", "Then left."]
        );
        assert_eq!(
            sentences("Pi is 3.14 exactly."),
            vec!["Pi is 3.14 exactly."]
        );
    }

    #[test]
    fn windows_overlap_and_cover_every_word() {
        let text: Vec<String> = (0..25).map(|i| format!("w{i}")).collect();
        let w = windows(&text.join(" "), 10);
        assert_eq!(w.len(), 4);
        assert!(w[0].starts_with("w0 ") && w[0].ends_with(" w9"));
        assert!(w[1].starts_with("w5 "));
        assert!(w[3].ends_with(" w24"));
        assert_eq!(windows("short text ", 10), vec!["short text"]);
    }
}
