//! Calls the sottovoce API from a crate that has no `std` at all.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use sottovoce::{Account, GroupId, GroupSender, Message, Session};

/// An allocator that always fails: this crate is only built, never run, and
/// a bare-metal target would bring its own. (Unsafe code lives here, never
/// in sottovoce, which forbids it.)
struct NoAlloc;

unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// A stand-in generator (NOT random): enough to type-check the API.
struct Counter(u8);

impl TryRng for Counter {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from(self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from(self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}

impl TryCryptoRng for Counter {}

/// A full round trip through sessions and groups.
#[unsafe(no_mangle)]
pub extern "C" fn sottovoce_nostd_round_trip() -> usize {
    let mut rng = Counter(0);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let Some(bundle) = bob.prekey_bundle(None) else { return 0 };
    let Ok(mut a) = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"") else { return 0 };
    let Ok(Message::PreKey(m)) = a.encrypt(&mut rng, b"no_std") else { return 0 };
    let Ok(inbound) = Session::respond(&mut bob, &m, b"") else { return 0 };
    let Ok(group) = GroupId::new(b"g") else { return 0 };
    let mut sender = GroupSender::new(&mut rng, group, alice.identity_key());
    let Ok(gm) = sender.encrypt(b"group") else { return 0 };
    inbound.plaintext.len() + gm.to_bytes().len()
}
