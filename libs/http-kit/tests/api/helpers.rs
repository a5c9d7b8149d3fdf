//! A server on a free port, and a client that speaks HTTP/1.1 by hand so a test can
//! also misbehave (send half a request and stall).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use shop_http::HttpSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(router: Router, settings: HttpSettings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            shop_http::serve_with(listener, router, &settings, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            addr,
            stop: Some(stop),
            served,
        }
    }

    /// Starts the graceful shutdown.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `serve` to return, failing the test after `deadline`.
    pub async fn stopped(self, deadline: Duration) -> std::io::Result<()> {
        tokio::time::timeout(deadline, self.served)
            .await
            .expect("the server stops")
            .unwrap()
    }
}

/// A whole request with `Connection: close`; the whole response as text.
pub async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Polls `check` until it returns true, failing the test after `deadline`.
pub async fn eventually<F>(deadline: Duration, what: &str, mut check: impl FnMut() -> F)
where
    F: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
