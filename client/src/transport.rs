//! One HTTP/1.1 request to one node: builds the `/discovery/*` URL or form body, adds the
//! bearer token, bounds the whole exchange (connect, send, read the body) by a timeout and the
//! body by [`MAX_ANSWER_BYTES`], and hands back the body of a 200 answer.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::{Error, Result};

/// The largest answer read; a `fetchs` of many big apps stays far below it.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 << 20;

/// How long an idle kept-alive connection is reused: below the nodes' 90 s idle timeout, so
/// the client does not send on a connection the node is closing.
const POOL_IDLE: Duration = Duration::from_secs(50);

/// How much of an unexpected body an [`Error::Http`] keeps.
const BODY_SHOWN: usize = 200;

/// The HTTP side of a client: a keep-alive pool shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    token: Option<HeaderValue>,
}

impl Transport {
    pub fn new(connect_timeout: Duration, token: Option<&str>) -> Result<Transport> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        let token = token
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .map_err(|_| Error::Config("the token cannot be sent in an HTTP header".into()))?;
        Ok(Transport { http, token })
    }

    /// GET `/discovery/<path>?<params>` on `node`; the body of a 200 answer.
    pub async fn get(
        &self,
        node: &str,
        path: &str,
        params: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Bytes> {
        let uri = format!("http://{node}/discovery/{path}?{}", encode(params));
        self.send(node, Method::GET, uri, Bytes::new(), timeout)
            .await
    }

    /// POST `/discovery/<path>` on `node` with `params` as a form body.
    pub async fn post(
        &self,
        node: &str,
        path: &str,
        params: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Bytes> {
        let uri = format!("http://{node}/discovery/{path}");
        self.send(
            node,
            Method::POST,
            uri,
            Bytes::from(encode(params)),
            timeout,
        )
        .await
    }

    async fn send(
        &self,
        node: &str,
        method: Method,
        uri: String,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes> {
        let mut req = Request::builder().method(method.clone()).uri(uri).header(
            USER_AGENT,
            concat!("discovery-client/", env!("CARGO_PKG_VERSION")),
        );
        if method == Method::POST {
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(token) = &self.token {
            req = req.header(AUTHORIZATION, token.clone());
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            Error::Config(format!("node address {node:?} does not make a URL: {e}"))
        })?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| transport(node, e))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| Error::Transport {
                    node: node.to_string(),
                    source: e,
                })?
                .to_bytes();
            if status != http::StatusCode::OK {
                let shown = &body[..body.len().min(BODY_SHOWN)];
                return Err(Error::Http {
                    node: node.to_string(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(shown).into_owned(),
                });
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                node: node.to_string(),
                after: timeout,
            })?
    }
}

fn transport(node: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Transport {
        node: node.to_string(),
        source: Box::new(e),
    }
}

/// `application/x-www-form-urlencoded`, lists as repeated keys (what every server accepts).
fn encode(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}
