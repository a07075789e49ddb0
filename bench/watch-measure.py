#!/usr/bin/env python3
"""Runs `revertbot watch` against the stub Argo CD and measures every cycle.

    bench/watch-measure.py --revertbot BIN --infra DIR --stub URL [--cycles 6]
                           [--interval 5s] [--out PREFIX] [--label NAME]

Starts `BIN --repo DIR --output json watch --interval I` (cwd DIR; the
environment must hold ARGOCD_AUTH_TOKEN), reads its stdout (one JSON report
per cycle, printed when the cycle ends) and at the end of every cycle samples

- CPU: utime+stime of the process from /proc/PID/stat (all threads, also
  exited ones; clock ticks, 10 ms), difference to the previous cycle end;
- memory: VmRSS at the cycle end and VmHWM, the peak RSS *of this cycle*
  (the peak is reset after each cycle by writing 5 to /proc/PID/clear_refs);
- Argo CD calls by endpoint, from the stub's counters (GET URL/_stats),
  difference to the previous cycle end;
- the report: apps, verdicts, actions.

Cycle 1 includes process start-up (config load, client set-up) and is
reported apart; the steady-state figures are over cycles 2..N. Stops the
watch with SIGTERM (it finishes the cycle and exits 0). Writes PREFIX.json
(per-cycle rows + summary) and PREFIX.md (a table), prints the table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime = field 14, stime = field 15
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TCK


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def stub_stats(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/_stats", timeout=10) as r:
        return json.load(r)


def diff(a: dict, b: dict) -> dict:
    keys = set(a) | set(b)
    return {k: b.get(k, 0) - a.get(k, 0) for k in sorted(keys) if b.get(k, 0) - a.get(k, 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revertbot", required=True)
    ap.add_argument("--infra", required=True)
    ap.add_argument("--stub", required=True, help="base URL of bench/watch-argocd-stub.py")
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--interval", default="5s")
    ap.add_argument("--out", default=None, help="write PREFIX.json and PREFIX.md")
    ap.add_argument("--label", default="revertbot watch")
    args = ap.parse_args()

    before = stub_stats(args.stub)
    cmd = [os.path.abspath(args.revertbot), "--repo", os.path.abspath(args.infra), "--output", "json", "watch", "--interval", args.interval]
    stderr_path = os.path.join(tempfile.gettempdir(), f"watch-measure-{os.getpid()}.stderr")
    errf = open(stderr_path, "w")
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=args.infra, stdout=subprocess.PIPE, stderr=errf, text=True, bufsize=1)
    pid = proc.pid
    peak_resettable = True
    rows = []
    prev_cpu, prev_t, prev_calls, prev_bytes = 0.0, t_start, before["by_endpoint"], before["bytes"]
    for n in range(1, args.cycles + 1):
        line = proc.stdout.readline()
        t = time.monotonic()
        if not line:
            print(f"watch exited early (code {proc.wait()}); see {stderr_path}", file=sys.stderr)
            return 1
        cpu = cpu_ms(pid)
        mem = status_kib(pid)
        st = stub_stats(args.stub)
        peak_resettable = reset_peak(pid) and peak_resettable
        report = json.loads(line)
        apps = report.get("apps", [])
        rows.append({
            "cycle": n,
            "ended_s": round(t - t_start, 3),
            "since_previous_s": round(t - prev_t, 3),
            "cpu_ms": round(cpu - prev_cpu, 1),
            "rss_end_kib": mem.get("VmRSS"),
            "peak_rss_kib": mem.get("VmHWM"),
            "threads": mem.get("Threads"),
            "calls": diff(prev_calls, st["by_endpoint"]),
            "bytes_served": sum(diff(prev_bytes, st["bytes"]).values()),
            "apps": len(apps),
            "verdicts": dict(collections.Counter(a.get("verdict") for a in apps)),
            "actions": dict(collections.Counter(a.get("action") for a in apps)),
            "reasons_sample": sorted({a.get("reason", "")[:90] for a in apps})[:3],
            "max_app_check_ms": max((a.get("timings_ms", {}).get("check", 0) for a in apps), default=0),
        })
        prev_cpu, prev_t, prev_calls, prev_bytes = cpu, t, st["by_endpoint"], st["bytes"]
        r = rows[-1]
        print(
            f"cycle {n}: cpu {r['cpu_ms']:.0f} ms, peak rss {r['peak_rss_kib'] / 1024:.1f} MiB, "
            f"calls {sum(r['calls'].values())} {r['calls']}, {r['since_previous_s']:.2f} s since previous",
            file=sys.stderr, flush=True,
        )
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    code = proc.wait()
    errf.close()

    steady = rows[1:] if len(rows) > 1 else rows
    cpu = [r["cpu_ms"] for r in steady]
    peak = [r["peak_rss_kib"] for r in steady]
    calls_total = [sum(r["calls"].values()) for r in steady]
    endpoints = sorted({k for r in steady for k in r["calls"]})
    summary = {
        "label": args.label,
        "command": " ".join(cmd),
        "cycles": len(rows),
        "steady_cycles": len(steady),
        "exit_code": code,
        "trailing_output_bytes": len(rest),
        "peak_reset_per_cycle": peak_resettable,
        "cpu_ms": {"median": statistics.median(cpu), "min": min(cpu), "max": max(cpu), "mean": round(statistics.mean(cpu), 1)},
        "peak_rss_mib": {"median": round(statistics.median(peak) / 1024, 1), "max": round(max(peak) / 1024, 1)},
        "first_cycle": {"cpu_ms": rows[0]["cpu_ms"], "peak_rss_mib": round(rows[0]["peak_rss_kib"] / 1024, 1),
                        "calls": rows[0]["calls"], "seconds": rows[0]["since_previous_s"]},
        "calls_per_cycle": {e: statistics.median(r["calls"].get(e, 0) for r in steady) for e in endpoints},
        "calls_per_cycle_total": statistics.median(calls_total),
        "cycle_seconds": {"median": statistics.median(r["since_previous_s"] for r in steady)},
        "stderr": stderr_path,
    }
    md = [
        f"### {args.label}",
        "",
        f"`{summary['command']}` — {len(rows)} cycles (cycle 1 includes start-up), exit {code}",
        "",
        "| cycle | CPU ms (user+sys) | peak RSS MiB | RSS at end MiB | Argo CD calls | by endpoint | s since previous | verdicts | actions |",
        "|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['cycle']} | {r['cpu_ms']:.0f} | {r['peak_rss_kib'] / 1024:.1f} | {r['rss_end_kib'] / 1024:.1f} | "
            f"{sum(r['calls'].values())} | {', '.join(f'{k}: {v}' for k, v in r['calls'].items())} | "
            f"{r['since_previous_s']:.2f} | {r['verdicts']} | {r['actions']} |"
        )
    md += [
        "",
        f"Steady state (cycles 2..{len(rows)}): CPU median **{summary['cpu_ms']['median']:.0f} ms** "
        f"(min {summary['cpu_ms']['min']:.0f}, max {summary['cpu_ms']['max']:.0f}); peak RSS median "
        f"**{summary['peak_rss_mib']['median']} MiB** (max {summary['peak_rss_mib']['max']}); "
        f"Argo CD calls per cycle **{summary['calls_per_cycle_total']:.0f}** "
        f"({', '.join(f'{k}: {v:.0f}' for k, v in summary['calls_per_cycle'].items())}).",
        "",
    ]
    text = "\n".join(md)
    print(text)
    if args.out:
        with open(args.out + ".json", "w") as f:
            json.dump({"summary": summary, "cycles": rows}, f, indent=2)
            f.write("\n")
        with open(args.out + ".md", "w") as f:
            f.write(text)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
