"""Corrections and regrouping: recluster, name, merge, reject survive a recluster and a re-run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import write_two_camera_footage

from vidcluster.case import corrections as corrections_module
from vidcluster.case.corrections import Constraints, Rejection, constraints_from, enforce, resolve
from vidcluster.case.records import KINDS, Correction, Kind, Role
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.commands import workflow
from vidcluster.config import Config
from vidcluster.errors import WorkflowError
from vidcluster.run.pipeline import analyse

MERGE, REJECT, NAME = Kind.MERGE, Kind.REJECT, Kind.NAME
MEMBER, REJECTED, OTHER = Role.MEMBER, Role.REJECTED, Role.OTHER


def made(cid, kind, tracks, identities=(), **fields):
    return Correction.of(kind, identities, tracks, id=cid, **fields)


# -- pure parts -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "corrections,groups,cannot",
    [
        ([], [], []),
        ([made(1, MERGE, {MEMBER: [1, 2]}), made(2, MERGE, {MEMBER: [2, 3]})], [[1, 2, 3]], []),
        # a newer merge cancels an older rejection between its tracks
        ([made(1, REJECT, {REJECTED: [3], OTHER: [1, 2]}), made(2, MERGE, {MEMBER: [1, 3]})], [[1, 3]], [(3, 2)]),
        # a newer rejection takes the track out of an older merge
        (
            [made(1, MERGE, {MEMBER: [1, 2, 3]}), made(2, REJECT, {REJECTED: [3], OTHER: [1, 2]})],
            [[1, 2]],
            [(3, 1), (3, 2)],
        ),
        ([made(1, NAME, {MEMBER: [1, 2]})], [], []),
    ],
)
def test_constraints_from(corrections, groups, cannot):
    cons = constraints_from(corrections)
    assert sorted(sorted(g) for g in cons.groups) == groups
    assert sorted(cons.cannot_pairs()) == sorted(cannot)


def test_enforce_merges_and_rejections():
    cons = Constraints(groups=(frozenset({1, 2}), frozenset({6, 7})), rejections=(Rejection(1, 3, frozenset({4, 5})),))
    labels = enforce(cons, np.array([1, 2, 3, 4, 5, 6, 7]), np.array([0, 1, 2, 2, 2, -1, -1]))
    assert labels.tolist() == [0, 0, -1, 2, 2, 3, 3]  # an all-unmatched merge group is still one identity


def test_resolve_places_corrections_by_majority():
    corrections = [
        made(0, NAME, {MEMBER: [1, 2]}, [1], label="old", created_utc="t"),
        made(0, NAME, {MEMBER: [1, 2, 3]}, [1], label="new", created_utc="t"),
        made(0, REJECT, {REJECTED: [4], OTHER: [1, 2]}, [5], ref="face:9", created_utc="t"),
    ]
    ann = resolve(corrections, {1: 7, 2: 7, 3: 8, 4: -1})
    assert ann.labels == {7: "new"}
    assert ann.rejected == {7: [4]} and "via face:9" in ann.notes[7][0]


def test_every_kind_is_shown_in_the_report_and_read_back_as_stored():
    assert set(corrections_module._PLACE) == set(KINDS) == set(Kind)
    store = Store.open(":memory:")
    given = [
        made(
            0,
            kind,
            {role: [7 + i, 3] for i, role in enumerate(KINDS[kind].roles)},
            [2, 5],
            label="x",
            ref="face:1",
            created_utc="2026-01-01T00:00:00+00:00",
        )
        for kind in Kind
    ]
    ids = [store.add_correction(c) for c in given]
    rows = store.conn.execute("SELECT DISTINCT kind FROM corrections ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [k.value for k in Kind]  # the same strings as before the types
    assert store.corrections() == [dataclasses.replace(c, id=i) for c, i in zip(given, ids, strict=True)]


# -- on real faces ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Obama passes camera 'door' and later 'hall'; Biden passes 'hall' once."""
    return write_two_camera_footage(
        tmp_path_factory.mktemp("footage"), data_path("hamilton", "obama.jpg"), data_path("hamilton", "biden.jpg")
    )


@pytest.fixture(scope="module")
def analysed(footage, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysed") / "out"
    analyse([footage], out, Config())
    return out


@pytest.fixture
def out(analysed, tmp_path):
    """A private copy of the analysed output folder."""
    dst = tmp_path / "out"
    shutil.copytree(analysed, dst)
    return dst


def identities(out: Path) -> list[dict]:
    return json.loads((out / "report" / "identities.json").read_text())


def by_file(out: Path) -> dict[str, dict]:
    """File name -> the identity holding its sighting."""
    return {Path(s["file"]).name: i for i in identities(out) for s in i["sightings"]}


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "faces, encoder", [({}, "dlib"), ({"encoder": "dlib"}, "dlib"), ({"encoder": "sface"}, "sface")]
)
def test_regrouping_fills_unrecorded_thresholds_from_the_cases_encoder(faces, encoder):
    """A stored run that lacks a threshold (an older store) gets it from the profile of the encoder
    that made the case's vectors, not from the current default encoder; recorded ones are kept."""
    from vidcluster.catalog import profile_of

    store = Store.open(":memory:")
    store.set_meta(
        "last_run", {"parameters": {"faces": faces, "identities": {"eps": 0.45, "algorithm": "graph-average"}}}
    )
    cfg = workflow.stored_config(store)
    profile = profile_of(encoder)
    assert cfg.identities.eps == 0.45
    assert (cfg.identities.eps_mean, cfg.identities.eps_average, cfg.identities.min_spread) == (
        profile.eps_mean,
        profile.eps_average,
        profile.min_spread,
    )


def test_ids_stable_across_recluster(out):
    before = {i["id"]: sorted(s["track_id"] for s in i["sightings"]) for i in identities(out)}
    result = invoke("recluster", out)
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and "2 identities (2 kept their id)" in result.output
    after = {i["id"]: sorted(s["track_id"] for s in i["sightings"]) for i in identities(out)}
    assert after == before


def test_recluster_records_parameters(out):
    result = invoke("recluster", out, "--eps", "0.3", "--algorithm", "chinese-whispers", "--min-samples", "3")
    assert result.exit_code == 0, result.output
    store = Store.open(out / "vidcluster.db")
    params = store.get_meta("last_run")["parameters"]["identities"]
    store.close()
    assert (params["eps"], params["algorithm"], params["min_samples"]) == (0.3, "chinese-whispers", 3)
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert manifest["parameters"]["identities"]["eps"] == 0.3
    assert manifest["regrouped"][-1]["identities"]["algorithm"] == "chinese-whispers"
    # no flags: the last parameters are kept
    invoke("recluster", out)
    store = Store.open(out / "vidcluster.db")
    assert store.get_meta("last_run")["parameters"]["identities"]["eps"] == 0.3
    store.close()


def test_name_survives_recluster_and_rerun(out, footage):
    biden = by_file(out)["hall_20260314-101000.mp4"]["id"]
    result = invoke("name", out, biden, "<b>Joe</b> B.")
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    assert by_file(out)["hall_20260314-101000.mp4"]["label"] == "<b>Joe</b> B."
    invoke("recluster", out, "--eps", "0.45")
    assert by_file(out)["hall_20260314-101000.mp4"]["label"] == "<b>Joe</b> B."
    summary = analyse([footage], out, Config())
    assert summary.n_analysed == 0
    assert by_file(out)["hall_20260314-101000.mp4"]["label"] == "<b>Joe</b> B."
    assert by_file(out)["door_20260314-100000.mp4"]["label"] is None
    html = (out / "report" / "index.html").read_text()
    assert "&lt;b&gt;Joe&lt;/b&gt; B." in html and "<b>Joe</b>" not in html
    page = (out / "report" / f"identity-{biden}.html").read_text()
    assert "&lt;b&gt;Joe&lt;/b&gt; B." in page
    # a new name replaces the old one
    invoke("name", out, biden, "Joe")
    assert by_file(out)["hall_20260314-101000.mp4"]["label"] == "Joe"


def test_merge_survives_recluster_and_rerun(out, footage):
    ids = by_file(out)
    obama, biden = ids["door_20260314-100000.mp4"]["id"], ids["hall_20260314-101000.mp4"]["id"]
    result = invoke("merge", out, biden, obama)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    (merged,) = identities(out)
    assert merged["id"] == biden and merged["n_sightings"] == 3  # the first id given is kept
    assert any("Merged by hand" in n for n in merged["notes"])
    for args in (
        ["recluster", out],
        ["recluster", out, "--eps", "0.3"],
        ["recluster", out, "--algorithm", "chinese-whispers"],
    ):
        assert invoke(*args).exit_code == 0
        assert [(i["id"], i["n_sightings"]) for i in identities(out)] == [(biden, 3)]
    analyse([footage], out, Config())
    assert [(i["id"], i["n_sightings"]) for i in identities(out)] == [(biden, 3)]
    assert "Corrected by hand" in (out / "report" / f"identity-{biden}.html").read_text()


def test_reject_survives_recluster_and_rerun(out, footage):
    ids = by_file(out)
    obama = ids["door_20260314-100000.mp4"]
    hall = next(s for s in obama["sightings"] if Path(s["file"]).name.startswith("hall"))
    result = invoke("reject", out, obama["id"], f"sighting:{hall['track_id']}")
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output

    def check():
        now = by_file(out)
        assert now["door_20260314-100000.mp4"]["id"] == obama["id"]  # the identity keeps its id
        assert now.get("hall_20260314-100500.mp4", {}).get("id") != obama["id"]
        assert hall["track_id"] in now["door_20260314-100000.mp4"]["rejected_sightings"]

    check()
    invoke("recluster", out, "--eps", "0.7")  # loose enough that it would come back
    check()
    analyse([footage], out, Config())
    check()
    page = (out / "report" / f"identity-{obama['id']}.html").read_text()
    assert "rejected by hand" in page


def test_reject_by_face(out):
    obama = by_file(out)["door_20260314-100000.mp4"]
    hall = next(s for s in obama["sightings"] if Path(s["file"]).name.startswith("hall"))
    store = Store.open(out / "vidcluster.db")
    face = store.conn.execute("SELECT id FROM faces WHERE track_id = ? LIMIT 1", (hall["track_id"],)).fetchone()[0]
    store.close()
    result = invoke("reject", out, obama["id"], f"face:{face}")
    assert result.exit_code == 0, result.output
    assert f"face {face} (sighting {hall['track_id']})" in result.output
    assert by_file(out)["hall_20260314-100500.mp4"]["id"] != obama["id"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["name", "{missing}", "0", "x"], "no vidcluster store here"),
        (["recluster", "{missing}"], "no vidcluster store here"),
        (["name", "{out}", "99", "x"], "no identity 99"),
        (["name", "{out}", "0", "   "], "label is empty"),
        (["merge", "{out}", "0", "99"], "no identity 99"),
        (["merge", "{out}", "0", "0"], "at least two different"),
        (["reject", "{out}", "99", "sighting:1"], "no identity 99"),
        (["reject", "{out}", "0", "track:1"], "not a face or sighting reference"),
        (["reject", "{out}", "0", "face:abc"], "not a face or sighting reference"),
        (["reject", "{out}", "0", "face:999999"], "no face 999999"),
        (["reject", "{out}", "0", "sighting:999999"], "no sighting 999999"),
        (["reject", "{out}", "0", "sighting:{other}"], "is not in identity 0"),
        (["recluster", "{out}", "--eps", "5"], "identities.eps"),
        (["undo", "{out}", "99"], "no correction 99"),
        (["note", "{out}", "99", "x"], "no identity 99"),
        (["note", "{out}", "0", " \n "], "note is empty"),
        (["confirm", "{out}", "99"], "no identity 99"),
        (["corrections", "{missing}"], "no vidcluster store here"),
    ],
)
def test_cli_errors_are_one_line_exit_2(out, tmp_path, args, message):
    other = next(s["track_id"] for i in identities(out) if i["id"] != 0 for s in i["sightings"])
    args = [a.format(out=out, missing=tmp_path / "nowhere", other=other) for a in args]
    before = (out / "report" / "identities.json").read_text()
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("vidcluster: error: ")
    assert message in result.output
    assert (out / "report" / "identities.json").read_text() == before
    assert not (tmp_path / "nowhere").exists()  # an unknown OUT is not created


def test_reject_the_only_sighting_is_refused(out):
    biden = by_file(out)["hall_20260314-101000.mp4"]
    with pytest.raises(WorkflowError, match="only sighting"):
        workflow.reject(out, biden["id"], f"sighting:{biden['sightings'][0]['track_id']}")


# -- corrections you can see and undo; the examiner's notes and confirmation ------------------
def test_undo_a_wrong_merge_takes_it_apart(out):
    ids = by_file(out)
    obama, biden = ids["door_20260314-100000.mp4"], ids["hall_20260314-101000.mp4"]
    before = sorted(sorted(s["track_id"] for s in i["sightings"]) for i in identities(out))
    assert invoke("merge", out, biden["id"], obama["id"]).exit_code == 0
    assert len(identities(out)) == 1
    listed = invoke("corrections", out)
    assert listed.exit_code == 0
    (line,) = listed.output.splitlines()
    assert re.fullmatch(
        rf" +1  \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC  merge {biden['id']} {obama['id']} \(3 sightings\)", line
    ), line
    result = invoke("undo", out, 1)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    assert "2 identities" in result.output
    assert sorted(sorted(s["track_id"] for s in i["sightings"]) for i in identities(out)) == before
    assert all(not i["notes"] for i in identities(out))
    assert "[undone " in invoke("corrections", out).output
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert manifest["corrections"] == [] and [c["kind"] for c in manifest["corrections_undone"]] == ["merge"]
    again = invoke("undo", out, 1)
    assert again.exit_code == 2 and "already undone" in again.output
    invoke("recluster", out)  # an undone merge stays undone
    assert len(identities(out)) == 2


def test_undo_a_reject_brings_the_sighting_back(out):
    obama = by_file(out)["door_20260314-100000.mp4"]
    hall = next(s for s in obama["sightings"] if Path(s["file"]).name.startswith("hall"))
    assert invoke("reject", out, obama["id"], f"sighting:{hall['track_id']}").exit_code == 0
    assert by_file(out).get("hall_20260314-100500.mp4", {}).get("id") != obama["id"]
    assert invoke("undo", out, 1).exit_code == 0
    now = by_file(out)
    assert (
        now["hall_20260314-100500.mp4"]["id"] == obama["id"]
        and not now["hall_20260314-100500.mp4"]["rejected_sightings"]
    )


def test_note_and_confirm_show_on_cards_and_pages(out):
    biden = by_file(out)["hall_20260314-101000.mp4"]["id"]
    assert invoke("note", out, biden, "seen at the <till>").exit_code == 0
    result = invoke("confirm", out, biden, "--examiner", "J. Doe")
    assert result.exit_code == 0 and "confirmed by J. Doe" in result.output, result.output
    ident = by_file(out)["hall_20260314-101000.mp4"]
    assert [n["text"] for n in ident["examiner_notes"]] == ["seen at the <till>"]
    assert ident["confirmed"]["by"] == "J. Doe" and ident["confirmed"]["created_utc"]
    index = (out / "report" / "index.html").read_text()
    page = (out / "report" / f"identity-{biden}.html").read_text()
    for html in (index, page):
        assert "confirmed by examiner (J. Doe)" in html and "seen at the &lt;till&gt;" in html
    assert "Examiner\u2019s notes" in page
    obama = by_file(out)["door_20260314-100000.mp4"]
    assert obama["confirmed"] is None and obama["examiner_notes"] == []
    lines = invoke("corrections", out).output.splitlines()
    assert lines[0].endswith(f'note {biden} "seen at the <till>" (1 sighting)')
    assert lines[1].endswith(f"confirm {biden} by J. Doe (1 sighting)")
    assert invoke("undo", out, 2).exit_code == 0  # take the confirmation back; the note stays
    ident = by_file(out)["hall_20260314-101000.mp4"]
    assert ident["confirmed"] is None and len(ident["examiner_notes"]) == 1
    assert "confirmed by examiner" not in (out / "report" / "index.html").read_text()


def test_case_and_examiner_reach_every_page_and_persist(out, footage):
    result = invoke("run", footage, "--out", out, "--case", "2026/117", "--examiner", "J. Doe", "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert (manifest["case"], manifest["examiner"]) == ("2026/117", "J. Doe")
    biden = by_file(out)["hall_20260314-101000.mp4"]["id"]
    assert "confirmed by J. Doe" in invoke("confirm", out, biden).output  # the run's examiner by default
    for page in (out / "report").glob("*.html"):
        assert "Case 2026/117 \u00b7 examiner J. Doe" in page.read_text(), page.name
    assert not (out / ".vidcluster.lock").exists()  # the lock is gone once the command is done


def test_help_shows_whole_command_descriptions():
    result = invoke("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    flat = " ".join(commands.split())
    assert "Group the faces in OUT again (no decoding) and rewrite the report." in flat
    assert "Revert correction NUMBER (see `corrections`), regroup and rewrite the report." in flat
    for name in ("run", "recluster", "name", "merge", "reject", "corrections", "undo", "note", "confirm", "search"):
        assert re.search(rf"^  {name} ", commands, re.M), name
    assert 'e.g. vidcluster name OUT 3 "man in red jacket"' in flat


@pytest.mark.parametrize("fail", [False, True])
def test_lock_file_exists_only_while_held(tmp_path, fail):
    from vidcluster.case.outdir import LOCK_NAME, run_lock
    from vidcluster.errors import StoreError

    out = tmp_path / "out"
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext(), run_lock(out):
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(StoreError, match="another vidcluster run"), run_lock(out):
            pass
        assert (out / LOCK_NAME).is_file()  # the refused attempt leaves the holder's lock alone
        if fail:
            raise RuntimeError("the command failed")
    assert not (out / LOCK_NAME).exists()
    with run_lock(out):  # free again
        pass


def test_the_case_encoder_comes_from_the_stored_vectors():
    """Regrouping, the report and search read the encoder from the descriptors the store holds."""
    import numpy as np

    from vidcluster.case.encoder import case_encoder
    from vidcluster.case.store import FileResult, Store, TrackRecord
    from vidcluster.errors import StoreError
    from vidcluster.types import Footage

    store = Store.open(":memory:")
    assert case_encoder(store) == "dlib"  # nothing stored, no run named one: an old store's dlib
    store.set_meta("last_run", {"parameters": {"faces": {"encoder": "dlib"}}})
    for n, space in enumerate(["sface-2021dec", "sface-2021dec"]):
        fid = store.upsert_footage(Footage(f"/{n}.mp4", "cam", "video", 1, str(n) * 64, None, "none", 1.0))
        track = TrackRecord(0.0, 0.0, np.array([0]), True, np.ones(128, np.float32), b"")
        store.save_file_result(
            fid,
            "k",
            FileResult(
                np.zeros(1),
                np.zeros((1, 4), int),
                np.ones(1),
                np.ones(1),
                np.ones((1, 128)),
                [b""],
                [track],
                encoder=space,
            ),
        )
    assert case_encoder(store) == "sface"  # the vectors say SFace, whatever the last run's settings said
    store.conn.execute("UPDATE faces SET encoder = 'dlib-resnet-v1' WHERE id = 1")
    with pytest.raises(StoreError, match="damaged"):
        case_encoder(store)
