//! Where pushing local changes to one peer stands, for one table (HAProxy's `last_pushed` and
//! acked `update`). A new session with the peer starts from what the peer acknowledged, not
//! from what an earlier session sent: a session that ends (a collision, a lost connection) may
//! have sent updates the peer never read. Update ids wrap, so "after" is wrapping order.

/// Whether update id `a` comes after `b`.
pub fn after(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 > 0
}

/// One session's cursor for one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The peer has every local change up to this id (acked, or covered by a confirmed lesson).
    pub acked: u32,
    /// Local changes up to this id were sent in this session.
    pub pushed: u32,
    /// A lesson sent in this session covers local changes up to this id, once confirmed.
    lesson: Option<u32>,
}

impl Cursor {
    /// A session starting from what the peer acknowledged: it pushes everything after.
    pub fn resume(acked: u32) -> Cursor {
        Cursor { acked, pushed: acked, lesson: None }
    }

    /// Changes up to `last` (the table's last update id) were pushed.
    pub fn pushed_up_to(&mut self, last: u32) {
        self.pushed = last;
    }

    /// A lesson was sent while the table's last update id was `last`.
    pub fn taught_up_to(&mut self, last: u32) {
        self.lesson = Some(last);
    }

    /// The peer confirmed the lesson: it has every change the lesson covered. Whether `acked`
    /// moved.
    pub fn lesson_confirmed(&mut self) -> bool {
        match self.lesson.take() {
            Some(l) if after(l, self.acked) => {
                self.acked = l;
                true
            }
            _ => false,
        }
    }

    /// The peer acked update `id`. Only ids this session pushed and not yet acked count: acks
    /// of lesson updates carry lesson sequence numbers, which a confirmed lesson already
    /// covers. Whether `acked` moved.
    pub fn ack(&mut self, id: u32) -> bool {
        if after(id, self.acked) && !after(id, self.pushed) {
            self.acked = id;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_resends_what_was_pushed_but_not_acked() {
        let mut c = Cursor::resume(10);
        c.pushed_up_to(15);
        assert!(c.ack(12));
        assert_eq!(c.acked, 12);
        // The session ends here: the next one starts from 12, so 13..=15 go again.
        let next = Cursor::resume(c.acked);
        assert_eq!((next.acked, next.pushed), (12, 12));
    }

    #[test]
    fn acks_outside_what_was_pushed_are_ignored() {
        let mut c = Cursor::resume(10);
        c.pushed_up_to(15);
        assert!(!c.ack(16), "never sent");
        assert!(!c.ack(10) && !c.ack(3), "old or a lesson sequence number");
        assert!(c.ack(15));
        assert!(!c.ack(14), "acks do not go back");
        assert_eq!(c.acked, 15);
    }

    #[test]
    fn a_confirmed_lesson_counts_as_acked_and_shields_its_acks() {
        let mut c = Cursor::resume(0);
        c.taught_up_to(40);
        assert!(c.lesson_confirmed());
        assert_eq!(c.acked, 40);
        // The trailing ack of lesson update 3 (a sequence number) moves nothing.
        assert!(!c.ack(3));
        assert!(!c.lesson_confirmed(), "confirmed once");
        c.pushed_up_to(42);
        assert!(c.ack(42));
    }

    #[test]
    fn ids_wrap() {
        let mut c = Cursor::resume(u32::MAX - 1);
        c.pushed_up_to(2);
        assert!(after(1, u32::MAX));
        assert!(c.ack(u32::MAX));
        assert!(c.ack(1));
        assert!(!c.ack(3));
        assert_eq!(c.acked, 1);
    }
}
