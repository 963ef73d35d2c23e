#!/usr/bin/env python3
"""Independent verifier for the sottovoce test vectors (SPEC.md revision 3).

Written from SPEC.md and test-vectors/README.md alone. The implementation is the package
`verifier/` next to this file, one module per part of SPEC.md; this script is its entry
point.

    python3 verify.py [DIR]                    verify every file against SPEC.md and its
                                               JSON Schema; exit 1 on any mismatch
    python3 verify.py --mutate [NAME[,NAME]]   run the verification once per mutation
                                               switch (each breaks one SPEC rule); exit 1
                                               if a switch lets every vector pass
    python3 verify.py --list-mutations         list the switches

Needs the packages in requirements.txt (cryptography, jsonschema, kyber-py).
"""

import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from verifier.cli import main
except ImportError as e:  # pragma: no cover - environment problem, not a vector problem
    sys.stderr.write(f"verify.py: {e}; install the packages of requirements.txt\n")
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main(sys.argv))
