"""Project store: images, classes, shapes, settings — what the page and the CLI see."""

from __future__ import annotations

import math
import os
import random
import re
import threading
from pathlib import Path

import pytest

from backend.errors import InvalidArgument, NotFound
from backend.store import Project


@pytest.fixture
def project(tmp_path: Path):
    p = Project.open(tmp_path)
    yield p
    p.close()


@pytest.fixture
def image_id(project: Project) -> int:
    project.sync_images([("one.jpg", 10, 1.0), ("two.jpg", 10, 1.0)])
    return project.images()[0]["id"]


def _reference_natural(relpath: str) -> list:
    # Independent of the store's padded-string key: compare number runs as ints.
    return [(0, int(t), "") if t.isdigit() else (1, 0, t)
            for t in re.split(r"([0-9]+)", relpath.casefold()) if t]


# -- opening ---------------------------------------------------------------------------------

def test_open_creates_database_inside_the_folder(tmp_path: Path) -> None:
    with Project.open(str(tmp_path)) as p:
        assert p.folder == tmp_path.resolve()
        assert p.db_path == tmp_path.resolve() / ".fieldmark" / "project.sqlite"
        assert p.db_path.is_file()
    assert p.closed


def test_open_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        Project.open(tmp_path / "nope")


def test_closed_project_refuses_work_with_a_message(tmp_path: Path) -> None:
    p = Project.open(tmp_path)
    p.close()
    p.close()  # idempotent
    with pytest.raises(Exception, match="is closed"):
        p.images()


# -- images ----------------------------------------------------------------------------------

def test_sync_adds_marks_missing_keeps_shapes_and_restores(project: Project) -> None:
    r = project.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 2, 2.0)])
    assert r == {"added": 2, "missing": 0, "changed": 0, "total": 2}
    a = next(i for i in project.images() if i["relpath"] == "a.jpg")
    shape = project.add_shape(a["id"], "point", [1, 2])

    r = project.sync_images([("b.jpg", 2, 2.0)])
    assert r["added"] == 0 and r["missing"] == 1 and r["total"] == 2
    a = project.image(a["id"])
    assert a["error"] == "missing" and a["shape_count"] == 1
    assert project.shape(shape["id"])["geometry"] == [1, 2]

    r = project.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 2, 2.0)])
    assert r["missing"] == 0
    assert project.image(a["id"])["error"] is None


def test_image_count_matches_the_listed_images(project: Project) -> None:
    assert project.image_count() == 0
    project.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 2, 2.0), ("c/d.png", 3, 3.0)])
    project.sync_images([("a.jpg", 1, 1.0)])  # b and c/d go missing: still listed, still counted
    assert project.image_count() == len(project.images()) == 3


def test_sync_resets_probe_of_a_changed_file(project: Project, image_id: int) -> None:
    project.update_image_info(image_id, width=640, height=480, pages=1, error="cannot decode")
    relpath = project.image(image_id)["relpath"]
    r = project.sync_images([(relpath, 999, 5.0), ("two.jpg", 10, 1.0)])
    assert r["changed"] == 1
    img = project.image(image_id)
    assert (img["width"], img["height"], img["pages"], img["error"]) == (None, None, None, None)


def test_sync_handles_ten_thousand_entries(project: Project) -> None:
    entries = [(f"d{i % 7}/img{i}.jpg", i, float(i)) for i in range(10_000)]
    assert project.sync_images(entries)["added"] == 10_000
    again = project.sync_images(entries)
    assert again == {"added": 0, "missing": 0, "changed": 0, "total": 10_000}
    listed = [i["relpath"] for i in project.images()]
    assert listed == sorted((e[0] for e in entries), key=_reference_natural)


@pytest.mark.parametrize("relpath", ["/abs.jpg", "../up.jpg", "a/../b.jpg", "a//b.jpg",
                                     "a\\b.jpg", "", "C:/x.jpg", "./a.jpg"])
def test_sync_refuses_paths_outside_the_project(project: Project, relpath: str) -> None:
    with pytest.raises(InvalidArgument, match="relpath"):
        project.sync_images([(relpath, 1, 1.0)])
    assert project.images() == []


def test_images_natural_order_against_reference(project: Project) -> None:
    names = ["img10.jpg", "img2.jpg", "IMG1.jpg", "img02b.jpg", "a/img3.jpg", "b1/x.jpg",
             "b10/x.jpg", "b2/x.jpg", "zz.jpg", "Ärger.jpg", "img100000000000000000000001.jpg"]
    project.sync_images([(n, 1, 1.0) for n in names])
    got = [i["relpath"] for i in project.images()]
    assert got == sorted(names, key=lambda n: (_reference_natural(n), n))
    assert got.index("img2.jpg") < got.index("img10.jpg")


def test_natural_order_of_random_names_matches_reference(project: Project) -> None:
    rng = random.Random(7)
    alphabet = "ab-_. Ä0123456789"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) + ".jpg"
             for _ in range(2000)}
    names |= {"99999999999999999999.jpg", "100000000000000000000.jpg", "007.jpg", "7.jpg"}
    project.sync_images([(n, 1, 1.0) for n in names])
    got = [i["relpath"] for i in project.images()]
    assert got == sorted(names, key=lambda n: (_reference_natural(n), n))


def test_images_filters_and_counts(project: Project) -> None:
    project.sync_images([("Öl/Käfer 1.jpg", 1, 1.0), ("Öl/käfer 2.jpg", 1, 1.0),
                         ("other.jpg", 1, 1.0)])
    ids = {i["name"]: i["id"] for i in project.images()}
    assert [i["name"] for i in project.images(query="KÄFER")] == ["Käfer 1.jpg", "käfer 2.jpg"]
    assert [i["name"] for i in project.images(query="öl/k")] == ["Käfer 1.jpg", "käfer 2.jpg"]
    assert project.images(query="%") == []  # not a LIKE pattern
    project.set_image_status(ids["other.jpg"], "done")
    assert [i["name"] for i in project.images(status="done")] == ["other.jpg"]
    assert [i["name"] for i in project.images(query="käfer", status="done")] == []

    k = ids["Käfer 1.jpg"]
    project.add_shape(k, "box", [0, 0, 1, 1])
    project.add_shape(k, "box", [0, 0, 2, 2], status="pending", score=0.5, source="owl@1")
    project.add_shape(k, "box", [0, 0, 3, 3], status="rejected")
    assert project.image(k)["shape_count"] == 2
    assert project.images(query="Käfer 1")[0]["shape_count"] == 2
    with pytest.raises(InvalidArgument, match="status"):
        project.images(status="finished")


def test_image_record_and_path(project: Project, tmp_path: Path) -> None:
    project.sync_images([("sub dir/ä 1.jpg", 3, 1.0)])
    img = project.images()[0]
    assert img == {"id": img["id"], "name": "ä 1.jpg", "relpath": "sub dir/ä 1.jpg",
                   "status": "new", "error": None, "width": None, "height": None,
                   "pages": None, "shape_count": 0}
    assert project.image(img["id"]) == img
    assert project.image_path(img["id"]) == tmp_path.resolve() / "sub dir" / "ä 1.jpg"
    with pytest.raises(NotFound, match="no image with id 999"):
        project.image(999)
    with pytest.raises(InvalidArgument, match="image_id"):
        project.image("1")  # type: ignore[arg-type]


def test_update_image_info_sets_only_what_is_given(project: Project, image_id: int) -> None:
    project.update_image_info(image_id, width=640, height=480)
    project.update_image_info(image_id, pages=3, error="bad file")
    img = project.update_image_info(image_id, error=None)
    assert (img["width"], img["height"], img["pages"], img["error"]) == (640, 480, 3, None)
    assert not project.undo_state()["can_undo"]  # probing is not an edit
    with pytest.raises(InvalidArgument, match="width"):
        project.update_image_info(image_id, width=-1)
    with pytest.raises(InvalidArgument, match="pages"):
        project.update_image_info(image_id, pages=1.5)


def test_set_image_status_validates(project: Project, image_id: int) -> None:
    assert project.set_image_status(image_id, "skipped")["status"] == "skipped"
    with pytest.raises(InvalidArgument, match="status.*'later'"):
        project.set_image_status(image_id, "later")


def test_scan_walks_real_files_like_a_reference_walk(tmp_path: Path) -> None:
    files = ["a.jpg", "b.PNG", "c.txt", ".hidden.jpg", "._a.jpg", ".hid/x.jpg", "sub/img2.jpg",
             "sub/img10.JPEG", "sub/deep/er/z.tif", "Nachtfalter/ä 2.jpg", "noext"]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x" * len(f))
    outside = tmp_path.parent / (tmp_path.name + "_outside")
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"x")
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    exts = (".jpg", "jpeg", ".png", ".TIF")
    expected = set()
    for root, dirs, names in os.walk(tmp_path):  # reference: os.walk, pruning hidden dirs
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for n in names:
            if not n.startswith(".") and n.lower().endswith((".jpg", ".jpeg", ".png", ".tif")):
                expected.add(Path(root, n).relative_to(tmp_path).as_posix())
    with Project.open(tmp_path) as p:
        r = p.scan(exts)
        assert r["added"] == len(expected) and r["unreadable"] == []
        got = {i["relpath"] for i in p.images()}
        assert got == expected
        assert "sub/img2.jpg" in got and "Nachtfalter/ä 2.jpg" in got
        for img in p.images():
            assert p.image_path(img["id"]).is_file()
        (tmp_path / "a.jpg").unlink()
        assert p.scan(exts)["missing"] == 1
    with Project.open(tmp_path) as p, pytest.raises(InvalidArgument, match="extensions"):
        p.scan([])


# -- classes ---------------------------------------------------------------------------------

def test_classes_order_keys_and_distinct_colors(project: Project) -> None:
    made = [project.add_class(f"c{i}") for i in range(11)]
    listed = project.classes()
    assert [c["id"] for c in listed] == [c["id"] for c in made]
    assert [c["key"] for c in listed] == [str(i) for i in range(1, 10)] + [None, None]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c["color"]) for c in listed)
    assert len({c["color"] for c in listed}) == 11
    assert project.add_class("given", "#A0B0C0")["color"] == "#a0b0c0"


def test_class_names_are_stripped_unique_case_sensitive_and_unicode(project: Project) -> None:
    moth = project.add_class("  Moth ")
    assert moth["name"] == "Moth" and moth["count"] == 0 and moth["key"] == "1"
    assert project.add_class("moth")["name"] == "moth"
    with pytest.raises(InvalidArgument, match="'Moth' is already used"):
        project.add_class("Moth")
    bug = project.add_class("Käfer 🐞")
    assert project.rename_class(bug["id"], "蛾")["name"] == "蛾"
    assert project.rename_class(bug["id"], "蛾")["name"] == "蛾"  # own name is fine
    with pytest.raises(InvalidArgument, match="already used"):
        project.rename_class(bug["id"], "moth")
    assert [c["name"] for c in project.classes()] == ["Moth", "moth", "蛾"]


@pytest.mark.parametrize("name,pattern", [("", "empty"), ("   ", "empty"), ("x" * 201, "200"),
                                          ("a\nb", "control"), (5, "text"), (None, "text")])
def test_class_name_validation(project: Project, name: object, pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=f"name.*{pattern}|{pattern}.*name"):
        project.add_class(name)  # type: ignore[arg-type]
    assert project.classes() == []


@pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "#gggggg", 0xFFFFFF])
def test_class_color_validation(project: Project, color: object) -> None:
    with pytest.raises(InvalidArgument, match="color"):
        project.add_class("a", color)  # type: ignore[arg-type]
    c = project.add_class("b")
    with pytest.raises(InvalidArgument, match="color"):
        project.recolor_class(c["id"], color)  # type: ignore[arg-type]
    assert project.recolor_class(c["id"], "#00FF00")["color"] == "#00ff00"


def test_delete_class_keeps_shapes_unassigned(project: Project, image_id: int) -> None:
    c = project.add_class("moth")
    s = project.add_shape(image_id, "box", [0, 0, 1, 1], c["id"])
    deleted = project.delete_class(c["id"])
    assert deleted["id"] == c["id"] and deleted["count"] == 1
    assert project.classes() == []
    assert project.shape(s["id"])["class_id"] is None
    with pytest.raises(NotFound, match="class"):
        project.delete_class(c["id"])


def test_merge_moves_shapes_and_deletes_source(project: Project, image_id: int) -> None:
    a, b = project.add_class("a"), project.add_class("b")
    s1 = project.add_shape(image_id, "box", [0, 0, 1, 1], a["id"])
    project.add_shape(image_id, "box", [0, 0, 1, 1], b["id"])
    project.add_shape(image_id, "box", [0, 0, 1, 1], a["id"], status="rejected")
    target = project.merge_classes(a["id"], b["id"])
    assert target["id"] == b["id"] and target["count"] == 2 and target["key"] == "1"
    assert [c["id"] for c in project.classes()] == [b["id"]]
    assert project.shape(s1["id"])["class_id"] == b["id"]
    with pytest.raises(InvalidArgument, match="differ"):
        project.merge_classes(b["id"], b["id"])
    with pytest.raises(NotFound):
        project.merge_classes(a["id"], b["id"])


# -- shapes ----------------------------------------------------------------------------------

def test_shape_records_and_normalized_box(project: Project, image_id: int) -> None:
    c = project.add_class("seedling")
    s = project.add_shape(image_id, "box", [30, 40, 10.5, 20], c["id"], score=0.25,
                          source="owlv2-base@1.0.0", prompt="seedling", status="pending")
    assert s["geometry"] == [10.5, 20, 30, 40]
    assert {k: s[k] for k in ("image_id", "class_id", "kind", "score", "source", "prompt",
                              "status")} == {"image_id": image_id, "class_id": c["id"],
                                             "kind": "box", "score": 0.25,
                                             "source": "owlv2-base@1.0.0", "prompt": "seedling",
                                             "status": "pending"}
    assert s["created"] == s["updated"] and project.shape(s["id"]) == s
    poly = project.add_shape(image_id, "polygon", [[0, 0], [5, 0], (5, 5)])
    mask = project.add_shape(image_id, "mask", {"rle": {"size": [4, 4], "counts": "abc"},
                                                "bbox": [3, 3, 1, 1]})
    assert poly["geometry"] == [[0, 0], [5, 0], [5, 5]]
    assert mask["geometry"] == {"rle": {"size": [4, 4], "counts": "abc"}, "bbox": [1, 1, 3, 3]}
    assert [x["id"] for x in project.shapes(image_id)] == [s["id"], poly["id"], mask["id"]]
    assert [x["id"] for x in project.shapes(image_id, ["pending"])] == [s["id"]]


BAD_SHAPES = [
    ({"kind": "circle", "geometry": [0, 0]}, "kind.*'circle'"),
    ({"kind": "box", "geometry": [0, 0, 1]}, "geometry"),
    ({"kind": "box", "geometry": [0, 0, 1, math.nan]}, r"geometry\[3\].*nan"),
    ({"kind": "box", "geometry": [0, 0, 1, math.inf]}, r"geometry\[3\].*inf"),
    ({"kind": "box", "geometry": [0, 0, "1", 2]}, r"geometry\[2\].*'1'"),
    ({"kind": "box", "geometry": [0, 0, True, 2]}, r"geometry\[2\].*True"),
    ({"kind": "polygon", "geometry": [[0, 0], [1, 1]]}, "at least 3"),
    ({"kind": "polygon", "geometry": [[0, 0], [1, 1], [2]]}, r"geometry\[2\]"),
    ({"kind": "point", "geometry": [0, 0, 0]}, "point"),
    ({"kind": "mask", "geometry": {"bbox": [0, 0, 1, 1]}}, "rle"),
    ({"kind": "mask", "geometry": {"rle": {"x": math.nan}, "bbox": [0, 0, 1, 1]}}, "finite"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "status": "maybe"}, "status.*'maybe'"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "score": math.nan}, "score"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "source": "Some Model"}, "source.*'Some Model'"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "prompt": 5}, "prompt"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "class_id": "1"}, "class_id"),
]


@pytest.mark.parametrize("spec,pattern", BAD_SHAPES)
def test_shape_validation_names_field_and_value(project: Project, image_id: int,
                                                spec: dict, pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=pattern):
        project.add_shape(image_id, **spec)
    # In a batch, nothing is written when one item is bad, and the item is named.
    with pytest.raises(InvalidArgument, match=r"shapes\[1\]"):
        project.add_shapes(image_id, [{"kind": "point", "geometry": [1, 1]}, spec])
    assert project.shapes(image_id, ("accepted", "pending", "rejected")) == []
    assert not project.undo_state()["can_undo"]


@pytest.mark.parametrize("spec,pattern", [
    ({"kind": "box"}, r"shapes\[0\].geometry is required"),
    ({"geometry": [0, 0, 1, 1]}, r"shapes\[0\].kind is required"),
    ({"kind": "box", "geometry": [0, 0, 1, 1], "colour": 1}, r"unknown fields \['colour'\]"),
    ("box", "must be an object"),
])
def test_batch_items_must_be_complete_objects(project: Project, image_id: int,
                                              spec: object, pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=pattern):
        project.add_shapes(image_id, [spec])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="list"):
        project.add_shapes(image_id, spec)  # type: ignore[arg-type]
    assert project.add_shapes(image_id, []) == []
    assert not project.undo_state()["can_undo"]


def test_shape_references_must_exist(project: Project, image_id: int) -> None:
    with pytest.raises(NotFound, match="image"):
        project.add_shape(12345, "point", [0, 0])
    with pytest.raises(NotFound, match="class"):
        project.add_shape(image_id, "point", [0, 0], class_id=777)
    s = project.add_shape(image_id, "point", [0, 0])
    with pytest.raises(NotFound, match="class"):
        project.update_shape(s["id"], class_id=777)
    with pytest.raises(NotFound, match="shape"):
        project.update_shape(999, status="accepted")
    with pytest.raises(InvalidArgument, match="geometry"):
        project.update_shape(s["id"], geometry=[0, 0, 1, 1])  # a point stays a point


def test_update_shape_changes_only_what_is_given(project: Project, image_id: int) -> None:
    c = project.add_class("a")
    s = project.add_shape(image_id, "box", [0, 0, 1, 1], c["id"], status="pending",
                          score=0.9, source="owl@2")
    u = project.update_shape(s["id"], status="accepted")
    assert (u["status"], u["class_id"], u["geometry"]) == ("accepted", c["id"], [0, 0, 1, 1])
    assert u["updated"] >= s["updated"] and u["created"] == s["created"]
    u = project.update_shape(s["id"], class_id=None)
    assert u["class_id"] is None and u["score"] == 0.9 and u["source"] == "owl@2"
    u = project.update_shape(s["id"], geometry=[5, 5, 2, 2])
    assert u["geometry"] == [2, 2, 5, 5]
    deleted = project.delete_shape(s["id"])
    assert deleted == u
    with pytest.raises(NotFound):
        project.shape(s["id"])


def test_person_edits_start_a_new_image_but_proposals_do_not(project: Project) -> None:
    project.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 1, 1.0), ("c.jpg", 1, 1.0)])
    a, b, c = (i["id"] for i in project.images())
    project.add_shapes(a, [{"kind": "box", "geometry": [0, 0, 1, 1], "status": "pending",
                            "score": 0.3, "source": "owl@1"}])
    assert project.image(a)["status"] == "new"
    proposal = project.shapes(a)[0]
    project.update_shape(proposal["id"], status="accepted")
    assert project.image(a)["status"] == "in_progress"
    project.add_shape(b, "point", [1, 1])
    assert project.image(b)["status"] == "in_progress"
    project.set_image_status(c, "done")
    project.add_shape(c, "point", [1, 1])
    assert project.image(c)["status"] == "done"


def test_concurrent_threads_all_commit(project: Project, image_id: int) -> None:
    def work() -> None:
        for i in range(25):
            project.add_shape(image_id, "point", [i, i])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(project.shapes(image_id)) == 100


# -- settings --------------------------------------------------------------------------------

def test_settings_roundtrip_and_persist(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        assert p.get_setting("threshold", 0.3) == 0.3
        p.set_setting("threshold", 0.25)
        p.set_setting("prompts", ["moth", "Käfer"])
        p.set_setting("threshold", 0.2)
        with pytest.raises(InvalidArgument, match="threshold"):
            p.set_setting("threshold", math.nan)
        with pytest.raises(InvalidArgument, match="key"):
            p.set_setting("", 1)
    with Project.open(tmp_path) as p:
        assert p.get_setting("threshold") == 0.2
        assert p.get_setting("prompts") == ["moth", "Käfer"]


def test_text_that_is_not_unicode_is_refused_by_name(project: Project) -> None:
    # A lone surrogate (a non-UTF-8 file name, or "\ud800" in JSON) cannot be stored as text.
    with pytest.raises(InvalidArgument, match="valid Unicode"):
        project.add_class("leaf\ud800")
    assert project.classes() == []


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are always Unicode")
def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_open(tmp_path: Path) -> None:
    # A Latin-1 name from an old USB stick: Python sees it with a lone surrogate (PEP 383).
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "b.png").write_bytes(b"")
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes(b"")
    with Project.open(folder) as p:
        result = p.scan([".png"])
        assert [im["relpath"] for im in p.images()] == ["b.png"]
        assert result["unreadable"] == ["caf\ufffd.png (its name is not valid UTF-8: rename it)"]
