//! The window's panels and the views in them (rerun's `ui`). Views draw and
//! push [`AppCommand`]s; the frame runs them once every view has drawn.

use super::log_view::LogAction;
use super::{App, AppCommand, LogSource, View, inspector, panels};
use crate::model::KindTag;

impl App {
    /// One frame's painting: called by `eframe::App::ui`.
    pub(super) fn ui_frame(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.applied_theme != Some(self.prefs.theme) {
            ctx.set_theme(self.prefs.theme.preference());
            self.applied_theme = Some(self.prefs.theme);
        }
        let title = format!("{} — sockbench", self.doc.title());
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        self.sync_composer();
        let mut commands = Vec::new();
        // The log and the inspector say a relay's directions by name.
        self.log_view.relays.clear();
        for e in &self.doc.endpoints {
            if e.kind() == KindTag::Relay {
                self.log_view.relays.push(e.form.name.trim().to_owned());
            }
        }
        self.shortcuts_ui(&ctx, &mut commands);
        self.dropped_files_ui(&ctx, &mut commands);
        // Drawn again below, if the selected endpoint has a composer.
        self.composer_rect = None;

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui, &mut commands));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui, &mut commands));
        egui::Panel::top("replay bar").show(ui, |ui| self.replay_bar(ui, &mut commands));
        if !self.notices.is_empty() {
            egui::Panel::top("notices").show(ui, |ui| self.notices_ui(ui));
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        // First sizes from the window's size; a dragged edge is remembered
        // (egui's memory, saved by eframe), and which panes show is a preference.
        let window = ctx.content_rect().size();
        // A window that changed size gives each pane its share of the new room.
        let mut shares = panels::PaneShares::load(&ctx);
        let before = shares;
        let resized = shares.resized(window);
        let sized =
            |pane: panels::Pane, panel: egui::Panel, room: f32| match before.size_in(pane, room) {
                Some(size) if resized => panel.exact_size(size),
                _ => panel.default_size(pane.first_size(room)),
            };
        let mut shown = self.prefs.show_sidebar;
        let sidebar = sized(
            panels::Pane::Sidebar,
            egui::Panel::left("sidebar").resizable(true),
            window.x,
        )
        .show_collapsible(ui, &mut shown, |ui| self.sidebar_ui(ui, &mut commands));
        if let Some(r) = sidebar {
            shares.note(panels::Pane::Sidebar, r.response.rect.width(), window.x);
        }
        self.prefs.show_sidebar = shown;
        let mut shown = self.prefs.show_inspector;
        let inspector = sized(
            panels::Pane::Inspector,
            egui::Panel::right("inspector").resizable(true),
            window.x,
        )
        .show_collapsible(ui, &mut shown, |ui| {
            // Fill the panel, so its width is the person's choice, not the content's.
            ui.set_min_width(ui.available_width());
            let (log, mismatch) = match (&self.replay, self.log_source) {
                (Some(run), LogSource::Replay) => (
                    &run.log,
                    self.log_view.selected.and_then(|row| run.mismatch_at(row)),
                ),
                _ => (&self.doc.session.log, None),
            };
            let action = inspector::ui(
                ui,
                log,
                self.log_view.selected,
                self.prefs.time,
                mismatch,
                &self.log_view.relays,
            );
            match action {
                inspector::InspectorAction::None => {}
                inspector::InspectorAction::LoadIntoComposer(i) => {
                    commands.push(AppCommand::LoadIntoComposer(i));
                }
                inspector::InspectorAction::ReplyToPeer(i) => {
                    commands.push(AppCommand::ReplyToRow(i));
                }
            }
        });
        if let Some(r) = inspector {
            shares.note(panels::Pane::Inspector, r.response.rect.width(), window.x);
        }
        self.prefs.show_inspector = shown;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::Panel::top("quick send").show(ui, |ui| self.quick_send_ui(ui, &mut commands));
            let mut shown = self.prefs.show_endpoints;
            let room = ui.available_height();
            let endpoints = sized(
                panels::Pane::Endpoints,
                egui::Panel::top("endpoints").resizable(true),
                room,
            )
            .show_collapsible(ui, &mut shown, |ui| self.endpoint_pane(ui, &mut commands));
            if let Some(r) = endpoints {
                shares.note(panels::Pane::Endpoints, r.response.rect.height(), room);
            }
            self.prefs.show_endpoints = shown;
            ui.horizontal_wrapped(|ui| {
                for view in View::ALL {
                    ui.selectable_value(&mut self.view, view, view.label())
                        .on_hover_text(view.hint());
                }
                panels::toggles_ui(ui, &mut self.prefs);
            });
            ui.separator();
            self.lower_view(ui, &mut commands);
        });
        shares.store(&ctx, window);

        if ctx.input(|i| !i.raw.hovered_files.is_empty()) {
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop hint"),
            ));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            let (hint, composer_hint) = match self.composer_rect {
                Some(_) => (
                    "Drop a .ron session file to open it,\nany other file to load it into the composer",
                    true,
                ),
                None => ("Drop a .ron session file to open it", false),
            };
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                hint,
                egui::FontId::proportional(24.0),
                egui::Color32::WHITE,
            );
            if let (Some(composer), true) = (self.composer_rect, composer_hint) {
                let accent = ctx.global_style().visuals.selection.stroke.color;
                painter.rect_stroke(
                    composer,
                    4.0,
                    egui::Stroke::new(3.0, accent),
                    egui::StrokeKind::Outside,
                );
                painter.text(
                    composer.center(),
                    egui::Align2::CENTER_CENTER,
                    "Drop here: load into the composer (a .ron file too)",
                    egui::FontId::proportional(18.0),
                    egui::Color32::WHITE,
                );
            }
        }
        // The views' commands run before the dialogs draw, so a dialog they
        // open (the unsaved-changes question) shows in this frame.
        self.run_commands(std::mem::take(&mut commands));
        self.library_window(&ctx, &mut commands);
        self.modals(&ctx, &mut commands);
        self.run_commands(commands);
    }

    /// The view below the endpoints: the log or a teaching view.
    fn lower_view(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let endpoint = self
            .doc
            .endpoints
            .get(self.doc.selected)
            .map(|e| (e.form.name.trim().to_owned(), e.kind()));
        match self.view {
            View::Log => {
                let no_marks = std::collections::HashMap::new();
                let (log, marks) = match (&self.replay, self.log_source) {
                    (Some(run), LogSource::Replay) => (&run.log, &run.marked),
                    _ => (&self.doc.session.log, &no_marks),
                };
                self.log_view.set_framings(self.doc.framings());
                let action = self.log_view.ui(ui, log, &mut self.prefs, marks);
                if action == LogAction::Clear {
                    commands.push(AppCommand::ClearLog);
                }
            }
            View::Sequence => {
                let selected = self.log_view.selected;
                let log = match (&self.replay, self.log_source) {
                    (Some(run), LogSource::Replay) => &run.log,
                    _ => &self.doc.session.log,
                };
                if let Some(row) = self.sequence_view.ui(ui, log, selected) {
                    self.log_view.select(row);
                }
            }
            View::Stats => {
                let endpoints: Vec<_> = self
                    .doc
                    .endpoints
                    .iter()
                    .map(|e| (e.id, e.form.name.trim().to_owned(), e.kind()))
                    .collect();
                let selected = self.doc.endpoints.get(self.doc.selected).map(|e| e.id);
                self.stats_view
                    .ui(ui, &self.stats, &endpoints, selected, chrono::Utc::now());
            }
            View::Lifecycle | View::Stream | View::Python if endpoint.is_none() => {
                ui.label("Add an endpoint first: this view shows the selected endpoint.");
            }
            View::Lifecycle => {
                let (name, kind) = endpoint.unwrap_or((String::new(), KindTag::TcpClient));
                self.lifecycle_view.ui(
                    ui,
                    &self.doc.session.log,
                    &name,
                    kind,
                    &self.os_tcp,
                    self.prefs.time,
                );
            }
            View::Stream => {
                let name = endpoint.map(|e| e.0).unwrap_or_default();
                self.stream_view.ui(ui, &self.doc.session.log, &name);
            }
            View::Python => {
                let name = endpoint.map(|e| e.0).unwrap_or_default();
                // The name an export gives the session, as File → Export says it.
                let (session_name, _) = self.export_names();
                let changes = self.doc.changes;
                let session = self.doc.to_session();
                self.code_view
                    .ui(ui, session, &name, changes, &session_name);
            }
        }
    }

    /// The log the log view shows.
    pub(super) fn shown_log(&self) -> &crate::model::TrafficLog {
        match (&self.replay, self.log_source) {
            (Some(run), LogSource::Replay) => &run.log,
            _ => &self.doc.session.log,
        }
    }
}
