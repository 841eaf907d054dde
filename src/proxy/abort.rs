//! `option abortonclose`: a request still waiting for a server slot or for its connection is
//! dropped once its client has closed (or half-closed) its side, as HAProxy 2.6 does, instead of
//! loading a saturated server with work nobody will read. Without the option the request is
//! served, which HTTP allows (a client may shut its output and wait for the answer).
//!
//! hyper owns the client socket, so the close is watched through a duplicate of its descriptor:
//! epoll reports the peer's shutdown (`EPOLLRDHUP`) even when unread bytes sit before it.

use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The client's side of one HTTP/1 connection, watched for its close while a request waits.
pub struct ClientClose(Option<AsyncFd<OwnedFd>>);

impl ClientClose {
    /// Watches `fd` (the client's TCP socket, open for as long as the request runs); `None` when
    /// the option is off, there is no socket (HTTP/2 streams end with the connection anyway) or
    /// it cannot be watched.
    pub fn watch(fd: RawFd, on: bool) -> ClientClose {
        if !on || fd < 0 {
            return ClientClose(None);
        }
        // SAFETY: the descriptor belongs to the connection serving this request, open until the
        // request's future ends; only a duplicate is kept.
        let Ok(dup) = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() else { return ClientClose(None) };
        // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged until dropped.
        ClientClose(unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }.ok())
    }

    /// Resolves once the client has shut its sending side; never when not watched.
    async fn closed(&self) {
        let Some(fd) = &self.0 else { return std::future::pending().await };
        loop {
            let Ok(mut ready) = fd.readable().await else { return std::future::pending().await };
            if ready.ready().is_read_closed() {
                return;
            }
            // Bytes only (a pipelined request): wait for the next change.
            ready.clear_ready();
        }
    }

    /// Runs `step` unless the client closes first: then the connection is shut at once (HAProxy
    /// sends nothing to an aborted client) and `None` comes back.
    pub fn unless_closed<F: Future>(&self, step: F) -> impl Future<Output = Option<F::Output>> {
        let closed = self.0.as_ref().map(|_| self.closed());
        UnlessClosed { step, closed, watched: self }
    }
}

pin_project_lite::pin_project! {
    /// [`ClientClose::unless_closed`]'s future, written out: an `async fn` with a `select!` would
    /// hold `step` twice (its argument and the select's copy), and it sits in every request's
    /// future (bench/PROFILE.md, session 11).
    struct UnlessClosed<'a, F, C> {
        #[pin]
        step: F,
        #[pin]
        closed: Option<C>,
        watched: &'a ClientClose,
    }
}

impl<F: Future, C: Future<Output = ()>> Future for UnlessClosed<'_, F, C> {
    type Output = Option<F::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        // The step first, as a biased select: an answer already there is not thrown away.
        if let Poll::Ready(out) = this.step.poll(cx) {
            return Poll::Ready(Some(out));
        }
        match this.closed.as_pin_mut().map(|c| c.poll(cx)) {
            Some(Poll::Ready(())) => {
                if let Some(fd) = &this.watched.0 {
                    let _ = nix::sys::socket::shutdown(fd.get_ref().as_raw_fd(), nix::sys::socket::Shutdown::Both);
                }
                Poll::Ready(None)
            }
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn a_half_close_behind_unread_bytes_aborts_the_step() {
        let (mut client, server) = pair().await;
        let w = ClientClose::watch(server.as_raw_fd(), true);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let out = tokio::time::timeout(Duration::from_secs(10), w.unless_closed(std::future::pending::<()>())).await;
        assert_eq!(out, Ok(None), "the close ends the wait");
    }

    #[tokio::test]
    async fn an_open_client_lets_the_step_finish() {
        let (mut client, server) = pair().await;
        let w = ClientClose::watch(server.as_raw_fd(), true);
        client.write_all(b"pipelined").await.unwrap();
        let step = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            7
        };
        assert_eq!(w.unless_closed(step).await, Some(7));
    }

    #[tokio::test]
    async fn without_the_option_a_closed_client_is_still_served() {
        let (client, server) = pair().await;
        let w = ClientClose::watch(server.as_raw_fd(), false);
        drop(client);
        let step = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            7
        };
        assert_eq!(w.unless_closed(step).await, Some(7));
    }
}
