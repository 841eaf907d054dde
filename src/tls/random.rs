//! Where rustls takes its random bytes from (server randoms, session IDs, ticket nonces and
//! ages): a per-thread ChaCha12 generator seeded from the OS and reseeded every 64 KiB and after
//! a fork (`rand::thread_rng`), instead of ring's `SystemRandom`, which makes one `getrandom`
//! system call per value: seven per TLS 1.3 handshake, about a microsecond each here. Ephemeral
//! keys and signature nonces do not come from here (ring draws them from the OS itself).

use rand::RngCore;
use rustls::crypto::{GetRandomFailed, SecureRandom};

#[derive(Debug)]
pub struct ThreadRandom;

impl SecureRandom for ThreadRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        rand::thread_rng().try_fill_bytes(buf).map_err(|_| GetRandomFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_byte_and_never_repeats() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        ThreadRandom.fill(&mut a).unwrap();
        ThreadRandom.fill(&mut b).unwrap();
        assert_ne!(a, b);
        // 64 zero bytes in a row from a working generator: 2^-512.
        assert!(a.iter().any(|x| *x != 0) && b.iter().any(|x| *x != 0));
        let mut empty = [];
        ThreadRandom.fill(&mut empty).unwrap();
        // Another thread has a generator of its own, seeded on its own.
        let c = std::thread::spawn(|| {
            let mut c = [0u8; 64];
            ThreadRandom.fill(&mut c).unwrap();
            c
        })
        .join()
        .unwrap();
        assert!(c != a && c != b);
    }
}
