"""Where a switch's time goes, read from profile_tasks by the benchmark (bench.common.parse_steps):
each timestamp line closes the task opened before it, long tasks are named (a name run twice is
summed), the short ones counted and summed, and nothing is lost."""

from __future__ import annotations

from bench.common import parse_steps
from bench.switch_cost import steps_median

LOG = """
TASK [gcti.webrtc_genesys.mode_switch : Note when the switch started] *******
Tuesday 08 December 2026  02:44:14 +0000 (0:00:01.500)       0:00:01.500 ****
ok: [lab-gateway]

TASK [gcti.webrtc_genesys.mode_switch : Have nginx, Kamailio and Asterisk check the configs themselves] ***
Tuesday 08 December 2026  02:44:14 +0000 (0:00:00.040)       0:00:01.540 ****
ok: [lab-gateway]

RUNNING HANDLER [gcti.webrtc_genesys.nginx : Reload the running nginx, or start it] ***
Tuesday 08 December 2026  02:44:17 +0000 (0:00:03.150)       0:00:04.690 ****
changed: [lab-gateway]

RUNNING HANDLER [gcti.webrtc_genesys.nginx : Reload the running nginx, or start it] ***
Tuesday 08 December 2026  02:44:18 +0000 (0:00:00.600)       0:00:05.290 ****
changed: [lab-gateway]

PLAY RECAP *********************************************************************
lab-gateway : ok=4 changed=2
Tuesday 08 December 2026  02:44:18 +0000 (0:01:02.500)       0:00:05.790 ****
"""


def test_each_task_gets_the_duration_printed_after_it() -> None:
    profile = parse_steps(LOG)
    assert profile["tasks"] == 4
    assert profile["steps"] == {
        "gcti.webrtc_genesys.mode_switch : Have nginx, Kamailio and Asterisk check the configs themselves": 3.15,
        "gcti.webrtc_genesys.nginx : Reload the running nginx, or start it": 63.1,  # 0.6 + 62.5, summed
    }
    assert profile["other_tasks"] == {"count": 1, "seconds": 0.04}


def test_medians_over_runs_keep_each_step() -> None:
    runs = [
        {"profile": {"steps": {"a": 1.0, "b": 3.0}, "other_tasks": {"count": 10, "seconds": 1.0}}},
        {"profile": {"steps": {"a": 2.0}, "other_tasks": {"count": 12, "seconds": 2.0}}},
        {"profile": {"steps": {"a": 9.0, "b": 5.0}, "other_tasks": {"count": 11, "seconds": 3.0}}},
    ]
    summary = steps_median(runs)
    assert summary["steps"] == {"b": 4.0, "a": 2.0}  # longest first
    assert summary["other_tasks"] == {"count": 11, "seconds": 2.0}
    assert summary["runs"] == 3
