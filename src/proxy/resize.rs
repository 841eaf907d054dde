//! The global `maxconn` changed by a reload: HAProxy needs a restart for it, lbha resizes the
//! running limit instead.

use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// A semaphore whose size can change while permits are held.
pub struct Resizable {
    pub sem: Arc<Semaphore>,
    size: Mutex<usize>,
}

impl Resizable {
    pub fn new(size: usize) -> Self {
        Self { sem: Arc::new(Semaphore::new(size)), size: Mutex::new(size) }
    }

    pub fn size(&self) -> usize {
        *self.size.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Growing adds slots at once. Shrinking removes free slots at once and the rest as held ones
    /// are released: a waiter takes them and forgets them, and as the semaphore is fair, new
    /// acquirers queue behind it, so no connection is accepted until the count is under the new
    /// limit. Needs a tokio runtime when shrinking below the slots in use.
    pub fn resize(&self, new: usize) {
        let mut size = self.size.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *size, new);
        if new > old {
            self.sem.add_permits(new - old);
        } else if new < old {
            let owed = (old - new) - self.sem.forget_permits(old - new);
            if owed > 0 {
                let sem = self.sem.clone();
                let owed = u32::try_from(owed).unwrap_or(u32::MAX);
                tokio::spawn(async move {
                    if let Ok(p) = sem.acquire_many_owned(owed).await {
                        p.forget();
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_at_once_and_shrinks_as_slots_are_released() {
        let r = Resizable::new(4);
        let held: Vec<_> = (0..3).map(|_| r.sem.clone().try_acquire_owned().unwrap()).collect();
        r.resize(6);
        assert_eq!((r.size(), r.sem.available_permits()), (6, 3));
        // Down to 2 with 3 held: the 3 free slots go now, one more when a connection closes.
        r.resize(2);
        assert_eq!(r.sem.available_permits(), 0);
        let mut held = held;
        held.pop();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while r.sem.available_permits() != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        // 2 held, limit 2: nothing free; when both close, exactly 2 are free.
        assert!(r.sem.clone().try_acquire_owned().is_err());
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while r.sem.available_permits() != 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert_eq!(r.size(), 2);
    }
}
