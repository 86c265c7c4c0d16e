"""Model packs: verification, refusal of damaged or unsafe packs, zips, install, sessions."""

from __future__ import annotations

import errno
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from backend.errors import PackError
from backend.models import pack as packs
from backend.models.runtime import create_session


def identity_onnx(path: Path) -> None:
    """A real, tiny ONNX graph: y = Identity(x), x float32 [1, 3]."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8          # readable by any onnxruntime we support
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def base_manifest(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "id": "test-sam", "name": "Test SAM", "version": "1.0.0", "task": "segmenter",
        "family": "sam", "license": "Apache-2.0",
        "source": {"checkpoint": "none", "random": "tiny"},
        "preprocessing": {"image_size": 64}, "config": {},
        "io": {"graphs": {"encoder": {"file": "encoder.onnx", "inputs": {"x": [1, 3]},
                                      "outputs": {"y": [1, 3]}}}},
        "extra_files": ["tokenizer/vocab.json"],
    }
    m.update(over)
    return m


def make_pack(root: Path, **over: Any) -> packs.Pack:
    root.mkdir(parents=True, exist_ok=True)
    identity_onnx(root / "encoder.onnx")
    (root / "tokenizer").mkdir(exist_ok=True)
    (root / "tokenizer" / "vocab.json").write_text('{"a": 1}')
    return packs.write_pack(root, base_manifest(**over))


def edit_manifest(root: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    m = json.loads((root / "manifest.json").read_text())
    change(m)
    (root / "manifest.json").write_text(json.dumps(m))


@pytest.fixture()
def pack_dir(tmp_path: Path) -> Path:
    make_pack(tmp_path / "src")
    return tmp_path / "src"


# -- verification -----------------------------------------------------------------------------

def test_valid_pack_verifies(pack_dir: Path) -> None:
    pk = packs.verify_pack(pack_dir)
    assert (pk.id, pk.version, pk.task, pk.family) == ("test-sam", "1.0.0", "segmenter", "sam")
    assert pk.source_tag == "test-sam@1.0.0"
    assert pk.graph("encoder") == pack_dir / "encoder.onnx"
    assert set(pk.manifest["files"]) == {"encoder.onnx", "tokenizer/vocab.json"}
    size = sum(f.stat().st_size for f in (pack_dir / "encoder.onnx",
                                          pack_dir / "tokenizer" / "vocab.json"))
    assert pk.summary()["size_bytes"] == size
    with pytest.raises(PackError, match="decoder"):
        pk.graph("decoder")


def test_changed_file_fails_its_checksum(pack_dir: Path) -> None:
    (pack_dir / "tokenizer" / "vocab.json").write_text('{"a": 2}')
    assert packs.verify_pack(pack_dir, hashes=False).id == "test-sam"  # quick check passes
    with pytest.raises(PackError, match="damaged") as err:
        packs.verify_pack(pack_dir)
    assert "tokenizer/vocab.json" in err.value.message
    assert err.value.detail["file"] == "tokenizer/vocab.json"


def test_missing_file_is_named(pack_dir: Path) -> None:
    (pack_dir / "encoder.onnx").unlink()
    with pytest.raises(PackError, match="missing") as err:
        packs.verify_pack(pack_dir, hashes=False)
    assert "encoder.onnx" in err.value.message


def test_folder_without_manifest_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="no manifest.json"):
        packs.verify_pack(tmp_path)
    with pytest.raises(PackError, match="No model pack"):
        packs.load_pack(tmp_path / "nowhere")


def test_manifest_that_is_not_json(pack_dir: Path) -> None:
    (pack_dir / "manifest.json").write_text("{not json")
    with pytest.raises(PackError, match="not valid JSON"):
        packs.verify_pack(pack_dir)


@pytest.mark.parametrize("field", packs._REQUIRED)
def test_each_missing_manifest_field_is_named(pack_dir: Path, field: str) -> None:
    edit_manifest(pack_dir, lambda m: m.pop(field))
    with pytest.raises(PackError, match=f"missing field.*{field}"):
        packs.verify_pack(pack_dir)


BAD_FIELDS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("schema", lambda m: m.update(schema_version=2), "schema_version is 2"),
    ("schema-str", lambda m: m.update(schema_version="1"), "schema_version"),
    ("id-upper", lambda m: m.update(id="Test"), "id 'Test'"),
    ("id-path", lambda m: m.update(id="../x"), "id"),
    ("id-number", lambda m: m.update(id=7), "id 7"),
    ("version-path", lambda m: m.update(version="1/../../../victim"), "version"),
    ("version-dotdot", lambda m: m.update(version=".."), "version '..'"),
    ("version-number", lambda m: m.update(version=1), "version 1"),
    ("preprocessing", lambda m: m.update(preprocessing="imagenet"), "preprocessing"),
    ("config", lambda m: m.update(config=[]), "config"),
    ("source", lambda m: m.update(source=None), "source"),
    ("task", lambda m: m.update(task="classifier"), "task 'classifier'"),
    ("family-task", lambda m: m.update(family="owlv2"), "family 'owlv2'"),
    ("family-unknown", lambda m: m.update(family="yolo"), "family 'yolo'"),
    ("family-list", lambda m: m.update(family=["sam"]), "family"),
    ("files-empty", lambda m: m.update(files={}), "files"),
    ("files-list", lambda m: m.update(files=["encoder.onnx"]), "files"),
    ("file-escape", lambda m: m["files"].update({"../secret": "0" * 64}), "leaves the pack"),
    ("file-absolute", lambda m: m["files"].update({"/etc/passwd": "0" * 64}), "leaves"),
    ("file-backslash", lambda m: m["files"].update({"..\\x": "0" * 64}), "leaves"),
    ("digest", lambda m: m["files"].update({"encoder.onnx": "abc"}), "not a hex digest"),
    ("graphs-missing", lambda m: m.update(io={}), "io.graphs"),
    ("graphs-not-dict", lambda m: m.update(io=[]), "io.graphs"),
    ("graph-file", lambda m: m["io"]["graphs"]["encoder"].update(file="other.onnx"),
     "not in files"),
    ("graph-file-list", lambda m: m["io"]["graphs"]["encoder"].update(file=["a"]),
     "not in files"),
    ("not-object", lambda m: (m.clear()), "missing field"),
]


@pytest.mark.parametrize("change,message", [(c, msg) for _, c, msg in BAD_FIELDS],
                         ids=[name for name, _, _ in BAD_FIELDS])
def test_invalid_manifest_fields_are_refused_with_the_field_named(
        pack_dir: Path, change: Callable[[dict[str, Any]], Any], message: str) -> None:
    edit_manifest(pack_dir, change)
    with pytest.raises(PackError, match="invalid manifest") as err:
        packs.verify_pack(pack_dir)
    assert message in err.value.message
    assert str(pack_dir) in err.value.message


def test_manifest_that_is_a_list(pack_dir: Path) -> None:
    (pack_dir / "manifest.json").write_text("[]")
    with pytest.raises(PackError, match="not a JSON object"):
        packs.verify_pack(pack_dir)


# -- zips -------------------------------------------------------------------------------------

def test_zip_pack_loads(pack_dir: Path, tmp_path: Path) -> None:
    z = packs.zip_pack(pack_dir, tmp_path / "pack.zip")
    pk = packs.load_pack(z, unpack_dir=tmp_path)
    assert pk.id == "test-sam" and pk.root != pack_dir
    # A zip whose files sit in a top-level folder (as "compress folder" makes) works too.
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as zf:
        for f in sorted(pack_dir.rglob("*")):
            if f.is_file():
                zf.write(f, "test-sam/" + f.relative_to(pack_dir).as_posix())
    assert packs.load_pack(nested, unpack_dir=tmp_path).id == "test-sam"


def test_zip_with_damaged_member_is_refused(pack_dir: Path, tmp_path: Path) -> None:
    (pack_dir / "encoder.onnx").write_bytes(b"tampered")   # manifest still has the old hash
    z = packs.zip_pack(pack_dir, tmp_path / "pack.zip")
    with pytest.raises(PackError, match="encoder.onnx"):
        packs.load_pack(z, unpack_dir=tmp_path)


def _zip_with(pack_dir: Path, dest: Path, name: str, data: bytes = b"x",
              attr: int | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(pack_dir.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(pack_dir).as_posix())
        info = zipfile.ZipInfo(name)
        if attr is not None:
            info.external_attr = attr << 16
        zf.writestr(info, data)
    return dest


@pytest.mark.parametrize("name,attr", [
    ("../escaped.txt", None),
    ("sub/../../escaped.txt", None),
    ("/tmp/fieldmark-escaped.txt", None),
    ("..\\escaped.txt", None),
    ("link", 0o120777),                                   # a symlink entry
], ids=["dotdot", "nested-dotdot", "absolute", "backslash", "symlink"])
def test_unsafe_zip_is_refused(pack_dir: Path, tmp_path: Path, name: str,
                               attr: int | None) -> None:
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    z = _zip_with(pack_dir, tmp_path / "evil.zip", name, b"/etc/passwd", attr)
    with pytest.raises(PackError, match="unsafe path"):
        packs.load_pack(z, unpack_dir=unpack)
    assert not (tmp_path / "escaped.txt").exists()
    assert not list(unpack.rglob("manifest.json"))          # nothing was extracted


def test_file_that_is_not_a_zip(tmp_path: Path) -> None:
    bad = tmp_path / "pack.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(PackError, match="not a readable .zip"):
        packs.load_pack(bad)


# -- install and list -------------------------------------------------------------------------

def test_install_copies_and_reinstall_replaces(pack_dir: Path, tmp_path: Path) -> None:
    installed_root = tmp_path / "packs"
    pk = packs.install_pack(pack_dir, installed_root)
    assert pk.root == installed_root / "test-sam-1.0.0"
    assert packs.verify_pack(pk.root).id == "test-sam"     # full hash check of the copy
    assert (pack_dir / "manifest.json").exists()            # source untouched
    (pk.root / "leftover.txt").write_text("from the old copy")
    # Same id and version, new content: the installed copy is replaced, not merged.
    (pack_dir / "tokenizer" / "vocab.json").write_text('{"b": 2}')
    packs.write_pack(pack_dir, base_manifest())
    again = packs.install_pack(pack_dir, installed_root)
    assert (again.root / "tokenizer" / "vocab.json").read_text() == '{"b": 2}'
    assert not (again.root / "leftover.txt").exists()
    assert sorted(p.name for p in installed_root.iterdir()) == ["test-sam-1.0.0"]


def test_a_full_disk_during_install_is_a_clear_refusal_that_keeps_the_installed_copy(
        pack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed_root = tmp_path / "packs"
    packs.install_pack(pack_dir, installed_root)
    real_copytree = packs.shutil.copytree

    def copy_then_fill_the_disk(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        real_copytree(src, dst, *args, **kwargs)     # the copy got written, then the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packs.shutil, "copytree", copy_then_fill_the_disk)
    with pytest.raises(PackError, match="free space") as info:
        packs.install_pack(pack_dir, installed_root)
    assert str(installed_root) in info.value.message
    assert packs.verify_pack(installed_root / "test-sam-1.0.0").id == "test-sam"
    assert sorted(p.name for p in installed_root.iterdir()) == ["test-sam-1.0.0"]


def test_install_from_zip_and_side_by_side_versions(pack_dir: Path, tmp_path: Path) -> None:
    installed_root = tmp_path / "packs"
    packs.install_pack(packs.zip_pack(pack_dir, tmp_path / "p.zip"), installed_root)
    packs.write_pack(pack_dir, base_manifest(version="1.1.0"))
    packs.install_pack(pack_dir, installed_root)
    listed = packs.list_packs(installed_root)
    assert [(p.id, p.version) for p in listed if isinstance(p, packs.Pack)] == [
        ("test-sam", "1.0.0"), ("test-sam", "1.1.0")]
    assert sorted(p.name for p in installed_root.iterdir()) == ["test-sam-1.0.0",
                                                                "test-sam-1.1.0"]


def test_install_cannot_be_steered_outside_the_packs_folder(pack_dir: Path,
                                                           tmp_path: Path) -> None:
    # The install folder is named <id>-<version>; a version with separators must not make
    # install replace (delete) a folder elsewhere.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    packs.write_pack(pack_dir, base_manifest(version="1"))
    packs.install_pack(pack_dir, tmp_path / "packs")        # creates packs/test-sam-1
    edit_manifest(pack_dir, lambda m: m.update(version="1/../../victim"))
    with pytest.raises(PackError, match="version"):
        packs.install_pack(pack_dir, tmp_path / "packs")
    assert (victim / "precious.txt").read_text() == "keep me"


def test_damaged_pack_is_not_installed(pack_dir: Path, tmp_path: Path) -> None:
    (pack_dir / "encoder.onnx").write_bytes(b"garbage")
    installed_root = tmp_path / "packs"
    with pytest.raises(PackError, match="damaged"):
        packs.install_pack(pack_dir, installed_root)
    assert list(installed_root.iterdir()) == []             # no partial copy, no temp folder


def test_list_reports_broken_packs(pack_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "packs"
    packs.install_pack(pack_dir, root)
    (root / "junk").mkdir()
    (root / ".hidden").mkdir()
    items = packs.list_packs(root)
    assert len(items) == 2
    ok = [i for i in items if isinstance(i, packs.Pack)]
    broken = [i for i in items if isinstance(i, PackError)]
    assert [p.id for p in ok] == ["test-sam"]
    assert len(broken) == 1 and "junk" in broken[0].message
    assert packs.list_packs(tmp_path / "none") == []


# -- sessions ---------------------------------------------------------------------------------

def test_session_on_identity_graph_runs_on_cpu(pack_dir: Path) -> None:
    pk = packs.verify_pack(pack_dir)
    session = create_session(pk.graph("encoder"), threads=1)
    assert session.provider == "CPUExecutionProvider"
    assert session.input_names == ["x"] and session.output_names == ["y"]
    x = np.array([[1.5, -2.0, 3.25]], dtype=np.float32)
    (y,) = session.run({"x": x})
    np.testing.assert_array_equal(y, x)


def test_corrupt_onnx_file_is_a_pack_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "encoder.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(PackError) as err:
        create_session(bad, threads=1)
    assert str(bad) in err.value.message
    assert "re-install" in err.value.message
