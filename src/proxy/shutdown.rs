//! `on-marked-down shutdown-sessions`: a response still streaming from a server that health
//! checks have just marked down is cut, so the client reconnects and is balanced elsewhere
//! instead of hanging on a dead server.

use super::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Debug, thiserror::Error)]
#[error("server marked down: session shut down (on-marked-down shutdown-sessions)")]
pub struct ShutDown;

struct EndWith {
    inner: ProxyBody,
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Body for EndWith {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.end.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(ShutDown))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Ends `body` with an error once `end` resolves (see `ServerRt::session_end`).
pub fn end_with(body: ProxyBody, end: impl Future<Output = ()> + Send + 'static) -> ProxyBody {
    EndWith { inner: body, end: Box::pin(end) }.boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_ends_when_told() {
        use futures_util::StreamExt;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let frames = futures_util::stream::iter([Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"a")))])
            .chain(futures_util::stream::pending());
        let inner = http_body_util::StreamBody::new(frames).boxed_unsync();
        let mut b = end_with(inner, async move {
            let _ = rx.await;
        });
        let f = b.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "a");
        tx.send(()).unwrap();
        let e = b.frame().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("marked down"));
    }
}
