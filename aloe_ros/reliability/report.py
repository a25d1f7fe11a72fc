"""The suite's tables, as plain text (Markdown-compatible, so they paste into docs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aloe_ros.reliability.bad_inputs import CaseResult
from aloe_ros.reliability.checks import BagCheck, CommandCheck
from aloe_ros.reliability.estop import EstopFigures
from aloe_ros.reliability.faults import FaultTrial, summarize

__all__ = ["bad_input_table", "fault_table", "safety_lines", "table", "trial_table"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def fault_table(trials: list[FaultTrial]) -> str:
    rows = []
    for s in summarize(trials):
        node_trials = [t for t in trials if t.node == s.node]
        respawn = node_trials[0].respawn
        back = (f"{'runner' if respawn else 'suite (respawn: false)'}, "
                f"{min(s.back_s):.1f}-{max(s.back_s):.1f} s" if s.back_s else "no")
        lost = "-" if s.worst_lost_s is None else f"{s.worst_lost_s:.3f} s"
        rows.append([s.node, str(s.tried), str(s.survived), lost, back])
    total_tried = sum(int(r[1]) for r in rows)
    total_survived = sum(int(r[2]) for r in rows)
    lost_all = [t.data_lost_s for t in trials if t.data_lost_s is not None]
    rows.append(["all", str(total_tried), str(total_survived),
                 f"{max(lost_all):.3f} s" if lost_all else "-", ""])
    return table(["node killed (-9)", "tried", "survived", "data lost (worst)", "back"], rows)


def trial_table(trials: list[FaultTrial]) -> str:
    rows = [[t.node, str(t.trial), "yes" if t.survived else "NO",
             "yes" if t.others_running else t.others_detail,
             ("yes: " if t.safe else "NO: ") + t.safety_detail,
             "-" if t.data_lost_s is None else f"{t.data_lost_s:.3f}",
             t.bag_detail or "-",
             "-" if t.back_s is None else f"{t.back_s:.1f} s ({t.back_by})"]
            for t in trials]
    return table(["node", "#", "survived", "others ran", "robot safe", "lost s", "bag",
                  "back"], rows)


def bad_input_table(results: list[CaseResult]) -> str:
    rows = [[r.case, r.expected, r.observed, "pass" if r.passed else "FAIL"] for r in results]
    return table(["case", "expected", "observed", "pass"], rows)


def safety_lines(estop: EstopFigures | None, commands: CommandCheck,
                 stale_chunks: int | None, bags: list[BagCheck]) -> list[str]:
    lines = []
    if estop is not None and estop.latencies_ticks:
        ticks = np.asarray(estop.latencies_ticks)
        after = np.asarray(estop.commands_after_edge)
        line = (f"e-stop: {estop.measured} presses; last command after the edge: median "
                f"{np.median(ticks):.2f}, max {ticks.max():.2f} control ticks; within one tick "
                f"{estop.within_one_tick}/{estop.measured}; commands after the edge: max "
                f"{int(after.max())}")
        if estop.reaction_s:
            line += (f"; edge -> ESTOP event: median {1000 * np.median(estop.reaction_s):.1f} "
                     f"ms, max {1000 * max(estop.reaction_s):.1f} ms")
        lines.append(line)
    elif estop is not None:
        lines.append("e-stop: not measured (" + "; ".join(estop.problems[:2]) + ")")
    lines.append(f"robot commands checked: {commands.commands}; non-finite "
                 f"{commands.non_finite}; beyond position limits "
                 f"{commands.beyond_position_limits}; steps above velocity_limit/rate "
                 f"{commands.jumps} (worst {commands.worst_step_ratio:.2f} of the limit)"
                 + (f"; at {', '.join(commands.jump_sites[:3])}" if commands.jump_sites else ""))
    if stale_chunks is not None:
        lines.append(f"stale chunks refused by the executor (never executed): {stale_chunks}")
    readable = sum(b.readable for b in bags)
    repaired = {who: sum(b.repaired_by == who for b in bags) for who in ("logger", "suite")}
    lines.append(f"bags: {readable}/{len(bags)} readable to the last message "
                 f"(repaired by the restarted logger {repaired['logger']}, by the suite "
                 f"{repaired['suite']})")
    return lines
