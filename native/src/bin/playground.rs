//! `playground`: serves the browser playground (the static files of `www/`, with the wasm
//! package built into `www/pkg/`) over HTTP.
//!
//! ```text
//! playground [--addr 127.0.0.1:8080] [--dir www]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use clap::Parser;
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
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
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
    let app = Router::new()
        .fallback_service(ServeDir::new(&args.dir).append_index_html_on_directories(true));
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!(
        "raftkv playground: http://{addr}/  (serving {})",
        args.dir.display()
    );
    axum::serve(listener, app).await?;
    Ok(())
}
