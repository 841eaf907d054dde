//! Frames between the old and the new process on one control-socket connection: `LBHU`, a 4-byte
//! big-endian length, then a JSON message. File descriptors ride along with SCM_RIGHTS, as
//! HAProxy's `expose-fd listeners` does. The exchange is strictly request/answer, so every
//! descriptor received while a frame is read belongs to that frame.
//!
//! [`Outgoing`] and [`Reader`] make one `sendmsg`/`recvmsg` per step, so the same code serves the
//! blocking side (the new process) and the tokio side (`async_io` retries on `WouldBlock`).

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub const MAGIC: &[u8; 4] = b"LBHU";
const HEADER: usize = 8;
/// Far above any real message (a few hundred bytes per listener).
pub const MAX_FRAME: usize = 16 << 20;
/// Linux takes at most 253 descriptors per message (SCM_MAX_FD).
const FDS_PER_MSG: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the other process closed the connection")]
    Closed,
    #[error("frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("descriptors were cut off in transit (too many open files?)")]
    Truncated,
    /// The old daemon answered in its text protocol (an error such as "Permission denied").
    #[error("{}", .0.trim_end())]
    Text(String),
}

/// Wraps a JSON message into a frame.
pub fn encode(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json);
    out
}

/// A frame being sent: descriptors go in batches with one byte of the frame each, the rest of the
/// bytes after the last batch.
pub struct Outgoing {
    bytes: Vec<u8>,
    fds: Vec<RawFd>,
    pos: usize,
    batch: usize,
}

impl Outgoing {
    /// `fds` must stay open until the frame is sent.
    pub fn new(bytes: Vec<u8>, fds: Vec<RawFd>) -> Result<Outgoing, WireError> {
        let batches = fds.len().div_ceil(FDS_PER_MSG);
        if bytes.len() < batches {
            return Err(WireError::Io(io::Error::other("frame shorter than its descriptor batches")));
        }
        Ok(Outgoing { bytes, fds, pos: 0, batch: 0 })
    }

    pub fn done(&self) -> bool {
        self.pos == self.bytes.len() && self.batch * FDS_PER_MSG >= self.fds.len()
    }

    /// One `sendmsg`. `WouldBlock` comes back as an error for the caller's retry.
    pub fn step(&mut self, sock: RawFd) -> io::Result<()> {
        let batches = self.fds.len().div_ceil(FDS_PER_MSG);
        let sent = if self.batch < batches {
            let fds = &self.fds[self.batch * FDS_PER_MSG..((self.batch + 1) * FDS_PER_MSG).min(self.fds.len())];
            let end = if self.batch + 1 == batches { self.bytes.len() } else { self.pos + 1 };
            let iov = [IoSlice::new(&self.bytes[self.pos..end])];
            let cmsg = [ControlMessage::ScmRights(fds)];
            let n = sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
            self.batch += 1;
            n
        } else {
            let iov = [IoSlice::new(&self.bytes[self.pos..])];
            sendmsg::<()>(sock, &iov, &[], MsgFlags::MSG_NOSIGNAL, None)?
        };
        self.pos += sent;
        Ok(())
    }
}

/// Reads frames and the descriptors that come with them.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    eof: bool,
}

/// A complete message and its descriptors, in the order they were sent.
pub struct Frame {
    pub json: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

impl Reader {
    /// One `recvmsg`. `WouldBlock` comes back as an error for the caller's retry.
    pub fn step(&mut self, sock: RawFd) -> Result<(), WireError> {
        let mut data = [0u8; 16 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 253]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| WireError::Io(e.into()))?;
        let n = msg.bytes;
        let mut truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for fd in fds {
                        // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else owns it.
                        self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
        } else {
            truncated = true;
        }
        if truncated {
            return Err(WireError::Truncated);
        }
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&data[..n]);
        Ok(())
    }

    /// The next complete frame, if it is all here. A text answer (the old daemon refusing in its
    /// own protocol) ends with an empty line, or at the end of the stream.
    pub fn frame(&mut self) -> Result<Option<Frame>, WireError> {
        let magic_len = self.buf.len().min(MAGIC.len());
        if self.buf[..magic_len] != MAGIC[..magic_len] {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if text.contains("\n\n") || self.eof {
                return Err(WireError::Text(text));
            }
            return Ok(None);
        }
        if self.buf.len() >= HEADER {
            let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if len > MAX_FRAME {
                return Err(WireError::TooLarge(len));
            }
            if self.buf.len() >= HEADER + len {
                let json = self.buf[HEADER..HEADER + len].to_vec();
                self.buf.drain(..HEADER + len);
                return Ok(Some(Frame { json, fds: std::mem::take(&mut self.fds) }));
            }
        }
        if self.eof { Err(WireError::Closed) } else { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn read_frame(r: &mut Reader, sock: &UnixStream) -> Result<Frame, WireError> {
        loop {
            if let Some(f) = r.frame()? {
                return Ok(f);
            }
            r.step(sock.as_raw_fd())?;
        }
    }

    #[test]
    fn frames_carry_many_descriptors_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let dir = std::env::temp_dir().join(format!("lbha-wire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // More than one batch: 450 files, each holding its index.
        let files: Vec<std::fs::File> = (0..450)
            .map(|i| {
                let mut f = tempfile_in(&dir, i);
                write!(f, "{i}").unwrap();
                f
            })
            .collect();
        let json = format!("{{\"n\":{}}}", "x".repeat(1000));
        let mut out = Outgoing::new(encode(json.as_bytes()), files.iter().map(|f| f.as_raw_fd()).collect()).unwrap();
        let sender = std::thread::spawn(move || {
            while !out.done() {
                out.step(a.as_raw_fd()).unwrap();
            }
            let mut second = Outgoing::new(encode(b"{}"), vec![]).unwrap();
            while !second.done() {
                second.step(a.as_raw_fd()).unwrap();
            }
            a
        });
        let mut r = Reader::default();
        let f = read_frame(&mut r, &b).unwrap();
        assert_eq!(f.json, json.as_bytes());
        assert_eq!(f.fds.len(), 450);
        for (i, fd) in f.fds.into_iter().enumerate() {
            let mut file = std::fs::File::from(fd);
            file.rewind().unwrap();
            let mut s = String::new();
            file.read_to_string(&mut s).unwrap();
            assert_eq!(s, i.to_string());
        }
        let g = read_frame(&mut r, &b).unwrap();
        assert_eq!(g.json, b"{}");
        assert!(g.fds.is_empty());
        let a = sender.join().unwrap();
        drop(a);
        assert!(matches!(read_frame(&mut r, &b), Err(WireError::Closed)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_in(dir: &std::path::Path, i: usize) -> std::fs::File {
        let p = dir.join(format!("f{i}"));
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        f
    }

    #[test]
    fn a_text_answer_is_an_error_with_its_text() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"Permission denied.\n\n").unwrap();
        let mut r = Reader::default();
        match read_frame(&mut r, &b) {
            Err(WireError::Text(t)) => assert_eq!(t, "Permission denied.\n\n"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a frame"),
        }
    }

    #[test]
    fn oversized_and_cut_frames_are_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&u32::MAX.to_be_bytes());
        a.write_all(&head).unwrap();
        assert!(matches!(read_frame(&mut Reader::default(), &b), Err(WireError::TooLarge(_))));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&encode(b"{\"x\":1}")[..10]).unwrap();
        drop(a);
        assert!(matches!(read_frame(&mut Reader::default(), &b), Err(WireError::Closed)));
    }
}
