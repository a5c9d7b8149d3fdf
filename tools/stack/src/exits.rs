//! Deaths in the stack: a process that exits while the stack is not being stopped is
//! reported loudly and handed to whoever waits in [`crate::Stack::next_exit`].

use std::collections::HashMap;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use shop_servers::Process;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::output::Output;

/// A process of the stack that exited while the stack was not being stopped.
#[derive(Debug, Clone)]
pub struct Exit {
    pub process: String,
    pub status: ExitStatus,
}

/// Reports (loudly, and through [`ExitWatch::next`]) a process of the stack that
/// exits while the stack is not being stopped. The others keep running.
pub(crate) struct ExitWatch {
    stopping: Arc<AtomicBool>,
    output: Output,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    /// By process name: one watcher each, replaced when the process is restarted.
    watchers: Mutex<HashMap<String, AbortHandle>>,
}

impl ExitWatch {
    pub(crate) fn new(output: Output) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self {
            stopping: Arc::new(AtomicBool::new(false)),
            output,
            exits_tx,
            exits,
            watchers: Mutex::default(),
        }
    }

    /// Watches `process` under `name`, in place of whatever was watched under it.
    pub(crate) fn watch(&self, name: &str, process: &Process) {
        let key = name.to_owned();
        let name = name.to_owned();
        let exited = process.exited();
        let stopping = self.stopping.clone();
        let output = self.output.clone();
        let exits = self.exits_tx.clone();
        let task = tokio::spawn(async move {
            let status = exited.await;
            if !stopping.load(Ordering::SeqCst) {
                output.alert(&format!(
                    "{name} exited ({status}); everything else keeps running"
                ));
                let _ = exits.send(Exit {
                    process: name,
                    status,
                });
            }
        });
        let previous = self.watchers().insert(key, task.abort_handle());
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// From now on this process's exit is expected (it is being stopped or killed on
    /// purpose): it is no longer watched.
    pub(crate) fn forget(&self, name: &str) {
        if let Some(watcher) = self.watchers().remove(name) {
            watcher.abort();
        }
    }

    fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on exits are expected: the stack is being stopped.
    pub(crate) fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The next process that exited on its own (pending forever if none does).
    pub(crate) async fn next(&mut self) -> Exit {
        match self.exits.recv().await {
            Some(exit) => exit,
            // We hold a sender ourselves, so the channel never closes.
            None => std::future::pending().await,
        }
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        for watcher in self.watchers().values() {
            watcher.abort();
        }
    }
}
