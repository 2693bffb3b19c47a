"""The callback benchmark's table and PASS/FAIL verdicts (bench/callback_bench.py measures, this prints)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.flood import FloodResult
from bench.loadgen import RunStats
from bench.proc_stats import Usage

SQLITE_X1 = "endpoint sqlite x1"


@dataclass(frozen=True)
class Run:
    label: str
    stats: RunStats
    usage: Usage  # server process tree, measured run only
    rss: float  # server tree peak RSS (VmHWM) during the measured run, MB
    lifetime_rss: float  # including warm-up (each process's first argon2id verify: 64 MiB)
    idle: float = 0.0  # % of the machine's CPU time (all cores) unused during the run


@dataclass(frozen=True)
class Flooded:
    label: str  # the run it followed
    flood: FloodResult
    after: Run


def _ratio(run: Run, base: Run | None) -> float:
    return run.stats.rps / base.stats.rps if base is not None and base.stats.rps else 0.0


def table(tiny: Run, users50: Run | None, runs: list[Run]) -> list[str]:
    lines = [
        f"{'configuration':<34}{'req/s':>7}{'ratio':>7}{'ratio/50':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'usr ms':>8}{'sys ms':>7}{'CPU ms':>7}{'vcsw':>6}{'RSS MB':>8}{'(life)':>7}{'idle':>6}  statuses",
        f"{'':<34}{'':>7}{'tiny':>7}{'50 users':>9}{'':>8}{'':>8}{'/req':>8}{'/req':>7}{'/req':>7}"
        f"{'/req':>6}{'load':>8}{'peak':>7}{'%':>6}",
    ]
    for run in [tiny, *([users50] if users50 else []), *runs]:
        s = run.stats
        user, system, total, switches = run.usage.per_request(s.requests)
        per50 = f"{_ratio(run, users50):.2f}" if users50 else "-"
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(s.statuses.items()))
        extra = f" errors {s.errors}" if s.errors else ""
        extra += f" (sent {s.expected})" if s.requests != s.expected else ""
        lines.append(
            f"{run.label[:33]:<34}{s.rps:>7.0f}{_ratio(run, tiny):>7.2f}{per50:>9}"
            f"{s.p50:>8.2f}{s.p99:>8.2f}{user:>8.2f}{system:>7.2f}{total:>7.2f}{switches:>6.2f}"
            f"{run.rss:>8.1f}{run.lifetime_rss:>7.1f}{run.idle:>6.1f}  {{{statuses}}}{extra}"
        )
    return lines


def flood_lines(flooded: Flooded) -> list[str]:
    f = flooded.flood
    # best effort: an answer sent just before the server closes with unread body bytes can be lost to the RST
    answers = ", ".join(f"{code}: {count}" for code, count in sorted(f.statuses.items())) or "none"
    pending = f.attempted - f.connections - f.connect_failures
    lines = [
        f"flood after '{flooded.label}': {f.waves} waves, {f.attempted} sockets, {f.connections} connected "
        f"({f.connect_failures} failed, {pending} still connecting at the wave's end), "
        f"{f.full_bodies} full 1 MiB bodies taken, "
        f"{f.bytes_sent / 2**20:.0f} MiB sent in {f.seconds:.1f} s; answers {{{answers}}}, "
        f"{f.closed_by_server} closed by the server",
        f"  server RSS: peak {f.peak_rss_mb:.1f} MB during the flood (highest sample "
        f"{f.sampled_rss_mb:.1f}), {f.rss_after_mb:.1f} MB a second after the sockets closed",
    ]
    if f.aborted:
        lines.append(f"  flood aborted: {f.aborted}")
    return lines


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def verdicts(
    tiny: Run, runs: list[Run], flooded: list[Flooded], tiny_x2: Run | None = None
) -> tuple[list[str], bool]:
    """The issue's targets for the configurations present; returns the lines and whether all passed.

    ``tiny_x2``: bare Tornado on two processes, the machine's own scaling, quoted beside the x2 verdict.
    """
    by_label = {run.label: run for run in runs}
    lines: list[str] = []
    results: list[bool] = []

    def check(text: str, ok: bool) -> None:
        lines.append(f"{_mark(ok)}  {text}")
        results.append(ok)

    x1 = by_label.get(SQLITE_X1)
    if x1 is not None:
        ratio = _ratio(x1, tiny)
        user, system, total, switches = x1.usage.per_request(x1.stats.requests)
        check(f"{SQLITE_X1}: ratio {ratio:.2f} >= 0.35 x tiny bare Tornado (aim 0.5)", ratio >= 0.35)
        check(f"{SQLITE_X1}: p99 {x1.stats.p99:.1f} ms <= 30 ms", x1.stats.p99 <= 30)
        check(f"{SQLITE_X1}: {switches:.2f} voluntary context switches per request <= 2", switches <= 2)
        check(
            f"{SQLITE_X1}: RSS under load {x1.rss:.0f} MB <= 100 MB "
            f"(lifetime peak {x1.lifetime_rss:.0f} MB; CPU {total:.2f} ms/request = {user:.2f} user + "
            f"{system:.2f} system)",
            x1.rss <= 100,
        )
    pg = by_label.get("endpoint postgresql x1")
    if pg is not None:
        check(f"endpoint postgresql x1: ratio {_ratio(pg, tiny):.2f} >= 0.2", _ratio(pg, tiny) >= 0.2)
    x2 = by_label.get("endpoint sqlite x2")
    if x1 is not None and x2 is not None:
        scale = _ratio(x2, x1)
        machine = f" (bare Tornado on this machine: {_ratio(tiny_x2, tiny):.2f} x)" if tiny_x2 else ""
        check(f"endpoint sqlite x2: {scale:.2f} x one process >= 1.6{machine}", scale >= 1.6)
    for f in flooded:
        check(
            f"{f.label} flood: server peak RSS {f.flood.peak_rss_mb:.0f} MB <= 200 MB",
            f.flood.peak_rss_mb <= 200,
        )
        check(
            f"{f.label} after flood: {f.after.stats.rps:.0f} req/s ({_ratio(f.after, tiny):.2f} x tiny), "
            f"RSS under load {f.after.rss:.0f} MB <= 200 MB",
            f.after.rss <= 200 and f.after.stats.clean,
        )
    for run in [*runs, *(f.after for f in flooded)]:
        if not run.stats.clean:
            check(f"{run.label}: every request answered 200 without transport errors", False)
    return lines, all(results)
