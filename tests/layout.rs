//! The window's layout at the sizes people use (1024×700, 1400×900,
//! 1920×1080), driven headless with egui_kittest over real loopback sockets:
//! the controls a person needs lie inside the window and apart from each
//! other, and the inspector reads a payload as text and as a hex dump.
//!
//! The tests read only what the window shows (accessible labels, values and
//! rectangles), never the app's fields.

mod common;
use common::gui::Gui;

use egui::{Key, Modifiers, Rect, Vec2};
use egui_kittest::kittest::{NodeT, Queryable};
use sockbench::model::payload::to_text_notation;

const SIZES: [(f32, f32); 3] = [(1024.0, 700.0), (1400.0, 900.0), (1920.0, 1080.0)];

/// A window of a given size on a private runtime and a private sessions folder.
type Window = Gui;

impl Window {
    fn new(width: f32, height: f32) -> Window {
        let mut window = Gui::build(
            [width, height],
            |dir| common::gui::copy_examples(dir, false),
            |_, _| {},
        );
        window.wait_for("the session list", |w| w.shows("tcp-echo-pair"));
        window
    }

    /// Opens the example `session` and waits for its endpoint `tab`.
    fn open(&mut self, session: &str, tab: &str) {
        self.click(session);
        let tab = tab.to_owned();
        self.wait_for("the session's endpoints", move |w| w.count(&tab) == 1);
        self.step();
    }

    fn start_all(&mut self) {
        self.click("▶ Start all");
        self.wait_for("the endpoints up", |w| w.shows("● connected"));
    }

    /// Replaces the composer's payload by typing `text` and sends it.
    fn send(&mut self, text: &str) {
        self.harness.get_by_label("Payload").focus();
        self.step();
        self.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
        self.step();
        self.harness.get_by_label("Payload").type_text(text);
        self.step();
        self.harness
            .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
        self.step();
    }

    /// The rectangle of the one control whose label is `label`.
    fn rect(&self, label: &str) -> Rect {
        self.harness.get_by_label(label).rect()
    }

    /// The hex dump in the inspector, and how many bytes a row it holds.
    fn dump(&self) -> Option<(Rect, String, usize)> {
        let node = self.harness.query_by_label_contains("Bytes, ")?;
        let label = node.accesskit_node().label()?;
        let per_row = label
            .trim_start_matches("Bytes, ")
            .split(' ')
            .next()?
            .parse()
            .ok()?;
        let value = node.accesskit_node().value().unwrap_or_default();
        Some((node.rect(), value, per_row))
    }

    /// The inspector's text view.
    fn text_view(&self) -> String {
        self.harness
            .get_by_label("As text")
            .accesskit_node()
            .value()
            .unwrap_or_default()
    }

    /// Clicks the last row whose event column says `event` (the newest).
    fn select_last(&mut self, event: &str) {
        let node = self
            .harness
            .query_all_by_label(event)
            .last()
            .unwrap_or_else(|| panic!("no {event:?} row"));
        node.click();
        self.step();
        self.step();
    }

    /// Clicks the first row whose event column says `event` (the oldest).
    fn select_first(&mut self, event: &str) {
        let node = self
            .harness
            .query_all_by_label(event)
            .next()
            .unwrap_or_else(|| panic!("no {event:?} row"));
        node.click();
        self.step();
        self.step();
    }

    /// `rect` lies inside the window, with `name` in the message.
    fn assert_inside(&self, name: &str, rect: Rect) {
        let window = Rect::from_min_size(egui::Pos2::ZERO, self.size);
        assert!(
            window.contains_rect(rect),
            "{}×{}: {name} at {rect:?} is not inside the window",
            self.size.x,
            self.size.y
        );
    }
}

/// No two of `rects` overlap (touching edges are fine).
fn assert_apart(size: Vec2, rects: &[(&str, Rect)]) {
    for (i, (a, ra)) in rects.iter().enumerate() {
        for (b, rb) in &rects[i + 1..] {
            let overlap = ra.intersect(*rb);
            assert!(
                overlap.width() <= 0.5 || overlap.height() <= 0.5,
                "{}×{}: {a} at {ra:?} overlaps {b} at {rb:?}",
                size.x,
                size.y
            );
        }
    }
}

/// The top of a scrolled view: its first line must be inside the window
/// (the rest scrolls).
fn top_of(rect: Rect) -> Rect {
    Rect::from_min_size(rect.min, Vec2::new(rect.width(), rect.height().min(20.0)))
}

#[test]
fn the_echo_pair_controls_lie_inside_the_window_and_apart_at_each_size() {
    for (w, h) in SIZES {
        let mut window = Window::new(w, h);
        window.open("tcp-echo-pair", "● client");
        // Before the start: Start, the composer's Send, the log's payload column.
        let before = [
            ("Start", window.rect("▶ Start")),
            ("Remove", window.rect("🗑 Remove")),
            ("Send to", window.rect("Send to")),
            ("Send", window.rect("➤ Send")),
            ("payload column", window.rect("Payload or detail")),
        ];
        for (name, rect) in before {
            window.assert_inside(name, rect);
        }
        assert_apart(window.size, &before);
        // The payload column is readable, not a sliver.
        // (The header's label is as wide as its words; the column runs to
        // the log's right edge, where the pane toggles end.)
        let right = window.rect("◨").right();
        let column = right - window.rect("Payload or detail").left();
        let log_width = right - window.rect("Time").left();
        assert!(
            column >= 0.3 * log_width,
            "{w}×{h}: the payload column is {column} of {log_width} points"
        );

        window.start_all();
        window.send("hello at this size\\n");
        window.wait_for("the echo", |w| w.count("← received") >= 2);
        window.select_last("← received");
        window.wait_for("the inspector's dump", |w| w.dump().is_some());
        let (dump, _, _) = window.dump().unwrap();
        // Running, a client shows Stop, Abort, Half-close and Remove: none of
        // them may fall under the composer's "Send to" box.
        let running = [
            ("Stop", window.rect("⏹ Stop")),
            ("Half-close", window.rect("⏏ Half-close")),
            ("Remove", window.rect("🗑 Remove")),
            ("Send to", window.rect("Send to")),
            ("Send", window.rect("➤ Send")),
            ("payload column", window.rect("Payload or detail")),
            ("dump", top_of(dump)),
        ];
        for (name, rect) in running {
            window.assert_inside(name, rect);
        }
        assert_apart(window.size, &running);
    }
}

#[test]
fn an_http_exchange_is_readable_at_each_size() {
    let request = "GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n";
    for (w, h) in SIZES {
        let mut window = Window::new(w, h);
        window.open("http-get", "● browser");
        // The browser sends; its tab shows its badge.
        window.click("● browser");
        window.click("▶ Start all");
        window.wait_for("the browser connected", |w| w.shows("● connected"));
        window.send(request);
        window.wait_for("the response", |w| w.count("← received") >= 2);
        window.select_last("← received");
        window.wait_for("the inspector's dump", |w| w.dump().is_some());
        let text = window.text_view();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\\r\\n\nContent-Type: text/plain\\r\\n\n"),
            "{w}×{h}: the response reads line by line: {text:?}"
        );
        let (dump, _, _) = window.dump().unwrap();
        let shown = [
            ("Send", window.rect("➤ Send")),
            ("Start all", window.rect("▶ Start all")),
            ("payload column", window.rect("Payload or detail")),
            (
                "text view",
                top_of(window.harness.get_by_label("As text").rect()),
            ),
            ("dump", top_of(dump)),
        ];
        for (name, rect) in shown {
            window.assert_inside(name, rect);
        }
        assert_apart(window.size, &shown);
    }
}

/// A 1 KiB HTTP response: a header, then numbered lines.
fn http_response_1k() -> Vec<u8> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ";
    let mut body = String::new();
    let mut n = 0;
    while body.len() < 1024 - head.len() - 10 {
        n += 1;
        body.push_str(&format!("line {n:02}: the quick brown fox\r\n"));
    }
    let mut response = format!("{head}{}\r\n\r\n{body}", body.len()).into_bytes();
    response.resize(1024, b'.');
    response
}

#[test]
fn a_1_kib_http_response_reads_as_text_and_as_a_16_byte_dump_at_1920() {
    let response = http_response_1k();
    assert_eq!(response.len(), 1024);
    let mut window = Window::new(1920.0, 1080.0);
    window.open("tcp-echo-pair", "● client");
    window.start_all();
    window.send(&to_text_notation(&response));
    window.wait_for("the 1 KiB row", |w| w.count("→ sent") >= 2);
    // The client's write, one row of 1024 bytes.
    window.select_first("→ sent");
    window.wait_for("the inspector's dump", |w| w.dump().is_some());
    let (rect, dump, per_row) = window.dump().unwrap();
    window.assert_inside("dump", top_of(rect));
    assert_eq!(per_row, 16, "16 bytes a row at 1920 wide");
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 64, "1024 bytes, 16 a row");
    for line in &lines {
        let hex = line.split('|').next().unwrap_or_default();
        assert_eq!(
            hex.split_whitespace().skip(1).count(),
            16,
            "a full row: {line:?}"
        );
    }
    assert!(lines[0].ends_with("|HTTP/1.1 200 OK.|"), "{}", lines[0]);
    // The text view: one line per line of the response, each ending in its
    // visible \r\n.
    let text = window.text_view();
    let text_lines: Vec<&str> = text.lines().collect();
    assert_eq!(text_lines[0], "HTTP/1.1 200 OK\\r\\n");
    assert_eq!(text_lines[1], "Content-Type: text/plain\\r\\n");
    assert!(text_lines.contains(&"line 01: the quick brown fox\\r\\n"));
    assert!(
        text_lines.len() > 25,
        "every line of the body: {}",
        text_lines.len()
    );
}

#[test]
fn the_dump_narrows_to_8_or_4_bytes_a_row_only_in_a_narrow_inspector() {
    let mut window = Window::new(1024.0, 700.0);
    window.open("tcp-echo-pair", "● client");
    window.start_all();
    window.send("0123456789abcdef0123456789abcdef\\n");
    window.wait_for("the echo", |w| w.count("← received") >= 2);
    window.select_last("← received");
    window.wait_for("the inspector's dump", |w| w.dump().is_some());
    let (_, dump, per_row) = window.dump().unwrap();
    assert!(per_row == 8 || per_row == 4, "{per_row} a row at 1024 wide");
    let first = dump.lines().next().unwrap();
    assert!(
        first.ends_with(&format!("|{}|", &"0123456789abcdef"[..per_row])),
        "{first}"
    );
}

#[test]
fn the_log_follows_new_rows_after_the_split_is_dragged() {
    let mut window = Window::new(1024.0, 700.0);
    window.open("tcp-echo-pair", "● client");
    window.start_all();
    // More rows than the log shows at this size.
    for n in 0..8 {
        window.send(&format!("row {n}\\n"));
        // (Rows scrolled out of view are not laid out: the status bar counts.)
        let want = format!("received {} payloads", 2 * (n + 1));
        window.wait_for("the echo", move |w| w.shows(&want));
    }
    // Drag the split under the endpoints pane down, then up (the log
    // shrinks, then grows), as a person making room.
    let split = window
        .harness
        .query_all_by_label("Resize panel")
        .map(|n| n.rect())
        .find(|r| r.width() > r.height())
        .expect("the endpoints pane's split");
    let at = split.center();
    for (from, to) in [
        (at, at + Vec2::new(0.0, 60.0)),
        (at + Vec2::new(0.0, 60.0), at),
    ] {
        window.harness.hover_at(from);
        window.step();
        window.harness.drag_at(from);
        window.step();
        for k in 1..=6 {
            window
                .harness
                .hover_at(from + (to - from) * (k as f32 / 6.0));
            window.step();
        }
        window.harness.drop_at(to);
        window.step();
        window.step();
    }
    window.send("the newest row\\n");
    window.wait_for("the newest echo", |w| w.shows("received 18 payloads"));
    for _ in 0..5 {
        window.step();
    }
    // The newest row is on screen, under the header, inside the window.
    let newest = window
        .harness
        .query_all_by_label_contains("the newest row")
        .map(|n| n.rect())
        .max_by(|a, b| a.top().total_cmp(&b.top()))
        .expect("the newest row is laid out");
    let header = window.rect("Payload or detail");
    assert!(
        newest.top() > header.bottom() && newest.bottom() <= 700.0,
        "the newest row at {newest:?} is not in view (header {header:?})"
    );
}

/// A relay: its Seed and impairment fields each stand alone in a grid.
const RELAY: &str = r#"(format: 1, endpoints: [(name: "r", kind: Relay(transport: Tcp, listen: "127.0.0.1:0", upstream: "127.0.0.1:9"))])"#;

#[test]
fn fields_alone_in_their_grid_are_as_wide_as_the_others_at_each_size() {
    for (w, h) in SIZES {
        let mut window = Gui::in_folder([w, h], &[("relay", RELAY.to_owned())]);
        window.wait_for("the session list", |w| w.count("relay") == 1);
        window.open("relay", "● r");
        window.click("Impairments client → upstream");
        let upstream = window.rect("Upstream").width();
        for field in ["Seed", "Latency ↑"] {
            let width = window.rect(field).width();
            assert!(
                width >= upstream.min(140.0) - 0.5,
                "{w}×{h}: {field} is {width} wide, Upstream {upstream}"
            );
        }
    }
}

/// The log's bar is one row at every size (the rows keep their room), and
/// none of its controls is lost: the filters stand in the bar or in its
/// Filters menu, the rarely used actions in the bar or in its "⋯" menu.
#[test]
fn the_log_bar_is_one_row_at_each_size_and_keeps_every_control() {
    for (w, h) in SIZES {
        let mut window = Window::new(w, h);
        window.open("tcp-echo-pair", "● client");
        let find = window.rect("Find");
        let latest = window.rect("⬇ Latest");
        let filters = match window.harness.query_by_label("Endpoints") {
            Some(node) => node.rect(),
            None => window.harness.get_by_label_contains("⏷ Filters").rect(),
        };
        for (name, rect) in [("Latest", latest), ("the filters", filters)] {
            assert!(
                (rect.center().y - find.center().y).abs() < 4.0,
                "{w}×{h}: {name} at {rect:?} is not on Find's row {find:?}"
            );
            window.assert_inside(name, rect);
        }
        // The row count ends the bar inside the log's pane, not under the
        // inspector, also when the bar holds Reads | Messages (a session
        // with framing).
        for (session, tab) in [("tcp-echo-pair", "● client"), ("scheduled-chat", "● alice")] {
            let mut window = Window::new(w, h);
            window.open(session, tab);
            if session == "scheduled-chat" {
                assert!(window.shows("Messages"), "{session} has framing");
            }
            let count = window.rect("0 rows");
            let inspector = window.harness.get_by_label("Inspector").rect();
            assert!(
                count.right() <= inspector.left(),
                "{w}×{h}, {session}: the row count {count:?} runs past the log's pane (inspector at {inspector:?})"
            );
        }
        if window.harness.query_by_label("Endpoints").is_none() {
            window.harness.get_by_label_contains("⏷ Filters").click();
            window.step();
            window.step();
            for choice in ["all endpoints", "all rows", "all peers", "as text"] {
                assert!(
                    window.shows(choice),
                    "{w}×{h}: the Filters menu holds {choice}"
                );
            }
            window.harness.key_press(Key::Escape);
            window.step();
            window.step();
        }
        if window.harness.query_by_label("🗑 Clear log").is_none() {
            window.click("⋯");
        }
        for action in ["⏵ Playback", "🗑 Clear log"] {
            assert!(window.shows(action), "{w}×{h}: {action} is reachable");
        }
    }
}

/// Where the panes' edges lie: the central area's left edge (the sidebar's
/// width), the inspector's left edge, and the view tabs' top (under the
/// endpoints pane).
fn pane_edges(window: &Window) -> [f32; 3] {
    let log = window.rect("📜 Log");
    [
        log.left(),
        window.harness.get_by_label("Inspector").rect().left(),
        log.top(),
    ]
}

/// A window started at 1024×700 and then made 1920×1080 lays its panes out
/// as one started at 1920×1080: the panes use the new room, not their
/// first sizes.
#[test]
fn panes_use_the_room_of_a_window_made_larger() {
    let mut grown = Window::new(1024.0, 700.0);
    grown.open("tcp-echo-pair", "● client");
    let small = pane_edges(&grown);
    grown.harness.set_size(Vec2::new(1920.0, 1080.0));
    for _ in 0..5 {
        grown.step();
    }
    let mut fresh = Window::new(1920.0, 1080.0);
    fresh.open("tcp-echo-pair", "● client");
    let (got, want) = (pane_edges(&grown), pane_edges(&fresh));
    for (i, name) in ["the sidebar's edge", "the inspector's edge", "the log bar"]
        .iter()
        .enumerate()
    {
        assert!(
            (got[i] - want[i]).abs() <= 2.0,
            "{name}: at {} grown from 1024×700 ({} before), at {} started at 1920×1080",
            got[i],
            small[i],
            want[i]
        );
    }
}
