#!/usr/bin/env python3
"""Writes each fuzz target's seed corpus, fuzz/seeds/<target>/, from the
device vectors in protocols/vectors (run from the repository root; the output
is committed). A protocol's own target gets its own vectors, `replay` gets
all of them, in the input layout each target reads (see
src/protocol/fuzzing.rs)."""
import binascii
import re
import pathlib
import shutil
import sys

TARGETS = [p.stem for p in pathlib.Path("fuzz/fuzz_targets").glob("*.rs")]
# The registry's order: the `replay` target's byte 0 indexes it.
REGISTRY = re.findall(r"&protocols::(\w+)::", pathlib.Path("src/protocol/registry.rs").read_text())


def unescape(s):
    b = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                b.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            b += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}.get(n, n.encode())
            i += 2
            continue
        b += c.encode()
        i += 1
    return bytes(b)


def main():
    root = pathlib.Path("fuzz/seeds")
    shutil.rmtree(root, ignore_errors=True)
    names = sorted(pathlib.Path("protocols/vectors").glob("*.tsv"))
    for target in sorted(TARGETS):
        out = root / target
        out.mkdir(parents=True)
        for tsv in names:
            if target not in ("replay", tsv.stem):
                continue
            for i, line in enumerate(tsv.read_text().splitlines()[1:]):
                cols = line.split("\t")
                if len(cols) != 5:
                    continue
                data = binascii.unhexlify(cols[3]) if cols[2] == "hex" else unescape(cols[3])
                if target == "replay":
                    # Byte 0: the protocol's place in the registry;
                    # byte 1: the first transport, 128-byte segments.
                    prefix = bytes([REGISTRY.index(tsv.stem), 0xFE])
                elif target == "teltonika":
                    prefix = b""
                else:
                    # Byte 0: the first transport, 128-byte TCP segments.
                    prefix = b"\xfe"
                (out / f"{tsv.stem}-{i}").write_bytes(prefix + data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
