//! One stream of output for many processes: every line gets an aligned, coloured
//! prefix naming its process (`catalog-1 | ...`).

use std::fs::File;
use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use shop_servers::LogSink;
use shop_topology::SERVICES;

use crate::instance::Instance;

/// The widest process name, so the bars line up.
const WIDTH: usize = widest();

const fn widest() -> usize {
    // `postgres` and `nats` are the other processes; `stack` is the launcher.
    let services = crate::instance::widest_name();
    if services > "postgres".len() {
        services
    } else {
        "postgres".len()
    }
}

/// What the launcher's own lines are prefixed with.
pub const LAUNCHER: &str = "stack";

/// Cheap to clone; every clone writes to the same places.
#[derive(Clone)]
pub struct Output {
    inner: Arc<Inner>,
}

struct Inner {
    stdout: bool,
    color: bool,
    file: Option<Mutex<File>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("stdout", &self.inner.stdout)
            .field("color", &self.inner.color)
            .field("file", &self.inner.file.is_some())
            .finish()
    }
}

impl Output {
    /// Writes to stdout and/or appends to `file`.
    pub fn new(stdout: bool, file: Option<&Path>) -> anyhow::Result<Output> {
        let color = stdout
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let file = match file {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(Output {
            inner: Arc::new(Inner {
                stdout,
                color,
                file,
            }),
        })
    }

    /// One line of a process's output.
    pub fn line(&self, process: &str, line: &str) {
        let plain = format!("{process:<WIDTH$} | {line}\n");
        let colored = self.inner.color.then(|| {
            format!(
                "\x1b[{}m{process:<WIDTH$} |\x1b[0m {line}\n",
                color_of(process)
            )
        });
        self.write(colored.as_deref().unwrap_or(&plain), &plain);
    }

    /// A line from the launcher itself.
    pub fn say(&self, message: &str) {
        self.line(LAUNCHER, message);
    }

    /// A line from the launcher that must not be missed (a process died ...).
    pub fn alert(&self, message: &str) {
        let plain = format!("{LAUNCHER:<WIDTH$} | !!! {message}\n");
        let colored = self
            .inner
            .color
            .then(|| format!("\x1b[1;31m{LAUNCHER:<WIDTH$} | !!! {message}\x1b[0m\n"));
        self.write(colored.as_deref().unwrap_or(&plain), &plain);
    }

    /// Text written as it is, no prefix (the box of URLs).
    pub fn raw(&self, text: &str) {
        self.write(text, text);
    }

    /// Where a process's output goes: here, under its name.
    pub fn sink(&self, process: &str) -> LogSink {
        let output = self.clone();
        let process = process.to_owned();
        LogSink::Lines(Arc::new(move |line: &str| output.line(&process, line)))
    }

    fn write(&self, for_terminal: &str, for_file: &str) {
        // Write errors (a closed pipe, a full disk) must not take the launcher down.
        if self.inner.stdout {
            let _ = std::io::stdout().lock().write_all(for_terminal.as_bytes());
        }
        if let Some(file) = &self.inner.file {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = file.write_all(for_file.as_bytes());
        }
    }
}

/// A fixed colour per process, so the same process always looks the same: the
/// servers' own, then the services' by their place in the list (every instance of a
/// service in its colour; the names tell them apart).
fn color_of(process: &str) -> &'static str {
    const FOR_SERVICES: [&str; 9] = ["32", "33", "36", "92", "93", "94", "95", "96", "91"];
    match process {
        "postgres" => "34",
        "nats" => "35",
        instance => Instance::named(instance)
            .and_then(|i| SERVICES.iter().position(|s| s.name == i.spec.name))
            .map_or("1", |i| FOR_SERVICES[i % FOR_SERVICES.len()]),
    }
}

/// Draws a box around lines, for the summary `make up` prints.
pub fn boxed(title: &str, lines: &[String]) -> String {
    let width = lines
        .iter()
        .map(|l| l.chars().count())
        .chain([title.chars().count() + 2])
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "╭─ {title} {}╮\n",
        "─".repeat(width - title.chars().count() - 1)
    );
    for line in lines {
        out.push_str(&format!(
            "│ {line}{} │\n",
            " ".repeat(width - line.chars().count())
        ));
    }
    out.push_str(&format!("╰{}╯\n", "─".repeat(width + 2)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_box_is_as_wide_as_the_others() {
        let text = boxed(
            "the shop is up",
            &["short".into(), "a much longer line here".into()],
        );
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 4);
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
    }

    #[test]
    fn lines_written_to_a_file_carry_an_aligned_prefix_and_no_colour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let output = Output::new(false, Some(&path)).unwrap();

        output.line("user", "listening");
        output.line("inventory", "ready");

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "user      | listening\ninventory | ready\n");
    }
}
