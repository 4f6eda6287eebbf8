#!/usr/bin/env python3
"""Check that moving BENCHMARKS.md's raw outputs into scripts/bench_runs/ lost no number.

For every line of BENCHMARKS.md as it was at OLD (default 7f4962c) that contains a digit:
  verbatim   the line appears, whole, in the new BENCHMARKS.md or in a file under scripts/bench_runs/
  together   every number and commit on it appears in one paragraph or table row group of the
             new BENCHMARKS.md, or in one raw file
  scattered  every number appears somewhere, but not together (listed: read them)
  restated   a rounded figure now given exactly (RESTATED below; listed)
  missing    some number appears nowhere (listed, with the numbers)
Run from the repository root: python3 scripts/bench_runs/check_moved.py [OLD]
"""
import glob, re, subprocess, sys

old_rev = sys.argv[1] if len(sys.argv) > 1 else '7f4962c'
old = subprocess.run(['git', 'show', f'{old_rev}:BENCHMARKS.md'], capture_output=True, text=True, check=True).stdout
summary = open('BENCHMARKS.md').read()
raws = {p: open(p).read() for p in sorted(glob.glob('scripts/bench_runs/*/*.md'))}

# Rounded figures the summary now gives in bytes, as the raw runs print them.
RESTATED = {'2.7': '2 707 B', '22.9': '22 911 B'}

TOKEN = re.compile(r'(?<![0-9A-Za-z])(?:[0-9a-f]{7}(?![0-9A-Za-z])|\d+(?:[.,]\d+)*)')
def tokens(text):
    return set(TOKEN.findall(text))

blocks = [b for b in re.split(r'\n\s*\n', summary)] + list(raws.values())
block_tokens = [tokens(b) for b in blocks]
everything = set().union(*block_tokens)
new_lines = set(l.strip() for text in [summary, *raws.values()] for l in text.split('\n'))

counts = {'verbatim': 0, 'together': 0, 'scattered': 0, 'restated': 0, 'missing': 0}
report = {'scattered': [], 'restated': [], 'missing': []}
for n, line in enumerate(old.split('\n'), 1):
    if not re.search(r'\d', line):
        continue
    if line.strip() in new_lines:
        counts['verbatim'] += 1
        continue
    want = tokens(line)
    if any(want <= bt for bt in block_tokens):
        counts['together'] += 1
    elif want <= everything:
        counts['scattered'] += 1
        report['scattered'].append((n, line, ''))
    elif all(RESTATED.get(t, '') in summary and RESTATED.get(t) for t in want - everything):
        counts['restated'] += 1
        report['restated'].append((n, line, ''))
    else:
        counts['missing'] += 1
        report['missing'].append((n, line, ' '.join(sorted(want - everything))))

total = sum(counts.values())
print(f'{total} lines with a digit in BENCHMARKS.md at {old_rev}: ' +
      ', '.join(f'{v} {k}' for k, v in counts.items()))
for kind in ('scattered', 'restated', 'missing'):
    for n, line, extra in report[kind]:
        print(f'{kind} {n}: {line[:140]}' + (f'  [not found: {extra}]' if extra else ''))
sys.exit(1 if counts['missing'] else 0)
