"""Per-op self time of one training step, exprflow beside PyTorch, from the Chrome traces that
`bench_compositions --profile PREFIX` and `pytorch_compositions.py --profile PREFIX` write.

  python3 src/core/bench/profile_table.py EXPRFLOW.json PYTORCH.json [--top N]

Self time is an op's duration less that of the ops it called (nesting per thread), so the column sums to the
profiled step. Ops are listed by the larger of the two self times.
"""
import argparse
import collections
import json


def self_times(path):
    """{op name: (self milliseconds, calls)} over the trace's complete ("X") events."""
    with open(path) as f:
        events = [e for e in json.load(f) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append((float(e["ts"]), float(e["dur"]), e["name"]))
    totals = collections.defaultdict(lambda: [0.0, 0])
    for spans in by_thread.values():
        # Parents first: earlier start, and the longer of two spans starting together.
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []  # [end, name, child time]
        def close(span):
            end, name, child = span
            totals[name][0] += (span_duration[id(span)] - child) / 1e3
            totals[name][1] += 1
            if stack:
                stack[-1][2] += span_duration[id(span)]
        span_duration = {}
        for ts, dur, name in spans:
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            span = [ts + dur, name, 0.0]
            span_duration[id(span)] = dur
            stack.append(span)
        while stack:
            close(stack.pop())
    return {name: (ms, calls) for name, (ms, calls) in totals.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("exprflow")
    p.add_argument("pytorch")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    ours, theirs = self_times(a.exprflow), self_times(a.pytorch)
    names = sorted(set(ours) | set(theirs), key=lambda n: -max(ours.get(n, (0, 0))[0], theirs.get(n, (0, 0))[0]))
    total_ours, total_theirs = sum(v[0] for v in ours.values()), sum(v[0] for v in theirs.values())
    print(f"{'op (self time)':<60} {'exprflow ms':>11} {'calls':>6} {'PyTorch ms':>11} {'calls':>6}")
    for name in names[:a.top]:
        o, t = ours.get(name, (0.0, 0)), theirs.get(name, (0.0, 0))
        print(f"{name[:60]:<60} {o[0]:11.2f} {o[1]:6d} {t[0]:11.2f} {t[1]:6d}")
    rest_o = total_ours - sum(ours.get(n, (0, 0))[0] for n in names[:a.top])
    rest_t = total_theirs - sum(theirs.get(n, (0, 0))[0] for n in names[:a.top])
    print(f"{'(other ops)':<60} {rest_o:11.2f} {'':6} {rest_t:11.2f}")
    print(f"{'step total':<60} {total_ours:11.2f} {'':6} {total_theirs:11.2f}")


if __name__ == "__main__":
    main()
