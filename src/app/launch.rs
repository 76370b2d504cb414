//! Opening the workbench window: what `main` calls when no command is given.

use std::path::PathBuf;

/// Why the window did not open.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{}: no such file", .0.display())]
    NoSuchFile(PathBuf),
    #[error("the window could not open (is there a display?): {0}")]
    Window(String),
}

/// Opens the workbench window on `runtime`, on `file` if given, and returns
/// when it is closed.
pub fn launch(runtime: tokio::runtime::Handle, file: Option<PathBuf>) -> Result<(), LaunchError> {
    if let Some(path) = &file
        && !path.exists()
    {
        return Err(LaunchError::NoSuchFile(path.clone()));
    }
    let config = super::AppConfig::for_desktop(runtime, file);
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("sockbench")
            .with_app_id(super::APP_ID)
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([800.0, 500.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    // eframe reads its preferences file itself, whole: one that is not a
    // small regular file (a fifo, a link to /dev/zero) would hang or exhaust
    // the window at start. Such a file is left alone and preferences live in
    // a fresh file for this run.
    if let Some(folder) = eframe::storage_dir(super::APP_ID) {
        let prefs = folder.join("app.ron");
        if let Err(why) = check_prefs_file(&prefs) {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "warning: {}: {why}; preferences are kept apart for this run",
                crate::model::escape_controls(&prefs.display().to_string())
            );
            options.persistence_path = Some(
                std::env::temp_dir().join(format!("sockbench-prefs-{}.ron", std::process::id())),
            );
        }
    }
    eframe::run_native(
        super::APP_ID,
        options,
        Box::new(move |cc| Ok(Box::new(super::App::new(cc, config)))),
    )
    .map_err(|e| LaunchError::Window(e.to_string()))
}

/// The most bytes a preferences file may have (it holds a few settings).
const PREFS_LIMIT: u64 = 4 * 1024 * 1024;

/// Whether eframe may read `file`: absent, or a regular file of bounded size.
fn check_prefs_file(file: &std::path::Path) -> Result<(), String> {
    if std::fs::symlink_metadata(file).is_err() {
        return Ok(());
    }
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() && m.len() <= PREFS_LIMIT => Ok(()),
        Ok(m) if m.is_file() => Err(format!(
            "the preferences file is {} bytes, more than {PREFS_LIMIT}",
            m.len()
        )),
        Ok(m) => Err(format!(
            "is {}, not a regular file",
            crate::persist::kind_of(m.file_type())
        )),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_that_are_not_a_small_file_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let prefs = dir.path().join("app.ron");
        assert!(check_prefs_file(&prefs).is_ok(), "absent is fine");
        std::fs::write(&prefs, "()").unwrap();
        assert!(check_prefs_file(&prefs).is_ok());
        std::fs::remove_file(&prefs).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &prefs).unwrap();
        let e = check_prefs_file(&prefs).unwrap_err();
        assert!(e.contains("character device"), "{e}");
        std::fs::remove_file(&prefs).unwrap();
        if std::process::Command::new("mkfifo")
            .arg(&prefs)
            .status()
            .is_ok_and(|s| s.success())
        {
            let e = check_prefs_file(&prefs).unwrap_err();
            assert!(e.contains("fifo"), "{e}");
        }
    }
}
