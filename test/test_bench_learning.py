"""`aloe-ros bench learning` machinery with a tiny budget (the result itself is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aloe_ros.benchmarks.learning_report import (
    load_rounds,
    results_table,
    stage_table,
    success_plot,
)

AloeRos = str(Path(sys.executable).with_name("aloe-ros"))
SMALL_CAMERAS = "[" + ", ".join(
    f"{{name: {name}, source: sim, width: 64, height: 48, fps: 30.0}}"
    for name in ("top", "left_wrist", "right_wrist")) + "]"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_one_short_round_through_the_full_loop_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [AloeRos, "bench", "learning", "--method", "aloe", "--rounds", "1",
               "--episodes-per-round", "1", "--seeds", "1", "--demo-episodes", "2",
               "--bc-steps", "5", "--train-updates", "3", "--out", str(out),
               # CI machines may have under 1 GiB free: small cameras (at the shipped 320x240
               # one episode's bag is ~1 GB), and a disk guard the tiny bags stay above
               "--set", f"cameras={SMALL_CAMERAS}", "--set", "recording.min_free_disk_mb=16"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rounds = {r["round"]: r for r in load_rounds(out)}
    assert set(rounds) == {0, 1}, "one training round and the evaluation round"
    for result in rounds.values():
        assert result["episodes"] == 1
        assert result["successes"] + result["assisted_successes"] + result["failures"] == 1
        assert result["robot_time_s"] > 0
    assert rounds[0]["learner_time_s"] > 0 and rounds[1]["learner_time_s"] == 0
    assert rounds[1]["policy"].endswith("round0/trained"), "round 1 deploys the trained actor"
    assert (out / "aloe" / "seed0" / "round0" / "trained" / "policy.json").is_file()
    # No replay copy per round: each round retrains from its episodes.
    assert not (out / "aloe" / "seed0" / "round0" / "trained" / "replay").exists()
    bags = list((out / "aloe" / "seed0" / "round0" / "bags").iterdir())
    assert bags, "each round records a bag"
    # The ROS loop's round has bags, no episodes/: takeover-weights reads the bags.
    weighed = subprocess.run([AloeRos, "bench", "takeover-weights",
                              str(out / "aloe" / "seed0" / "round0")],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert weighed.returncode == 0, weighed.stdout[-2000:] + weighed.stderr[-2000:]
    assert "episodes scored by aloe" in weighed.stdout and "| policy" in weighed.stdout
    assert (out / "success_per_round.png").stat().st_size > 1000
    assert "| aloe | 1 (eval) |" in (out / "results.md").read_text()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-2000:]
    assert again.stdout.count("done earlier") == 2, "an interrupted or finished run resumes"


def fake_round(method: str, seed: int, index: int, successes: int, trained: bool) -> dict:
    return {"method": method, "seed": seed, "round": index, "policy": "p", "episodes": 10,
            "successes": successes, "assisted_successes": 1, "failures": 9 - successes,
            "takeovers": 3, "robot_time_s": 360.0, "learner_time_s": 12.0 if trained else 0.0,
            "wall_time_s": 400.0, "episode_outcomes": []}


def test_results_table_and_plot_average_over_seeds(tmp_path: Path) -> None:
    for seed, successes in ((0, 2), (1, 4)):
        for index, trained in ((0, True), (1, False)):
            folder = tmp_path / "aloe" / f"seed{seed}" / f"round{index}"
            folder.mkdir(parents=True)
            (folder / "round.json").write_text(json.dumps(
                fake_round("aloe", seed, index, successes + 4 * index, trained)))
    rounds = load_rounds(tmp_path)
    table = results_table(rounds)
    assert "| aloe | 0 | 2 | 30 % (20-40) |" in table
    assert "| aloe | 1 (eval) | 2 | 70 % (60-80) |" in table
    # successes per robot hour: 2 and 4 successes in 0.1 h -> 20 and 40.
    assert "30.0 (20.0-40.0)" in table
    plot = success_plot(rounds, tmp_path / "plot.png", "test")
    assert plot.stat().st_size > 1000


def test_the_table_and_plot_show_the_no_operator_eval_where_rounds_have_it(
        tmp_path: Path) -> None:
    rounds = [fake_round("aloe", seed, 0, 2, True) for seed in (0, 1)]
    rounds[0].update(autonomous_episodes=20, autonomous_successes=5,
                     autonomous_reasons={"phone in box": 5, "timeout": 12, "phone dropped": 3})
    rounds[1].update(autonomous_episodes=20, autonomous_successes=9,
                     autonomous_reasons={"phone in box": 9, "timeout": 11})
    older = fake_round("dagger", 0, 0, 2, True)          # a round.json from before the eval
    table = results_table([*rounds, older])
    assert "| 35 % (25-45) of 20; failed: 23 timeouts, 3 other |" in table
    dagger_row = next(line for line in table.splitlines() if line.startswith("| dagger"))
    assert "| - |" in dagger_row
    rounds[1].pop("autonomous_episodes")
    assert "| 25 % of 20, 1 of 2 seeds; failed: 12 timeouts, 3 other |" in results_table(rounds)
    assert stage_table([*rounds, older]) == "", "rounds from before the stages were kept"
    assert success_plot([*rounds, older], tmp_path / "plot.png", "t").stat().st_size > 1000


def test_stage_table_sums_where_the_failures_stopped_over_seeds() -> None:
    rounds = [fake_round("aloe", seed, index, 2, index == 0) for seed in (0, 1)
              for index in (0, 1)]
    rounds[0]["autonomous_failed_at_stage"] = {"0": 3, "3": 10}
    rounds[1]["autonomous_failed_at_stage"] = {"3": 4}
    rounds[2]["autonomous_failed_at_stage"] = {"1": 2, "3": 5}
    rounds[3]["autonomous_failed_at_stage"] = {}       # round 1 of seed 1: no failure
    rounds.append(fake_round("dagger", 0, 0, 2, True))  # older: no stages recorded
    rounds[0]["episode_outcomes"] = [{"takeovers": 2, "takeover_stages": [0, 2]},
                                     {"takeovers": 0, "takeover_stages": []}]
    rounds[2]["episode_outcomes"] = [{"takeovers": 1, "takeover_stages": [0]}]
    rounds[1]["episode_outcomes"] = [{"takeovers": 1}]   # collected before stages were kept
    table = stage_table(rounds)
    assert ("| aloe | 0 | 2 | stage 0 x2, stage 2 x1 | 2 | 20 | "
            "stage 0 x3, stage 1 x2, stage 3 x15 |") in table
    assert "| aloe | 1 | - | - | 2 | 4 | stage 3 x4 |" in table
    assert "dagger" not in table


def write_run(run: Path, method: str, seeds: tuple[int, ...], **plan: object) -> Path:
    """A finished bench output directory: plan.json and one training + one eval round."""
    full = {"task": "pack_phone", "methods": [method], "rounds": 1, "episodes_per_round": 10,
            "seeds": list(seeds), "out": str(run), "demo_episodes": 20, "bc_steps": 800,
            "train_updates": 1200, "intervention_rate": 1.0, "threads": 1,
            "loop": "inprocess", "batch_size": 64, "advantage_beta": None,
            "noise_scale": None, "demos": "teleop", "overrides": [], "eval_episodes": 0,
            **plan}
    run.mkdir(parents=True, exist_ok=True)
    (run / "plan.json").write_text(json.dumps(full))
    for seed in seeds:
        for index, trained in ((0, True), (1, False)):
            folder = run / method / f"seed{seed}" / f"round{index}"
            folder.mkdir(parents=True)
            (folder / "round.json").write_text(json.dumps(
                fake_round(method, seed, index, 2 + seed + 4 * index, trained)))
    return run


def test_learning_report_merges_runs_of_other_seeds_and_methods(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", "aloe", (0,), advantage_beta=0.1, eval_episodes=20)
    b = write_run(tmp_path / "b", "aloe", (1,), advantage_beta=0.1, threads=2)
    d = write_run(tmp_path / "d", "dagger", (0, 1))      # no advantage: its beta may differ
    out = tmp_path / "report"
    run = subprocess.run([AloeRos, "bench", "learning-report", str(a), str(b), str(d),
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    results = (out / "results.md").read_text()
    assert "| aloe | 0 | 2 | 25 % (20-30) |" in results       # seed 0 from a, seed 1 from b
    assert "| dagger | 1 (eval) | 2 | 65 % (60-70) |" in results
    assert f"- {a}: aloe, seeds [0]: 1 training rounds" in results
    assert "advantage beta 0.1" in results and "time in rounds" in results
    assert (out / "success_per_round.png").stat().st_size > 1000


@pytest.mark.parametrize(("second", "message"), [
    ({"method": "aloe", "seeds": (1,), "advantage_beta": 1.0},
     "aloe ran with other settings in"),
    ({"method": "aloe", "seeds": (0,), "advantage_beta": 0.1}, "aloe seed 0 is in both"),
    ({"method": "aloe", "seeds": (1,), "advantage_beta": 0.1, "train_updates": 400},
     "train_updates: 1200 vs 400"),
])
def test_learning_report_refuses_runs_that_do_not_share_a_table(
        tmp_path: Path, second: dict, message: str) -> None:
    from aloe_ros.benchmarks.learning_report import ReportError, merge_runs

    a = write_run(tmp_path / "a", "aloe", (0,), advantage_beta=0.1)
    settings = dict(second)
    b = write_run(tmp_path / "b", settings.pop("method"), settings.pop("seeds"), **settings)
    with pytest.raises(ReportError, match=message):
        merge_runs([a, b])
    (tmp_path / "c").mkdir()
    with pytest.raises(ReportError, match="no plan.json"):
        merge_runs([a, tmp_path / "c"])


def test_learning_report_labels_set_variants_of_a_method_side_by_side(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", "aloe", (0, 1), advantage_beta=0.1)
    b = write_run(tmp_path / "b", "aloe", (0,), advantage_beta=1.0)
    d = write_run(tmp_path / "d", "dagger", (1,))
    for path in tmp_path.glob("*/*/seed*/round*/round.json"):
        entry = json.loads(path.read_text())
        if not (path.parts[-5] == "a" and entry["seed"] == 1):   # seed 1 of a: no eval
            entry.update(autonomous_episodes=20,
                         autonomous_successes=3 * entry["round"] + entry["seed"])
        path.write_text(json.dumps(entry))
    out = tmp_path / "report"
    run = subprocess.run([AloeRos, "bench", "learning-report", str(a), f"{b}=aloe, beta 1",
                          str(d), "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    results = (out / "results.md").read_text()
    assert "| aloe | 0 | 2 | 25 % (20-30) |" in results
    assert "| aloe, beta 1 | 0 | 1 | 20 % |" in results
    assert "No-operator successes of 20 per seed" in results
    assert "| seed | aloe | aloe, beta 1 | dagger |" in results
    assert "| 0 | 0, 3 | 0, 3 | - |" in results
    assert "| 1 | -, - | - | 1, 4 |" in results


def test_a_label_names_one_method() -> None:
    from aloe_ros.commands.bench_learning_report import parse_runs

    assert parse_runs(["runs/a", "runs/b=aloe, beta 0.3"]) == (
        [Path("runs/a"), Path("runs/b")], {Path("runs/b"): "aloe, beta 0.3"})


def test_a_label_on_a_run_of_two_methods_is_refused(tmp_path: Path) -> None:
    from aloe_ros.benchmarks.learning_report import ReportError, merge_runs

    run = write_run(tmp_path / "a", "aloe", (0,))
    write_run(run, "dagger", (0,))
    with pytest.raises(ReportError, match="a label names one method's rows"):
        merge_runs([run], {run: "x"})
    assert len(merge_runs([run]).rounds) == 4
