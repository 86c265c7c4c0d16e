"""The models panel's backend: installed packs, the active choice, lazy loading, unloading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.ai.models import ModelManager, NoModel
from backend.errors import PackError
from tests.ai.conftest import Packs

pytestmark = pytest.mark.models


def _manager(data: Path, bundled: Path | None = None) -> ModelManager:
    return ModelManager(data / "packs", bundled, data / "ai.json", threads=1)


def test_no_pack_installed_says_so_and_smart_select_remains(data_dir: Path) -> None:
    info = _manager(data_dir).info()
    assert info["packs"] == [] and info["active"] == {"detector": None, "segmenter": None}
    assert info["smart_select"] is True and info["packs_dir"] == str(data_dir / "packs")
    assert info["device"]["provider"] and info["device"]["reason"]
    with pytest.raises(NoModel, match="models panel"):
        _manager(data_dir).segmenter()


def test_installed_packs_become_active_lazily_and_the_choice_is_remembered(
        data_dir: Path, packs: Packs) -> None:
    m = _manager(data_dir)
    det = m.install(packs.detector)
    seg = m.install(packs.segmenter)
    info = m.info()
    assert info["active"] == {"detector": det.id, "segmenter": seg.id}, "the only pack of a task"
    assert not any(p["loaded"] for p in info["packs"]) and info["memory_bytes"] == 0
    segmenter = m.segmenter()
    assert segmenter.pack.source_tag == seg.source_tag
    info = m.info()
    assert [p["loaded"] for p in info["packs"] if p["id"] == seg.id] == [True]
    assert info["memory_bytes"] > 0
    m.activate("segmenter", None)
    assert json.loads((data_dir / "ai.json").read_text())["segmenter"] is None
    again = _manager(data_dir)
    assert again.info()["active"] == {"detector": det.id, "segmenter": None}, "none is a choice"
    assert again.info()["memory_bytes"] == 0


def test_unload_frees_and_the_next_use_reloads(data_dir: Path, packs: Packs) -> None:
    m = _manager(data_dir)
    m.install(packs.detector)
    first = m.detector()
    m.unload("detector")
    assert m.info()["memory_bytes"] == 0 and m.loaded() == []
    assert m.detector() is not first


def test_a_pack_altered_after_install_is_refused_when_loaded(data_dir: Path, packs: Packs) -> None:
    m = _manager(data_dir)
    pack = m.install(packs.segmenter)
    graph = next(f for f in pack.manifest["files"] if f.endswith(".onnx"))
    with open(pack.root / graph, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(PackError, match="damaged"):
        m.segmenter()


def test_broken_packs_are_listed_with_their_reason(data_dir: Path, packs: Packs) -> None:
    m = _manager(data_dir)
    shutil.copytree(packs.detector, data_dir / "packs" / "half-copied")
    (data_dir / "packs" / "half-copied" / "manifest.json").write_text("{not json", encoding="utf-8")
    info = m.info()
    assert info["packs"] == []
    assert len(info["broken"]) == 1 and "not valid JSON" in info["broken"][0]["message"]


def test_bundled_packs_are_offered_and_a_bare_id_means_the_newest(data_dir: Path,
                                                                  packs: Packs) -> None:
    bundled = data_dir / "bundled"
    shutil.copytree(packs.detector, bundled / "det")
    m = _manager(data_dir, bundled)
    assert [p["origin"] for p in m.info()["packs"]] == ["bundled"]
    newer = data_dir / "newer"
    shutil.copytree(packs.detector, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["version"] = "0.0.10"
    (newer / "manifest.json").write_text(json.dumps(manifest))
    m.install(newer)
    assert m.find(manifest["id"]).version == "0.0.10"
    assert m.find(f"{manifest['id']}@0.0.1").version == "0.0.1"
