//! Shared helpers for the certs integration tests: a real TLS server on 127.0.0.1:0.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the server saw of one handshake: the client's certificate, or the error.
pub type Accepted = Result<Vec<u8>, std::io::Error>;

/// Starts a TLS echo server (one line in, the same line out) on 127.0.0.1:0. Each handshake's
/// outcome is reported on the returned channel.
pub async fn echo_server(
    cfg: rustls::ServerConfig,
) -> (SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(tls) => {
                        let peer = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.to_vec())
                            .unwrap_or_default();
                        let _ = tx.send(Ok(peer));
                        let (r, mut w) = tokio::io::split(tls);
                        let mut lines = BufReader::new(r).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A client connection that has completed its handshake and one echo round trip.
pub struct Client {
    pub lines: tokio::io::Lines<
        BufReader<tokio::io::ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>>,
    >,
    pub writer: tokio::io::WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    /// The server certificate this connection saw.
    pub server_cert: Vec<u8>,
}

impl Client {
    /// Sends a line and reads the echo.
    pub async fn echo(&mut self, msg: &str) -> std::io::Result<String> {
        self.writer.write_all(format!("{msg}\n").as_bytes()).await?;
        self.lines
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"))
    }
}

/// Connects with `cfg` to `addr` as `server_name`, completes the handshake and one echo.
pub async fn connect(
    cfg: rustls::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = connector.connect(name, tcp).await?;
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (r, writer) = tokio::io::split(tls);
    let mut client = Client {
        lines: BufReader::new(r).lines(),
        writer,
        server_cert,
    };
    // In TLS 1.3 the server checks the client certificate after the client considers the
    // handshake done; a rejection shows up on the first read.
    client.echo("hello").await?;
    Ok(client)
}

/// The rustls error inside an I/O error from a handshake, if any.
pub fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}
