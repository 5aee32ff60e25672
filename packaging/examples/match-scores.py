#!/usr/bin/env python3
"""match-scores: turns match results into a standings table, for jobmgr.

Three phases: "Reading matches" (size unknown), "Scoring" (known total, one
step per match; malformed matches count as errors with a warning), and
"Saving standings", which merges the points into the standings file (a
JSON object team -> points): teams already in it are updates, new teams
are inserts.

Input: one JSON object per line, e.g.
  {"home": "Ajax", "away": "PSV", "home_goals": 2, "away_goals": 1}
A win is worth 3 points, a draw 1.

Talks to jobmgr through the progress protocol on stdout: lines starting
with "##jobmgr " followed by one JSON object. Standard library only.
"""

import argparse
import json
import os
import sys


def say(**fields):
    """One progress-protocol line."""
    print("##jobmgr " + json.dumps(fields), flush=True)


def read_matches(path):
    say(stage="Reading matches")
    lines = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(line)
                say(inc=1)
    return lines


def score(lines):
    say(stage="Scoring", total=len(lines), unit="matches")
    points = {}
    for number, line in enumerate(lines, start=1):
        try:
            m = json.loads(line)
            home, away = str(m["home"]), str(m["away"])
            hg, ag = int(m["home_goals"]), int(m["away_goals"])
            if home == away or hg < 0 or ag < 0:
                raise ValueError("a team cannot play itself; goals cannot be negative")
        except (ValueError, KeyError, TypeError) as e:
            say(log="match %d skipped: %s" % (number, e), level="warning",
                context={"match": number}, outcome={"errors": 1}, inc=1)
            continue
        points.setdefault(home, 0)
        points.setdefault(away, 0)
        if hg > ag:
            points[home] += 3
        elif ag > hg:
            points[away] += 3
        else:
            points[home] += 1
            points[away] += 1
        say(inc=1)
    return points


def save(points, path):
    say(stage="Saving standings", total=len(points), unit="teams")
    standings = {}
    if os.path.exists(path):
        with open(path, "r", encoding="utf-8") as f:
            standings = json.load(f)
    inserts = updates = 0
    for team in sorted(points):
        if team in standings:
            standings[team] += points[team]
            updates += 1
        else:
            standings[team] = points[team]
            inserts += 1
        say(inc=1)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(standings, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
    say(outcome={"inserts": inserts, "updates": updates})
    print("standings written to %s: %d new teams, %d updated" % (path, inserts, updates), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", required=True, help="JSONL file of match results")
    parser.add_argument("--standings", required=True, help="JSON standings file to update")
    args = parser.parse_args()
    save(score(read_matches(args.matches)), args.standings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
