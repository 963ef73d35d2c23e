//! A whole conversation, end to end: `cargo run -p sottovoce-chat`.
//!
//! Alice and Bob publish prekeys, Alice starts a session while Bob is
//! offline, and they talk over a network that loses one message and swaps
//! two. Then Alice, Bob and Carol chat in a group (Sender Keys over their
//! pairwise sessions); Carol leaves, Alice and Bob rotate, and Carol can no
//! longer read. Every "network" hop below is bytes only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use sottovoce::*;

fn show(from: &str, to: &str, wire: &[u8], plaintext: &[u8]) {
    println!("  {from:>5} -> {to:<5} {:>4} bytes on the wire   {:?}", wire.len(), String::from_utf8_lossy(plaintext));
}

/// A pairwise session between two named accounts, established via X3DH.
fn connect(
    rng: &mut impl sottovoce::rand_core::CryptoRng,
    from: &Account,
    to: &mut Account,
    binding: &[u8],
) -> (Session, Session) {
    let opk = to.generate_one_time_prekeys(rng, 1)[0];
    let bundle = PreKeyBundle::try_from(to.prekey_bundle(Some(opk)).unwrap().to_bytes().as_slice()).unwrap();
    let mut a = Session::initiate(rng, from.identity_key_pair(), &bundle, binding).unwrap();
    let wire = a.encrypt(rng, b"(session start)").unwrap().to_bytes();
    let Message::PreKey(first) = Message::try_from(wire.as_slice()).unwrap() else { unreachable!() };
    let inbound = Session::respond(to, &first, binding).unwrap();
    (a, inbound.session)
}

fn main() {
    let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);

    println!("== 1:1 session (X3DH + Double Ratchet) ==");
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let published = bob.generate_one_time_prekeys(&mut rng, 5);
    println!("Bob publishes his identity, a signed prekey and {} one-time prekeys.", published.len());

    // The server hands Alice one bundle with one one-time prekey.
    let bundle_bytes = bob.prekey_bundle(Some(published[0])).unwrap().to_bytes();
    println!("Alice fetches Bob's bundle ({} bytes) while Bob is offline.", bundle_bytes.len());
    let bundle = PreKeyBundle::try_from(bundle_bytes.as_slice()).unwrap();
    // Both sides bind the session to their addresses (SPEC.md §4.1).
    let binding = b"alice@example.org/phone|bob@example.org/laptop";
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, binding).unwrap();

    let first = a.encrypt(&mut rng, b"Hi Bob, it's Alice.").unwrap().to_bytes();
    show("alice", "bob", &first, b"Hi Bob, it's Alice.");
    let Message::PreKey(pm) = Message::try_from(first.as_slice()).unwrap() else { unreachable!() };
    let inbound = Session::respond(&mut bob, &pm, binding).unwrap();
    let mut b = inbound.session;
    println!(
        "  Bob comes online, answers the prekey message and reads: {:?}",
        String::from_utf8_lossy(&inbound.plaintext)
    );
    println!("  Bob's one-time prekey {:?} is now deleted ({} left).", published[0], bob.one_time_prekey_ids().len());

    println!("Mallory replays Alice's first message. It names Bob's session (its id is Alice's");
    println!("ephemeral key), so it goes to that session, never to a new one (SPEC.md §4.5):");
    let replayed = Message::try_from(first.as_slice()).unwrap();
    let Message::PreKey(p) = &replayed else { unreachable!() };
    assert!(b.matches(p));
    println!("  replayed first message -> {}", b.decrypt(&replayed).unwrap_err());

    // Alice and Bob compare safety numbers in person (SPEC.md §3.5).
    let on_alices =
        SafetyNumber::new((&alice.identity_key(), b"alice@example.org"), (&a.remote_identity(), b"bob@example.org"))
            .unwrap();
    let on_bobs =
        SafetyNumber::new((&bob.identity_key(), b"bob@example.org"), (&b.remote_identity(), b"alice@example.org"))
            .unwrap();
    println!("They compare safety numbers. Alice's phone: {on_alices}");
    println!("                               Bob's phone: {on_bobs}");
    println!(
        "  Bob scans Alice's code: {}",
        if on_bobs.matches_scanned(&on_alices.scannable()) { "match" } else { "MISMATCH" }
    );

    let reply = b.encrypt(&mut rng, b"Hey Alice! Good to hear from you.").unwrap().to_bytes();
    show("bob", "alice", &reply, &a.decrypt_bytes(&reply).unwrap());

    println!("Alice sends four messages; the network loses #2 and swaps #3 and #4:");
    let texts: [&[u8]; 4] =
        [b"#1 Are you free Friday?", b"#2 (this one gets lost)", b"#3 I found a great place.", b"#4 It has a garden."];
    let wires: Vec<Vec<u8>> = texts.iter().map(|t| a.encrypt(&mut rng, t).unwrap().to_bytes()).collect();
    for i in [0usize, 3, 2] {
        let pt = b.decrypt_bytes(&wires[i]).unwrap();
        show("alice", "bob", &wires[i], &pt);
    }
    println!("  Bob holds {} skipped key (for the lost #2).", b.skipped_keys());

    println!("Mallory replays #3, and forges #2 from a copy she caught by flipping one bit:");
    println!("  replay   -> {}", b.decrypt_bytes(&wires[2]).unwrap_err());
    let mut tampered = wires[1].clone();
    tampered[45] ^= 1; // a ciphertext byte
    println!("  tampered -> {}", b.decrypt_bytes(&tampered).unwrap_err());

    let r = b.encrypt(&mut rng, b"Friday works. Send me the address!").unwrap().to_bytes();
    show("bob", "alice", &r, &a.decrypt_bytes(&r).unwrap());

    let key = [7u8; 32]; // in a real app: from the platform keystore
    let sealed = b.seal(&mut rng, &key);
    let mut b = Session::unseal(&key, &sealed).unwrap();
    println!("Bob's app restarts: his session was saved sealed ({} bytes) and restored.", sealed.len());
    let late = b.decrypt_bytes(&wires[1]).unwrap();
    show("alice", "bob", &wires[1], &late);
    println!("  (the lost #2 finally arrives, after the restart)");

    println!();
    println!("== Group chat (Sender Keys) ==");
    let mut carol = Account::new(&mut rng);
    let group = GroupId::new(b"friday-dinner").unwrap();
    // Pairwise sessions: Alice-Carol and Bob-Carol (Alice-Bob exists).
    let (mut a_c, mut c_a) = connect(&mut rng, &alice, &mut carol, b"alice|carol");
    let (mut b_c, mut c_b) = connect(&mut rng, &bob, &mut carol, b"bob|carol");
    let mut a_send = GroupSender::new(&mut rng, group.clone(), alice.identity_key());
    let mut b_send = GroupSender::new(&mut rng, group.clone(), bob.identity_key());
    let mut c_send = GroupSender::new(&mut rng, group.clone(), carol.identity_key());

    // Each member sends its distribution over the pairwise sessions. A
    // receiver is always tied to the identity of the session the
    // distribution arrived on, never to a name inside the message.
    let deliver = |to: &mut Session, m: Message| -> (IdentityKey, SenderKeyDistribution) {
        let pt = to.decrypt_bytes(&m.to_bytes()).unwrap();
        (to.remote_identity(), SenderKeyDistribution::try_from(pt.as_slice()).unwrap())
    };
    let receiver = |(from, d): (IdentityKey, SenderKeyDistribution)| GroupReceiver::new(from, &d);
    let d = a_send.distribution();
    let mut out = distribute(&mut rng, &d, [&mut a, &mut a_c]).into_iter().map(Result::unwrap);
    let mut b_from_a = receiver(deliver(&mut b, out.next().unwrap()));
    let mut c_from_a = receiver(deliver(&mut c_a, out.next().unwrap()));
    let d = b_send.distribution();
    let mut out = distribute(&mut rng, &d, [&mut b, &mut b_c]).into_iter().map(Result::unwrap);
    let mut a_from_b = receiver(deliver(&mut a, out.next().unwrap()));
    let mut c_from_b = receiver(deliver(&mut c_b, out.next().unwrap()));
    let d = c_send.distribution();
    let mut out = distribute(&mut rng, &d, [&mut c_a, &mut c_b]).into_iter().map(Result::unwrap);
    let mut a_from_c = receiver(deliver(&mut a_c, out.next().unwrap()));
    let mut b_from_c = receiver(deliver(&mut b_c, out.next().unwrap()));
    assert_eq!(b_from_a.sender(), alice.identity_key());
    println!(
        "Alice, Bob and Carol exchange sender keys over their pairwise sessions ({} bytes each).",
        d.to_bytes().len()
    );

    let g1 = a_send.encrypt(b"Dinner at 8?").unwrap().to_bytes();
    println!("  alice -> group {:>4} bytes, encrypted once   {:?}", g1.len(), "Dinner at 8?");
    println!("    bob   reads {:?}", String::from_utf8_lossy(&b_from_a.decrypt_bytes(&g1).unwrap()));
    println!("    carol reads {:?}", String::from_utf8_lossy(&c_from_a.decrypt_bytes(&g1).unwrap()));
    let c1 = c_send.encrypt(b"Yes! I'll bring dessert.").unwrap().to_bytes();
    let c2 = c_send.encrypt(b"(lost on the way to Bob)").unwrap().to_bytes();
    let c3 = c_send.encrypt(b"Tiramisu or pie?").unwrap().to_bytes();
    let c4 = c_send.encrypt(b"Pie it is.").unwrap().to_bytes();
    println!("  Carol sends four; Bob never gets the second and gets the last two swapped:");
    for m in [&c1, &c4, &c3] {
        println!("    bob   reads {:?}", String::from_utf8_lossy(&b_from_c.decrypt_bytes(m).unwrap()));
    }
    for m in [&c1, &c2, &c3, &c4] {
        println!("    alice reads {:?}", String::from_utf8_lossy(&a_from_c.decrypt_bytes(m).unwrap()));
    }
    let g2 = b_send.encrypt(b"Pie, definitely.").unwrap().to_bytes();
    println!("    alice reads {:?}", String::from_utf8_lossy(&a_from_b.decrypt_bytes(&g2).unwrap()));
    println!("    carol reads {:?}", String::from_utf8_lossy(&c_from_b.decrypt_bytes(&g2).unwrap()));

    println!("Carol leaves the group. Alice and Bob rotate their sender keys and tell only each other.");
    let da = a_send.rotate(&mut rng);
    let m = a.encrypt(&mut rng, &da.to_bytes()).unwrap();
    let (from, d) = deliver(&mut b, m);
    b_from_a.add_distribution(from, &d).unwrap();
    let db = b_send.rotate(&mut rng);
    let m = b.encrypt(&mut rng, &db.to_bytes()).unwrap();
    let (from, d) = deliver(&mut a, m);
    a_from_b.add_distribution(from, &d).unwrap();

    let g3 = a_send.encrypt(b"Just us two now: surprise party for Carol?").unwrap().to_bytes();
    println!("    bob   reads {:?}", String::from_utf8_lossy(&b_from_a.decrypt_bytes(&g3).unwrap()));
    match c_from_a.decrypt_bytes(&g3) {
        Ok(_) => panic!("Carol must not read messages after leaving"),
        Err(e) => println!("    carol cannot read it: {e}"),
    }
    let g4 = b_send.encrypt(b"Great idea.").unwrap().to_bytes();
    println!("    alice reads {:?}", String::from_utf8_lossy(&a_from_b.decrypt_bytes(&g4).unwrap()));
    match c_from_b.decrypt_bytes(&g4) {
        Ok(_) => panic!("Carol must not read messages after leaving"),
        Err(e) => println!("    carol cannot read it: {e}"),
    }
    println!();
    println!(
        "Overheads: session message {MESSAGE_OVERHEAD} bytes, group message {GROUP_MESSAGE_OVERHEAD} bytes over the plaintext."
    );
}
