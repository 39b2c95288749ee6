//! Values written into plain-text and CSV outputs (a transcript's `?format=txt`, the statistics'
//! tables and CSV). People's values — a customer's name, a message, a queue's name — reach them,
//! so every control character is neutralised there: none can start a line of its own (and pass
//! for a message nobody wrote), rewrite a line on a terminal, or reorder one.

/// What a neutralised character becomes.
const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` must not reach a plain-text output as it is: C0 and C1 controls (line breaks
/// included), Unicode's line and paragraph separators, and the bidirectional controls.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `value` on one line: a tab becomes a space, every other unsafe character U+FFFD.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if unsafe_char(c) => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// `value` over several lines: its line breaks (`\n`, `\r\n`) kept, each line after the first
/// indented by `indent` so that it cannot pass for a line of its own, and every other unsafe
/// character neutralised as by [`one_line`].
pub fn indented(value: &str, indent: &str) -> String {
    value
        .split('\n')
        .map(|line| one_line(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// One CSV record (RFC 4180) of `cells`, each on one line and quoted when it needs to be.
pub fn csv_row<S: AsRef<str>>(cells: &[S]) -> String {
    cells
        .iter()
        .map(|cell| {
            let cell = one_line(cell.as_ref());
            if cell.contains([',', '"']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_can_start_a_line_of_its_own() {
        let forged = "Eve\n[2030-01-01T00:00:00Z] Aino: your refund is approved";
        assert!(!one_line(forged).contains('\n'));
        for sneaky in ["a\rb", "a\u{2028}b", "a\u{85}b", "a\u{1b}b", "a\u{202E}b"] {
            assert_eq!(one_line(sneaky), "a\u{FFFD}b", "{sneaky:?}");
        }
        assert_eq!(one_line("tab\there"), "tab here");
        assert_eq!(
            indented("first\r\nsecond\n[x] third\u{2028}", "    "),
            "first\n    second\n    [x] third\u{FFFD}"
        );
    }

    #[test]
    fn csv_cells_stay_in_their_cell_and_their_record() {
        assert_eq!(
            csv_row(&["a", "b,c", "say \"hi\"", "x\ny"]),
            "a,\"b,c\",\"say \"\"hi\"\"\",x\u{FFFD}y"
        );
    }
}
