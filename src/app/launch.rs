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
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("sockbench")
            .with_app_id(super::APP_ID)
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([800.0, 500.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        super::APP_ID,
        options,
        Box::new(move |cc| Ok(Box::new(super::App::new(cc, config)))),
    )
    .map_err(|e| LaunchError::Window(e.to_string()))
}
