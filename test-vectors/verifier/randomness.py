"""SPEC §8: every random value is drawn from a caller-supplied generator, in a fixed order.

The vectors list the drawn byte strings in order ("randomness"); this generator replays them
and fails (as a vector mismatch) on any other number or length of draws."""

from .errors import Mismatch


class ReplayRng:
    def __init__(self, hex_strings):
        self.items = [bytes.fromhex(h) for h in (hex_strings or [])]
        self.next = 0

    def draw(self, n):
        if self.next >= len(self.items):
            raise Mismatch(f"operation drew {n} random bytes beyond the {len(self.items)} listed")
        item = self.items[self.next]
        if len(item) != n:
            raise Mismatch(f"draw #{self.next} asked for {n} bytes, the vector lists {len(item)}")
        self.next += 1
        return item

    def finish(self):
        if self.next != len(self.items):
            raise Mismatch(f"only {self.next} of {len(self.items)} listed random values were drawn")
