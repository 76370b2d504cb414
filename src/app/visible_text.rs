//! Text fields that may hold text from a file (a session's notes, an
//! endpoint's name): what they draw must not be rewritten by it.
//!
//! A label shows outside text through
//! [`escape_controls`](crate::model::display::escape_controls). An editable
//! field cannot: its cursor counts the characters of the text itself. So a
//! field draws each control or bidi character as one visible mark
//! ([`MARK`]) in its place (the way a password field draws dots), and the
//! text stays exactly what it is. A line break stays a line break where the
//! field has lines.

use std::sync::Arc;

use egui::text::LayoutJob;
use egui::{Galley, TextBuffer, Ui};

use crate::model::display::is_unsafe_for_display;

/// What a field draws in place of a control or bidi character: a glyph that
/// both default fonts have.
pub const MARK: char = '◊';

/// `text` as a field draws it: each dangerous character one [`MARK`]
/// (line feeds kept when `multiline`). One character for one, so the
/// field's cursor positions still fit the text.
pub fn marked(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| {
            if (multiline && c == '\n') || !is_unsafe_for_display(c) {
                c
            } else {
                MARK
            }
        })
        .collect()
}

/// True when a field would draw marks for `text`.
pub fn has_marks(text: &str, multiline: bool) -> bool {
    text.chars()
        .any(|c| !(multiline && c == '\n') && is_unsafe_for_display(c))
}

/// A layouter for [`egui::TextEdit::layouter`] that draws [`marked`] text in
/// the field's usual font and colour.
pub fn layouter(multiline: bool) -> impl FnMut(&Ui, &dyn TextBuffer, f32) -> Arc<Galley> {
    move |ui: &Ui, text: &dyn TextBuffer, wrap_width: f32| {
        let font = egui::TextStyle::Body.resolve(ui.style());
        let color = ui
            .visuals()
            .override_text_color
            .unwrap_or_else(|| ui.visuals().widgets.inactive.text_color());
        let shown = marked(text.as_str(), multiline);
        let mut job = if multiline {
            LayoutJob::simple(shown, font, color, wrap_width)
        } else {
            LayoutJob::simple_singleline(shown, font, color)
        };
        job.keep_trailing_whitespace = true;
        ui.fonts_mut(|f| f.layout_job(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mark_for_one_character() {
        let text = "a\u{202e}b\nc\x1b[1m\td";
        let shown = marked(text, true);
        assert_eq!(shown, "a◊b\nc◊[1m◊d");
        assert_eq!(shown.chars().count(), text.chars().count());
        assert_eq!(marked(text, false), "a◊b◊c◊[1m◊d");
        assert!(has_marks(text, true));
        assert!(!has_marks("plain\ntext", true));
        assert!(has_marks("plain\ntext", false));
    }
}
