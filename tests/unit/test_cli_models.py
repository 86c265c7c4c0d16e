"""``main.py models list|verify|install`` through a real argparse parser."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from backend.cli import models as cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_pack import make_pack  # noqa: E402  (shared tiny-pack builder)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py")
    cli.add_parser(p.add_subparsers(dest="command"))
    return p


def run(*argv: str) -> int:
    return cli.run(parser().parse_args(["models", *argv]))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the real user data folder.
    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(tmp_path / "userdata"))
    monkeypatch.delenv(cli.ENV_PACKS_DIR, raising=False)


def test_install_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_pack(tmp_path / "src")
    packs = tmp_path / "packs"
    assert run("install", str(tmp_path / "src"), "--packs-dir", str(packs)) == 0
    assert "Installed test-sam@1.0.0" in capsys.readouterr().out
    assert (packs / "test-sam-1.0.0" / "manifest.json").exists()

    assert run("list", "--packs-dir", str(packs)) == 0
    out = capsys.readouterr().out
    assert "test-sam" in out and "1.0.0" in out and "segmenter" in out and "sam" in out
    assert "CPUExecutionProvider" in out

    assert run("list", "--packs-dir", str(packs), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in report["packs"]] == ["test-sam"]
    assert report["packs"][0]["size_bytes"] > 0
    assert report["broken"] == []
    assert "CPUExecutionProvider" in report["providers"]["installed"]


def test_default_packs_dir_is_in_user_data_and_env_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_pack(tmp_path / "src")
    assert run("install", str(tmp_path / "src"), "--json") == 0
    installed = json.loads(capsys.readouterr().out)["installed"]
    assert Path(installed["path"]) == tmp_path / "userdata" / "packs" / "test-sam-1.0.0"

    monkeypatch.setenv(cli.ENV_PACKS_DIR, str(tmp_path / "elsewhere"))
    assert run("list", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packs_dir"] == str(tmp_path / "elsewhere") and report["packs"] == []


def test_list_shows_broken_packs_with_their_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    packs = tmp_path / "packs"
    (packs / "half-copied").mkdir(parents=True)
    assert run("list", "--packs-dir", str(packs)) == 0
    out = capsys.readouterr().out
    assert "BROKEN" in out and "half-copied" in out and "manifest.json" in out
    assert run("list", "--packs-dir", str(packs), "--json") == 0
    broken = json.loads(capsys.readouterr().out)["broken"]
    assert len(broken) == 1 and broken[0]["path"].endswith("half-copied")


def test_verify_good_and_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_pack(tmp_path / "src")
    assert run("verify", str(tmp_path / "src")) == 0
    assert "OK" in capsys.readouterr().out

    (tmp_path / "src" / "encoder.onnx").write_bytes(b"bit rot")
    assert run("verify", str(tmp_path / "src")) == 2
    captured = capsys.readouterr()
    assert "damaged" in captured.err and "encoder.onnx" in captured.err

    assert run("verify", str(tmp_path / "src"), "--json") == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "encoder.onnx" in report["results"][0]["error"]


def test_verify_installed_packs_by_id_and_all(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    make_pack(tmp_path / "src")
    packs = tmp_path / "packs"
    run("install", str(tmp_path / "src"), "--packs-dir", str(packs))
    capsys.readouterr()
    assert run("verify", "test-sam", "--packs-dir", str(packs)) == 0
    assert "test-sam@1.0.0" in capsys.readouterr().out
    assert run("verify", "--packs-dir", str(packs), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and [r["id"] for r in report["results"]] == ["test-sam"]
    (packs / "test-sam-1.0.0" / "tokenizer" / "vocab.json").write_text("changed")
    assert run("verify", "--packs-dir", str(packs), "--json") == 2
    report = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in report["results"]] == [False]


def test_errors_go_to_stderr_with_exit_code_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run("install", str(tmp_path / "missing"), "--packs-dir", str(tmp_path / "p")) == 2
    captured = capsys.readouterr()
    assert "No model pack" in captured.err and str(tmp_path / "missing") in captured.err
    assert captured.out == ""

    assert run("verify", "no-such-pack", "--packs-dir", str(tmp_path / "p"), "--json") == 2
    captured = capsys.readouterr()
    assert "no-such-pack" in captured.err
    assert json.loads(captured.out)["error"]["code"] == "pack_invalid"

    not_a_pack = tmp_path / "folder"
    not_a_pack.mkdir()
    assert run("install", str(not_a_pack), "--packs-dir", str(tmp_path / "p")) == 2
    assert "manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["models", "--help"], ["models", "list", "--help"],
                                  ["models", "verify", "--help"],
                                  ["models", "install", "--help"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and len(out) > 100


def test_models_without_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["models"])
    assert exc.value.code == 2
