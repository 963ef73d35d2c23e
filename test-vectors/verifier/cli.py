"""The command line of test-vectors/verify.py.

    python3 verify.py [DIR]                     verify every file (schemas included)
    python3 verify.py --mutate [NAME[,NAME]]    one run per mutation switch (SPEC §14)
    python3 verify.py --list-mutations          list the switches
Options: --jobs N (processes for --mutate, default 2); --with-gaps (--mutate also runs the
switches of rules no vector of this snapshot pins yet, mutation.py `gap=`).
"""

import json
import os
import time

import jsonschema

from . import mutation
from .errors import Mismatch
from .vectors import FILES, check_envelope, count_events, iter_tests, run_test

# Unexpected exceptions from a broken (mutated) verifier count as failures, not crashes.
FAILURES = (Mismatch, Exception)


def load(directory):
    docs = {}
    for name in FILES:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            docs[name] = json.load(f)
    return docs


def validate_schema(directory, file_name, doc):
    """README / SPEC §14: a JSON Schema (draft 2020-12) per file."""
    path = os.path.join(directory, "schema", file_name.replace(".json", ".schema.json"))
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}" for e in errors]


def describe(test):
    return f"tc {test.get('tcId')} ({test.get('comment', '')[:90]})"


def plain_run(directory, docs):
    """Verify everything once; print per-file counts; return (ok, per-test timings)."""
    ok = True
    timings = []
    total_tests = total_events = 0
    for name in FILES:
        doc = docs[name]
        problems = validate_schema(directory, name, doc)
        try:
            check_envelope(name, doc)
        except Mismatch as e:
            problems.append(f"envelope: {e}")
        passed = failed = events = 0
        start = time.perf_counter()
        for group_type, test in iter_tests(doc):
            t0 = time.perf_counter()
            try:
                run_test(name, group_type, test)
                passed += 1
                events += count_events(test)
            except FAILURES as e:
                failed += 1
                print(f"  {name} {describe(test)}: FAIL: {type(e).__name__}: {e}")
            timings.append((time.perf_counter() - t0, name, group_type, test))
        elapsed = time.perf_counter() - start
        for p in problems[:20]:
            print(f"  {name}: schema/envelope: {p}")
        if len(problems) > 20:
            print(f"  {name}: ... {len(problems) - 20} more schema errors")
        status = "ok" if not failed and not problems else "FAILED"
        print(f"{name}: {passed} tests passed, {failed} failed, {events} events checked, "
              f"schema {'ok' if not problems else f'{len(problems)} errors'} "
              f"[{status}, {elapsed:.1f}s]")
        ok = ok and not failed and not problems
        total_tests += passed + failed
        total_events += events
    print(f"total: {total_tests} tests, {total_events} events: "
          f"{'all pass' if ok else 'FAILURES'}")
    return ok, timings


# ----- mutation mode -------------------------------------------------------------------------

_ORDER = []   # (file, group type, test), cheapest first; set before the workers fork, so
              # they inherit it and the caches the unmutated run filled


def _run_switch(name):
    mutation.activate([name])
    t0 = time.perf_counter()
    try:
        for file_name, group_type, test in _ORDER:
            try:
                run_test(file_name, group_type, test)
            except FAILURES as e:
                return (name, True, file_name, test.get("tcId"),
                        f"{type(e).__name__}: {str(e)[:160]}", time.perf_counter() - t0)
        return name, False, None, None, None, time.perf_counter() - t0
    finally:
        mutation.activate([])


def mutate_run(names, jobs):
    import multiprocessing
    results = {}
    if jobs > 1 and len(names) > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            for r in pool.imap_unordered(_run_switch, names):
                results[r[0]] = r
                print(f"  {r[0]}: {'killed' if r[1] else 'SURVIVED'} ({r[5]:.1f}s)",
                      flush=True)
    else:
        for n in names:
            r = _run_switch(n)
            results[n] = r
            print(f"  {r[0]}: {'killed' if r[1] else 'SURVIVED'} ({r[5]:.1f}s)", flush=True)
    return [results[n] for n in names]


def print_table(rows):
    reg = mutation.REGISTRY
    w = max(len(r[0]) for r in rows)
    ws = max(len(reg[r[0]].section) for r in rows)
    print(f"\n{'switch':<{w}}  {'SPEC':<{ws}}  {'status':<22}  first failing vector")
    print("-" * (w + ws + 60))
    failing = 0
    for name, killed, file_name, tc, msg, _ in rows:
        sw = reg[name]
        if killed:
            status = "killed"
            where = f"{file_name} tc {tc}"
        elif sw.unpinnable:
            status = "survived (unpinnable)"
            where = "unpinnable: " + sw.unpinnable
        else:
            status = "SURVIVED"
            where = "-"
            failing += 1
        print(f"{name:<{w}}  {sw.section:<{ws}}  {status:<22}  {where}")
    killed = sum(1 for r in rows if r[1])
    print(f"\n{len(rows)} switches: {killed} killed, {len(rows) - killed - failing} "
          f"unpinnable survivors (SPEC §14), {failing} survivors")
    return failing


def print_gaps(ran):
    """The switches of rules no vector of this snapshot pins (mutation.py `gap=`)."""
    gaps = [sw for sw in mutation.REGISTRY.values() if sw.gap and sw.name not in ran]
    if not gaps:
        return
    print(f"\n{len(gaps)} switches not run: rules SPEC requires that no vector of this "
          f"snapshot pins (run them with --with-gaps):")
    for sw in gaps:
        print(f"  {sw.name} ({sw.section}): {sw.rule}\n      would be pinned by: {sw.gap}")


def main(argv):
    args = list(argv[1:])
    jobs = 2
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = int(args[i + 1])
        del args[i:i + 2]
    mutate = None
    with_gaps = "--with-gaps" in args
    if with_gaps:
        args.remove("--with-gaps")
    if "--list-mutations" in args:
        for sw in sorted(mutation.REGISTRY.values(), key=lambda s: _section_key(s.name)):
            extra = f"  [unpinnable: {sw.unpinnable}]" if sw.unpinnable else ""
            extra += f"  [vector gap: {sw.gap}]" if sw.gap else ""
            print(f"{sw.name:<48} {sw.section:<32} {sw.rule}{extra}")
        print(f"{len(mutation.REGISTRY)} switches")
        return 0
    if "--mutate" in args:
        i = args.index("--mutate")
        if i + 1 < len(args) and not args[i + 1].startswith("-") \
                and not os.path.isdir(args[i + 1]):
            mutate = [n for n in args[i + 1].split(",") if n]
            del args[i:i + 2]
        else:
            mutate = sorted((n for n, sw in mutation.REGISTRY.items()
                             if with_gaps or not sw.gap), key=_section_key)
            del args[i]
        unknown = [n for n in mutate if n not in mutation.REGISTRY]
        if unknown:
            print(f"unknown mutation switch(es): {', '.join(unknown)}")
            return 2
    directory = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t_start = time.perf_counter()
    docs = load(directory)
    ok, timings = plain_run(directory, docs)
    print(f"plain verification: {time.perf_counter() - t_start:.1f}s")
    if mutate is None:
        return 0 if ok else 1
    # Mutation mode: only vectors the unmutated verifier passes can kill a switch.
    baseline_failures = set()
    if not ok:
        baseline_failures = _baseline_failures(timings)
        print(f"note: {len(baseline_failures)} tests fail unmutated; they are left out of "
              f"the mutation runs")
    passing = [x for x in timings if (x[1], x[3].get("tcId")) not in baseline_failures]
    # Cheapest first, by a deterministic cost proxy (the test's JSON size), so that a run
    # stops early and its table is the same on every machine.
    passing.sort(key=lambda x: (len(json.dumps(x[3])), x[1], x[3].get("tcId")))
    _ORDER[:] = [(f, g, test) for _, f, g, test in passing]
    t_mut = time.perf_counter()
    print(f"\nmutation mode: {len(mutate)} switches, {jobs} processes")
    rows = mutate_run(mutate, jobs)
    failing = print_table(rows)
    print_gaps(set(mutate))
    print(f"mutation run: {time.perf_counter() - t_mut:.1f}s")
    return 1 if failing or not ok else 0


def _section_key(name):
    """Order switches by the first SPEC section they cite (§5.6 step 5.2 -> (5, 6))."""
    import re
    m = re.search(r"§(\d+)(?:\.(\d+))?", mutation.REGISTRY[name].section)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (99, 0)


def _baseline_failures(timings):
    out = set()
    for _, f, g, test in timings:
        try:
            run_test(f, g, test)
        except FAILURES:
            out.add((f, test.get("tcId")))
    return out
