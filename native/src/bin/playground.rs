//! `playground`: serves the browser playground (the static files of `www/`, with the wasm
//! package built into `www/pkg/`) over HTTP; with `--dev-cluster`, also starts and owns a
//! local 3-node kvserver cluster and serves the page's live mode its dev routes
//! (raftkv_native::dev_cluster).
//!
//! ```text
//! playground [--addr 127.0.0.1:8080] [--dir www]
//! playground --dev-cluster [--kvserver PATH] [--data-dir data/live] [--dev-base-port 7000]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get};
use clap::Parser;
use raftkv_native::dev_cluster::{DevCluster, DevConfig, routes};
use serde_json::json;
use tower_http::services::ServeDir;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "playground",
    version,
    about = "Serves the raftkv browser playground (www/)."
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The directory to serve: the page, with the wasm package in its pkg/ folder.
    #[arg(long, default_value = "www")]
    dir: PathBuf,
    /// Dev only: start a local 3-node kvserver cluster and serve the live mode's routes
    /// (/dev/...: kill, restart, cut, heal, requests). Off by default.
    #[arg(long)]
    dev_cluster: bool,
    /// With --dev-cluster: the kvserver binary (default: the one beside this program).
    #[arg(long, requires = "dev_cluster")]
    kvserver: Option<PathBuf>,
    /// With --dev-cluster: where the nodes keep their data and logs.
    #[arg(long, default_value = "data/live", requires = "dev_cluster")]
    data_dir: PathBuf,
    /// With --dev-cluster: clients on BASE+1..3, peers on BASE+11..13, links on BASE+22..28;
    /// 0 picks free ports (then use a fresh --data-dir).
    #[arg(long, default_value_t = 7000, requires = "dev_cluster")]
    dev_base_port: u16,
    /// With --dev-cluster: an extra argument for every kvserver (repeat it for more).
    #[arg(
        long = "kvserver-arg",
        allow_hyphen_values = true,
        requires = "dev_cluster"
    )]
    kvserver_args: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    raftkv_native::server::init_tracing(raftkv_native::config::LogFormat::Text);
    if !args.dir.join("index.html").is_file() {
        return Err(format!(
            "{} has no index.html: pass --dir pointing at www/",
            args.dir.display()
        )
        .into());
    }
    if !args.dir.join("pkg").join("raftkv_web.js").is_file() {
        eprintln!(
            "warning: {} is missing; build it with: bash scripts/wasm.sh pkg",
            args.dir.join("pkg").join("raftkv_web.js").display()
        );
    }
    // ServeDir guesses types from extensions: .wasm is application/wasm (needed for streaming
    // compilation) and .js is text/javascript (needed for ES modules).
    let files = ServeDir::new(&args.dir).append_index_html_on_directories(true);
    let mut cluster = None;
    let app = if args.dev_cluster {
        let kvserver = match args.kvserver {
            Some(p) => p,
            None => std::env::current_exe()?.with_file_name("kvserver"),
        };
        let dev = Arc::new(
            DevCluster::start(DevConfig {
                kvserver,
                data_dir: args.data_dir.clone(),
                base_port: args.dev_base_port,
                extra_args: args.kvserver_args,
            })
            .await?,
        );
        let view = dev.view().await;
        for n in &view.nodes {
            println!(
                "dev cluster: {} on {} (data {})",
                n.id,
                n.addr,
                args.data_dir.join(&n.id).display()
            );
        }
        cluster = Some(Arc::clone(&dev));
        routes::router(dev).await.fallback_service(files)
    } else {
        // Said plainly, so a page (or a person) asking for live mode learns why there is none.
        Router::new()
            .route("/dev/{*rest}", any(no_dev_cluster))
            .fallback_service(files)
    };
    // What the page asks first, to know whether to offer live mode: always answered (a 404
    // would be an error in the browser's console on every plain page).
    let dev_cluster = args.dev_cluster;
    let app = app.route(
        "/playground.json",
        get(move || async move { Json(json!({ "ok": true, "dev_cluster": dev_cluster })) }),
    );
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!(
        "raftkv playground: http://{addr}/  (serving {})",
        args.dir.display()
    );
    // Not a graceful shutdown: the page's event streams never end on their own.
    let served = tokio::select! {
        served = axum::serve(listener, app) => served,
        () = raftkv_native::server::shutdown_signal() => Ok(()),
    };
    // The nodes go with the page.
    if let Some(dev) = cluster {
        dev.stop().await;
    }
    served?;
    Ok(())
}

/// Every /dev route of a playground without `--dev-cluster`: 404.
async fn no_dev_cluster() -> Response {
    raftkv_native::api::write_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "this playground runs no dev cluster: start it with --dev-cluster (bash scripts/run.sh --live)",
    )
}
