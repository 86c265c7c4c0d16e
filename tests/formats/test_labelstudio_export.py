"""Label Studio JSON: tasks with annotations (accepted) and predictions (proposals, with score),
percent coordinates, brush RLE that Label Studio's decoder turns back into the mask."""

from __future__ import annotations

import json
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from backend.formats.labelstudio import brush_rle
from tests.formats.conftest import LEAF, MOTH, Rich
from tests.formats.helpers_b import export, ls_brush_decode


def _tasks(rich: Rich, tmp_path: Path, **options: object) -> tuple[list[dict], Path]:
    out = export(rich.project, "labelstudio", tmp_path / "ls", **options).out
    return json.loads((out / "tasks.json").read_text(encoding="utf-8")), out


def _by_relpath(tasks: list[dict]) -> dict[str, dict]:
    return {t["data"]["relpath"]: t for t in tasks}


def test_tasks_point_at_the_copied_images(rich: Rich, tmp_path: Path) -> None:
    tasks, out = _tasks(rich, tmp_path)
    assert len(tasks) == 6
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=")
        rel = urllib.parse.unquote(url.split("?d=", 1)[1])
        assert (out / rel).is_file()
        assert " " not in url                       # "sub dir/ünïcode näme.png" is quoted
    assert _by_relpath(tasks)["empty.png"]["annotations"] == []


def test_results_are_in_percent_of_the_image(rich: Rich, tmp_path: Path) -> None:
    tasks = _by_relpath(_tasks(rich, tmp_path)[0])
    (annotation,) = tasks["plain.png"]["annotations"]
    results = {r["type"]: r for r in annotation["result"]}
    assert set(results) == {"rectanglelabels", "polygonlabels", "keypointlabels"}
    for r in results.values():
        assert (r["original_width"], r["original_height"]) == (64, 48)
        assert r["to_name"] == "image"
    box = results["rectanglelabels"]["value"]
    assert box["rectanglelabels"] == [MOTH]
    assert [box["x"] * 64 / 100, box["y"] * 48 / 100, box["width"] * 64 / 100,
            box["height"] * 48 / 100] == pytest.approx([4.5, 6.25, 25.5, 13.75])
    poly = results["polygonlabels"]["value"]
    assert poly["polygonlabels"] == [LEAF]
    assert np.allclose([[x * 64 / 100, y * 48 / 100] for x, y in poly["points"]],
                       [[40, 5], [60, 10], [55, 40], [42, 30]])
    point = results["keypointlabels"]["value"]
    assert [point["x"] * 64 / 100, point["y"] * 48 / 100] == pytest.approx([10, 40])
    rotated = tasks["rotated.jpg"]["annotations"][0]["result"][0]
    assert (rotated["original_width"], rotated["original_height"]) == (24, 40)


def test_proposals_are_predictions_with_score_and_model_version(rich: Rich,
                                                                tmp_path: Path) -> None:
    tasks = _by_relpath(_tasks(rich, tmp_path, include_pending=True)[0])
    plain = tasks["plain.png"]
    (prediction,) = plain["predictions"]
    assert prediction["model_version"] == "owlv2-base@1.0"
    assert prediction["score"] == pytest.approx(0.75)
    (result,) = prediction["result"]
    assert result["type"] == "rectanglelabels" and result["score"] == pytest.approx(0.75)
    accepted_ids = {r["id"] for r in plain["annotations"][0]["result"]}
    assert result["id"] not in accepted_ids and len(accepted_ids) == 3
    tasks = _by_relpath(_tasks(rich, tmp_path / "no")[0])
    assert all(t["predictions"] == [] for t in tasks.values())


def test_brush_masks_decode_with_label_studios_decoder(rich: Rich, tmp_path: Path) -> None:
    tasks = _by_relpath(_tasks(rich, tmp_path)[0])
    for relpath, key in (("holes.png", "holes"), ("sub dir/ünïcode näme.png", "parts")):
        (result,) = tasks[relpath]["annotations"][0]["result"]
        assert result["type"] == "brushlabels" and result["value"]["format"] == "rle"
        truth = rich.masks[key]
        h, w = truth.shape
        rgba = ls_brush_decode(result["value"]["rle"]).reshape(h, w, 4)
        assert np.array_equal(rgba[:, :, 3] > 0, truth)       # LS reads the alpha channel
        assert set(np.unique(rgba)) <= {0, 255}


@pytest.mark.parametrize("shape", [(1, 1), (3, 700), (300, 300)])
def test_brush_rle_long_runs_and_edge_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros(shape, bool)
    mask[: shape[0] // 2] = True                               # runs longer than 65536 bytes
    mask[rng.random(shape) < 0.01] = True                       # and single pixels
    decoded = ls_brush_decode(brush_rle(mask)).reshape(*shape, 4)
    assert np.array_equal(decoded[:, :, 0] == 255, mask)


def test_label_config_declares_every_class_for_every_result_type(rich: Rich,
                                                                 tmp_path: Path) -> None:
    tasks, out = _tasks(rich, tmp_path)
    view = ET.parse(out / "label_config.xml").getroot()
    assert view.tag == "View" and view.find("Image").get("value") == "$image"
    controls = {c.get("name"): c for c in view if c.tag != "Image"}
    for control in controls.values():
        assert control.get("toName") == "image"
        assert [lb.get("value") for lb in control.findall("Label")] == [MOTH, LEAF]
    used = {r["from_name"] for t in tasks for a in t["annotations"] for r in a["result"]}
    assert used <= set(controls) and len(used) == 4
