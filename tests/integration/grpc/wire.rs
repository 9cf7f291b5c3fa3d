//! `Check` on the wire: gRPC request bodies written byte by byte over HTTP/2 (a tonic channel
//! carrying raw bodies), well formed and not. A malformed call fails with the status tonic's
//! generic unary server gives it (these tests pass against both), never with an allow; the
//! connection goes on serving.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use http_body_util::BodyExt;
use hyper::body::Frame;
use prost::Message;
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::Channel;
use tower::ServiceExt;

use super::{channel, check, server, verdict};
use crate::gateway::{claims, example_policies, gateway_config, sign};
use crate::server::TestServer;

/// How a call ended: the gRPC status (from the headers of a trailers-only answer, or the
/// trailers), its message, and the answer's message when there is one.
#[derive(Debug)]
struct Ended {
    code: Code,
    message: String,
    answer: Option<CheckResponse>,
}

/// A request body of the chunks its channel receives, each its own DATA frame; it ends when
/// the channel's sender is dropped.
struct Chunks {
    chunks: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut framed = vec![flag];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

fn allowed_check() -> Vec<u8> {
    let alice = sign(jsonwebtoken::Algorithm::ES256, &claims("alice"));
    check("GET", "/albums/a1/photos/p1", Some(&alice)).encode_to_vec()
}

/// Sends `chunks` as the body of a `Check` call with `headers`, and reads how it ended. With
/// `hold`, the request stream is left open after the chunks.
async fn call_with(
    channel: &Channel,
    headers: &[(&str, &str)],
    chunks: Vec<Vec<u8>>,
    hold: bool,
) -> Ended {
    let (sender, receiver) = mpsc::channel(1);
    let mut request = axum::http::Request::post(format!(
        "http://warden{}",
        "/envoy.service.auth.v3.Authorization/Check"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(tonic::body::Body::new(Chunks { chunks: receiver }))
        .unwrap();
    let feeder = tokio::spawn(async move {
        for chunk in chunks {
            if sender.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        if hold {
            sender.closed().await;
        }
    });
    let response = channel.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let status_of = |headers: &axum::http::HeaderMap| {
        headers.get("grpc-status").map(|code| {
            let code = Code::from_bytes(code.as_bytes());
            let message = headers
                .get("grpc-message")
                .map(|m| percent_decode(m.to_str().unwrap()))
                .unwrap_or_default();
            (code, message)
        })
    };
    let ended = if let Some((code, message)) = status_of(response.headers()) {
        Ended {
            code,
            message,
            answer: None,
        }
    } else {
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let body = collected.to_bytes();
        let (code, message) = status_of(&trailers).expect("grpc-status in the trailers");
        let answer = body
            .get(5..)
            .map(|message| CheckResponse::decode(message).unwrap());
        Ended {
            code,
            message,
            answer,
        }
    };
    feeder.abort();
    ended
}

async fn call(channel: &Channel, chunks: Vec<Vec<u8>>) -> Ended {
    call_with(channel, &[], chunks, false).await
}

/// `grpc-message` is percent-encoded (only what needs it).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(byte)) = text
                .get(i + 1..i + 3)
                .map(|hex| u8::from_str_radix(hex, 16))
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connection answers a well-formed check after each attack.
async fn still_serves(channel: &Channel) {
    let ended = call(channel, vec![framed(0, &allowed_check())]).await;
    assert_eq!(ended.code, Code::Ok, "{ended:?}");
    let answer = ended.answer.expect("an answer");
    assert_eq!(verdict(&answer), (Code::Ok, 200));
}

#[tokio::test]
async fn grpc_check_bodies_split_anywhere_are_decided_alike() {
    let (server, address) = server(&example_policies()).await;
    let channel = channel(address).await;
    let whole = framed(0, &allowed_check());
    // In one DATA frame; split inside the length prefix; inside the message; one byte each
    // for the first ten.
    let mut splits = vec![vec![whole.clone()]];
    splits.push(vec![whole[..3].to_vec(), whole[3..].to_vec()]);
    splits.push(vec![whole[..40].to_vec(), whole[40..].to_vec()]);
    let mut bytewise: Vec<Vec<u8>> = whole[..10].iter().map(|b| vec![*b]).collect();
    bytewise.push(whole[10..].to_vec());
    splits.push(bytewise);
    for chunks in splits {
        let ended = call(&channel, chunks).await;
        assert_eq!(ended.code, Code::Ok, "{ended:?}");
        assert_eq!(verdict(&ended.answer.unwrap()), (Code::Ok, 200));
    }
    // A second message after the first is decoded and dropped: the first is decided.
    let mut two = whole.clone();
    two.extend_from_slice(&framed(
        0,
        &check("DELETE", "/albums/a1", None).encode_to_vec(),
    ));
    let ended = call(&channel, vec![two]).await;
    assert_eq!(verdict(&ended.answer.unwrap()), (Code::Ok, 200));
    // `identity` is no compression.
    let ended = call_with(
        &channel,
        &[("grpc-encoding", "identity")],
        vec![whole],
        false,
    )
    .await;
    assert_eq!(ended.code, Code::Ok, "{ended:?}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_malformed_check_bodies_fail_and_the_connection_serves_on() {
    let (server, address) = server(&example_policies()).await;
    let channel = channel(address).await;
    let whole = framed(0, &allowed_check());
    let mut second_broken = whole.clone();
    second_broken.extend_from_slice(&framed(0, &[0x0a, 0x05, 0x01]));
    let cases: Vec<(&str, Vec<Vec<u8>>, Code, &str)> = vec![
        (
            "no message",
            vec![],
            Code::Internal,
            "Missing request message.",
        ),
        (
            "half a prefix",
            vec![whole[..3].to_vec()],
            Code::Internal,
            "Unexpected EOF",
        ),
        (
            "truncated message",
            vec![whole[..whole.len() - 1].to_vec()],
            Code::Internal,
            "Unexpected EOF",
        ),
        (
            "compressed flag",
            vec![framed(1, &allowed_check())],
            Code::Internal,
            "compressed-flag",
        ),
        (
            "unknown flag",
            vec![framed(7, &allowed_check())],
            Code::Internal,
            "invalid compression flag: 7",
        ),
        // Field 1 (`attributes`, a message) sent as a varint.
        (
            "wrong wire type",
            vec![framed(0, &[0x08, 0x01])],
            Code::Internal,
            "wire type",
        ),
        // `attributes` claiming more bytes than the message has.
        (
            "overlong field",
            vec![framed(0, &[0x0a, 0x10, 0x00])],
            Code::Internal,
            "buffer underflow",
        ),
        // A string (`attributes.request.http.method`) that is not UTF-8.
        (
            "invalid utf-8",
            vec![framed(
                0,
                &[0x0a, 0x08, 0x22, 0x06, 0x12, 0x04, 0x12, 0x02, 0xff, 0xfe],
            )],
            Code::Internal,
            "UTF-8",
        ),
        (
            "a broken second message",
            vec![second_broken],
            Code::Internal,
            "buffer underflow",
        ),
        // Over `body_limit` (1 MiB): refused on the prefix, before the message is sent.
        (
            "over the limit",
            vec![vec![0, 0, 0x20, 0, 0]],
            Code::OutOfRange,
            "found 2097152 bytes, the limit is: 1048576 bytes",
        ),
    ];
    for (name, chunks, code, message) in cases {
        let ended = call(&channel, chunks).await;
        assert_eq!(ended.code, code, "{name}: {ended:?}");
        assert!(ended.message.contains(message), "{name}: {ended:?}");
        assert!(ended.answer.is_none(), "{name}: {ended:?}");
        still_serves(&channel).await;
    }
    // Compressed calls are refused, whatever the body.
    let ended = call_with(&channel, &[("grpc-encoding", "gzip")], vec![whole], false).await;
    assert_eq!(ended.code, Code::Unimplemented, "{ended:?}");
    assert!(ended.message.contains("`gzip`"), "{ended:?}");
    still_serves(&channel).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_a_check_whose_message_never_comes_ends_at_its_deadline() {
    let mut config = gateway_config(&example_policies());
    config.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    config.request_timeout = Duration::from_millis(300);
    let server = TestServer::start(config).await;
    let channel = channel(server.running.grpc_address.unwrap()).await;
    let whole = framed(0, &allowed_check());
    // The prefix, then nothing, the stream held open: the call ends when the server's
    // `request_timeout`, shorter than the client's deadline, runs out.
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        call_with(
            &channel,
            &[("grpc-timeout", "20S")],
            vec![whole[..5].to_vec()],
            true,
        ),
    )
    .await
    .expect("the server ends the call");
    assert_eq!(ended.code, Code::Cancelled, "{ended:?}");
    assert!(ended.answer.is_none());
    still_serves(&channel).await;
    server.running.shutdown().await;
}
