//! A health check target answered by hand, one probe at a time.

/// An HTTP check target the test answers by hand, one probe at a time: each answer waits for
/// the next probe, which the checker sends only after it counted the answer, so both processes
/// are read at the same step of their rise/fall counting without any timing.
pub struct HandChecked {
    pub port: u16,
    probes: std::sync::mpsc::Receiver<std::net::TcpStream>,
    held: Option<std::net::TcpStream>,
}

impl HandChecked {
    pub fn start() -> HandChecked {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, probes) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                c.set_read_timeout(Some(std::time::Duration::from_secs(20))).ok();
                // The whole request is read, so closing after the answer resets nothing.
                if super::read_request_head(&mut c).is_none() || tx.send(c).is_err() {
                    return;
                }
            }
        });
        HandChecked { port, probes, held: None }
    }

    fn next(&mut self) -> std::net::TcpStream {
        self.probes.recv_timeout(std::time::Duration::from_secs(20)).expect("a health check probe within 20 s")
    }

    /// Waits for the probe in progress (the first one at start), answers it with `status` and
    /// holds the next.
    pub fn answer(&mut self, status: u16) {
        use std::io::Write;
        let mut c = match self.held.take() {
            Some(c) => c,
            None => self.next(),
        };
        write!(c, "HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n").unwrap();
        drop(c);
        self.held = Some(self.next());
    }

    /// Closes the probe held without answering it (its checker is gone) and holds the next.
    pub fn skip(&mut self) {
        self.held = None;
        self.held = Some(self.next());
    }
}
