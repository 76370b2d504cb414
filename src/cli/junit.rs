//! `replay --check --report junit FILE.xml`: the check's results in the JUnit
//! XML that CI systems read. One test case per recorded conversation (a TCP
//! or TLS connection, a UDP exchange), named after its endpoint; a difference
//! is the case's `<failure>`, with the first line of the mismatch report as
//! its message and the whole report as its text; a run that could not be
//! compared gives every case an `<error>`. The ignore rules that applied go
//! to the case's `<system-out>`.

use std::fmt::Write as _;

use crate::model::replay::{ConversationCheck, EndpointPlan, ignored_text};

/// Text for XML content or an attribute value: the five special characters
/// as entities, line breaks and tabs as character references (so attribute
/// values keep them), and the characters XML 1.0 cannot carry at all (other
/// C0 controls, U+FFFE, U+FFFF) written as `\u{..}`.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            '\t' => s.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

/// One test case: its endpoint, its name, and what went wrong, if anything.
struct Case {
    classname: String,
    name: String,
    /// (`failure` or `error`, message, text).
    problem: Option<(&'static str, String, String)>,
    output: Option<String>,
}

fn case_name(udp: bool, conversation: usize) -> String {
    format!(
        "{} {conversation}",
        if udp { "exchange" } else { "connection" }
    )
}

fn document(suite: &str, timestamp: &str, cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.problem, Some(("failure", ..))))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.problem, Some(("error", ..))))
        .count();
    let suite = escape(suite);
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"sockbench replay\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        cases.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" timestamp=\"{}\">",
        cases.len(),
        escape(timestamp)
    );
    for c in cases {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&c.classname),
            escape(&c.name)
        );
        if c.problem.is_none() && c.output.is_none() {
            s.push_str("/>\n");
            continue;
        }
        s.push_str(">\n");
        if let Some((tag, message, text)) = &c.problem {
            let _ = writeln!(
                s,
                "      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                escape(message),
                if *tag == "failure" {
                    "mismatch"
                } else {
                    "not checked"
                },
                escape(text)
            );
        }
        if let Some(out) = &c.output {
            let _ = writeln!(s, "      <system-out>{}</system-out>", escape(out));
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// The report of a check that ran: one case per conversation of `checks`.
pub fn report(suite: &str, timestamp: &str, checks: &[ConversationCheck]) -> String {
    let cases: Vec<Case> = checks
        .iter()
        .map(|c| Case {
            classname: c.endpoint.clone(),
            name: case_name(c.udp, c.conversation),
            problem: c.mismatch.as_ref().map(|m| {
                let text = m.to_string();
                let message = text.lines().next().unwrap_or_default().to_owned();
                ("failure", message, text.trim_end().to_owned())
            }),
            output: (!c.ignored.is_empty())
                .then(|| format!("ignored: {}", ignored_text(&c.ignored))),
        })
        .collect();
    document(suite, timestamp, &cases)
}

/// The report of a check that could not compare (interrupted, bytes lost):
/// every conversation of `plans` is an error saying `why`.
pub fn not_checked(suite: &str, timestamp: &str, plans: &[EndpointPlan], why: &str) -> String {
    let cases: Vec<Case> = plans
        .iter()
        .flat_map(|p| {
            (1..=p.conversations.len()).map(move |n| Case {
                classname: p.name().to_owned(),
                name: case_name(p.is_udp(), n),
                problem: Some(("error", why.to_owned(), why.to_owned())),
                output: None,
            })
        })
        .collect();
    document(suite, timestamp, &cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_xml_cannot_carry_is_escaped() {
        assert_eq!(
            escape("a<b>&\"c'\n\t\r\u{0}\u{1b}\u{fffe}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;&#13;\\u{0}\\u{1b}\\u{fffe}é"
        );
    }
}
