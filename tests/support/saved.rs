//! SPEC.md §11.2 written out field by field, shared by the vector generator
//! (examples/vectors.rs) and the behaviour tests: it builds saved sessions the
//! library would never write (a lying PN, inconsistent skipped keys,
//! duplicated chains) without the library's help.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

/// DHs.priv, DHs.pub, CKs, Ns.
pub type SavedSending = ([u8; 32], [u8; 32], [u8; 32], u32);

/// A saved session's fields (SPEC.md §11.2).
#[derive(Clone)]
pub struct Saved {
    /// Everything before RK (the header fields, with the OPK id if any).
    pub head: Vec<u8>,
    pub rk: [u8; 32],
    pub pn: u32,
    pub sending: Option<SavedSending>,
    pub open: Option<([u8; 32], [u8; 32], u32)>,
    pub closed: Vec<([u8; 32], u32)>,
    pub skipped: Vec<([u8; 32], u32, [u8; 32])>,
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn key(&mut self) -> [u8; 32] {
        self.take(32).try_into().unwrap()
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
}

impl Saved {
    pub fn parse(b: &[u8]) -> Self {
        let mut c = Cursor(b);
        // 0x16, revision, 4 x 32, role, pending, SPK id, OPK flag [, OPK id]
        let mut head = c.take(2 + 4 * 32 + 1 + 1 + 4);
        let opk = c.u8();
        head.push(opk);
        if opk == 1 {
            head.extend(c.take(4));
        }
        let rk = c.key();
        let pn = c.u32();
        let sending = (c.u8() == 1).then(|| (c.key(), c.key(), c.key(), c.u32()));
        let open = (c.u8() == 1).then(|| (c.key(), c.key(), c.u32()));
        let closed = (0..c.u8()).map(|_| (c.key(), c.u32())).collect();
        let n = u16::from_be_bytes(c.take(2).try_into().unwrap());
        let skipped = (0..n).map(|_| (c.key(), c.u32(), c.key())).collect();
        assert!(c.0.is_empty());
        Self { head, rk, pn, sending, open, closed, skipped }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        out.extend(self.rk);
        out.extend(self.pn.to_be_bytes());
        match &self.sending {
            Some((p, q, ck, n)) => {
                out.push(1);
                out.extend(p);
                out.extend(q);
                out.extend(ck);
                out.extend(n.to_be_bytes());
            }
            None => out.push(0),
        }
        match &self.open {
            Some((k, ck, n)) => {
                out.push(1);
                out.extend(k);
                out.extend(ck);
                out.extend(n.to_be_bytes());
            }
            None => out.push(0),
        }
        out.push(self.closed.len() as u8);
        for (k, n) in &self.closed {
            out.extend(k);
            out.extend(n.to_be_bytes());
        }
        out.extend((self.skipped.len() as u16).to_be_bytes());
        for (k, n, mk) in &self.skipped {
            out.extend(k);
            out.extend(n.to_be_bytes());
            out.extend(mk);
        }
        out
    }
}
