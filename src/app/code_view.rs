//! The code view: the selected endpoint as the equivalent Python program
//! (standard `socket` module), with a copy button.

use egui::{RichText, Ui};

use crate::export::encode::python_comment;
use crate::export::python::to_python_with;
use crate::model::display::{escape_controls, escape_controls_keep_lines};
use crate::model::replay::{Conversation, EndpointPlan, Role, plan_endpoint};
use crate::model::{EndpointKind, EndpointSpec, Session};

/// The program, rebuilt when the document or the endpoint changed.
#[derive(Default)]
pub struct CodeView {
    cache: Option<(u64, String, String)>,
    /// When the program was last copied, for the "copied" mark.
    copied_at: Option<std::time::Instant>,
}

/// The plan of an endpoint, or an empty one when it recorded nothing yet (the
/// program then shows the calls without payloads).
fn plan_for(session: &Session, spec: &EndpointSpec) -> EndpointPlan {
    plan_endpoint(session, spec, None).unwrap_or_else(|| EndpointPlan {
        spec: spec.clone(),
        role: match &spec.kind {
            kind if kind.tag().is_server() => Role::Server,
            EndpointKind::Udp { remote: None, .. } => Role::Server,
            EndpointKind::UnixDatagram { remote: None, .. } => Role::Server,
            _ => Role::Client,
        },
        conversations: vec![Conversation {
            steps: Vec::new(),
            peer_closed: false,
            remote: String::new(),
            dropped: 0,
        }],
        ignore: Vec::new(),
    })
}

impl CodeView {
    /// `changes` is the document's change count, `name` the session's name.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        session: Result<Session, String>,
        endpoint: &str,
        changes: u64,
        name: &str,
    ) {
        let fresh = matches!(&self.cache, Some((c, e, _)) if *c == changes && e == endpoint);
        if !fresh {
            let program = match &session {
                Ok(session) => match session.endpoint(endpoint) {
                    Some(spec) => to_python_with(&plan_for(session, spec), name, &session.library),
                    None => python_comment(&format!("No endpoint named \"{endpoint}\".")),
                },
                // The error may quote the session: one escaped comment line, never code.
                Err(e) => python_comment(&format!("Fix the session first: {e}")),
            };
            self.cache = Some((changes, endpoint.to_owned(), program));
        }
        let program = self.cache.as_ref().map(|c| c.2.clone()).unwrap_or_default();
        ui.horizontal(|ui| {
            if ui
                .button("📋 Copy program")
                .on_hover_text("Copy the Python program; run it with python3 against the same peer")
                .clicked()
            {
                ui.ctx().copy_text(program.clone());
                self.copied_at = Some(std::time::Instant::now());
            }
            super::copied_mark(ui, &mut self.copied_at);
            ui.label(format!(
                "\"{}\" as Python, standard library only: the same calls, the recorded payloads.",
                escape_controls(endpoint)
            ));
        });
        egui::ScrollArea::both()
            .id_salt("python program")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                // Shown with its lines; a control or bidi character that reached the
                // program text (the copy holds it as written) is shown escaped.
                ui.add(
                    egui::Label::new(
                        RichText::new(escape_controls_keep_lines(&program)).monospace(),
                    )
                    .extend(),
                );
            });
    }
}
