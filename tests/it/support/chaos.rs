//! A TCP proxy to cut a dependency mid-workflow (crates.io's chaosproxy is the model).
//! `cut()` closes every open connection and refuses new ones; `restore()` lets traffic
//! through again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct ChaosProxy {
    pub addr: SocketAddr,
    enabled: Arc<watch::Sender<bool>>,
}

impl ChaosProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _) = watch::channel(true);
        let enabled = Arc::new(tx);
        let accept_enabled = enabled.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                if !*accept_enabled.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut rx = accept_enabled.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|on| !*on) => {}
                    }
                });
            }
        });
        Self { addr, enabled }
    }

    pub fn cut(&self) {
        self.enabled.send_replace(false);
    }

    pub fn restore(&self) {
        self.enabled.send_replace(true);
    }
}
