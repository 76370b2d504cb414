//! The window's panes: their first sizes, chosen from the window's size so
//! that 1024×700 and 1920×1080 both start usable, and the toggles that hide
//! and show them. The person's own sizes (a dragged edge) are kept by egui's
//! memory, which eframe saves between runs with the panel ids; which panes are
//! shown is kept in [`Prefs`].

use egui::Ui;

use super::config::Prefs;

/// The sidebar's first width in a window `width` points wide.
pub fn sidebar_width(width: f32) -> f32 {
    (width * 0.16).clamp(150.0, 230.0)
}

/// The inspector's first width: narrow at 1024 (so the log keeps a readable
/// payload column), wide enough at 1920 for a 16-byte dump.
pub fn inspector_width(width: f32) -> f32 {
    (width * 0.6 - 350.0).clamp(250.0, 680.0)
}

/// The endpoints pane's first height in a central area `height` points high:
/// its controls and the composer above, at least a dozen log rows below.
pub fn endpoints_height(height: f32) -> f32 {
    (height * 0.45).clamp(230.0, 400.0)
}

/// Toggles for the sidebar, the endpoints pane and the inspector, at the right
/// end of the row they are drawn in. A hidden pane also comes back by dragging
/// its edge, or by double-clicking it.
pub fn toggles_ui(ui: &mut Ui, prefs: &mut Prefs) {
    // Icons, not words: the row also holds the view tabs, at 1024 wide.
    // At the right end where they fit; else after the tabs (the row wraps),
    // never drawn over them.
    let needed = 3.0 * (ui.spacing().interact_size.y + ui.spacing().item_spacing.x) + 16.0;
    let layout = if ui.available_width() >= needed {
        egui::Layout::right_to_left(egui::Align::Center)
    } else {
        egui::Layout::left_to_right(egui::Align::Center)
    };
    ui.with_layout(layout, |ui| {
        ui.toggle_value(&mut prefs.show_inspector, "◨")
            .on_hover_text("Show or hide the inspector (the selected row in full)");
        let endpoints = if prefs.show_endpoints { "⏶" } else { "⏷" };
        ui.toggle_value(&mut prefs.show_endpoints, endpoints)
            .on_hover_text("Show or hide the endpoints pane above (hidden: more log rows)");
        ui.toggle_value(&mut prefs.show_sidebar, "◧")
            .on_hover_text("Show or hide the sessions sidebar");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sizes_leave_the_centre_room_at_every_window_size() {
        for (w, h) in [(1024.0, 700.0), (1400.0, 900.0), (1920.0, 1080.0)] {
            let centre = w - sidebar_width(w) - inspector_width(w);
            assert!(centre >= 0.45 * w, "{w}: the centre keeps {centre}");
            assert!(endpoints_height(h - 100.0) <= 0.5 * h);
        }
        // At 1920 the inspector holds a 16-byte dump (78 monospace characters).
        assert!(inspector_width(1920.0) >= 78.0 * 7.5 + 40.0);
    }
}
