"""A change against the previous night's master is refereed by a third master
(:mod:`darkflow.pipeline.referee`): the master that differs from both others is marked."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_previous_master_in_another_readout_mode_is_the_one_marked(tmp_path):
    """Zoo seed 1 ``multi_night-2567080190``: night 1's 30 s darks were taken in another readout
    mode (+27 ADU, a column pattern), no bias in the tree. Night 2's clean 30 s master failed
    against it and was marked before; night 3's 30 s master referees: night 1's is marked."""
    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    params = next(p for p in sample_zoo(60, 1) if p.name == "multi_night-2567080190")
    night = zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv", dtype={"night": str})
    darks = masters[masters["kind"] == "dark"]
    target = night.truth["fault"]["target"]
    faulty = darks[
        (darks["night"] == target["night"]) & (darks["exptime_s"] == target["exptime_s"])
    ]
    assert len(faulty) == 1
    assert faulty["status"].iloc[0] == "low_confidence"
    assert "banding_changed" in faulty["reasons"].iloc[0]
    others = darks.drop(index=faulty.index)
    assert (others["status"] == "verified").all(), others[["night", "exptime_s", "reasons"]]
    # the clean master compared with the faulty one carries the referee's record
    from darkflow.registry import Registry

    with Registry(tmp_path / "work") as reg:
        refereed = [
            reg.get_by_id(i).record.get("referee") for i in others["master_id"] if reg.get_by_id(i)
        ]
    assert any(r and r.get("previous") == faulty["master_id"].iloc[0] for r in refereed)


def test_a_change_seen_against_one_night_only_is_no_verdict(tmp_path):
    """Zoo ``multi_night-115495692`` of ``sample_zoo(60, 3, families=("multi_night",))``, a
    clean night: its 60 s master of 2026-07-14 failed ``dark_scale_change`` (z = -7.7) against
    the previous night's 30 s master scaled x2, and passes against another night's 60 s master:
    it is verified, and the previous master (which agrees with that third one) is not marked."""
    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import sample_zoo, zoo_night

    name = "multi_night-115495692"
    params = next(p for p in sample_zoo(60, 3, families=("multi_night",)) if p.name == name)
    night = zoo_night(tmp_path / "data", params=params)
    assert night.truth["clean"]
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv", dtype={"night": str})
    assert (masters["status"] == "verified").all(), masters[["night", "exptime_s", "reasons"]]
    from darkflow.registry import Registry

    with Registry(tmp_path / "work") as reg:
        records = [reg.get_by_id(i).record for i in masters["master_id"]]
    assert any(r.get("referee") for r in records)


def test_a_master_marked_for_more_than_its_stability_keeps_its_verdict(tmp_path):
    """Scenario ``ccd-three-nights-bias-jump`` (seed 0): the jumping night's bias sets carry the
    set's own note ``bias_level_jump``; the referee does not give them their verdict back (it
    did once, when it looked at the gates' metrics only)."""
    from darkflow.config import Config
    from darkflow.pipeline import run_night
    from darkflow.simulate.zoo import zoo_night, zoo_params

    params = zoo_params("ccd-three-nights-bias-jump", 0)
    zoo_night(tmp_path / "data", params=params)
    run_night(tmp_path / "data", workdir=tmp_path / "work", config=Config())
    masters = pd.read_csv(tmp_path / "work" / "masters.csv", dtype={"night": str})
    jumped = masters[masters["reasons"].fillna("").str.contains("bias_level_jump")]
    assert len(jumped) >= 1
    assert (jumped["status"] == "low_confidence").all(), jumped[["night", "status", "reasons"]]
