//! Child processes: output, exit status, stopping, and the watchdog that stops them
//! when their owner lets go.

use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;
use shop_servers::process::{is_running, stop_pid};
use shop_servers::{LogSink, Process, ProcessOptions, StopSignal};

use crate::{eventually, lines, wait_for_line};

/// A shell that stays itself (no `exec`), so its command line, which `is_running`
/// matches against, never changes under the test.
const LOOPING: &str = "echo ready; while :; do sleep 1; done";

fn sh(script: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script);
    command
}

#[tokio::test]
async fn a_process_that_exits_on_its_own_reports_its_status_and_its_output() {
    let (sink, mut output) = lines();
    let process = Process::spawn(
        sh("echo to stdout; echo to stderr >&2; exit 3"),
        ProcessOptions::new("talker", sink),
    )
    .unwrap();

    let status = tokio::time::timeout(Duration::from_secs(10), process.exited())
        .await
        .expect("exits by itself");

    assert_eq!(status.code(), Some(3));
    assert_eq!(process.status(), Some(status));
    let tail = process.log_tail(10);
    assert!(
        tail.contains("to stdout") && tail.contains("to stderr"),
        "{tail}"
    );
    wait_for_line(&mut output, "to stdout").await;
}

#[tokio::test]
async fn output_to_a_file_is_appended_and_its_tail_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("talker.log");
    for word in ["first", "second"] {
        let process = Process::spawn(
            sh(&format!("echo {word}")),
            ProcessOptions::new("talker", LogSink::File(log.clone())),
        )
        .unwrap();
        process.exited().await;
        assert_eq!(process.log_location(), log.display().to_string());
    }

    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");
}

#[tokio::test]
async fn stopping_sends_the_stop_signal_then_removes_the_folder() {
    let folder = tempfile::tempdir().unwrap().keep();
    let (sink, mut output) = lines();
    let process = Process::spawn(
        sh("echo ready; exec sleep 60"),
        ProcessOptions {
            stop_signal: StopSignal::Interrupt,
            remove_after: Some(folder.clone()),
            ..ProcessOptions::new("sleeper", sink)
        },
    )
    .unwrap();
    wait_for_line(&mut output, "ready").await;

    let status = process.stop(Duration::from_secs(10)).await;

    assert_eq!(status.signal(), Some(Signal::INT.as_raw()));
    assert!(!folder.exists(), "{} is still there", folder.display());
    assert_eq!(
        process.stop(Duration::from_secs(1)).await,
        status,
        "a second stop is harmless"
    );
}

#[tokio::test]
async fn a_process_that_ignores_its_stop_signal_is_killed_after_the_grace_period() {
    let (sink, mut output) = lines();
    // An ignored signal stays ignored across exec.
    let process = Process::spawn(
        sh("trap '' TERM; echo ready; exec sleep 60"),
        ProcessOptions::new("stubborn", sink),
    )
    .unwrap();
    wait_for_line(&mut output, "ready").await;

    let status = process.stop(Duration::from_millis(200)).await;

    assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
}

#[tokio::test]
async fn killing_a_process_ends_it_at_once_even_if_it_would_stop_gracefully() {
    let (sink, mut output) = lines();
    // A process that would take its time over a stop signal.
    let process = Process::spawn(
        sh("trap 'sleep 30; exit 0' TERM; echo ready; while :; do sleep 1; done"),
        ProcessOptions::new("crashing", sink),
    )
    .unwrap();
    wait_for_line(&mut output, "ready").await;

    let status = tokio::time::timeout(Duration::from_secs(10), process.kill())
        .await
        .expect("a kill does not wait for the process");

    assert_eq!(status.signal(), Some(Signal::KILL.as_raw()));
    assert_eq!(process.kill().await, status, "a second kill is harmless");
}

#[tokio::test]
async fn dropping_a_process_lets_its_watchdog_stop_it_and_remove_its_folder() {
    let folder = tempfile::tempdir().unwrap().keep();
    let (sink, mut output) = lines();
    let process = Process::spawn(
        sh(LOOPING),
        ProcessOptions {
            remove_after: Some(folder.clone()),
            ..ProcessOptions::new("orphan", sink)
        },
    )
    .unwrap();
    wait_for_line(&mut output, "ready").await;
    let pid = process.pid();
    assert!(is_running(pid, "while :"));

    drop(process);

    eventually("the process is gone", || !is_running(pid, "while :")).await;
    eventually("its folder is removed", || !folder.exists()).await;
}

#[tokio::test]
async fn stopping_by_pid_leaves_a_process_alone_whose_command_line_does_not_match() {
    let (sink, mut output) = lines();
    let process = Process::spawn(sh(LOOPING), ProcessOptions::new("bystander", sink)).unwrap();
    wait_for_line(&mut output, "ready").await;

    let stopped = stop_pid(
        process.pid(),
        "nats-server",
        StopSignal::Terminate,
        Duration::from_secs(1),
    )
    .await
    .unwrap();

    assert!(!stopped);
    assert_eq!(process.status(), None, "still running");
    let stopped = stop_pid(
        process.pid(),
        "while :",
        StopSignal::Terminate,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(stopped);
    assert_eq!(process.exited().await.signal(), Some(Signal::TERM.as_raw()));
}
