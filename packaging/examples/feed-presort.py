#!/usr/bin/env python3
"""feed-presort: sorts a JSONL feed by one key, for jobmgr.

A stream of unknown size: while reading, jobmgr shows "Scanning (1,250
processed)"; once the size is known, "Writing (n / total)". Lines that are
not JSON objects or lack the key are counted as errors and reported as
warnings; everything else is written to the output sorted by the key.

Talks to jobmgr through the progress protocol on stdout: lines starting
with "##jobmgr " followed by one JSON object. Standard library only.
"""

import argparse
import json
import sys


def say(**fields):
    """One progress-protocol line."""
    print("##jobmgr " + json.dumps(fields), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="JSONL file to read")
    parser.add_argument("--output", required=True, help="file to write, sorted")
    parser.add_argument("--key", required=True, help="field to sort by")
    args = parser.parse_args()

    say(stage="Scanning")
    records, errors = [], 0
    with open(args.input, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                value = obj[args.key]
            except (ValueError, KeyError, TypeError) as e:
                errors += 1
                say(log="line %d skipped: %s" % (number, e), level="warning",
                    context={"line": number}, outcome={"errors": 1})
                continue
            # Sort numbers before text, each in natural order.
            sort_key = (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))
            records.append((sort_key, line))
            if len(records) % 100 == 0:
                say(progress=len(records))
    say(progress=len(records))
    print("read %d records, %d skipped" % (len(records), errors), flush=True)

    records.sort(key=lambda r: r[0])
    say(stage="Writing", total=len(records), unit="records")
    with open(args.output, "w", encoding="utf-8") as out:
        for i, (_, line) in enumerate(records, start=1):
            out.write(line + "\n")
            if i % 100 == 0:
                say(progress=i)
    say(progress=len(records), outcome={"sorted": len(records)})
    print("wrote %s" % args.output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
