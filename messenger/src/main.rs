//! A messenger core on sottovoce, with every device's state in SQLite.
//!
//! An in-memory server (prekey directory, device lists, per-device queues)
//! and five users' devices, each with its own SQLite database (WAL), in
//! which the account, one session record per peer device and one group
//! state per group are stored sealed. Every message is handled the way a
//! phone does it: begin a transaction, unseal the record, decrypt, seal,
//! save, commit. Scenarios: a user with two devices, a simultaneous
//! initiation, a replayed message, 500 queued messages delivered shuffled,
//! a group of five with a removal and a late joiner, and safety numbers.
//!
//! The session logic is the library's: this file only stores bytes, moves
//! them and decides what to show.
#![allow(clippy::indexing_slicing, reason = "users and devices are indexed by the script")]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc, reason = "an application")]

use std::collections::{HashMap, VecDeque};
use std::error::Error;

use rusqlite::{Connection, OptionalExtension, params};
use sottovoce::rand_core::{Rng, UnwrapErr};
use sottovoce::*;

type Result<T> = std::result::Result<T, Box<dyn Error>>;
type Os = UnwrapErr<getrandom::SysRng>;

// ------------------------------------------------------------------ server

/// What a server stores per device: public keys only.
struct Directory {
    identity: IdentityKey,
    signed: PublicSignedPreKey,
    one_time: VecDeque<PublicOneTimePreKey>,
    last_resort_kem: PublicKemPreKey,
    one_time_kem: VecDeque<PublicKemPreKey>,
}

#[derive(Default)]
struct Server {
    devices: HashMap<Address, Directory>,
    /// Per user id: the signed device list (SPEC.md §3.7).
    device_lists: HashMap<Vec<u8>, Vec<u8>>,
    /// Per device: (sender, bytes), in arrival order.
    queues: HashMap<Address, Vec<(Address, Vec<u8>)>>,
}

impl Server {
    fn upload(&mut self, from: &Address, bytes: &[u8]) -> Result<()> {
        let upload = PreKeyUpload::try_from(bytes)?;
        upload.verify()?;
        let entry = self.devices.entry(from.clone());
        let dir = match (entry, upload.signed_prekey()) {
            (std::collections::hash_map::Entry::Occupied(o), spk) => {
                let d = o.into_mut();
                if let Some(spk) = spk {
                    d.signed = spk;
                }
                if let Some(kem) = upload.last_resort_kem_prekey() {
                    d.last_resort_kem = kem.clone();
                }
                d
            }
            (std::collections::hash_map::Entry::Vacant(v), Some(spk)) => v.insert(Directory {
                identity: upload.identity_key(),
                signed: spk,
                one_time: VecDeque::new(),
                last_resort_kem: upload.last_resort_kem_prekey().ok_or("first upload needs ML-KEM prekeys")?.clone(),
                one_time_kem: VecDeque::new(),
            }),
            (std::collections::hash_map::Entry::Vacant(_), None) => {
                return Err("first upload needs a signed prekey".into());
            }
        };
        dir.one_time.extend(upload.one_time_prekeys());
        dir.one_time_kem.extend(upload.one_time_kem_prekeys().iter().cloned());
        Ok(())
    }

    /// A PQXDH bundle with a one-time prekey of each kind while any is left
    /// (each handed out once), else without one / with the last-resort
    /// ML-KEM prekey (SPEC.md §3.6).
    fn bundle(&mut self, of: &Address) -> Result<Vec<u8>> {
        let d = self.devices.get_mut(of).ok_or("unknown device")?;
        let opk = d.one_time.pop_front();
        let kem = d.one_time_kem.pop_front().unwrap_or_else(|| d.last_resort_kem.clone());
        Ok(PreKeyBundle::assemble(d.identity, &d.signed, opk.as_ref()).with_kem_prekey(kem).to_bytes())
    }

    fn send(&mut self, from: &Address, to: &Address, bytes: Vec<u8>) {
        self.queues.entry(to.clone()).or_default().push((from.clone(), bytes));
    }

    fn fetch(&mut self, me: &Address) -> Vec<(Address, Vec<u8>)> {
        self.queues.remove(me).unwrap_or_default()
    }
}

// ------------------------------------------------------------------ device

struct Device {
    address: Address,
    db: Connection,
    storage_key: [u8; 32],
    rng: Os,
}

impl Device {
    /// A new device of `user`: a fresh database, account and prekeys.
    fn new(user: &[u8], device: u32, path: &std::path::Path) -> Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE account (id INTEGER PRIMARY KEY CHECK (id = 1), sealed BLOB NOT NULL);
             CREATE TABLE records (user BLOB, device INTEGER, sealed BLOB NOT NULL, PRIMARY KEY (user, device));
             CREATE TABLE groups (id BLOB PRIMARY KEY, sealed BLOB NOT NULL);
             CREATE TABLE contacts (user BLOB PRIMARY KEY, user_key BLOB NOT NULL, device_list BLOB NOT NULL);",
        )?;
        let mut rng = UnwrapErr(getrandom::SysRng);
        let mut storage_key = [0u8; 32];
        rng.fill_bytes(&mut storage_key);
        let mut account = Account::new(&mut rng); // post-quantum (PQXDH)
        account.replenish(&mut rng, 20);
        account.replenish_kem(&mut rng, 20);
        let me = Self { address: Address::new(user, DeviceId(device))?, db, storage_key, rng };
        me.save_account(&account)?;
        Ok(me)
    }

    fn identity(&self) -> Result<IdentityKey> {
        Ok(self.load_account()?.identity_key())
    }

    fn load_account(&self) -> Result<Account> {
        let sealed: Vec<u8> = self.db.query_row("SELECT sealed FROM account", [], |r| r.get(0))?;
        Ok(Account::unseal(&self.storage_key, &sealed)?)
    }

    fn save_account(&self, account: &Account) -> Result<()> {
        let mut rng = UnwrapErr(getrandom::SysRng);
        let sealed = account.seal(&mut rng, &self.storage_key);
        self.db.execute("INSERT OR REPLACE INTO account (id, sealed) VALUES (1, ?1)", params![sealed])?;
        Ok(())
    }

    /// Uploads what is new, then marks it published.
    fn publish(&mut self, server: &mut Server) -> Result<()> {
        let mut account = self.load_account()?;
        let upload = account.prekeys_to_publish();
        if !upload.is_empty() {
            server.upload(&self.address, &upload.to_bytes())?;
            account.mark_published(&upload);
            self.save_account(&account)?;
        }
        Ok(())
    }

    /// Pins a contact: its user key (after comparing safety numbers) and
    /// its device list, verified under that key.
    fn add_contact(&self, user: &[u8], user_key: IdentityKey, server: &Server) -> Result<()> {
        let list = server.device_lists.get(user).ok_or("no device list")?;
        DeviceList::verify(list, &user_key, None)?;
        self.db.execute(
            "INSERT OR REPLACE INTO contacts (user, user_key, device_list) VALUES (?1, ?2, ?3)",
            params![user, user_key.to_bytes().to_vec(), list],
        )?;
        Ok(())
    }

    /// A contact's devices from its pinned, verified device list.
    fn devices_of(&self, user: &[u8]) -> Result<Vec<(Address, IdentityKey)>> {
        let (key, list): (Vec<u8>, Vec<u8>) =
            self.db.query_row("SELECT user_key, device_list FROM contacts WHERE user = ?1", params![user], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let key = IdentityKey::from_bytes(key.as_slice().try_into()?)?;
        let list = DeviceList::verify(&list, &key, None)?;
        list.devices().iter().map(|(id, k)| Ok((Address::new(user, *id)?, *k))).collect()
    }

    fn load_record(&self, peer: &Address, identity: IdentityKey) -> Result<SessionRecord> {
        let sealed: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT sealed FROM records WHERE user = ?1 AND device = ?2",
                params![peer.user(), peer.device().0],
                |r| r.get(0),
            )
            .optional()?;
        match sealed {
            Some(s) => {
                let record = SessionRecord::unseal(&self.storage_key, &s)?;
                // A sealed blob does not name its slot: check it is this one.
                if record.remote() != peer || record.remote_identity() != identity {
                    return Err("a swapped record".into());
                }
                Ok(record)
            }
            None => Ok(SessionRecord::new(self.address.clone(), peer.clone(), identity)),
        }
    }

    fn save_record(&self, record: &SessionRecord) -> Result<()> {
        let sealed = record.seal(&mut UnwrapErr(getrandom::SysRng), &self.storage_key);
        let peer = record.remote();
        self.db.execute(
            "INSERT OR REPLACE INTO records (user, device, sealed) VALUES (?1, ?2, ?3)",
            params![peer.user(), peer.device().0, sealed],
        )?;
        Ok(())
    }

    /// Encrypts `envelope` for every device of `user` (and our own other
    /// devices), starting sessions from fetched bundles where needed.
    fn send_to_user(&mut self, server: &mut Server, user: &[u8], envelope: &Envelope) -> Result<()> {
        let mut targets = self.devices_of(user)?;
        if user != self.address.user() {
            targets.extend(self.devices_of(self.address.user())?.into_iter().filter(|(a, _)| *a != self.address));
        }
        for (peer, identity) in targets {
            let bytes = self.encrypt_for(server, &peer, identity, &envelope.to_bytes())?;
            server.send(&self.address, &peer, bytes);
        }
        Ok(())
    }

    fn encrypt_for(
        &mut self,
        server: &mut Server,
        peer: &Address,
        identity: IdentityKey,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let tx = self.db.unchecked_transaction()?;
        let mut record = self.load_record(peer, identity)?;
        if record.current().is_none() {
            let bundle = PreKeyBundle::try_from(server.bundle(peer)?.as_slice())?;
            let account = self.load_account()?;
            record.initiate_pq(&mut self.rng, account.identity_key_pair(), &bundle)?; // PQXDH only
        }
        let message = record.encrypt(&mut self.rng, plaintext)?;
        self.save_record(&record)?;
        tx.commit()?;
        Ok(message.to_bytes())
    }

    /// Handles everything queued for this device; returns what to show.
    fn receive(&mut self, server: &mut Server, shuffle: bool) -> Result<Vec<(Address, Result<Envelope>)>> {
        let mut queue = server.fetch(&self.address);
        if shuffle {
            for i in (1..queue.len()).rev() {
                queue.swap(i, (self.rng.next_u32() as usize) % (i + 1));
            }
        }
        let mut shown = Vec::new();
        for (from, bytes) in queue {
            let result = self.receive_one(&from, &bytes);
            shown.push((from, result));
        }
        Ok(shown)
    }

    fn receive_one(&mut self, from: &Address, bytes: &[u8]) -> Result<Envelope> {
        if let Ok(envelope @ Envelope::Group { .. }) = Envelope::try_from(bytes) {
            let Envelope::Group { group_id, .. } = &envelope else { return Err("not a group message".into()) };
            let tx = self.db.unchecked_transaction()?;
            let mut group = self.load_group(group_id.as_bytes())?;
            let plaintext = group.decrypt(&envelope)?;
            self.save_group(&group)?;
            tx.commit()?;
            return Ok(Envelope::Content(plaintext));
        }
        let identity = self
            .devices_of(from.user())?
            .into_iter()
            .find(|(a, _)| a == from)
            .map(|(_, k)| k)
            .ok_or("a device its user's list does not name")?;
        let tx = self.db.unchecked_transaction()?;
        let mut record = self.load_record(from, identity)?;
        let mut account = self.load_account()?;
        let plaintext = record.decrypt_bytes(&mut account, bytes)?;
        self.save_record(&record)?;
        self.save_account(&account)?;
        let envelope = Envelope::try_from(plaintext.as_slice())?;
        if let Envelope::Distribution(d) = &envelope {
            let mut group = self.load_group(d.group_id().as_bytes())?;
            group.add_distribution(&record, d)?;
            self.save_group(&group)?;
        }
        if let Envelope::Removed(g) = &envelope {
            let mut group = self.load_group(g.as_bytes())?;
            group.mark_removed();
            self.save_group(&group)?;
        }
        tx.commit()?;
        Ok(envelope)
    }

    fn load_group(&self, id: &[u8]) -> Result<Group> {
        let sealed: Vec<u8> =
            self.db.query_row("SELECT sealed FROM groups WHERE id = ?1", params![id], |r| r.get(0))?;
        let group = Group::unseal(&self.storage_key, &sealed)?;
        if group.group_id().as_bytes() != id {
            return Err("a swapped group state".into());
        }
        Ok(group)
    }

    fn save_group(&self, group: &Group) -> Result<()> {
        let sealed = group.seal(&mut UnwrapErr(getrandom::SysRng), &self.storage_key);
        self.db.execute(
            "INSERT OR REPLACE INTO groups (id, sealed) VALUES (?1, ?2)",
            params![group.group_id().as_bytes(), sealed],
        )?;
        Ok(())
    }

    /// Sends `text` to the group: one encryption, fanned out by the server.
    fn send_to_group(&mut self, server: &mut Server, id: &[u8], text: &[u8]) -> Result<()> {
        let mut group = self.load_group(id)?;
        let envelope = group.encrypt(text)?;
        self.save_group(&group)?;
        let members: Vec<Address> = group.members().map(|(a, _, _)| a.clone()).collect();
        for m in members {
            server.send(&self.address, &m, envelope.to_bytes().to_vec());
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ users

/// A user: its user identity key (the one safety numbers are computed over)
/// signs its device list.
struct User {
    id: Vec<u8>,
    key: IdentityKeyPair,
    devices: Vec<Device>,
}

impl User {
    fn new(id: &str, devices: u32, dir: &std::path::Path, server: &mut Server) -> Result<Self> {
        let mut rng = UnwrapErr(getrandom::SysRng);
        let key = IdentityKeyPair::generate(&mut rng);
        let mut list = Vec::new();
        let mut made = Vec::new();
        for d in 1..=devices {
            let mut device = Device::new(id.as_bytes(), d, &dir.join(format!("{id}-{d}.sqlite")))?;
            device.publish(server)?;
            list.push((DeviceId(d), device.identity()?));
            made.push(device);
        }
        server.device_lists.insert(id.as_bytes().to_vec(), DeviceList::sign(&key, 1, &list)?.to_bytes());
        Ok(Self { id: id.as_bytes().to_vec(), key, devices: made })
    }
}

fn show(to: &Address, from: &Address, e: &Result<Envelope>) -> String {
    let name = |a: &Address| format!("{}/{}", String::from_utf8_lossy(a.user()), a.device().0);
    match e {
        Ok(Envelope::Content(c)) => format!("{} <- {}: {}", name(to), name(from), String::from_utf8_lossy(c)),
        Ok(other) => format!("{} <- {}: {other:?}", name(to), name(from)),
        Err(err) => format!("{} <- {}: refused ({err})", name(to), name(from)),
    }
}

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sottovoce-messenger-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut server = Server::default();
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut users: Vec<User> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        users.push(User::new(n, if i == 0 { 2 } else { 1 }, &dir, &mut server)?);
    }
    // Everyone compared safety numbers with everyone, then pinned each
    // other's user key and device list.
    for i in 0..users.len() {
        for j in 0..users.len() {
            let (id, key) = (users[j].id.clone(), users[j].key.public_key());
            for d in &users[i].devices {
                d.add_contact(&id, key, &server)?;
            }
        }
    }
    let sn = SafetyNumber::new((&users[0].key.public_key(), b"alice"), (&users[1].key.public_key(), b"bob"))?;
    let sn_b = SafetyNumber::new((&users[1].key.public_key(), b"bob"), (&users[0].key.public_key(), b"alice"))?;
    assert_eq!(sn.digits(), sn_b.digits());
    println!("alice and bob compare safety number {sn} (the same on both of alice's devices)");

    // Alice's phone writes to Bob; her laptop gets a copy; Bob answers both.
    let hello = Envelope::Content(b"hi bob, from my phone".to_vec());
    users[0].devices[0].send_to_user(&mut server, b"bob", &hello)?;
    for (user, device) in [(1, 0), (0, 1)] {
        let me = users[user].devices[device].address.clone();
        for (from, e) in users[user].devices[device].receive(&mut server, false)? {
            println!("{}", show(&me, &from, &e));
            assert!(e.is_ok());
        }
    }
    users[1].devices[0].send_to_user(&mut server, b"alice", &Envelope::Content(b"hi alice (both devices)".to_vec()))?;
    for device in 0..2 {
        let me = users[0].devices[device].address.clone();
        for (from, e) in users[0].devices[device].receive(&mut server, false)? {
            println!("{}", show(&me, &from, &e));
            assert!(e.is_ok());
        }
    }

    // Bob and Carol write to each other at once, twice (their messages
    // cross both times): two sessions, and after one exchange one is kept.
    for text in ["?", ", still there?"] {
        let (to_carol, to_bob) = (format!("carol{text}"), format!("bob{text}"));
        users[1].devices[0].send_to_user(&mut server, b"carol", &Envelope::Content(to_carol.into_bytes()))?;
        users[2].devices[0].send_to_user(&mut server, b"bob", &Envelope::Content(to_bob.into_bytes()))?;
        for u in [1, 2] {
            let me = users[u].devices[0].address.clone();
            for (from, e) in users[u].devices[0].receive(&mut server, false)? {
                println!("{}", show(&me, &from, &e));
                assert!(e.is_ok());
            }
        }
    }
    let bob_carol = users[1].devices[0].load_record(&users[2].devices[0].address, users[2].devices[0].identity()?)?;
    let carol_bob = users[2].devices[0].load_record(&users[1].devices[0].address, users[1].devices[0].identity()?)?;
    assert_eq!(bob_carol.current_id(), carol_bob.current_id());
    let kept: String = bob_carol.current_id().ok_or("none")?.0[..4].iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "bob and carol initiated at once; after one exchange both are on the session with the smaller id, {kept}.."
    );

    // 500 messages queued for Carol, delivered shuffled; one replayed.
    for i in 0..500 {
        let text = format!("queued {i}");
        let peer = users[2].devices[0].address.clone();
        let identity = users[2].devices[0].identity()?;
        let bytes = users[1].devices[0].encrypt_for(
            &mut server,
            &peer,
            identity,
            &Envelope::Content(text.into_bytes()).to_bytes(),
        )?;
        let from = users[1].devices[0].address.clone();
        server.send(&from, &peer, bytes);
    }
    let replay = server.queues.get(&users[2].devices[0].address).and_then(|q| q.get(17)).cloned().ok_or("queue")?;
    let got = users[2].devices[0].receive(&mut server, true)?;
    let delivered = got.iter().filter(|(_, e)| e.is_ok()).count();
    println!("carol decrypted {delivered} of 500 queued messages, delivered shuffled");
    assert_eq!(delivered, 500);
    let again = users[2].devices[0].receive_one(&replay.0, &replay.1);
    println!("{}", show(&users[2].devices[0].address, &replay.0, &again));
    assert!(again.is_err());

    // A group of five devices; Dave is removed; Erin joins late.
    let gid = GroupId::new(b"book club")?;
    let group_of = |i: usize, j: usize, users: &[User]| -> Result<Vec<(Address, IdentityKey)>> {
        let mut m = Vec::new();
        for (k, u) in users.iter().enumerate().take(4) {
            for (l, d) in u.devices.iter().enumerate() {
                if (k, l) != (i, j) {
                    m.push((d.address.clone(), d.identity()?));
                }
            }
        }
        Ok(m)
    };
    let members: Vec<(usize, usize)> = vec![(0, 0), (0, 1), (1, 0), (2, 0), (3, 0)];
    for &(i, j) in &members {
        let others = group_of(i, j, &users)?;
        let d = &mut users[i].devices[j];
        let mut rng = UnwrapErr(getrandom::SysRng);
        let group = Group::create(&mut rng, gid.clone(), d.address.clone(), d.identity()?, &others)?;
        d.save_group(&group)?;
    }
    for &(i, j) in &members {
        let group = users[i].devices[j].load_group(gid.as_bytes())?;
        let distribution = group.distribution();
        for (peer, identity) in group.members().map(|(a, k, _)| (a.clone(), k)).collect::<Vec<_>>() {
            let bytes = users[i].devices[j].encrypt_for(&mut server, &peer, identity, &distribution.to_bytes())?;
            let from = users[i].devices[j].address.clone();
            server.send(&from, &peer, bytes);
        }
    }
    for &(i, j) in &members {
        for (_, e) in users[i].devices[j].receive(&mut server, true)? {
            e?;
        }
    }
    users[1].devices[0].send_to_group(&mut server, gid.as_bytes(), b"welcome to the book club")?;
    for &(i, j) in &members {
        for (from, e) in users[i].devices[j].receive(&mut server, false)? {
            println!("{}", show(&users[i].devices[j].address, &from, &e));
            assert!(e.is_ok());
        }
    }
    // Every member removes Dave and rotates; Dave is told.
    let dave = users[3].devices[0].address.clone();
    for &(i, j) in &members[..4] {
        let mut rng = UnwrapErr(getrandom::SysRng);
        let mut group = users[i].devices[j].load_group(gid.as_bytes())?;
        let fresh = group.remove_member(&mut rng, &dave).ok_or("not a member")?;
        users[i].devices[j].save_group(&group)?;
        for (peer, identity) in group.members().map(|(a, k, _)| (a.clone(), k)).collect::<Vec<_>>() {
            let bytes = users[i].devices[j].encrypt_for(&mut server, &peer, identity, &fresh.to_bytes())?;
            let from = users[i].devices[j].address.clone();
            server.send(&from, &peer, bytes);
        }
    }
    let bob_address = users[1].devices[0].address.clone();
    let removed = Envelope::Removed(gid.clone());
    let dave_identity = users[3].devices[0].identity()?;
    let bytes = users[1].devices[0].encrypt_for(&mut server, &dave, dave_identity, &removed.to_bytes())?;
    server.send(&bob_address, &dave, bytes);
    for &(i, j) in &members {
        for (_, e) in users[i].devices[j].receive(&mut server, true)? {
            e?;
        }
    }
    // Erin joins late: every remaining member adds her and sends her its
    // distribution; she creates her state and sends hers to them.
    let erin = users[4].devices[0].address.clone();
    let erin_identity = users[4].devices[0].identity()?;
    let remaining: Vec<(usize, usize)> = members[..4].to_vec();
    let mut erin_members = Vec::new();
    for &(i, j) in &remaining {
        let d = &mut users[i].devices[j];
        let mut group = d.load_group(gid.as_bytes())?;
        let to_erin = group.add_member(erin.clone(), erin_identity)?;
        d.save_group(&group)?;
        let bytes = d.encrypt_for(&mut server, &erin, erin_identity, &to_erin.to_bytes())?;
        server.send(&d.address.clone(), &erin, bytes);
        erin_members.push((d.address.clone(), d.identity()?));
    }
    let mut rng = UnwrapErr(getrandom::SysRng);
    let erin_group = Group::create(&mut rng, gid.clone(), erin.clone(), erin_identity, &erin_members)?;
    users[4].devices[0].save_group(&erin_group)?;
    for (peer, identity) in &erin_members {
        let bytes =
            users[4].devices[0].encrypt_for(&mut server, peer, *identity, &erin_group.distribution().to_bytes())?;
        server.send(&erin, peer, bytes);
    }
    for (i, j) in [(0, 0), (0, 1), (1, 0), (2, 0), (4, 0)] {
        for (_, e) in users[i].devices[j].receive(&mut server, false)? {
            e?;
        }
    }
    users[4].devices[0].send_to_group(&mut server, gid.as_bytes(), b"hi all, erin here")?;
    users[2].devices[0].send_to_group(&mut server, gid.as_bytes(), b"hello erin, dave has left")?;
    // A server that still copies the group's traffic to Dave.
    let copy = server.queues.get(&users[1].devices[0].address).and_then(|q| q.last()).cloned().ok_or("queue")?;
    server.send(&copy.0, &dave, copy.1);
    for (i, j) in [(0, 0), (0, 1), (1, 0), (2, 0), (3, 0), (4, 0)] {
        for (from, e) in users[i].devices[j].receive(&mut server, false)? {
            println!("{}", show(&users[i].devices[j].address, &from, &e));
            assert_eq!(e.is_ok(), i != 3, "only Dave is refused");
        }
    }
    let size: u64 = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    let devices: usize = users.iter().map(|u| u.devices.len()).sum();
    println!("all scenarios passed; {devices} device databases, {size} bytes on disk");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
