//! Exports of a session: the equivalent Python program of an endpoint, the log
//! as a Mermaid sequence diagram, and the log as CSV. Pure functions of the
//! session, shared by the window and `sockbench export`. Every string taken
//! from the session is encoded for its target by [`encode`]: a session file
//! can never add code to a program, lines to a diagram or formulas to a sheet.

pub mod csv;
pub mod encode;
pub mod mermaid;
pub mod python;
pub mod sequence;

use crate::model::Session;
use crate::model::replay::{Role, plan_session};

/// What to export to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Python,
    Mermaid,
    Csv,
}

/// Exports `session` (named `name`, which the Python program keeps in a literal). `endpoint`
/// picks the endpoint of a Python program; without it, the first client with
/// recorded payloads (or the first endpoint with any).
pub fn export(
    session: &Session,
    name: &str,
    format: Format,
    endpoint: Option<&str>,
) -> Result<String, String> {
    match format {
        Format::Mermaid => Ok(mermaid::to_mermaid(&session.log)),
        Format::Csv => Ok(csv::to_csv(&session.log)),
        Format::Python => {
            let plans = plan_session(session, endpoint, None).map_err(|e| e.to_string())?;
            let plan = plans
                .iter()
                .find(|p| p.role == Role::Client)
                .or(plans.first())
                .ok_or_else(|| "nothing recorded to export".to_owned())?;
            Ok(python::to_python(plan, name))
        }
    }
}
