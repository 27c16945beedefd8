"""Search the analysed footage by a probe photo: ranking, the page, the CSV, errors."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import dlib_config, face_crop, face_frames

from benchmarks.videos import write_video
from vidcluster.catalog import DEFAULT_ENCODER, profile_of
from vidcluster.cli import main
from vidcluster.commands.search import search
from vidcluster.config import Config, load_config
from vidcluster.errors import SearchError
from vidcluster.run.pipeline import analyse


def rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- synthetic footage (fast) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Biden passes camera 'door', then Obama passes camera '<i>hall' (a hostile name)."""
    root = tmp_path_factory.mktemp("footage")
    (root / "door").mkdir()
    (root / "<i>hall").mkdir()
    biden = face_crop(data_path("hamilton", "biden.jpg"))
    obama = face_crop(data_path("hamilton", "obama.jpg"))
    write_video(root / "door" / "door_20260314-100000.mp4", face_frames(biden, 30), fps=10)
    write_video(root / "<i>hall" / "hall_20260314-100500.mp4", face_frames(obama, 30), fps=10)
    return root


@pytest.fixture(scope="module")
def out(tmp_path_factory, footage):
    """The footage analysed with dlib's encoder: the distances below are dlib's."""
    out = tmp_path_factory.mktemp("out") / "out"
    analyse([footage], out, dlib_config())
    return out


@pytest.fixture(scope="module")
def default_out(tmp_path_factory, footage):
    """The same footage analysed with every default (the default encoder, its profile)."""
    out = tmp_path_factory.mktemp("default-out") / "out"
    analyse([footage], out, Config())
    return out


def test_search_ranks_the_right_person_first(out):
    result = search(out, data_path("hamilton", "obama2.jpg"), top=5)
    assert [h.camera for h in result.hits] == ["<i>hall", "door"]
    best, other = result.hits
    assert best.match and best.distance < 0.5 and not other.match and other.distance > 0.6
    assert best.time_at(best.best_offset_s).isoformat().startswith("2026-03-14T10:05:0")
    assert best.identity >= 0
    table = rows(result.folder)
    assert [r["camera"] for r in table] == ["<i>hall", "door"] and table[0]["match"] == "1"
    assert table[0]["best_time_utc"].startswith("2026-03-14T10:05:0")
    html = (result.folder / "index.html").read_text()
    assert "2026-03-14 10:05:0" in html and "(UTC)" in html  # the camera's clock (UTC here) with its offset


def test_search_with_the_default_encoder_ranks_the_right_person_first(default_out):
    """The probe is encoded by the case's encoder (SFace here) and judged by its profile's limit."""
    limit = profile_of(DEFAULT_ENCODER).search_max_distance
    result = search(default_out, data_path("hamilton", "obama2.jpg"), top=5)
    assert result.max_distance == limit
    assert [h.camera for h in result.hits] == ["<i>hall", "door"]
    best, other = result.hits
    assert best.match and best.distance < limit < other.distance and not other.match
    assert best.time_at(best.best_offset_s).isoformat().startswith("2026-03-14T10:05:0")
    assert best.identity >= 0
    biden = search(default_out, data_path("hamilton", "biden.jpg"), top=5)
    assert [h.camera for h in biden.hits] == ["door", "<i>hall"] and biden.hits[0].match


def test_search_page_is_self_contained_and_escaped(out):
    result = search(out, data_path("hamilton", "obama2.jpg"))
    html = (result.folder / "index.html").read_text()
    assert "Content-Security-Policy" in html and "<script" not in html
    assert "&lt;i&gt;hall" in html and "<i>hall" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
        image = cv2.imread(str(result.folder / src))
        assert image is not None and image.size > 0, src
    assert 'href="../report/identity-' in html
    # the identity link points at a page that exists
    link = re.search(r'href="\.\./report/(identity-\d+\.html)"', html).group(1)
    assert (out / "report" / link).is_file()


def test_top_and_max_distance(out):
    result = search(out, data_path("hamilton", "obama2.jpg"), top=1, max_distance=0.2)
    assert len(result.hits) == 1 and not result.matches
    assert "0 of 2 sightings within 0.2; nearest" in result.lines()[-1]


def test_cli_search_prints_the_matches(out):
    result = CliRunner().invoke(main, ["search", str(out), "--face", str(data_path("hamilton", "obama2.jpg"))])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].lstrip().startswith("1. ") and "<i>hall" in lines[0]
    assert lines[-1].startswith("1 of 2 sightings within 0.6")


def _blank(path: Path) -> Path:
    cv2.imwrite(str(path), np.full((200, 200, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize(
    "make_photo,out_name,message",
    [
        (lambda d: _blank(d / "blank.png"), None, "no face found"),
        (lambda d: d / "missing.jpg", None, "no such photo"),
        (lambda d: (d / "junk.jpg").write_bytes(b"not an image") and d / "junk.jpg", None, "not a readable image"),
        (lambda d: data_path("hamilton", "obama.jpg"), "nowhere", "no vidcluster store here"),
    ],
)
def test_search_errors(out, tmp_path, make_photo, out_name, message):
    photo = make_photo(tmp_path)
    target = tmp_path / out_name if out_name else out
    with pytest.raises(SearchError, match=message):
        search(target, photo)
    result = CliRunner().invoke(main, ["search", str(target), "--face", str(photo)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output


# -- the hamilton clip: Obama in the audience at the end --------------------------------------
@pytest.fixture(scope="module")
def hamilton(tmp_path_factory):
    """short_hamilton_clip.mp4 analysed with the CNN detector: HOG misses Obama's three-quarter face."""
    clip = data_path("hamilton", "short_hamilton_clip.mp4")
    out = tmp_path_factory.mktemp("hamilton") / "out"
    cfg = load_config(None, {"faces": {"detector": "cnn", "encoder": "dlib", "upsample": 0}})  # dlib's distances below
    analyse([clip], out, cfg)
    return out


def test_hamilton_obama_found_at_the_end(hamilton):
    """Obama sits in the audience in the last shot (7.5 s to the end), turned three-quarters:
    his sighting ranks first for every frontal probe photo, at the right time, clearly ahead of
    the people on stage, though at ~0.65 it is beyond dlib's 0.6 same-person threshold."""
    best_tracks = set()
    for probe in ("obama.jpg", "obama-480p.jpg", "obama_small.jpg"):
        result = search(hamilton, data_path("hamilton", probe))
        best, second = result.hits[:2]
        assert best.start_offset_s >= 7.4 and best.end_offset_s <= 9.2
        assert best.distance < 0.7 and second.distance > best.distance + 0.03
        best_tracks.add(best.track_id)
    assert len(best_tracks) == 1


@pytest.fixture(scope="module")
def hamilton_default(tmp_path_factory):
    """short_hamilton_clip.mp4 analysed with every default (auto: YuNet, the default encoder SFace)."""
    out = tmp_path_factory.mktemp("hamilton-default") / "out"
    analyse([data_path("hamilton", "short_hamilton_clip.mp4")], out, Config())
    return out


def test_hamilton_obama_found_at_the_end_with_the_default_encoder(hamilton_default):
    """The same three-quarter face in the audience ranks first for every Obama probe under the
    defaults, inside the default encoder's search limit and well ahead of the rest (measured:
    0.88-0.93 against 1.16-1.23 for the next sighting)."""
    limit = profile_of(DEFAULT_ENCODER).search_max_distance
    best_tracks = set()
    for probe in ("obama.jpg", "obama-480p.jpg", "obama_small.jpg", "obama2.jpg"):
        best, second = search(hamilton_default, data_path("hamilton", probe)).hits[:2]
        assert best.start_offset_s >= 7.4 and best.end_offset_s <= 9.2
        assert best.match and best.distance < limit and second.distance > best.distance + 0.15
        best_tracks.add(best.track_id)
    assert len(best_tracks) == 1


def test_hamilton_others_do_not_match(hamilton):
    biden = search(hamilton, data_path("hamilton", "biden.jpg"))
    assert not biden.matches and biden.hits[0].distance > 0.7
    lin = search(hamilton, data_path("hamilton", "lin-manuel-miranda.png"))
    assert lin.hits[0].match and lin.hits[0].distance < 0.5
    assert lin.hits[0].start_offset_s < 4 and lin.hits[0].end_offset_s >= 6.9  # on stage, 3 s to 7 s
    obama = search(hamilton, data_path("hamilton", "obama.jpg")).hits[0]
    assert lin.hits[0].track_id != obama.track_id


def test_photo_sightings_show_as_photos(tmp_path):
    """A folder of stills: a hit is 'a photo', not '0.0 s (sighting 0.0 – 0.0 s)'."""
    import shutil

    (tmp_path / "photos").mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(data_path("hamilton", name), tmp_path / "photos" / name)
    out = tmp_path / "out"
    analyse([tmp_path / "photos"], out, Config())
    result = search(out, data_path("hamilton", "obama2.jpg"))
    assert result.hits[0].photo and result.hits[0].file.endswith("obama.jpg")
    html = (result.folder / "index.html").read_text()
    assert html.count("a photo</td>") == len(result.hits) and "0.0 s (sighting" not in html
    assert "max-height: 165px" in html  # a portrait photo does not make its row tall


def test_a_hidden_identity_is_still_searched_and_said_to_be_hidden(tmp_path, footage):
    """Hiding a bystander takes him out of the report, not out of a search; the results say which
    hit is hidden, and show paths as the report does (from the INPUT's folder), not the machine's."""
    from vidcluster.commands import workflow

    out = tmp_path / "out"
    analyse([footage], out, dlib_config())
    before = search(out, data_path("hamilton", "biden.jpg"), top=5).hits[0]
    assert before.camera == "door" and not before.hidden
    workflow.hide(out, before.identity)
    hit = search(out, data_path("hamilton", "biden.jpg"), top=5).hits[0]
    assert (hit.track_id, hit.hidden, hit.match) == (before.track_id, True, True)
    assert not Path(hit.file).is_absolute() and hit.file.startswith(footage.name + "/door/")
    table = rows(out / "search-biden")
    assert table[0]["hidden"] == "1" and table[0]["file"] == hit.file
    assert str(tmp_path) not in (out / "search-biden" / "index.html").read_text()
    assert "hidden from the report" in (out / "search-biden" / "index.html").read_text()


def test_a_damaged_store_is_one_line_not_a_traceback(out, tmp_path):
    damaged = tmp_path / "out"
    shutil.copytree(out, damaged)
    conn = sqlite3.connect(damaged / "vidcluster.db")
    conn.execute("UPDATE footage SET camera = CAST(X'ff' AS TEXT)")  # a camera name that is not UTF-8
    conn.commit()
    conn.close()
    result = CliRunner().invoke(main, ["search", str(damaged), "--face", str(data_path("hamilton", "obama.jpg"))])
    assert result.exit_code == 5, result.output
    assert result.output.count("\n") == 1 and "the store is damaged" in result.output
