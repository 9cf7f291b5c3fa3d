//! The floor for `benches/load.sh`: a bare axum endpoint that reads and parses the same JSON
//! body as the decision API and answers a constant, on the same runtime. The decision API's
//! throughput is measured against it: the gap is what deciding (and Warden's checks) cost.
//!
//! Usage: `cargo run --release --example floor -- 127.0.0.1:18182`

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

// The same allocator as `warden`, so the comparison measures the work, not the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn constant(body: Bytes) -> Response {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(_)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"decision":true}"#,
        )
            .into_response(),
        _ => (StatusCode::BAD_REQUEST, "not a JSON object").into_response(),
    }
}

fn main() -> std::process::ExitCode {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18182".to_string());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(4);
        }
    };
    let result = runtime.block_on(async {
        let app = Router::new()
            .route("/access/v1/evaluation", post(constant))
            .route("/access/v1/evaluations", post(constant));
        let listener = tokio::net::TcpListener::bind(&address).await?;
        axum::serve(listener, app).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(4)
        }
    }
}
