//! Whole conversations, end to end: `cargo run -p sottovoce-chat`.
//!
//! Alice (a phone and a laptop), Bob and Carol. Each user's key signs its
//! device list; each device publishes public prekeys, X25519 and ML-KEM, to
//! a server. Alice writes to Bob while he is offline, over a post-quantum
//! PQXDH session; Mallory replays the first message; a malicious server's
//! downgrade to classical X3DH is refused;
//! the network loses and swaps messages; Bob's app restarts; Bob writes to
//! both of Alice's devices; Bob and Carol start sessions to each other at
//! the same moment and still end on one; they compare safety numbers. Then
//! a group: Carol is removed, told, and cannot read any more. Every hop
//! between devices is bytes only; the session logic is the library's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
#![allow(clippy::needless_range_loop, reason = "devices and their groups are indexed together")]

use std::collections::HashMap;

use sottovoce::rand_core::UnwrapErr;
use sottovoce::*;

type Os = UnwrapErr<getrandom::SysRng>;

/// One device: its account (identity and prekeys) and one session record
/// per peer device.
struct Device {
    name: &'static str,
    address: Address,
    account: Account,
    records: HashMap<Address, SessionRecord>,
}

/// A device's public prekeys as a server keeps them: X25519 and ML-KEM.
struct Published {
    identity: IdentityKey,
    signed: PublicSignedPreKey,
    one_time: Vec<PublicOneTimePreKey>,
    last_resort_kem: PublicKemPreKey,
    one_time_kem: Vec<PublicKemPreKey>,
}

/// What a server keeps: public prekeys only, and each user's device list.
#[derive(Default)]
struct Server {
    prekeys: HashMap<Address, Published>,
    /// The size of the last bundle handed out, for the transcript.
    last_bundle_len: usize,
}

impl Server {
    fn upload(&mut self, from: &Address, bytes: &[u8]) {
        let up = PreKeyUpload::try_from(bytes).unwrap();
        up.verify().unwrap();
        let entry = self.prekeys.entry(from.clone()).or_insert_with(|| Published {
            identity: up.identity_key(),
            signed: up.signed_prekey().unwrap(),
            one_time: Vec::new(),
            last_resort_kem: up.last_resort_kem_prekey().unwrap().clone(),
            one_time_kem: Vec::new(),
        });
        entry.one_time.extend(up.one_time_prekeys());
        entry.one_time_kem.extend(up.one_time_kem_prekeys().iter().cloned());
    }

    /// A PQXDH bundle: each one-time prekey of either kind is handed out
    /// once, then the last-resort ML-KEM prekey (SPEC.md §3.6).
    fn bundle(&mut self, of: &Address) -> Vec<u8> {
        let p = self.prekeys.get_mut(of).unwrap();
        let opk = (!p.one_time.is_empty()).then(|| p.one_time.remove(0));
        let kem = if p.one_time_kem.is_empty() { p.last_resort_kem.clone() } else { p.one_time_kem.remove(0) };
        let bundle = PreKeyBundle::assemble(p.identity, &p.signed, opk.as_ref()).with_kem_prekey(kem).to_bytes();
        self.last_bundle_len = bundle.len();
        bundle
    }

    /// What a malicious server could hand out: the same X25519 prekeys,
    /// validly signed, without the ML-KEM prekey (a classical bundle).
    fn stripped_bundle(&self, of: &Address) -> Vec<u8> {
        let p = &self.prekeys[of];
        PreKeyBundle::assemble(p.identity, &p.signed, None).to_bytes()
    }
}

impl Device {
    fn new(rng: &mut Os, name: &'static str, user: &str, id: u32, server: &mut Server) -> Self {
        let mut account = Account::new(rng); // post-quantum: X25519 and ML-KEM-1024 prekeys
        account.replenish(rng, 5);
        account.replenish_kem(rng, 5);
        let address = Address::new(user.as_bytes(), DeviceId(id)).unwrap();
        let upload = account.prekeys_to_publish();
        server.upload(&address, &upload.to_bytes());
        account.mark_published(&upload);
        Self { name, address, account, records: HashMap::new() }
    }

    /// Encrypts bytes for `to`, first starting a session from a fetched
    /// bundle if the record has none.
    fn seal_for(&mut self, rng: &mut Os, server: &mut Server, to: &Device, plaintext: &[u8]) -> Vec<u8> {
        let record = record_in(&mut self.records, &self.address, to);
        if record.current().is_none() {
            let bundle = PreKeyBundle::try_from(server.bundle(&to.address).as_slice()).unwrap();
            // Only PQXDH: a bundle without its ML-KEM prekey is refused.
            record.initiate_pq(rng, self.account.identity_key_pair(), &bundle).unwrap();
        }
        record.encrypt(rng, plaintext).unwrap().to_bytes()
    }

    fn send(&mut self, rng: &mut Os, server: &mut Server, to: &Device, text: &str) -> Vec<u8> {
        let wire = self.seal_for(rng, server, to, &Envelope::Content(text.as_bytes().to_vec()).to_bytes());
        println!("  {:>6} -> {:<6} {:>4} bytes   {text:?}", self.name, to.name, wire.len());
        wire
    }

    /// Decrypts from `from` (the account is updated only on success) and
    /// reads the envelope; the plaintext buffer is wiped when dropped.
    fn open_from(&mut self, from: &Device, wire: &[u8]) -> Result<Envelope, DecryptError> {
        let plaintext = record_in(&mut self.records, &self.address, from).decrypt_bytes(&mut self.account, wire)?;
        Ok(Envelope::try_from(plaintext.as_slice()).unwrap())
    }

    fn receive(&mut self, from: &Device, wire: &[u8]) -> Result<String, DecryptError> {
        match self.open_from(from, wire)? {
            Envelope::Content(c) => Ok(String::from_utf8(c).unwrap()),
            other => Ok(format!("{other:?}")),
        }
    }

    fn read(&mut self, from: &Device, wire: &[u8]) {
        match self.receive(from, wire) {
            Ok(text) => println!("  {:>6} reads {text:?}", self.name),
            Err(e) => println!("  {:>6} refuses it: {e}", self.name),
        }
    }
}

/// The record with `peer`, made for the key its verified device list names.
fn record_in<'a>(
    records: &'a mut HashMap<Address, SessionRecord>,
    me: &Address,
    peer: &Device,
) -> &'a mut SessionRecord {
    let key = peer.account.identity_key();
    records.entry(peer.address.clone()).or_insert_with(|| SessionRecord::new(me.clone(), peer.address.clone(), key))
}

fn short(id: Option<SessionId>) -> String {
    id.map(|i| i.0[..4].iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default()
}

fn main() {
    let mut rng = UnwrapErr(getrandom::SysRng);
    let mut server = Server::default();

    println!("== Users, devices, prekeys ==");
    let alice_key = IdentityKeyPair::generate(&mut rng);
    let bob_key = IdentityKeyPair::generate(&mut rng);
    let mut phone = Device::new(&mut rng, "phone", "alice", 1, &mut server);
    let mut laptop = Device::new(&mut rng, "laptop", "alice", 2, &mut server);
    let mut bob = Device::new(&mut rng, "bob", "bob", 1, &mut server);
    let mut carol = Device::new(&mut rng, "carol", "carol", 1, &mut server);
    let alice_list = DeviceList::sign(
        &alice_key,
        1,
        &[(DeviceId(1), phone.account.identity_key()), (DeviceId(2), laptop.account.identity_key())],
    )
    .unwrap()
    .to_bytes();
    let verified = DeviceList::verify(&alice_list, &alice_key.public_key(), None).unwrap();
    println!(
        "Alice's user key signs her device list ({} bytes): {} devices, checked by Bob against her user key.",
        alice_list.len(),
        verified.devices().len()
    );
    println!("Each device uploads public prekeys only; the server assembles bundles from them.");

    println!();
    println!("== Alice's phone writes to Bob, who is offline ==");
    let first = phone.send(&mut rng, &mut server, &bob, "Hi Bob, it's Alice.");
    bob.read(&phone, &first);
    let session = bob.records[&phone.address].current().unwrap();
    println!(
        "  a PQXDH session (X25519 + ML-KEM-1024, SPEC.md §4.8): post-quantum {}, messages of version {}; \
the bundle was {} bytes, the first message carries the {}-byte KEM ciphertext",
        session.is_post_quantum(),
        session.version(),
        server.last_bundle_len,
        KEM_CIPHERTEXT_LEN,
    );
    println!("Mallory replays Alice's first message:");
    bob.read(&phone, &first);
    println!("A malicious server strips the ML-KEM prekey from Bob's bundle for Carol (a downgrade to X3DH):");
    let classical = PreKeyBundle::try_from(server.stripped_bundle(&bob.address).as_slice()).unwrap();
    let mut to_bob = SessionRecord::new(carol.address.clone(), bob.address.clone(), bob.account.identity_key());
    let refused = to_bob.initiate_pq(&mut rng, carol.account.identity_key_pair(), &classical).unwrap_err();
    println!("   carol refuses the bundle before sending anything: {refused}");
    println!("An initiator that took it anyway (X3DH only) is refused by Bob, who requires PQXDH:");
    to_bob.initiate(&mut rng, carol.account.identity_key_pair(), &classical).unwrap();
    let downgraded = to_bob.encrypt(&mut rng, &Envelope::Content(b"classical only".to_vec()).to_bytes()).unwrap();
    bob.read(&carol, &downgraded.to_bytes());

    let reply = bob.send(&mut rng, &mut server, &phone, "Hey Alice! Good to hear from you.");
    phone.read(&bob, &reply);
    println!("Alice sends four; the network loses #2 and swaps #3 and #4:");
    let wires: Vec<Vec<u8>> =
        ["#1 Are you free Friday?", "#2 (this one gets lost)", "#3 I found a place.", "#4 It has a garden."]
            .iter()
            .map(|t| phone.send(&mut rng, &mut server, &bob, t))
            .collect();
    for i in [0usize, 3, 2] {
        bob.read(&phone, &wires[i]);
    }
    println!("Mallory replays #3 and flips a bit of #2:");
    bob.read(&phone, &wires[2]);
    let mut tampered = wires[1].clone();
    tampered[45] ^= 1;
    bob.read(&phone, &tampered);
    let key = [7u8; 32]; // in a real app: from the platform keystore
    let sealed = bob.records[&phone.address].seal(&mut rng, &key);
    let restored = SessionRecord::unseal(&key, &sealed).unwrap();
    bob.records.insert(phone.address.clone(), restored);
    println!(
        "Bob's app restarts: his record with Alice's phone was saved sealed ({} bytes) and restored.",
        sealed.len()
    );
    bob.read(&phone, &wires[1]);

    println!();
    println!("== Bob writes to both of Alice's devices ==");
    for device in [&mut phone, &mut laptop] {
        let wire = bob.send(&mut rng, &mut server, device, "See you Friday!");
        device.read(&bob, &wire);
    }
    let on_phone = SafetyNumber::new((&alice_key.public_key(), b"alice"), (&bob_key.public_key(), b"bob")).unwrap();
    let on_bobs = SafetyNumber::new((&bob_key.public_key(), b"bob"), (&alice_key.public_key(), b"alice")).unwrap();
    println!("Safety number (over user keys: the same on Alice's phone and laptop):");
    println!("  {on_phone}");
    println!(
        "  Bob scans Alice's code: {}",
        if on_bobs.matches_scanned(&on_phone.scannable()) { "match" } else { "MISMATCH" }
    );

    println!();
    println!("== Bob and Carol start sessions to each other at the same moment ==");
    let b1 = bob.send(&mut rng, &mut server, &carol, "Carol, are you coming?");
    let c1 = carol.send(&mut rng, &mut server, &bob, "Bob, is it still on?");
    println!(
        "  two sessions exist: Bob's {} and Carol's {}",
        short(bob.records[&carol.address].current_id()),
        short(carol.records[&bob.address].current_id())
    );
    carol.read(&bob, &b1);
    bob.read(&carol, &c1);
    println!(
        "  each takes the other's new session: Bob is on {}, Carol on {}",
        short(bob.records[&carol.address].current_id()),
        short(carol.records[&bob.address].current_id())
    );
    // Crossing on the wire again: the first normal messages settle it.
    let b2 = bob.send(&mut rng, &mut server, &carol, "Yes, at 8.");
    let c2 = carol.send(&mut rng, &mut server, &bob, "Great, I'll bring pie.");
    carol.read(&bob, &b2);
    bob.read(&carol, &c2);
    let (kept_b, kept_c) = (bob.records[&carol.address].current_id(), carol.records[&bob.address].current_id());
    assert_eq!(kept_b, kept_c);
    println!("  after one exchange both are on the one with the smaller id, {}; nothing was lost.", short(kept_b));
    let b3 = bob.send(&mut rng, &mut server, &carol, "See you then.");
    carol.read(&bob, &b3);

    println!();
    println!("== A group: Alice's phone, Bob, Carol ==");
    let gid = GroupId::new(b"friday-dinner").unwrap();
    let members = |me: &Device, all: [&Device; 3]| -> Vec<(Address, IdentityKey)> {
        all.iter().filter(|d| d.address != me.address).map(|d| (d.address.clone(), d.account.identity_key())).collect()
    };
    let all = [&phone, &bob, &carol];
    let mut groups: Vec<Group> = all
        .iter()
        .map(|d| {
            Group::create(&mut rng, gid.clone(), d.address.clone(), d.account.identity_key(), &members(d, all)).unwrap()
        })
        .collect();
    let mut devices = [phone, bob, carol];
    // Every member's distribution, to every other member, inside sessions.
    for from in 0..3 {
        let bytes = groups[from].distribution().to_bytes();
        for to in 0..3 {
            if to == from {
                continue;
            }
            let (sender, receiver) = pair(&mut devices, from, to);
            let wire = sender.seal_for(&mut rng, &mut server, receiver, &bytes);
            let Envelope::Distribution(d) = receiver.open_from(sender, &wire).unwrap() else { unreachable!() };
            groups[to].add_distribution(&receiver.records[&sender.address], &d).unwrap();
        }
    }
    println!("Each member's sender key travels inside the pairwise sessions, as a distribution envelope.");
    let m = groups[0].encrypt(b"Dinner at 8?").unwrap();
    println!("  phone -> group {:>4} bytes, encrypted once", m.to_bytes().len());
    for to in [1, 2] {
        println!("  {:>6} reads {:?}", devices[to].name, String::from_utf8_lossy(&groups[to].decrypt(&m).unwrap()));
    }
    println!("Carol is removed: Alice and Bob rotate and send new keys to each other only.");
    for (me, other) in [(0usize, 1usize), (1, 0)] {
        let fresh = groups[me].remove_member(&mut rng, &devices[2].address).unwrap();
        let (sender, receiver) = pair(&mut devices, me, other);
        let wire = sender.seal_for(&mut rng, &mut server, receiver, &fresh.to_bytes());
        let Envelope::Distribution(d) = receiver.open_from(sender, &wire).unwrap() else { unreachable!() };
        groups[other].add_distribution(&receiver.records[&sender.address], &d).unwrap();
    }
    let m = groups[1].encrypt(b"Just us two: a surprise party for Carol?").unwrap();
    println!("  {:>6} reads {:?}", devices[0].name, String::from_utf8_lossy(&groups[0].decrypt(&m).unwrap()));
    println!("  {:>6}, not told yet: {}", devices[2].name, groups[2].decrypt(&m).unwrap_err());
    groups[2].mark_removed();
    println!("  {:>6}, told she was removed: {}", devices[2].name, groups[2].decrypt(&m).unwrap_err());
    println!();
    println!(
        "Overheads: session message {MESSAGE_OVERHEAD} bytes, group message {GROUP_MESSAGE_OVERHEAD} bytes over the plaintext; \
a PQXDH first message 1705 bytes (1701 without a one-time prekey), once per session."
    );
}

/// Two distinct devices of the array, mutably.
fn pair(devices: &mut [Device; 3], a: usize, b: usize) -> (&mut Device, &mut Device) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = devices.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = devices.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}
