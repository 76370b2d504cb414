//! The window's panes: their first sizes, chosen from the window's size so
//! that 1024×700 and 1920×1080 both start usable, and the toggles that hide
//! and show them. The person's own sizes (a dragged edge) are kept by egui's
//! memory, which eframe saves between runs with the panel ids; which panes are
//! shown is kept in [`Prefs`].
//!
//! When the window changes size, each pane keeps its share: its size as a
//! multiple of its first size, so a pane never dragged takes the first size
//! of the new window (as if it had started that big), and a dragged one
//! grows or shrinks in the same proportion ([`PaneShares`]).

use egui::{Context, Id, Ui, Vec2};

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

/// The three panes that are sized from the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Sidebar,
    Inspector,
    Endpoints,
}

impl Pane {
    /// The pane's first size, in a window (for the endpoints pane: a central
    /// area) `room` points wide or high.
    pub fn first_size(self, room: f32) -> f32 {
        match self {
            Pane::Sidebar => sidebar_width(room),
            Pane::Inspector => inspector_width(room),
            Pane::Endpoints => endpoints_height(room),
        }
    }
}

/// Each pane's size as a multiple of its first size, and the window's size;
/// kept in egui's memory from one frame to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaneShares {
    /// The window's size the last frame.
    pub window: Vec2,
    shares: [Option<f32>; 3],
}

impl PaneShares {
    fn id() -> Id {
        Id::unique("sockbench pane shares")
    }

    /// The shares of the last frame, with the window's size now.
    pub fn load(ctx: &Context) -> PaneShares {
        ctx.data(|d| d.get_temp(Self::id())).unwrap_or_default()
    }

    pub fn store(self, ctx: &Context, window: Vec2) {
        ctx.data_mut(|d| d.insert_temp(Self::id(), PaneShares { window, ..self }));
    }

    /// Whether the window changed size since the last frame (not on the first).
    pub fn resized(&self, window: Vec2) -> bool {
        self.window != Vec2::ZERO && self.window != window
    }

    /// The size `pane` takes in `room` after the window changed size: its
    /// share of its first size there; `None` before it was ever shown.
    pub fn size_in(&self, pane: Pane, room: f32) -> Option<f32> {
        Some(self.shares[pane as usize]? * pane.first_size(room))
    }

    /// `pane` is shown `size` big in `room`.
    pub fn note(&mut self, pane: Pane, size: f32, room: f32) {
        let first = pane.first_size(room);
        if first > 0.0 && size > 0.0 {
            self.shares[pane as usize] = Some(size / first);
        }
    }
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

    #[test]
    fn a_pane_keeps_its_share_when_the_window_changes_size() {
        let mut shares = PaneShares::default();
        assert!(
            !shares.resized(Vec2::new(1024.0, 700.0)),
            "not on the first frame"
        );
        assert_eq!(shares.size_in(Pane::Sidebar, 1920.0), None);
        // Never dragged: the first size of the new window.
        shares.note(Pane::Sidebar, sidebar_width(1024.0), 1024.0);
        let now = shares.size_in(Pane::Sidebar, 1920.0).unwrap();
        assert!((now - sidebar_width(1920.0)).abs() < 0.01, "{now}");
        // Dragged to twice its first size: twice the new first size.
        shares.note(Pane::Inspector, 2.0 * inspector_width(1024.0), 1024.0);
        let now = shares.size_in(Pane::Inspector, 1920.0).unwrap();
        assert!((now - 2.0 * inspector_width(1920.0)).abs() < 0.01, "{now}");
        shares.window = Vec2::new(1024.0, 700.0);
        assert!(shares.resized(Vec2::new(1920.0, 1080.0)));
        assert!(!shares.resized(Vec2::new(1024.0, 700.0)));
    }
}
