#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Count occurrences of a byte string in the memory of running processes.

    memscan.py NEEDLE PID [PID...]

Reads every readable mapping of each process through /proc/PID/mem (needs root, or ptrace
rights over it) and prints one line per process: "PID COUNT BYTES_SCANNED SKIPPED". Exit status 0.
Mappings of 64 GiB or more are skipped and counted in SKIPPED: in a sanitizer build they are
AddressSanitizer's shadow (terabytes reserved, metadata only), which no scan could read in time;
an ordinary build has none.
Used by tests/integration/e2e.sh to show that a relay holds no plaintext of an encrypted stream,
with a positive control (a process that does hold it) proving the scan would have found it.
"""
import re
import sys

CHUNK = 1 << 24
HUGE = 1 << 36


def scan(pid, needle):
    found = 0
    scanned = 0
    skipped = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or m.group(3)[0] != "r":
                continue
            if line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start >= HUGE:
                skipped += 1
                continue
            tail = b""
            pos = start
            while pos < end:
                n = min(CHUNK, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except (OSError, ValueError, OverflowError):
                    break  # unbacked or guard pages: nothing to read there
                scanned += len(data)
                buf = tail + data
                found += buf.count(needle)
                # keep the last len(needle)-1 bytes so a match across chunks counts once
                tail = buf[-(len(needle) - 1):] if len(needle) > 1 else b""
                pos += n
    return found, scanned, skipped


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    needle = sys.argv[1].encode()
    for pid in sys.argv[2:]:
        found, scanned, skipped = scan(int(pid), needle)
        print(pid, found, scanned, skipped)


if __name__ == "__main__":
    main()
