"""Corrections and regrouping: recluster, name, merge, reject survive a recluster and a re-run."""

from __future__ import annotations

import contextlib
import csv
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

from vidcluster.case import audit
from vidcluster.case import corrections as corrections_module
from vidcluster.case.corrections import Constraints, Rejection, Separation, constraints_from, enforce, resolve
from vidcluster.case.records import KINDS, Correction, Kind, Role
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.commands import workflow
from vidcluster.config import Config
from vidcluster.errors import StoreError, WorkflowError
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


MOVE, APART, TARGET, MOVED = Kind.MOVE, Kind.APART, Role.TARGET, Role.MOVED


@pytest.mark.parametrize(
    "corrections,undone,groups,cannot,alone",
    [
        # a move is a rejection from its identity plus a merge with the target
        ([made(1, MOVE, {MOVED: [3], OTHER: [1, 2], TARGET: [7, 8]})], {}, [[3, 7, 8]], [(3, 1), (3, 2)], []),
        # moved to a new identity: on its own
        ([made(1, MOVE, {MOVED: [3], OTHER: [1, 2]})], {}, [], [(3, 1), (3, 2)], [3]),
        # a newer move takes the track out of an older merge
        (
            [made(1, MERGE, {MEMBER: [1, 2, 3]}), made(2, MOVE, {MOVED: [3], OTHER: [1, 2], TARGET: [9]})],
            {},
            [[1, 2], [3, 9]],
            [(3, 1), (3, 2)],
            [],
        ),
        # apart: every pair across; a newer merge of both sides lifts it
        ([made(1, APART, {MEMBER: [1, 2], Role.APART: [5]})], {}, [], [(1, 5), (2, 5)], []),
        (
            [made(1, APART, {MEMBER: [1, 2], Role.APART: [5]}), made(2, MERGE, {MEMBER: [1, 2, 5]})],
            {},
            [[1, 2, 5]],
            [],
            [],
        ),
        # an apart takes the second identity out of an older merge with the first
        (
            [made(1, MERGE, {MEMBER: [1, 2, 5]}), made(2, APART, {MEMBER: [1, 2], Role.APART: [5]})],
            {},
            [[1, 2]],
            [(1, 5), (2, 5)],
            [],
        ),
        # undone: a rejection made inside an undone merge forgets the tracks the merge had joined ...
        (
            [made(1, MERGE, {MEMBER: [1, 2, 3]}), made(2, REJECT, {REJECTED: [2], OTHER: [1, 3, 4]})],
            {1: 2},
            [],
            [(2, 4)],
            [],
        ),
        # ... but not one made after the merge was undone
        (
            [made(1, MERGE, {MEMBER: [1, 2, 3]}), made(2, REJECT, {REJECTED: [2], OTHER: [1, 3]})],
            {1: 1},
            [],
            [(2, 1), (2, 3)],
            [],
        ),
        # nor one made before the merge (the merge lifted it; undoing the merge brings it back)
        (
            [made(1, REJECT, {REJECTED: [2], OTHER: [1]}), made(2, MERGE, {MEMBER: [1, 2]})],
            {2: 2},
            [],
            [(2, 1)],
            [],
        ),
        # an undone move: a rejection made inside the identity it had formed forgets its tracks
        (
            [made(1, MOVE, {MOVED: [3], OTHER: [1], TARGET: [7]}), made(2, REJECT, {REJECTED: [3], OTHER: [7]})],
            {1: 2},
            [],
            [],
            [],
        ),
    ],
)
def test_constraints_from_moves_aparts_and_undone_merges(corrections, undone, groups, cannot, alone):
    cons = constraints_from(corrections, undone)
    assert sorted(sorted(g) for g in cons.groups) == groups
    assert sorted(cons.cannot_pairs()) == sorted(cannot)
    assert sorted(cons.alone) == alone


def test_enforce_moves_and_separations():
    cons = Constraints(separations=(Separation(1, frozenset({1, 2}), frozenset({3, 4})),), alone=frozenset({5}))
    # 3 shares the first side's label; it joins the rest of the second side (4's label), 5 gets its own
    labels = enforce(cons, np.array([1, 2, 3, 4, 5, 6]), np.array([0, 0, 0, 1, 1, 1]))
    assert labels.tolist() == [0, 0, 1, 1, 2, 1]


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
        (["move", "{out}", "{other}", "--to", "99"], "to: no identity 99"),
        (["move", "{out}", "999999", "--to", "new"], "sighting: no sighting 999999"),
        (["apart", "{out}", "0", "0"], "two different identity ids"),
        (["apart", "{out}", "0", "99"], "b: no identity 99"),
        (["hide", "{out}", "99"], "identity: no identity 99"),
        (["cover", "{out}", "0", "999999"], "face: no face 999999"),
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


# -- undo gives the case as if the correction had never been made ----------------------------
def groups(out: Path) -> list[list[int]]:
    """The identities as sorted lists of their sighting (track) ids."""
    return sorted(sorted(s["track_id"] for s in i["sightings"]) for i in identities(out))


def test_undo_a_merge_after_a_reject_inside_it_gives_the_case_before_the_merge(out):
    """Merge two people, reject one of the first person's sightings from the merged identity, undo
    the merge: both people are back as they were (the first is not split into single sightings)."""
    ids = by_file(out)
    obama, biden = ids["door_20260314-100000.mp4"], ids["hall_20260314-101000.mp4"]
    hall = next(s["track_id"] for s in obama["sightings"] if Path(s["file"]).name.startswith("hall"))
    before = groups(out)
    workflow.merge(out, [obama["id"], biden["id"]])
    workflow.reject(out, obama["id"], f"sighting:{hall}")
    undone = workflow.undo(out, 1)
    assert groups(out) == before, undone.line()
    assert by_file(out)["door_20260314-100000.mp4"]["id"] == obama["id"]
    workflow.recluster(out)  # and it stays so
    assert groups(out) == before


STEPS = {
    "merge": lambda out, o, b, hall, face: workflow.merge(out, [o, b]),
    "move": lambda out, o, b, hall, face: workflow.move(out, hall, b),
    "move-new": lambda out, o, b, hall, face: workflow.move(out, hall, None),
    "apart": lambda out, o, b, hall, face: workflow.apart(out, o, b),
    "hide": lambda out, o, b, hall, face: workflow.hide(out, b),
    "cover": lambda out, o, b, hall, face: workflow.cover(out, o, face),
    "reject": lambda out, o, b, hall, face: workflow.reject(out, o, f"sighting:{hall}"),
    "name": lambda out, o, b, hall, face: workflow.name(out, o, "O"),
}


def _cast(out: Path) -> tuple[int, int, int, int]:
    """(Obama's identity, Biden's, Obama's sighting in the hall, a face of that sighting)."""
    ids = by_file(out)
    obama, biden = ids["door_20260314-100000.mp4"], ids["hall_20260314-101000.mp4"]
    hall = next(s["track_id"] for s in obama["sightings"] if Path(s["file"]).name.startswith("hall"))
    store = Store.open(out / "vidcluster.db")
    face = store.conn.execute("SELECT id FROM faces WHERE track_id = ? LIMIT 1", (hall,)).fetchone()[0]
    store.close()
    return obama["id"], biden["id"], hall, face


@pytest.mark.parametrize("kind", list(STEPS))
def test_undo_the_last_correction_gives_the_case_before_it(out, kind):
    cast = _cast(out)
    before = identities(out)
    STEPS[kind](out, *cast)
    assert identities(out) != before  # the correction changed what the report says
    workflow.undo(out, len(workflow.corrections(out).items))
    assert identities(out) == before


# -- move, apart, hide, cover -------------------------------------------------------------------
LOOSE = ("--algorithm", "chinese-whispers", "--eps", "1.5")  # loose enough to make the two people one


def test_move_a_sighting_to_another_identity_and_to_a_new_one(out, footage):
    obama, biden, hall, _ = _cast(out)
    result = invoke("move", out, hall, "--to", biden)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    assert f"sighting {hall} moved from identity {obama} to identity {biden}" in result.output
    now = by_file(out)
    assert now["hall_20260314-100500.mp4"]["id"] == biden and now["door_20260314-100000.mp4"]["id"] == obama
    invoke("recluster", out)  # kept by a regrouping and a re-run
    analyse([footage], out, Config())
    assert by_file(out)["hall_20260314-100500.mp4"]["id"] == biden
    assert any("moved by hand" in n for n in by_file(out)["hall_20260314-100500.mp4"]["notes"])
    moved = workflow.move(out, hall, None)  # out of Biden's again, into an identity of its own
    assert moved.now not in (obama, biden) and moved.identities == 3
    assert groups(out) == sorted(
        [[hall], *[[t] for t in _tracks_of(out, obama)], *[[t] for t in _tracks_of(out, biden)]]
    )
    invoke("recluster", out, *LOOSE)  # even when everything else would be one identity
    assert [hall] in groups(out)


def _tracks_of(out: Path, identity: int) -> list[int]:
    return [s["track_id"] for i in identities(out) if i["id"] == identity for s in i["sightings"]]


def test_apart_keeps_two_identities_apart_in_later_regroupings(out):
    obama, biden, _, _ = _cast(out)
    before = groups(out)
    assert invoke("recluster", out, *LOOSE).exit_code == 0
    assert len(identities(out)) == 1  # without the apart the loose settings make them one
    invoke("recluster", out, "--algorithm", "graph-average", "--eps", "1.12")
    assert groups(out) == before
    result = invoke("apart", out, obama, biden)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    assert invoke("recluster", out, *LOOSE).exit_code == 0
    assert groups(out) == before and {i["id"] for i in identities(out)} == {obama, biden}
    assert any(
        f"Kept apart by hand from identity {biden}" in n for n in by_file(out)["door_20260314-100000.mp4"]["notes"]
    )
    workflow.merge(out, [obama, biden])  # a newer merge is the user's newer word
    assert len(identities(out)) == 1


def test_hide_leaves_an_identity_out_of_pages_and_exports_and_undo_shows_it(out):
    obama, biden, _, _ = _cast(out)
    n_faces = len((out / "report" / "faces.csv").read_text().splitlines())
    result = invoke("hide", out, biden)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    report = out / "report"
    assert [i["id"] for i in identities(out)] == [obama]
    assert not (report / f"identity-{biden}.html").exists()
    faces = list(csv.DictReader((report / "faces.csv").open()))
    assert len(faces) < n_faces - 1 and {f["identity"] for f in faces} == {str(obama)}
    assert {r["identity"] for r in csv.DictReader((report / "sightings.csv").open())} == {str(obama)}
    index = (report / "index.html").read_text()
    assert 'id="hidden"' in index and "vidcluster undo OUT 1" in index
    assert f'href="identity-{biden}.html"' not in index
    assert all(n["id"] != biden for n in identities(out)[0]["nearest"])  # no link to a page that is not there
    manifest = json.loads((report / "manifest.json").read_text())
    assert [h["id"] for h in manifest["hidden"]] == [biden] and manifest["counts"]["hidden_identities"] == 1
    assert f"hidden identities: {biden} (undo 1)" in invoke("corrections", out).output
    store = Store.open(out / "vidcluster.db")
    assert biden in store.assignment().values()  # still in the store
    store.close()
    again = invoke("hide", out, biden)
    assert again.exit_code == 2 and "already hidden" in again.output
    refused = invoke("merge", out, obama, biden)
    assert refused.exit_code == 2 and "is hidden" in refused.output
    assert invoke("undo", out, 1).exit_code == 0
    assert sorted(i["id"] for i in identities(out)) == sorted([obama, biden])
    assert len((report / "faces.csv").read_text().splitlines()) == n_faces


def test_cover_shows_the_chosen_face_first_and_refuses_another_identitys_face(out):
    obama, biden, _, face = _cast(out)
    biden_face = next(
        r["face_id"] for r in csv.DictReader((out / "report" / "faces.csv").open()) if r["identity"] == str(biden)
    )
    before = (out / "report" / "identities.json").read_text()
    refused = invoke("cover", out, obama, biden_face)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert f"face: face {biden_face} is not a face of identity {obama}" in refused.output
    assert (out / "report" / "identities.json").read_text() == before
    shown = next(i for i in identities(out) if i["id"] == obama)
    assert shown["cover_face"] != face and not shown["cover_chosen"]  # the hall face is not the best one
    result = invoke("cover", out, obama, face)
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    shown = next(i for i in identities(out) if i["id"] == obama)
    assert shown["cover_face"] == face and shown["cover_chosen"]
    card = re.search(
        rf'<div class="card"><a href="identity-{obama}.html">.*?</a>', (out / "report" / "index.html").read_text(), re.S
    )
    assert card and f"face-{face}.jpg" in card.group(0)
    invoke("recluster", out)
    assert next(i for i in identities(out) if i["id"] == obama)["cover_face"] == face


def test_recluster_says_which_settings_are_not_the_defaults(out):
    result = invoke("recluster", out, "--eps", "0.9")
    assert result.exit_code == 0
    first, _ = result.output.splitlines()
    assert first == "using settings that are not the defaults: eps 0.9 (default 1.12, given now)"
    again = invoke("recluster", out).output.splitlines()  # the setting carries over, and says so
    assert again[0] == "using settings that are not the defaults: eps 0.9 (default 1.12, kept from before)"
    assert "eps 0.9" in again[1]
    back = invoke("recluster", out, "--eps", "1.12").output.splitlines()
    assert len(back) == 1 and back[0].startswith("regrouped with graph-average, eps 1.12")


# -- what the web app relies on: every field checked, nothing changed on refusal, JSON values ----
@pytest.mark.parametrize(
    "call,field",
    [
        (lambda out: workflow.merge(out, [0, "x"]), "identities"),
        (lambda out: workflow.merge(out, 3), "identities"),
        (lambda out: workflow.merge(out, [0, True]), "identities"),
        (lambda out: workflow.name(out, None, "x"), "identity"),
        (lambda out: workflow.name(out, 0, 5), "label"),
        (lambda out: workflow.note(out, 0, ""), "note"),
        (lambda out: workflow.reject(out, 0, 17), "ref"),
        (lambda out: workflow.move(out, 1.5, 0), "sighting"),
        (lambda out: workflow.move(out, 999999, 0), "sighting"),
        (lambda out: workflow.move(out, 1, 99), "to"),
        (lambda out: workflow.move(out, 1, "a"), "to"),
        (lambda out: workflow.apart(out, 0, 0), "b"),
        (lambda out: workflow.apart(out, 0, 99), "b"),
        (lambda out: workflow.hide(out, -1), "identity"),
        (lambda out: workflow.cover(out, 0, "face"), "face"),
        (lambda out: workflow.cover(out, 0, 999999), "face"),
        (lambda out: workflow.confirm(out, 0, examiner=3), "examiner"),
        (lambda out: workflow.undo(out, "one"), "n"),
        (lambda out: workflow.recluster(out, eps="wide"), "eps"),
    ],
)
def test_bad_fields_are_refused_by_name_and_change_nothing(out, call, field):
    store_before = (out / "vidcluster.db").read_bytes()
    report_before = (out / "report" / "identities.json").read_text()
    with pytest.raises(WorkflowError) as caught:
        call(out)
    message = str(caught.value)
    assert message.startswith(f"{field}: ") and "\n" not in message, message
    assert (out / "report" / "identities.json").read_text() == report_before
    assert (out / "vidcluster.db").read_bytes() == store_before


def test_outcomes_turn_into_json(out):
    obama, biden, hall, face = _cast(out)
    values = [
        workflow.cover(out, obama, face),
        workflow.move(out, hall, biden),
        workflow.apart(out, obama, biden),
        workflow.hide(out, biden),
        workflow.recluster(out, eps=1.0),
        workflow.corrections(out),
        workflow.undo(out, 4),
    ]
    for value in values:
        data = json.loads(json.dumps(value.as_dict()))
        assert data["command"] == type(value).__name__.lower() and data["message"] == value.lines()
    assert json.loads(json.dumps(values[-1].as_dict()))["correction"]["kind"] == "hide"


def test_commands_work_on_a_case_opened_once(out):
    """A caller that holds OUT (the web app) passes the open case; with report=False OUT/report is left alone."""
    obama, biden, _, _ = _cast(out)
    report = (out / "report" / "identities.json").read_text()
    with workflow.open_case(out, report=False) as case:
        merged = workflow.merge(case, [obama, biden])
        assert merged.report is None and merged.identities == 1
        with pytest.raises(StoreError):  # the lock is held
            workflow.corrections(out)
        workflow.undo(case, merged.correction)
        logged = [(e.action, e.correction) for e in audit.entries(case.store)]
        assert logged[-2:] == [("merge", merged.correction), ("undo", merged.correction)]  # logged all the same
    assert (out / "report" / "identities.json").read_text() == report


def test_the_identity_a_correction_was_made_on_keeps_its_id(out):
    store = Store.open(out / "vidcluster.db")
    start = store.assignment()
    (a, a_tracks), (b, b_tracks) = sorted(
        (i, [t for t, j in start.items() if j == i]) for i in sorted(set(start.values()))
    )
    workflow._keep_id(store, b_tracks, a)  # a is held by another identity: the two swap ids
    assert store.assignment() == {**{t: b for t in a_tracks}, **{t: a for t in b_tracks}}
    workflow._keep_id(store, b_tracks, 9)  # a free id
    assert {store.assignment()[t] for t in b_tracks} == {9}
    workflow._keep_id(store, b_tracks, -1)  # unmatched is nobody's id
    assert {store.assignment()[t] for t in b_tracks} == {9}
    store.close()


def test_a_command_refused_for_the_stored_settings_records_nothing(out):
    workflow.name(out, 0, "first")
    store = Store.open(out / "vidcluster.db")
    run_info = store.get_meta("last_run")
    run_info["parameters"]["identities"]["algorithm"] = "no-such-algorithm"  # settings no version accepts
    store.set_meta("last_run", run_info)
    store.checkpoint()
    store.close()
    before = (out / "vidcluster.db").read_bytes()
    for call in (lambda: workflow.name(out, 0, "second"), lambda: workflow.undo(out, 1)):
        with pytest.raises(WorkflowError):
            call()
    assert (out / "vidcluster.db").read_bytes() == before  # neither the name nor the undo was recorded
    store = Store.open(out / "vidcluster.db")
    assert [c.id for c in store.corrections()] == [1] and not store.undone_corrections()
    store.close()


def test_a_move_of_an_unmatched_sighting_says_so_in_the_report():
    moved = Correction.of(
        Kind.MOVE, [-1, 2], {Role.MOVED: [7], Role.TARGET: [5]}, ref="sighting:7", created_utc="2026-01-01T00:00:00"
    )
    note = resolve([moved], {7: 2, 5: 2}).notes[2][0]
    assert note.startswith("Sighting 7 moved by hand from the unmatched sightings to identity 2"), note
