"""Mutation switches (SPEC §14: "one switch per rule, each breaking that rule in the verifier").

Each module declares the switches for the rules it implements with `switch(...)`, next to
the code, and tests them at the rule's site with `mutated(NAME)`. In a normal run no switch
is active and every `mutated()` is False, so the normal code path reads as the spec does.
`verify.py --mutate` activates exactly one switch per run.

A switch whose rule SPEC.md itself declares impossible to pin by a constructible vector (the
list of SPEC §14) is registered with `unpinnable="<reason citing SPEC>"`: it is run and
reported, but its survival does not fail the run.

A switch whose rule SPEC.md requires and a constructible vector could pin, but which no
vector of this snapshot pins, is registered with `gap="<the vector that would pin it>"`. It
is not part of the default `--mutate` set (so the run stays a check of what the vectors do
pin); it is listed at the end of every mutation run, `--mutate --with-gaps` (or naming it)
runs it, and then its survival fails the run like any other. Remove `gap=` once a vector
pins the rule.
"""

from collections import OrderedDict


class Switch:
    __slots__ = ("name", "section", "rule", "unpinnable", "gap", "module")

    def __init__(self, name, section, rule, unpinnable, gap, module):
        self.name = name
        self.section = section
        self.rule = rule
        self.unpinnable = unpinnable
        self.gap = gap
        self.module = module


REGISTRY = OrderedDict()   # name -> Switch, in declaration order
ACTIVE = set()             # names of the active switches (empty in a normal run)


def switch(name, section, rule, unpinnable=None, module=None, gap=None):
    """Declare a switch; returns its name (use it as a module constant)."""
    if name in REGISTRY:
        raise ValueError(f"mutation switch {name!r} declared twice")
    if unpinnable and gap:
        raise ValueError(f"mutation switch {name!r}: unpinnable and gap exclude each other")
    REGISTRY[name] = Switch(name, section, rule, unpinnable, gap, module)
    return name


def mutated(name):
    """True when the rule `name` is to be broken in this run."""
    if name not in REGISTRY:  # a typo must not silently disable a switch
        raise KeyError(f"unknown mutation switch {name!r}")
    return name in ACTIVE


def activate(names):
    ACTIVE.clear()
    for n in names:
        if n not in REGISTRY:
            raise KeyError(f"unknown mutation switch {n!r}")
        ACTIVE.add(n)
