//! The log's memory budget: how many payload bytes stay in memory, and what
//! happens to the rest (spilled to a file on disk, or dropped).

/// The default budget: 256 MiB of payload bytes in memory.
pub const DEFAULT_MEMORY: u64 = 256 * 1024 * 1024;
/// Bytes of a dropped payload kept for its row's preview (at most 255).
pub const PREVIEW_BYTES: u8 = 128;

/// What happens to payload bytes beyond the budget.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Overflow {
    /// Written to a spill file on disk and read back from it when needed.
    #[default]
    Spill,
    /// Not kept: the entry keeps its length and the first bytes of its preview.
    Drop,
}

impl Overflow {
    pub fn word(self) -> &'static str {
        match self {
            Overflow::Spill => "spill",
            Overflow::Drop => "drop",
        }
    }
}

/// How much of the payload bytes a [`super::TrafficLog`] keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogBudget {
    /// Payload bytes kept in memory; beyond, `overflow` decides.
    pub memory: u64,
    pub overflow: Overflow,
    /// Bytes of each dropped payload kept for its preview.
    pub preview: u8,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            memory: DEFAULT_MEMORY,
            overflow: Overflow::Spill,
            preview: PREVIEW_BYTES,
        }
    }
}

impl LogBudget {
    pub fn new(memory: u64, overflow: Overflow) -> Self {
        LogBudget {
            memory,
            overflow,
            preview: PREVIEW_BYTES,
        }
    }

    /// Keeps no payload bytes at all, only entries and counts (a quiet
    /// headless run that saves nothing).
    pub fn counts_only() -> Self {
        LogBudget {
            memory: 0,
            overflow: Overflow::Drop,
            preview: 0,
        }
    }
}

/// `256 MiB`, `1 GiB`, `1.5 GiB`, `512 KiB`, `100 bytes`: a size as people read it.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if bytes >= unit {
            if bytes.is_multiple_of(unit) {
                return format!("{} {name}", bytes / unit);
            }
            let tenths = format!("{:.1}", bytes as f64 / unit as f64);
            // 480.0 MiB reads as 480 MiB, though a few bytes more.
            let shown = tenths.strip_suffix(".0").unwrap_or(&tenths);
            return format!("{shown} {name}");
        }
    }
    if bytes == 1 {
        "1 byte".into()
    } else {
        format!("{bytes} bytes")
    }
}

/// A size exactly, in the largest unit that divides it: `256 MiB`, `1500 bytes`.
pub fn exact_size_text(bytes: u64) -> String {
    for (name, unit) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// The largest size accepted: 1 PiB, far beyond any machine's memory or disk.
const MAX_SIZE: u64 = 1 << 50;

/// Reads a size: a whole number of bytes (`1048576`, `0`), or a number with a
/// unit: `KiB MiB GiB TiB` (powers of 1024), `kB MB GB TB` (powers of 1000),
/// `K M G T` as 1024-based shorthands, `B` for bytes; case-insensitive, a space
/// between is fine (`1.5 GiB`). Errors say what is wrong, without the value
/// (the caller names the flag or field and quotes the value).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let text = value.trim();
    if text.is_empty() {
        return Err("give a size such as 256MiB, 1GiB or 0".into());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    if number.is_empty() {
        return Err("the size starts with a number (256MiB, 1GiB, 0)".into());
    }
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{:?} is not a unit: use B, KiB, MiB, GiB or TiB (or kB, MB, GB, TB)",
                unit
            ));
        }
    };
    let number = number.replace('_', "");
    let bytes = if number.contains('.') {
        let n: f64 = number
            .parse()
            .map_err(|_| format!("{number:?} is not a number"))?;
        let bytes = n * factor as f64;
        if !bytes.is_finite() || bytes > MAX_SIZE as f64 {
            return Err("more than 1 PiB is not a usable size".into());
        }
        bytes.round() as u64
    } else {
        let n: u64 = number
            .parse()
            .map_err(|_| "more than 1 PiB is not a usable size".to_string())?;
        n.checked_mul(factor)
            .filter(|b| *b <= MAX_SIZE)
            .ok_or_else(|| "more than 1 PiB is not a usable size".to_string())?
    };
    Ok(bytes)
}

/// The file shape of a session's budget: `(memory: "64 MiB", overflow: Drop)`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "LogBudget", deny_unknown_fields)]
struct LogBudgetFile {
    memory: String,
    #[serde(default)]
    overflow: Overflow,
}

impl serde::Serialize for LogBudget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LogBudgetFile {
            memory: exact_size_text(self.memory),
            overflow: self.overflow,
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for LogBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = LogBudgetFile::deserialize(d)?;
        let memory = parse_size(&file.memory).map_err(|e| {
            serde::de::Error::custom(format!("log budget memory {:?}: {e}", file.memory))
        })?;
        Ok(LogBudget::new(memory, file.overflow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_their_units() {
        for (text, bytes) in [
            ("0", 0),
            ("1024", 1024),
            ("256MiB", 256 << 20),
            ("256 MiB", 256 << 20),
            ("1GiB", 1 << 30),
            ("1gib", 1 << 30),
            ("1G", 1 << 30),
            ("1.5 GiB", 3 << 29),
            ("1KiB", 1024),
            ("2kB", 2000),
            ("1MB", 1_000_000),
            ("64 B", 64),
            ("1_000", 1000),
            (" 8 M ", 8 << 20),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        assert_eq!(
            parse_size("").unwrap_err(),
            "give a size such as 256MiB, 1GiB or 0"
        );
        assert_eq!(
            parse_size("MiB").unwrap_err(),
            "the size starts with a number (256MiB, 1GiB, 0)"
        );
        assert_eq!(
            parse_size("-1").unwrap_err(),
            "the size starts with a number (256MiB, 1GiB, 0)"
        );
        assert_eq!(
            parse_size("12 parsecs").unwrap_err(),
            "\"parsecs\" is not a unit: use B, KiB, MiB, GiB or TiB (or kB, MB, GB, TB)"
        );
        assert_eq!(
            parse_size("1.2.3").unwrap_err(),
            "\"1.2.3\" is not a number"
        );
        for huge in [
            "2PiB",
            "99999999999999999999",
            "1e400",
            "2000 TiB",
            "1025 TiB",
        ] {
            assert!(parse_size(huge).is_err(), "{huge}");
        }
    }

    #[test]
    fn sizes_read_back_from_their_text() {
        for bytes in [0, 1, 1000, 1024, 256 << 20, 1 << 30, 5 << 40] {
            let text = size_text(bytes);
            assert_eq!(parse_size(&text), Ok(bytes), "{text}");
        }
        assert_eq!(size_text(256 << 20), "256 MiB");
        assert_eq!(size_text(3 << 29), "1.5 GiB");
        assert_eq!(size_text((480 << 20) + 5), "480 MiB");
        for bytes in [0, 1, 1500, 3 << 29, (1 << 30) + 1] {
            assert_eq!(parse_size(&exact_size_text(bytes)), Ok(bytes));
        }
    }
}
