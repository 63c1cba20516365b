#!/usr/bin/env python3
"""Markdown tables for bench/RESULTS.md section 8 from run-all.sh's JSON lines (stdin)."""
import json
import sys

rows = []
for line in sys.stdin:
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass  # a run still in progress leaves half a line


def ms(us):
    return f"{us / 1000:.1f}"


def has(r, *flags):
    return all(f in r['cmd'] for f in flags)


def variant(r):
    v = ['lazy new links' if has(r, '--new-links lazy') else 'as specified']
    if has(r, '--first-guard'):
        v.append('8f6834a guard')
    elif has(r, '--prune-guard'):
        v.append('guard')
    if has(r, '--graft-on-stall'):
        v.append('stall')
    if has(r, 'per-chain'):
        v.append('per-chain')
    return ' + '.join(v)


def open_note(r):
    # Relays whose last first copy through a repair was the stream's last message: still losing
    # when the stream ended, left out of the percentiles.
    return f" (+{r['resume_open']} still at the end)" if r['resume_open'] else ""


def base(r):
    return r['kill_pct'] == 0 and not r['kill_tree']


print("### Without failures\n")
print("| N | latency | K | trees | degree mean | hops mean / p50 / p99 / max | latency p50 / p99 / max ms "
      "| dup msg 0 | dup msgs 0-9 | dup steady | converged after | eager degree mean / max "
      "| eager links | IHAVE /relay/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if not base(r) or '--degree' in r['cmd']:
        continue
    trees = 'per-chain' if has(r, 'per-chain') else 'shared'
    if has(r, '--first-guard'):
        trees += ', 8f6834a guard'
    elif has(r, '--prune-guard'):
        trees += ', guard'
    for i, p in enumerate(r['pub']):
        lead = (f"| {r['relays']} | {r['latency']} | {r['publishers']} | {trees} | {r['degree_mean']:.2f} "
                if i == 0 else "| | | | | ")
        tail = (f"| {r['dup_msg0']:.2f} | {r['dup_first10']:.2f} | {r['dup_steady']:.4f} "
                f"| {r['converged_msgs']} | {r['eager_mean']:.2f} / {r['eager_max']} | {r['eager_links']} "
                f"| {r['ihave_per_relay_s']:.0f} |" if i == 0 else "| | | | | | | |")
        print(lead + f"| pub {i}: {p['hops_mean']:.1f} / {p['hops_p50']} / {p['hops_p99']} / {p['hops_max']} "
              f"| {ms(p['lat_p50_us'])} / {ms(p['lat_p99_us'])} / {ms(p['lat_max_us'])} " + tail)

print("\n### Kills\n")
print("| N | latency | K | kill | variant | killed | connected after kill / end | relays that missed "
      "| pairs repaired | first push p50 / p99 / max ms | losses over p50 / p99 / max ms "
      "| all repaired by ms | repair delay p50 / p99 / max ms | shortcuts | dup after kill | never |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if base(r) or '--degree' in r['cmd']:
        continue
    kill = 'tree node' if r['kill_tree'] else f"{r['kill_pct']:g} %"
    nl = variant(r)
    print(f"| {r['relays']} | {r['latency']} | {r['publishers']} | {kill} | {nl} | {r['killed']} "
          f"| {'yes' if r['connected_after_kill'] else 'NO'} / {'yes' if r['connected_end'] else 'NO'} "
          f"| {r['missed_relays']} | {r['repaired_pairs']} "
          f"| {ms(r['first_push_p50_us'])} / {ms(r['first_push_p99_us'])} / {ms(r['first_push_max_us'])} "
          f"| {ms(r['resume_p50_us'])} / {ms(r['resume_p99_us'])} / {ms(r['resume_max_us'])}"
          f"{open_note(r)} "
          f"| {ms(r['repaired_by_us'])} | {ms(r['rep_p50_us'])} / {ms(r['rep_p99_us'])} / {ms(r['rep_max_us'])} "
          f"| {r['shortcuts']} of {r['iwant_answers_first']} | {r['dup_after_kill']:.4f} | {r['never']} |")

sweep = [r for r in rows if '--degree' in r['cmd']]
if sweep:
    print("\n### Degree sweep (N = 1,000, 10 % killed at 500 ms, seeds 1-3: mean, and min..max where it varies)\n")
    print("| D / DMAX | latency | variant | degree mean | hops mean | hops max | latency p99 ms | dup msg 0 "
          "| converged after | IHAVE /relay/s | connected after kill | relays that missed "
          "| losses over p99 ms | all repaired by ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = []
    for r in sweep:
        k = (r['degree'], r['latency'], variant(r))
        if k not in keys:
            keys.append(k)
    for d, lat, nl in keys:
        g = [r for r in sweep if r['degree'] == d and r['latency'] == lat
             and variant(r) == nl]

        def agg(f, fmt="{:.1f}"):
            v = [f(r) for r in g]
            m = sum(v) / len(v)
            s = fmt.format(m)
            if min(v) != max(v):
                s += " (" + fmt.format(min(v)) + ".." + fmt.format(max(v)) + ")"
            return s
        conn = sum(1 for r in g if r['connected_after_kill'])
        print(f"| {d} / {g[0]['max_degree']} | {lat} | {nl} | {agg(lambda r: r['degree_mean'], '{:.2f}')} "
              f"| {agg(lambda r: r['pub'][0]['hops_mean'])} | {agg(lambda r: r['pub'][0]['hops_max'], '{:.0f}')} "
              f"| {agg(lambda r: r['pub'][0]['lat_p99_us'] / 1000)} | {agg(lambda r: r['dup_msg0'], '{:.2f}')} "
              f"| {agg(lambda r: r['converged_msgs'], '{:.0f}')} | {agg(lambda r: r['ihave_per_relay_s'], '{:.0f}')} "
              f"| {conn} of {len(g)} | {agg(lambda r: r['missed_relays'], '{:.0f}')} "
              f"| {agg(lambda r: r['resume_p99_us'] / 1000, '{:.0f}')} | {agg(lambda r: r['repaired_by_us'] / 1000, '{:.0f}')} |")
