//! A TCP proxy to cut a dependency mid-workflow (crates.io's chaosproxy is the model).
//! `cut()` closes every open connection and refuses new ones; `restore()` lets traffic
//! through again; `stall()` closes every open connection and holds new ones open without
//! forwarding a byte, so a test can act while a request hangs on the dependency.
//! `freeze()` is a black-holed network or a SIGSTOPped server: open connections stay open
//! but forward nothing, and new ones are held like `stall()`'s; leaving it closes them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Cut,
    Stall,
    Freeze,
}

pub struct ChaosProxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    held: Arc<AtomicUsize>,
}

impl ChaosProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _) = watch::channel(Mode::Open);
        let mode = Arc::new(tx);
        let held = Arc::new(AtomicUsize::new(0));
        let (accept_mode, accept_held) = (mode.clone(), held.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                let mut rx = accept_mode.subscribe();
                let current = *rx.borrow_and_update();
                match current {
                    Mode::Cut => drop(inbound),
                    Mode::Stall | Mode::Freeze => {
                        let held = accept_held.clone();
                        held.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            let _ = rx.wait_for(|m| *m != current).await;
                            held.fetch_sub(1, Ordering::SeqCst);
                            drop(inbound);
                        });
                    }
                    Mode::Open => {
                        let held = accept_held.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                            let mut inbound = inbound;
                            let changed = tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                                _ = rx.wait_for(|m| *m != Mode::Open) => true,
                            };
                            let frozen = changed && *rx.borrow() == Mode::Freeze;
                            if frozen {
                                held.fetch_add(1, Ordering::SeqCst);
                                let _ = rx.wait_for(|m| *m != Mode::Freeze).await;
                                held.fetch_sub(1, Ordering::SeqCst);
                            }
                            drop((inbound, outbound));
                        });
                    }
                }
            }
        });
        Self { addr, mode, held }
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }

    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Freeze);
    }

    /// Connections currently held by `stall()` or `freeze()`.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}
