//! `gatehouse echo`: a small HTTP server that answers with its name, the request line and the
//! request headers, as JSON. The quickstart's two upstream services.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;

#[derive(Debug, clap::Args)]
pub(crate) struct EchoArgs {
    /// Listen address (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:9081")]
    listen: SocketAddr,
    /// The name it answers with.
    #[arg(long, default_value = "echo")]
    name: String,
}

pub(crate) fn run(args: &EchoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on `{}`: {e}", args.listen))?;
        eprintln!("echo `{}` listening on http://{}", args.name, args.listen);
        let name: &'static str = Box::leak(args.name.clone().into_boxed_str());
        loop {
            tokio::select! {
                () = super::serve::shutdown_signal() => return Ok(ExitCode::SUCCESS),
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                            let headers: serde_json::Map<String, serde_json::Value> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.to_str().unwrap_or("<binary>"))))
                                .collect();
                            let body = serde_json::json!({
                                "service": name,
                                "method": req.method().as_str(),
                                "path": req.uri().path(),
                                "query": req.uri().query(),
                                "headers": headers,
                            });
                            let mut resp = hyper::Response::new(Full::new(Bytes::from(format!("{body}\n"))));
                            resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
                            Ok::<_, Infallible>(resp)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                            .await;
                    });
                }
            }
        }
    })
}
